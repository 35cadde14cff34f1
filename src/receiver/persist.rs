//! Background upkeep: the status file after each change (debounced), the
//! checkpoint (the state but the de-dup memory, which the journal replay
//! from the checkpoint's `dedup_offset` rebuilds) at most every 10 s, pruning once a minute,
//! and both files once more at shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::engine::Receiver;
use super::state;
use crate::sync::lock;

/// Checkpoints (the whole state) are written at most this often; the
/// journal replay covers what came after.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);

/// After a change, wait this long before writing, so a burst of commits
/// costs one write.
const DEBOUNCE: Duration = Duration::from_millis(500);

impl Receiver {
    /// Background: writes the status file when something changed (at most
    /// every 500 ms) and the checkpoint, prunes old state every minute, and
    /// writes both once more at shutdown.
    pub async fn background(self: Arc<Self>, shutdown: CancellationToken) {
        let mut prune = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => { self.persist(true).await; return; }
                _ = self.ledger.changed() => {
                    tokio::time::sleep(DEBOUNCE).await;
                    self.persist(false).await;
                    if self.ledger.is_dirty() {
                        self.ledger.mark_dirty(true);
                    }
                }
                _ = prune.tick() => {
                    let s = self.settings();
                    let mut core = self.ledger.core().await;
                    let max_window = s
                        .rules
                        .iter()
                        .map(|r| r.budget_window.max(r.longest_cooldown()))
                        .chain([s.cfg.budget_window, s.cfg.cooldown])
                        .max()
                        .unwrap_or_default()
                        .as_secs_f64();
                    core.state.prune(crate::time::now(), s.cfg.dedup_window.as_secs_f64(), max_window, s.cfg.approval_ttl.as_secs_f64());
                    drop(core);
                    self.persist(true).await;
                }
            }
        }
    }

    /// Writes the status file (small, every change, debounced) and, at most
    /// every 10 s or when `force`, the checkpoint (the state without the
    /// de-dup memory, cloned under the lock and serialized outside it). Both
    /// atomically.
    pub async fn persist(&self, force: bool) {
        if !self.ledger.take_dirty() && !force {
            return;
        }
        let want_cp = force || lock(&self.last_checkpoint).is_none_or(|t| t.elapsed() >= CHECKPOINT_EVERY);
        let s = self.settings();
        let (checkpoint, status) = {
            let mut core = self.ledger.core().await;
            let status = super::status::document(&s.cfg, &s.rules, &core.state, self.host.load().as_deref().cloned());
            // Checkpoint only a state whose every entry is on disk.
            let durable = self.ledger.durable();
            let cp = if want_cp && core.state.last_seq == durable.seq {
                core.state.journal_offset = durable.len;
                let window = s.cfg.dedup_window.as_secs_f64();
                core.state.dedup_offset = core.dedup_offset(crate::time::now(), durable.len, window);
                Some(core.state.checkpoint())
            } else {
                None
            };
            (cp, status)
        };
        if want_cp && checkpoint.is_none() {
            self.ledger.mark_dirty(false);
        }
        let (sp, tp) = (s.cfg.state_path.clone(), s.cfg.status_path.clone());
        let wrote_cp = checkpoint.is_some();
        let r = tokio::task::spawn_blocking(move || {
            let st = serde_json::to_vec_pretty(&status).expect("status serializes");
            state::write_atomic(&tp, &st).map_err(|e| format!("{}: {e}", tp.display()))?;
            if let Some(cp) = checkpoint {
                let bytes = serde_json::to_vec(&cp).expect("state serializes");
                state::write_atomic(&sp, &bytes).map_err(|e| format!("{}: {e}", sp.display()))?;
            }
            Ok::<(), String>(())
        })
        .await;
        match r {
            Ok(Err(e)) => {
                self.ledger.mark_dirty(false);
                tracing::warn!(error = %e, "cannot write the state/status file");
            }
            _ if wrote_cp => {
                *lock(&self.last_checkpoint) = Some(Instant::now());
            }
            _ => {}
        }
    }
}
