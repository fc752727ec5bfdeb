//! Indicators a target can name (rule 8), parsed from their written form.

use crate::codes::{Level, Metric, SubjectGroup, Title};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a target measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Indicator {
    /// `<title>/<metric>` or `<title>:<group>/<metric>`: subjects recognised for the title (one citizen
    /// group only, when given) over the baseline metric.
    Recognised { title: Title, group: Option<SubjectGroup>, metric: Metric },
    /// `learning_district/districts` (and the commune and city forms): units of the title's level in
    /// force in the scope that hold the title, over all such units.
    UnitsHolding { title: Title, level: Level },
    /// `digital_skill/<metric>`: citizens with a certified digital skill over the baseline metric.
    DigitalSkill { metric: Metric },
    /// `digital_skill/learning_citizen`: recognised learning citizens with a digital skill over
    /// recognised learning citizens.
    DigitalSkillOfLearningCitizens,
}

impl Indicator {
    pub fn parse(text: &str) -> Option<Indicator> {
        let (numerator, denominator) = text.split_once('/')?;
        if numerator == "digital_skill" {
            if denominator == "learning_citizen" {
                return Some(Indicator::DigitalSkillOfLearningCitizens);
            }
            return Metric::parse(denominator).map(|metric| Indicator::DigitalSkill { metric });
        }
        let (title, group) = match numerator.split_once(':') {
            Some((title, group)) => (Title::parse(title)?, Some(SubjectGroup::parse(group)?)),
            None => (Title::parse(numerator)?, None),
        };
        if group.is_some() && title != Title::LearningCitizen {
            return None;
        }
        if let Some(metric) = Metric::parse(denominator) {
            return Some(Indicator::Recognised { title, group, metric });
        }
        let level = title.admin_level()?;
        (group.is_none() && denominator == level.plural()).then_some(Indicator::UnitsHolding { title, level })
    }
}

impl fmt::Display for Indicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Indicator::Recognised { title, group: Some(g), metric } => write!(f, "{title}:{g}/{metric}"),
            Indicator::Recognised { title, group: None, metric } => write!(f, "{title}/{metric}"),
            Indicator::UnitsHolding { title, level } => write!(f, "{title}/{}", level.plural()),
            Indicator::DigitalSkill { metric } => write!(f, "digital_skill/{metric}"),
            Indicator::DigitalSkillOfLearningCitizens => f.write_str("digital_skill/learning_citizen"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seeded_indicator_parses_and_prints_back() {
        for text in [
            "learning_citizen/adults",
            "learning_unit/units",
            "learning_district/districts",
            "learning_city/provinces",
            "learning_citizen/adults_in_learning_models",
            "learning_citizen:staff/unit_staff",
            "digital_skill/learning_citizen",
            "learning_family/households",
            "digital_skill/adults",
        ] {
            let i = Indicator::parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(i.to_string(), text);
        }
        for bad in [
            "learning_citizen",
            "learning_family:staff/adults",
            "learning_citizen/districts",
            "x/adults",
            "digital_skill/x",
        ] {
            assert!(Indicator::parse(bad).is_none(), "{bad}");
        }
    }
}
