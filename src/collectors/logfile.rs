//! `logfile` collector: counts log lines matching named regexes, following
//! each file like `tail -F` (across rename-rotation and truncation) without
//! ever re-counting a line or holding more than one bounded line in memory.
//!
//! A background task polls every file each `interval`:
//! - at startup an existing file is opened at its end (old lines are not
//!   counted); a file that appears later is read from its beginning;
//! - truncation (`copytruncate`): the open file's size is below our offset,
//!   so reading restarts at 0;
//! - rotation (rename + new file): the path's device/inode differs from the
//!   open file's; the old file is read to its end first, then the new one
//!   from its beginning; while the path is missing the old file is kept open;
//! - a line is complete at `\n`; an unterminated tail waits for the next
//!   write (so a line split across two writes counts once); a line longer
//!   than `max_line_bytes` is matched on its first `max_line_bytes` bytes and
//!   counted once.
//!
//! Known limit (shared by every polling tailer): a truncation followed by
//! writes past the old offset within one interval looks like plain growth.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::collector::{CollectError, Collector};
use crate::error::ConfigError;
use crate::metrics::MetricSet;

/// `[logfile]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub enabled: bool,
    /// How often every file is checked for new lines, rotation and truncation.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Longest line kept in memory; longer lines are matched on this prefix.
    pub max_line_bytes: usize,
    /// `[[logfile.watch]]` entries.
    pub watch: Vec<FileWatch>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            interval: Duration::from_secs(1),
            max_line_bytes: 64 * 1024,
            watch: Vec::new(),
        }
    }
}

/// `[[logfile.watch]]`: one file and its named patterns.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWatch {
    /// Path of the log file (the `file` label).
    pub file: PathBuf,
    /// Pattern name (the `pattern` label) → regex matched against each line.
    pub patterns: BTreeMap<String, String>,
}

impl Config {
    /// Checks the section by building the followers the collector runs.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        self.build(key).map(drop)
    }

    /// One [`Follower`] per watch, after every check of the section.
    fn build(&self, key: &str) -> Result<Vec<Follower>, ConfigError> {
        if self.interval < Duration::from_millis(10) {
            return Err(ConfigError::invalid(format!("{key}.interval"), "must be at least 10ms"));
        }
        if self.max_line_bytes < 80 {
            return Err(ConfigError::invalid(
                format!("{key}.max_line_bytes"),
                "must be at least 80",
            ));
        }
        let mut files = HashSet::new();
        let mut followers = Vec::with_capacity(self.watch.len());
        for (i, w) in self.watch.iter().enumerate() {
            let k = format!("{key}.watch[{i}]");
            if w.file.as_os_str().is_empty() {
                return Err(ConfigError::invalid(format!("{k}.file"), "must not be empty"));
            }
            if !files.insert(&w.file) {
                return Err(ConfigError::invalid(
                    format!("{k}.file"),
                    format!("{} is watched twice; merge the patterns", w.file.display()),
                ));
            }
            if w.patterns.is_empty() {
                return Err(ConfigError::invalid(
                    format!("{k}.patterns"),
                    "needs at least one `name = \"regex\"`",
                ));
            }
            followers.push(Follower::with_patterns(
                w,
                compile_patterns(w, &k)?,
                self.max_line_bytes,
            ));
        }
        Ok(followers)
    }
}

/// A watch's patterns compiled, in order; errors name `<key>.patterns.<name>`.
fn compile_patterns(watch: &FileWatch, key: &str) -> Result<Vec<(String, regex::bytes::Regex)>, ConfigError> {
    watch
        .patterns
        .iter()
        .map(|(name, re)| {
            regex::bytes::Regex::new(re)
                .map(|r| (name.clone(), r))
                .map_err(|e| ConfigError::invalid(format!("{key}.patterns.{name}"), format!("invalid regex: {e}")))
        })
        .collect()
}

/// Why a poll could not read a file (kept for the log line).
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Bytes read per `read(2)`.
const CHUNK: usize = 64 * 1024;
/// At most this much is read from one file per poll, so one fast writer
/// cannot starve the other files; the rest is read on the next poll.
const MAX_BYTES_PER_POLL: u64 = 64 * 1024 * 1024;

/// Follows one file; owned by the background task, driven by [`Follower::poll`].
pub struct Follower {
    path: PathBuf,
    patterns: Vec<(String, regex::bytes::Regex)>,
    counts: Vec<u64>,
    max_line: usize,
    file: Option<File>,
    /// (device, inode) of `file`.
    id: (u64, u64),
    /// Bytes of `file` consumed so far.
    offset: u64,
    /// The unterminated line so far, at most `max_line` bytes.
    line: Vec<u8>,
    started: bool,
    readable: bool,
    last_error: Option<String>,
    buf: Box<[u8]>,
}

