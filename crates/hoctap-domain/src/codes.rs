//! The closed vocabularies of the domain: titles, subject kinds, metrics, levels and groups.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order (the order used in reports).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The identifier used on the wire and in reports.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the wire identifier.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// Dense index, for tables indexed by this vocabulary.
            pub fn index(self) -> usize {
                self as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary!(
    /// A title a subject can register for and be recognised with.
    Title {
        LearningCitizen = "learning_citizen",
        LearningFamily = "learning_family",
        LearningClan = "learning_clan",
        LearningCommunity = "learning_community",
        LearningUnit = "learning_unit",
        LearningCommune = "learning_commune",
        LearningDistrict = "learning_district",
        LearningCity = "learning_city",
    }
);

vocabulary!(
    /// What kind of thing a subject is.
    SubjectKind {
        Citizen = "citizen",
        Family = "family",
        Clan = "clan",
        Community = "community",
        Unit = "unit",
        Commune = "commune",
        District = "district",
        Province = "province",
    }
);

vocabulary!(
    /// The four groups of Công dân học tập.
    SubjectGroup {
        Resident = "resident",
        Worker = "worker",
        Staff = "staff",
        Student = "student",
    }
);

vocabulary!(
    /// A denominator that `baseline.recorded` can give for a unit.
    Metric {
        Adults = "adults",
        Households = "households",
        Clans = "clans",
        Communities = "communities",
        Units = "units",
        UnitStaff = "unit_staff",
        AdultsInLearningModels = "adults_in_learning_models",
    }
);

vocabulary!(
    /// An administrative level.
    Level {
        Province = "province",
        District = "district",
        Commune = "commune",
    }
);

vocabulary!(
    /// A certified digital-skill level.
    DigitalLevel {
        Basic = "basic",
        Proficient = "proficient",
    }
);

impl Level {
    /// The plural used in indicators that count units of this level (`learning_district/districts`).
    pub fn plural(self) -> &'static str {
        match self {
            Level::Province => "provinces",
            Level::District => "districts",
            Level::Commune => "communes",
        }
    }

    /// How many digits a national statistics code of this level has.
    pub fn code_digits(self) -> usize {
        match self {
            Level::Province => 2,
            Level::District => 3,
            Level::Commune => 5,
        }
    }

    /// Vietnamese label for reports.
    pub fn label_vi(self) -> &'static str {
        match self {
            Level::Province => "Tỉnh/thành phố",
            Level::District => "Quận/huyện",
            Level::Commune => "Phường/xã",
        }
    }
}

impl Title {
    /// Vietnamese name of the title, for reports.
    pub fn label_vi(self) -> &'static str {
        match self {
            Title::LearningCitizen => "Công dân học tập",
            Title::LearningFamily => "Gia đình học tập",
            Title::LearningClan => "Dòng họ học tập",
            Title::LearningCommunity => "Cộng đồng học tập",
            Title::LearningUnit => "Đơn vị học tập",
            Title::LearningCommune => "Xã học tập",
            Title::LearningDistrict => "Huyện học tập",
            Title::LearningCity => "Thành phố học tập",
        }
    }

    /// The level whose units hold this title as their own subject, if any.
    pub fn admin_level(self) -> Option<Level> {
        match self {
            Title::LearningCommune => Some(Level::Commune),
            Title::LearningDistrict => Some(Level::District),
            Title::LearningCity => Some(Level::Province),
            _ => None,
        }
    }
}

impl SubjectKind {
    /// The level when the subject is an administrative unit itself.
    pub fn admin_level(self) -> Option<Level> {
        match self {
            SubjectKind::Commune => Some(Level::Commune),
            SubjectKind::District => Some(Level::District),
            SubjectKind::Province => Some(Level::Province),
            _ => None,
        }
    }
}

/// Number of titles, for dense tables.
pub const TITLES: usize = 8;
/// Number of metrics, for dense tables.
pub const METRICS: usize = 7;
/// Number of citizen groups, for dense tables.
pub const GROUPS: usize = 4;
/// First and last cycle year the campaign accepts.
pub const CYCLE_YEARS: std::ops::RangeInclusive<i32> = 2021..=2030;

/// Whether `id` has the shape of an administrative code of some level (2, 3 or 5 digits): only such a
/// subject can be an administrative unit.
pub fn may_be_unit_code(id: &str) -> bool {
    Level::ALL.iter().any(|l| id.len() == l.code_digits()) && id.bytes().all(|b| b.is_ascii_digit())
}
