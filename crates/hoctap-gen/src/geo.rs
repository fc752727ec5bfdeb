//! The geography of the synthetic Hà Nội: 30 districts and 579 communes from 2021, and the reform of
//! 1 July 2025 that leaves 126 communes directly under the city and no districts.
//!
//! The geography does not depend on the seed: every generated city has the same map, so datasets of
//! different seeds can be compared unit by unit. Only the people living on it change.

use crate::clock::{self, Local};
use fastrand::Rng;
use hoctap_domain::codes::Level;
use std::collections::HashSet;

/// The day the two-tier local government took effect.
pub(crate) fn reform() -> Local {
    clock::midnight(2025, 7, 1)
}

/// How many communes the reform establishes; with the kept ones Hà Nội has 126.
const NEW_COMMUNES: usize = 110;

#[derive(Clone, Copy, PartialEq, Eq)]
enum DistrictKind {
    /// Quận: urban, its communes are wards (phường).
    Urban,
    /// Thị xã: a town, wards and rural communes.
    Town,
    /// Huyện: rural, one township (thị trấn) and rural communes (xã).
    Rural,
}

use DistrictKind::{Rural, Town, Urban};

/// Hà Nội's 30 districts before 2025 and how many communes each had (579 in all, as around 2020).
const DISTRICTS: [(&str, DistrictKind, usize); 30] = [
    ("Ba Đình", Urban, 14),
    ("Hoàn Kiếm", Urban, 18),
    ("Tây Hồ", Urban, 8),
    ("Long Biên", Urban, 14),
    ("Cầu Giấy", Urban, 8),
    ("Đống Đa", Urban, 21),
    ("Hai Bà Trưng", Urban, 18),
    ("Hoàng Mai", Urban, 14),
    ("Thanh Xuân", Urban, 11),
    ("Nam Từ Liêm", Urban, 10),
    ("Bắc Từ Liêm", Urban, 13),
    ("Hà Đông", Urban, 17),
    ("Sơn Tây", Town, 15),
    ("Sóc Sơn", Rural, 26),
    ("Đông Anh", Rural, 24),
    ("Gia Lâm", Rural, 22),
    ("Thanh Trì", Rural, 16),
    ("Mê Linh", Rural, 18),
    ("Ba Vì", Rural, 31),
    ("Phúc Thọ", Rural, 21),
    ("Đan Phượng", Rural, 16),
    ("Hoài Đức", Rural, 20),
    ("Quốc Oai", Rural, 21),
    ("Thạch Thất", Rural, 23),
    ("Chương Mỹ", Rural, 32),
    ("Thanh Oai", Rural, 21),
    ("Thường Tín", Rural, 29),
    ("Phú Xuyên", Rural, 27),
    ("Ứng Hòa", Rural, 29),
    ("Mỹ Đức", Rural, 22),
];

/// Real ward names of the four central districts; the other communes get invented names.
const REAL_WARDS: [&[&str]; 5] = [
    &[
        "Phúc Xá",
        "Trúc Bạch",
        "Vĩnh Phúc",
        "Cống Vị",
        "Liễu Giai",
        "Nguyễn Trung Trực",
        "Quán Thánh",
        "Ngọc Hà",
        "Điện Biên",
        "Đội Cấn",
        "Ngọc Khánh",
        "Kim Mã",
        "Giảng Võ",
        "Thành Công",
    ],
    &[
        "Phúc Tân",
        "Đồng Xuân",
        "Hàng Mã",
        "Hàng Buồm",
        "Hàng Đào",
        "Hàng Bồ",
        "Cửa Đông",
        "Lý Thái Tổ",
        "Hàng Bạc",
        "Hàng Gai",
        "Chương Dương",
        "Hàng Trống",
        "Cửa Nam",
        "Hàng Bông",
        "Tràng Tiền",
        "Trần Hưng Đạo",
        "Phan Chu Trinh",
        "Hàng Bài",
    ],
    &["Phú Thượng", "Nhật Tân", "Tứ Liên", "Quảng An", "Xuân La", "Yên Phụ", "Bưởi", "Thụy Khuê"],
    &[],
    &["Nghĩa Đô", "Nghĩa Tân", "Mai Dịch", "Dịch Vọng", "Dịch Vọng Hậu", "Quan Hoa", "Yên Hòa", "Trung Hòa"],
];

