//! The LFS object store, scanned incrementally (fan-out directories whose
//! mtime is unchanged are not listed again).

use super::*;

// ---------------------------------------------------------------------------
// The object store, scanned incrementally.
//
// Every call is relative to an open directory (`openat`/`fstatat`), so a
// rescan costs one short lookup per fan-out directory instead of a full path
// resolution, and the 256 top-level fan-out directories are split over two
// threads. Modification times are compared as raw `(sec, nsec)` pairs.

/// Modification times closer than this to the scan start are not trusted
/// for skipping (a change in the same clock tick would keep the same mtime).
pub const RACY_WINDOW: Duration = Duration::from_secs(1);

/// `(st_mtime, st_mtime_nsec)`.
pub(super) type Mtime = (i64, i64);

#[derive(Debug, Default)]
pub(super) struct LeafDir {
    pub(super) mtime: Option<Mtime>,
    pub(super) objects: Vec<(Oid, u64)>,
}

#[derive(Debug, Default)]
pub(super) struct MidDir {
    pub(super) mtime: Option<Mtime>,
    /// Indexed by the second fan-out byte.
    pub(super) leaves: Vec<Option<LeafDir>>,
}

/// What the last scan saw in one object store; reused by the next scan.
#[derive(Debug, Default)]
pub struct StoreCache {
    pub(super) top_mtime: Option<Mtime>,
    /// Indexed by the first fan-out byte.
    pub(super) mids: Vec<Option<MidDir>>,
}

/// How much work one store scan did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanStats {
    /// Directories read (readdir) in this scan.
    pub dirs_listed: usize,
    /// Fan-out directories whose unchanged mtime let the scan skip them.
    pub dirs_skipped: usize,
}

impl ScanStats {
    pub(super) fn add(&mut self, o: ScanStats) {
        self.dirs_listed += o.dirs_listed;
        self.dirs_skipped += o.dirs_skipped;
    }
}

pub(super) fn trusted(cached: Option<Mtime>, now: Mtime) -> bool {
    cached == Some(now)
}

/// The mtime to remember, or `None` when it is too recent to be trusted.
pub(super) fn remember(mtime: Mtime, scan_start: Mtime) -> Option<Mtime> {
    ((mtime.0 + RACY_WINDOW.as_secs() as i64, mtime.1) < scan_start).then_some(mtime)
}

pub(super) fn to_mtime(t: SystemTime) -> Mtime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos() as i64),
        Err(_) => (0, 0),
    }
}

pub(super) fn st_mtime(st: &nix::sys::stat::FileStat) -> Mtime {
    (st.st_mtime, st.st_mtime_nsec)
}

pub(super) fn file_kind(st: &nix::sys::stat::FileStat) -> nix::sys::stat::SFlag {
    use nix::sys::stat::SFlag;
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

pub(super) fn is_dir(st: &nix::sys::stat::FileStat) -> bool {
    file_kind(st) == nix::sys::stat::SFlag::S_IFDIR
}

pub(super) fn is_reg(st: &nix::sys::stat::FileStat) -> bool {
    file_kind(st) == nix::sys::stat::SFlag::S_IFREG
}

pub(super) const HEX: &[u8; 16] = b"0123456789abcdef";

/// The two-character fan-out name of `b`, without allocating.
pub(super) fn fanout_name(b: u8) -> [u8; 2] {
    [HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]
}

pub(super) fn name_str(n: &[u8; 2]) -> &str {
    std::str::from_utf8(n).expect("hex is ASCII")
}

/// `"ab"` → 0xab for the two-character lowercase hex fan-out names.
pub(super) fn fanout_byte(name: &[u8]) -> Option<u8> {
    if name.len() != 2 {
        return None;
    }
    let mut full = [b'0'; 64];
    full[..2].copy_from_slice(name);
    parse_oid_hex(&full).map(|o| o[0])
}

pub(super) fn errno(e: nix::Error) -> io::Error {
    io::Error::from(e)
}

/// `fstatat`, with "does not exist" as `None`.
pub(super) fn stat_at<Fd: std::os::fd::AsFd>(dir: Fd, name: &str) -> io::Result<Option<nix::sys::stat::FileStat>> {
    match nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::empty()) {
        Ok(st) => Ok(Some(st)),
        Err(nix::Error::ENOENT) => Ok(None),
        Err(e) => Err(errno(e)),
    }
}

