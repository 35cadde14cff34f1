//! `type = "docker"`: restart, stop or start a container, or change its
//! restart policy, through the Docker engine ([`crate::docker`]); a restart
//! can bring the containers that depend on it along (`restart_dependents`).
//! Also the engine connection `shed-load` uses for its containers.

use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::target;
use super::template::{check_literal, render_field};
use super::{Action, ActionEnv, ActionError, Alert, ConfigError, Context, FollowersError, Outcome, OutcomeResult, Resolved, Subject, Verification};
use crate::docker::{Health, Listed, State};

/// `type = "docker"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerAction {
    pub op: DockerOp,
    /// Container name or id, templated.
    pub container: String,
    /// For `op = "restart-policy"`: `no`, `always`, `unless-stopped`,
    /// `on-failure` or `on-failure:N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// For `op = "restart"`: also restart, after it, the running containers
    /// that depend on it ([`dependents_of`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart_dependents: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DockerOp {
    Restart,
    Stop,
    Start,
    RestartPolicy,
}

impl DockerOp {
    pub fn as_str(self) -> &'static str {
        match self {
            DockerOp::Restart => "restart",
            DockerOp::Stop => "stop",
            DockerOp::Start => "start",
            DockerOp::RestartPolicy => "restart-policy",
        }
    }
}

/// A docker action's container: key `docker:<container>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub container: String,
    /// For the restart of a dependent: the container it depends on.
    pub dependent_of: Option<String>,
}

/// The running containers that depend on `target`, transitively, breadth
/// first (so in an order that restarts what a container depends on before
/// it), each once and never `target` itself. `B` depends on `A` when
///
/// - `B`'s network mode is `container:<A's id, id prefix or name>` (also
///   how Compose writes `network_mode: service:a`), or
/// - `B` belongs to `A`'s Compose project and its Compose v2
///   `com.docker.compose.depends_on` label names `A`'s service.
///
/// A dependent that is not running is left alone (and so are the ones
/// depending on it): a stopped container was stopped for a reason.
pub fn dependents_of<'a>(target: &Listed, all: &'a [Listed]) -> Vec<&'a Listed> {
    use crate::docker::{COMPOSE_DEPENDS_ON_LABEL, COMPOSE_PROJECT_LABEL, COMPOSE_SERVICE_LABEL};
    fn label<'c>(c: &'c Listed, k: &str) -> &'c str {
        c.labels.get(k).map(String::as_str).unwrap_or("")
    }
    let depends = |b: &Listed, a: &Listed| {
        let by_network = b
            .network_mode
            .strip_prefix("container:")
            .is_some_and(|r| !r.is_empty() && (r == a.name || r == a.id || (r.len() >= 12 && a.id.starts_with(r))));
        let (project, service) = (label(a, COMPOSE_PROJECT_LABEL), label(a, COMPOSE_SERVICE_LABEL));
        let by_compose = !project.is_empty()
            && !service.is_empty()
            && label(b, COMPOSE_PROJECT_LABEL) == project
            && label(b, COMPOSE_DEPENDS_ON_LABEL)
                .split(',')
                .any(|entry| entry.split(':').next().map(str::trim) == Some(service));
        by_network || by_compose
    };
    let mut found: Vec<&Listed> = Vec::new();
    let mut next = 0;
    let mut current = target;
    loop {
        for c in all {
            let known = c.id == target.id || found.iter().any(|f| f.id == c.id);
            if c.running && !known && depends(c, current) {
                found.push(c);
            }
        }
        let Some(n) = found.get(next) else {
            return found;
        };
        current = n;
        next += 1;
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "docker:{}", self.container)
    }
}

/// The engine call an op makes (the restart policy parsed).
enum Call {
    Restart,
    Stop,
    Start,
    Policy(RestartPolicy),
}

