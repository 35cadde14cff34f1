//! `git_lfs` collector: local Git LFS object stores measured against the
//! remote's per-object size limit, so an over-limit object is seen before a
//! nightly push fails on it (HTTP 422 "Size must be less than or equal to
//! 2147483648").
//!
//! Per repository it reports the objects under `<git-common-dir>/lfs/objects/
//! <oid[0:2]>/<oid[2:4]>/<oid>` (count, bytes, largest, how many are over the
//! limit and, bounded, which ones with the HEAD paths whose pointer names
//! them) and the LFS pointers in HEAD whose object is missing locally or that
//! are not valid pointers.
//!
//! Scanning runs in [`Collector::background`] every `scan_interval` and its
//! result is cached: a scrape only copies the cached numbers. Rescans are
//! incremental: a fan-out directory whose mtime has not changed is not listed
//! again (git's "racy" rule applies: an mtime too close to the scan start is
//! never trusted, so a change in the same clock tick is not missed). HEAD is
//! read through `gix` (refs, trees, blob headers and small blobs); pointer
//! text is parsed here, per the git-lfs pointer spec, and only re-read when
//! HEAD's tree changes.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::bytes::ByteSize;
use crate::collector::{CollectError, Collector, scan_every};
use crate::error::ConfigError;
use crate::metrics::MetricSet;

/// The default per-object limit of the common LFS hosts: 2 GiB.
pub const DEFAULT_SIZE_LIMIT: u64 = 2_147_483_648;

/// `[git_lfs]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub enabled: bool,
    /// Repositories to watch (work trees or bare repositories).
    pub repos: Vec<PathBuf>,
    /// Directories searched for repositories on every scan (a directory with
    /// a `.git` entry is a repository; the search does not descend into one).
    pub search_roots: Vec<PathBuf>,
    /// How deep below each search root to look (1 = the root's children).
    pub search_depth: usize,
    /// The remote's per-object limit; objects strictly larger are over it.
    pub size_limit: ByteSize,
    /// At most this many `hostmedic_git_lfs_object_over_limit_bytes` series
    /// per repository (the largest objects win).
    pub max_series_per_repo: usize,
    /// Time between two background scans.
    #[serde(with = "humantime_serde")]
    pub scan_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            repos: Vec::new(),
            search_roots: Vec::new(),
            search_depth: 3,
            size_limit: ByteSize(DEFAULT_SIZE_LIMIT),
            max_series_per_repo: 20,
            scan_interval: Duration::from_secs(300),
        }
    }
}

/// Deepest `search_depth` accepted: deeper searches belong in `repos`.
pub const MAX_SEARCH_DEPTH: usize = 8;

