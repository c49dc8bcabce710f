//! Notary v1 expiry times: Go's RFC 3339 with nanoseconds.
//!
//! Notary writes `expires` with Go's `time.RFC3339Nano` layout: `2027-01-01T10:00:00Z`,
//! `2027-01-01T10:00:00.123456789Z` or `2027-01-01T12:00:00.5+02:00` (a fraction of one to nine
//! digits, `Z` or a `±hh:mm` offset). [`parse_expires`] reads exactly that and gives the
//! instant in UTC, truncated to the second below, with the fraction kept apart so that
//! "expired" can be decided exactly: an instant is expired when it lies before the reference
//! time, as Go's `time.Before` decides it.

use crate::time::Timestamp;

use super::NotaryError;

/// An expiry time as Notary wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expires {
    /// The instant, truncated to whole seconds (UTC).
    pub seconds: Timestamp,
    /// Nanoseconds after [`Expires::seconds`] (0 to 999,999,999).
    pub nanos: u32,
    /// The text as written.
    pub text: String,
}

impl Expires {
    /// True when this instant lies before `now` (whole seconds): expired.
    ///
    /// ```
    /// use vouch_tuf::notary::parse_expires;
    /// use vouch_tuf::time::Timestamp;
    /// let e = parse_expires("2030-01-01T00:00:00.5Z").unwrap();
    /// let at = Timestamp::parse("2030-01-01T00:00:00Z").unwrap();
    /// assert!(!e.is_expired_at(at));
    /// assert!(e.is_expired_at(at.add_seconds(1)));
    /// ```
    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        self.seconds < now
    }
}

/// Parses a Go `RFC3339Nano` time (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)`).
///
/// ```
/// use vouch_tuf::notary::parse_expires;
/// let a = parse_expires("2027-03-04T05:06:07.123456789Z").unwrap();
/// let b = parse_expires("2027-03-04T07:06:07.123456789+02:00").unwrap();
/// assert_eq!((a.seconds, a.nanos), (b.seconds, b.nanos));
/// assert!(parse_expires("2027-03-04 05:06:07Z").is_err());
/// ```
pub fn parse_expires(text: &str) -> Result<Expires, NotaryError> {
    let bad = |reason: &str| NotaryError::BadExpires {
        text: text.chars().take(64).collect(),
        reason: reason.to_owned(),
    };
    if !text.is_ascii() || text.len() < 20 || text.len() > 35 {
        return Err(bad(
            "not of the form YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm)",
        ));
    }
    let (base, rest) = text.split_at(19);
    let mut nanos = 0u32;
    let mut zone = rest;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(bad("the fraction of a second must have 1 to 9 digits"));
        }
        let mut n = 0u32;
        for (i, c) in frac.bytes().take(9).enumerate() {
            if i < digits {
                n = n * 10 + u32::from(c - b'0');
            }
        }
        for _ in digits..9 {
            n *= 10;
        }
        nanos = n;
        zone = &frac[digits..];
    }
    let offset: i64 = match zone.as_bytes() {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]
            if [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()) =>
        {
            let hours = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let minutes = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if hours > 23 || minutes > 59 {
                return Err(bad("the UTC offset is out of range"));
            }
            let secs = hours * 3600 + minutes * 60;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => {
            return Err(bad(
                "expected Z or a +hh:mm / -hh:mm offset after the seconds",
            ))
        }
    };
    let local = Timestamp::parse(&format!("{base}Z")).map_err(|e| bad(e.reason))?;
    Ok(Expires {
        seconds: local.add_seconds(-offset),
        nanos,
        text: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_notary_writes() {
        let e = parse_expires("2036-11-27T01:58:39.730960174Z").unwrap();
        assert_eq!(e.seconds, Timestamp::parse("2036-11-27T01:58:39Z").unwrap());
        assert_eq!(e.nanos, 730_960_174);
        let e = parse_expires("2026-12-05T01:58:40Z").unwrap();
        assert_eq!(e.nanos, 0);
        let e = parse_expires("2026-12-05T01:58:40.5-01:30").unwrap();
        assert_eq!(e.seconds, Timestamp::parse("2026-12-05T03:28:40Z").unwrap());
        assert_eq!(e.nanos, 500_000_000);
    }

    #[test]
    fn refuses_other_forms() {
        for s in [
            "2026-12-05T01:58:40",
            "2026-12-05T01:58:40.Z",
            "2026-12-05T01:58:40.1234567890Z",
            "2026-12-05T01:58:40+0100",
            "2026-12-05T01:58:40+24:00",
            "2026-12-05T01:58:40z",
            "2026-02-30T01:58:40Z",
            "2026-12-05 01:58:40Z",
            "2026-12-05T01:58:40Zjunk",
            "２026-12-05T01:58:40Z",
            "",
        ] {
            assert!(parse_expires(s).is_err(), "{s}");
        }
    }

    #[test]
    fn expiry_is_exact_to_the_second() {
        let e = parse_expires("2030-01-01T00:00:00Z").unwrap();
        let t = Timestamp::parse("2030-01-01T00:00:00Z").unwrap();
        assert!(!e.is_expired_at(t));
        assert!(e.is_expired_at(t.add_seconds(1)));
    }
}
