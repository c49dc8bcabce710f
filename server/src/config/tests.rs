//! Unit tests of [`super`]: file, environment and default settings, and their checks.

use super::*;

#[test]
fn file_then_env_override() {
    let mut c: Config = toml::from_str(
        r#"
            listen = "0.0.0.0:9000"
            [auth]
            anonymous_pull = false
            [[auth.tokens]]
            name = "ci"
            sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
            scopes = ["example.com/org/*:pull,push"]
            "#,
    )
    .unwrap();
    assert_eq!(c.listen.port(), 9000);
    assert!(!c.auth.anonymous_pull);
    c.apply_env([
        ("VOUCH_LISTEN".to_string(), "127.0.0.1:1".to_string()),
        ("VOUCH_ANONYMOUS_PULL".to_string(), "true".to_string()),
        ("UNRELATED".to_string(), "x".to_string()),
    ])
    .unwrap();
    assert_eq!(c.listen.port(), 1);
    assert!(c.auth.anonymous_pull);
}

#[test]
fn rejects_bad_settings() {
    assert!(toml::from_str::<Config>("nonsense = 1").is_err());
    let mut c = Config::default();
    assert!(c
        .apply_env([("VOUCH_MAX_BODY_BYTES".into(), "lots".into())])
        .is_err());
    let mut c = Config::default();
    c.auth.tokens.push(TokenConfig {
        name: "t".into(),
        sha256: "abc".into(),
        scopes: vec![],
    });
    assert!(c.check().is_err());
}

#[test]
fn production_sections() {
    let c: Config = toml::from_str(
        r#"
            log_format = "json"
            [timeouts]
            request_seconds = 5
            [capacity]
            max_publishes = 3
            [tls]
            cert_file = "/etc/vouch/cert.pem"
            key_file = "/etc/vouch/key.pem"
            [auth.jwt]
            issuer = "auth.example.com"
            [[auth.jwt.keys]]
            kid = "k1"
            file = "/etc/vouch/auth.pem"
            "#,
    )
    .unwrap();
    c.check().unwrap();
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.timeouts.request_seconds, 5);
    assert_eq!(c.timeouts.header_read_seconds, 10);
    assert_eq!(c.capacity.max_publishes, 3);
    assert_eq!(c.tls.as_ref().unwrap().reload_seconds, 30);
    let jwt = c.auth.jwt.as_ref().unwrap();
    assert_eq!(jwt.leeway_seconds, 60);
    // Reading the key file is where a missing file shows.
    assert!(jwt.policy("vouch").is_err());

    let mut e = Config::default();
    e.apply_env([
        ("VOUCH_TLS_CERT_FILE".into(), "/c.pem".into()),
        ("VOUCH_TLS_KEY_FILE".into(), "/k.pem".into()),
        ("VOUCH_LOG_FORMAT".into(), "json".into()),
        ("VOUCH_MAX_PUBLISHES_PER_GUN".into(), "1".into()),
    ])
    .unwrap();
    assert_eq!(e.tls.unwrap().key_file, PathBuf::from("/k.pem"));
    assert_eq!(e.capacity.max_publishes_per_gun, 1);
    let mut e = Config::default();
    assert!(e
        .apply_env([("VOUCH_TLS_CERT_FILE".into(), "/c.pem".into())])
        .is_err());
    let mut e = Config::default();
    assert!(e
        .apply_env([("VOUCH_LOG_FORMAT".into(), "xml".into())])
        .is_err());
}

#[test]
fn rejects_unusable_production_settings() {
    for bad in [
        "[timeouts]\nrequest_seconds = 0",
        "[timeouts]\nresponse_write_seconds = 0",
        "[capacity]\nmax_in_flight = 0",
        "[capacity]\nnew_repositories_per_minute = 0",
        "[capacity]\nmax_connections = 0",
        "[capacity]\nmax_pending_response_bytes = 0",
        "[auth.jwt]\nissuer = \"x\"\nkeys = []",
        "[auth.jwt]\nissuer = \"\"\n[[auth.jwt.keys]]\npem = \"x\"",
        "[auth.jwt]\nissuer = \"x\"\n[[auth.jwt.keys]]\nkid = \"k\"",
        "[auth.jwt]\nissuer = \"x\"\nleeway_seconds = 3600\n[[auth.jwt.keys]]\npem = \"x\"",
        "[tls]\ncert_file = \"c\"\nkey_file = \"k\"\nreload_seconds = 0",
    ] {
        let c: Config = toml::from_str(bad).unwrap();
        assert!(c.check().is_err(), "{bad}");
    }
    assert!(toml::from_str::<Config>("log_format = \"xml\"").is_err());
    assert!(toml::from_str::<Config>("[metrics]\naccess = \"open\"").is_err());
    let mut e = Config::default();
    assert!(e
        .apply_env([("VOUCH_METRICS_ACCESS".into(), "open".into())])
        .is_err());
    for var in ["VOUCH_MAX_CONNECTIONS", "VOUCH_MAX_PENDING_RESPONSE_BYTES"] {
        let err = Config::default()
            .apply_env([(var.into(), "0".into())])
            .unwrap_err();
        assert!(err.to_string().contains("capacity.max_"), "{err}");
    }
}

#[test]
fn connection_and_response_caps() {
    let c = Config::default();
    assert_eq!(c.capacity.max_connections, 4096);
    assert_eq!(c.capacity.max_pending_response_bytes, 256 << 20);
    let c: Config =
        toml::from_str("[capacity]\nmax_connections = 10\nmax_pending_response_bytes = 1000")
            .unwrap();
    c.check().unwrap();
    assert_eq!(c.capacity.max_connections, 10);
    assert_eq!(c.capacity.max_pending_response_bytes, 1000);
    let mut e = Config::default();
    e.apply_env([
        ("VOUCH_MAX_CONNECTIONS".into(), "20".into()),
        ("VOUCH_MAX_PENDING_RESPONSE_BYTES".into(), "1048576".into()),
    ])
    .unwrap();
    assert_eq!(e.capacity.max_connections, 20);
    assert_eq!(e.capacity.max_pending_response_bytes, 1 << 20);
}

