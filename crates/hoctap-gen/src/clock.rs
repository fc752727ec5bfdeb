//! Valid time as whole seconds on the Vietnam wall clock (UTC+07:00), and its RFC 3339 spelling.
//!
//! The generator works in local seconds because every rule of the domain reads dates in UTC+07:00:
//! a day boundary here is a day boundary there, and no time zone library is needed to write `time`.

use hoctap_domain::time::Day;

/// Seconds since 1970-01-01T00:00:00 on the Vietnam wall clock.
pub(crate) type Local = i64;

pub(crate) const DAY: Local = 86_400;
pub(crate) const HOUR: Local = 3_600;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
pub(crate) fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

/// Midnight at the start of a local date.
pub(crate) fn midnight(year: i32, month: u32, day: u32) -> Local {
    days_from_civil(year, month, day) * DAY
}

/// The first second of a year.
pub(crate) fn year_start(year: i32) -> Local {
    midnight(year, 1, 1)
}

/// The year a local instant falls in.
#[cfg(test)]
pub(crate) fn year_of(t: Local) -> i32 {
    civil_from_days(t.div_euclid(DAY)).0
}

/// The domain's calendar day of a local instant.
pub(crate) fn day_of(t: Local) -> Day {
    Day(t.div_euclid(DAY) as i32)
}

/// A local date as the domain's calendar day.
pub(crate) fn date(year: i32, month: u32, day: u32) -> Day {
    Day(days_from_civil(year, month, day) as i32)
}

/// `YYYY-MM-DDTHH:MM:SS+07:00`. Written by hand: it runs once per event, and `format!` with six
/// padded fields costs more than the rest of the envelope.
pub(crate) fn rfc3339(t: Local) -> String {
    let (year, month, day) = civil_from_days(t.div_euclid(DAY));
    let secs = t.rem_euclid(DAY);
    let mut buf = *b"0000-00-00T00:00:00+07:00";
    let put = |buf: &mut [u8; 25], at: usize, width: usize, mut value: u32| {
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(&mut buf, 0, 4, year as u32);
    put(&mut buf, 5, 2, month);
    put(&mut buf, 8, 2, day);
    put(&mut buf, 11, 2, (secs / HOUR) as u32);
    put(&mut buf, 14, 2, (secs % HOUR / 60) as u32);
    put(&mut buf, 17, 2, (secs % 60) as u32);
    // Only ASCII digits were written into an ASCII template.
    String::from_utf8(buf.to_vec()).expect("ascii")
}

/// UTC microseconds of a local instant (what `Event::instant` holds).
#[cfg(test)]
pub(crate) fn utc_micros(t: Local) -> i64 {
    (t - 7 * HOUR) * 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoctap_domain::time::parse_instant;

    #[test]
    fn local_seconds_round_trip_through_rfc3339() {
        for (y, m, d) in [(1970, 1, 1), (2021, 1, 1), (2024, 2, 29), (2025, 7, 1), (2031, 12, 31)] {
            let days = days_from_civil(y, m, d);
            assert_eq!(civil_from_days(days), (y, m, d));
            assert_eq!(date(y, m, d), Day::from_ymd(y, m, d).unwrap());
            let t = midnight(y, m, d) + 13 * HOUR + 5 * 60 + 9;
            let text = rfc3339(t);
            assert_eq!(&text[..10], format!("{y:04}-{m:02}-{d:02}"));
            assert!(text.ends_with("T13:05:09+07:00"), "{text}");
            assert_eq!(parse_instant(&text), Some(utc_micros(t)));
            assert_eq!(year_of(t), y);
            assert_eq!(day_of(t), date(y, m, d));
        }
    }
}