/// Why a docker action's policy does not parse, or its engine call or the
/// look-up of its dependents failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerActionError {
    /// `on-failure:N` with an `N` that is not a non-negative integer.
    #[error("restart policy {0:?}: retry count must be a non-negative integer")]
    RetryCount(String),
    /// A policy name the engine does not know.
    #[error("unknown restart policy {0:?} (expected no, always, unless-stopped, on-failure or on-failure:N)")]
    UnknownPolicy(String),
    /// The engine refused the call (shown with its whole cause chain);
    /// `then` is the container's state read right after, `earlier` the
    /// answers of the tries before that raced the container's own state
    /// changes, `tries` how many were made. (Boxed: the engine's errors are
    /// large, and `parse_policy` returns this type too.)
    #[error("{} (then {then}){}", crate::error::chain(.source), earlier_tries(*.tries, .earlier))]
    Engine {
        #[source]
        source: Box<crate::docker::DockerError>,
        then: String,
        tries: u32,
        earlier: Vec<String>,
    },
    /// The engine could not be asked which containers depend on this one.
    #[error("dependents of {container}: {source}")]
    Dependents {
        container: String,
        #[source]
        source: Box<crate::docker::DockerError>,
    },
    /// The container the engine resolved is not in its own container list
    /// (removed in between).
    #[error("dependents of {0}: not in the engine's container list")]
    NotListed(String),
}

/// `; after N tries: …` when earlier tries raced, else nothing.
fn earlier_tries(tries: u32, earlier: &[String]) -> String {
    if earlier.is_empty() {
        String::new()
    } else {
        format!("; after {tries} tries: {}", earlier.join("; "))
    }
}

/// A parsed restart policy: name and maximum retry count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: Option<i64>,
}

/// Parses `no`, `always`, `unless-stopped`, `on-failure` or `on-failure:N`.
pub fn parse_policy(s: &str) -> Result<RestartPolicy, ContainerActionError> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    match (name, count) {
        ("no" | "always" | "unless-stopped", None) | ("on-failure", None) => Ok(RestartPolicy {
            name: name.to_string(),
            maximum_retry_count: None,
        }),
        ("on-failure", Some(c)) => {
            let n: i64 = c
                .parse()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| ContainerActionError::RetryCount(s.to_string()))?;
            Ok(RestartPolicy {
                name: name.to_string(),
                maximum_retry_count: Some(n),
            })
        }
        _ => Err(ContainerActionError::UnknownPolicy(s.to_string())),
    }
}

/// Connects to the configured engine (API version negotiated). Stop and
/// restart extend their own deadline by the container's stop timeout.
pub(crate) async fn connect(env: &ActionEnv) -> Result<crate::docker::Connection, crate::docker::DockerError> {
    let host = crate::docker::resolve_host(env.docker_host.as_deref().unwrap_or(""));
    crate::docker::connect_to(&host, env.docker_timeout).await
}

fn state_line(s: &crate::docker::ContainerStatus) -> String {
    format!(
        "state {}, health {}, restart policy {}, restart count {}, exit code {}{}",
        s.state,
        s.health,
        s.restart_policy,
        s.restart_count,
        s.exit_code,
        if s.oom_killed { ", OOM-killed" } else { "" }
    )
}

/// How many times one engine call is made when the engine answers that the
/// container changed state under it ([`crate::docker::DockerError::is_transient`]).
const TRIES: u32 = 8;

/// How long the restart of a dependent waits for the container it depends
/// on to run again (a `network_mode: container:` sharer cannot start while
/// its parent is down; a parent in a restart loop is up now and then).
const PARENT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The pause before try `n + 1` (1-based `n`): 50 ms doubling, at most 800 ms.
fn retry_pause(n: u32) -> std::time::Duration {
    std::time::Duration::from_millis(50 << n.min(4))
}

/// The answers of the tries that raced the container's own state changes.
#[derive(Debug, Default)]
struct Tries(Vec<String>);

impl Tries {
    fn done(&self) -> String {
        match self.0.len() {
            0 => "done".to_string(),
            n => format!(
                "done on try {} (the engine first answered, as the container changed state on its own: {})",
                n + 1,
                self.0.join("; ")
            ),
        }
    }
}

