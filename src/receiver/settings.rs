//! A receiver's swappable settings, one snapshot per request: what a
//! reload replaces. At the bottom of the stages so that each can take the
//! snapshot as an argument.

use super::auth::Auth;
use super::config::{ReceiverConfig, Rule};
use super::identity::Identity;
use crate::actions::ActionEnv;
use crate::error::ConfigError;

/// What a reload replaces: `[receiver]`, the credentials it names, the
/// compiled rules, the actions' environment and the fleet identity. A
/// request works on one snapshot from start to end (its jobs keep it), so a
/// reload never mixes two configurations inside one remediation.
pub struct Settings {
    pub cfg: ReceiverConfig,
    pub auth: Auth,
    pub rules: Vec<Rule>,
    pub env: ActionEnv,
    /// Who this host is (`[fleet]`): alerts naming another host are refused.
    pub identity: Identity,
    /// `[receiver.evidence]`, compiled.
    pub evidence: crate::evidence::Capture,
    /// What the background collectors last saw (the evidence of LFS and
    /// path incidents); the same board across reloads.
    pub observed: crate::observed::Observed,
}

impl Settings {
    /// Builds the settings from `[receiver]`, the compiled rules
    /// ([`super::config::compile_rules`]), the actions' environment (its
    /// `dry_run` is `receiver.dry_run`), this host's identity and the
    /// collectors' board; loads the credentials.
    pub fn new(
        cfg: ReceiverConfig,
        rules: Vec<Rule>,
        env: ActionEnv,
        identity: Identity,
        observed: crate::observed::Observed,
    ) -> Result<Settings, ConfigError> {
        Ok(Settings {
            auth: Auth::load(cfg.credentials())?,
            evidence: cfg.evidence.compile("receiver.evidence")?,
            cfg,
            rules,
            env,
            identity,
            observed,
        })
    }
}
