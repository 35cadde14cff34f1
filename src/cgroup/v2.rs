//! cgroup v2 readers: one directory's files into a [`Usage`], and
//! [`V2Reader`], which reads the many unit cgroups of one scrape cheaply
//! (controllers known per parent, one directory descriptor, one reused
//! buffer).

use std::path::{Path, PathBuf};

use super::psi::{PRESSURE_FILES, parse_pressure};
use super::{FILE_LIMIT, IoBytes, Usage, keyed, read_text};

/// Sums `rbytes=`/`wbytes=` over the devices of a v2 `io.stat`.
pub fn parse_io_stat(text: &str) -> IoBytes {
    let mut io = IoBytes::default();
    for w in text.split_whitespace() {
        if let Some(v) = w.strip_prefix("rbytes=") {
            io.read = io.read.saturating_add(v.parse().unwrap_or(0));
        } else if let Some(v) = w.strip_prefix("wbytes=") {
            io.written = io.written.saturating_add(v.parse().unwrap_or(0));
        }
    }
    io
}

/// Reads a v2 cgroup directory (blocking; up to eight small reads; no
/// `memory.stat`). Absent files give `None`; an absent directory gives an
/// all-`None` [`Usage`].
pub fn read_v2(dir: &Path) -> Usage {
    let mut buf = Vec::new();
    read_v2_with(&mut PathFiles { dir, buf: &mut buf }, |_| true, true)
}

/// Where [`read_v2_with`] gets a cgroup file's text: borrowed from one
/// buffer the source reuses, so reading a unit allocates nothing per file.
trait Files {
    /// The text of the file `name` of the cgroup; `None`: absent or unreadable.
    fn text(&mut self, name: &str) -> Option<&str>;
}

/// Reads `file` into `buf` (cleared first), one `read` per buffer-full, at
/// most [`FILE_LIMIT`] bytes. A read that leaves the buffer part empty is
/// the end: cgroup files are kernfs seq_files, whose `read` hands out all it
/// has up to the size asked (and a regular file's only stops short at its
/// end), so the usual extra `read` that returns 0 is saved. The buffer
/// starts at one page, more than every cgroup file but a many-device
/// `io.stat` needs, and grows by doubling.
fn read_into(mut file: std::fs::File, buf: &mut Vec<u8>) -> Option<()> {
    use std::io::Read;
    buf.clear();
    if buf.capacity() < 4096 {
        buf.reserve(4096);
    }
    loop {
        let len = buf.len();
        let cap = buf.capacity().min(FILE_LIMIT);
        buf.resize(cap, 0);
        let n = file.read(&mut buf[len..]);
        buf.truncate(len + *n.as_ref().unwrap_or(&0));
        let n = match n {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        };
        if n == 0 || buf.len() < cap || cap == FILE_LIMIT {
            return Some(());
        }
        buf.reserve(cap);
    }
}

/// [`Files`] by path (`dir/name`), for one-off reads and for a cgroup of
/// which only one file is wanted (one path walk either way, no directory
/// descriptor to open and close).
struct PathFiles<'a> {
    dir: &'a Path,
    buf: &'a mut Vec<u8>,
}

impl Files for PathFiles<'_> {
    fn text(&mut self, name: &str) -> Option<&str> {
        read_into(std::fs::File::open(self.dir.join(name)).ok()?, self.buf)?;
        std::str::from_utf8(self.buf).ok()
    }
}

/// [`Files`] relative to the cgroup's open directory (`openat`): the kernel
/// walks the long cgroup path once per cgroup, not once per file.
struct DirFiles<'a> {
    dir: std::os::fd::OwnedFd,
    buf: &'a mut Vec<u8>,
}

impl Files for DirFiles<'_> {
    fn text(&mut self, name: &str) -> Option<&str> {
        use nix::fcntl::{OFlag, openat};
        let fd = openat(
            &self.dir,
            name,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()?;
        read_into(std::fs::File::from(fd), self.buf)?;
        std::str::from_utf8(self.buf).ok()
    }
}

