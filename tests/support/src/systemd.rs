//! A real systemd 252 as PID 1 in its own namespaces, inside a private copy
//! of a debootstrapped Debian rootfs, for the systemd collector's tests, the
//! remediation actions' tests and the end-to-end suite.
//!
//! - The rootfs is built once by `tests/systemd-rootfs.sh build` and cached as
//!   `<cache>/systemd-rootfs-<hash>.tar.zst` outside the repository (`<cache>`:
//!   `$HOSTMEDIC_TEST_CACHE`, default `/var/cache/hostmedic-test`; `<hash>`
//!   follows the script, so editing it rebuilds). A lock file makes
//!   concurrent test processes (nextest runs one per test) build it once.
//! - Each [`SystemdMachine`] extracts its own copy into a temp dir, writes the
//!   test's units and files, boots it (`systemd-rootfs.sh boot`: pid, mount,
//!   uts, ipc, net and cgroup namespaces, chroot), waits for `SystemState`
//!   `running`/`degraded`, and in `Drop` halts it by PID and removes the
//!   cgroup it made (`systemd-rootfs.sh halt`) and the copy.
//! - Its system bus is `unix:path=/proc/<pid>/root/run/dbus/system_bus_socket`;
//!   [`SystemdMachine::systemctl`] runs `systemctl` inside via `nsenter`.
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The rootfs build/boot/halt script shipped with the tests.
pub fn script() -> PathBuf {
    super::repo_root().join("tests/systemd-rootfs.sh")
}

/// Where the rootfs tarball is cached.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("HOSTMEDIC_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/hostmedic-test"))
}

