//! HTTP basic auth against `basic_auth_users` (bcrypt hashes), as the
//! exporter-toolkit does it: an unknown user still pays one bcrypt against a
//! fixed hash (no user enumeration by timing), bcrypt runs one at a time (it
//! is CPU-heavy by design), and successful checks are remembered so a
//! scrape every few seconds does not pay a bcrypt each time. The memory
//! holds SHA-256 digests of (user, hash, password), never a password, and is
//! searched in constant time over all its entries.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use subtle::ConstantTimeEq;

/// bcrypt of "fakepassword", the toolkit's stand-in hash for unknown users.
const UNKNOWN_USER_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// Successful checks remembered (oldest forgotten first).
const CACHE_ENTRIES: usize = 64;

type Digest = [u8; 32];

/// The checker: the cache and the one-at-a-time bcrypt gate. The users come
/// with each call (they change on reload; a changed hash changes the digest,
/// so the cache never outlives a credential).
pub struct BasicAuth {
    cache: Mutex<VecDeque<Digest>>,
    bcrypt_gate: tokio::sync::Semaphore,
}

impl Default for BasicAuth {
    fn default() -> Self {
        BasicAuth {
            cache: Mutex::new(VecDeque::with_capacity(CACHE_ENTRIES)),
            bcrypt_gate: tokio::sync::Semaphore::new(1),
        }
    }
}

fn digest(user: &str, hash: &str, password: &[u8]) -> Digest {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user.as_bytes(), hash.as_bytes(), password] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// `user:password` from an `Authorization: Basic …` value.
pub fn parse_header(value: &[u8]) -> Option<(String, Vec<u8>)> {
    use base64::Engine as _;
    let (scheme, rest) = value.split_at(value.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim_ascii())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

impl BasicAuth {
    fn cached(&self, d: &Digest) -> bool {
        let cache = crate::sync::lock(&self.cache);
        let mut hit = subtle::Choice::from(0u8);
        for entry in cache.iter() {
            hit |= entry.ct_eq(d);
        }
        hit.into()
    }

    fn remember(&self, d: Digest) {
        let mut cache = crate::sync::lock(&self.cache);
        if cache.len() >= CACHE_ENTRIES {
            cache.pop_front();
        }
        cache.push_back(d);
    }

    /// True when `user`/`password` match `users`.
    pub async fn check(&self, users: &BTreeMap<String, String>, user: &str, password: Vec<u8>) -> bool {
        let (hash, known) = match users.get(user) {
            Some(h) => (h.clone(), true),
            None => (UNKNOWN_USER_HASH.to_string(), false),
        };
        let d = digest(user, &hash, &password);
        if known && self.cached(&d) {
            return true;
        }
        let ok = {
            let Ok(_permit) = self.bcrypt_gate.acquire().await else {
                return false;
            };
            tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false)
        };
        if ok && known {
            self.remember(d);
        }
        ok && known
    }

    /// Entries remembered (for tests).
    pub fn cached_entries(&self) -> usize {
        crate::sync::lock(&self.cache).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checks_caches_and_refuses() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let users = BTreeMap::from([("am".to_string(), hash.clone())]);
        let auth = BasicAuth::default();
        assert!(!auth.check(&users, "am", b"wrong".to_vec()).await);
        assert_eq!(auth.cached_entries(), 0);
        assert!(auth.check(&users, "am", b"pw".to_vec()).await);
        assert_eq!(auth.cached_entries(), 1);
        assert!(auth.check(&users, "am", b"pw".to_vec()).await);
        assert_eq!(auth.cached_entries(), 1);
        // A changed hash (reload) does not hit the old entry.
        let users2 = BTreeMap::from([("am".to_string(), bcrypt::hash("other", 4).unwrap())]);
        assert!(!auth.check(&users2, "am", b"pw".to_vec()).await);
        assert!(!auth.check(&users, "nobody", b"fakepassword".to_vec()).await);
    }

    #[test]
    fn header_parsing() {
        assert_eq!(parse_header(b"Basic YW06cHc="), Some(("am".into(), b"pw".to_vec())));
        assert_eq!(parse_header(b"basic YW06cHc="), Some(("am".into(), b"pw".to_vec())));
        assert_eq!(parse_header(b"Bearer YW06cHc="), None);
        assert_eq!(parse_header(b"Basic !!"), None);
        assert_eq!(parse_header(b"Basic YW0="), None); // no colon
    }
}
