//! Vietnam's official administrative units before and after the reform of 1 July 2025, and the
//! `admin_unit.*` events that tell hoctap about them.
//!
//! The data is `data/geography/vn-2025.tsv.gz`, derived from the public dataset of the PyPI package
//! `vietnamadminunits` by `scripts/geography/derive.py` (provenance in `data/geography/provenance.json`)
//! and embedded at build time: nothing is downloaded. [`Official::load`] reads it; [`Official::events`]
//! turns one province (as it stands after the reform) or the whole country into events.
//!
//! How the reform becomes events (docs/design/2026-11-30-official-geography.md):
//! - every old province, district and commune is established on a given date;
//! - on 1 July 2025 a new commune that kept the national code of an old one *is* that old commune,
//!   reparented under its (new) province and renamed when its name changed; a new commune with a code
//!   of its own is established; every other old commune is dissolved into its successors (all of them
//!   when it was divided, one marked the default), every district into its new province (a district without communes, an
//!   island, into the special zone it became), every province merged into another into that one.

mod data;
mod events;

pub use data::{Coords, NewCommune, NewProvince, OldCommune, OldDistrict, OldProvince, Successor};
pub use events::{Scope, reform_day};

use std::collections::HashMap;

/// The derived file, gzip-compressed (about 240 kB instead of 760 kB in the binary).
const DATA: &[u8] = include_bytes!("../../../data/geography/vn-2025.tsv.gz");
/// Where the file comes from: package, version, licence, checksums, the dataset's counts.
pub const PROVENANCE: &str = include_str!("../../../data/geography/provenance.json");

/// What can go wrong with the embedded data or a request for it.
#[derive(Debug, thiserror::Error)]
pub enum GeographyError {
    /// The embedded file does not read: a build from a damaged checkout. Not the caller's fault.
    #[error("the embedded geography data is damaged: {0}")]
    Damaged(String),
    /// The caller asked for something the data cannot give (an unknown or merged province, a date
    /// after the reform): a usage error, the message says what to ask instead.
    #[error("{0}")]
    Request(String),
}

/// The official units, before and after 1 July 2025.
#[derive(Debug)]
pub struct Official {
    /// The 63 provinces before the reform, by code.
    pub old_provinces: Vec<OldProvince>,
    /// The 696 districts before the reform, by code.
    pub old_districts: Vec<OldDistrict>,
    /// The 10 035 communes before the reform, by code.
    pub old_communes: Vec<OldCommune>,
    /// The 34 provinces from 1 July 2025, by code.
    pub new_provinces: Vec<NewProvince>,
    /// The 3 321 communes from 1 July 2025, by code.
    pub new_communes: Vec<NewCommune>,
    /// The source package and its version, e.g. `vietnamadminunits 1.0.4`.
    pub source: Source,
}

/// The public dataset the file was derived from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub package: String,
    pub version: String,
    pub licence: String,
    pub registry: String,
}

impl Official {
    /// Reads the embedded data (about 30 ms).
    pub fn load() -> Result<Official, GeographyError> {
        let source = Source::from_provenance(PROVENANCE)?;
        data::parse(&data::gunzip(DATA)?, source)
    }

    /// The new province an old one passed into.
    pub fn new_province_of(&self, old_province: &str) -> Option<&str> {
        self.old_provinces.iter().find(|p| p.code == old_province).map(|p| p.merged_into.as_str())
    }

    /// The old communes per old district code, in code order.
    pub(crate) fn communes_by_district(&self) -> HashMap<&str, Vec<&OldCommune>> {
        let mut by: HashMap<&str, Vec<&OldCommune>> = HashMap::new();
        for c in &self.old_communes {
            by.entry(c.district.as_str()).or_default().push(c);
        }
        by
    }
}

impl Source {
    fn from_provenance(text: &str) -> Result<Source, GeographyError> {
        let damaged = |what: &str| GeographyError::Damaged(format!("provenance.json: {what}"));
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| damaged(&e.to_string()))?;
        let field = |name: &str| {
            json["source"][name].as_str().map(str::to_owned).ok_or_else(|| damaged(&format!("no source.{name}")))
        };
        Ok(Source {
            package: field("package")?,
            version: field("version")?,
            licence: field("licence")?,
            registry: field("registry")?,
        })
    }
}
