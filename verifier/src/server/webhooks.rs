//! The client of the server's webhook administration (operators): the subscriptions with
//! their delivery state ([`ServerClient::webhooks`], `GET /v2/_trust/webhooks`, a token
//! with a `*` scope and `pull`), the public key deliveries are signed with
//! ([`ServerClient::webhook_key`], no token needed) and resuming a subscription that gave up
//! ([`ServerClient::resume_webhook`], a `*` scope and `push`).
//!
//! What it is not: a receiver. Checking a delivery is [`crate::webhook::verify`]'s; the
//! key this module fetches is the one a receiver pins.
//!
//! Each answer is read with a size cap ([`MAX_WEBHOOK_LIST`], the key cap for the key) and
//! decoded into a typed value; a listing also keeps the JSON as the server sent it, for
//! callers that pass it on.
//!
//! ```no_run
//! use vouch_verifier::server::{ServerClient, ServerOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ServerClient::new("https://vouch.example", &ServerOptions::default())?;
//! println!("deliveries are signed by {}", client.webhook_key()?);
//! for s in client.webhooks()?.subscriptions {
//!     println!("{}: {} (lag {:?})", s.name, s.status.as_str(), s.lag);
//! }
//! # Ok(()) }
//! ```

use serde::Deserialize;
use vouch_tuf::api::Route;
use vouch_tuf::time::Timestamp;

use super::{ServerClient, ServerError, MAX_KEY_BODY};
use crate::webhook::VerifyKey;

/// Largest listing of webhook subscriptions read from the server: a subscription's entry
/// is a few hundred bytes (its last error is short), so room for thousands.
pub const MAX_WEBHOOK_LIST: u64 = 1024 * 1024;

/// Where a subscription's delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookStatus {
    /// Configured, nothing stored yet: it starts at the newest event when first seen.
    New,
    /// Delivering; the last attempt succeeded.
    Active,
    /// The delivery of the event after the cursor failed and is retried.
    Retrying,
    /// Gave up after too many attempts: delivers nothing until resumed.
    Dead,
    /// A status this client does not know (a newer server).
    #[serde(other)]
    Unknown,
}

impl WebhookStatus {
    /// `new`, `active`, `retrying`, `dead` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookStatus::New => "new",
            WebhookStatus::Active => "active",
            WebhookStatus::Retrying => "retrying",
            WebhookStatus::Dead => "dead",
            WebhookStatus::Unknown => "unknown",
        }
    }
}

/// One configured subscription and its stored delivery state.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct WebhookSubscription {
    /// Its configured name.
    pub name: String,
    /// Where deliveries go.
    pub url: String,
    /// The repository patterns it follows (empty: every repository).
    #[serde(default)]
    pub guns: Vec<String>,
    /// Where its delivery stands.
    pub status: WebhookStatus,
    /// The id of the last event delivered (or skipped); `None` before the first.
    pub cursor: Option<i64>,
    /// Ids between the newest event and the cursor; `None` before the first delivery.
    pub lag: Option<u64>,
    /// Failed attempts at the event after the cursor.
    #[serde(default)]
    pub attempts: u32,
    /// Not before this is the next attempt made.
    #[serde(default, deserialize_with = "timestamp")]
    pub next_attempt_at: Option<Timestamp>,
    /// The last failure (short text from the server: escape it before showing it).
    pub last_error: Option<String>,
    /// When an event was last delivered.
    #[serde(default, deserialize_with = "timestamp")]
    pub last_delivered_at: Option<Timestamp>,
}

/// The answer of `GET /v2/_trust/webhooks`.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookListing {
    /// The server's public key, `whpk_…`.
    pub public_key: String,
    /// Every configured subscription.
    pub subscriptions: Vec<WebhookSubscription>,
    /// The answer as the server sent it (for `--output json` and fields this client does
    /// not know).
    pub json: serde_json::Value,
}

#[derive(Deserialize)]
struct Listing {
    public_key: String,
    subscriptions: Vec<WebhookSubscription>,
}

fn timestamp<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| Timestamp::parse(&s).map_err(serde::de::Error::custom))
        .transpose()
}

