//! Host identity: who this hostmedic is, so that an alert naming another
//! host is never acted on here (a fleet shares one Alertmanager pair, and a
//! mis-routed "restart nginx" must not restart this host's nginx).
//!
//! `[fleet]` gives the identity (default: the hostname), the `instance`
//! values Prometheus scrapes this host as, the labels that name a host
//! (default `instance`, `host`, `nodename`) and the single-host flag. An
//! alert is this host's when every host label it carries names this host;
//! one that names another host is refused (journaled as `refused_foreign`,
//! answered 2xx); one that names no host is acted on only in single-host
//! mode. Without a `[fleet]` section hostmedic runs in single-host mode.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Why an alert is not acted on here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Its host labels name another host.
    Foreign,
    /// It names no host, outside single-host mode.
    NoHost,
}

impl Refusal {
    /// The one spelling (journal, metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Foreign => "foreign",
            Refusal::NoHost => "no_host",
        }
    }
}

crate::spelled!(Refusal);

/// `[fleet]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetConfig {
    /// This host's name as alerts spell it (`host`/`nodename` labels, or the
    /// host part of `instance`). Default: the hostname.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The `instance` values this host is scraped as, `host:port` or `host`.
    /// With a port, an `instance` carrying a port must carry this one (hosts
    /// behind one NAT address); without, any port of that host matches (the
    /// node exporter on the same machine).
    pub instances: Vec<String>,
    /// Alert labels that name a host; every one an alert carries must name
    /// this host.
    pub host_labels: Vec<String>,
    /// Act on alerts that name no host at all, and count loopback names
    /// (`localhost`, 127.0.0.0/8, `::1`) as this host: one Prometheus and
    /// Alertmanager for this host only.
    pub single_host: bool,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            identity: None,
            instances: Vec::new(),
            host_labels: default_host_labels(),
            single_host: false,
        }
    }
}

fn default_host_labels() -> Vec<String> {
    ["instance", "host", "nodename"].iter().map(|s| s.to_string()).collect()
}

/// A host named by a label value: normalized host and optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRef {
    pub host: String,
    pub port: Option<u16>,
}

impl HostRef {
    /// Parses a label value as Prometheus and people write it: `host:port`,
    /// `[v6]:port`, a bare host or IPv6 address, or a URL (blackbox
    /// `instance`s). Case-insensitive; a trailing dot is dropped; IP
    /// addresses are put in canonical form. `None` for an empty value.
    pub fn parse(value: &str) -> Option<HostRef> {
        let mut s = value.trim().to_ascii_lowercase();
        if let Some(i) = s.find("://") {
            s = s[i + 3..].to_string();
            if let Some(end) = s.find(['/', '?', '#']) {
                s.truncate(end);
            }
            if let Some(at) = s.rfind('@') {
                s = s[at + 1..].to_string();
            }
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            match rest.split_once(']') {
                Some((h, tail)) => (h.to_string(), tail.strip_prefix(':').and_then(|p| p.parse().ok())),
                None => (rest.to_string(), None),
            }
        } else if s.matches(':').count() == 1 {
            let (h, p) = s.split_once(':').expect("one colon");
            match p.parse::<u16>() {
                Ok(port) => (h.to_string(), Some(port)),
                Err(_) => (s.clone(), None),
            }
        } else {
            // No colon, or a bare IPv6 address.
            (s.clone(), None)
        };
        let host = host.trim_end_matches('.');
        if host.is_empty() {
            return None;
        }
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => host.to_string(),
        };
        Some(HostRef { host, port })
    }

    fn is_loopback(&self) -> bool {
        match self.host.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => matches!(
                self.host.as_str(),
                "localhost" | "localhost.localdomain" | "ip6-localhost" | "ip6-loopback"
            ),
        }
    }
}

/// Whether an alert is this host's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every host label it carries names this host.
    Own,
    /// `label` names another host.
    Foreign { label: String, value: String },
    /// It carries no host label.
    NoHost,
}

/// The compiled `[fleet]` section.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The configured (or detected) identity, as written.
    pub name: String,
    host: HostRef,
    instances: Vec<HostRef>,
    labels: Vec<String>,
    pub single_host: bool,
}

/// The hostname (`uname -n`), or `localhost` when it cannot be read.
pub fn hostname() -> String {
    sysinfo::System::host_name()
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn valid_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'))
}

