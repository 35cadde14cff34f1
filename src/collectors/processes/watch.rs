//! One process watch at run time: which processes it matches and the CPU
//! counter that stays monotonic while matching processes come and go.

use std::collections::HashMap;

use super::config::{CompiledWatch, Watch};
use super::{Key, Proc};

/// A watch's compiled regexes and the state that makes its CPU counter monotonic.
pub(super) struct WatchState {
    pub(super) cfg: Watch,
    comm: Option<regex::Regex>,
    cmdline: Option<regex::Regex>,
    /// Last seen ticks of each currently matching process.
    live: HashMap<Key, u64>,
    /// Ticks of matching processes that have since exited (or stopped matching).
    retired_ticks: u64,
}

impl WatchState {
    pub(super) fn new(w: CompiledWatch) -> Self {
        WatchState {
            cfg: w.cfg,
            comm: w.comm,
            cmdline: w.cmdline,
            live: HashMap::new(),
            retired_ticks: 0,
        }
    }

    fn matches(&self, p: &Proc) -> bool {
        self.comm.as_ref().is_none_or(|r| r.is_match(&p.stat.comm))
            && self
                .cmdline
                .as_ref()
                .is_none_or(|r| r.is_match(p.cmdline.as_deref().unwrap_or("")))
    }

    /// Folds one scan into the counter state; returns the matching processes.
    pub(super) fn update<'a>(&mut self, procs: &'a [Proc]) -> Vec<&'a Proc> {
        let matching: Vec<&Proc> = procs.iter().filter(|p| self.matches(p)).collect();
        let mut live = HashMap::with_capacity(matching.len());
        for p in &matching {
            let key = (p.stat.pid, p.stat.start_ticks);
            // ticks never decrease for one process; max() guards odd readings
            let prev = self.live.get(&key).copied().unwrap_or(0);
            live.insert(key, p.stat.cpu_ticks.max(prev));
        }
        for (key, ticks) in &self.live {
            if !live.contains_key(key) {
                self.retired_ticks += ticks;
            }
        }
        self.live = live;
        matching
    }

    pub(super) fn cpu_ticks(&self) -> u64 {
        self.retired_ticks + self.live.values().sum::<u64>()
    }
}