impl Config {
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if self.scan_interval.is_zero() {
            return Err(ConfigError::invalid(
                format!("{key}.scan_interval"),
                "must be greater than 0",
            ));
        }
        if self.search_depth == 0 || self.search_depth > MAX_SEARCH_DEPTH {
            return Err(ConfigError::invalid(
                format!("{key}.search_depth"),
                format!("must be between 1 and {MAX_SEARCH_DEPTH}"),
            ));
        }
        if self.size_limit.0 == 0 {
            return Err(ConfigError::invalid(
                format!("{key}.size_limit"),
                "must be greater than 0",
            ));
        }
        for (i, p) in self.repos.iter().enumerate() {
            if p.as_os_str().is_empty() {
                return Err(ConfigError::invalid(format!("{key}.repos[{i}]"), "must not be empty"));
            }
        }
        for (i, p) in self.search_roots.iter().enumerate() {
            if p.as_os_str().is_empty() {
                return Err(ConfigError::invalid(
                    format!("{key}.search_roots[{i}]"),
                    "must not be empty",
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Pointer files (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md)

/// A pointer file's upper size bound: the spec says pointers are < 1024 bytes.
pub const POINTER_MAX_BYTES: u64 = 1024;

/// A 32-byte SHA-256 object id.
pub type Oid = [u8; 32];

/// A valid LFS pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pointer {
    pub oid: Oid,
    pub size: u64,
}

/// What a blob is, read as a possible pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PointerParse {
    /// Ordinary content.
    NotPointer,
    Pointer(Pointer),
    /// Starts like a pointer (`version https://git-lfs…`) but breaks the spec.
    Invalid(String),
}

const SPEC_VERSIONS: [&str; 2] = [
    "https://git-lfs.github.com/spec/v1",
    "https://hawser.github.com/spec/v1",
];

/// Lowercase hex → bytes; `None` unless exactly 64 lowercase hex digits.
pub fn parse_oid_hex(s: &[u8]) -> Option<Oid> {
    if s.len() != 64 {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = nib(pair[0])? << 4 | nib(pair[1])?;
    }
    Some(out)
}

pub fn oid_hex(oid: &Oid) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in oid {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// Parses a blob as an LFS pointer: `key value\n` lines, `version` first,
/// the other keys in byte order without repeats, keys of `[a-z0-9.-]`,
/// required `oid sha256:<64 hex>` and `size <decimal>`, trailing newline,
/// less than 1024 bytes. Extension keys (`ext-…`) are allowed and ignored.
pub fn parse_pointer(data: &[u8]) -> PointerParse {
    if !data.starts_with(b"version ") {
        return PointerParse::NotPointer;
    }
    let bad = |why: &str| PointerParse::Invalid(why.to_string());
    let Ok(text) = std::str::from_utf8(data) else {
        return bad("not UTF-8");
    };
    let first = text.split('\n').next().unwrap_or_default();
    let version = &first["version ".len()..];
    if !SPEC_VERSIONS.contains(&version) {
        // `version` followed by anything else is ordinary text, unless it
        // names the LFS spec in some other (unsupported) way.
        return if version.contains("git-lfs") || version.contains("hawser") {
            bad("unknown pointer version")
        } else {
            PointerParse::NotPointer
        };
    }
    if data.len() as u64 >= POINTER_MAX_BYTES {
        return bad("pointer larger than 1023 bytes");
    }
    if !text.ends_with('\n') {
        return bad("no trailing newline");
    }
    let (mut oid, mut size) = (None, None);
    let mut prev_key: Option<&str> = None;
    for line in text[first.len() + 1..].split_terminator('\n') {
        let Some((key, value)) = line.split_once(' ') else {
            return bad("line without `key value`");
        };
        if key.is_empty()
            || !key
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        {
            return bad("invalid key");
        }
        if key == "version" || prev_key.is_some_and(|p| p >= key) {
            return bad("keys out of order or repeated");
        }
        prev_key = Some(key);
        match key {
            "oid" => {
                let Some(hex) = value.strip_prefix("sha256:") else {
                    return bad("oid is not sha256");
                };
                match parse_oid_hex(hex.as_bytes()) {
                    Some(o) => oid = Some(o),
                    None => return bad("oid is not 64 lowercase hex digits"),
                }
            }
            "size" => {
                let digits_only = !value.is_empty() && value.bytes().all(|c| c.is_ascii_digit());
                match value.parse::<u64>() {
                    Ok(n) if digits_only => size = Some(n),
                    _ => return bad("size is not a non-negative integer"),
                }
            }
            _ => {}
        }
    }
    match (oid, size) {
        (Some(oid), Some(size)) => PointerParse::Pointer(Pointer { oid, size }),
        (None, _) => bad("no oid"),
        (_, None) => bad("no size"),
    }
}

// ---------------------------------------------------------------------------
// The object store, scanned incrementally.
//
// Every call is relative to an open directory (`openat`/`fstatat`), so a
// rescan costs one short lookup per fan-out directory instead of a full path
// resolution, and the 256 top-level fan-out directories are split over two
// threads. Modification times are compared as raw `(sec, nsec)` pairs.

/// Modification times closer than this to the scan start are not trusted
/// for skipping (a change in the same clock tick would keep the same mtime).
pub const RACY_WINDOW: Duration = Duration::from_secs(1);

/// `(st_mtime, st_mtime_nsec)`.
type Mtime = (i64, i64);

#[derive(Debug, Default)]
struct LeafDir {
    mtime: Option<Mtime>,
    objects: Vec<(Oid, u64)>,
}

#[derive(Debug, Default)]
struct MidDir {
    mtime: Option<Mtime>,
    /// Indexed by the second fan-out byte.
    leaves: Vec<Option<LeafDir>>,
}

/// What the last scan saw in one object store; reused by the next scan.
#[derive(Debug, Default)]
pub struct StoreCache {
    top_mtime: Option<Mtime>,
    /// Indexed by the first fan-out byte.
    mids: Vec<Option<MidDir>>,
}

/// How much work one store scan did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanStats {
    /// Directories read (readdir) in this scan.
    pub dirs_listed: usize,
    /// Fan-out directories whose unchanged mtime let the scan skip them.
    pub dirs_skipped: usize,
}

impl ScanStats {
    fn add(&mut self, o: ScanStats) {
        self.dirs_listed += o.dirs_listed;
        self.dirs_skipped += o.dirs_skipped;
    }
}

fn trusted(cached: Option<Mtime>, now: Mtime) -> bool {
    cached == Some(now)
}

/// The mtime to remember, or `None` when it is too recent to be trusted.
fn remember(mtime: Mtime, scan_start: Mtime) -> Option<Mtime> {
    ((mtime.0 + RACY_WINDOW.as_secs() as i64, mtime.1) < scan_start).then_some(mtime)
}

fn to_mtime(t: SystemTime) -> Mtime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos() as i64),
        Err(_) => (0, 0),
    }
}

fn st_mtime(st: &nix::sys::stat::FileStat) -> Mtime {
    (st.st_mtime, st.st_mtime_nsec)
}

fn file_kind(st: &nix::sys::stat::FileStat) -> nix::sys::stat::SFlag {
    use nix::sys::stat::SFlag;
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

fn is_dir(st: &nix::sys::stat::FileStat) -> bool {
    file_kind(st) == nix::sys::stat::SFlag::S_IFDIR
}

fn is_reg(st: &nix::sys::stat::FileStat) -> bool {
    file_kind(st) == nix::sys::stat::SFlag::S_IFREG
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The two-character fan-out name of `b`, without allocating.
fn fanout_name(b: u8) -> [u8; 2] {
    [HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]
}

fn name_str(n: &[u8; 2]) -> &str {
    std::str::from_utf8(n).expect("hex is ASCII")
}

/// `"ab"` → 0xab for the two-character lowercase hex fan-out names.
fn fanout_byte(name: &[u8]) -> Option<u8> {
    if name.len() != 2 {
        return None;
    }
    let mut full = [b'0'; 64];
    full[..2].copy_from_slice(name);
    parse_oid_hex(&full).map(|o| o[0])
}

fn errno(e: nix::Error) -> io::Error {
    io::Error::from(e)
}

/// `fstatat`, with "does not exist" as `None`.
fn stat_at<Fd: std::os::fd::AsFd>(dir: Fd, name: &str) -> io::Result<Option<nix::sys::stat::FileStat>> {
    match nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::empty()) {
        Ok(st) => Ok(Some(st)),
        Err(nix::Error::ENOENT) => Ok(None),
        Err(e) => Err(errno(e)),
    }
}

fn dir_flags() -> nix::fcntl::OFlag {
    use nix::fcntl::OFlag;
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
}

/// Opens `name` under `dir` as a directory; `None` when it vanished.
fn open_at<Fd: std::os::fd::AsFd>(dir: Fd, name: &str) -> io::Result<Option<std::os::fd::OwnedFd>> {
    match nix::fcntl::openat(dir, name, dir_flags(), nix::sys::stat::Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(nix::Error::ENOENT) => Ok(None),
        Err(e) => Err(errno(e)),
    }
}

/// Names in an open directory (without `.` and `..`).
fn read_names<Fd: std::os::fd::AsFd>(dir: Fd) -> io::Result<Vec<(Vec<u8>, Option<nix::dir::Type>)>> {
    let mut d = nix::dir::Dir::openat(dir, ".", dir_flags(), nix::sys::stat::Mode::empty()).map_err(errno)?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e.map_err(errno)?;
        let name = e.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        out.push((name.to_vec(), e.file_type()));
    }
    Ok(out)
}

