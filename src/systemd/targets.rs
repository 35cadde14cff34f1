//! Where the managers are: the system bus address, user managers found
//! under the runtime directory, and uid/name lookups in a passwd file.

use super::*;
use crate::users::Users;

/// The system bus address: `configured`, else `$DBUS_SYSTEM_BUS_ADDRESS`,
/// else [`DEFAULT_SYSTEM_BUS`].
pub fn system_bus_address(configured: Option<&str>) -> String {
    if let Some(a) = configured.filter(|a| !a.is_empty()) {
        return a.to_string();
    }
    match std::env::var("DBUS_SYSTEM_BUS_ADDRESS") {
        Ok(a) if !a.is_empty() => a,
        _ => DEFAULT_SYSTEM_BUS.to_string(),
    }
}

/// Where one manager lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A bus address (`unix:path=…`), as for the system bus.
    Address(String),
    /// A user's session bus socket; connected as `uid`.
    UserSocket { path: PathBuf, uid: u32 },
}

/// A manager to talk to: its label (`system` or `user:<name>`) and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerTarget {
    pub label: String,
    pub target: Target,
}

impl ManagerTarget {
    pub fn system(configured_address: Option<&str>) -> Self {
        ManagerTarget {
            label: "system".into(),
            target: Target::Address(system_bus_address(configured_address)),
        }
    }

    /// Human-readable address for errors.
    pub fn address(&self) -> String {
        match &self.target {
            Target::Address(a) => a.clone(),
            Target::UserSocket { path, .. } => format!("unix:path={}", path.display()),
        }
    }
}

/// Every `<runtime_dir>/<uid>/bus` socket, labelled `user:<name>` (or
/// `user:<uid>` when the uid is not in `passwd`), sorted by uid.
pub fn discover_user_managers(runtime_dir: &Path, passwd: &Users) -> Vec<ManagerTarget> {
    use std::os::unix::fs::FileTypeExt;
    let mut found: Vec<(u32, PathBuf)> = match std::fs::read_dir(runtime_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let uid: u32 = e.file_name().to_str()?.parse().ok()?;
                let bus = e.path().join("bus");
                let meta = std::fs::metadata(&bus).ok()?;
                meta.file_type().is_socket().then_some((uid, bus))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    found.sort();
    found
        .into_iter()
        .map(|(uid, path)| user_target(uid, path, passwd))
        .collect()
}

/// The manager of the configured user `name` (its bus need not exist yet).
pub fn configured_user_manager(name: &str, runtime_dir: &Path, passwd: &Users) -> Result<ManagerTarget> {
    let uid = match name.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => passwd
            .uid(name)
            .ok_or_else(|| SystemdError::UnknownUser(name.to_string()))?,
    };
    Ok(user_target(uid, runtime_dir.join(uid.to_string()).join("bus"), passwd))
}

pub(super) fn user_target(uid: u32, path: PathBuf, passwd: &Users) -> ManagerTarget {
    let name = passwd.name(uid).map(str::to_string).unwrap_or_else(|| uid.to_string());
    ManagerTarget {
        label: format!("user:{name}"),
        target: Target::UserSocket { path, uid },
    }
}
