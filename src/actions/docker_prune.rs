//! `type = "docker-prune"`: gives back the disk space Docker holds that
//! nothing uses, and proves it. Through the engine's API (no shell): the
//! dangling images (`docker image prune`) and the unused build cache
//! (`docker builder prune`) always; stopped containers only with
//! `containers = true`; volumes never, unless named in `volumes` (each
//! removed only when no container uses it: the engine refuses otherwise).
//!
//! Before and after, the free bytes of the filesystem holding the engine's
//! data root (`/info` `DockerRootDir`, statvfs) are measured, and the
//! outcome journals both the engine's `SpaceReclaimed` per kind and that
//! filesystem's change: `freed 6MB: images 3MB (1), build cache 3MB (2);
//! filesystem free 1.2GB → 1.21GB`. A dry run lists, from `/system/df`,
//! what would go, and changes nothing.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Action, ActionEnv, ActionError, Alert, ConfigError, Context, Outcome, OutcomeResult, Subject, Verification};
use crate::bytes::ByteSize;
use crate::docker::{Connection, DiskUsage, DockerError, Pruned};

/// `type = "docker-prune"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerPruneAction {
    /// Also remove every stopped container (and their writable layers).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub containers: bool,
    /// Volumes to remove, by name, each only when no container uses it.
    /// Volumes not named here are never touched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// Deadline of each prune request (and of `/system/df`).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(120)
}

/// The engine's leftovers: key `docker-prune`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// What the run found and did, for verification.
    pub run: RunRecord,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("docker-prune")
    }
}

/// What one run measured, shared by the clones of one resolved action.
#[derive(Debug, Clone, Default)]
pub struct RunRecord(Arc<OnceLock<Record>>);

/// Two resolved prunes are the same action whatever their runs measured.
impl PartialEq for RunRecord {
    fn eq(&self, _: &RunRecord) -> bool {
        true
    }
}

#[derive(Debug, Clone)]
struct Record {
    root: PathBuf,
    /// Bytes `/system/df` called reclaimable in what this action may remove.
    reclaimable: u64,
    free_before: Option<u64>,
    /// The engine's `SpaceReclaimed`, summed.
    reclaimed: u64,
}

/// Why a prune could not be planned or carried out.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("{0}")]
    Engine(#[from] DockerError),
    #[error("volume {name}: {why}")]
    Volume { name: String, why: String },
}

/// The filesystem's free bytes off the runtime (`None`: not readable from
/// here, e.g. in a container without the engine's data root).
async fn free_bytes(root: &Path) -> Option<u64> {
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || crate::du::free_bytes(&root).ok())
        .await
        .ok()
        .flatten()
}

fn human(b: u64) -> String {
    ByteSize(b).human()
}

fn free_text(b: Option<u64>) -> String {
    b.map_or_else(|| "unknown".to_string(), human)
}

/// What `/system/df` says this action would remove.
struct Plan {
    lines: Vec<String>,
    reclaimable: u64,
}

impl DockerPruneAction {
    fn plan(&self, df: &DiskUsage) -> Plan {
        let mut lines = Vec::new();
        let mut reclaimable = 0;
        let images: Vec<_> = df.images.iter().filter(|i| i.dangling() && i.containers == 0).collect();
        let bytes: u64 = images.iter().map(|i| i.size).sum();
        reclaimable += bytes;
        let ids: Vec<&str> = images.iter().map(|i| short_id(&i.id)).collect();
        lines.push(format!("dangling images {} ({}) [{}]", images.len(), human(bytes), ids.join(", ")));
        let cache: Vec<_> = df.build_cache.iter().filter(|c| !c.in_use && !c.shared).collect();
        let bytes: u64 = cache.iter().map(|c| c.size).sum();
        reclaimable += bytes;
        lines.push(format!("build cache records {} ({})", cache.len(), human(bytes)));
        if self.containers {
            let stopped: Vec<_> = df.containers.iter().filter(|c| !c.active()).collect();
            let bytes: u64 = stopped.iter().map(|c| c.size_rw).sum();
            reclaimable += bytes;
            let names: Vec<&str> = stopped.iter().map(|c| c.name.as_str()).collect();
            lines.push(format!("stopped containers {} ({}) [{}]", stopped.len(), human(bytes), names.join(", ")));
        }
        for name in &self.volumes {
            match df.volumes.iter().find(|v| &v.name == name) {
                Some(v) if v.ref_count == 0 => {
                    reclaimable += v.size.unwrap_or(0);
                    lines.push(format!("volume {name} ({})", v.size.map_or("size unknown".into(), human)));
                }
                Some(v) => lines.push(format!("volume {name} kept: used by {} container(s)", v.ref_count)),
                None => lines.push(format!("volume {name}: no such volume")),
            }
        }
        Plan { lines, reclaimable }
    }

