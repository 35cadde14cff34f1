//! HEAD's LFS pointers, read through gix.

use super::*;

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

/// Why HEAD's tree could not be read; each names the object.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("reading tree {id}: {source}")]
    ReadTree {
        id: gix::ObjectId,
        #[source]
        source: gix::Error,
    },
    #[error("decoding tree {id}: {source}")]
    DecodeTree {
        id: gix::ObjectId,
        #[source]
        source: gix::Error,
    },
    #[error("reading blob {id}: {source}")]
    ReadBlob {
        id: gix::ObjectId,
        #[source]
        source: gix::Error,
    },
}

#[derive(Debug, Default)]
pub(super) struct HeadCache {
    pub(super) tree: Option<gix::ObjectId>,
    pub(super) found: HeadPointers,
    /// Parsed result per blob id of the current tree, so a changed HEAD
    /// re-reads only new blobs.
    pub(super) blobs: HashMap<gix::ObjectId, PointerParse>,
}

/// Walks `tree` recursively and classifies every blob smaller than 1024
/// bytes (only those can be pointers; larger blobs are never read).
pub(super) fn read_pointers(
    repo: &gix::Repository,
    tree: gix::ObjectId,
    known: &HashMap<gix::ObjectId, PointerParse>,
    seen: &mut HashMap<gix::ObjectId, PointerParse>,
) -> Result<HeadPointers, HeadError> {
    let mut out = HeadPointers::default();
    let mut stack = vec![(String::new(), tree)];
    while let Some((prefix, id)) = stack.pop() {
        let t = repo
            .find_tree(id)
            .map_err(|source| HeadError::ReadTree { id, source })?;
        let decoded = t.decode().map_err(|source| HeadError::DecodeTree { id, source })?;
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
                    let blob_error = |source| HeadError::ReadBlob { id: oid, source };
                    let header = repo.find_header(oid).map_err(blob_error)?;
                    let p = if header.size() == 0 || header.size() >= POINTER_MAX_BYTES {
                        PointerParse::NotPointer
                    } else {
                        let blob = repo.find_object(oid).map_err(blob_error)?;
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