/// The fan-out subdirectories (`aa` or `bb`) in an open directory.
fn list_fanout<Fd: std::os::fd::AsFd + Copy>(dir: Fd) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    for (name, ty) in read_names(dir)? {
        let Some(b) = fanout_byte(&name) else { continue };
        let is_dir = match ty {
            Some(t) => t == nix::dir::Type::Directory,
            None => stat_at(dir, name_str(&fanout_name(b)))?.is_some_and(|s| is_dir(&s)),
        };
        if is_dir {
            v.push(b);
        }
    }
    Ok(v)
}

/// The objects in one open leaf directory `aa/bb`.
fn list_objects<Fd: std::os::fd::AsFd + Copy>(dir: Fd, aa: u8, bb: u8) -> io::Result<Vec<(Oid, u64)>> {
    let mut v = Vec::new();
    for (name, _) in read_names(dir)? {
        let Some(oid) = parse_oid_hex(&name) else {
            continue; // temporary or foreign file
        };
        if oid[0] != aa || oid[1] != bb {
            continue;
        }
        let name = std::str::from_utf8(&name).expect("hex is ASCII");
        match stat_at(dir, name)? {
            Some(st) if is_reg(&st) => v.push((oid, st.st_size.max(0) as u64)),
            _ => {} // not a file, or removed meanwhile
        }
    }
    Ok(v)
}

