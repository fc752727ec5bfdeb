//! Time on two axes: valid time (Vietnam calendar days, UTC+07:00) and transaction time (UTC microseconds).

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// `NaiveDate::num_days_from_ce` of 1970-01-01.
const EPOCH_FROM_CE: i32 = 719_163;
const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Vietnam has used UTC+07:00 without daylight saving for the whole campaign.
const VN_OFFSET_MICROS: i64 = 7 * 3_600_000_000;

/// A Vietnam calendar date, as days since 1970-01-01. Every "as of D" question is asked in these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i32);

impl Day {
    /// Earliest and latest representable days, used as open interval ends.
    pub const MIN: Day = Day(i32::MIN);
    pub const MAX: Day = Day(i32::MAX);

    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Day> {
        // Hand-parsed: dates sit on the replay's hot path and chrono's format parser is slow there.
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
        };
        NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?).map(Day::from_date)
    }

    pub fn from_date(date: NaiveDate) -> Day {
        use chrono::Datelike;
        Day(date.num_days_from_ce() - EPOCH_FROM_CE)
    }

    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Day> {
        NaiveDate::from_ymd_opt(year, month, day).map(Day::from_date)
    }

    pub fn date(self) -> NaiveDate {
        NaiveDate::from_num_days_from_ce_opt(EPOCH_FROM_CE + self.0).unwrap_or(NaiveDate::MAX)
    }

    pub fn year(self) -> i32 {
        use chrono::Datelike;
        self.date().year()
    }

    /// The Vietnam calendar day on which a UTC instant falls.
    pub fn of_instant(micros: i64) -> Day {
        Day((micros + VN_OFFSET_MICROS).div_euclid(MICROS_PER_DAY) as i32)
    }

    /// The last microsecond of this day in Vietnam, as a UTC instant.
    pub fn end_instant(self) -> i64 {
        (self.0 as i64 + 1) * MICROS_PER_DAY - VN_OFFSET_MICROS - 1
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.date().format("%Y-%m-%d"))
    }
}

/// `YYYY-MM-DD` in text formats (JSON); the day number in binary ones (the engine checkpoint), where it
/// is smaller, faster, and keeps days that have no calendar date such as [`Day::MIN`].
impl Serialize for Day {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() { s.collect_str(self) } else { s.serialize_i32(self.0) }
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Day, D::Error> {
        if !d.is_human_readable() {
            return i32::deserialize(d).map(Day);
        }
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Day::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a date YYYY-MM-DD")))
    }
}

/// Parses a known-at as people write it: an RFC 3339 timestamp with an offset, or a date `YYYY-MM-DD`
/// meaning the end of that day in Vietnam (UTC+07:00), i.e. everything recorded on that day counts.
/// The one parser of `--known-at` and of the API's `known_at`.
pub fn parse_known_at(text: &str) -> Option<i64> {
    parse_instant(text).or_else(|| Day::parse(text).map(Day::end_instant))
}

/// Parses an RFC 3339 timestamp with an offset into UTC microseconds.
pub fn parse_instant(text: &str) -> Option<i64> {
    parse_instant_fast(text).or_else(|| DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_micros()))
}

/// The common shape `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, parsed by hand: timestamps sit on the
/// replay's hot path. Anything else (leap seconds, lower-case `t`, …) is left to chrono.
fn parse_instant_fast(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b.get(r)?.iter().try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
    };
    let day = Day::parse(&text[..10])?;
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..6 {
            micros *= 10;
        }
    }
    let offset = match b.get(i..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let d = |k: usize| i64::from(digits[k] - b'0');
            let minutes = (d(0) * 10 + d(1)) * 60 + d(2) * 10 + d(3);
            if d(0) * 10 + d(1) > 23 || d(2) * 10 + d(3) > 59 {
                return None;
            }
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    let seconds = i64::from(day.0) * 86_400 + hour * 3600 + minute * 60 + second - offset * 60;
    Some(seconds * 1_000_000 + micros)
}

/// Formats UTC microseconds as RFC 3339 (`Z`; a fraction only when there is one).
pub fn format_instant(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| micros.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_at_date_is_the_end_of_that_day_in_vietnam() {
        let end = parse_known_at("2026-01-15").unwrap();
        assert_eq!(format_instant(end), "2026-01-15T16:59:59.999999Z");
        assert_eq!(parse_known_at("2026-01-15T00:00:00+07:00"), parse_instant("2026-01-14T17:00:00Z"));
        for bad in ["2026-01-15T00:00:00", "2026-13-01", "yesterday", "", "2026-1-15"] {
            assert_eq!(parse_known_at(bad), None, "{bad}");
        }
    }

    #[test]
    fn fast_instant_parser_agrees_with_chrono() {
        for text in [
            "2025-12-31T23:59:59+07:00",
            "2025-12-31T17:00:00Z",
            "2025-01-01T00:00:00.5-03:30",
            "2026-02-20T00:00:00.123456Z",
            "2026-02-20T00:00:00.1234567+00:00",
            "1969-12-31T23:59:59Z",
        ] {
            let chrono = DateTime::parse_from_rfc3339(text).unwrap().timestamp_micros();
            assert_eq!(parse_instant_fast(text), Some(chrono), "{text}");
        }
        for text in ["2025-12-31T24:00:00Z", "2025-12-31T23:59:59", "2025-12-31T23:59:59+7:00", "2025-02-30T00:00:00Z"]
        {
            assert_eq!(parse_instant_fast(text), None, "{text}");
            assert_eq!(parse_instant(text), None, "{text}");
        }
        // Shapes the fast path leaves to chrono still parse.
        assert!(parse_instant("2025-12-31t23:59:59Z").is_some());
    }

    #[test]
    fn vietnam_day_boundaries() {
        let d = Day::parse("2025-12-31").unwrap();
        // 23:59 in Hà Nội on the 31st is still the 31st; 00:00 on 1 January is not.
        assert_eq!(Day::of_instant(parse_instant("2025-12-31T23:59:59+07:00").unwrap()), d);
        assert_eq!(Day::of_instant(parse_instant("2025-12-31T17:00:00Z").unwrap()), Day(d.0 + 1));
        assert_eq!(Day::of_instant(d.end_instant()), d);
        assert_eq!(Day::of_instant(d.end_instant() + 1), Day(d.0 + 1));
        assert_eq!(d.to_string(), "2025-12-31");
        assert_eq!(d.year(), 2025);
        assert!(Day::parse("2025-02-30").is_none());
        assert!(Day::parse("2025-2-3").is_none());
    }
}