/// Makes `call`, again (after reading the container's state again) while
/// the engine answers that the container changed state under it, at most
/// [`TRIES`] times. A container in a restart loop is running, exiting and
/// waiting to restart in turn; every op is correct in each of those states,
/// only the engine's answer to a request made during a change is not.
/// `Err` is the last answer with the earlier ones and the state read last.
/// The restart of a dependent first waits for its `parent` to run.
async fn act(
    conn: &crate::docker::Connection,
    container: &str,
    call: &Call,
    parent: Option<&str>,
) -> Result<Tries, ContainerActionError> {
    let mut tries = Tries::default();
    for n in 1..=TRIES {
        let parent_start = match parent {
            Some(parent) => wait_running(conn, parent, PARENT_WAIT).await,
            None => None,
        };
        let res = match call {
            Call::Restart => conn.restart_container(container, None).await,
            Call::Stop => conn.stop_container(container, None).await,
            Call::Start => conn.start_container(container).await,
            Call::Policy(p) => conn.set_restart_policy(container, &p.name, p.maximum_retry_count).await,
        };
        let e = match res {
            Ok(()) => return Ok(tries),
            Err(e) => e,
        };
        let state = match conn.inspect(container).await {
            Ok(s) => format!("state {}", s.state),
            Err(e) => format!("inspect: {e}"),
        };
        // A sharer of a parent's namespaces fails in many ways (runc's
        // errors) when the parent exits while it starts: whatever the
        // answer, a parent that is no longer the one seen running makes it
        // a race.
        let parent_moved = match (parent, parent_start) {
            (Some(p), Some(seen)) => !conn
                .inspect(p)
                .await
                .is_ok_and(|s| s.state == State::Running && s.started_at == Some(seen)),
            _ => false,
        };
        if !(e.is_transient() || parent_moved) || n == TRIES {
            return Err(ContainerActionError::Engine {
                source: Box::new(e),
                then: state,
                tries: n,
                earlier: tries.0,
            });
        }
        tries.0.push(format!("{} (then {state})", crate::error::chain(&e)));
        tokio::time::sleep(retry_pause(n)).await;
    }
    unreachable!("the last try returns")
}

/// Waits until `container` runs (at most `within`) and returns when it
/// started; a container that never does is left to the call that needs it,
/// whose error then says why (`None`).
async fn wait_running(
    conn: &crate::docker::Connection,
    container: &str,
    within: std::time::Duration,
) -> Option<std::time::SystemTime> {
    let mut poll = super::poll::Poll::until(tokio::time::Instant::now() + within);
    loop {
        if let Ok(s) = conn.inspect(container).await
            && s.state == State::Running
        {
            return s.started_at;
        }
        if !poll.next(None).await {
            return None;
        }
    }
}

impl Action for DockerAction {
    const TYPE: &'static str = "docker";
    type Target = Target;

    fn name(&self) -> String {
        format!("docker.{}", self.op.as_str())
    }

    fn validate(&self, key: &str, _: &Context<'_>) -> Result<(), ConfigError> {
        check_literal(&format!("{key}.container"), &self.container, target::validate_container)?;
        if self.restart_dependents && self.op != DockerOp::Restart {
            return Err(ConfigError::invalid(
                format!("{key}.restart_dependents"),
                "only valid with op = \"restart\"",
            ));
        }
        match (self.op, &self.policy) {
            (DockerOp::RestartPolicy, None) => Err(ConfigError::invalid(
                format!("{key}.policy"),
                "required for op = \"restart-policy\" (e.g. \"no\")",
            )),
            (DockerOp::RestartPolicy, Some(p)) => parse_policy(p)
                .map(|_| ())
                .map_err(|e| ConfigError::invalid(format!("{key}.policy"), e)),
            (_, Some(_)) => Err(ConfigError::invalid(
                format!("{key}.policy"),
                "only valid with op = \"restart-policy\"",
            )),
            (_, None) => Ok(()),
        }
    }

    fn resolve(&self, alert: &Alert) -> Result<Target, ActionError> {
        let container = render_field("container", &self.container, alert)?;
        target::validate_container(&container)?;
        Ok(Target {
            container,
            dependent_of: None,
        })
    }

    fn subjects(&self, t: &Target) -> Vec<Subject> {
        vec![Subject::Container(t.container.clone())]
    }

