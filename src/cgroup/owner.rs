//! Who owns a process: the systemd unit (and its manager) and the Docker
//! container named by `/proc/<pid>/cgroup`, for the processes collector's
//! owner labels and the incident evidence.

use std::collections::BTreeMap;
use std::path::Path;

use super::{CgroupLine, parse_proc_cgroup};
use crate::users::Users;

/// Who owns a process: its systemd unit (and that unit's manager) and its
/// Docker container, from `/proc/<pid>/cgroup`. Each part is `None` when the
/// path names none.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Owner {
    /// `system`, or `user:<name>` (`user:<uid>` when the uid has no passwd
    /// entry) for units of a user manager: the systemd collector's
    /// `manager` label.
    pub manager: Option<String>,
    /// The unit, e.g. `nginx.service`, `session-3.scope`,
    /// `docker-<id>.scope`.
    pub unit: Option<String>,
    /// Full (64 hex) Docker container id.
    pub container_id: Option<String>,
}

/// The owner of process `pid` (blocking; one read of `<procfs>/<pid>/cgroup`);
/// `passwd` names the users of user managers. `None` when the file cannot be
/// read (the process is gone).
pub fn owner(procfs: &Path, pid: i32, passwd: &Users) -> Option<Owner> {
    owner_below(procfs, pid, "/", passwd)
}

/// [`owner`], naming units only below the cgroup `root` (a path as
/// `/proc/<pid>/cgroup` shows it, e.g. `/lxc.payload.web`: the cgroup of a
/// machine or container whose own systemd owns the units; `/`: this host's
/// systemd). Units are named relative to `root`; a process outside it has no
/// unit (its container is still named).
pub fn owner_below(procfs: &Path, pid: i32, root: &str, passwd: &Users) -> Option<Owner> {
    let text = crate::procfs::read_cgroup(procfs, i64::from(pid)).ok()?;
    Some(parse_owner_below(&text, root, passwd))
}

/// [`owner`] from the text of `/proc/<pid>/cgroup`.
pub fn parse_owner(text: &str, passwd: &Users) -> Owner {
    parse_owner_below(text, "/", passwd)
}

/// `path` relative to `root`, component-wise (`None`: not below it).
fn strip_root<'a>(path: &'a str, root: &str) -> Option<&'a str> {
    let root = root.trim_matches('/');
    if root.is_empty() {
        return Some(path);
    }
    let rest = path.trim_start_matches('/').strip_prefix(root)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// [`owner_below`] from the text of `/proc/<pid>/cgroup`. The unit comes
/// from the v2 line, else systemd's named v1 tree (`name=systemd`), else any
/// line; the container from the first line naming one.
pub fn parse_owner_below(text: &str, root: &str, passwd: &Users) -> Owner {
    let lines = parse_proc_cgroup(text);
    let mut ordered: Vec<&CgroupLine> = Vec::with_capacity(lines.len());
    ordered.extend(lines.iter().filter(|l| l.controllers.is_empty()));
    ordered.extend(lines.iter().filter(|l| l.controllers == "name=systemd"));
    ordered.extend(
        lines
            .iter()
            .filter(|l| !l.controllers.is_empty() && l.controllers != "name=systemd"),
    );
    let mut o = Owner::default();
    for l in &ordered {
        if o.unit.is_none()
            && let Some((manager, unit)) = strip_root(l.path, root).and_then(|p| unit_of_path(p, passwd))
        {
            o.manager = Some(manager);
            o.unit = Some(unit);
        }
        if o.container_id.is_none() {
            o.container_id = container_of_path(l.path);
        }
    }
    o
}

/// Unit types that can hold processes in a cgroup.
const PROCESS_UNIT_TYPES: [&str; 6] = ["service", "scope", "slice", "socket", "mount", "swap"];

fn is_unit_name(s: &str) -> bool {
    s.rsplit_once('.')
        .is_some_and(|(stem, ty)| !stem.is_empty() && PROCESS_UNIT_TYPES.contains(&ty))
}

