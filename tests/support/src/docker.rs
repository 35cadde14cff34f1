//! A private Docker engine per test, isolated from the host's own engine:
//! Debian's `dockerd` with its own data-root, exec-root, pidfile and socket in
//! a fresh temp dir, no iptables/bridge/forwarding changes, and a busybox image
//! (`hostmedic-test/busybox`, every applet linked under /bin) imported from
//! Debian's static busybox, since no registry is reachable.
//!
//! Each nextest test is its own process and tests run concurrently, so several
//! engines may run at once. They do not collide: every path is under the
//! test's own temp dir (short, `/tmp/hmdXXXXXX`, so the engine's and its
//! containerd's sockets stay far below the 108-byte limit), and each dockerd
//! starts its own managed containerd (config, socket, shim sockets and runc
//! root under that engine's exec-root/data-root) because no system containerd
//! runs at `/run/containerd/containerd.sock`. Container cgroups go under a
//! per-engine `--cgroup-parent` (`/hmdXXXXXX`, the temp dir's name), so that
//! cleaning one engine's cgroups never races another engine creating
//! containers; this, and force-removing the containers before stopping (so
//! `Drop` does not wait 10 s per `sleep` container), are the only departures
//! from the recipe.
//!
//! The engine is a direct child of the test process; it is stopped by its PID
//! (SIGTERM, SIGKILL after 30 s) in `Drop`, and its cgroup dirs are removed.
//! [`PrivateEngine::stop`] / [`PrivateEngine::start`] stop and restart the same
//! engine (same data) for "engine stopped mid-run" cases.
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The image every test container uses: all busybox applets under /bin.
pub const BUSYBOX_IMAGE: &str = "hostmedic-test/busybox";

const BUSYBOX: &str = "/bin/busybox";

pub struct PrivateEngine {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The engine's API socket.
    pub sock: PathBuf,
}

/// Why a private engine cannot run here (not root, packages missing), or None.
pub fn unavailable_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("a private dockerd needs root".into());
    }
    for (bin, pkg) in [
        ("dockerd", "docker.io"),
        ("docker", "docker.io"),
        ("containerd", "containerd"),
        ("tar", "tar"),
    ] {
        if which(bin).is_none() {
            return Some(format!("{bin} not found (apt package {pkg})"));
        }
    }
    if !Path::new(BUSYBOX).exists() {
        return Some(format!("{BUSYBOX} not found (apt package busybox-static)"));
    }
    None
}

fn which(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .chain(
            ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                .iter()
                .map(|d| Path::new(d).join(bin)),
        )
        .find(|p| p.is_file())
}

impl PrivateEngine {
    /// Starts a private engine with the busybox image, or returns `None`
    /// after `skip_or_fail` (outside CI, where it cannot run; inside CI it panics).
    pub fn start_or_skip() -> Option<PrivateEngine> {
        if let Some(why) = unavailable_reason() {
            super::skip_or_fail(&why);
            return None;
        }
        Some(PrivateEngine::new())
    }

    /// Starts a private engine and imports the busybox image; panics (with the
    /// engine's log) if it does not come up within 90 s.
    pub fn new() -> PrivateEngine {
        let dir = tempfile::Builder::new()
            .prefix("hmd")
            .tempdir_in("/tmp")
            .expect("temp dir for dockerd");
        let sock = dir.path().join("docker.sock");
        let mut e = PrivateEngine { dir, child: None, sock };
        e.start();
        e.import_busybox();
        e
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `unix:///tmp/hmd…/docker.sock`, for `DOCKER_HOST` or `[docker] host`.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// PID of the running dockerd, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The cgroup parent of this engine's containers, `/hmdXXXXXX` (the temp
    /// dir's name): `/sys/fs/cgroup/<controller>/hmdXXXXXX/<id>` on cgroup v1.
    pub fn cgroup_parent(&self) -> String {
        format!("/{}", self.root().file_name().unwrap().to_string_lossy())
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root().join("dockerd.log")).unwrap_or_default()
    }

    /// (Re)starts dockerd on the same roots and waits for `_ping`.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "engine already running");
        let r = self.root().to_path_buf();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(r.join("dockerd.log"))
            .expect("dockerd log");
        let child = Command::new(which("dockerd").expect("dockerd"))
            .arg(format!("--data-root={}", r.join("data").display()))
            .arg(format!("--exec-root={}", r.join("exec").display()))
            .arg(format!("--pidfile={}", r.join("dockerd.pid").display()))
            .arg(format!("--cgroup-parent={}", self.cgroup_parent()))
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--bridge=none",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn dockerd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(90);
        while !self.ping() {
            if let Some(st) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                panic!("dockerd exited with {st} before answering; log:\n{}", self.log());
            }
            if Instant::now() > deadline {
                self.stop();
                panic!("dockerd did not answer _ping within 90 s; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `GET /_ping` on the socket; true on `200 OK`.
    pub fn ping(&self) -> bool {
        let Ok(mut s) = UnixStream::connect(&self.sock) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n").is_err() {
            return false;
        }
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf);
        buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200")
    }

