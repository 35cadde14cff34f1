//! A unit's `ActiveState` and `LoadState`, parsed once where they leave
//! D-Bus: the collector, the systemd actions and the evidence compare the
//! enums, and print them with systemd's own spelling (the `state` label,
//! action details). A state this build does not know (a newer systemd) is
//! kept as spelled in `Other`.

use serde::Deserialize;
use zbus::zvariant::Type;

/// Declares a state enum read from a D-Bus string: its known values with
/// their spelling, `Other(String)` for the rest (empty: the property was
/// not there), `KNOWN`, `as_str`, `From<String>` and `Display`.
macro_rules! unit_state {
    ($(#[$doc:meta])* $name:ident, $known:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Type)]
        #[serde(from = "String")]
        #[zvariant(signature = "s")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A value this build does not know, as systemd spelled it.
            Other(String),
        }

        /// Every known value, in the order systemd documents them.
        pub const $known: &[$name] = &[$($name::$variant),+];

        impl $name {
            /// systemd's spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(s) => s,
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> $name {
                match s.as_str() {
                    $($text => $name::$variant,)+
                    _ => $name::Other(s),
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> $name {
                $name::from(s.to_string())
            }
        }

        impl Default for $name {
            fn default() -> $name {
                $name::Other(String::new())
            }
        }

        crate::spelled!($name);
    };
}

unit_state!(
    /// `org.freedesktop.systemd1.Unit.ActiveState`.
    ActiveState, ACTIVE_KNOWN {
        Active = "active",
        Reloading = "reloading",
        Inactive = "inactive",
        Failed = "failed",
        Activating = "activating",
        Deactivating = "deactivating",
        /// systemd 250+: the unit's resources are being cleaned.
        Maintenance = "maintenance",
        /// systemd 255+: the unit is refreshing (a mount's extension images).
        Refreshing = "refreshing",
    }
);

unit_state!(
    /// `org.freedesktop.systemd1.Unit.LoadState`.
    LoadState, LOAD_KNOWN {
        Loaded = "loaded",
        /// No unit file: the unit can be neither started nor restarted.
        NotFound = "not-found",
        BadSetting = "bad-setting",
        Error = "error",
        Masked = "masked",
        Stub = "stub",
        Merged = "merged",
    }
);

impl ActiveState {
    /// Not running and not on its way: `inactive` or `failed`.
    pub fn is_down(&self) -> bool {
        matches!(self, ActiveState::Inactive | ActiveState::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_states_parse_and_print_as_systemd_spells_them() {
        for k in ACTIVE_KNOWN {
            assert_eq!(&ActiveState::from(k.as_str()), k);
            assert_eq!(k.to_string(), k.as_str());
        }
        for k in LOAD_KNOWN {
            assert_eq!(&LoadState::from(k.as_str()), k);
        }
        assert_eq!(LoadState::from("not-found"), LoadState::NotFound);
        assert_eq!(
            ActiveState::from("hibernating"),
            ActiveState::Other("hibernating".into())
        );
        assert_eq!(ActiveState::from("hibernating").as_str(), "hibernating");
        assert_eq!(ActiveState::default().as_str(), "");
        assert!(ActiveState::Failed.is_down() && ActiveState::Inactive.is_down());
        assert!(!ActiveState::Deactivating.is_down());
        assert!(ActiveState::Active == "active");
    }
}
