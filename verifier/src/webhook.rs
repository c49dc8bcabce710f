//! Checking a vouch-server webhook delivery, for Rust receivers: the Standard Webhooks
//! headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`), the signature over
//! [`signed_content`], and the event in the body.
//!
//! What it is: [`verify`], which accepts a delivery only when its timestamp is recent (both
//! ways, within a tolerance, against replays), at least one signature of the key's scheme
//! in the header verifies (HMAC-SHA256 compared in constant time, or ed25519 verified
//! strictly), the body is a vouch event ([`decode_webhook_payload`]), and the `webhook-id`
//! is that event's ([`webhook_id`]). What it is not: an HTTP server, nor a deduplicator (a
//! receiver drops a delivery whose `webhook-id` it already handled; the id is the same on
//! every attempt), nor trust data (an event says a repository changed; refresh it through
//! an [`Updater`](crate::Updater)).
//!
//! Keys come in the Standard Webhooks text forms [`VerifyKey::parse`] reads:
//! `whsec_BASE64` (a shared HMAC secret) and `whpk_BASE64` (a 32-byte ed25519 public key).
//! The wire format (payload, signed content, signature header) is
//! [`vouch_tuf::api::event`]'s.
//!
//! ```
//! use std::time::Duration;
//! use vouch_tuf::api::event::{signed_content, webhook_id, webhook_payload, Event, EventKind};
//! use vouch_verifier::webhook::{verify, VerifyKey, WebhookHeaders, DEFAULT_TOLERANCE};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // What the server sent (here signed with the secret, as the server would).
//! let event = Event {
//!     id: 42,
//!     kind: EventKind::Update,
//!     gun: "example.com/org/app".into(),
//!     version: 7,
//!     sha256: "ab".repeat(32),
//!     roles: vec![("timestamp".into(), 7)],
//!     created_at: vouch_tuf::time::Timestamp::from_unix(1_800_000_000),
//! };
//! let body = webhook_payload(&event);
//! let (id, timestamp) = (webhook_id(&event), 1_800_000_005);
//! let secret = b"a shared secret of enough length";
//! let tag = ring::hmac::sign(
//!     &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
//!     &signed_content(&id, timestamp, &body),
//! );
//! use base64ct::Encoding;
//! let signature = format!("v1,{}", base64ct::Base64::encode_string(tag.as_ref()));
//!
//! // The receiver's side: the key from its configuration, the headers as received.
//! let key = VerifyKey::parse(&format!("whsec_{}", base64ct::Base64::encode_string(secret)))?;
//! let headers = WebhookHeaders {
//!     id: &id,
//!     timestamp: "1800000005",
//!     signature: &signature,
//! };
//! let got = verify(&headers, &body, &key, 1_800_000_010, DEFAULT_TOLERANCE)?;
//! assert_eq!(got, event);
//! # Ok(()) }
//! ```

use std::time::Duration;

use base64ct::{Base64, Encoding};
use thiserror::Error;
use vouch_tuf::api::event::{
    decode_webhook_payload, parse_signature_header, signed_content, webhook_id, Event,
    SignatureScheme,
};
use vouch_tuf::crypto::VerifyingKey;
use zeroize::Zeroizing;

/// How far a delivery's timestamp may be from the receiver's clock, either way: 5 minutes,
/// as the Standard Webhooks specification suggests.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Longest `webhook-id` accepted.
const MAX_ID: usize = 256;

