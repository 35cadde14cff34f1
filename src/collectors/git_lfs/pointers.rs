//! Git LFS pointer files: parsing per the pointer spec
//! (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md).

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

pub(super) const SPEC_VERSIONS: [&str; 2] = [
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
    pub(super) const HEX: &[u8; 16] = b"0123456789abcdef";
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