    async fn run(&self, t: &Target, _: &Alert, env: &ActionEnv, started: Instant) -> Outcome {
        let (a, container) = (self, t.container.as_str());
        let op = a.op.as_str();
        let call = match (a.op, &a.policy) {
            (DockerOp::RestartPolicy, Some(p)) => match parse_policy(p) {
                Ok(p) => Call::Policy(p),
                Err(e) => {
                    return Outcome::new(OutcomeResult::Refused, format!("docker {op} {container}: {e}"), started);
                }
            },
            (DockerOp::RestartPolicy, None) => {
                return Outcome::new(
                    OutcomeResult::Refused,
                    format!("docker {op} {container}: no policy configured"),
                    started,
                );
            }
            (DockerOp::Restart, _) => Call::Restart,
            (DockerOp::Stop, _) => Call::Stop,
            (DockerOp::Start, _) => Call::Start,
        };
        let what = match (&call, &t.dependent_of) {
            (Call::Policy(p), _) => format!(
                "docker update --restart={} {container}",
                a.policy.as_deref().unwrap_or(&p.name)
            ),
            (_, Some(of)) => format!("docker {op} {container} (depends on {of})"),
            _ => format!("docker {op} {container}"),
        };
        let conn = match connect(env).await {
            Ok(c) => c,
            Err(e) => return Outcome::state_unknown(&what, e, env, started),
        };
        let before = match conn.inspect(container).await {
            Ok(s) => s,
            Err(crate::docker::DockerError::NotFound(_)) => {
                return Outcome::new(
                    OutcomeResult::Refused,
                    format!("{what}: container {container} does not exist"),
                    started,
                );
            }
            Err(e) => return Outcome::state_unknown(&what, format_args!("inspect: {e}"), env, started),
        };
        let before_line = state_line(&before);
        if env.dry_run {
            return Outcome::would_run(&what, &before_line, started);
        }
        match act(&conn, container, &call, t.dependent_of.as_deref()).await {
            Ok(tries) => {
                let after = match conn.inspect(container).await {
                    Ok(s) => state_line(&s),
                    Err(e) => format!("inspect after: {e}"),
                };
                Outcome::acted(
                    &what,
                    Ok::<_, ContainerActionError>(tries.done()),
                    &format!("{before_line}; after: {after}"),
                    started,
                )
            }
            Err(e) => Outcome::acted(&what, Err(e), &before_line, started),
        }
    }

    /// With `restart_dependents`: the restarts of the running containers that
    /// depend on this one ([`dependents_of`]), in order; empty otherwise.
    /// Read-only (so dry runs list them too).
    async fn followers(&self, t: &Target, env: &ActionEnv) -> Result<Vec<Resolved>, FollowersError> {
        if !self.restart_dependents {
            return Ok(Vec::new());
        }
        let fail = |source| ContainerActionError::Dependents {
            container: t.container.clone(),
            source: Box::new(source),
        };
        let conn = connect(env).await.map_err(fail)?;
        // The engine resolves a name or an id (prefix) to one container.
        let id = conn.inspect(&t.container).await.map_err(fail)?.id;
        let all = conn.list().await.map_err(fail)?;
        let target = all
            .iter()
            .find(|c| c.id == id)
            .ok_or_else(|| ContainerActionError::NotListed(t.container.clone()))?;
        Ok(dependents_of(target, &all)
            .into_iter()
            .map(|d| {
                let spec = DockerAction {
                    op: DockerOp::Restart,
                    container: d.name.clone(),
                    policy: None,
                    restart_dependents: false,
                };
                let target = Target {
                    container: d.name.clone(),
                    dependent_of: Some(t.container.clone()),
                };
                Resolved::new(spec, target)
            })
            .collect())
    }