#[test]
fn metrics_access_follows_anonymous_pull_unless_set() {
    let mut c = Config::default();
    assert_eq!(c.metrics.effective(&c.auth), MetricsAccess::Anonymous);
    c.auth.anonymous_pull = false;
    assert_eq!(c.metrics.effective(&c.auth), MetricsAccess::Token);
    let c: Config = toml::from_str(
            "[auth]\nanonymous_pull = false\n[metrics]\naccess = \"anonymous\"\n[cache]\nread_bytes = 0",
        )
        .unwrap();
    assert_eq!(c.metrics.effective(&c.auth), MetricsAccess::Anonymous);
    assert_eq!(c.cache.read_bytes, 0);
    let mut e = Config::default();
    e.apply_env([
        ("VOUCH_METRICS_ACCESS".into(), "token".into()),
        ("VOUCH_READ_CACHE_BYTES".into(), "1048576".into()),
    ])
    .unwrap();
    assert_eq!(e.metrics.effective(&e.auth), MetricsAccess::Token);
    assert_eq!(e.cache.read_bytes, 1 << 20);
}

/// A `[mirror]` section with one credentials entry whose password file has `mode`.
fn mirror_config(dir: &Path, extra: &str, mode: u32) -> Result<Config, ConfigError> {
    let pw = dir.join("password");
    std::fs::write(&pw, "s3cret\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
    let text = format!(
        "[mirror]\nrepositories = [\"registry.example.com/**\", \"other.example.com:5000/team/*\"]\n{extra}\n\
         [[mirror.registry]]\nhost = \"registry.example.com\"\nusername = \"vouch\"\npassword_file = {:?}\n",
        pw.to_str().unwrap()
    );
    let c: Config = toml::from_str(&text).map_err(|e| ConfigError(e.to_string()))?;
    c.check().map(|()| c)
}

#[test]
fn mirroring_is_off_by_default_and_configured_by_file_and_environment() {
    let c = Config::default();
    assert!(c.mirror.repositories.is_empty());
    assert_eq!(c.mirror.refresh_interval_seconds, 60);
    c.check().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut c = mirror_config(
        dir.path(),
        "insecure_registries = [\"other.example.com:5000\"]",
        0o600,
    )
    .unwrap();
    assert_eq!(c.mirror.registry.len(), 1);
    c.apply_env([
        (
            "VOUCH_MIRROR_REPOSITORIES".into(),
            "registry.example.com/org/*, registry.example.com/team/*".into(),
        ),
        ("VOUCH_MIRROR_REFRESH_INTERVAL_SECONDS".into(), "5".into()),
    ])
    .unwrap();
    assert_eq!(
        c.mirror.repositories,
        ["registry.example.com/org/*", "registry.example.com/team/*"]
    );
    assert_eq!(c.mirror.refresh_interval_seconds, 5);
}

#[test]
fn mirror_settings_that_cannot_work_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |extra: &str, mode: u32, named: &str| {
        let e = mirror_config(dir.path(), extra, mode).unwrap_err().0;
        assert!(e.contains(named), "{extra}: {e}");
    };
    // The password file may be read by others.
    refused("", 0o644, "chmod 600");
    // The same registry twice.
    refused(
        "[[mirror.registry]]\nhost = \"registry.example.com\"\nusername = \"b\"\npassword_file = \"/nonexistent\"",
        0o600,
        "/nonexistent",
    );
    let pw = dir.path().join("password");
    refused(
        &format!(
            "[[mirror.registry]]\nhost = \"registry.example.com\"\nusername = \"b\"\npassword_file = {:?}",
            pw.to_str().unwrap()
        ),
        0o600,
        "listed twice",
    );
    // Credentials for a registry nothing is mirrored into, or spelled non-canonically.
    refused(
        &format!(
            "[[mirror.registry]]\nhost = \"elsewhere.example.com\"\nusername = \"b\"\npassword_file = {:?}",
            pw.to_str().unwrap()
        ),
        0o600,
        "no mirror.repositories pattern names this registry",
    );
    refused(
        &format!(
            "[[mirror.registry]]\nhost = \"Other.example.com:5000\"\nusername = \"b\"\npassword_file = {:?}",
            pw.to_str().unwrap()
        ),
        0o600,
        "write the registry as",
    );
    refused(
        "refresh_interval_seconds = 0",
        0o600,
        "refresh_interval_seconds",
    );
    refused(
        "timeout_seconds = 30\nlease_seconds = 30",
        0o600,
        "shorter than",
    );
    refused(
        "insecure_registries = [\"http://x\"]",
        0o600,
        "insecure registry",
    );

    // Patterns: a wildcard registry, one that cannot match, one without a registry.
    let mut c = Config::default();
    for (pattern, named) in [
        ("*/org/app", "must be written out"),
        ("Registry.Example.com/**", "cannot match"),
        ("org/app", "not a registry"),
    ] {
        c.mirror.repositories = vec![pattern.into()];
        let e = c.check().unwrap_err().0;
        assert!(e.contains(named), "{pattern}: {e}");
    }
    let mut c = Config::default();
    assert!(c
        .apply_env([("VOUCH_MIRROR_REPOSITORIES".into(), "*/x".into())])
        .is_err());
}