/// A listing's bytes, decoded.
///
/// ```
/// use vouch_verifier::server::webhooks::{decode_listing, WebhookStatus};
/// let l = decode_listing(br#"{"public_key":"whpk_x","subscriptions":[{"name":"bot",
///   "url":"https://h.example/","guns":[],"status":"dead","cursor":7,"lag":2,"attempts":3,
///   "next_attempt_at":null,"last_error":"HTTP 500","last_delivered_at":"2026-12-02T07:41:21Z"}]}"#)
///     .unwrap();
/// assert_eq!(l.subscriptions[0].status, WebhookStatus::Dead);
/// assert_eq!(l.subscriptions[0].lag, Some(2));
/// ```
pub fn decode_listing(bytes: &[u8]) -> Result<WebhookListing, serde_json::Error> {
    let json: serde_json::Value = serde_json::from_slice(bytes)?;
    let listing = Listing::deserialize(&json)?;
    Ok(WebhookListing {
        public_key: listing.public_key,
        subscriptions: listing.subscriptions,
        json,
    })
}

impl ServerClient {
    /// The webhook subscriptions with their delivery state and the public key (`GET
    /// /v2/_trust/webhooks`, which needs a token with a `*` scope and `pull`).
    pub fn webhooks(&self) -> Result<WebhookListing, ServerError> {
        let what = "the webhook subscriptions";
        let request = self.client.get(Route::Webhooks.url(&self.server));
        let body = self.exchange(what, request, MAX_WEBHOOK_LIST, self.timeout, None)?;
        decode_listing(&body).map_err(|e| ServerError::BadAnswer {
            what: what.to_owned(),
            message: e.to_string(),
        })
    }

    /// The public key webhook deliveries are signed with, `whpk_` and base64 (`GET
    /// /v2/_trust/webhooks/key`; no token needed), checked to be an ed25519 key.
    pub fn webhook_key(&self) -> Result<String, ServerError> {
        let what = "the webhook signing key";
        let request = self.client.get(Route::WebhookKey.url(&self.server));
        let body = self.exchange(what, request, MAX_KEY_BODY, self.timeout, None)?;
        let bad = |message: String| ServerError::BadAnswer {
            what: what.to_owned(),
            message,
        };
        let text = std::str::from_utf8(&body)
            .map_err(|_| bad("the answer is not text".to_owned()))?
            .trim();
        match VerifyKey::parse(text) {
            Ok(VerifyKey::Ed25519(_)) => Ok(text.to_owned()),
            Ok(VerifyKey::Hmac(_)) => Err(bad("the answer is a secret, not a public key".into())),
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// Lets subscription `name`, which gave up, deliver again from the event that failed
    /// (`POST /v2/_trust/webhooks/{name}/resume`, which needs a `*` scope and `push`). A
    /// name the server has not configured, or one that has delivered nothing yet, is
    /// [`ServerError::NotFound`].
    pub fn resume_webhook(&self, name: &str) -> Result<(), ServerError> {
        let what = format!("resuming webhook subscription {name:?}");
        let request = self
            .client
            .post(Route::WebhookResume(name.to_owned()).url(&self.server));
        self.exchange(&what, request, MAX_KEY_BODY, self.timeout, None)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn listings_decode_with_unknown_statuses_and_fields() {
        let l = decode_listing(
            br#"{"public_key":"whpk_k","extra":1,"subscriptions":[
                {"name":"a","url":"u","status":"new","cursor":null,"lag":null,"attempts":0,
                 "next_attempt_at":null,"last_error":null,"last_delivered_at":null},
                {"name":"b","url":"u","guns":["x/*"],"status":"paused","cursor":4,"lag":0,
                 "attempts":0,"next_attempt_at":"2026-12-02T07:41:21Z","last_error":null,
                 "last_delivered_at":null,"future":true}]}"#,
        )
        .unwrap();
        assert_eq!(l.public_key, "whpk_k");
        assert_eq!(l.subscriptions[0].status, WebhookStatus::New);
        assert_eq!(l.subscriptions[0].cursor, None);
        assert_eq!(l.subscriptions[1].status, WebhookStatus::Unknown);
        assert_eq!(l.subscriptions[1].guns, ["x/*"]);
        assert_eq!(
            l.subscriptions[1].next_attempt_at,
            Some(Timestamp::parse("2026-12-02T07:41:21Z").unwrap())
        );
        assert_eq!(l.json["extra"], 1);
        assert!(decode_listing(br#"{"subscriptions":[]}"#).is_err());
        assert!(decode_listing(
            br#"{"public_key":"k","subscriptions":[{"name":"a","url":"u","status":"dead",
              "cursor":1,"lag":1,"last_error":null,"last_delivered_at":"yesterday"}]}"#
        )
        .is_err());
    }
}
