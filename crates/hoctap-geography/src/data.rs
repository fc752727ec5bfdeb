//! The units of the derived file and how it is read (format: data/geography/README.md).

use crate::{GeographyError, Official, Source};
use std::io::Read;

/// A unit's centre (WGS 84 degrees), as the dataset gives it; missing for a few island districts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coords {
    pub lat: f64,
    pub lon: f64,
}

/// One unit an old commune (or a district without communes) passed into on 1 July 2025.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Successor {
    pub code: String,
    /// The unit its people are counted in when nothing more precise is known (exactly one per old unit).
    pub default: bool,
}

#[derive(Clone, Debug)]
pub struct OldProvince {
    pub code: String,
    /// The official name with its type: `Thành phố Hà Nội`, `Tỉnh Hải Dương`.
    pub name: String,
    pub coords: Option<Coords>,
    /// The code of the province it is part of from 1 July 2025 (its own code when it kept it).
    pub merged_into: String,
}

#[derive(Clone, Debug)]
pub struct OldDistrict {
    pub code: String,
    pub province: String,
    /// `Quận Ba Đình`, `Huyện Sóc Sơn`, `Thị xã Sơn Tây`, `Thành phố Thủ Đức`.
    pub name: String,
    pub coords: Option<Coords>,
    /// Empty unless the district had no communes (an island): then the unit it became.
    pub successors: Vec<Successor>,
}

#[derive(Clone, Debug)]
pub struct OldCommune {
    pub code: String,
    pub district: String,
    /// `Phường Phúc Xá`, `Xã Minh Phú`, `Thị trấn Đông Anh`.
    pub name: String,
    pub coords: Option<Coords>,
    /// The new units it passed into: one, or several when it was divided.
    pub successors: Vec<Successor>,
}

impl OldCommune {
    /// The successor its people are counted in by default.
    pub fn default_successor(&self) -> &str {
        default_of(&self.successors)
    }

    pub fn is_divided(&self) -> bool {
        self.successors.len() > 1
    }
}

pub(crate) fn default_of(successors: &[Successor]) -> &str {
    successors.iter().find(|s| s.default).map(|s| s.code.as_str()).expect("checked at load: one default")
}

#[derive(Clone, Debug)]
pub struct NewProvince {
    pub code: String,
    pub name: String,
    pub coords: Option<Coords>,
}

#[derive(Clone, Debug)]
pub struct NewCommune {
    pub code: String,
    pub province: String,
    /// `Phường Ba Đình`, `Xã Sóc Sơn`, `Đặc khu Côn Đảo`.
    pub name: String,
    pub coords: Option<Coords>,
    pub area_km2: Option<f64>,
}

pub(crate) fn gunzip(bytes: &[u8]) -> Result<String, GeographyError> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .map_err(|e| GeographyError::Damaged(format!("vn-2025.tsv.gz: {e}")))?;
    Ok(text)
}

pub(crate) fn parse(text: &str, source: Source) -> Result<Official, GeographyError> {
    let mut o = Official {
        old_provinces: Vec::new(),
        old_districts: Vec::new(),
        old_communes: Vec::new(),
        new_provinces: Vec::new(),
        new_communes: Vec::new(),
        source,
    };
    for (index, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |what: &str| GeographyError::Damaged(format!("vn-2025.tsv line {}: {what}: {line:?}", index + 1));
        let f: Vec<&str> = line.split('\t').collect();
        let want = match f[0] {
            "P" | "D" | "C" | "W" => {
                if f[0] == "P" {
                    6
                } else {
                    7
                }
            }
            "Q" => 5,
            _ => return Err(bad("unknown record")),
        };
        if f.len() != want {
            return Err(bad(&format!("{} fields, expected {want}", f.len())));
        }
        let coords = |lat: &str, lon: &str| -> Result<Option<Coords>, GeographyError> {
            if lat.is_empty() && lon.is_empty() {
                return Ok(None);
            }
            match (lat.parse(), lon.parse()) {
                (Ok(lat), Ok(lon)) => Ok(Some(Coords { lat, lon })),
                _ => Err(bad("coordinates")),
            }
        };
        let successors = |field: &str| -> Result<Vec<Successor>, GeographyError> {
            let list: Vec<Successor> = field
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| match s.strip_suffix('*') {
                    Some(code) => Successor { code: code.to_owned(), default: true },
                    None => Successor { code: s.to_owned(), default: false },
                })
                .collect();
            if !list.is_empty() && list.iter().filter(|s| s.default).count() != 1 {
                return Err(bad("successors without exactly one default"));
            }
            Ok(list)
        };
        let s = |i: usize| f[i].to_owned();
        match f[0] {
            "P" => o.old_provinces.push(OldProvince {
                code: s(1),
                name: s(2),
                coords: coords(f[3], f[4])?,
                merged_into: s(5),
            }),
            "D" => o.old_districts.push(OldDistrict {
                code: s(1),
                province: s(2),
                name: s(3),
                coords: coords(f[4], f[5])?,
                successors: successors(f[6])?,
            }),
            "C" => {
                let successors = successors(f[6])?;
                if successors.is_empty() {
                    return Err(bad("a commune without successors"));
                }
                o.old_communes.push(OldCommune {
                    code: s(1),
                    district: s(2),
                    name: s(3),
                    coords: coords(f[4], f[5])?,
                    successors,
                })
            }
            "Q" => o.new_provinces.push(NewProvince { code: s(1), name: s(2), coords: coords(f[3], f[4])? }),
            _ => o.new_communes.push(NewCommune {
                code: s(1),
                province: s(2),
                name: s(3),
                coords: coords(f[4], f[5])?,
                area_km2: if f[6].is_empty() { None } else { Some(f[6].parse().map_err(|_| bad("area"))?) },
            }),
        }
    }
    Ok(o)
}
