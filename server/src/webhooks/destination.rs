//! Where a webhook may be delivered: the rules, pure and apart from the delivery so that
//! each is tested alone. A subscription's URL must be `https://` (or `http://` when
//! `webhooks.allow_http` is set), carry no credentials, and start with one of
//! `webhooks.allowed_urls` when that list is not empty ([`Destination::check`]); and every
//! address it resolves to must be public unless `webhooks.allow_private_addresses` is set
//! ([`address_allowed`]): loopback, private, link-local (cloud metadata services live at
//! 169.254.169.254), shared, unspecified, multicast, documentation and IPv4-mapped forms of
//! them are refused. The delivery resolves names itself and connects only to addresses
//! that passed, so a name that resolves differently at connection time (DNS rebinding)
//! cannot reach one that did not.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use reqwest::Url;

/// A subscription's checked URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Destination {
    pub(crate) url: Url,
}

/// The address rules a destination is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rules {
    pub(crate) allow_http: bool,
    pub(crate) allow_private: bool,
}

impl Destination {
    /// Checks `url` against `allowed` prefixes and `rules`; the reason it is refused.
    pub(crate) fn check(url: &str, allowed: &[String], rules: Rules) -> Result<Self, String> {
        let parsed =
            Url::parse(url).map_err(|e| format!("{} is not a URL: {e}", redact_url(url)))?;
        match parsed.scheme() {
            "https" => {}
            "http" if rules.allow_http => {}
            "http" => {
                return Err(format!(
                    "{} is plain http: deliveries go over https unless webhooks.allow_http is set",
                    redact_url(url)
                ))
            }
            s => return Err(format!("{}: scheme {s:?} is not http(s)", redact_url(url))),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(format!(
                "{} carries credentials: use a secret_file to authenticate deliveries",
                redact_url(url)
            ));
        }
        if parsed.fragment().is_some() {
            return Err(format!("{} has a fragment", redact_url(url)));
        }
        let Some(host) = parsed.host_str() else {
            return Err(format!("{} names no host", redact_url(url)));
        };
        if let Some(ip) = literal_ip(host) {
            if !address_allowed(ip, rules.allow_private) {
                return Err(format!(
                    "{} is a non-public address: refused unless webhooks.allow_private_addresses is set",
                    redact_url(url)
                ));
            }
        }
        if !allowed.is_empty() && !allowed.iter().any(|a| under_prefix(&parsed, a)) {
            return Err(format!(
                "{} is outside webhooks.allowed_urls",
                redact_url(url)
            ));
        }
        Ok(Destination { url: parsed })
    }
}

/// The address a URL's host names literally (`1.2.3.4`, `[::1]`), if it does.
fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// True when `url` is `prefix` or below it: the same scheme, host and port, and a path that
/// is the prefix's or continues it at a `/` (so `https://h/hooks` does not admit
/// `https://h/hooks-evil`). A prefix that is not a URL admits nothing.
fn under_prefix(url: &Url, prefix: &str) -> bool {
    let Ok(p) = Url::parse(prefix) else {
        return false;
    };
    if url.scheme() != p.scheme()
        || url.host_str() != p.host_str()
        || url.port_or_known_default() != p.port_or_known_default()
    {
        return false;
    }
    let (have, want) = (url.path(), p.path());
    have == want
        || want.ends_with('/') && have.starts_with(want)
        || have
            .strip_prefix(want)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether a delivery may connect to `ip`: any address when `allow_private`, else only
/// public unicast ones.
pub(crate) fn address_allowed(ip: IpAddr, allow_private: bool) -> bool {
    allow_private || is_public(ip)
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(a),
        },
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let [o0, o1, o2, _] = a.octets();
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_multicast()
        || a.is_broadcast()
        || a.is_documentation()
        || o0 == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (o0 == 100 && (o1 & 0xc0) == 64)
        // IETF protocol assignments, 192.0.0.0/24; benchmarking, 198.18.0.0/15.
        || (o0 == 192 && o1 == 0 && o2 == 0)
        || (o0 == 198 && (o1 & 0xfe) == 18)
        // Reserved, 240.0.0.0/4.
        || o0 >= 240)
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    let s = a.segments();
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_multicast()
        // Unique local, fc00::/7.
        || (s[0] & 0xfe00) == 0xfc00
        // Link-local, fe80::/10 (and the deprecated site-local, fec0::/10).
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        // Documentation, 2001:db8::/32; Teredo tunnels, 2001::/32.
        || (s[0] == 0x2001 && (s[1] == 0x0db8 || s[1] == 0))
        // Local-use NAT64, 64:ff9b:1::/48.
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
        // 6to4, 2002::/16: judged by the IPv4 address it carries.
        || (s[0] == 0x2002 && !is_public_v4(Ipv4Addr::from(((u32::from(s[1])) << 16) | u32::from(s[2]))))
        // IPv4-translated, ::ffff:0:a.b.c.d.
        || (s[..6] == [0, 0, 0, 0, 0xffff, 0] && !is_public_v4(low_v4(a)))
        // IPv4-compatible (deprecated) and NAT64 forms carry an IPv4 address: judged by it.
        || (s[..6] == [0; 6] && !is_public_v4(low_v4(a)))
        || (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && !is_public_v4(low_v4(a))))
}