    /// Verified on the end state, whatever the state the action saw:
    /// restart/start — running and not restarted for
    /// [`super::poll::STABLE_FOR`], and healthy (or without a health check);
    /// stop — not running, and not started again, for `STABLE_FOR`;
    /// restart-policy — the policy reads as configured (for `no`: and no
    /// restart for `STABLE_FOR`, the loop is over).
    async fn verify(&self, t: &Target, env: &ActionEnv, until: tokio::time::Instant) -> Verification {
        let (a, container) = (self, t.container.as_str());
        let conn = match connect(env).await {
            Ok(c) => c,
            Err(e) => return Verification::NotHelped(format!("cannot reach the engine: {e}")),
        };
        let want_policy = a.policy.as_deref().and_then(|p| parse_policy(p).ok()).map(|p| p.name);
        let mut poll = super::poll::Poll::until(until);
        let mut up = super::poll::Stable::default();
        loop {
            let last = match conn.inspect(container).await {
                Ok(s) => {
                    let ok = match a.op {
                        // Down, and staying down: a container stopped while
                        // its restart loop was waiting must not come back.
                        DockerOp::Stop => up.look(
                            s.state.is_stopped()
                                .then_some((s.restart_count, s.finished_at)),
                        ),
                        // The policy reads as configured; "no" must also have
                        // ended a restart loop: not restarting, and the restart
                        // count unchanged for STABLE_FOR (the engine still
                        // carries out a restart it had already scheduled).
                        DockerOp::RestartPolicy => {
                            let policy = Some(&s.restart_policy) == want_policy.as_ref();
                            if want_policy.as_deref() == Some("no") {
                                let settled = policy && s.state != State::Restarting;
                                up.look(settled.then_some((s.restart_count, s.finished_at)))
                            } else {
                                policy
                            }
                        }
                        // Stable: running, same start and restart count for
                        // STABLE_FOR (a restart loop does not count); healthy
                        // (or without a health check) at the look that ends it.
                        DockerOp::Restart | DockerOp::Start => {
                            let running = up.look((s.state == State::Running).then_some((s.restart_count, s.started_at)));
                            running && matches!(s.health, Health::Healthy | Health::None)
                        }
                    };
                    if ok {
                        return Verification::Verified;
                    }
                    state_line(&s)
                }
                Err(e) => e.to_string(),
            };
            if !poll.next(up.due()).await {
                return Verification::NotHelped(format!("container {container}: {last}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, name: &str, running: bool, network: &str, labels: &[(&str, &str)]) -> Listed {
        Listed {
            id: id.into(),
            name: name.into(),
            running,
            network_mode: network.into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn compose(project: &str, service: &str, depends: &str) -> Vec<(&'static str, String)> {
        let mut l = vec![
            ("com.docker.compose.project", project.to_string()),
            ("com.docker.compose.service", service.to_string()),
        ];
        if !depends.is_empty() {
            l.push(("com.docker.compose.depends_on", depends.to_string()));
        }
        l
    }

    fn labelled(id: &str, name: &str, running: bool, labels: Vec<(&'static str, String)>) -> Listed {
        let l: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        c(id, name, running, "bridge", &l)
    }

    fn names(v: Vec<&Listed>) -> Vec<&str> {
        v.into_iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn dependents_by_network_mode_and_compose_labels_transitively_in_order() {
        let a_id = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let all = vec![
            labelled(a_id, "p-db-1", true, compose("p", "db", "")),
            // Compose v1's network_mode: service:db — the full id.
            c("b1", "sidecar", true, &format!("container:{a_id}"), &[]),
            // `docker run --network container:<name or short id>`.
            c("b2", "by-name", true, "container:p-db-1", &[]),
            c("b3", "by-prefix", true, "container:aaaaaaaaaaaa", &[]),
            // Compose v2's label, same project; and one that depends on it.
            labelled(
                "b4",
                "p-web-1",
                true,
                compose("p", "web", "db:service_healthy:false,cache:service_started:true"),
            ),
            labelled(
                "b5",
                "p-proxy-1",
                true,
                compose("p", "proxy", "web:service_started:false"),
            ),
            // Not dependents: another project, a stopped one, an unrelated one.
            labelled("x1", "q-web-1", true, compose("q", "web", "db:service_started:false")),
            c("x2", "stopped", false, "container:p-db-1", &[]),
            c("x3", "shares-stopped", true, "container:stopped", &[]),
            labelled("x4", "p-cache-1", true, compose("p", "cache", "")),
            c("x5", "plain", true, "container:", &[]),
        ];
        let got = names(dependents_of(&all[0], &all));
        assert_eq!(got, ["sidecar", "by-name", "by-prefix", "p-web-1", "p-proxy-1"]);
        // Nothing depends on the proxy; a cycle ends.
        assert!(dependents_of(&all[5], &all).is_empty());
        let cycle = vec![
            c("c1", "one", true, "container:two", &[]),
            c("c2", "two", true, "container:one", &[]),
        ];
        assert_eq!(names(dependents_of(&cycle[0], &cycle)), ["two"]);
    }

    #[test]
    fn restart_dependents_only_with_restart() {
        let ctx = Context {
            channels: &Default::default(),
        };
        let a: DockerAction = toml::from_str("op = \"stop\"\ncontainer = \"x\"\nrestart_dependents = true").unwrap();
        let e = a.validate("remediation[0].actions[0]", &ctx).unwrap_err().to_string();
        assert!(e.contains("remediation[0].actions[0].restart_dependents"), "{e}");
        let a: DockerAction = toml::from_str("op = \"restart\"\ncontainer = \"x\"\nrestart_dependents = true").unwrap();
        a.validate("k", &ctx).unwrap();
    }
}