/// FNV-1a: a hash that is stable across Rust versions (the std hasher is not).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Why the real systemd cannot run here, if it cannot.
pub fn unavailable_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("booting a systemd rootfs needs root".into());
    }
    for tool in ["unshare", "nsenter", "tar", "zstd", "chroot"] {
        if !on_path(tool) {
            return Some(format!("`{tool}` is not installed (scripts/test installs it)"));
        }
    }
    if !Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() && !Path::new("/sys/fs/cgroup/cgroup.procs").exists()
    {
        return Some("no cgroup2 hierarchy at /sys/fs/cgroup(/unified)".into());
    }
    None
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// Path of the cached rootfs tarball, building it first when missing.
pub fn cached_rootfs() -> Result<PathBuf, String> {
    let script_text = fs::read(script()).map_err(|e| format!("reading {}: {e}", script().display()))?;
    let dir = cache_dir();
    fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let tarball = dir.join(format!("systemd-rootfs-{:016x}.tar.zst", fnv(&script_text)));
    if tarball.exists() {
        return Ok(tarball);
    }
    let lock_path = dir.join("systemd-rootfs.lock");
    let lock_file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("locking {}: {e}", lock_path.display()))?;
    // Another process may have built it while we waited for the lock.
    if tarball.exists() {
        return Ok(tarball);
    }
    if !on_path("debootstrap") {
        return Err("`debootstrap` is not installed (scripts/test installs it) and no cached rootfs".into());
    }
    let work = dir.join(format!("build-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let log_path = dir.join("build.log");
    eprintln!(
        "building the systemd test rootfs into {} (log: {})",
        tarball.display(),
        log_path.display()
    );
    let log = fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let rootfs = work.join("rootfs");
    let st = Command::new("bash")
        .arg(script())
        .arg("build")
        .arg(&rootfs)
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .status()
        .map_err(|e| format!("running {}: {e}", script().display()))?;
    if !st.success() {
        let _ = fs::remove_dir_all(&work);
        let tail: String = fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(15).collect();
        return Err(format!(
            "building the rootfs failed ({st}); last log lines:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    let tmp = dir.join(format!("systemd-rootfs.{}.tmp", std::process::id()));
    let st = Command::new("tar")
        .args(["--zstd", "--numeric-owner", "-C"])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tmp)
        .arg(".")
        .status()
        .map_err(|e| e.to_string())?;
    let _ = fs::remove_dir_all(&work);
    if !st.success() {
        let _ = fs::remove_file(&tmp);
        return Err(format!("packing the rootfs failed ({st})"));
    }
    fs::rename(&tmp, &tarball).map_err(|e| e.to_string())?;
    Ok(tarball)
}

/// What to put into the rootfs before booting it.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// `(name, text)` written to `/etc/systemd/system/<name>` (an administrator's unit).
    pub units: Vec<(String, String)>,
    /// `(name, text)` written to `/usr/lib/systemd/system/<name>` (a packaged
    /// unit: the only kind `systemctl mask` can mask without `--force`).
    pub vendor_units: Vec<(String, String)>,
    /// Units pulled in at boot: services by `multi-user.target`, timers by `timers.target`.
    pub enable: Vec<String>,
    /// `(absolute path inside the rootfs, content, mode)`.
    pub files: Vec<(String, String, u32)>,
    /// Users whose user manager starts at boot (`/var/lib/systemd/linger/<user>`).
    pub linger: Vec<String>,
}

impl Spec {
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a unit file (not enabled).
    pub fn unit(mut self, name: &str, text: &str) -> Self {
        self.units.push((name.into(), text.into()));
        self
    }
    /// Adds a unit file and pulls it in at boot.
    pub fn enabled_unit(mut self, name: &str, text: &str) -> Self {
        self.units.push((name.into(), text.into()));
        self.enable.push(name.into());
        self
    }
    /// Adds a packaged unit (under /usr/lib) and pulls it in at boot.
    pub fn enabled_vendor_unit(mut self, name: &str, text: &str) -> Self {
        self.vendor_units.push((name.into(), text.into()));
        self.enable.push(name.into());
        self
    }
    pub fn file(mut self, path: &str, content: &str, mode: u32) -> Self {
        self.files.push((path.into(), content.into(), mode));
        self
    }
    pub fn linger(mut self, user: &str) -> Self {
        self.linger.push(user.into());
        self
    }
}

/// A booted systemd; halted by PID and removed in `Drop`.
pub struct SystemdMachine {
    dir: tempfile::TempDir,
    pid: i32,
    halted: bool,
}

impl SystemdMachine {
    /// Builds (once), extracts, writes `spec`, boots and waits until the
    /// manager reports `running` or `degraded`.
    pub fn boot(spec: Spec) -> Result<SystemdMachine, String> {
        if let Some(why) = unavailable_reason() {
            return Err(why);
        }
        let tarball = cached_rootfs()?;
        let dir = tempfile::Builder::new()
            .prefix("hostmedic-systemd-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let rootfs = dir.path().join("rootfs");
        fs::create_dir_all(&rootfs).map_err(|e| e.to_string())?;
        let st = Command::new("tar")
            .args(["--zstd", "--numeric-owner", "-xpf"])
            .arg(&tarball)
            .arg("-C")
            .arg(&rootfs)
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err(format!("extracting {} failed ({st})", tarball.display()));
        }
        write_spec(&rootfs, &spec)?;
        let out = Command::new("bash")
            .arg(script())
            .arg("boot")
            .env("ROOT", dir.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        let pid: i32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| format!("boot failed: {}", String::from_utf8_lossy(&out.stderr)))?;
        let mut m = SystemdMachine {
            dir,
            pid,
            halted: false,
        };
        m.wait_running(Duration::from_secs(60))?;
        Ok(m)
    }

    /// Host PID of the machine's systemd (PID 1 inside).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The machine's root as seen from the host (mounts included).
    pub fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid))
    }

    /// The extracted rootfs directory on the host (no /run, /proc mounts).
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// D-Bus address of the machine's system bus.
    /// hostmedic config for a scenario on this machine: `[systemd]` on its
    /// system bus (user managers looked up inside its rootfs) expecting
    /// `expect`; docker and processes off (not part of systemd scenarios);
    /// the units' cgroups read under the machine's own cgroup (`cgroup_root`).
    pub fn hostmedic_section(&self, expect: &[&str]) -> String {
        // A newline first: the text is appended to other config text.
        let section = crate::config::TestConfig::new()
            .disable(&["docker", "processes"])
            .section("systemd", |s| {
                s.set("bus_address", self.bus_address())
                    .path("user_runtime_dir", self.root().join("run/user"))
                    .path("passwd_file", self.rootfs().join("etc/passwd"))
                    .strings("expect", expect)
                    .path("cgroup_root", self.cgroup());
            })
            .render();
        format!("\n{section}")
    }

    /// The actions' environment reaching this machine: its system bus, the
    /// user managers under its `/run/user`, its passwd file.
    pub fn action_env(&self) -> hostmedic::actions::ActionEnv {
        hostmedic::actions::ActionEnv {
            system_bus: Some(self.bus_address()),
            user_runtime_dir: self.root().join("run/user"),
            passwd_file: self.rootfs().join("etc/passwd"),
            ..hostmedic::actions::ActionEnv::default()
        }
    }

    /// `[receiver.evidence]` reading this machine's journal files (its
    /// journald writes them below its root: `/run/log/journal`, then
    /// `/var/log/journal` once flushed), appended to a config.
    pub fn evidence_section(&self) -> String {
        // Renders as `[receiver.evidence]` alone (no `[receiver]` header), so
        // it may stand before the shipped map's own `[receiver]`.
        crate::config::TestConfig::new()
            .section("receiver", |r| {
                r.table("evidence", |e| {
                    e.path("journal_root", self.root());
                });
            })
            .render()
    }

    pub fn bus_address(&self) -> String {
        format!("unix:path=/proc/{}/root/run/dbus/system_bus_socket", self.pid)
    }

    /// The machine's console output so far (systemd logs to the console).
    pub fn console(&self) -> String {
        fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    /// Host cgroup (v2) directory holding the whole machine.
    pub fn cgroup(&self) -> PathBuf {
        PathBuf::from(
            fs::read_to_string(self.dir.path().join("cgroup"))
                .unwrap_or_default()
                .trim(),
        )
    }

    /// Host PIDs in the machine's cgroup `rel` (e.g. `system.slice/dbus.service`).
    pub fn cgroup_pids(&self, rel: &str) -> Vec<i32> {
        fs::read_to_string(self.cgroup().join(rel).join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Runs a command inside the machine (its namespaces and root).
    /// `systemctl --user ARGS` as `user` (uid `uid`) inside the machine,
    /// against that user's manager.
    pub fn systemctl_user(&self, user: &str, uid: u32, args: &[&str]) -> Output {
        let runtime = format!("XDG_RUNTIME_DIR=/run/user/{uid}");
        let mut argv = vec![
            "runuser",
            "-u",
            user,
            "--",
            "env",
            runtime.as_str(),
            "systemctl",
            "--user",
        ];
        argv.extend_from_slice(args);
        self.exec(&argv)
    }

    pub fn exec(&self, argv: &[&str]) -> Output {
        let pid = self.pid.to_string();
        Command::new("nsenter")
            .args(["-t", &pid, "-m", "-u", "-i", "-n", "-p", "-r", "-w", "--"])
            .args(argv)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    /// `systemctl <args>` inside the machine; returns (success, stdout+stderr).
    pub fn systemctl(&self, args: &[&str]) -> (bool, String) {
        let mut argv = vec!["systemctl"];
        argv.extend_from_slice(args);
        let out = self.exec(&argv);
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    /// `systemctl show -p <prop> --value <unit>`.
    pub fn show(&self, unit: &str, prop: &str) -> String {
        self.systemctl(&["show", "-p", prop, "--value", unit])
            .1
            .trim()
            .to_string()
    }

    /// Waits for `systemctl is-system-running` to say running or degraded.
    pub fn wait_running(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let mut last = String::new();
        while Instant::now() < deadline {
            if nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), None).is_err() {
                return Err(format!("systemd exited during boot; console:\n{}", self.console()));
            }
            let (_, out) = self.systemctl(&["is-system-running"]);
            last = out.trim().to_string();
            if last == "running" || last == "degraded" {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "systemd not running after {within:?} (last state {last:?}); console:\n{}",
            self.console()
        ))
    }

    /// Waits until `f` holds, polling every 100 ms.
    pub fn wait_for(&self, within: Duration, what: &str, f: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + within;
        while !f(self) {
            if Instant::now() > deadline {
                panic!("timed out after {within:?} waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Halts by PID (SIGRTMIN+4, then SIGKILL) and removes the cgroup.
    pub fn halt(&mut self) {
        if self.halted {
            return;
        }
        self.halted = true;
        let _ = Command::new("bash")
            .arg(script())
            .arg("halt")
            .env("ROOT", self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for SystemdMachine {
    fn drop(&mut self) {
        // Resume anything a test froze, so the poweroff is not held up.
        for pid in self.cgroup_pids("system.slice/dbus.service") {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGCONT);
        }
        self.halt();
        // The temp dir (the rootfs copy) is removed when `dir` drops.
    }
}

fn write_spec(rootfs: &Path, spec: &Spec) -> Result<(), String> {
    let etc = rootfs.join("etc/systemd/system");
    for (name, text) in &spec.units {
        fs::write(etc.join(name), text).map_err(|e| format!("writing unit {name}: {e}"))?;
    }
    let lib = rootfs.join("usr/lib/systemd/system");
    for (name, text) in &spec.vendor_units {
        fs::write(lib.join(name), text).map_err(|e| format!("writing unit {name}: {e}"))?;
    }
    for name in &spec.enable {
        let wants = if name.ends_with(".timer") {
            "timers.target.wants"
        } else {
            "multi-user.target.wants"
        };
        let d = etc.join(wants);
        fs::create_dir_all(&d).map_err(|e| e.to_string())?;
        let _ = fs::remove_file(d.join(name));
        let target = if spec.vendor_units.iter().any(|(n, _)| n == name) {
            format!("/usr/lib/systemd/system/{name}")
        } else {
            format!("../{name}")
        };
        std::os::unix::fs::symlink(target, d.join(name)).map_err(|e| e.to_string())?;
    }
    for (path, content, mode) in &spec.files {
        let p = rootfs.join(path.trim_start_matches('/'));
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        let mut f = fs::File::create(&p).map_err(|e| format!("writing {path}: {e}"))?;
        f.write_all(content.as_bytes()).map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).map_err(|e| e.to_string())?;
    }
    if !spec.linger.is_empty() {
        let d = rootfs.join("var/lib/systemd/linger");
        fs::create_dir_all(&d).map_err(|e| e.to_string())?;
        for u in &spec.linger {
            fs::write(d.join(u), "").map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Boots `spec`, or returns `None` after printing why when the real systemd
/// is unavailable outside CI (inside CI, panics).
pub fn boot_or_skip(spec: Spec) -> Option<SystemdMachine> {
    match SystemdMachine::boot(spec) {
        Ok(m) => Some(m),
        Err(why) => {
            super::skip_or_fail(&format!("real systemd unavailable: {why}"));
            None
        }
    }
}