impl FleetConfig {
    /// Validates `[fleet]`; `key` is the section name.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if let Some(id) = &self.identity
            && (!valid_host_name(id) || HostRef::parse(id).is_none())
        {
            return Err(ConfigError::invalid(
                format!("{key}.identity"),
                format!("{id:?} is not a host name (letters, digits, `.`, `-`, `_`; at most 253)"),
            ));
        }
        for (i, inst) in self.instances.iter().enumerate() {
            let k = format!("{key}.instances[{i}]");
            if inst.contains("://") || inst.contains('/') {
                return Err(ConfigError::invalid(
                    k,
                    format!("{inst:?}: give `host:port` or `host` as the `instance` label shows it, not a URL"),
                ));
            }
            if !valid_host_name(inst) {
                return Err(ConfigError::invalid(
                    k,
                    format!("{inst:?} is not `host:port`, `[v6]:port` or `host`"),
                ));
            }
            let colons = inst.matches(':').count();
            let bracketed_port = inst.starts_with('[') && inst.contains("]:");
            let parsed = HostRef::parse(inst);
            if parsed.is_none()
                || ((colons == 1 || bracketed_port) && parsed.as_ref().is_some_and(|h| h.port.is_none()))
            {
                return Err(ConfigError::invalid(
                    k,
                    format!("{inst:?}: the port must be a number from 1 to 65535"),
                ));
            }
            if parsed.is_some_and(|h| h.port == Some(0)) {
                return Err(ConfigError::invalid(k, format!("{inst:?}: port 0 is not a port")));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, l) in self.host_labels.iter().enumerate() {
            if !super::payload::valid_label_name(l) {
                return Err(ConfigError::invalid(
                    format!("{key}.host_labels[{i}]"),
                    format!("{l:?} is not a valid label name"),
                ));
            }
            if !seen.insert(l) {
                return Err(ConfigError::invalid(
                    format!("{key}.host_labels[{i}]"),
                    format!("{l:?} is listed twice"),
                ));
            }
        }
        if self.host_labels.is_empty() && !self.single_host {
            return Err(ConfigError::invalid(
                format!("{key}.host_labels"),
                "is empty, so no alert names a host, and outside single-host mode none would ever be acted on \
                 (set fleet.single_host = true or list the labels)",
            ));
        }
        Ok(())
    }
}

impl Identity {
    /// Compiles `[fleet]`; `None` (no section) is single-host mode with the
    /// hostname as identity and the default host labels.
    pub fn new(cfg: Option<&FleetConfig>) -> Identity {
        let single = FleetConfig {
            single_host: true,
            ..FleetConfig::default()
        };
        let cfg = cfg.unwrap_or(&single);
        let name = cfg.identity.clone().unwrap_or_else(hostname);
        let host = HostRef::parse(&name).unwrap_or(HostRef {
            host: name.to_ascii_lowercase(),
            port: None,
        });
        Identity {
            host,
            name,
            instances: cfg.instances.iter().filter_map(|i| HostRef::parse(i)).collect(),
            labels: cfg.host_labels.clone(),
            single_host: cfg.single_host,
        }
    }

    /// True when a label value names this host.
    pub fn names_self(&self, value: &str) -> bool {
        let Some(r) = HostRef::parse(value) else {
            return false;
        };
        if r.host == self.host.host {
            return true;
        }
        if self.single_host && r.is_loopback() {
            return true;
        }
        self.instances
            .iter()
            .any(|i| i.host == r.host && (i.port.is_none() || r.port.is_none() || i.port == r.port))
    }

    /// Classifies an alert by its host labels (empty values count as absent).
    pub fn classify(&self, labels: &BTreeMap<String, String>) -> Verdict {
        let mut named = false;
        for l in &self.labels {
            let Some(v) = labels.get(l).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            named = true;
            if !self.names_self(v) {
                return Verdict::Foreign {
                    label: l.clone(),
                    value: v.clone(),
                };
            }
        }
        if named { Verdict::Own } else { Verdict::NoHost }
    }

    /// `None` when the alert may be acted on here, else the reason it may
    /// not (journaled with `refused_foreign`, the `reason` label of
    /// `hostmedic_actions_skipped_total`).
    pub fn refusal(&self, labels: &BTreeMap<String, String>) -> Option<Refusal> {
        match self.classify(labels) {
            Verdict::Own => None,
            Verdict::Foreign { .. } => Some(Refusal::Foreign),
            Verdict::NoHost if self.single_host => None,
            Verdict::NoHost => Some(Refusal::NoHost),
        }
    }