/// Updates `slot` (one `aa` directory) from disk.
fn scan_mid<Fd: std::os::fd::AsFd + Copy>(
    top: Fd,
    aa: u8,
    slot: &mut Option<MidDir>,
    scan_start: Mtime,
    stats: &mut ScanStats,
) -> io::Result<()> {
    let Some(mid) = slot.as_mut() else { return Ok(()) };
    let aa_name = fanout_name(aa);
    let Some(fd) = open_at(top, name_str(&aa_name))? else {
        *slot = None; // vanished during the scan
        return Ok(());
    };
    let st = nix::sys::stat::fstat(&fd).map_err(errno)?;
    let mt = st_mtime(&st);
    if mid.leaves.is_empty() {
        mid.leaves.resize_with(256, || None);
    }
    if !trusted(mid.mtime, mt) {
        stats.dirs_listed += 1;
        let mut keep = [false; 256];
        for b in list_fanout(&fd)? {
            keep[b as usize] = true;
            mid.leaves[b as usize].get_or_insert_with(LeafDir::default);
        }
        for (i, l) in mid.leaves.iter_mut().enumerate() {
            if !keep[i] {
                *l = None;
            }
        }
        mid.mtime = remember(mt, scan_start);
    } else {
        stats.dirs_skipped += 1;
    }
    for (bb, lslot) in mid.leaves.iter_mut().enumerate() {
        let Some(leaf) = lslot.as_mut() else { continue };
        let bb_name = fanout_name(bb as u8);
        let res = (|| -> io::Result<bool> {
            let Some(st) = stat_at(&fd, name_str(&bb_name))? else {
                return Ok(false);
            };
            let lt = st_mtime(&st);
            if trusted(leaf.mtime, lt) {
                stats.dirs_skipped += 1;
                return Ok(true);
            }
            stats.dirs_listed += 1;
            let Some(lfd) = open_at(&fd, name_str(&bb_name))? else {
                return Ok(false);
            };
            leaf.objects = list_objects(&lfd, aa, bb as u8)?;
            leaf.mtime = remember(lt, scan_start);
            Ok(true)
        })();
        match res {
            Ok(true) => {}
            Ok(false) => *lslot = None,
            Err(e) => {
                // Do not trust anything above a directory we failed on.
                mid.mtime = None;
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Scans `mids[i]` for `aa = first + i`.
fn scan_mids<Fd: std::os::fd::AsFd + Copy>(
    top: Fd,
    first: usize,
    mids: &mut [Option<MidDir>],
    scan_start: Mtime,
) -> io::Result<ScanStats> {
    let mut stats = ScanStats::default();
    for (i, slot) in mids.iter_mut().enumerate() {
        scan_mid(top, (first + i) as u8, slot, scan_start, &mut stats)?;
    }
    Ok(stats)
}

impl StoreCache {
    /// Brings the cache up to date with `objects_dir`, listing only the
    /// directories whose mtime changed since the last scan. A missing store
    /// is an empty one (a repository without LFS).
    pub fn scan(&mut self, objects_dir: &Path, scan_start: SystemTime) -> io::Result<ScanStats> {
        let scan_start = to_mtime(scan_start);
        let mut stats = ScanStats::default();
        let top = match nix::fcntl::open(objects_dir, dir_flags(), nix::sys::stat::Mode::empty()) {
            Ok(fd) => fd,
            Err(nix::Error::ENOENT) => {
                *self = StoreCache::default();
                return Ok(stats);
            }
            Err(e) => return Err(errno(e)),
        };
        let top_mt = st_mtime(&nix::sys::stat::fstat(&top).map_err(errno)?);
        if self.mids.is_empty() {
            self.mids.resize_with(256, || None);
        }
        if !trusted(self.top_mtime, top_mt) {
            stats.dirs_listed += 1;
            let mut keep = [false; 256];
            for b in list_fanout(&top)? {
                keep[b as usize] = true;
                self.mids[b as usize].get_or_insert_with(MidDir::default);
            }
            for (i, m) in self.mids.iter_mut().enumerate() {
                if !keep[i] {
                    *m = None;
                }
            }
            self.top_mtime = remember(top_mt, scan_start);
        } else {
            stats.dirs_skipped += 1;
        }
        // Two halves on two threads (this machine class has two cores); a
        // small store is not worth a thread.
        let present = self.mids.iter().filter(|m| m.is_some()).count();
        let res = if present < 64 {
            scan_mids(&top, 0, &mut self.mids, scan_start)
        } else {
            let (lo, hi) = self.mids.split_at_mut(128);
            let top_ref = &top;
            std::thread::scope(|s| {
                let h = s.spawn(move || scan_mids(top_ref, 128, hi, scan_start));
                let a = scan_mids(top_ref, 0, lo, scan_start);
                let b = h
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("store scan thread panicked")));
                let mut sum = a?;
                sum.add(b?);
                Ok(sum)
            })
        };
        match res {
            Ok(s) => {
                stats.add(s);
                Ok(stats)
            }
            Err(e) => {
                self.top_mtime = None;
                Err(e)
            }
        }
    }

    /// Every object seen, as `(oid, size)`.
    pub fn objects(&self) -> impl Iterator<Item = &(Oid, u64)> {
        self.mids
            .iter()
            .flatten()
            .flat_map(|m| m.leaves.iter().flatten())
            .flat_map(|l| l.objects.iter())
    }

    /// Whether the store holds `oid` (any size).
    pub fn contains(&self, oid: &Oid) -> bool {
        self.mids
            .get(oid[0] as usize)
            .and_then(|m| m.as_ref())
            .and_then(|m| m.leaves.get(oid[1] as usize))
            .and_then(|l| l.as_ref())
            .is_some_and(|l| l.objects.iter().any(|(o, _)| o == oid))
    }
}

// ---------------------------------------------------------------------------
// HEAD's pointers, read through gix.

/// The LFS pointers found in one tree.
#[derive(Debug, Default, Clone)]
pub struct HeadPointers {
    /// `(path, pointer)` for every valid pointer blob.
    pub pointers: Vec<(String, Pointer)>,
    /// Paths of blobs that start like a pointer but are not valid ones.
    pub invalid: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct HeadCache {
    tree: Option<gix::ObjectId>,
    found: HeadPointers,
    /// Parsed result per blob id of the current tree, so a changed HEAD
    /// re-reads only new blobs.
    blobs: HashMap<gix::ObjectId, PointerParse>,
}

/// Walks `tree` recursively and classifies every blob smaller than 1024
/// bytes (only those can be pointers; larger blobs are never read).
fn read_pointers(
    repo: &gix::Repository,
    tree: gix::ObjectId,
    known: &HashMap<gix::ObjectId, PointerParse>,
    seen: &mut HashMap<gix::ObjectId, PointerParse>,
) -> Result<HeadPointers, String> {
    let mut out = HeadPointers::default();
    let mut stack = vec![(String::new(), tree)];
    while let Some((prefix, id)) = stack.pop() {
        let t = repo.find_tree(id).map_err(|e| format!("reading tree {id}: {e}"))?;
        let decoded = t.decode().map_err(|e| format!("decoding tree {id}: {e}"))?;
        for entry in &decoded.entries {
            let name = entry.filename.to_string();
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let oid = entry.oid.to_owned();
            if entry.mode.is_tree() {
                stack.push((path, oid));
                continue;
            }
            if !entry.mode.is_blob() {
                continue; // symlinks, submodules
            }
            let parsed = match seen.get(&oid).or_else(|| known.get(&oid)) {
                Some(p) => {
                    let p = p.clone();
                    seen.insert(oid, p.clone());
                    p
                }
                None => {
                    let header = repo.find_header(oid).map_err(|e| format!("reading blob {oid}: {e}"))?;
                    let p = if header.size() == 0 || header.size() >= POINTER_MAX_BYTES {
                        PointerParse::NotPointer
                    } else {
                        let blob = repo.find_object(oid).map_err(|e| format!("reading blob {oid}: {e}"))?;
                        parse_pointer(&blob.data)
                    };
                    seen.insert(oid, p.clone());
                    p
                }
            };
            match parsed {
                PointerParse::NotPointer => {}
                PointerParse::Pointer(p) => out.pointers.push((path, p)),
                PointerParse::Invalid(why) => out.invalid.push((path, why)),
            }
        }
    }
    out.pointers.sort_by(|a, b| a.0.cmp(&b.0));
    out.invalid.sort();
    Ok(out)
}

// ---------------------------------------------------------------------------
// One repository.

/// Why a repository could not be scanned; the label value is `as_label()`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    #[error("repository path does not exist: {0}")]
    Missing(String),
    #[error("not a git repository: {0}")]
    NotAGitRepo(String),
    #[error("cannot read repository: {0}")]
    Unreadable(String),
}

impl RepoError {
    /// The `error` label value.
    pub fn as_label(&self) -> &'static str {
        match self {
            RepoError::Missing(_) => "missing",
            RepoError::NotAGitRepo(_) => "not_a_git_repo",
            RepoError::Unreadable(_) => "unreadable",
        }
    }
}

/// The cached result for one repository.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoSummary {
    pub objects: u64,
    pub bytes: u64,
    pub largest: u64,
    pub over_limit: u64,
    /// The largest over-limit objects (at most `max_series_per_repo`):
    /// `(oid hex, size, HEAD paths whose pointer names it, comma-joined)`.
    pub over_limit_series: Vec<(String, u64, String)>,
    pub pointers_missing_object: u64,
    pub pointers_invalid: u64,
    pub stats: ScanStats,
}

