//! Proves the throwaway PostgreSQL harness (`common::postgres`) that the PostgreSQL store tests
//! stand on: the shared cluster answers over password-authenticated TCP, every test gets its
//! own database, a dedicated cluster keeps its data across a restart and a crash and is
//! removed when dropped, and a TLS cluster refuses clients that do not speak TLS.
//!
//! This tests the harness, not the store; it needs Debian's `postgresql` package and panics
//! (rather than skipping) when it is missing.

mod common;

use common::postgres::{test_ca_and_server_cert, PgCluster};

#[test]
fn shared_cluster_answers_over_tcp_with_its_password() {
    let pg = PgCluster::shared();
    assert_eq!(pg.psql("postgres", "select 1"), "1");
    assert_eq!(
        pg.psql("postgres", "show max_connections"),
        "200",
        "tests run several server replicas, each with a pool"
    );
    let url = pg.url("postgres");
    assert_eq!(
        url,
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/postgres",
            pg.superuser_password(),
            pg.port()
        )
    );

    // TCP needs the password: a wrong one is refused.
    let out = pg
        .psql_command("postgres")
        .env("PGPASSWORD", "wrong")
        .args(["-c", "select 1"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a wrong password was accepted");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("password authentication failed"),
        "unexpected refusal: {stderr}"
    );
}

#[test]
fn fresh_databases_are_distinct_and_isolated() {
    let pg = PgCluster::shared();
    let a = pg.fresh_database();
    let b = pg.fresh_database();
    assert_ne!(a, b);
    let db_a = a.rsplit('/').next().unwrap();
    let db_b = b.rsplit('/').next().unwrap();
    assert_eq!(pg.psql(db_a, "select current_database()"), db_a);

    pg.psql(db_a, "create table t (x int); insert into t values (7)");
    assert_eq!(pg.psql(db_a, "select x from t"), "7");
    assert_eq!(
        pg.psql(db_b, "select count(*) from pg_tables where tablename = 't'"),
        "0",
        "a table of one test's database is visible in another's"
    );
}

#[test]
fn dedicated_cluster_keeps_rows_across_restart_and_crash_and_is_removed_on_drop() {
    let pg = PgCluster::start();
    let url = pg.fresh_database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    pg.psql(
        &db,
        "create table t (x int); insert into t select generate_series(1, 100)",
    );
    let port = pg.port();

    pg.stop();
    let refused = pg
        .psql_command(&db)
        .args(["-c", "select 1"])
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "a stopped cluster answered a query"
    );
    pg.start_again();
    assert_eq!(pg.psql(&db, "select count(*) from t"), "100");

    pg.psql(&db, "insert into t values (0)");
    pg.crash();
    pg.start_again();
    assert_eq!(pg.psql(&db, "select count(*) from t"), "101");

    pg.restart();
    assert_eq!(pg.port(), port);
    assert_eq!(pg.url(&db), url);
    assert_eq!(pg.psql(&db, "select sum(x) from t"), "5050");
    assert!(pg.bin("pg_dump").is_file());

    let data_dir = pg.data_dir().to_path_buf();
    assert!(data_dir.join("PG_VERSION").is_file());
    drop(pg);
    assert!(
        !data_dir.exists(),
        "the dropped cluster's data was left behind"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the dropped cluster still listens"
    );
}

#[test]
fn tls_cluster_refuses_plain_tcp_and_serves_a_verified_certificate() {
    let (ca_pem, cert_pem, key_pem) = test_ca_and_server_cert();
    let pg = PgCluster::start_with_tls(&cert_pem, &key_pem);

    let plain = pg
        .psql_command("postgres")
        .env("PGSSLMODE", "disable")
        .args(["-c", "select 1"])
        .output()
        .unwrap();
    assert!(!plain.status.success(), "a client without TLS was accepted");
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(
        stderr.contains("no pg_hba.conf entry") && stderr.contains("no encryption"),
        "unexpected refusal: {stderr}"
    );

    let ssl_in_use = "select ssl from pg_stat_ssl where pid = pg_backend_pid()";
    let required = pg
        .psql_command("postgres")
        .env("PGSSLMODE", "require")
        .args(["-c", ssl_in_use])
        .output()
        .unwrap();
    assert!(
        required.status.success(),
        "sslmode=require was refused: {}",
        String::from_utf8_lossy(&required.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&required.stdout).trim(), "t");

    // The certificate names 127.0.0.1 and chains to the CA, so full verification passes.
    let ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_file.path(), &ca_pem).unwrap();
    let verified = pg
        .psql_command("postgres")
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", ca_file.path())
        .args(["-c", ssl_in_use])
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "sslmode=verify-full against the test CA failed: {}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&verified.stdout).trim(), "t");
    // The harness's own psql (sslmode=prefer) goes through TLS too.
    assert_eq!(pg.psql("postgres", ssl_in_use), "t");
}