    /// Stops dockerd by its PID: SIGTERM (the engine stops its containers and
    /// its containerd), SIGKILL after 30 s. The data stays for [`Self::start`].
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                // Its managed containerd, by the PID it recorded.
                let cpid = self.root().join("exec/containerd/containerd.pid");
                if let Some(p) = std::fs::read_to_string(cpid)
                    .ok()
                    .and_then(|s| s.trim().parse::<i32>().ok())
                {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs the docker CLI against this engine.
    pub fn docker_output(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .env("DOCKER_HOST", self.docker_host())
            .env("DOCKER_CONFIG", self.root().join("cli"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker CLI")
    }

    /// Runs the docker CLI; panics with its stderr on failure; returns trimmed stdout.
    pub fn docker(&self, args: &[&str]) -> String {
        let out = self.docker_output(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `docker run -d <args>`; returns the container id.
    pub fn run_detached(&self, args: &[&str]) -> String {
        let mut a = vec!["run", "-d"];
        a.extend_from_slice(args);
        self.docker(&a)
    }

    /// A container that runs out of memory: a second after start, busybox
    /// `tail` keeps the newline-free /dev/zero "line" in memory until the
    /// kernel kills it under `limit` (no swap): exit 137, OOM-killed. The
    /// second matters: an OOM kill within the first milliseconds can beat
    /// the engine's OOM watch, and the engine then reports exit 137 with
    /// OOMKilled false (seen on 20.10 under load).
    pub fn run_oom_hog(&self, name: &str, limit: &str) -> String {
        let (mem, swap) = (format!("--memory={limit}"), format!("--memory-swap={limit}"));
        self.run_detached(&[
            "--name",
            name,
            &mem,
            &swap,
            BUSYBOX_IMAGE,
            "sh",
            "-c",
            "sleep 1; exec tail /dev/zero",
        ])
    }

    /// Builds `FROM scratch` plus one file of `bytes` pseudo-random bytes
    /// (from `seed`) with BuildKit and tags it `tag`: an image layer and a
    /// build cache record of about that size. Building the same tag again
    /// with another seed leaves the first image dangling. Uses the docker.io
    /// CLI (`/usr/bin/docker`, 20.10), whose `docker build` speaks BuildKit
    /// itself; a newer CLI needs the buildx plugin for that.
    pub fn build_blob_image(&self, tag: &str, bytes: usize, seed: u64) {
        let ctx = self.root().join(format!("ctx-{seed}"));
        std::fs::create_dir_all(&ctx).unwrap();
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let blob: Vec<u8> = (0..bytes)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(ctx.join("blob"), blob).unwrap();
        std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY blob /blob\n").unwrap();
        let cli = if Path::new("/usr/bin/docker").exists() {
            "/usr/bin/docker"
        } else {
            "docker"
        };
        let out = Command::new(cli)
            .env("DOCKER_HOST", self.docker_host())
            .env("DOCKER_CONFIG", self.root().join("cli"))
            .env("DOCKER_BUILDKIT", "1")
            .args(["build", "-q", "-t", tag])
            .arg(&ctx)
            .stdin(Stdio::null())
            .output()
            .expect("docker build");
        assert!(
            out.status.success(),
            "docker build of {tag} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(&ctx);
    }

    /// `docker inspect -f <format> <container>`.
    pub fn inspect(&self, container: &str, format: &str) -> String {
        self.docker(&["inspect", "-f", format, container])
    }

    /// Imports a rootfs with the static busybox and a symlink per applet.
    fn import_busybox(&self) {
        let bb = self.root().join("bbroot");
        let bin = bb.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(bb.join("tmp")).unwrap();
        std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
        let list = Command::new(BUSYBOX).arg("--list").output().expect("busybox --list");
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            // "busybox" itself is in the list: linking it would replace the binary.
            if applet.is_empty() || applet == "busybox" || applet.contains('/') {
                continue;
            }
            let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
        }
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(&bb)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .expect("tar");
        let out = Command::new("docker")
            .env("DOCKER_HOST", self.docker_host())
            .env("DOCKER_CONFIG", self.root().join("cli"))
            .args(["import", "-", BUSYBOX_IMAGE])
            .stdin(tar.stdout.take().expect("tar stdout"))
            .output()
            .expect("docker import");
        let tar_status = tar.wait().expect("tar exit");
        assert!(tar_status.success(), "tar of the busybox rootfs failed: {tar_status}");
        assert!(
            out.status.success(),
            "docker import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(&bb);
    }
}

impl Default for PrivateEngine {
    fn default() -> Self {
        PrivateEngine::new()
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if self.child.is_some() {
            let out = self.docker_output(&["ps", "-aq", "--no-trunc"]);
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                // Kill now rather than wait for each container's stop timeout.
                let mut args = vec!["rm", "-f"];
                args.extend(ids.iter().map(String::as_str));
                let _ = self.docker_output(&args);
            }
        }
        self.stop();
        // This engine's cgroup parent and its container leaves (runc removes
        // the leaves itself; this is for an engine that had to be killed).
        let name = self.cgroup_parent();
        let name = name.trim_start_matches('/');
        if let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") {
            let mut roots: Vec<PathBuf> = controllers.filter_map(|e| e.ok().map(|e| e.path())).collect();
            roots.push(PathBuf::from("/sys/fs/cgroup"));
            for root in roots {
                let parent = root.join(name);
                if let Ok(leaves) = std::fs::read_dir(&parent) {
                    for leaf in leaves.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()) {
                        let _ = std::fs::remove_dir(leaf.path());
                    }
                }
                let _ = std::fs::remove_dir(&parent);
            }
        }
    }
}
