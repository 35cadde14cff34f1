//! The collectors, one file (or folder) each. Which of them run, and the one
//! function per collector that checks its section by building it, is the
//! registry [`crate::config::COLLECTORS`]: `config` imports the collectors,
//! never the other way round.

pub mod docker;
pub mod git_lfs;
pub mod host;
pub mod hwmon;
pub mod logfile;
pub mod paths;
pub mod pressure;
pub mod probes;
pub mod processes;
pub mod systemd;
