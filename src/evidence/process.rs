//! Evidence about a process: command line, user, state, runtime, CPU time
//! (and its average share since start), resident memory, threads, the
//! cgroup it runs in and the unit (on its manager) or container that owns
//! it ([`crate::cgroup::parse_owner`]), from the procfs leaf
//! ([`crate::procfs`]) under the configured `procfs_root`.

use super::Item;
use crate::actions::ActionEnv;
use crate::procfs;

pub fn capture(env: &ActionEnv, pid: i32) -> Item {
    let mut item = Item::new(format!("pid:{pid}"), "process");
    item.look_further = format!("ps -o pid,user,etime,pcpu,rss,args -p {pid}; cat /proc/{pid}/cgroup");
    let root = env.procfs_root.as_path();
    let stat = match procfs::read_stat(root, pid) {
        Ok(s) => s,
        Err(e) => {
            item.errors.push(format!("process: {e}"));
            return item;
        }
    };
    item.fact("state", stat.state);
    item.fact("comm", &stat.comm);
    let cmdline = procfs::read_cmdline(root, pid);
    item.fact(
        "cmdline",
        if cmdline.is_empty() {
            format!("[{}]", stat.comm)
        } else {
            cmdline
        },
    );
    let passwd = crate::users::Users::load(&env.passwd_file);
    if let Some(uid) = procfs::read_euid(root, pid) {
        item.fact(
            "user",
            passwd
                .name(uid)
                .map(|n| format!("{n} ({uid})"))
                .unwrap_or_else(|| uid.to_string()),
        );
    }
    let hz = procfs::clock_ticks_per_second().unwrap_or(100).max(1);
    let cpu = stat.cpu_ticks as f64 / hz as f64;
    item.fact("cpu_seconds", format!("{cpu:.1}"));
    match procfs::start_time_seconds(root, pid) {
        Ok(start) => {
            let runtime = (crate::time::now() - start).max(0.0);
            item.fact("started", crate::time::rfc3339_seconds(start));
            item.fact(
                "runtime",
                humantime::format_duration(std::time::Duration::from_secs(runtime as u64)),
            );
            if runtime > 0.0 {
                item.fact("cpu_average", format!("{:.0}%", 100.0 * cpu / runtime));
            }
        }
        Err(e) => item.errors.push(format!("start time: {e}")),
    }
    if let Ok(page) = procfs::page_size() {
        item.fact("rss", crate::bytes::ByteSize(stat.rss_pages * page).human());
    }
    item.fact("threads", stat.threads);
    match procfs::read_cgroup(root, pid as i64) {
        Ok(text) => {
            // Who owns it: its unit (on its manager) and its container.
            let owner = crate::cgroup::parse_owner(&text, &passwd);
            if let (Some(m), Some(u)) = (&owner.manager, &owner.unit) {
                item.fact("unit", format!("{u} ({m})"));
            }
            if let Some(id) = &owner.container_id {
                item.fact("container", id);
            }
            // cgroup v2: one `0::<path>` line; v1: the name=systemd hierarchy.
            let path = text.lines().find_map(|l| l.strip_prefix("0::")).or_else(|| {
                text.lines()
                    .find_map(|l| l.split_once(":name=systemd:").map(|(_, p)| p))
            });
            if let Some(p) = path {
                item.fact("cgroup", p.trim());
            }
        }
        Err(e) => item.errors.push(format!("cgroup: {e}")),
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_from_a_fixture_procfs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("4242");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(
            p.join("stat"),
            "4242 (python3) R 1 4242 4242 0 -1 4194304 0 0 0 0 500 100 0 0 20 0 1 0 100 1000000 256 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
        )
        .unwrap();
        std::fs::write(p.join("cmdline"), "python3\0worker.py\0").unwrap();
        std::fs::write(
            p.join("cgroup"),
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/bot.service\n",
        )
        .unwrap();
        std::fs::write(p.join("status"), "Name:\tpython3\nUid:\t1000\t1000\t1000\t1000\n").unwrap();
        std::fs::write(dir.path().join("stat"), "cpu 1 2 3\nbtime 1700000000\n").unwrap();
        let passwd = dir.path().join("passwd");
        std::fs::write(&passwd, "medic:x:1000:1000::/home/medic:/bin/sh\n").unwrap();
        let env = ActionEnv {
            procfs_root: dir.path().to_path_buf(),
            passwd_file: passwd,
            ..ActionEnv::default()
        };
        let item = capture(&env, 4242);
        assert_eq!(item.facts["cmdline"], "python3 worker.py");
        assert_eq!(item.facts["user"], "medic (1000)");
        assert_eq!(item.facts["unit"], "bot.service (user:medic)");
        assert_eq!(item.facts["cpu_seconds"], "6.0");
        assert!(item.facts["cgroup"].ends_with("app.slice/bot.service"));
    }

    #[test]
    fn own_process_is_described() {
        let env = ActionEnv::default();
        let item = capture(&env, std::process::id() as i32);
        assert!(item.errors.is_empty(), "{:?}", item.errors);
        assert!(item.facts["cmdline"].contains("hostmedic"), "{:?}", item.facts);
        for k in ["user", "runtime", "cpu_seconds", "rss", "threads", "started"] {
            assert!(item.facts.contains_key(k), "{k}: {:?}", item.facts);
        }
        let gone = capture(&env, 4_194_304);
        assert!(!gone.errors.is_empty());
    }
}
