//! `vouch-admission`: the Kubernetes admission webhook of vouch.
//!
//! What it is: an HTTPS service that the Kubernetes API server calls, as a validating and
//! as a mutating admission webhook (`admission.k8s.io/v1` `AdmissionReview`), before it
//! admits a workload. It checks every container image of Pods and of the workload kinds
//! that carry pod templates against a policy, verifies images with [`vouch_verifier`]
//! against a vouch trust server, or the trust artifact kept beside the image in its registry
//! (or, during a migration, a Notary v1 server), and in
//! mutating mode rewrites `host/org/app:v1` to `host/org/app:v1@sha256:…`, the digest that
//! was signed, so the node pulls exactly what was verified. What it is not: an image
//! puller (from registries it reads only trust artifacts, never an image's manifests) nor a
//! signer.
//!
//! How the parts relate:
//! - [`policy`] loads the TOML policy: rules from image globs to actions and trust sources,
//!   and the token sent to each trust server ([`credentials`]); [`reload`] loads it again
//!   when it or a root file it names changes.
//! - [`review`] finds the images of a request and where they are, and builds the response
//!   and its JSONPatch.
//! - [`trust`] keeps one warm verifier per (trust server, GUN), refreshing at most once
//!   per interval, single-flight, and failing closed; it reads the server, the registry
//!   copy of the trust ([`registry`] holds the clients, logged in per the policy's
//!   `[[registry]]` tables), or the server falling back to that copy, as the rule says.
//! - [`notary`] reads a repository from a Notary v1 server instead (rules with `notary = …`,
//!   for a migration), in the same warm state, keeping Notary's versions to catch rollback.
//! - [`events`] follows the trust-change events of the vouch servers the policy names and
//!   marks the repositories they name superseded in [`trust`], so a revocation reaches
//!   decisions about a second after it is published.
//! - [`decide`] ties them together: [`decide::Webhook::review`] answers one review.
//! - [`http`] serves it over HTTPS (certificate reload), with health and [`metrics`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use vouch_admission::{decide::Webhook, policy::Policy, trust::TrustConfig};
//! use vouch_verifier::clock::SystemClock;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let policy = Policy::load("policy.toml".as_ref())?;
//! let config = TrustConfig::new(
//!     "/var/cache/vouch-admission".into(),
//!     policy.refresh_interval,
//!     policy.deadline,
//!     Arc::new(SystemClock),
//! );
//! let router = vouch_admission::http::app(Arc::new(Webhook::new(policy, config)));
//! # let _ = router; Ok(()) }
//! ```

pub mod credentials;
pub mod decide;
pub mod events;
#[doc(hidden)]
pub mod fuzz;
pub mod http;
pub mod metrics;
pub mod notary;
pub mod policy;
pub mod registry;
pub mod reload;
pub mod review;
pub mod trust;
