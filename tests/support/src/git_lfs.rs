//! Real Git LFS repositories for the git_lfs tests, made with Debian's `git`
//! and `git-lfs` in an isolated environment (own HOME, no system config).
//!
//! Small objects go through `git lfs track` + `git add`; objects over the
//! 2 GiB limit are sparse files written straight into
//! `.git/lfs/objects/<oid[0:2]>/<oid[2:4]>/<oid>` with a hand-written pointer
//! committed for them (a `git add` of 3 GiB would take ~27 s and real disk).
//!
//! Used by tests/component/git_lfs.rs and benches/git_lfs.rs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// True when `git` and `git lfs` both run (skip_or_fail otherwise).
pub fn tools_present() -> bool {
    let ok = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    ok(&["--version"]) && ok(&["lfs", "version"])
}

/// A repository under a test directory; `home` isolates git's global config.
pub struct Repo {
    pub dir: PathBuf,
    home: PathBuf,
}

impl Repo {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("git");
        c.current_dir(&self.dir)
            .args(args)
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "hostmedic test")
            .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
            .env("GIT_COMMITTER_NAME", "hostmedic test")
            .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE");
        c
    }

    /// Runs git and returns its stdout; panics with stderr on failure.
    pub fn git(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().expect("run git");
        assert!(
            out.status.success(),
            "git {args:?} in {}: {}",
            self.dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `git init` (no LFS).
    pub fn init(dir: &Path) -> Repo {
        std::fs::create_dir_all(dir).unwrap();
        let home = dir.with_extension("home");
        std::fs::create_dir_all(&home).unwrap();
        let r = Repo {
            dir: dir.to_path_buf(),
            home,
        };
        r.git(&["init", "-q", "-b", "main"]);
        r
    }

    /// `git init` + `git lfs install --local` + `git lfs track` of the patterns.
    pub fn init_lfs(dir: &Path, patterns: &[&str]) -> Repo {
        let r = Repo::init(dir);
        r.git(&["lfs", "install", "--local"]);
        for p in patterns {
            r.git(&["lfs", "track", p]);
        }
        r.git(&["add", ".gitattributes"]);
        r
    }

    pub fn write(&self, rel: &str, content: &[u8]) {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// Adds files and commits them.
    pub fn commit(&self, paths: &[&str], msg: &str) {
        let mut args = vec!["add", "--"];
        args.extend_from_slice(paths);
        self.git(&args);
        self.git(&["commit", "-q", "-m", msg]);
    }

    pub fn objects_dir(&self) -> PathBuf {
        self.dir.join(".git/lfs/objects")
    }

    /// Puts a sparse object of `size` bytes straight into the store (oid =
    /// SHA-256 of `seed`, as real oids are hex SHA-256) and returns its oid.
    pub fn sparse_object(&self, seed: &str, size: u64) -> String {
        let oid = sha256_hex(seed.as_bytes());
        let d = self.objects_dir().join(&oid[0..2]).join(&oid[2..4]);
        std::fs::create_dir_all(&d).unwrap();
        let f = std::fs::File::create(d.join(&oid)).unwrap();
        f.set_len(size).unwrap();
        oid
    }

    /// Writes a hand-written pointer file at `rel` (not committed).
    pub fn pointer(&self, rel: &str, oid: &str, size: u64) {
        self.write(
            rel,
            format!("version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n").as_bytes(),
        );
    }
}

/// SHA-256 through coreutils' `sha256sum` (no hashing crate needed).
pub fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

/// The store's oid for `content` as git-lfs computes it.
pub fn oid_of(content: &[u8]) -> String {
    sha256_hex(content)
}

/// Sets every directory's mtime an hour back, as if the store were old.
pub fn age_dirs(dir: &Path) {
    let old = (std::time::SystemTime::now() - Duration::from_secs(3600))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ts = nix::sys::time::TimeSpec::new(old, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &d,
            &ts,
            &ts,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }
}