#[derive(Debug, Clone)]
pub struct RepoReport {
    pub repo: String,
    pub scanned_at: SystemTime,
    pub result: Result<RepoSummary, RepoError>,
}

#[derive(Default)]
struct RepoState {
    store: StoreCache,
    head: HeadCache,
    last_error: Option<&'static str>,
    reported: bool,
}

fn is_permission(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::PermissionDenied
        {
            return true;
        }
        cur = e.source();
    }
    err.to_string().contains("Permission denied")
}

fn io_repo_error(path: &Path, e: &io::Error) -> RepoError {
    let what = format!("{}: {e}", path.display());
    match e.kind() {
        io::ErrorKind::NotFound => RepoError::Missing(what),
        io::ErrorKind::NotADirectory => RepoError::NotAGitRepo(what),
        _ => RepoError::Unreadable(what),
    }
}

fn open_repo(path: &Path) -> Result<gix::Repository, RepoError> {
    let meta = fs::metadata(path).map_err(|e| io_repo_error(path, &e))?;
    if !meta.is_dir() {
        return Err(RepoError::NotAGitRepo(format!("{} is not a directory", path.display())));
    }
    // Read the directory ourselves first: gix reports an unreadable work tree
    // as "not a repository", which would hide the real cause.
    fs::read_dir(path).map_err(|e| io_repo_error(path, &e))?;
    gix::open_opts(path, gix::open::Options::isolated()).map_err(|e| {
        if is_permission(&e) {
            RepoError::Unreadable(format!("{}: {e}", path.display()))
        } else {
            RepoError::NotAGitRepo(format!("{}: {e}", path.display()))
        }
    })
}

/// `lfs.storage` from the repository's git config, else `<common dir>/lfs`;
/// the objects live in its `objects/`.
fn lfs_objects_dir(repo: &gix::Repository) -> PathBuf {
    let common = repo.common_dir().to_path_buf();
    let storage = repo
        .config_snapshot()
        .string("lfs.storage")
        .map(|s| PathBuf::from(s.to_string()))
        .filter(|p| !p.as_os_str().is_empty());
    match storage {
        Some(p) if p.is_absolute() => p.join("objects"),
        Some(p) => common.join(p).join("objects"),
        None => common.join("lfs/objects"),
    }
}

impl RepoState {
    fn scan(&mut self, path: &Path, cfg: &Config, scan_start: SystemTime) -> Result<RepoSummary, RepoError> {
        let repo = open_repo(path)?;
        let unreadable = |e: String| RepoError::Unreadable(format!("{}: {e}", path.display()));

        let objects_dir = lfs_objects_dir(&repo);
        let stats = self
            .store
            .scan(&objects_dir, scan_start)
            .map_err(|e| unreadable(format!("LFS store {}: {e}", objects_dir.display())))?;

        // HEAD (an unborn HEAD has no pointers).
        let head = repo.head().map_err(|e| unreadable(format!("HEAD: {e}")))?;
        let tree = if head.is_unborn() {
            None
        } else {
            let id = repo.head_tree_id().map_err(|e| unreadable(format!("HEAD tree: {e}")))?;
            Some(id.detach())
        };
        if tree != self.head.tree {
            match tree {
                None => self.head = HeadCache::default(),
                Some(t) => {
                    let mut seen = HashMap::new();
                    let found = read_pointers(&repo, t, &self.head.blobs, &mut seen).map_err(unreadable)?;
                    // `seen` holds every blob of this tree: parse results
                    // of blobs no longer referenced are dropped.
                    self.head = HeadCache {
                        tree: Some(t),
                        found,
                        blobs: seen,
                    };
                }
            }
        }
        Ok(self.summarize(cfg, stats))
    }

