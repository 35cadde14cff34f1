//! Evidence about a container: State (status, OOMKilled, ExitCode,
//! RestartCount, health and failing streak), its last log lines (the
//! engine's `logs?tail=N`) and the output of its last health-check probes
//! (the engine keeps the last five in `State.Health.Log`), through the
//! Docker leaf ([`crate::docker`]).

use super::{Capture, Item};
use crate::actions::ActionEnv;

/// Most bytes of log read before the per-item bound applies.
const LOGS_MAX: usize = 256 * 1024;

pub async fn capture(cap: &Capture, env: &ActionEnv, name: &str) -> Item {
    let mut item = Item::new(format!("docker:{name}"), "container");
    item.look_further = format!("docker logs --tail 50 {name}; docker inspect --format '{{{{json .State}}}}' {name}");
    let conn = match crate::actions::docker::connect(env).await {
        Ok(c) => c,
        Err(e) => {
            item.errors.push(format!("engine: {e}"));
            return item;
        }
    };
    let (state, probes, logs) = tokio::join!(
        conn.inspect(name),
        conn.health_log(name),
        conn.logs_tail(name, cap.lines, LOGS_MAX)
    );
    match state {
        Ok(s) => {
            item.fact("State", s.state);
            item.fact("Health", s.health);
            if let Some(n) = s.failing_streak {
                item.fact("FailingStreak", n);
            }
            item.fact("OOMKilled", s.oom_killed);
            item.fact("ExitCode", s.exit_code);
            item.fact("RestartCount", s.restart_count);
            item.fact("RestartPolicy", &s.restart_policy);
            if let Some(t) = s.started_at {
                item.fact("StartedAt", humantime::format_rfc3339_seconds(t));
            }
            item.fact("Image", &s.image);
        }
        Err(e) => item.errors.push(format!("inspect: {e}")),
    }
    match probes {
        Ok(p) if !p.is_empty() => item.section(
            "health checks (oldest first)",
            p.iter()
                .map(|p| {
                    let out = p.output.trim().replace('\n', " ⏎ ");
                    format!("{} exit {}: {out}", p.start, p.exit_code)
                })
                .collect(),
            true,
        ),
        Ok(_) => {}
        Err(e) => item.errors.push(format!("health log: {e}")),
    }
    match logs {
        Ok(lines) => item.section("logs", lines, true),
        Err(e) => item.errors.push(format!("logs: {e}")),
    }
    item
}
