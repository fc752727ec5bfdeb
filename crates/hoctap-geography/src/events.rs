//! The official units as `admin_unit.*` events: establishment, then the reform of 1 July 2025.

use crate::{GeographyError, Official};
use hoctap_domain::Day;
use hoctap_domain::codes::Level;
use hoctap_domain::event::{
    AdminUnitDissolved, AdminUnitEstablished, AdminUnitRenamed, AdminUnitReparented, Coordinates, Event, EventData,
    Num, Successor,
};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;

/// The day the two-tier local government took effect (Nghị quyết 202/2025/QH15 and the resolutions
/// of the Standing Committee arranging the communes): districts abolished, provinces and communes merged.
pub fn reform_day() -> Day {
    Day::from_ymd(2025, 7, 1).expect("a real date")
}

/// Which units to write: one province as it stands from 1 July 2025 (with every old province merged
/// into it), or the whole country.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Province(String),
    All,
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Scope, String> {
        if s == "all" {
            Ok(Scope::All)
        } else if s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Scope::Province(s.to_owned()))
        } else {
            Err(format!("{s:?} is neither a 2-digit province code (01 is Hà Nội) nor `all`"))
        }
    }
}

impl Official {
    /// The events that establish the old units on `established` (at 00:00 in Vietnam) and carry out
    /// the reform on 1 July 2025, in an order a streaming reader can follow: parents before children,
    /// successors before the units that name them. Event ids depend only on the event's kind, unit and
    /// time, so writing the same geography twice gives the same events (ingesting it again changes
    /// nothing) and a changed dataset is refused as `duplicate_id` rather than silently mixed in.
    pub fn events(&self, scope: &Scope, established: Day) -> Result<Vec<Event>, GeographyError> {
        let reform = reform_day();
        if established >= reform {
            return Err(GeographyError::Request(format!(
                "the old units must be established before the reform of {reform}, not on {established}"
            )));
        }
        let provinces: BTreeSet<&str> = match scope {
            Scope::All => self.new_provinces.iter().map(|p| p.code.as_str()).collect(),
            Scope::Province(code) => {
                if !self.new_provinces.iter().any(|p| &p.code == code) {
                    return Err(GeographyError::Request(match self.old_provinces.iter().find(|p| &p.code == code) {
                        Some(old) => format!(
                            "province {code} ({}) was merged into {} on {reform}: ask for --province {}",
                            old.name, old.merged_into, old.merged_into
                        ),
                        None => format!("no province has the code {code}"),
                    }));
                }
                BTreeSet::from([code.as_str()])
            }
        };
        let old_provinces: Vec<_> =
            self.old_provinces.iter().filter(|p| provinces.contains(p.merged_into.as_str())).collect();
        let old_codes: HashSet<&str> = old_provinces.iter().map(|p| p.code.as_str()).collect();
        let districts: Vec<_> = self.old_districts.iter().filter(|d| old_codes.contains(d.province.as_str())).collect();
        let by_district = self.communes_by_district();
        let communes: Vec<_> =
            districts.iter().flat_map(|d| by_district.get(d.code.as_str()).into_iter().flatten().copied()).collect();
        let new_communes: Vec<_> =
            self.new_communes.iter().filter(|c| provinces.contains(c.province.as_str())).collect();
        let new_codes: HashSet<&str> = new_communes.iter().map(|c| c.code.as_str()).collect();
        let old_commune_names: std::collections::HashMap<&str, &str> =
            communes.iter().map(|c| (c.code.as_str(), c.name.as_str())).collect();
        let province_of = |old: &str| self.new_province_of(old).expect("every old province has a new one");

        let source = &self.source.registry;
        let mut out = Vec::new();
        let mut put = |day: Day, code: &str, data: EventData| {
            let time = format!("{day}T00:00:00+07:00");
            let mut hash = Sha256::new();
            for part in ["hoctap-geography", data.event_type().stem(), code, &time] {
                hash.update(part.as_bytes());
                hash.update([0]);
            }
            let bytes: [u8; 16] = hash.finalize()[..16].try_into().expect("16 of 32 bytes");
            let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
            out.push(Event::new(id, source, &time, code, data).expect("an RFC 3339 time"));
        };
        let established_event = |code: &str, level, name: &str, parent: Option<&str>, at: Option<crate::Coords>| {
            EventData::AdminUnitEstablished(AdminUnitEstablished {
                code: code.to_owned(),
                level,
                name: name.to_owned(),
                parent: parent.map(str::to_owned),
                coordinates: at.map(|c| Coordinates { lat: Num(c.lat), lon: Num(c.lon) }),
            })
        };
        let dissolved = |code: &str, successors: &[crate::Successor]| {
            let successors =
                successors.iter().map(|s| Successor { code: s.code.clone(), default: s.default }).collect();
            EventData::AdminUnitDissolved(AdminUnitDissolved { code: code.to_owned(), successors })
        };
        let dissolved_into_one =
            |code: &str, successor: &str| EventData::AdminUnitDissolved(AdminUnitDissolved::into_one(code, successor));

        for p in &old_provinces {
            put(established, &p.code, established_event(&p.code, Level::Province, &p.name, None, p.coords));
        }
        for d in &districts {
            put(
                established,
                &d.code,
                established_event(&d.code, Level::District, &d.name, Some(&d.province), d.coords),
            );
        }
        for c in &communes {
            put(established, &c.code, established_event(&c.code, Level::Commune, &c.name, Some(&c.district), c.coords));
        }

        // The reform. New communes first (with a code of their own, or an old commune's code kept).
        for n in &new_communes {
            match old_commune_names.get(n.code.as_str()) {
                None => put(
                    reform,
                    &n.code,
                    established_event(&n.code, Level::Commune, &n.name, Some(&n.province), n.coords),
                ),
                Some(old_name) => {
                    put(
                        reform,
                        &n.code,
                        EventData::AdminUnitReparented(AdminUnitReparented {
                            code: n.code.clone(),
                            parent: n.province.clone(),
                        }),
                    );
                    if *old_name != n.name {
                        put(
                            reform,
                            &n.code,
                            EventData::AdminUnitRenamed(AdminUnitRenamed {
                                code: n.code.clone(),
                                name: n.name.clone(),
                            }),
                        );
                    }
                }
            }
        }
        for c in communes.iter().filter(|c| !new_codes.contains(c.code.as_str())) {
            put(reform, &c.code, dissolved(&c.code, &c.successors));
        }
        for d in &districts {
            let event = if d.successors.is_empty() {
                dissolved_into_one(&d.code, province_of(&d.province))
            } else {
                dissolved(&d.code, &d.successors)
            };
            put(reform, &d.code, event);
        }
        for p in &old_provinces {
            if p.merged_into != p.code {
                put(reform, &p.code, dissolved_into_one(&p.code, &p.merged_into));
            } else if let Some(new) = self.new_provinces.iter().find(|n| n.code == p.code)
                && new.name != p.name
            {
                put(
                    reform,
                    &p.code,
                    EventData::AdminUnitRenamed(AdminUnitRenamed { code: p.code.clone(), name: new.name.clone() }),
                );
            }
        }
        Ok(out)
    }
}
