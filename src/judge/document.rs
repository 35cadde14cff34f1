//! The configuration file as TOML with the span of every key and value, so
//! that a finding names its line: every syntax error at once, the type
//! errors of each section and each `[[remediation]]` rule deserialized on
//! its own (one bad rule does not hide the next), and the line of a key
//! named the way `ConfigError` names it (`remediation[2].matchers[0]`).

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use crate::config::Config;

/// A parsed configuration file.
pub struct Document<'i> {
    text: &'i str,
    root: Spanned<DeTable<'i>>,
}

/// One error of a part of the file: where, and which rule it is in.
pub struct PartError {
    pub span: Option<Range<usize>>,
    /// `remediation[i]` the error is in.
    pub rule: Option<usize>,
    pub message: String,
}

impl<'i> Document<'i> {
    /// Parses `text`; every syntax error when it is not TOML.
    pub fn parse(text: &'i str) -> Result<Document<'i>, Vec<PartError>> {
        let (root, errors) = DeTable::parse_recoverable(text);
        if errors.is_empty() {
            return Ok(Document { text, root });
        }
        Err(errors
            .into_iter()
            .map(|e| PartError {
                span: e.span(),
                rule: None,
                message: e.message().trim_end().to_string(),
            })
            .collect())
    }

    /// The 1-based line of byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() + 1
    }

    /// The text of `span` (for hints about what the user wrote).
    pub fn text_of(&self, span: &Range<usize>) -> &'i str {
        self.text.get(span.clone()).unwrap_or_default()
    }

    /// The line of `key` (`receiver.cooldown`, `remediation[2].matchers[0]`),
    /// or of its longest part the file spells (a key left at its default
    /// points at its section).
    pub fn line_of_key(&self, key: &str) -> Option<usize> {
        let segs = segments(key);
        let (Seg::Key(first), rest) = segs.split_first()? else {
            return None;
        };
        let (name, mut value) = self.root.get_ref().iter().find(|(name, _)| name.get_ref() == first)?;
        let mut found = name.span().start;
        for seg in rest {
            let next = match (seg, value.get_ref()) {
                (Seg::Key(k), DeValue::Table(t)) => t
                    .iter()
                    .find(|(name, _)| name.get_ref() == k)
                    .map(|(name, v)| (name.span(), v)),
                (Seg::Index(i), DeValue::Array(a)) => a.get(*i).map(|v| (v.span(), v)),
                _ => None,
            };
            let Some((span, v)) = next else { break };
            found = span.start;
            value = v;
        }
        Some(self.line_of(found))
    }

    /// The rule at `remediation[i]`: its `name` as written, and the line
    /// of its `name` key (else of the rule).
    pub fn rule(&self, i: usize) -> (Option<String>, Option<usize>) {
        let Some(DeValue::Array(rules)) = self.root.get_ref().get("remediation").map(Spanned::get_ref) else {
            return (None, None);
        };
        let Some(rule) = rules.get(i) else { return (None, None) };
        let name = match rule.get_ref() {
            DeValue::Table(t) => t.get("name").and_then(|v| v.get_ref().as_str().map(str::to_string)),
            _ => None,
        };
        (name, self.line_of_key(&format!("remediation[{i}].name")))
    }

    /// Deserializes each top-level section, and each rule, on its own:
    /// the type errors of all of them (an unknown key, a string where a
    /// number goes, a duration without a unit).
    pub fn type_errors(&self) -> Vec<PartError> {
        let mut errors = Vec::new();
        for (key, value) in self.root.get_ref().iter() {
            match value.get_ref() {
                DeValue::Array(rules) if key.get_ref() == "remediation" => {
                    for (i, rule) in rules.iter().enumerate() {
                        let mut one = DeArray::new();
                        one.push(rule.clone());
                        let part = Spanned::new(value.span(), DeValue::Array(one));
                        errors.extend(
                            self.deserialize_part(key, part)
                                .err()
                                .map(|e| PartError { rule: Some(i), ..e }),
                        );
                    }
                }
                _ => errors.extend(self.deserialize_part(key, value.clone()).err()),
            }
        }
        errors.sort_by_key(|e| e.span.as_ref().map(|s| s.start));
        errors
    }

    fn deserialize_part(
        &self,
        key: &Spanned<std::borrow::Cow<'i, str>>,
        value: Spanned<DeValue<'i>>,
    ) -> Result<Config, PartError> {
        let mut table = DeTable::new();
        table.insert(key.clone(), value);
        deserialize(Spanned::new(self.root.span(), table))
    }

    /// The whole configuration.
    pub fn config(&self) -> Result<Config, PartError> {
        deserialize(self.root.clone())
    }
}

fn deserialize(table: Spanned<DeTable<'_>>) -> Result<Config, PartError> {
    Config::deserialize(toml::de::Deserializer::from(table)).map_err(|e| PartError {
        span: e.span(),
        rule: None,
        message: e.message().trim_end().to_string(),
    })
}

/// One step of a key path.
#[derive(Debug, PartialEq)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// `remediation[2].matchers[0]` → remediation, 2, matchers, 0.
fn segments(key: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            out.push(Seg::Key(name));
        }
        while let Some((index, after)) = rest.split_once(']') {
            if let Ok(i) = index.parse() {
                out.push(Seg::Index(i));
            }
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[web]\nlisten_address = \"127.0.0.1:1\"\n\n[[remediation]]\nname = \"a\"\nalertname = \"A\"\nmatchers = [\n  'x=\"1\"',\n  'y=~\"(\"',\n]\n\n[[remediation]]\nname = \"b\"\n";

    #[test]
    fn keys_are_found_at_their_line() {
        assert_eq!(
            segments("remediation[2].matchers[0]"),
            [
                Seg::Key("remediation"),
                Seg::Index(2),
                Seg::Key("matchers"),
                Seg::Index(0)
            ]
        );
        let doc = Document::parse(TEXT).map_err(|_| ()).unwrap();
        assert_eq!(doc.line_of_key("web.listen_address"), Some(2));
        assert_eq!(doc.line_of_key("remediation[0].matchers[1]"), Some(9));
        assert_eq!(doc.line_of_key("remediation[1].name"), Some(13));
        // A key left at its default points at its section.
        assert_eq!(doc.line_of_key("web.nothing"), Some(1));
        assert_eq!(doc.rule(1), (Some("b".into()), Some(13)));
        assert_eq!(doc.line_of_key("receiver.cooldown"), None);
    }

    #[test]
    fn every_syntax_error_and_every_part_type_error_is_reported() {
        let Err(errors) = Document::parse("a = \nb = [\nc = 1\n") else {
            panic!("not TOML")
        };
        assert!(!errors.is_empty());
        let text = "[web]\nlisten_adress = \"x\"\n[global]\ncollector_timeout = 5\n[[remediation]]\nname = 1\n[[remediation]]\nname = \"ok\"\nalertname = \"A\"\nactions = []\n[[remediation]]\nnome = \"x\"\n";
        let doc = Document::parse(text).map_err(|_| ()).unwrap();
        let errors = doc.type_errors();
        let lines: Vec<(usize, Option<usize>)> = errors
            .iter()
            .map(|e| (doc.line_of(e.span.clone().unwrap().start), e.rule))
            .collect();
        assert_eq!(
            lines,
            [(2, None), (4, None), (6, Some(0)), (12, Some(2))],
            "{:?}",
            errors.iter().map(|e| &e.message).collect::<Vec<_>>()
        );
    }
}
