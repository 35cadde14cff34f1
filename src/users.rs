//! The one uid ↔ user-name service: a table read from a passwd-format file
//! (`systemd.passwd_file`, `/etc/passwd` by default), so every place that
//! names a user — the processes collector's `user` and owner labels, user
//! managers, evidence, the CLI's "approved by" — names it the same way, from
//! the same file (tests point it at a fixture). The exec action's `user`
//! and `group` are looked up through it too (a group file has the same
//! shape: name, password, gid). A leaf: it imports nothing of the crate.

use std::collections::BTreeMap;
use std::path::Path;

/// The system's passwd file, where no other is configured.
pub const PASSWD_FILE: &str = "/etc/passwd";

/// uid → name (and back) from a passwd-format file.
#[derive(Debug, Clone, Default)]
pub struct Users {
    by_uid: BTreeMap<u32, String>,
    /// name → (uid, primary gid), the first entry of a name.
    by_name: BTreeMap<String, (u32, Option<u32>)>,
}

impl Users {
    /// Reads `path`; a missing or unreadable file gives an empty table
    /// (users are then labelled by uid). Blocking: from async code use
    /// [`Users::read`].
    pub fn load(path: &Path) -> Users {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        Users::parse(&text)
    }

    /// [`Users::load`] off the runtime's threads.
    pub async fn read(path: &Path) -> Users {
        Users::try_read(path).await.unwrap_or_default()
    }

    /// Like [`Users::read`], but a file that cannot be read is an error
    /// (where a missing account must not pass as "no such user").
    pub async fn try_read(path: &Path) -> std::io::Result<Users> {
        Ok(Users::parse(&tokio::fs::read_to_string(path).await?))
    }

    /// The table of a passwd-format text (the first entry of a uid, and of
    /// a name, wins; malformed lines are skipped).
    pub fn parse(text: &str) -> Users {
        let mut users = Users::default();
        for line in text.lines() {
            let mut f = line.split(':');
            let (Some(name), Some(_pw), Some(Ok(uid))) = (f.next(), f.next(), f.next().map(str::parse::<u32>)) else {
                continue;
            };
            let gid = f.next().and_then(|g| g.parse::<u32>().ok());
            users.by_uid.entry(uid).or_insert_with(|| name.to_string());
            users.by_name.entry(name.to_string()).or_insert((uid, gid));
        }
        users
    }

    pub fn name(&self, uid: u32) -> Option<&str> {
        self.by_uid.get(&uid).map(String::as_str)
    }

    /// The name of `uid`, else the uid itself (as labels show it).
    pub fn label(&self, uid: u32) -> String {
        self.name(uid).map_or_else(|| uid.to_string(), str::to_string)
    }

    pub fn uid(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).map(|(u, _)| *u)
    }

    /// The primary group of `name` (passwd's fourth field).
    pub fn primary_gid(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).and_then(|(_, g)| *g)
    }

    /// The primary group of the first entry of `uid`.
    pub fn primary_gid_of(&self, uid: u32) -> Option<u32> {
        self.by_uid.get(&uid).and_then(|n| self.primary_gid(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uids_both_ways() {
        let u =
            Users::parse("root:x:0:0::/root:/bin/sh\nmedic:x:1000:1000::/home/medic:/bin/sh\nbad\nagain:x:0:0::/:/\n");
        assert_eq!(
            (u.name(0), u.name(1000), u.name(7)),
            (Some("root"), Some("medic"), None)
        );
        assert_eq!((u.label(1000), u.label(7)), ("medic".to_string(), "7".to_string()));
        assert_eq!(
            (u.uid("medic"), u.uid("again"), u.uid("nobody")),
            (Some(1000), Some(0), None),
            "an alias of uid 0 is found by its name; uid 0 is named by its first entry"
        );
        assert_eq!(
            (u.primary_gid("medic"), u.primary_gid_of(0), u.primary_gid("x")),
            (Some(1000), Some(0), None)
        );
        assert!(Users::load(Path::new("/nonexistent/passwd")).name(0).is_none());
    }
}