pub(super) fn dir_flags() -> nix::fcntl::OFlag {
    use nix::fcntl::OFlag;
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
}

/// Opens `name` under `dir` as a directory; `None` when it vanished.
pub(super) fn open_at<Fd: std::os::fd::AsFd>(dir: Fd, name: &str) -> io::Result<Option<std::os::fd::OwnedFd>> {
    match nix::fcntl::openat(dir, name, dir_flags(), nix::sys::stat::Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(nix::Error::ENOENT) => Ok(None),
        Err(e) => Err(errno(e)),
    }
}

/// Names in an open directory (without `.` and `..`).
pub(super) fn read_names<Fd: std::os::fd::AsFd>(dir: Fd) -> io::Result<Vec<(Vec<u8>, Option<nix::dir::Type>)>> {
    let mut d = nix::dir::Dir::openat(dir, ".", dir_flags(), nix::sys::stat::Mode::empty()).map_err(errno)?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e.map_err(errno)?;
        let name = e.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        out.push((name.to_vec(), e.file_type()));
    }
    Ok(out)
}

/// The fan-out subdirectories (`aa` or `bb`) in an open directory.
pub(super) fn list_fanout<Fd: std::os::fd::AsFd + Copy>(dir: Fd) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    for (name, ty) in read_names(dir)? {
        let Some(b) = fanout_byte(&name) else { continue };
        let is_dir = match ty {
            Some(t) => t == nix::dir::Type::Directory,
            None => stat_at(dir, name_str(&fanout_name(b)))?.is_some_and(|s| is_dir(&s)),
        };
        if is_dir {
            v.push(b);
        }
    }
    Ok(v)
}

/// The objects in one open leaf directory `aa/bb`.
pub(super) fn list_objects<Fd: std::os::fd::AsFd + Copy>(dir: Fd, aa: u8, bb: u8) -> io::Result<Vec<(Oid, u64)>> {
    let mut v = Vec::new();
    for (name, _) in read_names(dir)? {
        let Some(oid) = parse_oid_hex(&name) else {
            continue; // temporary or foreign file
        };
        if oid[0] != aa || oid[1] != bb {
            continue;
        }
        let name = std::str::from_utf8(&name).expect("hex is ASCII");
        match stat_at(dir, name)? {
            Some(st) if is_reg(&st) => v.push((oid, st.st_size.max(0) as u64)),
            _ => {} // not a file, or removed meanwhile
        }
    }
    Ok(v)
}