    /// The host labels an alert carries (for the journal).
    pub fn host_labels_of(&self, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        self.labels
            .iter()
            .filter_map(|l| labels.get(l).map(|v| (l.clone(), v.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(identity: &str, instances: &[&str], single: bool) -> Identity {
        Identity::new(Some(&FleetConfig {
            identity: Some(identity.into()),
            instances: instances.iter().map(|s| s.to_string()).collect(),
            host_labels: default_host_labels(),
            single_host: single,
        }))
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_label_values() {
        let p = |s: &str| HostRef::parse(s).map(|h| (h.host, h.port));
        assert_eq!(p("web-1:9877"), Some(("web-1".into(), Some(9877))));
        assert_eq!(p("WEB-1.Example.COM."), Some(("web-1.example.com".into(), None)));
        assert_eq!(p("[2001:DB8::0001]:9100"), Some(("2001:db8::1".into(), Some(9100))));
        assert_eq!(p("2001:db8:0::1"), Some(("2001:db8::1".into(), None)));
        assert_eq!(
            p("https://user@web-1.example.com:8443/health?x"),
            Some(("web-1.example.com".into(), Some(8443)))
        );
        assert_eq!(p("http://web-1/"), Some(("web-1".into(), None)));
        assert_eq!(p("host:notaport"), Some(("host:notaport".into(), None)));
        assert_eq!(p("  "), None);
        assert_eq!(p(":9877"), None);
    }

    #[test]
    fn identity_matches_host_part_any_port_any_case() {
        let id = fleet("web-1", &[], false);
        assert!(id.names_self("web-1"));
        assert!(id.names_self("WEB-1:9877"));
        assert!(id.names_self("web-1:9100"));
        assert!(id.names_self("web-1."));
        assert!(!id.names_self("web-10:9877"));
        assert!(
            !id.names_self("web-1.example.com:9877"),
            "no guessing between short and full names"
        );
        assert!(!id.names_self("web"));
        assert!(!id.names_self(""));
    }

    #[test]
    fn instances_with_and_without_port() {
        let id = fleet("web-1", &["10.0.0.2:9877", "web-1.example.com"], false);
        // Entry with a port: that port, or a value without a port.
        assert!(id.names_self("10.0.0.2:9877"));
        assert!(id.names_self("10.0.0.2"));
        assert!(!id.names_self("10.0.0.2:9878"), "another host behind the same address");
        assert!(!id.names_self("10.0.0.3:9877"));
        // Entry without a port: any port.
        assert!(id.names_self("web-1.example.com:9100"));
        assert!(id.names_self("Web-1.Example.com:9877"));
        assert!(id.names_self("https://web-1.example.com/healthz"));
        assert!(!id.names_self("web-2.example.com:9877"));
    }

    #[test]
    fn ipv6_instances_compare_canonically() {
        let id = fleet("db", &["[2001:db8::10]:9877"], false);
        assert!(id.names_self("[2001:0db8:0000::0010]:9877"));
        assert!(id.names_self("2001:db8::10"));
        assert!(!id.names_self("[2001:db8::11]:9877"));
    }

    #[test]
    fn loopback_is_self_only_in_single_host_mode() {
        let single = fleet("web-1", &[], true);
        let many = fleet("web-1", &[], false);
        for v in [
            "localhost:9877",
            "127.0.0.1:9877",
            "127.0.1.1",
            "[::1]:9877",
            "LOCALHOST",
        ] {
            assert!(single.names_self(v), "{v}");
            assert!(!many.names_self(v), "{v}");
        }
        let listed = fleet("web-1", &["localhost:9877"], false);
        assert!(listed.names_self("localhost:9877"));
    }

    #[test]
    fn classify_every_host_label_must_name_this_host() {
        let id = fleet("web-1", &["10.0.0.2:9877"], false);
        assert_eq!(id.classify(&labels(&[("instance", "10.0.0.2:9877")])), Verdict::Own);
        assert_eq!(
            id.classify(&labels(&[
                ("instance", "10.0.0.2:9877"),
                ("host", "web-1"),
                ("job", "x")
            ])),
            Verdict::Own
        );
        assert_eq!(
            id.classify(&labels(&[("instance", "10.0.0.2:9877"), ("nodename", "web-2")])),
            Verdict::Foreign {
                label: "nodename".into(),
                value: "web-2".into()
            },
            "conflicting host labels are refused"
        );
        assert_eq!(
            id.classify(&labels(&[("instance", "10.0.0.3:9877")])),
            Verdict::Foreign {
                label: "instance".into(),
                value: "10.0.0.3:9877".into()
            }
        );
        assert_eq!(id.classify(&labels(&[("job", "x")])), Verdict::NoHost);
        assert_eq!(
            id.classify(&labels(&[("instance", " ")])),
            Verdict::NoHost,
            "empty is absent"
        );
        // Labels outside host_labels are not looked at.
        assert_eq!(
            id.classify(&labels(&[("server", "web-2"), ("host", "web-1")])),
            Verdict::Own
        );
    }

    #[test]
    fn refusal_by_mode() {
        let many = fleet("web-1", &[], false);
        let single = fleet("web-1", &[], true);
        let none = labels(&[("alertname", "X")]);
        assert_eq!(many.refusal(&none), Some(Refusal::NoHost));
        assert_eq!(single.refusal(&none), None);
        let other = labels(&[("host", "web-2")]);
        assert_eq!(many.refusal(&other), Some(Refusal::Foreign));
        assert_eq!(
            single.refusal(&other),
            Some(Refusal::Foreign),
            "single-host mode still refuses other hosts"
        );
        assert_eq!(many.refusal(&labels(&[("host", "web-1")])), None);
    }

    #[test]
    fn custom_host_labels() {
        let id = Identity::new(Some(&FleetConfig {
            identity: Some("web-1".into()),
            instances: vec![],
            host_labels: vec!["server".into()],
            single_host: false,
        }));
        assert_eq!(
            id.refusal(&labels(&[("server", "web-2"), ("instance", "web-1")])),
            Some(Refusal::Foreign)
        );
        assert_eq!(id.refusal(&labels(&[("server", "web-1"), ("instance", "web-2")])), None);
        assert_eq!(
            id.host_labels_of(&labels(&[("server", "web-1"), ("instance", "x")])),
            labels(&[("server", "web-1")])
        );
    }

    #[test]
    fn no_section_is_single_host_with_hostname() {
        let id = Identity::new(None);
        assert!(id.single_host);
        assert_eq!(id.name, hostname());
        assert!(id.names_self(&format!("{}:9877", hostname().to_uppercase())));
        assert_eq!(id.refusal(&labels(&[("alertname", "X")])), None);
        assert_eq!(id.refusal(&labels(&[("instance", "127.0.0.1:9877")])), None);
    }

    #[test]
    fn validation_names_keys() {
        let err = |f: FleetConfig| f.validate("fleet").unwrap_err().to_string();
        let base = FleetConfig::default();
        assert!(base.validate("fleet").is_ok());
        let e = err(FleetConfig {
            identity: Some("web 1".into()),
            ..base.clone()
        });
        assert!(e.contains("fleet.identity"), "{e}");
        let e = err(FleetConfig {
            instances: vec!["10.0.0.2:9877".into(), "http://10.0.0.2:9877/metrics".into()],
            ..base.clone()
        });
        assert!(e.contains("fleet.instances[1]") && e.contains("not a URL"), "{e}");
        for bad in ["web-1:99999", "web-1:", "web-1:x", "[::1]:port", "a b:1", "web-1:0"] {
            let e = err(FleetConfig {
                instances: vec![bad.into()],
                ..base.clone()
            });
            assert!(e.contains("fleet.instances[0]"), "{bad}: {e}");
        }
        let e = err(FleetConfig {
            host_labels: vec!["instance".into(), "9host".into()],
            ..base.clone()
        });
        assert!(e.contains("fleet.host_labels[1]"), "{e}");
        let e = err(FleetConfig {
            host_labels: vec!["host".into(), "host".into()],
            ..base.clone()
        });
        assert!(e.contains("fleet.host_labels[1]") && e.contains("twice"), "{e}");
        let e = err(FleetConfig {
            host_labels: vec![],
            ..base.clone()
        });
        assert!(e.contains("fleet.host_labels"), "{e}");
        assert!(
            FleetConfig {
                host_labels: vec![],
                single_host: true,
                ..base.clone()
            }
            .validate("fleet")
            .is_ok()
        );
        for good in [
            "web-1",
            "10.0.0.2:9877",
            "[2001:db8::1]:9877",
            "2001:db8::1",
            "web-1.example.com",
        ] {
            assert!(
                FleetConfig {
                    instances: vec![good.into()],
                    ..base.clone()
                }
                .validate("fleet")
                .is_ok(),
                "{good}"
            );
        }
    }
}

#[cfg(test)]
mod config_tests {
    use crate::config::Config;

    #[test]
    fn fleet_section_parses_and_errors_name_keys() {
        let cfg = Config::parse("[fleet]\nidentity = \"web-1\"\ninstances = [\"10.0.0.2:9877\"]\n", "t").unwrap();
        let f = cfg.fleet.as_ref().unwrap();
        assert!(
            !f.single_host,
            "a [fleet] section means fleet mode unless it says otherwise"
        );
        assert_eq!(f.host_labels, ["instance", "host", "nodename"]);
        Config::parse(&cfg.to_toml(), "rendered").expect("round trip");
        let err = Config::parse("[fleet]\ninstances = [\"web-1:0\"]\n", "t").unwrap_err();
        assert!(err.to_string().contains("fleet.instances[0]"), "{err}");
        let err = Config::parse("[fleet]\nidentiy = \"x\"\n", "t").unwrap_err();
        assert!(err.to_string().contains("identiy"), "{err}");
        assert!(Config::parse("", "t").unwrap().fleet.is_none());
    }
}
