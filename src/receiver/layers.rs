//! The receiver's modules form a chain, not a circle: each sits in a layer
//! and imports only modules of the layers below it. This test reads the
//! receiver's source files and fails when one names a module of its own or
//! a higher layer (`use super::x`, `super::x::…`, `crate::receiver::x`), or
//! reaches one through a re-export of `receiver/mod.rs` (which would hide
//! the layer), or when a module is missing from [`LAYERS`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, bottom first. A module may import only modules of lower
/// layers (never its own layer: two modules of one layer are independent).
const LAYERS: &[&[&str]] = &[
    // Leaves: formats and parsers that know no other receiver module.
    &["private", "payload", "quiet", "auth", "mode"],
    // The fleet identity (which reads label names as the payload does).
    &["identity"],
    // The journal format (with the heartbeat's events) and the configuration.
    &["journal", "config"],
    // Folds over the journal that the state embeds or the metrics read.
    &["timeline", "firing"],
    // The state (what the journal folds into), the work a plan leaves, the
    // self metrics and the incident report.
    &["state", "job", "metrics", "incidents"],
    // Pure decisions and what the stages take as arguments.
    &["policy", "messages", "route", "ledger", "settings"],
    // The stages.
    &["plan", "run"],
    &["recover", "heartbeat"],
    // The receiver, which wires the stages together.
    &["engine"],
    // What serves it.
    &["status", "http", "fuzz"],
    &["persist"],
];

/// One module's source: every file of it (`x.rs`, or `x/*.rs`), each with
/// how many `super::` lead from it to `receiver` (1 for `x.rs` and
/// `x/mod.rs`, 2 for `x/y.rs`).
fn modules(root: &Path) -> BTreeMap<String, Vec<(PathBuf, usize)>> {
    let mut out: BTreeMap<String, Vec<(PathBuf, usize)>> = BTreeMap::new();
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            for sub in std::fs::read_dir(&path).unwrap() {
                let sub = sub.unwrap().path();
                // `tests.rs` is the module's unit tests, like a `mod tests`.
                if sub.extension().is_some_and(|e| e == "rs") && sub.file_name().is_some_and(|f| f != "tests.rs") {
                    let ups = if sub.file_name().is_some_and(|f| f == "mod.rs") {
                        1
                    } else {
                        2
                    };
                    out.entry(name.clone()).or_default().push((sub, ups));
                }
            }
        } else if path.extension().is_some_and(|e| e == "rs") && name != "mod" && name != "layers" {
            // `mod.rs` declares the modules; this file only reads them.
            out.entry(name).or_default().push((path, 1));
        }
    }
    out
}

/// The code of a file without its unit tests (a trailing `mod tests`) and
/// comment lines (doc links name modules without importing them).
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first name of each path in `rest`, which follows a `…::`: `x` for
/// `x::y`, `x` and `y` for `{x::{self, a}, y}`.
fn heads(rest: &str) -> Vec<String> {
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    let (mut names, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                names.push(ident(group[start..i].trim()));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                names.push(ident(group[start..i].trim()));
                start = i + 1;
            }
            _ => {}
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

/// The receiver names `code` refers to, `ups` `super::` away from
/// `receiver` (a chain of fewer `super::` stays inside its own module).
fn named(code: &str, ups: usize) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in ["crate::receiver::", &"super::".repeat(ups)] {
        let mut from = 0;
        while let Some(at) = code[from..].find(prefix) {
            let at = from + at;
            from = at + prefix.len();
            let before = code[..at].chars().next_back();
            let chained = code[..at].ends_with("super::");
            if chained || before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &code[from..];
            if rest.starts_with("super::") {
                continue;
            }
            out.extend(heads(rest));
        }
    }
    out
}

/// Every import that breaks the layering, as "file: why".
fn violations(root: &Path) -> Vec<String> {
    let layer_of: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.iter().map(move |m| (*m, i)))
        .collect();
    let mods = modules(root);
    let mut bad = Vec::new();
    for m in layer_of.keys() {
        if !mods.contains_key(*m) {
            bad.push(format!("LAYERS names {m}, which is no module of src/receiver"));
        }
    }
    for (m, files) in &mods {
        let Some(&mine) = layer_of.get(m.as_str()) else {
            bad.push(format!("module {m} is in no layer of LAYERS"));
            continue;
        };
        for (path, ups) in files {
            let text = std::fs::read_to_string(path).unwrap();
            for name in named(&code(&text), *ups) {
                let file = path.strip_prefix(root).unwrap().display();
                match layer_of.get(name.as_str()) {
                    _ if name == *m => {}
                    None => bad.push(format!(
                        "{file}: names receiver::{name}, not a module (a re-export hides its layer)"
                    )),
                    Some(&theirs) if theirs >= mine => bad.push(format!(
                        "{file}: imports {name} (layer {theirs}) from layer {mine}: only lower layers may be imported"
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    bad
}

#[test]
fn no_file_names_a_module_above_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/receiver");
    let bad = violations(&root);
    assert!(bad.is_empty(), "the receiver's layering is broken:\n{}", bad.join("\n"));
}

#[test]
fn the_parser_sees_every_form_of_import() {
    let code = code(
        "use super::config::Rule;\nuse super::{journal::{self, Event}, payload};\n\
         // use super::engine;\nlet x = super::state::f();\nuse crate::receiver::{run, job::Job};",
    );
    assert_eq!(named(&code, 1), ["run", "job", "config", "journal", "payload", "state"]);
    // Two levels down, `super::` is the own module and `super::super::` the receiver.
    assert_eq!(named("use super::Channels;\nuse super::super::quiet;", 2), ["quiet"]);
}

#[test]
fn an_upward_import_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    for m in LAYERS.iter().flat_map(|l| l.iter()) {
        std::fs::write(dir.path().join(format!("{m}.rs")), "").unwrap();
    }
    std::fs::write(dir.path().join("journal.rs"), "use super::engine::Receiver;\n").unwrap();
    std::fs::write(dir.path().join("quiet.rs"), "use super::Receiver;\n").unwrap();
    std::fs::write(dir.path().join("extra.rs"), "").unwrap();
    let bad = violations(dir.path());
    assert_eq!(bad.len(), 3, "{bad:#?}");
    assert!(
        bad.iter().any(|b| b.starts_with("journal.rs: imports engine")),
        "{bad:#?}"
    );
    assert!(
        bad.iter().any(|b| b.starts_with("quiet.rs: names receiver::Receiver")),
        "{bad:#?}"
    );
    assert!(
        bad.iter().any(|b| b.contains("module extra is in no layer")),
        "{bad:#?}"
    );
}