    fn summarize(&self, cfg: &Config, stats: ScanStats) -> RepoSummary {
        let limit = cfg.size_limit.0;
        let (mut objects, mut bytes, mut largest) = (0u64, 0u64, 0u64);
        let mut over: Vec<(Oid, u64)> = Vec::new();
        for &(oid, size) in self.store.objects() {
            objects += 1;
            bytes = bytes.saturating_add(size);
            largest = largest.max(size);
            if size > limit {
                over.push((oid, size));
            }
        }
        let over_limit = over.len() as u64;
        over.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        over.truncate(cfg.max_series_per_repo);
        let mut paths_of: HashMap<Oid, Vec<&str>> = HashMap::new();
        let wanted: HashSet<Oid> = over.iter().map(|o| o.0).collect();
        let mut missing = 0u64;
        for (path, p) in &self.head.found.pointers {
            if wanted.contains(&p.oid) {
                paths_of.entry(p.oid).or_default().push(path);
            }
            if !self.store.contains(&p.oid) {
                missing += 1;
            }
        }
        let over_limit_series = over
            .into_iter()
            .map(|(oid, size)| {
                let paths = paths_of.get(&oid).map(|v| v.join(",")).unwrap_or_default();
                (oid_hex(&oid), size, paths)
            })
            .collect();
        RepoSummary {
            objects,
            bytes,
            largest,
            over_limit,
            over_limit_series,
            pointers_missing_object: missing,
            pointers_invalid: self.head.found.invalid.len() as u64,
            stats,
        }
    }
}

/// Every directory under `root` (to `depth` levels) that holds a `.git`
/// entry; the search does not descend into a repository.
pub fn discover_repos(root: &Path, depth: usize) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut it = walkdir::WalkDir::new(root)
        .max_depth(depth)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = it.next() {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_dir() {
            continue;
        }
        if entry.file_name() == ".git" {
            it.skip_current_dir();
            continue;
        }
        if entry.path().join(".git").symlink_metadata().is_ok() {
            found.push(entry.path().to_path_buf());
            it.skip_current_dir();
        }
    }
    found
}

// ---------------------------------------------------------------------------
// The collector.

/// The cached result of the last scan.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub repos: Vec<RepoReport>,
    /// When the last scan finished (`None` before the first).
    pub finished: Option<SystemTime>,
}

pub struct GitLfsCollector {
    cfg: Config,
    state: Mutex<HashMap<PathBuf, RepoState>>,
    snapshot: RwLock<Arc<Snapshot>>,
}

impl GitLfsCollector {
    pub fn new(cfg: &Config) -> Self {
        GitLfsCollector {
            cfg: cfg.clone(),
            state: Mutex::new(HashMap::new()),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
        }
    }

    /// The configured repositories plus those found under the search roots.
    pub fn repo_paths(&self) -> Vec<PathBuf> {
        let mut v = self.cfg.repos.clone();
        for root in &self.cfg.search_roots {
            v.extend(discover_repos(root, self.cfg.search_depth));
        }
        let mut seen = HashSet::new();
        v.retain(|p| seen.insert(p.clone()));
        v
    }

    /// Runs one full (incremental) scan synchronously and publishes it.
    /// Blocking: call from a blocking thread.
    pub fn scan_once(&self) -> Arc<Snapshot> {
        let paths = self.repo_paths();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.retain(|p, _| paths.contains(p));
        let mut repos = Vec::with_capacity(paths.len());
        for path in paths {
            let st = state.entry(path.clone()).or_default();
            let scan_start = SystemTime::now();
            let result = st.scan(&path, &self.cfg, scan_start);
            let label = path.display().to_string();
            // One log line per change of a repository's state.
            let now_err = result.as_ref().err().map(RepoError::as_label);
            if !st.reported || now_err != st.last_error {
                match &result {
                    Err(e) => {
                        tracing::warn!(collector = "git_lfs", repo = %label, error = now_err.unwrap_or(""), detail = %e, "git_lfs: repository cannot be scanned")
                    }
                    Ok(_) if st.reported => {
                        tracing::info!(collector = "git_lfs", repo = %label, "git_lfs: repository scannable again")
                    }
                    Ok(_) => {}
                }
                st.reported = true;
                st.last_error = now_err;
            }
            if result.is_err() {
                // Start from scratch once it is readable again.
                *st = RepoState {
                    reported: true,
                    last_error: now_err,
                    ..RepoState::default()
                };
            }
            repos.push(RepoReport {
                repo: label,
                scanned_at: SystemTime::now(),
                result,
            });
        }
        drop(state);
        let snap = Arc::new(Snapshot {
            repos,
            finished: Some(SystemTime::now()),
        });
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = snap.clone();
        snap
    }

    /// The last published scan.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

const CACHED: &str = "Cached: from the last background scan (see hostmedic_git_lfs_scan_timestamp_seconds).";

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Writes one snapshot's series (used by `collect`).
pub fn write_snapshot(snap: &Snapshot, limit: u64, out: &mut MetricSet) {
    let h = |s: &str| format!("{s} {CACHED}");
    for r in &snap.repos {
        let repo = r.repo.as_str();
        let l = [("repo", repo)];
        let err = r.result.as_ref().err().map(RepoError::as_label).unwrap_or("");
        out.gauge(
            "hostmedic_git_lfs_repo_up",
            &h("Whether the repository could be scanned (0: see the error label)."),
            &[("repo", repo), ("error", err)],
            if r.result.is_ok() { 1.0 } else { 0.0 },
        );
        out.gauge(
            "hostmedic_git_lfs_scan_timestamp_seconds",
            "Unix time of the last background scan of this repository; scraped values are this old.",
            &l,
            unix(r.scanned_at),
        );
        out.gauge(
            "hostmedic_git_lfs_object_size_limit_bytes",
            "The configured per-object size limit of the LFS remote (git_lfs.size_limit).",
            &l,
            limit as f64,
        );
        let Ok(s) = &r.result else { continue };
        out.gauge(
            "hostmedic_git_lfs_objects",
            &h("Number of objects in the local LFS store."),
            &l,
            s.objects as f64,
        );
        out.gauge(
            "hostmedic_git_lfs_objects_bytes",
            &h("Total size of the objects in the local LFS store."),
            &l,
            s.bytes as f64,
        );
        out.gauge(
            "hostmedic_git_lfs_largest_object_bytes",
            &h("Size of the largest object in the local LFS store."),
            &l,
            s.largest as f64,
        );
        out.gauge(
            "hostmedic_git_lfs_objects_over_limit",
            &h("Number of local LFS objects larger than the size limit."),
            &l,
            s.over_limit as f64,
        );
        for (oid, size, paths) in &s.over_limit_series {
            out.gauge(
                "hostmedic_git_lfs_object_over_limit_bytes",
                &h("Size of one local LFS object over the limit; path lists the HEAD paths whose pointer names it (comma-separated, empty if none). Bounded by git_lfs.max_series_per_repo, largest first."),
                &[("repo", repo), ("oid", oid.as_str()), ("path", paths.as_str())],
                *size as f64,
            );
        }
        out.gauge(
            "hostmedic_git_lfs_pointers_missing_object",
            &h("Number of LFS pointers in HEAD whose object is not in the local store."),
            &l,
            s.pointers_missing_object as f64,
        );
        out.gauge(
            "hostmedic_git_lfs_pointers_invalid",
            &h("Number of blobs in HEAD that start like an LFS pointer but break the pointer spec."),
            &l,
            s.pointers_invalid as f64,
        );
    }
}

#[async_trait]
impl Collector for GitLfsCollector {
    fn name(&self) -> &'static str {
        "git_lfs"
    }