impl Follower {
    pub fn new(watch: &FileWatch, max_line_bytes: usize) -> Result<Follower, ConfigError> {
        Ok(Follower::with_patterns(
            watch,
            compile_patterns(watch, "logfile")?,
            max_line_bytes,
        ))
    }

    fn with_patterns(
        watch: &FileWatch,
        patterns: Vec<(String, regex::bytes::Regex)>,
        max_line_bytes: usize,
    ) -> Follower {
        Follower {
            path: watch.file.clone(),
            counts: vec![0; patterns.len()],
            patterns,
            max_line: max_line_bytes,
            file: None,
            id: (0, 0),
            offset: 0,
            line: Vec::new(),
            started: false,
            readable: false,
            last_error: None,
            buf: vec![0u8; CHUNK].into_boxed_slice(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the path could be opened at the last poll.
    pub fn readable(&self) -> bool {
        self.readable
    }

    /// Matched-line counts, in pattern-name order.
    pub fn counts(&self) -> impl Iterator<Item = (&str, u64)> {
        self.patterns
            .iter()
            .map(|(n, _)| n.as_str())
            .zip(self.counts.iter().copied())
    }

    /// Bytes of the unterminated line held in memory (at most `max_line_bytes`).
    pub fn pending_bytes(&self) -> usize {
        self.line.len()
    }

    /// The error of the last poll, if it failed.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    fn io(&self, source: std::io::Error) -> FollowError {
        FollowError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Reads whatever is new; see the module documentation for the rules.
    pub fn poll(&mut self) {
        let res = self.poll_inner();
        self.last_error = res.err().map(|e| e.to_string());
    }

    fn poll_inner(&mut self) -> Result<(), FollowError> {
        if !self.started {
            self.started = true;
            // Start at the end of an existing file: its old lines are history.
            let mut f = match File::open(&self.path) {
                Ok(f) => f,
                Err(e) => {
                    self.readable = false;
                    return Err(self.io(e));
                }
            };
            let meta = f.metadata().map_err(|e| self.io(e))?;
            self.offset = f.seek(SeekFrom::End(0)).map_err(|e| self.io(e))?;
            self.id = (meta.dev(), meta.ino());
            self.file = Some(f);
            self.readable = true;
            return Ok(());
        }

        // 1. Finish the file we have open (also after it was renamed away).
        if self.file.is_some() {
            self.drain()?;
        }

        // 2. Is the path still the file we hold?
        match std::fs::metadata(&self.path) {
            Ok(meta) if self.file.is_some() && (meta.dev(), meta.ino()) == self.id => {
                self.readable = true;
                Ok(())
            }
            Ok(_) => {
                // Rotated, or appeared: the old file was drained above; its
                // unterminated last line will never be completed there.
                if self.file.take().is_some() {
                    self.end_line();
                }
                let f = match File::open(&self.path) {
                    Ok(f) => f,
                    Err(e) => {
                        self.readable = false;
                        return Err(self.io(e));
                    }
                };
                let meta = f.metadata().map_err(|e| self.io(e))?;
                self.id = (meta.dev(), meta.ino());
                self.offset = 0;
                self.file = Some(f);
                self.readable = true;
                self.drain()
            }
            Err(e) => {
                // Renamed away and not yet recreated: keep the old file open,
                // the writer may still be appending to it.
                self.readable = false;
                Err(self.io(e))
            }
        }
    }

    /// Reads the open file from `offset` to its end (or the per-poll cap).
    fn drain(&mut self) -> Result<(), FollowError> {
        let Some(mut f) = self.file.take() else {
            return Ok(());
        };
        let res = self.drain_file(&mut f);
        self.file = Some(f);
        res
    }

    fn drain_file(&mut self, f: &mut File) -> Result<(), FollowError> {
        let len = f.metadata().map_err(|e| self.io(e))?.len();
        if len < self.offset {
            // Truncated in place: the tail we held belonged to the old content.
            self.end_line();
            self.offset = f.seek(SeekFrom::Start(0)).map_err(|e| self.io(e))?;
        }
        let mut budget = MAX_BYTES_PER_POLL;
        let mut buf = std::mem::take(&mut self.buf);
        let res = loop {
            if budget == 0 {
                break Ok(());
            }
            let want = buf.len().min(budget as usize);
            match f.read(&mut buf[..want]) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    self.offset += n as u64;
                    budget -= n as u64;
                    self.feed(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(self.io(e)),
            }
        };
        self.buf = buf;
        res
    }

    /// Splits a chunk into lines, keeping the unterminated tail. A line that
    /// lies whole inside the chunk is matched in place, without a copy.
    fn feed(&mut self, chunk: &[u8]) {
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            let piece = &chunk[start..nl];
            if self.line.is_empty() {
                count_line(
                    &self.patterns,
                    &mut self.counts,
                    &piece[..piece.len().min(self.max_line)],
                );
            } else {
                self.push(piece);
                self.end_line();
            }
            start = nl + 1;
        }
        self.push(&chunk[start..]);
    }

    fn push(&mut self, bytes: &[u8]) {
        let room = self.max_line.saturating_sub(self.line.len());
        self.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Counts the line held so far (if any) and clears it.
    fn end_line(&mut self) {
        count_line(&self.patterns, &mut self.counts, &self.line);
        self.line.clear();
    }
}

/// Adds one to each pattern matching `line` (without its `\r\n`). An empty
/// line counts nowhere, which also makes ending "no pending line" a no-op.
fn count_line(patterns: &[(String, regex::bytes::Regex)], counts: &mut [u64], line: &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return;
    }
    for ((_, re), n) in patterns.iter().zip(counts.iter_mut()) {
        if re.is_match(line) {
            *n += 1;
        }
    }
}

/// What a scrape reports for one file (published after every poll).
#[derive(Debug, Clone)]
struct FileStatus {
    file: String,
    readable: bool,
    counts: Vec<(String, u64)>,
}

pub struct LogfileCollector {
    interval: Duration,
    /// Built (regexes compiled) with the collector; the background task takes them.
    followers: Mutex<Vec<Follower>>,
    status: Arc<Mutex<Vec<FileStatus>>>,
}

impl LogfileCollector {
    pub fn new(cfg: &Config) -> Result<Self, ConfigError> {
        Ok(LogfileCollector {
            interval: cfg.interval,
            followers: Mutex::new(cfg.build("logfile")?),
            status: Arc::new(Mutex::new(Vec::new())),
        })
    }
}

#[async_trait]
impl Collector for LogfileCollector {
    fn name(&self) -> &'static str {
        "logfile"
    }

    async fn collect(&self, out: &mut MetricSet) -> Result<(), CollectError> {
        let status = crate::sync::lock(&self.status).clone();
        out.declare(
            "hostmedic_logfile_matched_lines",
            "Lines matching the pattern since hostmedic started following the file.",
            crate::metrics::Kind::Counter,
        );
        for f in &status {
            out.gauge(
                "hostmedic_logfile_readable",
                "Whether the log file could be opened at the last poll (0: missing or unreadable).",
                &[("file", f.file.as_str())],
                if f.readable { 1.0 } else { 0.0 },
            );
            for (pattern, n) in &f.counts {
                out.counter(
                    "hostmedic_logfile_matched_lines",
                    "",
                    &[("file", f.file.as_str()), ("pattern", pattern.as_str())],
                    *n as f64,
                );
            }
        }
        Ok(())
    }

    async fn background(self: Arc<Self>, shutdown: CancellationToken) {
        let mut followers = std::mem::take(&mut *crate::sync::lock(&self.followers));
        let mut errors: Vec<Option<String>> = vec![None; followers.len()];
        loop {
            let polled = tokio::task::spawn_blocking(move || {
                for f in followers.iter_mut() {
                    f.poll();
                }
                followers
            })
            .await;
            followers = match polled {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(collector = "logfile", error = %e, "log follower panicked; stopping");
                    return;
                }
            };
            let snapshot: Vec<FileStatus> = followers
                .iter()
                .map(|f| FileStatus {
                    file: f.path().display().to_string(),
                    readable: f.readable(),
                    counts: f.counts().map(|(n, c)| (n.to_string(), c)).collect(),
                })
                .collect();
            for (f, last) in followers.iter().zip(errors.iter_mut()) {
                let now = f.last_error().map(str::to_string);
                if now != *last {
                    match &now {
                        Some(e) => tracing::warn!(collector = "logfile", error = %e, "cannot read log file"),
                        None => tracing::info!(collector = "logfile", file = %f.path().display(), "following log file"),
                    }
                    *last = now;
                }
            }
            *crate::sync::lock(&self.status) = snapshot;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }
}
