//! Build metadata for `hostmedic --version`: the Git revision of the
//! checkout and the build date (UTC). A build outside a Git checkout (a
//! release tarball) says "unknown" for the revision; `SOURCE_DATE_EPOCH`
//! (reproducible builds) fixes the date.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn main() {
    let revision = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=HOSTMEDIC_GIT_REVISION={revision}");
    let when = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
        .unwrap_or_else(SystemTime::now);
    let date = humantime::format_rfc3339_seconds(when).to_string();
    println!("cargo:rustc-env=HOSTMEDIC_BUILD_DATE={}", &date[..10]);
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // A new commit or checkout changes HEAD or the ref it points to.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        if let (Some(r), Some(common)) = (
            git(&["symbolic-ref", "-q", "HEAD"]),
            git(&["rev-parse", "--git-common-dir"]),
        ) {
            println!("cargo:rerun-if-changed={common}/{r}");
        }
    }
}

/// The trimmed output of a successful `git` command, run in the package.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
