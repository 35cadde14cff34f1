//! How this hostmedic was invoked, for the commands it prints for a person
//! to paste (`hostmedic approve a42` in a notification, on the landing page,
//! in `hostmedic incidents`): when the configuration is not the packaged
//! one that the control subcommands find by themselves, the printed command
//! names it (`--config`), and the web configuration too, so the pasted
//! command reaches the same journal and the same listener with the same
//! credentials. Also where the control subcommands look for the
//! configuration. A leaf: it imports nothing of the crate.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The packaged configuration file (deploy/hostmedic.service runs with it).
pub const PACKAGED_CONFIG: &str = "/etc/hostmedic/hostmedic.toml";

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "HOSTMEDIC_CONFIG";

/// The files the running process was started with.
#[derive(Debug, Default)]
struct Running {
    config: Option<PathBuf>,
    web_config: Option<PathBuf>,
}

static RUNNING: OnceLock<Running> = OnceLock::new();

/// Records the files this process runs with (the first call wins; a
/// process that never calls it prints bare commands).
pub fn set(config: Option<&Path>, web_config: Option<&Path>) {
    let _ = RUNNING.set(Running {
        config: config.map(Path::to_path_buf),
        web_config: web_config.map(Path::to_path_buf),
    });
}

/// `--config`, else `$HOSTMEDIC_CONFIG` (when not empty).
pub fn config_from_env(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| {
        std::env::var_os(CONFIG_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// Where a control subcommand (`approve`, `clear-hold`, `incidents`) reads
/// its configuration: `--config`, else `$HOSTMEDIC_CONFIG`, else the
/// packaged file when it exists, else `None` (the embedded default).
pub fn locate_config(flag: Option<PathBuf>) -> Option<PathBuf> {
    locate(config_from_env(flag), Path::new(PACKAGED_CONFIG))
}

/// `given` (the flag or the environment), else `packaged` when it is a file.
fn locate(given: Option<PathBuf>, packaged: &Path) -> Option<PathBuf> {
    given.or_else(|| packaged.is_file().then(|| packaged.to_path_buf()))
}

/// `hostmedic <args>` as a person pastes it: with `--config` when the
/// running configuration is not the packaged one, and `--web.config.file`
/// when there is one. `args` is inserted as given (quote what needs it).
pub fn command(args: &str) -> String {
    spell(RUNNING.get(), args)
}

fn spell(running: Option<&Running>, args: &str) -> String {
    let mut out = String::from("hostmedic");
    if let Some(r) = running {
        if let Some(c) = r.config.as_deref().filter(|c| *c != Path::new(PACKAGED_CONFIG)) {
            out.push_str(" --config ");
            out.push_str(&quote(&c.display().to_string()));
        }
        if let Some(w) = &r.web_config {
            out.push_str(" --web.config.file ");
            out.push_str(&quote(&w.display().to_string()));
        }
    }
    out.push(' ');
    out.push_str(args);
    out
}

/// `s` as one shell word: as is when it is made of characters no shell
/// treats specially, else in single quotes.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | ':' | '@' | '=' | ',' | '+'));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_or_env_wins_then_the_packaged_file_when_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        let packaged = dir.path().join("hostmedic.toml");
        let given = PathBuf::from("/srv/given.toml");
        assert_eq!(locate(None, &packaged), None, "no packaged file: the embedded default");
        std::fs::write(&packaged, "").unwrap();
        assert_eq!(locate(None, &packaged), Some(packaged.clone()));
        assert_eq!(locate(Some(given.clone()), &packaged), Some(given));
    }

    #[test]
    fn quote_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(quote("systemd:system:worker.service"), "systemd:system:worker.service");
        assert_eq!(quote("/tmp/a b.toml"), "'/tmp/a b.toml'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn command_names_a_config_that_is_not_the_packaged_one() {
        let running = |config: &str, web: Option<&str>| Running {
            config: Some(PathBuf::from(config)),
            web_config: web.map(PathBuf::from),
        };
        assert_eq!(
            spell(Some(&running("/srv/my hostmedic.toml", None)), "approve a1"),
            "hostmedic --config '/srv/my hostmedic.toml' approve a1"
        );
        assert_eq!(
            spell(
                Some(&running(PACKAGED_CONFIG, Some("/etc/hostmedic/web.yml"))),
                "approve a1"
            ),
            "hostmedic --web.config.file /etc/hostmedic/web.yml approve a1"
        );
        assert_eq!(spell(None, "approve a1"), "hostmedic approve a1");
    }
}
