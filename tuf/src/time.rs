//! Points in time as TUF writes them: `YYYY-MM-DDTHH:MM:SSZ`, always UTC.
//!
//! This module reads no clock: callers pass the reference time in, so tests can set it and
//! one update uses one fixed time throughout.

use std::fmt;

use thiserror::Error;

/// Seconds since 1970-01-01T00:00:00Z, written and read as `YYYY-MM-DDTHH:MM:SSZ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// A string that is not of the form `YYYY-MM-DDTHH:MM:SSZ` or names no real instant.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid time {input:?}: expected YYYY-MM-DDTHH:MM:SSZ ({reason})")]
pub struct TimeError {
    /// The rejected text.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count from 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

impl Timestamp {
    /// The instant `secs` seconds after the Unix epoch.
    pub const fn from_unix(secs: i64) -> Self {
        Timestamp(secs)
    }

    /// Seconds since the Unix epoch.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// This instant moved by `secs` seconds (saturating).
    pub const fn add_seconds(self, secs: i64) -> Self {
        Timestamp(self.0.saturating_add(secs))
    }

    /// Parses exactly `YYYY-MM-DDTHH:MM:SSZ` (years 0001 to 9999).
    ///
    /// ```
    /// use vouch_tuf::time::Timestamp;
    /// let t = Timestamp::parse("2030-01-01T00:00:00Z").unwrap();
    /// assert_eq!(t.unix(), 1_893_456_000);
    /// assert!(Timestamp::parse("2030-01-01T00:00:00+00:00").is_err());
    /// assert!(Timestamp::parse("2030-02-30T00:00:00Z").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, TimeError> {
        let err = |reason| TimeError {
            input: s.to_owned(),
            reason,
        };
        let b = s.as_bytes();
        if b.len() != 20 {
            return Err(err("wrong length"));
        }
        for (i, &c) in b.iter().enumerate() {
            let ok = match i {
                4 | 7 => c == b'-',
                10 => c == b'T',
                13 | 16 => c == b':',
                19 => c == b'Z',
                _ => c.is_ascii_digit(),
            };
            if !ok {
                return Err(err("unexpected character"));
            }
        }
        let num = |r: std::ops::Range<usize>| {
            b[r].iter()
                .fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0'))
        };
        let (y, mo, d) = (i64::from(num(0..4)), num(5..7), num(8..10));
        let (h, mi, sec) = (num(11..13), num(14..16), num(17..19));
        if y == 0 {
            return Err(err("year 0000"));
        }
        if !(1..=12).contains(&mo) {
            return Err(err("month out of range"));
        }
        if d == 0 || d > days_in_month(y, mo) {
            return Err(err("day out of range"));
        }
        if h > 23 || mi > 59 || sec > 59 {
            return Err(err("time of day out of range"));
        }
        let days = days_from_civil(y, mo, d);
        Ok(Timestamp(
            days * 86_400 + i64::from(h * 3600 + mi * 60 + sec),
        ))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_instants() {
        assert_eq!(Timestamp::parse("1970-01-01T00:00:00Z").unwrap().unix(), 0);
        assert_eq!(
            Timestamp::parse("2000-02-29T23:59:59Z").unwrap().unix(),
            951_868_799
        );
        assert_eq!(Timestamp::from_unix(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::from_unix(4_102_444_800).to_string(),
            "2100-01-01T00:00:00Z"
        );
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "2030-01-01T00:00:00",
            "2030-01-01 00:00:00Z",
            "2030-01-01T00:00:00.5Z",
            "2030-1-01T00:00:00Z",
            "2030-13-01T00:00:00Z",
            "2030-00-01T00:00:00Z",
            "2030-04-31T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2030-01-01T24:00:00Z",
            "2030-01-01T00:60:00Z",
            "2030-01-01T00:00:60Z",
            "0000-01-01T00:00:00Z",
            "２０30-01-01T00:00:00Z",
            "+030-01-01T00:00:00Z",
            "",
        ] {
            assert!(Timestamp::parse(s).is_err(), "{s}");
        }
        assert!(Timestamp::parse("2000-02-29T00:00:00Z").is_ok());
    }

    proptest! {
        #[test]
        fn round_trip(secs in -62_135_596_800i64..253_402_300_799) {
            let t = Timestamp::from_unix(secs);
            prop_assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        }
    }
}
