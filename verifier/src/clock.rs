//! Where the reference time of an update comes from: [`vouch_tuf::clock`], re-exported.
//!
//! Every expiry check of one update uses a single reference time, read once from a
//! [`Clock`] when the update starts. Production code uses [`SystemClock`]; tests use
//! [`TestClock`] to move time forward or back at will. The trait and both clocks live in
//! `vouch-tuf`, so that the server, which does not depend on the verifier, uses the same
//! abstraction.

pub use vouch_tuf::clock::{Clock, SystemClock, TestClock};
