//! Tiny `{{ labels.NAME }}` substitution for action values: no template
//! engine, no logic, and an error that names any unknown placeholder.

use super::{ActionError, Alert, ConfigError, TargetError};

/// Why a template could not be rendered or is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unterminated placeholder starting at byte {0} (missing `}}}}`)")]
    Unterminated(usize),
    #[error(
        "unknown placeholder `{{{{ {0} }}}}` (use labels.NAME, annotations.NAME, alertname, status, fingerprint or starts_at)"
    )]
    UnknownPlaceholder(String),
    #[error("placeholder `{{{{ {0} }}}}`: the alert has no such label or annotation")]
    Missing(String),
}

/// One parsed placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field<'a> {
    Label(&'a str),
    Annotation(&'a str),
    AlertName,
    Status,
    Fingerprint,
    StartsAt,
}

fn parse_field(inner: &str) -> Result<Field<'_>, TemplateError> {
    let name = inner.trim();
    let ok_name = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if let Some(n) = name.strip_prefix("labels.")
        && ok_name(n)
    {
        return Ok(Field::Label(n));
    }
    if let Some(n) = name.strip_prefix("annotations.")
        && ok_name(n)
    {
        return Ok(Field::Annotation(n));
    }
    match name {
        "alertname" => Ok(Field::AlertName),
        "status" => Ok(Field::Status),
        "fingerprint" => Ok(Field::Fingerprint),
        "starts_at" => Ok(Field::StartsAt),
        _ => Err(TemplateError::UnknownPlaceholder(name.to_string())),
    }
}

enum Piece<'a> {
    Lit(&'a str),
    Field(Field<'a>, &'a str),
}

/// Walks `template`, calling `f` for each literal piece and placeholder.
fn walk<'a>(template: &'a str, mut f: impl FnMut(Piece<'a>) -> Result<(), TemplateError>) -> Result<(), TemplateError> {
    let mut rest = template;
    let mut offset = 0;
    while let Some(start) = rest.find("{{") {
        f(Piece::Lit(&rest[..start]))?;
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or(TemplateError::Unterminated(offset + start))?;
        let inner = &after[..end];
        f(Piece::Field(parse_field(inner)?, inner.trim()))?;
        let consumed = start + 2 + end + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    f(Piece::Lit(rest))
}

/// Checks a template's syntax without an alert (config time).
pub fn check(template: &str) -> Result<(), TemplateError> {
    walk(template, |_| Ok(()))
}

/// The labels and annotations `template` reads, as written
/// (`labels.unit`, `annotations.summary`); nothing when it is malformed.
pub fn placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let _ = walk(template, |piece| {
        match piece {
            Piece::Field(Field::Label(n), _) => out.push(format!("labels.{n}")),
            Piece::Field(Field::Annotation(n), _) => out.push(format!("annotations.{n}")),
            _ => {}
        }
        Ok(())
    });
    out
}

/// True when `template` contains at least one placeholder.
pub fn has_placeholders(template: &str) -> bool {
    template.contains("{{")
}

/// Fills `template` from `alert`. A placeholder naming a label or annotation
/// the alert does not carry is an error (never an empty string).
pub fn render(template: &str, alert: &Alert) -> Result<String, TemplateError> {
    render_with(template, alert, false)
}

/// Like [`render`], but a label or annotation the alert does not carry
/// becomes `<no labels.NAME>` instead of an error: for notification text,
/// where a missing detail must not suppress the message. Unknown
/// placeholders and syntax errors are still errors.
pub fn render_lenient(template: &str, alert: &Alert) -> Result<String, TemplateError> {
    render_with(template, alert, true)
}

fn render_with(template: &str, alert: &Alert, lenient: bool) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    walk(template, |piece| {
        let (f, raw) = match piece {
            Piece::Lit(s) => {
                out.push_str(s);
                return Ok(());
            }
            Piece::Field(f, raw) => (f, raw),
        };
        let v = match f {
            Field::Label(n) => alert.labels.get(n).map(String::as_str),
            Field::Annotation(n) => alert.annotations.get(n).map(String::as_str),
            Field::AlertName => Some(alert.alertname.as_str()),
            Field::Status => Some(alert.status.as_str()),
            Field::Fingerprint => Some(alert.fingerprint.as_str()),
            Field::StartsAt => Some(alert.starts_at.as_str()),
        };
        match v {
            // Lenient rendering is for text a person reads: a label's
            // control characters are escaped (an annotation keeps its line
            // breaks), see `crate::text`.
            Some(v) if lenient && matches!(f, Field::Annotation(_)) => {
                out.push_str(&crate::text::escape_lines(v));
                Ok(())
            }
            Some(v) if lenient => {
                out.push_str(&crate::text::escape(v));
                Ok(())
            }
            Some(v) => {
                out.push_str(v);
                Ok(())
            }
            None if lenient => {
                out.push_str(&format!("<no {raw}>"));
                Ok(())
            }
            None => Err(TemplateError::Missing(raw.to_string())),
        }
    })?;
    Ok(out)
}

