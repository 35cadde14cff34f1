//! `exec` actions with `user` / `group`: the child really runs under the
//! uid/gid the names resolve to (a file it creates is owned by them, its
//! supplementary groups are cleared), unknown names fail at run time with
//! the name and the file in the outcome, bad syntax fails at config time
//! naming the key. Needs root (to switch users), as the service has.

use crate::common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::config::Action;
use hostmedic::actions::{ActionEnv, ActionSpec, Alert, Context, Outcome, OutcomeResult, exec::Accounts};

/// `{ type = "exec", argv = [prog], <keys> }` as a rule's action reads.
fn spec(prog: &str, keys: &[(&str, &str)]) -> ActionSpec {
    keys.iter().fold(Action::exec([prog]), |a, (k, v)| a.set(k, *v)).spec()
}

/// Compiles, resolves and runs `s` for an empty alert in `env`.
async fn run(s: &ActionSpec, env: &ActionEnv) -> Outcome {
    let alert = Alert::default();
    s.compile("test.action", &Context::default())
        .expect("valid spec")
        .resolve(&alert)
        .unwrap()
        .run(&alert, env)
        .await
}

fn script(dir: &Path, body: &str) -> String {
    let p = dir.join("as-user.sh");
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

/// A 0755 directory holding the script and a 0777 `out/` any user can write.
fn world_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

fn uid_gid_of(passwd: &str, name: &str) -> (u32, u32) {
    let text = std::fs::read_to_string(passwd).unwrap();
    let line = text.lines().find(|l| l.starts_with(&format!("{name}:"))).unwrap();
    let f: Vec<&str> = line.split(':').collect();
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}

#[tokio::test]
async fn exec_as_nobody_nogroup_creates_files_owned_by_them() {
    if !nix::unistd::geteuid().is_root() && common::skip_or_fail("switching users needs root") {
        return;
    }
    let (nobody_uid, _) = uid_gid_of("/etc/passwd", "nobody");
    let nogroup_gid = std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("nogroup:x:"))
        .and_then(|rest| rest.split(':').next()?.parse::<u32>().ok())
        .expect("nogroup in /etc/group");
    let dir = world_dir();
    let made = dir.path().join("out/made-by-exec");
    let prog = script(dir.path(), &format!("touch {}; id -u; id -g; id -G", made.display()));
    let s = spec(&prog, &[("user", "nobody"), ("group", "nogroup"), ("timeout", "10s")]);
    s.compile("receiver.rules[0].actions[0]", &Context::default())
        .expect("valid");
    let o = run(&s, &ActionEnv::default()).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    let meta = std::fs::metadata(&made).expect("the command created the file");
    assert_eq!((meta.uid(), meta.gid()), (nobody_uid, nogroup_gid));
    // stdout: uid, gid, then all groups: the supplementary ones are cleared.
    let want = format!("stdout:\n{nobody_uid}\n{nogroup_gid}\n{nogroup_gid}\n");
    assert!(o.detail.contains(&want), "want {want:?} in {}", o.detail);
    assert!(
        o.detail.contains(&format!("as uid {nobody_uid} gid {nogroup_gid}")),
        "{}",
        o.detail
    );

    // `user` alone: the user's primary group from the passwd file.
    std::fs::remove_file(&made).unwrap();
    let s = spec(&prog, &[("user", "nobody")]);
    let o = run(&s, &ActionEnv::default()).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    let (_, primary) = uid_gid_of("/etc/passwd", "nobody");
    assert_eq!(std::fs::metadata(&made).unwrap().gid(), primary);

    // No user/group: hostmedic's own (root here), as before.
    std::fs::remove_file(&made).unwrap();
    let s = spec(&prog, &[]);
    let o = run(&s, &ActionEnv::default()).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    let meta = std::fs::metadata(&made).unwrap();
    assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
}

#[tokio::test]
async fn unknown_user_or_group_fails_at_run_time_and_runs_nothing() {
    let dir = world_dir();
    std::fs::write(
        dir.path().join("passwd"),
        "root:x:0:0::/root:/bin/sh\ndb:x:2001:2001::/srv/db:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("group"), "root:x:0:\ndb:x:2001:\n").unwrap();
    let env = ActionEnv {
        exec_accounts: Accounts {
            passwd_file: dir.path().join("passwd"),
            group_file: dir.path().join("group"),
        },
        ..ActionEnv::default()
    };
    let made = dir.path().join("out/ran");
    let prog = script(dir.path(), &format!("touch {}", made.display()));
    for (keys, want) in [
        (
            &[("user", "postgres")][..],
            format!("user \"postgres\" is not in {}", dir.path().join("passwd").display()),
        ),
        (
            &[("user", "db"), ("group", "wheel")][..],
            format!("group \"wheel\" is not in {}", dir.path().join("group").display()),
        ),
    ] {
        let s = spec(&prog, keys);
        s.compile("r.a", &Context::default()).expect("syntax is fine");
        let o = run(&s, &env).await;
        assert_eq!(o.result, OutcomeResult::Failed, "{}", o.detail);
        assert!(o.detail.contains(&want), "want {want:?} in {}", o.detail);
        assert!(!made.exists(), "nothing may run for an unknown account");
    }
    // Dry run resolves the names too, so a typo shows before going live.
    let dry = ActionEnv {
        dry_run: true,
        ..env.clone()
    };
    let s = spec(&prog, &[("user", "db")]);
    let o = run(&s, &dry).await;
    assert_eq!(o.result, OutcomeResult::DryRun, "{}", o.detail);
    assert!(o.detail.contains("as uid 2001 gid 2001"), "{}", o.detail);
}

#[test]
fn bad_user_or_group_syntax_fails_at_config_time_naming_the_key() {
    for (keys, key) in [
        (("user", "db admin"), "r.a.user"),
        (("user", ""), "r.a.user"),
        (("group", "4294967295"), "r.a.group"),
        (("group", "-x"), "r.a.group"),
    ] {
        let s = spec("/bin/true", &[keys]);
        let e = s.compile("r.a", &Context::default()).unwrap_err().to_string();
        assert!(e.contains(key), "{keys:?}: {e}");
    }
}