    /// The prunes, in order (containers first: their images can go next).
    async fn prune(&self, conn: &Connection, df: &DiskUsage, done: &mut Vec<String>) -> Result<u64, PruneError> {
        let mut reclaimed = 0;
        let mut note = |what: &str, p: Pruned, done: &mut Vec<String>| {
            reclaimed += p.space_reclaimed;
            done.push(format!("{what} {} ({})", human(p.space_reclaimed), p.removed));
        };
        if self.containers {
            let p = conn.prune_stopped_containers(self.timeout).await?;
            note("containers", p, done);
        }
        let p = conn.prune_dangling_images(self.timeout).await?;
        note("images", p, done);
        let p = conn.prune_build_cache(self.timeout).await?;
        note("build cache", p, done);
        for name in &self.volumes {
            let Some(v) = df.volumes.iter().find(|v| &v.name == name) else {
                done.push(format!("volume {name} absent"));
                continue;
            };
            if v.ref_count != 0 {
                done.push(format!("volume {name} kept (in use)"));
                continue;
            }
            match conn.remove_unused_volume(name).await {
                Ok(()) => {
                    let size = v.size.unwrap_or(0);
                    reclaimed += size;
                    done.push(format!("volume {name} {}", human(size)));
                }
                Err(DockerError::NotFound(_)) => done.push(format!("volume {name} absent")),
                Err(e) if e.is_transient() => done.push(format!("volume {name} kept (in use: {e})")),
                Err(e) => {
                    return Err(PruneError::Volume {
                        name: name.clone(),
                        why: e.to_string(),
                    });
                }
            }
        }
        Ok(reclaimed)
    }
}

fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

impl Action for DockerPruneAction {
    const TYPE: &'static str = "docker-prune";
    type Target = Target;

    fn suggested_timeout(&self) -> Duration {
        // df, up to three prunes, the volumes.
        self.timeout * 5 + Duration::from_secs(10)
    }

    /// Volume names as the engine spells them; a timeout above 0.
    fn validate(&self, key: &str, _: &Context<'_>) -> Result<(), ConfigError> {
        if self.timeout < Duration::from_secs(1) {
            return Err(ConfigError::invalid(format!("{key}.timeout"), "must be at least 1s"));
        }
        let ok = |n: &str| {
            let mut chars = n.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
                && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        };
        if let Some(bad) = self.volumes.iter().find(|n| !ok(n)) {
            return Err(ConfigError::invalid(
                format!("{key}.volumes"),
                format!("{bad:?} is not a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"),
            ));
        }
        Ok(())
    }

    /// Nothing comes from the alert.
    fn resolve(&self, _: &Alert) -> Result<Target, ActionError> {
        Ok(Target { run: RunRecord::default() })
    }

    /// `docker-prune containers volumes=a,b`.
    fn describe(&self, _: &Target) -> String {
        let mut s = Self::TYPE.to_string();
        if self.containers {
            s.push_str(" containers");
        }
        if !self.volumes.is_empty() {
            s.push_str(&format!(" volumes={}", self.volumes.join(",")));
        }
        s
    }

    fn subjects(&self, _: &Target) -> Vec<Subject> {
        Vec::new()
    }

    async fn run(&self, t: &Target, _: &Alert, env: &ActionEnv, started: Instant) -> Outcome {
        let what = self.describe(t);
        let conn = match super::docker::connect(env).await {
            Ok(c) => c,
            Err(e) => return Outcome::state_unknown(&what, e, env, started),
        };
        let (root, df) = match tokio::try_join!(conn.root_dir(), conn.disk_usage(self.timeout)) {
            Ok(v) => v,
            Err(e) => return Outcome::state_unknown(&what, e, env, started),
        };
        let plan = self.plan(&df);
        let free_before = free_bytes(&root).await;
        let state = format!(
            "{}; filesystem of {} free {}",
            plan.lines.join("; "),
            root.display(),
            free_text(free_before)
        );
        if env.dry_run {
            return Outcome::new(
                OutcomeResult::DryRun,
                format!("would prune ({} reclaimable): {state}", human(plan.reclaimable)),
                started,
            );
        }
        let mut done = Vec::new();
        let pruned = self.prune(&conn, &df, &mut done).await;
        let free_after = free_bytes(&root).await;
        let change = match (free_before, free_after) {
            (Some(b), Some(a)) if a >= b => format!(" (+{})", human(a - b)),
            (Some(b), Some(a)) => format!(" (-{}: something else wrote meanwhile)", human(b - a)),
            _ => String::new(),
        };
        let fs = format!(
            "filesystem free {} → {}{change}",
            free_text(free_before),
            free_text(free_after)
        );
        let reclaimed = *pruned.as_ref().unwrap_or(&0);
        let _ = t.run.0.set(Record {
            root: root.clone(),
            reclaimable: plan.reclaimable,
            free_before,
            reclaimed,
        });
        match pruned {
            Ok(n) => Outcome::new(
                OutcomeResult::Ok,
                format!("{what}: freed {}: {}; {fs}", human(n), done.join(", ")),
                started,
            ),
            Err(e) => Outcome::new(
                OutcomeResult::Failed,
                format!("{what}: {e} (done: {}; {fs})", done.join(", ")),
                started,
            ),
        }
    }