/// `(manager, unit)` of a cgroup path: the first non-slice unit component,
/// and below `user@<uid>.service` the first non-slice unit after it, of the
/// user manager. A path of slices only names its last slice.
fn unit_of_path(path: &str, passwd: &Users) -> Option<(String, String)> {
    let manager = "system".to_string();
    let mut last_slice = None;
    let mut comps = path.split('/').filter(|c| !c.is_empty() && *c != "..");
    while let Some(c) = comps.next() {
        if !is_unit_name(c) {
            // A delegated subtree (docker's cgroupfs layout, …): not a unit.
            break;
        }
        if c.ends_with(".slice") {
            last_slice = Some(c);
            continue;
        }
        let uid = c
            .strip_prefix("user@")
            .and_then(|r| r.strip_suffix(".service"))
            .and_then(|u| u.parse::<u32>().ok());
        if let Some(uid) = uid {
            let rest: Vec<&str> = comps.clone().collect();
            if !rest.is_empty() {
                let user = passwd.name(uid).map(str::to_string).unwrap_or_else(|| uid.to_string());
                let sub = rest.join("/");
                if let Some((_, unit)) = unit_of_path(&sub, passwd) {
                    return Some((format!("user:{user}"), unit));
                }
            }
        }
        return Some((manager, c.to_string()));
    }
    last_slice.map(|s| (manager, s.to_string()))
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The Docker container id in a cgroup path: `docker-<id>.scope` (systemd
/// driver) or a bare `<id>` component (`/docker/<id>`, cgroupfs driver or a
/// `--cgroup-parent`).
fn container_of_path(path: &str) -> Option<String> {
    path.split('/').find_map(|c| {
        let id = c
            .strip_prefix("docker-")
            .and_then(|r| r.strip_suffix(".scope"))
            .unwrap_or(c);
        is_container_id(id).then(|| id.to_string())
    })
}

/// Counts of processes per owner, for a bounded owner label set: the `limit`
/// owners with the most processes, by count then name.
pub fn top_owners(counts: &BTreeMap<Owner, u64>, limit: usize) -> Vec<(&Owner, u64)> {
    let mut v: Vec<(&Owner, u64)> = counts.iter().map(|(o, n)| (o, *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v.truncate(limit);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::tests::{ID, w};

    #[test]
    fn owners() {
        let pw = Users::parse("medic:x:1000:1000::/home/medic:/bin/sh\n");
        let own = |text: &str| parse_owner(text, &pw);
        let o = |m: Option<&str>, u: Option<&str>, c: Option<&str>| Owner {
            manager: m.map(Into::into),
            unit: u.map(Into::into),
            container_id: c.map(Into::into),
        };
        assert_eq!(
            own("0::/system.slice/nginx.service\n"),
            o(Some("system"), Some("nginx.service"), None)
        );
        // Sub-cgroups of a delegated unit still belong to the unit.
        assert_eq!(
            own("0::/system.slice/app.service/worker/3\n"),
            o(Some("system"), Some("app.service"), None)
        );
        assert_eq!(
            own("0::/user.slice/user-1000.slice/user@1000.service/app.slice/sync.service\n"),
            o(Some("user:medic"), Some("sync.service"), None)
        );
        assert_eq!(
            own("0::/user.slice/user-1001.slice/user@1001.service/init.scope\n"),
            o(Some("user:1001"), Some("init.scope"), None)
        );
        assert_eq!(
            own("0::/user.slice/user-1000.slice/session-3.scope\n"),
            o(Some("system"), Some("session-3.scope"), None)
        );
        assert_eq!(
            own(&format!("0::/system.slice/docker-{ID}.scope\n")),
            o(Some("system"), Some(&format!("docker-{ID}.scope")), Some(ID))
        );
        // cgroupfs driver on a hybrid host: the v2 line is the root, the unit
        // comes from name=systemd, the container from the v1 paths.
        assert_eq!(
            own(&format!("9:name=systemd:/docker/{ID}\n4:memory:/docker/{ID}\n0::/\n")),
            o(None, None, Some(ID))
        );
        assert_eq!(
            own(&format!(
                "9:name=systemd:/system.slice/containerd.service\n4:memory:/docker/{ID}\n0::/\n"
            )),
            o(Some("system"), Some("containerd.service"), Some(ID))
        );
        assert_eq!(own("0::/init.scope\n"), o(Some("system"), Some("init.scope"), None));
        assert_eq!(own("0::/system.slice\n"), o(Some("system"), Some("system.slice"), None));
        assert_eq!(own("0::/\n"), Owner::default());
        assert_eq!(own("garbage\n"), Owner::default());
        // Outside our cgroup namespace the path starts with /..
        assert_eq!(
            own("0::/../../system.slice/cron.service\n"),
            o(Some("system"), Some("cron.service"), None)
        );
        // Upper-case or short hex is not a Docker id.
        assert_eq!(own(&format!("0::/docker/{}\n", ID.to_uppercase())).container_id, None);
        assert_eq!(own("0::/docker/abc\n").container_id, None);

        // A machine's systemd, seen from the host.
        let m = "0::/hostmedic-test-9/system.slice/spin.service\n";
        assert_eq!(own(m), Owner::default());
        assert_eq!(
            parse_owner_below(m, "/hostmedic-test-9/", &pw),
            o(Some("system"), Some("spin.service"), None)
        );
        assert_eq!(parse_owner_below(m, "/hostmedic-test", &pw), Owner::default());
        assert_eq!(
            parse_owner_below("0::/system.slice/cron.service\n", "/hostmedic-test-9", &pw),
            Owner::default()
        );

        let t = tempfile::tempdir().unwrap();
        w(t.path().join("7/cgroup"), "0::/system.slice/x.service\n");
        assert_eq!(owner(t.path(), 7, &pw).unwrap().unit.as_deref(), Some("x.service"));
        assert_eq!(owner(t.path(), 8, &pw), None);
    }

    #[test]
    fn top_owners_bounded() {
        let mut m = BTreeMap::new();
        for (u, n) in [("a.service", 1), ("b.service", 5), ("c.service", 5), ("d.service", 2)] {
            m.insert(
                Owner {
                    manager: Some("system".into()),
                    unit: Some(u.into()),
                    container_id: None,
                },
                n,
            );
        }
        let top: Vec<_> = top_owners(&m, 3)
            .into_iter()
            .map(|(o, n)| (o.unit.clone().unwrap(), n))
            .collect();
        assert_eq!(
            top,
            [
                ("b.service".into(), 5),
                ("c.service".into(), 5),
                ("d.service".into(), 2)
            ]
        );
    }
}