const FIRST: [&str; 40] = [
    "An",
    "Bình",
    "Phúc",
    "Thịnh",
    "Hòa",
    "Đông",
    "Tây",
    "Nam",
    "Bắc",
    "Tân",
    "Phú",
    "Long",
    "Vĩnh",
    "Thanh",
    "Minh",
    "Quang",
    "Đại",
    "Hồng",
    "Kim",
    "Liên",
    "Mỹ",
    "Ngọc",
    "Sơn",
    "Thượng",
    "Hạ",
    "Cổ",
    "Đức",
    "Hưng",
    "Lạc",
    "Văn",
    "Xuân",
    "Yên",
    "Hoàng",
    "Trung",
    "Cao",
    "Đồng",
    "Tiên",
    "Tam",
    "Song",
    "Vạn",
];

const SECOND: [&str; 30] = [
    "Lộc", "Hà", "Sơn", "Lâm", "Phong", "Thành", "Tiến", "Hòa", "Bình", "Khê", "Xá", "Phương", "Mỹ", "Nghĩa", "Lợi",
    "Thái", "Cường", "Lập", "Hiệp", "Thuận", "Quý", "Định", "Trạch", "Giang", "Đình", "Hồ", "Mai", "Tảo", "Viên",
    "Dương",
];

/// One administrative unit, with what the reform does to it.
pub(crate) struct Unit {
    pub code: String,
    pub name: String,
    pub level: Level,
    /// Index of the parent (the city's parent is itself).
    pub parent: u16,
    /// Set for the communes and districts the reform dissolves.
    pub successor: Option<u16>,
    /// Relative number of people living there (communes only).
    pub weight: f64,
}

/// A unit renamed before the reform.
pub(crate) struct Rename {
    pub unit: u16,
    pub time: Local,
    pub name: String,
}

/// The whole map. Unit 0 is the city, 1..=30 the districts, then the old communes, then the new ones.
pub(crate) struct Geography {
    pub units: Vec<Unit>,
    pub old_communes: std::ops::Range<u16>,
    pub new_communes: std::ops::Range<u16>,
    /// Old communes the reform keeps (moved under the city).
    pub kept: Vec<u16>,
    pub renames: Vec<Rename>,
    /// One kept commune for which no `unit_staff` baseline is recorded.
    pub without_unit_staff: u16,
    before: Picker,
    after: Picker,
}

/// Weighted choice of a commune, by cumulative weight.
struct Picker {
    units: Vec<u16>,
    cumulative: Vec<f64>,
}

impl Picker {
    fn new(units: Vec<u16>, weight: impl Fn(u16) -> f64) -> Picker {
        let mut sum = 0.0;
        let cumulative = units
            .iter()
            .map(|&u| {
                sum += weight(u);
                sum
            })
            .collect();
        Picker { units, cumulative }
    }

    fn pick(&self, rng: &mut Rng) -> u16 {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = rng.f64() * total;
        let i = self.cumulative.partition_point(|&c| c <= x);
        self.units[i.min(self.units.len() - 1)]
    }
}

pub(crate) const CITY: u16 = 0;

