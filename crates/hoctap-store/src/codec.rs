//! Places and measures as the text stored in the delta tables (documented in the first migration).
//! The text is part of the SQL surface that dashboards read: change it only with a migration.

use hoctap_domain::Measure;
use hoctap_domain::Place;
use hoctap_domain::codes::{SubjectGroup, Title};

/// `registered:learning_citizen`, `digital_skill`, `recognised_in_group:staff`, …
pub fn measure_to_text(measure: Measure) -> String {
    match measure {
        Measure::Registered(t) => format!("registered:{t}"),
        Measure::Declared(t) => format!("declared:{t}"),
        Measure::Evidenced(t) => format!("evidenced:{t}"),
        Measure::Recognised(t) => format!("recognised:{t}"),
        Measure::DigitalSkill => "digital_skill".to_owned(),
        Measure::RecognisedWithSkill => "recognised_with_skill".to_owned(),
        Measure::RecognisedInGroup(g) => format!("recognised_in_group:{g}"),
    }
}

/// The inverse of [`measure_to_text`]; `None` for text this binary does not know.
pub fn measure_from_text(text: &str) -> Option<Measure> {
    match text.split_once(':') {
        None => match text {
            "digital_skill" => Some(Measure::DigitalSkill),
            "recognised_with_skill" => Some(Measure::RecognisedWithSkill),
            _ => None,
        },
        Some(("recognised_in_group", g)) => SubjectGroup::parse(g).map(Measure::RecognisedInGroup),
        Some((kind, t)) => {
            let title = Title::parse(t)?;
            match kind {
                "registered" => Some(Measure::Registered(title)),
                "declared" => Some(Measure::Declared(title)),
                "evidenced" => Some(Measure::Evidenced(title)),
                "recognised" => Some(Measure::Recognised(title)),
                _ => None,
            }
        }
    }
}

/// A place as the three text columns of `count_keys`: `named` with the commune code (and no commune),
/// or `unit` with the subject's code and the commune it names (`''` when none).
pub fn place_to_text(place: &Place) -> (&'static str, &str, &str) {
    match place {
        Place::Named(code) => ("named", code, ""),
        Place::Unit { code, commune } => ("unit", code, commune.as_deref().unwrap_or("")),
    }
}

/// The inverse of [`place_to_text`]; `None` for an unknown kind.
pub fn place_from_text(kind: &str, code: &str, commune: &str) -> Option<Place> {
    match kind {
        "named" => Some(Place::Named(code.to_owned())),
        "unit" => {
            Some(Place::Unit { code: code.to_owned(), commune: (!commune.is_empty()).then(|| commune.to_owned()) })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_measure_round_trips_and_reads_as_documented() {
        let mut all = vec![Measure::DigitalSkill, Measure::RecognisedWithSkill];
        for t in Title::ALL {
            all.extend([
                Measure::Registered(*t),
                Measure::Declared(*t),
                Measure::Evidenced(*t),
                Measure::Recognised(*t),
            ]);
        }
        all.extend(SubjectGroup::ALL.iter().map(|g| Measure::RecognisedInGroup(*g)));
        for m in all {
            assert_eq!(measure_from_text(&measure_to_text(m)), Some(m), "{m:?}");
        }
        assert_eq!(measure_to_text(Measure::Recognised(Title::LearningCitizen)), "recognised:learning_citizen");
        assert_eq!(measure_to_text(Measure::RecognisedInGroup(SubjectGroup::Staff)), "recognised_in_group:staff");
        for bad in ["", "recognised", "recognised:", "registered:learning_dog", "recognised_in_group:boss", "x:y"] {
            assert_eq!(measure_from_text(bad), None, "{bad}");
        }
    }

    #[test]
    fn places_round_trip() {
        for p in [
            Place::Named("00001".into()),
            Place::Unit { code: "001".into(), commune: None },
            Place::Unit { code: "00004".into(), commune: Some("00004".into()) },
        ] {
            let (kind, code, commune) = place_to_text(&p);
            assert_eq!(place_from_text(kind, code, commune), Some(p));
        }
        assert_eq!(place_from_text("elsewhere", "01", ""), None);
    }
}