    async fn collect(&self, out: &mut MetricSet) -> Result<(), CollectError> {
        let snap = self.snapshot();
        let none_configured = self.cfg.repos.is_empty() && self.cfg.search_roots.is_empty();
        if none_configured || (snap.finished.is_some() && snap.repos.is_empty()) {
            return Err(CollectError::Unavailable(
                "no repositories configured or found (git_lfs.repos, git_lfs.search_roots)".into(),
            ));
        }
        write_snapshot(&snap, self.cfg.size_limit.0, out);
        Ok(())
    }

    async fn background(self: Arc<Self>, shutdown: CancellationToken) {
        if self.cfg.repos.is_empty() && self.cfg.search_roots.is_empty() {
            return;
        }
        let interval = self.cfg.scan_interval;
        scan_every("git_lfs", interval, shutdown, move || {
            self.scan_once();
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OID: &str = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

    fn ptr(body: &str) -> PointerParse {
        parse_pointer(body.as_bytes())
    }

    #[test]
    fn parses_spec_pointer() {
        let p = ptr(&format!(
            "version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize 12345\n"
        ));
        let PointerParse::Pointer(p) = p else { panic!("{p:?}") };
        assert_eq!(oid_hex(&p.oid), OID);
        assert_eq!(p.size, 12345);
        // Legacy version URL and extension keys sorted before oid.
        let p = ptr(&format!(
            "version https://hawser.github.com/spec/v1\next-0-foo sha256:{OID}\noid sha256:{OID}\nsize 0\n"
        ));
        assert!(matches!(p, PointerParse::Pointer(Pointer { size: 0, .. })), "{p:?}");
    }

    #[test]
    fn ordinary_content_is_not_a_pointer() {
        assert_eq!(ptr("hello\n"), PointerParse::NotPointer);
        assert_eq!(ptr(""), PointerParse::NotPointer);
        assert_eq!(ptr("version 1.2.3\n"), PointerParse::NotPointer);
        assert_eq!(parse_pointer(&[0xff, 0, 1]), PointerParse::NotPointer);
    }

    #[test]
    fn broken_pointers_are_invalid() {
        let v = "version https://git-lfs.github.com/spec/v1\n";
        for (body, why) in [
            (format!("{v}oid sha256:{OID}\nsize 12"), "no trailing newline"),
            (format!("{v}oid sha256:xyz\nsize 12\n"), "oid is not 64"),
            (
                format!("{v}oid sha256:{}\nsize 12\n", OID.to_uppercase()),
                "oid is not 64",
            ),
            (format!("{v}oid md5:{OID}\nsize 12\n"), "not sha256"),
            (format!("{v}oid sha256:{OID}\nsize -1\n"), "size is not"),
            (format!("{v}oid sha256:{OID}\nsize +1\n"), "size is not"),
            (format!("{v}oid sha256:{OID}\nsize abc\n"), "size is not"),
            (format!("{v}size 12\noid sha256:{OID}\n"), "out of order"),
            (format!("{v}oid sha256:{OID}\n"), "no size"),
            (format!("{v}size 12\n"), "no oid"),
            (format!("{v}oid sha256:{OID}\nSize 12\n"), "invalid key"),
            (format!("{v}oid sha256:{OID}\nsize 12\nzzz\n"), "key value"),
            (
                format!("{v}oid sha256:{OID}\nsize 12\n{}\n", "x ".repeat(600)),
                "larger than",
            ),
            (
                "version https://git-lfs.github.com/spec/v2\n".to_string(),
                "unknown pointer version",
            ),
        ] {
            match ptr(&body) {
                PointerParse::Invalid(w) => assert!(w.contains(why), "{body:?}: {w} (want {why})"),
                other => panic!("{body:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn oid_hex_round_trip() {
        let o = parse_oid_hex(OID.as_bytes()).unwrap();
        assert_eq!(oid_hex(&o), OID);
        assert!(parse_oid_hex(&OID.as_bytes()[1..]).is_none());
        assert!(parse_oid_hex(OID.replace('a', "g").as_bytes()).is_none());
    }

    fn put(store: &Path, oid: &str, len: u64) {
        let d = store.join(&oid[0..2]).join(&oid[2..4]);
        fs::create_dir_all(&d).unwrap();
        let f = fs::File::create(d.join(oid)).unwrap();
        f.set_len(len).unwrap();
    }

    /// Sets every directory's mtime an hour back, as if the store were old.
    fn age(dir: &Path) {
        let old = nix::sys::time::TimeSpec::new(
            (SystemTime::now() - Duration::from_secs(3600))
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64,
            0,
        );
        for e in walkdir::WalkDir::new(dir) {
            let e = e.unwrap();
            if e.file_type().is_dir() {
                nix::sys::stat::utimensat(
                    nix::fcntl::AT_FDCWD,
                    e.path(),
                    &old,
                    &old,
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                )
                .unwrap();
            }
        }
    }

    fn oid_n(n: u32) -> String {
        // Deterministic, well-spread oids.
        let mut s = String::new();
        let mut x = n.wrapping_mul(2_654_435_761).wrapping_add(12345);
        while s.len() < 64 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            s.push_str(&format!("{x:08x}"));
        }
        s
    }

    #[test]
    fn store_scan_is_incremental_by_mtime() {
        let t = tempfile::tempdir().unwrap();
        let store = t.path().join("objects");
        // 300 objects: more than 64 top-level fan-out directories, so the
        // two-thread path runs.
        for n in 0..300 {
            put(&store, &oid_n(n), n as u64 * 10);
        }
        // A temporary download and a foreign file are ignored.
        fs::create_dir_all(store.join("zz")).unwrap();
        fs::write(store.join(&oid_n(0)[0..2]).join(&oid_n(0)[2..4]).join("tmp123"), "x").unwrap();
        age(&store);

        let mut c = StoreCache::default();
        let s1 = c.scan(&store, SystemTime::now()).unwrap();
        assert_eq!(c.objects().count(), 300);
        assert_eq!(
            c.objects().map(|o| o.1).sum::<u64>(),
            (0..300).map(|n| n * 10).sum::<u64>()
        );
        assert!(s1.dirs_listed > 300, "{s1:?}");
        assert!(c.mids.iter().filter(|m| m.is_some()).count() > 64);
        assert_eq!(s1.dirs_skipped, 0);

        // Nothing changed: nothing is listed again.
        let s2 = c.scan(&store, SystemTime::now()).unwrap();
        assert_eq!(s2.dirs_listed, 0, "{s2:?}");
        assert_eq!(s2.dirs_skipped, s1.dirs_listed);

        // One new object in an existing leaf: only that leaf is listed.
        let o0 = oid_n(0);
        let new = format!("{}{}", &o0[..4], &oid_n(999)[4..]);
        put(&store, &new, 7);
        let s3 = c.scan(&store, SystemTime::now()).unwrap();
        assert_eq!(s3.dirs_listed, 1, "{s3:?}");
        assert_eq!(c.objects().count(), 301);
        assert!(c.contains(&parse_oid_hex(new.as_bytes()).unwrap()));

        // The just-changed leaf is racy (mtime within RACY_WINDOW): listed
        // again next time, and trusted once it is old enough.
        let s4 = c.scan(&store, SystemTime::now()).unwrap();
        assert_eq!(s4.dirs_listed, 1, "{s4:?}");
        let s5 = c.scan(&store, SystemTime::now() + Duration::from_secs(5)).unwrap();
        assert_eq!(s5.dirs_listed, 1, "{s5:?}");
        let s6 = c.scan(&store, SystemTime::now() + Duration::from_secs(5)).unwrap();
        assert_eq!(s6.dirs_listed, 0, "{s6:?}");

        // A removed fan-out directory disappears from the totals.
        fs::remove_dir_all(store.join(&o0[0..2])).unwrap();
        c.scan(&store, SystemTime::now()).unwrap();
        assert!(!c.contains(&parse_oid_hex(new.as_bytes()).unwrap()));
        assert!(c.objects().count() < 301);

        // A store that disappears is empty.
        fs::remove_dir_all(&store).unwrap();
        c.scan(&store, SystemTime::now()).unwrap();
        assert_eq!(c.objects().count(), 0);
    }

    #[test]
    fn discovers_repos_to_bounded_depth() {
        let t = tempfile::tempdir().unwrap();
        for d in ["a/.git", "b/c/.git", "b/c/inner/.git", "d/e/f/g/.git"] {
            fs::create_dir_all(t.path().join(d)).unwrap();
        }
        fs::create_dir_all(t.path().join("h")).unwrap();
        fs::write(t.path().join("h/.git"), "gitdir: /elsewhere\n").unwrap(); // linked worktree
        let found = discover_repos(t.path(), 3);
        let rel: Vec<_> = found
            .iter()
            .map(|p| p.strip_prefix(t.path()).unwrap().to_owned())
            .collect();
        assert_eq!(rel, vec![PathBuf::from("a"), PathBuf::from("b/c"), PathBuf::from("h")]);
    }

    #[test]
    fn config_validation_names_keys() {
        let mut c = Config::default();
        c.validate("git_lfs").unwrap();
        c.search_depth = 0;
        assert!(
            c.validate("git_lfs")
                .unwrap_err()
                .to_string()
                .contains("git_lfs.search_depth")
        );
        c.search_depth = 2;
        c.scan_interval = Duration::ZERO;
        assert!(
            c.validate("git_lfs")
                .unwrap_err()
                .to_string()
                .contains("git_lfs.scan_interval")
        );
    }
}