/// The figures of one v2 cgroup from `files`, opening the files of the
/// `memory`, `pids` and `io` controllers only where `enabled(controller)`
/// says the controller is on (`cpu.stat` and the pressure files are core
/// files, in every cgroup), and the three pressure files only with
/// `pressure`.
fn read_v2_with(files: &mut dyn Files, enabled: impl Fn(&str) -> bool, pressure: bool) -> Usage {
    fn number(t: &str) -> Option<u64> {
        t.trim().parse().ok()
    }
    let mut u = Usage {
        cpu_usec: files.text("cpu.stat").and_then(|t| keyed(t, "usage_usec")),
        ..Usage::default()
    };
    if enabled("memory") {
        u.memory_current = files.text("memory.current").and_then(number);
        u.memory_peak = files.text("memory.peak").and_then(number);
    }
    if enabled("pids") {
        u.tasks = files.text("pids.current").and_then(number);
    }
    if enabled("io") {
        u.io = files.text("io.stat").map(parse_io_stat);
    }
    if pressure {
        for (p, f) in u.pressure.iter_mut().zip(PRESSURE_FILES) {
            *p = files.text(f).and_then(parse_pressure);
        }
    }
    u
}

/// Reads many v2 cgroup directories (the units of one scrape) cheaply:
/// - remembers per parent directory which controllers its children have
///   (the parent's `cgroup.subtree_control`): a child has a controller's
///   files exactly when its parent enables it, so files that cannot exist
///   are not opened (on a hybrid host, four of eight per unit); a parent
///   whose `cgroup.subtree_control` cannot be read: every file is tried;
/// - reads the pressure files only when asked to (three of the files, and
///   six series, per cgroup);
/// - opens a directory (`O_PATH`) and its files relative to it (`openat`)
///   when more than one file is wanted, else the one file by path;
/// - reads every file into one reused buffer with one `read` (see
///   [`read_into`]) and parses it in place: no allocation per file.
#[derive(Debug, Default)]
pub struct V2Reader {
    pressure: bool,
    parents: std::collections::HashMap<PathBuf, Option<String>>,
    buf: Vec<u8>,
}

impl V2Reader {
    /// A reader that also reads the `{cpu,memory,io}.pressure` files with
    /// `pressure`.
    pub fn new(pressure: bool) -> Self {
        V2Reader {
            pressure,
            ..V2Reader::default()
        }
    }

