//! `hostmedic incidents --format json`: the [`Incident`] list as the JSON
//! array documented in docs/receiver.md, and the JSON view of a plan's
//! timeline (its instants and the seconds of each stage).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Incident, build, open_only};
use crate::receiver::journal::Entry;
use crate::receiver::timeline::{Stage, Timeline};

/// Where one plan's seconds went: the instants (Unix seconds, the unknown
/// ones left out) and the known stages in seconds, in the order they
/// happen (`alert_to_delivery` … `total`).
#[derive(Debug, Clone, Serialize)]
pub struct PlanTimeline {
    #[serde(flatten)]
    pub at: Timeline,
    pub stages: BTreeMap<Stage, f64>,
}

impl From<Timeline> for PlanTimeline {
    fn from(at: Timeline) -> PlanTimeline {
        PlanTimeline {
            stages: at.stages().into_iter().collect(),
            at,
        }
    }
}

/// The journal's incidents (`open`: those not resolved) as pretty JSON.
pub fn json(entries: &[Entry], open: bool) -> serde_json::Result<String> {
    let (mut incidents, _): (Vec<Incident>, _) = build(entries);
    if open {
        incidents = open_only(incidents);
    }
    serde_json::to_string_pretty(&incidents)
}

#[cfg(test)]
mod tests {
    use super::super::test_journal::timed_journal;
    use super::*;

    #[test]
    fn each_plan_carries_its_timeline_with_instants_and_stages() {
        let (entries, t0) = timed_journal();
        let v: serde_json::Value = serde_json::from_str(&json(&entries, false).unwrap()).unwrap();
        let tl = &v[0]["plans"][0]["timeline"];
        assert_eq!(tl["starts_at"], t0);
        assert_eq!(tl["received"], t0 + 1.0);
        assert_eq!(tl["decided"], t0 + 1.25);
        assert_eq!(tl["action_start"], t0 + 1.5);
        assert_eq!(tl["action_end"], t0 + 2.0);
        assert_eq!(tl["verify_end"], t0 + 3.5);
        assert_eq!(tl["succeeded"], true);
        let stages: Vec<(&str, f64)> = tl["stages"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_f64().unwrap()))
            .collect();
        assert_eq!(
            stages,
            [
                ("action", 0.5),
                ("alert_to_delivery", 1.0),
                ("decision_to_action_start", 0.25),
                ("delivery_to_decision", 0.25),
                ("total", 3.5),
                ("verification", 1.5),
            ],
            "serde_json's map is sorted by key"
        );
        // The printed text keeps the order the stages happen in.
        let text = json(&entries, false).unwrap();
        let text = &text[text.find("\"stages\"").unwrap()..];
        let pos = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
        assert!(pos("alert_to_delivery") < pos("delivery_to_decision") && pos("verification") < pos("total"));
        // A plan that ran nothing (waiting for approval) has no timeline.
        assert!(v[1]["plans"][0].get("timeline").is_none(), "{}", v[1]);
    }
}
