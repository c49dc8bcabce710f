//! Throwaway real PostgreSQL clusters for the server's tests: `vouch-testkit`'s, which the
//! notary harness also runs its notary-server on.

#[allow(unused_imports)]
pub use vouch_testkit::postgres::{test_ca_and_server_cert, PgCluster};