/// Updates `slot` (one `aa` directory) from disk.
pub(super) fn scan_mid<Fd: std::os::fd::AsFd + Copy>(
    top: Fd,
    aa: u8,
    slot: &mut Option<MidDir>,
    scan_start: Mtime,
    stats: &mut ScanStats,
) -> io::Result<()> {
    let Some(mid) = slot.as_mut() else { return Ok(()) };
    let aa_name = fanout_name(aa);
    let Some(fd) = open_at(top, name_str(&aa_name))? else {
        *slot = None; // vanished during the scan
        return Ok(());
    };
    let st = nix::sys::stat::fstat(&fd).map_err(errno)?;
    let mt = st_mtime(&st);
    if mid.leaves.is_empty() {
        mid.leaves.resize_with(256, || None);
    }
    if !trusted(mid.mtime, mt) {
        stats.dirs_listed += 1;
        let mut keep = [false; 256];
        for b in list_fanout(&fd)? {
            keep[b as usize] = true;
            mid.leaves[b as usize].get_or_insert_with(LeafDir::default);
        }
        for (i, l) in mid.leaves.iter_mut().enumerate() {
            if !keep[i] {
                *l = None;
            }
        }
        mid.mtime = remember(mt, scan_start);
    } else {
        stats.dirs_skipped += 1;
    }
    for (bb, lslot) in mid.leaves.iter_mut().enumerate() {
        let Some(leaf) = lslot.as_mut() else { continue };
        let bb_name = fanout_name(bb as u8);
        let res = (|| -> io::Result<bool> {
            let Some(st) = stat_at(&fd, name_str(&bb_name))? else {
                return Ok(false);
            };
            let lt = st_mtime(&st);
            if trusted(leaf.mtime, lt) {
                stats.dirs_skipped += 1;
                return Ok(true);
            }
            stats.dirs_listed += 1;
            let Some(lfd) = open_at(&fd, name_str(&bb_name))? else {
                return Ok(false);
            };
            leaf.objects = list_objects(&lfd, aa, bb as u8)?;
            leaf.mtime = remember(lt, scan_start);
            Ok(true)
        })();
        match res {
            Ok(true) => {}
            Ok(false) => *lslot = None,
            Err(e) => {
                // Do not trust anything above a directory we failed on.
                mid.mtime = None;
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Scans `mids[i]` for `aa = first + i`.
pub(super) fn scan_mids<Fd: std::os::fd::AsFd + Copy>(
    top: Fd,
    first: usize,
    mids: &mut [Option<MidDir>],
    scan_start: Mtime,
) -> io::Result<ScanStats> {
    let mut stats = ScanStats::default();
    for (i, slot) in mids.iter_mut().enumerate() {
        scan_mid(top, (first + i) as u8, slot, scan_start, &mut stats)?;
    }
    Ok(stats)
}

impl StoreCache {
    /// Brings the cache up to date with `objects_dir`, listing only the
    /// directories whose mtime changed since the last scan. A missing store
    /// is an empty one (a repository without LFS).
    pub fn scan(&mut self, objects_dir: &Path, scan_start: SystemTime) -> io::Result<ScanStats> {
        let scan_start = to_mtime(scan_start);
        let mut stats = ScanStats::default();
        let top = match nix::fcntl::open(objects_dir, dir_flags(), nix::sys::stat::Mode::empty()) {
            Ok(fd) => fd,
            Err(nix::Error::ENOENT) => {
                *self = StoreCache::default();
                return Ok(stats);
            }
            Err(e) => return Err(errno(e)),
        };
        let top_mt = st_mtime(&nix::sys::stat::fstat(&top).map_err(errno)?);
        if self.mids.is_empty() {
            self.mids.resize_with(256, || None);
        }
        if !trusted(self.top_mtime, top_mt) {
            stats.dirs_listed += 1;
            let mut keep = [false; 256];
            for b in list_fanout(&top)? {
                keep[b as usize] = true;
                self.mids[b as usize].get_or_insert_with(MidDir::default);
            }
            for (i, m) in self.mids.iter_mut().enumerate() {
                if !keep[i] {
                    *m = None;
                }
            }
            self.top_mtime = remember(top_mt, scan_start);
        } else {
            stats.dirs_skipped += 1;
        }
        // Two halves on two threads (this machine class has two cores); a
        // small store is not worth a thread.
        let present = self.mids.iter().filter(|m| m.is_some()).count();
        let res = if present < 64 {
            scan_mids(&top, 0, &mut self.mids, scan_start)
        } else {
            let (lo, hi) = self.mids.split_at_mut(128);
            let top_ref = &top;
            std::thread::scope(|s| {
                let h = s.spawn(move || scan_mids(top_ref, 128, hi, scan_start));
                let a = scan_mids(top_ref, 0, lo, scan_start);
                let b = h
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("store scan thread panicked")));
                let mut sum = a?;
                sum.add(b?);
                Ok(sum)
            })
        };
        match res {
            Ok(s) => {
                stats.add(s);
                Ok(stats)
            }
            Err(e) => {
                self.top_mtime = None;
                Err(e)
            }
        }
    }

    /// Every object seen, as `(oid, size)`.
    pub fn objects(&self) -> impl Iterator<Item = &(Oid, u64)> {
        self.mids
            .iter()
            .flatten()
            .flat_map(|m| m.leaves.iter().flatten())
            .flat_map(|l| l.objects.iter())
    }

    /// Whether the store holds `oid` (any size).
    pub fn contains(&self, oid: &Oid) -> bool {
        self.mids
            .get(oid[0] as usize)
            .and_then(|m| m.as_ref())
            .and_then(|m| m.leaves.get(oid[1] as usize))
            .and_then(|l| l.as_ref())
            .is_some_and(|l| l.objects.iter().any(|(o, _)| o == oid))
    }
}
