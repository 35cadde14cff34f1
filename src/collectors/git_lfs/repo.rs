//! One repository: its scan state, errors and report.

use super::*;

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
pub(super) struct RepoState {
    pub(super) store: StoreCache,
    pub(super) head: HeadCache,
    pub(super) last_error: Option<&'static str>,
    pub(super) reported: bool,
}

pub(super) fn is_permission(err: &(dyn std::error::Error + 'static)) -> bool {
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

pub(super) fn io_repo_error(path: &Path, e: &io::Error) -> RepoError {
    let what = format!("{}: {e}", path.display());
    match e.kind() {
        io::ErrorKind::NotFound => RepoError::Missing(what),
        io::ErrorKind::NotADirectory => RepoError::NotAGitRepo(what),
        _ => RepoError::Unreadable(what),
    }
}

pub(super) fn open_repo(path: &Path) -> Result<gix::Repository, RepoError> {
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
pub(super) fn lfs_objects_dir(repo: &gix::Repository) -> PathBuf {
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
    pub(super) fn scan(&mut self, path: &Path, cfg: &Config, scan_start: SystemTime) -> Result<RepoSummary, RepoError> {
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
                    let found =
                        read_pointers(&repo, t, &self.head.blobs, &mut seen).map_err(|e| unreadable(e.to_string()))?;
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

    pub(super) fn summarize(&self, cfg: &Config, stats: ScanStats) -> RepoSummary {
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