impl Geography {
    pub(crate) fn hanoi() -> Geography {
        // A constant seed: the map is the same whatever the caller's seed (see the module comment).
        let mut rng = Rng::with_seed(0x4841_4e4f_4920_3031);
        let mut units = vec![Unit {
            code: "01".into(),
            name: "Hà Nội".into(),
            level: Level::Province,
            parent: CITY,
            successor: None,
            weight: 0.0,
        }];
        for (i, (name, kind, _)) in DISTRICTS.iter().enumerate() {
            let prefix = match kind {
                Urban => "Quận",
                Town => "Thị xã",
                Rural => "Huyện",
            };
            units.push(Unit {
                code: format!("{:03}", i + 1),
                name: format!("{prefix} {name}"),
                level: Level::District,
                parent: CITY,
                successor: Some(CITY),
                weight: 0.0,
            });
        }

        let mut used: HashSet<String> = DISTRICTS.iter().map(|d| d.0.to_owned()).collect();
        used.extend(REAL_WARDS.iter().flat_map(|w| w.iter().map(|n| (*n).to_owned())));
        let first_commune = units.len() as u16;
        // Base names (without "Phường"/"Xã") of the old communes, to name the new ones after them.
        let mut bases = Vec::new();
        let mut by_district: Vec<Vec<u16>> = vec![Vec::new(); DISTRICTS.len()];
        let mut serial = 0usize;
        for (d, (district_name, kind, count)) in DISTRICTS.iter().enumerate() {
            let density = match kind {
                Urban => 1.4,
                Town => 1.0,
                Rural => 0.8,
            };
            for k in 0..*count {
                let real = REAL_WARDS.get(d).and_then(|w| w.get(k)).copied();
                let (prefix, base) = match (kind, real) {
                    (_, Some(real)) => ("Phường", real.to_owned()),
                    (Rural, None) if k == 0 => ("Thị trấn", (*district_name).to_owned()),
                    (Urban, None) => ("Phường", invent(&mut rng, &mut used)),
                    (Town, None) if k < 9 => ("Phường", invent(&mut rng, &mut used)),
                    _ => ("Xã", invent(&mut rng, &mut used)),
                };
                // National commune codes are spread out; a stride of 3 keeps ours looking alike.
                let code = format!("{:05}", 1 + 3 * serial);
                serial += 1;
                by_district[d].push(units.len() as u16);
                units.push(Unit {
                    code,
                    name: format!("{prefix} {base}"),
                    level: Level::Commune,
                    parent: d as u16 + 1,
                    successor: None,
                    weight: density * (0.5 + rng.f64()),
                });
                bases.push(base);
            }
        }
        let old_communes = first_commune..units.len() as u16;

        // The reform keeps the last commune of every rural district but Gia Lâm: 16 communes.
        let kept: Vec<u16> = DISTRICTS
            .iter()
            .enumerate()
            .filter(|(_, (name, kind, _))| *kind == Rural && *name != "Gia Lâm")
            .map(|(d, _)| *by_district[d].last().expect("every district has communes"))
            .collect();
        let dissolved: Vec<Vec<u16>> =
            by_district.iter().map(|cs| cs.iter().copied().filter(|c| !kept.contains(c)).collect()).collect();
        let shares = largest_remainder(&dissolved.iter().map(Vec::len).collect::<Vec<_>>(), NEW_COMMUNES);

        let first_new = units.len() as u16;
        let mut new_serial = 0usize;
        for (d, members) in dissolved.iter().enumerate() {
            let groups = shares[d];
            let (district_name, kind, _) = DISTRICTS[d];
            let prefix = if kind == Rural { "Xã" } else { "Phường" };
            for g in 0..groups {
                // Consecutive neighbours merge: group g takes an even slice of the district's communes.
                let from = members.len() * g / groups;
                let to = members.len() * (g + 1) / groups;
                let new = units.len() as u16;
                let mut weight = 0.0;
                for &old in &members[from..to] {
                    let unit = &mut units[old as usize];
                    unit.successor = Some(new);
                    weight += unit.weight;
                }
                let base = if g == 0 {
                    district_name.to_owned()
                } else {
                    bases[(members[from] - first_commune) as usize].clone()
                };
                units.push(Unit {
                    code: format!("{:05}", 20_001 + 3 * new_serial),
                    name: format!("{prefix} {base}"),
                    level: Level::Commune,
                    parent: CITY,
                    successor: None,
                    weight,
                });
                new_serial += 1;
            }
        }
        let new_communes = first_new..units.len() as u16;

        // A few renames before the reform: two communes become wards, one takes a new name.
        let pick_rural = |d: usize, k: usize| by_district[d][k];
        let mut renames = Vec::new();
        for (unit, time, to_ward) in [
            (pick_rural(16, 3), clock::midnight(2023, 7, 1), false),
            (pick_rural(15, 2), clock::midnight(2024, 11, 1), true),
            (pick_rural(15, 4), clock::midnight(2024, 11, 1), true),
        ] {
            let base = &bases[(unit - first_commune) as usize];
            let name =
                if to_ward { format!("Phường {base}") } else { format!("Xã {}", invent(&mut rng, &mut used)) };
            renames.push(Rename { unit, time, name });
        }

        let before = Picker::new(old_communes.clone().collect(), |u| units[u as usize].weight);
        let after =
            Picker::new(kept.iter().copied().chain(new_communes.clone()).collect(), |u| units[u as usize].weight);
        let without_unit_staff = kept[kept.len() / 2];
        Geography { units, old_communes, new_communes, kept, renames, without_unit_staff, before, after }
    }