/// The IPv4 address in the low 32 bits of `a`.
fn low_v4(a: Ipv6Addr) -> Ipv4Addr {
    Ipv4Addr::from((u128::from(a) & 0xffff_ffff) as u32)
}

/// What the listing shows of a destination: its scheme, host and port, and `/…` for a
/// path beyond `/` (chat services' webhook URLs carry their secret in the path).
pub(crate) fn origin_of(url: &Url) -> String {
    let origin = url.origin().ascii_serialization();
    if url.path() == "/" && url.query().is_none() {
        format!("{origin}/")
    } else {
        format!("{origin}/…")
    }
}

/// `url` with any credentials and query replaced, for logs and errors.
pub(crate) fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            if !u.username().is_empty() || u.password().is_some() {
                let _ = u.set_username("redacted");
                let _ = u.set_password(None);
            }
            if u.query().is_some() {
                u.set_query(Some("redacted"));
            }
            u.to_string()
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}

/// The wait before retry `attempt` (1 for the first retry): `initial` doubled per earlier
/// attempt, at most `max`, then scaled into its upper half by `jitter` (in `[0, 1)`), so
/// that subscribers failing together do not retry in step.
pub(crate) fn backoff(attempt: u32, initial: Duration, max: Duration, jitter: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(32);
    let full = initial
        .checked_mul(1u32 << doublings.min(31))
        .unwrap_or(max)
        .min(max);
    full.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Rules = Rules {
        allow_http: false,
        allow_private: false,
    };

    #[test]
    fn only_public_https_urls_without_credentials_pass_by_default() {
        assert!(Destination::check("https://hooks.example.com/vouch", &[], STRICT).is_ok());
        for bad in [
            "http://hooks.example.com/vouch",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#x",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://169.254.169.254/latest/meta-data",
            "https://10.1.2.3/",
            "https://[::ffff:127.0.0.1]/",
            "https://[fd00::1]/",
            "https://0.0.0.0/",
            "not a url",
        ] {
            let e = Destination::check(bad, &[], STRICT).unwrap_err();
            assert!(!e.contains("pw@"), "{e}");
        }
        let open = Rules {
            allow_http: true,
            allow_private: true,
        };
        assert!(Destination::check("http://127.0.0.1:9/hook", &[], open).is_ok());
    }

    #[test]
    fn the_allow_list_is_a_prefix_at_path_boundaries() {
        let allowed = vec![
            "https://hooks.example.com/vouch".to_owned(),
            "https://other.example.com/".to_owned(),
        ];
        for ok in [
            "https://hooks.example.com/vouch",
            "https://hooks.example.com/vouch/team-a",
            "https://hooks.example.com:443/vouch",
            "https://other.example.com/anything",
        ] {
            assert!(Destination::check(ok, &allowed, STRICT).is_ok(), "{ok}");
        }
        for bad in [
            "https://hooks.example.com/vouch-evil",
            "https://hooks.example.com/",
            "https://hooks.example.com:8443/vouch",
            "https://hooks.example.com.evil.net/vouch",
            "https://evil.net/https://hooks.example.com/vouch",
        ] {
            let e = Destination::check(bad, &allowed, STRICT).unwrap_err();
            assert!(e.contains("allowed_urls"), "{bad}: {e}");
        }
    }

    #[test]
    fn addresses_are_public_or_refused() {
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(address_allowed(public.parse().unwrap(), false), "{public}");
        }
        for private in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2001::1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "::ffff:0:7f00:1",
        ] {
            let ip: IpAddr = private.parse().unwrap();
            assert!(!address_allowed(ip, false), "{private}");
            assert!(address_allowed(ip, true), "{private}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let (i, m) = (Duration::from_millis(100), Duration::from_secs(10));
        assert_eq!(backoff(1, i, m, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(1, i, m, 0.0), Duration::from_millis(50));
        assert_eq!(backoff(4, i, m, 1.0), Duration::from_millis(800));
        assert_eq!(backoff(30, i, m, 1.0), m);
        assert_eq!(backoff(u32::MAX, i, m, 0.0), m / 2);
    }

    #[test]
    fn the_listing_shows_the_origin_only() {
        let u = Url::parse("https://hooks.slack.example/services/T0/B0/SECRET?x=1").unwrap();
        assert_eq!(origin_of(&u), "https://hooks.slack.example/…");
        let u = Url::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(origin_of(&u), "http://127.0.0.1:8080/");
    }

    #[test]
    fn redaction_hides_credentials_and_queries() {
        let r = redact_url("https://u:secret@h.example/p?token=abc");
        assert!(!r.contains("secret") && !r.contains("abc"), "{r}");
    }
}