    /// The [`Usage`] of the cgroup directory `dir` (blocking).
    pub fn read(&mut self, dir: &Path) -> Usage {
        use nix::fcntl::{OFlag, open};
        let V2Reader { pressure, parents, buf } = self;
        let enabled = match dir.parent() {
            Some(p) => {
                if !parents.contains_key(p) {
                    parents.insert(p.to_path_buf(), read_text(&p.join("cgroup.subtree_control")));
                }
                parents[p].as_deref()
            }
            None => None,
        };
        let enabled = |c: &str| enabled.is_none_or(|t| t.split_whitespace().any(|w| w == c));
        let wanted = 1
            + 2 * usize::from(enabled("memory"))
            + usize::from(enabled("pids"))
            + usize::from(enabled("io"))
            + 3 * usize::from(*pressure);
        if wanted == 1 {
            return read_v2_with(&mut PathFiles { dir, buf }, enabled, *pressure);
        }
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let Ok(fd) = open(dir, flags, nix::sys::stat::Mode::empty()) else {
            return Usage::default();
        };
        read_v2_with(&mut DirFiles { dir: fd, buf }, enabled, *pressure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::Availability;
    use crate::cgroup::tests::w;

    #[test]
    fn io_stat_sums_devices() {
        let io = parse_io_stat("8:0 rbytes=100 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n259:0 rbytes=5 wbytes=1\n");
        assert_eq!(io, IoBytes { read: 105, written: 21 });
        assert_eq!(parse_io_stat(""), IoBytes::default());
    }

    #[test]
    fn v2_files_present_and_absent() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("system.slice/a.service");
        w(
            d.join("cpu.stat"),
            "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
        );
        w(d.join("memory.current"), "4096\n");
        w(d.join("memory.peak"), "8192\n");
        w(d.join("pids.current"), "3\n");
        w(d.join("io.stat"), "8:0 rbytes=7 wbytes=9 rios=1 wios=1\n");
        w(
            d.join("cpu.pressure"),
            "some avg10=1.00 avg60=0.00 avg300=0.00 total=11\n",
        );
        w(
            d.join("io.pressure"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=12\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=13\n",
        );
        let u = read_v2(&d);
        assert_eq!(u.cpu_usec, Some(2_500_000));
        assert_eq!(u.memory_current, Some(4096));
        assert_eq!(u.memory_peak, Some(8192));
        assert_eq!(u.tasks, Some(3));
        assert_eq!(u.io, Some(IoBytes { read: 7, written: 9 }));
        assert_eq!(u.pressure[0].unwrap().some.unwrap().total_usec, 11);
        assert!(u.pressure[1].is_none());
        assert_eq!(u.pressure[2].unwrap().full.unwrap().total_usec, 13);
        // Only cpu.stat (a hybrid host's unified tree without controllers).
        let e = t.path().join("system.slice/b.service");
        w(e.join("cpu.stat"), "usage_usec 1\n");
        let u = read_v2(&e);
        assert_eq!(u.cpu_usec, Some(1));
        assert_eq!((u.memory_current, u.tasks, u.io), (None, None, None));
        assert_eq!(read_v2(&t.path().join("gone")), Usage::default());

        let mut a = Availability::default();
        a.note(&read_v2(&d));
        a.note(&read_v2(&e));
        a.note(&Usage::default());
        let r: Vec<_> = a.report().collect();
        assert_eq!(r[0], ("cpu", true, ""));
        assert_eq!(r[2], ("memory_peak", true, ""));
        let mut only_e = Availability::default();
        only_e.note(&read_v2(&e));
        let r: Vec<_> = only_e.report().collect();
        assert_eq!(r[1], ("memory", false, "file_absent"));
        assert_eq!(r[5], ("pressure", false, "file_absent"));
        assert!(
            Availability::default()
                .report()
                .all(|(_, ok, why)| !ok && why == "no_cgroup")
        );
    }

    #[test]
    fn v2_reader_skips_controllers_the_parent_does_not_enable() {
        let t = tempfile::tempdir().unwrap();
        let (on, off, unknown) = (t.path().join("on"), t.path().join("off"), t.path().join("unknown"));
        w(on.join("cgroup.subtree_control"), "cpu io memory pids\n");
        w(off.join("cgroup.subtree_control"), "cpu\n");
        for d in [&on, &off, &unknown] {
            let u = d.join("a.service");
            w(u.join("cpu.stat"), "usage_usec 5\n");
            w(u.join("memory.current"), "10\n");
            w(u.join("pids.current"), "2\n");
            w(u.join("io.stat"), "8:0 rbytes=1 wbytes=2\n");
        }
        let mut r = V2Reader::new(true);
        let got = |r: &mut V2Reader, d: &Path| {
            let u = r.read(&d.join("a.service"));
            (u.cpu_usec, u.memory_current, u.tasks, u.io.map(|i| i.written))
        };
        assert_eq!(got(&mut r, &on), (Some(5), Some(10), Some(2), Some(2)));
        // A stale file a disabled controller left behind is not read.
        assert_eq!(got(&mut r, &off), (Some(5), None, None, None));
        assert_eq!(got(&mut r, &unknown), (Some(5), Some(10), Some(2), Some(2)));
        assert_eq!(r.read(&on.join("a.service")), read_v2(&on.join("a.service")));
    }

    #[test]
    fn v2_reader_reads_pressure_only_when_asked_and_big_files_whole() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("p/a.service");
        w(t.path().join("p/cgroup.subtree_control"), "io\n");
        w(d.join("cpu.stat"), "usage_usec 5\n");
        w(
            d.join("cpu.pressure"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=9\n",
        );
        // An io.stat of many devices, longer than the first buffer (a page).
        let devices: String = (0..300)
            .map(|i| format!("8:{i} rbytes=1 wbytes=2 rios=1 wios=1\n"))
            .collect();
        assert!(devices.len() > 2 * 4096);
        w(d.join("io.stat"), &devices);
        let mut off = V2Reader::new(false);
        let u = off.read(&d);
        assert_eq!(u.pressure, [None; 3]);
        assert_eq!(
            u.io,
            Some(IoBytes {
                read: 300,
                written: 600
            })
        );
        let mut on = V2Reader::new(true);
        let u = on.read(&d);
        assert_eq!(u.pressure[0].unwrap().some.unwrap().total_usec, 9);
        assert_eq!(u.cpu_usec, Some(5));
        // Only cpu.stat wanted (no controller, no pressure): read by path.
        let e = t.path().join("q/b.service");
        w(t.path().join("q/cgroup.subtree_control"), "\n");
        w(e.join("cpu.stat"), "usage_usec 7\n");
        assert_eq!(off.read(&e).cpu_usec, Some(7));
        assert_eq!(off.read(&t.path().join("q/gone.service")), Usage::default());
        let mut a = Availability::default();
        a.note(&off.read(&e));
        a.disable("pressure");
        let r: Vec<_> = a.report().collect();
        assert_eq!(r[0], ("cpu", true, ""));
        assert_eq!(r[5], ("pressure", false, "disabled"));
    }
}