/// The three Standard Webhooks headers of a delivery, as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebhookHeaders<'a> {
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp`: Unix seconds.
    pub timestamp: &'a str,
    /// `webhook-signature`: space-separated `v1,BASE64` / `v1a,BASE64` entries.
    pub signature: &'a str,
}

/// The key a receiver checks deliveries with.
#[derive(Clone, PartialEq, Eq)]
pub enum VerifyKey {
    /// An ed25519 public key (32 bytes): `v1a` signatures.
    Ed25519([u8; 32]),
    /// A shared HMAC-SHA256 secret: `v1` signatures.
    Hmac(Zeroizing<Vec<u8>>),
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyKey::Ed25519(k) => f.debug_tuple("Ed25519").field(k).finish(),
            VerifyKey::Hmac(_) => f.write_str("Hmac(<redacted>)"),
        }
    }
}

/// Why a key text could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum KeyError {
    /// Neither `whsec_` nor `whpk_`.
    #[error(
        "a webhook key is whsec_BASE64 (a shared secret) or whpk_BASE64 (an ed25519 public key)"
    )]
    UnknownForm,
    /// The part after the prefix is not base64.
    #[error("the webhook key after {prefix} is not base64")]
    NotBase64 {
        /// `whsec_` or `whpk_`.
        prefix: &'static str,
    },
    /// An ed25519 public key that is not 32 bytes, or a secret that is empty.
    #[error("the webhook key has {len} bytes: {expected}")]
    BadLength {
        /// Its length.
        len: usize,
        /// What it should be.
        expected: &'static str,
    },
}

impl VerifyKey {
    /// Reads a key in its Standard Webhooks text form: `whsec_BASE64` (a shared secret, any
    /// non-empty length) or `whpk_BASE64` (an ed25519 public key, 32 bytes). Surrounding
    /// whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if let Some(b64) = text.strip_prefix("whsec_") {
            let secret = Zeroizing::new(
                Base64::decode_vec(b64).map_err(|_| KeyError::NotBase64 { prefix: "whsec_" })?,
            );
            if secret.is_empty() {
                return Err(KeyError::BadLength {
                    len: 0,
                    expected: "a secret is not empty",
                });
            }
            return Ok(VerifyKey::Hmac(secret));
        }
        if let Some(b64) = text.strip_prefix("whpk_") {
            let bytes =
                Base64::decode_vec(b64).map_err(|_| KeyError::NotBase64 { prefix: "whpk_" })?;
            let key: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| KeyError::BadLength {
                    len: bytes.len(),
                    expected: "an ed25519 public key has 32",
                })?;
            return Ok(VerifyKey::Ed25519(key));
        }
        Err(KeyError::UnknownForm)
    }

    /// The signature scheme this key checks.
    pub fn scheme(&self) -> SignatureScheme {
        match self {
            VerifyKey::Ed25519(_) => SignatureScheme::Ed25519,
            VerifyKey::Hmac(_) => SignatureScheme::HmacSha256,
        }
    }
}

/// Why a delivery was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum WebhookError {
    /// A header is missing, empty or unreadable (`webhook-id` too long or not printable,
    /// `webhook-timestamp` not an integer, `webhook-signature` not a list of
    /// `SCHEME,BASE64`).
    #[error("malformed {header} header: {message}")]
    MalformedHeader {
        /// The header's name.
        header: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The timestamp is further from now than the tolerance (a replay, or a clock off).
    #[error("the delivery's timestamp {timestamp} is {} s {} now, more than the {} s allowed", skew.unsigned_abs(), if *skew < 0 { "before" } else { "after" }, tolerance.as_secs())]
    StaleTimestamp {
        /// The delivery's timestamp (Unix seconds).
        timestamp: i64,
        /// Its distance from now, in seconds (negative: in the past).
        skew: i64,
        /// The tolerance.
        tolerance: Duration,
    },
    /// The signature header lists no signature of the key's scheme.
    #[error("the delivery carries no {} signature (the key is for {})", scheme.as_str(), scheme.as_str())]
    NoSignatureOfScheme {
        /// The key's scheme.
        scheme: SignatureScheme,
    },
    /// No signature of the key's scheme verifies (the body, id or timestamp was changed, or
    /// the key is not the one the sender signs with).
    #[error("no {} signature of the delivery verifies with this key", scheme.as_str())]
    BadSignature {
        /// The key's scheme.
        scheme: SignatureScheme,
    },
    /// The signed body is not a vouch event.
    #[error("the delivery's body is not a vouch event: {0}")]
    NotAnEvent(String),
    /// The `webhook-id` is not the event's.
    #[error("the webhook-id {got:?} is not the event's ({want:?})")]
    IdMismatch {
        /// The header.
        got: String,
        /// The event's delivery id.
        want: String,
    },
}

/// Checks a delivery (its headers, its raw body as received, before any parsing) with
/// `key` at `now` (Unix seconds), and returns its event. See the module documentation
/// for the checks and their order: timestamp, signature, body, id.
pub fn verify(
    headers: &WebhookHeaders<'_>,
    body: &[u8],
    key: &VerifyKey,
    now: i64,
    tolerance: Duration,
) -> Result<Event, WebhookError> {
    let malformed = |header: &'static str, message: &str| WebhookError::MalformedHeader {
        header,
        message: message.to_owned(),
    };
    let id = headers.id;
    if id.is_empty() || id.len() > MAX_ID || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(malformed(
            "webhook-id",
            "not 1 to 256 printable characters without spaces",
        ));
    }
    let ts = headers.timestamp.trim();
    if ts.is_empty() || ts.len() > 19 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("webhook-timestamp", "not Unix seconds"));
    }
    let timestamp: i64 = ts
        .parse()
        .map_err(|_| malformed("webhook-timestamp", "not Unix seconds"))?;
    let skew = timestamp.saturating_sub(now);
    let allowed = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if skew.unsigned_abs() > allowed.unsigned_abs() {
        return Err(WebhookError::StaleTimestamp {
            timestamp,
            skew,
            tolerance,
        });
    }
    let signatures =
        parse_signature_header(headers.signature).map_err(|e| WebhookError::MalformedHeader {
            header: "webhook-signature",
            message: e.0,
        })?;
    let scheme = key.scheme();
    let mut ours = signatures
        .iter()
        .filter(|(s, _)| *s == scheme)
        .map(|(_, sig)| sig)
        .peekable();
    if ours.peek().is_none() {
        return Err(WebhookError::NoSignatureOfScheme { scheme });
    }
    let content = signed_content(id, timestamp, body);
    let verified = match key {
        VerifyKey::Hmac(secret) => {
            let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
            ours.any(|sig| ring::hmac::verify(&k, &content, sig).is_ok())
        }
        VerifyKey::Ed25519(public) => match VerifyingKey::from_ed25519_bytes(public) {
            Ok(k) => ours.any(|sig| k.verify(&content, sig).is_ok()),
            Err(_) => false,
        },
    };
    if !verified {
        return Err(WebhookError::BadSignature { scheme });
    }
    let event = decode_webhook_payload(body).map_err(|e| WebhookError::NotAnEvent(e.0))?;
    let want = webhook_id(&event);
    if id != want {
        return Err(WebhookError::IdMismatch {
            got: id.to_owned(),
            want,
        });
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use vouch_tuf::api::event::{webhook_payload, EventKind};
    use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
    use vouch_tuf::time::Timestamp;

    use super::*;

    const NOW: i64 = 1_800_000_100;

    fn event(id: u64) -> Event {
        Event {
            id,
            kind: EventKind::Update,
            gun: "example.com/org/app".into(),
            version: 3,
            sha256: "0f".repeat(32),
            roles: vec![("snapshot".into(), 3), ("timestamp".into(), 3)],
            created_at: Timestamp::from_unix(1_800_000_000),
        }
    }

    /// A sender: signs like vouch-server would.
    enum Sender {
        Hmac(Vec<u8>),
        Ed25519(Box<PrivateKey>),
    }

    impl Sender {
        fn hmac() -> Self {
            let mut secret = vec![0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret).unwrap();
            Sender::Hmac(secret)
        }

        fn ed25519() -> Self {
            Sender::Ed25519(Box::new(PrivateKey::generate(Algorithm::Ed25519).unwrap()))
        }

        /// The receiver's key, through its text form.
        fn key(&self) -> VerifyKey {
            let text = match self {
                Sender::Hmac(s) => format!("whsec_{}", Base64::encode_string(s)),
                Sender::Ed25519(k) => {
                    format!(
                        "whpk_{}",
                        Base64::encode_string(k.verifying_key().material())
                    )
                }
            };
            VerifyKey::parse(&text).unwrap()
        }

        fn sign(&self, id: &str, ts: i64, body: &[u8]) -> String {
            let content = signed_content(id, ts, body);
            match self {
                Sender::Hmac(s) => {
                    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, s);
                    format!(
                        "v1,{}",
                        Base64::encode_string(ring::hmac::sign(&k, &content).as_ref())
                    )
                }
                Sender::Ed25519(k) => {
                    format!("v1a,{}", Base64::encode_string(&k.sign(&content).unwrap()))
                }
            }
        }
    }

    struct Delivery {
        id: String,
        timestamp: String,
        signature: String,
        body: Vec<u8>,
    }

    impl Delivery {
        fn of(sender: &Sender, e: &Event, ts: i64) -> Self {
            let body = webhook_payload(e);
            let id = webhook_id(e);
            Delivery {
                signature: sender.sign(&id, ts, &body),
                id,
                timestamp: ts.to_string(),
                body,
            }
        }

        fn check(&self, key: &VerifyKey) -> Result<Event, WebhookError> {
            let headers = WebhookHeaders {
                id: &self.id,
                timestamp: &self.timestamp,
                signature: &self.signature,
            };
            verify(&headers, &self.body, key, NOW, DEFAULT_TOLERANCE)
        }
    }

    fn senders() -> [Sender; 2] {
        [Sender::hmac(), Sender::ed25519()]
    }

    #[test]
    fn a_valid_delivery_is_accepted_for_either_scheme() {
        for s in senders() {
            let d = Delivery::of(&s, &event(7), NOW - 3);
            assert_eq!(d.check(&s.key()).unwrap(), event(7));
        }
    }

    #[test]
    fn a_changed_body_id_or_timestamp_breaks_the_signature() {
        for s in senders() {
            let key = s.key();
            let good = Delivery::of(&s, &event(7), NOW);
            let scheme = key.scheme();

            let mut d = Delivery::of(&s, &event(7), NOW);
            d.body = webhook_payload(&Event {
                version: 4,
                ..event(7)
            });
            assert_eq!(d.check(&key), Err(WebhookError::BadSignature { scheme }));

            // Another event's id, signature unchanged.
            let d = Delivery {
                id: "vouch-8".into(),
                ..Delivery::of(&s, &event(7), NOW)
            };
            assert_eq!(d.check(&key), Err(WebhookError::BadSignature { scheme }));

            let d = Delivery {
                timestamp: (NOW + 1).to_string(),
                ..Delivery::of(&s, &event(7), NOW)
            };
            assert_eq!(d.check(&key), Err(WebhookError::BadSignature { scheme }));
            assert!(good.check(&key).is_ok());
        }
    }

    #[test]
    fn a_signed_id_that_is_not_the_events_is_refused() {
        for s in senders() {
            let e = event(7);
            let body = webhook_payload(&e);
            let d = Delivery {
                signature: s.sign("vouch-8", NOW, &body),
                id: "vouch-8".into(),
                timestamp: NOW.to_string(),
                body,
            };
            assert_eq!(
                d.check(&s.key()),
                Err(WebhookError::IdMismatch {
                    got: "vouch-8".into(),
                    want: "vouch-7".into()
                })
            );
        }
    }

    #[test]
    fn a_signed_body_that_is_not_an_event_is_refused() {
        for s in senders() {
            let body = br#"{"type":"vouch.trust.update","data":{"id":7}}"#.to_vec();
            let d = Delivery {
                signature: s.sign("vouch-7", NOW, &body),
                id: "vouch-7".into(),
                timestamp: NOW.to_string(),
                body,
            };
            assert!(matches!(
                d.check(&s.key()),
                Err(WebhookError::NotAnEvent(_))
            ));
        }
    }

    #[test]
    fn a_timestamp_outside_the_tolerance_is_refused_either_way() {
        let s = Sender::hmac();
        let tol = DEFAULT_TOLERANCE.as_secs() as i64;
        for (ts, ok) in [
            (NOW - tol, true),
            (NOW + tol, true),
            (NOW - tol - 1, false),
            (NOW + tol + 1, false),
            (0, false),
        ] {
            let got = Delivery::of(&s, &event(7), ts).check(&s.key());
            if ok {
                assert!(got.is_ok(), "{ts}: {got:?}");
            } else {
                assert!(
                    matches!(got, Err(WebhookError::StaleTimestamp { timestamp, .. }) if timestamp == ts),
                    "{ts}: {got:?}"
                );
            }
        }
        let e = Delivery::of(&s, &event(7), NOW - 600)
            .check(&s.key())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the delivery's timestamp 1799999500 is 600 s before now, more than the 300 s allowed"
        );
    }

    #[test]
    fn a_wrong_key_is_refused() {
        let (a, b) = (Sender::hmac(), Sender::hmac());
        let d = Delivery::of(&a, &event(7), NOW);
        assert!(matches!(
            d.check(&b.key()),
            Err(WebhookError::BadSignature { .. })
        ));
        let (a, b) = (Sender::ed25519(), Sender::ed25519());
        let d = Delivery::of(&a, &event(7), NOW);
        assert!(matches!(
            d.check(&b.key()),
            Err(WebhookError::BadSignature { .. })
        ));
    }

    #[test]
    fn one_good_signature_among_several_is_enough() {
        for s in senders() {
            let other = match s {
                Sender::Hmac(_) => Sender::hmac(),
                Sender::Ed25519(_) => Sender::ed25519(),
            };
            let mut d = Delivery::of(&s, &event(7), NOW);
            let bad = other.sign(&d.id, NOW, &d.body);
            d.signature = format!("{bad} {}", d.signature);
            assert_eq!(d.check(&s.key()).unwrap(), event(7));
            // A signature of the wrong length first is skipped too.
            let (scheme, _) = d.signature.split_once(',').unwrap();
            d.signature = format!("{scheme},AAAA {}", d.signature);
            assert_eq!(d.check(&s.key()).unwrap(), event(7));
        }
    }

    #[test]
    fn signatures_of_the_other_scheme_only_are_refused() {
        let (h, e) = (Sender::hmac(), Sender::ed25519());
        let d = Delivery::of(&h, &event(7), NOW);
        assert_eq!(
            d.check(&e.key()),
            Err(WebhookError::NoSignatureOfScheme {
                scheme: SignatureScheme::Ed25519
            })
        );
        let d = Delivery::of(&e, &event(7), NOW);
        assert_eq!(
            d.check(&h.key()),
            Err(WebhookError::NoSignatureOfScheme {
                scheme: SignatureScheme::HmacSha256
            })
        );
        // Unknown schemes do not count either.
        let mut d = Delivery::of(&h, &event(7), NOW);
        d.signature = "v2,AAAA".into();
        assert!(matches!(
            d.check(&h.key()),
            Err(WebhookError::NoSignatureOfScheme { .. })
        ));
    }

    #[test]
    fn garbage_headers_are_malformed() {
        let s = Sender::hmac();
        let key = s.key();
        let good = || Delivery::of(&s, &event(7), NOW);
        let header = |d: Delivery| match d.check(&key) {
            Err(WebhookError::MalformedHeader { header, .. }) => header,
            other => panic!("expected a malformed header, got {other:?}"),
        };
        for id in ["", "vouch 7", "vouch-7\n", &"x".repeat(300)] {
            let d = Delivery {
                id: id.into(),
                ..good()
            };
            assert_eq!(header(d), "webhook-id", "{id:?}");
        }
        for ts in ["", "-5", "1.5", "soon", "99999999999999999999", "0x10"] {
            let d = Delivery {
                timestamp: ts.into(),
                ..good()
            };
            assert_eq!(header(d), "webhook-timestamp", "{ts:?}");
        }
        for sig in ["v1", "v1,!!!", &vec!["v1,AA=="; 17].join(" ")] {
            let d = Delivery {
                signature: sig.to_string(),
                ..good()
            };
            assert_eq!(header(d), "webhook-signature", "{sig:?}");
        }
        let d = Delivery {
            signature: String::new(),
            ..good()
        };
        assert!(matches!(
            d.check(&key),
            Err(WebhookError::NoSignatureOfScheme { .. })
        ));
    }

    #[test]
    fn key_texts_are_read_and_checked() {
        let pk = [7u8; 32];
        assert_eq!(
            VerifyKey::parse(&format!("whpk_{}\n", Base64::encode_string(&pk))).unwrap(),
            VerifyKey::Ed25519(pk)
        );
        let k = VerifyKey::parse("whsec_c2VjcmV0").unwrap();
        assert_eq!(k, VerifyKey::Hmac(Zeroizing::new(b"secret".to_vec())));
        assert_eq!(format!("{k:?}"), "Hmac(<redacted>)");
        assert_eq!(VerifyKey::parse("c2VjcmV0"), Err(KeyError::UnknownForm));
        assert_eq!(
            VerifyKey::parse("whsk_c2VjcmV0"),
            Err(KeyError::UnknownForm)
        );
        assert_eq!(
            VerifyKey::parse("whsec_!!"),
            Err(KeyError::NotBase64 { prefix: "whsec_" })
        );
        assert!(matches!(
            VerifyKey::parse("whsec_"),
            Err(KeyError::BadLength { len: 0, .. })
        ));
        assert!(matches!(
            VerifyKey::parse("whpk_c2VjcmV0"),
            Err(KeyError::BadLength { len: 6, .. })
        ));
    }

    /// An ed25519 key that is not a curve point refuses every signature rather than
    /// failing otherwise.
    #[test]
    fn an_invalid_ed25519_key_verifies_nothing() {
        let s = Sender::ed25519();
        let d = Delivery::of(&s, &event(7), NOW);
        let mut bad = [0u8; 32];
        bad[0] = 2; // not a valid point encoding for strict verification
        assert!(matches!(
            d.check(&VerifyKey::Ed25519([0xff; 32])),
            Err(WebhookError::BadSignature { .. })
        ));
        assert!(matches!(
            d.check(&VerifyKey::Ed25519(bad)),
            Err(WebhookError::BadSignature { .. })
        ));
    }
}