    pub(crate) fn code(&self, unit: u16) -> &str {
        &self.units[unit as usize].code
    }

    /// The commune in force at `t` for a subject whose last known commune is `commune`.
    pub(crate) fn in_force(&self, commune: u16, t: Local) -> u16 {
        match self.units[commune as usize].successor {
            Some(successor) if t >= reform() => successor,
            _ => commune,
        }
    }

    /// A commune in force at `t`, chosen by population weight (where people live and move to).
    pub(crate) fn pick_commune(&self, rng: &mut Rng, t: Local) -> u16 {
        if t >= reform() { self.after.pick(rng) } else { self.before.pick(rng) }
    }

    /// Whether an old commune survives the reform.
    #[cfg(test)]
    pub(crate) fn is_kept(&self, unit: u16) -> bool {
        self.kept.contains(&unit)
    }
}

/// A two-syllable place name not used before.
fn invent(rng: &mut Rng, used: &mut HashSet<String>) -> String {
    loop {
        let name = format!("{} {}", FIRST[rng.usize(..FIRST.len())], SECOND[rng.usize(..SECOND.len())]);
        if used.insert(name.clone()) {
            return name;
        }
    }
}

/// Splits `total` over `weights` in proportion, at least 1 each, summing exactly to `total`.
fn largest_remainder(weights: &[usize], total: usize) -> Vec<usize> {
    let sum: usize = weights.iter().sum();
    let mut shares: Vec<usize> = weights.iter().map(|w| (w * total / sum).max(1)).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Hand out what is left to the largest remainders; ties go to the earlier district.
    order.sort_by_key(|&i| std::cmp::Reverse((weights[i] * total) % sum));
    let mut i = 0;
    while shares.iter().sum::<usize>() < total {
        shares[order[i % order.len()]] += 1;
        i += 1;
    }
    while shares.iter().sum::<usize>() > total {
        let largest = (0..shares.len()).max_by_key(|&i| shares[i]).expect("non-empty");
        shares[largest] -= 1;
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reform_leaves_126_communes() {
        let g = Geography::hanoi();
        assert_eq!(g.old_communes.len(), 579);
        assert_eq!(g.kept.len(), 16);
        assert_eq!(g.new_communes.len(), NEW_COMMUNES);
        for c in g.old_communes.clone() {
            let unit = &g.units[c as usize];
            assert_eq!(unit.successor.is_none(), g.is_kept(c), "{}", unit.name);
        }
        let codes: HashSet<&str> = g.units.iter().map(|u| u.code.as_str()).collect();
        assert_eq!(codes.len(), g.units.len(), "codes are unique");
        // As in the real reform, a new commune may take the name of one it absorbs; names are unique
        // among the units in force on either side of 1 July 2025.
        let before: HashSet<&str> = g.units[..g.new_communes.start as usize].iter().map(|u| u.name.as_str()).collect();
        assert_eq!(before.len(), g.new_communes.start as usize);
        let after: HashSet<&str> = g
            .kept
            .iter()
            .chain(&g.new_communes.clone().collect::<Vec<_>>())
            .map(|&u| g.units[u as usize].name.as_str())
            .collect();
        assert_eq!(after.len(), 126);
        assert_eq!(g.units[g.old_communes.start as usize].name, "Phường Phúc Xá");
    }
}