    /// Verified when space came back (the engine reclaimed bytes, or the
    /// data root's filesystem has more free than before) or nothing was
    /// reclaimable; not helped otherwise, with the numbers.
    async fn verify(&self, t: &Target, _: &ActionEnv, _: tokio::time::Instant) -> Verification {
        let Some(r) = t.run.0.get() else {
            return Verification::NotHelped("the run measured nothing (it did not reach the engine)".into());
        };
        let free_now = free_bytes(&r.root).await;
        let grew = matches!((r.free_before, free_now), (Some(b), Some(n)) if n > b);
        if r.reclaimed > 0 || grew || r.reclaimable == 0 {
            return Verification::Verified;
        }
        Verification::NotHelped(format!(
            "{} were reclaimable, the engine reclaimed 0 B and the filesystem of {} went from {} to {} free",
            human(r.reclaimable),
            r.root.display(),
            free_text(r.free_before),
            free_text(free_now)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> DockerPruneAction {
        toml::from_str(toml_text).unwrap_or_else(|e| panic!("{toml_text}: {e}"))
    }

    #[test]
    fn spec_parses_validates_and_describes_itself() {
        let a = spec("");
        assert!(!a.containers && a.volumes.is_empty());
        let t = a.resolve(&Alert::default()).unwrap();
        assert_eq!((a.describe(&t), t.to_string()), ("docker-prune".into(), "docker-prune".into()));
        let a = spec("containers = true\nvolumes = [\"cache\", \"tmp-1\"]\n");
        assert_eq!(a.describe(&t), "docker-prune containers volumes=cache,tmp-1");
        assert!(a.validate("r.a", &Context::default()).is_ok());
        let bad = spec("volumes = [\"../etc\"]\n");
        let e = bad.validate("r.a", &Context::default()).unwrap_err().to_string();
        assert!(e.contains("r.a.volumes"), "{e}");
        assert!(toml::from_str::<DockerPruneAction>("all = true\n").is_err());
    }

    #[test]
    fn plan_takes_only_what_it_may() {
        let df = DiskUsage::parse(
            br#"{"LayersSize":10,
              "Images":[{"Id":"sha256:0123456789abcdef","RepoTags":null,"Size":300,"Containers":0},
                        {"Id":"sha256:used","RepoTags":null,"Size":50,"Containers":1},
                        {"Id":"sha256:tagged","RepoTags":["app:1"],"Size":70,"Containers":0}],
              "Containers":[{"Names":["/old"],"SizeRw":20,"State":"exited"},{"Names":["/web"],"SizeRw":5,"State":"running"}],
              "Volumes":[{"Name":"junk","UsageData":{"Size":40,"RefCount":0}},{"Name":"db","UsageData":{"Size":900,"RefCount":1}}],
              "BuildCache":[{"ID":"x","Size":200,"InUse":false,"Shared":false},{"ID":"y","Size":9,"InUse":true,"Shared":false}]}"#,
        )
        .unwrap();
        let p = spec("").plan(&df);
        assert_eq!(p.reclaimable, 500);
        assert_eq!(p.lines[0], "dangling images 1 (300B) [0123456789ab]");
        let p = spec("containers = true\nvolumes = [\"junk\", \"db\", \"gone\"]\n").plan(&df);
        assert_eq!(p.reclaimable, 560);
        assert!(p.lines.iter().any(|l| l == "stopped containers 1 (20B) [old]"), "{:?}", p.lines);
        assert!(p.lines.iter().any(|l| l == "volume db kept: used by 1 container(s)"), "{:?}", p.lines);
        assert!(p.lines.iter().any(|l| l == "volume gone: no such volume"), "{:?}", p.lines);
    }
}