/// Renders the action field `field` (strict: an unknown label is an error
/// naming it).
pub(crate) fn render_field(field: &str, template: &str, alert: &Alert) -> Result<String, ActionError> {
    render(template, alert).map_err(|source| ActionError::Template {
        field: field.to_string(),
        source,
    })
}

/// Renders the action field `field` leniently (a missing label or
/// annotation renders empty): for messages, which must not be suppressed.
pub(crate) fn render_field_lenient(field: &str, template: &str, alert: &Alert) -> Result<String, ActionError> {
    render_lenient(template, alert).map_err(|source| ActionError::Template {
        field: field.to_string(),
        source,
    })
}

/// Config-time check of a template at `key`.
pub(crate) fn check_template(key: &str, template: &str) -> Result<(), ConfigError> {
    check(template).map_err(|e| ConfigError::invalid(key, e))
}

/// A literal (untemplated) value is checked at config time; a templated one
/// only after rendering.
pub(crate) fn check_literal<T>(
    key: &str,
    value: &str,
    validate: impl Fn(&str) -> Result<T, TargetError>,
) -> Result<(), ConfigError> {
    check_template(key, value)?;
    if !has_placeholders(value) {
        validate(value).map_err(|e| ConfigError::invalid(key, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn alert() -> Alert {
        let mut labels = BTreeMap::new();
        labels.insert("unit".to_string(), "worker.service".to_string());
        labels.insert("pid".to_string(), "4242".to_string());
        let mut annotations = BTreeMap::new();
        annotations.insert("summary".to_string(), "it broke".to_string());
        Alert {
            alertname: "UnitCrashLoop".into(),
            status: crate::actions::AlertStatus::Firing,
            labels,
            annotations,
            fingerprint: "abc123".into(),
            starts_at: "2026-11-22T07:00:00Z".into(),
        }
    }

    #[test]
    fn substitutes_labels_annotations_and_fields() {
        let a = alert();
        assert_eq!(render("{{ labels.unit }}", &a).unwrap(), "worker.service");
        assert_eq!(render("{{labels.pid}}", &a).unwrap(), "4242");
        assert_eq!(
            render(
                "x {{ alertname }}/{{ status }}: {{ annotations.summary }} [{{fingerprint}}]",
                &a
            )
            .unwrap(),
            "x UnitCrashLoop/firing: it broke [abc123]"
        );
        assert_eq!(render("no placeholders", &a).unwrap(), "no placeholders");
        assert_eq!(render("", &a).unwrap(), "");
    }

    #[test]
    fn substituted_values_are_not_re_expanded() {
        let mut a = alert();
        a.labels.insert("evil".into(), "{{ labels.unit }}".into());
        assert_eq!(render("{{ labels.evil }}", &a).unwrap(), "{{ labels.unit }}");
    }

    #[test]
    fn unknown_placeholder_is_named() {
        let a = alert();
        let e = render("{{ label.unit }}", &a).unwrap_err();
        assert_eq!(e, TemplateError::UnknownPlaceholder("label.unit".into()));
        assert!(e.to_string().contains("label.unit"), "{e}");
        assert!(check("{{ env.HOME }}").unwrap_err().to_string().contains("env.HOME"));
        assert!(check("{{ labels. }}").is_err());
        assert!(check("{{ labels.a-b }}").is_err());
    }

    #[test]
    fn missing_label_is_named() {
        let a = alert();
        let e = render("{{ labels.container }}", &a).unwrap_err();
        assert_eq!(e, TemplateError::Missing("labels.container".into()));
        assert!(e.to_string().contains("labels.container"));
    }

    #[test]
    fn lenient_rendering_marks_missing_values() {
        let a = alert();
        assert_eq!(
            render_lenient("{{ labels.unit }}: {{ annotations.description }}", &a).unwrap(),
            "worker.service: <no annotations.description>"
        );
        assert!(render_lenient("{{ bogus }}", &a).is_err());
        assert!(render_lenient("{{ labels.x", &a).is_err());
    }

    #[test]
    fn lenient_rendering_escapes_control_characters_strict_keeps_them() {
        let mut a = alert();
        a.labels.insert("unit".into(), "w.service\n# forged".into());
        a.annotations
            .insert("description".into(), "line 1\nline 2\u{1b}[2J".into());
        let t = "{{ alertname }} {{ labels.unit }}: {{ annotations.description }}";
        assert_eq!(
            render_lenient(t, &a).unwrap(),
            "UnitCrashLoop w.service\\n# forged: line 1\nline 2\\u{1b}[2J"
        );
        // Strict rendering feeds argv and targets, whose grammars judge it.
        assert_eq!(render("{{ labels.unit }}", &a).unwrap(), "w.service\n# forged");
    }

    #[test]
    fn unterminated_is_an_error() {
        assert_eq!(check("abc {{ labels.x"), Err(TemplateError::Unterminated(4)));
        assert!(check("{{ labels.x }} {{").is_err());
        assert!(check("{{ labels.x }}").is_ok());
        assert!(has_placeholders("a{{b}}"));
        assert!(!has_placeholders("plain"));
    }
}
