//! Unit tests of the registry client's pure parts and credential rules; the network
//! operations are tested against a scripted registry in `tests/registry_client.rs`.

#![allow(clippy::unwrap_used)]

use base64ct::{Base64, Encoding};

use super::rules::{is_reference, is_repository_name};
use super::*;
use std::sync::{Arc, OnceLock};

fn creds(user: &str, pass: &str) -> Credentials {
    Credentials::new(user.into(), Zeroizing::new(pass.into()))
}

fn registries(insecure: Vec<String>, login: Login) -> Registries {
    Registries::new(RegistryOptions::new(insecure, login).unwrap()).unwrap()
}

#[test]
fn loopback_registries_use_plain_http() {
    let r = registries(
        vec!["reg.internal:5000".into(), "lab".into()],
        Login::DockerConfig(None),
    );
    assert_eq!(r.base_url("127.0.0.1:5000"), "http://127.0.0.1:5000");
    assert_eq!(r.base_url("localhost:5000"), "http://localhost:5000");
    assert_eq!(r.base_url("[::1]:5000"), "http://[::1]:5000");
    assert_eq!(r.base_url("reg.internal:5000"), "http://reg.internal:5000");
    assert_eq!(r.base_url("reg.internal:5001"), "https://reg.internal:5001");
    assert_eq!(r.base_url("lab:8080"), "http://lab:8080");
    assert_eq!(
        r.base_url("registry.example.com"),
        "https://registry.example.com"
    );
    assert_eq!(r.base_url("docker.io"), "https://registry-1.docker.io");
    assert_eq!(
        r.base_url("127.0.0.1.example.com"),
        "https://127.0.0.1.example.com"
    );
}

#[test]
fn options_are_checked() {
    for bad in ["", "http://reg", "reg/x", "a b", "u@reg"] {
        assert_eq!(
            RegistryOptions::new(vec![bad.into()], Login::Anonymous).unwrap_err(),
            OptionsError::InsecureHost(bad.into())
        );
    }
    let table = BTreeMap::from([("https://reg.example.com".to_owned(), creds("a", "b"))]);
    assert!(matches!(
        RegistryOptions::new(Vec::new(), Login::PerRegistry(table)),
        Err(OptionsError::CredentialsHost(_))
    ));
    let o = RegistryOptions::new(vec!["[::1]:5000".into()], Login::Anonymous).unwrap();
    assert_eq!(
        o.clone()
            .with_timeouts(Duration::ZERO, Duration::from_secs(1))
            .unwrap_err(),
        OptionsError::ZeroTimeout("connect")
    );
    let o = o
        .with_timeouts(Duration::from_secs(2), Duration::from_secs(3))
        .unwrap();
    assert_eq!(
        (o.connect_timeout(), o.answer_timeout()),
        (Duration::from_secs(2), Duration::from_secs(3))
    );
}

#[test]
fn a_registrys_login_goes_only_to_its_own_notary_server() {
    let auth = Base64::encode_string(b"alice:pw");
    let config = format!(
        r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"reg.example.com:5000":{{"auth":"{auth}"}}}}}}"#
    );
    let table = BTreeMap::from([
        ("docker.io".to_owned(), creds("alice", "pw")),
        ("reg.example.com:5000".to_owned(), creds("alice", "pw")),
    ]);
    let creds_for = |login: Login, notary_host: &str, images: &str| {
        let options = RegistryOptions::new(Vec::new(), login).unwrap();
        let mut r = Registries::for_notary(options).unwrap();
        r.docker_config = Arc::new(OnceLock::from(Some((
            PathBuf::from("config.json"),
            config.clone().into_bytes(),
        ))));
        r.fallback_registry = Some(images.to_owned());
        r.credentials(notary_host)
            .unwrap()
            .map(|c| c.username().to_owned())
    };
    for login in [Login::DockerConfig(None), Login::PerRegistry(table)] {
        let creds = |n: &str, i: &str| creds_for(login.clone(), n, i);
        let alice = Some("alice".to_owned());
        assert_eq!(creds("notary.docker.io", "docker.io"), alice);
        assert_eq!(creds("reg.example.com:5000", "reg.example.com:5000"), alice);
        assert_eq!(creds("reg.example.com:4443", "reg.example.com:5000"), alice);
        assert_eq!(
            creds("notary.reg.example.com", "reg.example.com:5000"),
            alice
        );
        for elsewhere in [
            "notary.example.net",
            "127.0.0.1:4443",
            "docker.io.example.net",
            "notary.docker.io.example.net",
            "evilreg.example.com:5000",
        ] {
            assert_eq!(creds(elsewhere, "docker.io"), None, "{elsewhere}");
            assert_eq!(
                creds(elsewhere, "reg.example.com:5000"),
                None,
                "{elsewhere}"
            );
        }
    }
}

/// A service's table names registries as image names do; Docker Hub under any of its names.
#[test]
fn per_registry_credentials_by_host_and_port() {
    let table = BTreeMap::from([
        ("index.docker.io".to_owned(), creds("hub", "pw")),
        ("reg.example.com:5000".to_owned(), creds("reg", "pw")),
    ]);
    let mut r = registries(Vec::new(), Login::PerRegistry(table));
    let user = |r: &mut Registries, host: &str| {
        r.credentials(host)
            .unwrap()
            .map(|c| c.username().to_owned())
    };
    assert_eq!(user(&mut r, "docker.io").as_deref(), Some("hub"));
    assert_eq!(user(&mut r, "reg.example.com:5000").as_deref(), Some("reg"));
    assert_eq!(user(&mut r, "reg.example.com"), None);
    assert_eq!(user(&mut r, "reg.example.com:5001"), None);
    let mut anonymous = registries(Vec::new(), Login::Anonymous);
    assert_eq!(user(&mut anonymous, "docker.io"), None);
}

/// An explicit docker config file that is missing is an error; this user's is optional.
#[test]
fn an_explicit_docker_config_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("config.json");
    let r = registries(Vec::new(), Login::DockerConfig(Some(missing.clone())));
    let e = r.credentials("reg.example.com").unwrap_err();
    assert!(
        matches!(&e, RegistryError::DockerConfig { path, .. } if *path == missing),
        "{e}"
    );
    std::fs::write(
        &missing,
        br#"{"auths":{"reg.example.com":{"username":"bob","password":"pw"}}}"#,
    )
    .unwrap();
    let r = registries(Vec::new(), Login::DockerConfig(Some(missing)));
    assert_eq!(
        r.credentials("reg.example.com")
            .unwrap()
            .unwrap()
            .username(),
        "bob"
    );
}

/// Credentials given on the command line go to the registry they are for (Docker Hub under
/// any of its names) and nowhere else: another registry of the same run gets the docker
/// config's login for it, or none.
#[test]
fn given_credentials_go_to_their_registry_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"auths":{"src.example.com":{"auth":"Y2Fyb2w6Y29uZmln"}}}"#,
    )
    .unwrap();
    let given = |registry: &str| Login::Given {
        registry: registry.into(),
        credentials: creds("bob", "meant-for-dst"),
    };
    let mut r = registries(Vec::new(), given("dst.example.com:5000"));
    // The docker config this run reads (no other file is looked at).
    r.docker_config = Arc::new(OnceLock::from(Some((
        config.clone(),
        std::fs::read(&config).unwrap(),
    ))));
    let to_dst = r.credentials("dst.example.com:5000").unwrap().unwrap();
    assert_eq!(
        (to_dst.username(), to_dst.password()),
        ("bob", "meant-for-dst")
    );
    let to_src = r.credentials("src.example.com").unwrap().unwrap();
    assert_eq!((to_src.username(), to_src.password()), ("carol", "config"));
    for other in [
        "dst.example.com",
        "dst.example.com:5001",
        "elsewhere.example.com",
    ] {
        assert!(r.credentials(other).unwrap().is_none(), "{other}");
    }
    let mut hub = registries(Vec::new(), given("index.docker.io"));
    hub.docker_config = Arc::new(OnceLock::from(None));
    assert!(hub.credentials("docker.io").unwrap().is_some());
    assert!(hub.credentials("ghcr.io").unwrap().is_none());
    // The hint for another registry says whom the flags were for.
    assert!(r
        .login_hint("src.example.com", false)
        .contains("--registry-username is for dst.example.com:5000 only"));
    assert!(matches!(
        RegistryOptions::new(Vec::new(), given("https://dst.example.com")),
        Err(OptionsError::CredentialsHost(_))
    ));
}

/// Hints name the command line's flags only for the command line's sources.
#[test]
fn hints_fit_where_credentials_come_from() {
    let given = |registry: &str| Login::Given {
        registry: registry.into(),
        credentials: creds("a", "b"),
    };
    let cli = [
        given("reg"),
        given("other.example.com"),
        Login::DockerConfig(None),
    ];
    for login in cli {
        let r = registries(Vec::new(), login);
        let h = format!(
            "{}{}",
            r.login_hint("reg", true),
            r.login_hint("reg", false)
        );
        assert!(h.contains("--registry-username"), "{h}");
        assert!(r.unreachable_hint().contains("--insecure-registry"));
    }
    let configured = [
        Login::DockerConfig(Some(PathBuf::from("/etc/mirror/docker.json"))),
        Login::PerRegistry(BTreeMap::new()),
        Login::Anonymous,
    ];
    for login in configured {
        let r = registries(Vec::new(), login);
        for had in [true, false] {
            let h = r.login_hint("reg.example.com", had);
            assert!(!h.contains("--"), "{h}");
            assert!(h.contains("reg.example.com"), "{h}");
        }
        assert!(!r.unreachable_hint().contains("--"));
    }
    let r = registries(Vec::new(), Login::PerRegistry(BTreeMap::new()));
    assert!(r
        .login_hint("reg.example.com", true)
        .contains("check the credentials configured for reg.example.com"));
}

/// A registry or notary server on another machine names a plain-HTTP token realm on
/// this machine's loopback: whatever listens on that port (any local user's process)
/// would read the credentials in clear. Refused before connecting.
#[test]
fn a_remote_server_cannot_send_credentials_to_a_plain_http_loopback_realm() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let realm = format!("http://{}/token", listener.local_addr().unwrap());
    let challenge = format!(r#"Bearer realm="{realm}",service="s""#);
    let c = creds("alice", "pw");
    for (notary, login) in [
        (true, Login::NotaryAuth(c.clone())),
        (
            false,
            Login::Given {
                registry: "registry.example.com:5000".into(),
                credentials: c.clone(),
            },
        ),
        (
            false,
            Login::PerRegistry(BTreeMap::from([(
                "registry.example.com:5000".to_owned(),
                c.clone(),
            )])),
        ),
    ] {
        let mut r = registries(Vec::new(), login);
        r.notary = notary;
        for remote in ["notary.example.com", "registry.example.com:5000"] {
            for access in [Access::Pull, Access::Push] {
                let e = r
                    .authorize(
                        remote,
                        "example.com/org/app",
                        access,
                        Some(&challenge),
                        None,
                        None,
                    )
                    .unwrap_err();
                assert!(
                    matches!(&e, RegistryError::Challenge { reason, .. } if reason.contains("not HTTPS")),
                    "{e}"
                );
            }
        }
    }
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "the realm was contacted"
    );
}

/// Over plain HTTP across a network, anyone on the path answers for the notary server
/// and names a token realm of theirs: no credentials (NOTARY_AUTH or docker config) go.
#[test]
fn no_credentials_go_through_a_notary_server_reached_over_plain_http() {
    for (url, sent) in [
        ("http://notary.example.com", false),
        ("http://10.0.0.7:4443", false),
        ("https://notary.example.com", true),
        ("http://127.0.0.1:4443", true),
    ] {
        let mut r = registries(Vec::new(), Login::NotaryAuth(creds("alice", "pw")));
        r.notary = true;
        r.note_notary_server(url);
        let got = r.credentials("notary.example.com").unwrap();
        assert_eq!(got.is_some(), sent, "{url}");
        if !sent {
            assert!(r
                .login_hint("notary.example.com", false)
                .contains("https://"));
        }
    }
}

#[test]
fn docker_config_auths() {
    let auth = Base64::encode_string(b"alice:s3cret:with:colons");
    let doc = format!(
        r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"reg.example.com:5000":{{"username":"bob","password":"pw"}}}},"credsStore":"desktop"}}"#
    );
    let c = credentials_from_docker_config(doc.as_bytes(), "docker.io")
        .unwrap()
        .unwrap();
    assert_eq!(c.username(), "alice");
    assert_eq!(c.password(), "s3cret:with:colons");
    let c = credentials_from_docker_config(doc.as_bytes(), "reg.example.com:5000")
        .unwrap()
        .unwrap();
    assert_eq!(c.username(), "bob");
    assert!(
        credentials_from_docker_config(doc.as_bytes(), "other.example.com")
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        credentials_from_docker_config(b"{", "docker.io"),
        Err(DockerConfigError::NotJson(_))
    ));
    assert_eq!(
        credentials_from_docker_config(br#"{"auths":{"x.example":{"auth":"!!"}}}"#, "x.example")
            .unwrap_err(),
        DockerConfigError::NotBase64 {
            registry: "x.example".into()
        }
    );
    let no_colon = Base64::encode_string(b"alice");
    assert!(matches!(
        credentials_from_docker_config(
            format!(r#"{{"auths":{{"x.example":{{"auth":"{no_colon}"}}}}}}"#).as_bytes(),
            "x.example"
        ),
        Err(DockerConfigError::NotUserPassword { .. })
    ));
    // A password without a user name is no login either.
    let no_user = Base64::encode_string(b":s3cret");
    assert!(matches!(
        credentials_from_docker_config(
            format!(r#"{{"auths":{{"x.example":{{"auth":"{no_user}"}}}}}}"#).as_bytes(),
            "x.example"
        ),
        Err(DockerConfigError::NotUserPassword { .. })
    ));
    assert!(!format!("{c:?}").contains("pw"));
}

#[test]
fn docker_config_keys_name_hosts() {
    use super::docker_config::config_key_host;
    assert_eq!(
        config_key_host("https://index.docker.io/v1/"),
        "index.docker.io"
    );
    assert_eq!(config_key_host("http://127.0.0.1:5000"), "127.0.0.1:5000");
    assert_eq!(
        config_key_host("reg.example.com:5000"),
        "reg.example.com:5000"
    );
}

#[test]
fn content_types_without_parameters() {
    assert_eq!(
        media_type_of(Some(
            "application/vnd.oci.image.manifest.v1+json; charset=utf-8"
        )),
        Some("application/vnd.oci.image.manifest.v1+json".to_owned())
    );
    assert_eq!(media_type_of(Some("application/json")), None);
    assert_eq!(media_type_of(None), None);
    assert!(is_schema1(
        "application/vnd.docker.distribution.manifest.v1+prettyjws"
    ));
}

#[test]
fn scopes_follow_the_challenge_unless_a_write_needs_more() {
    let app = "org/app";
    assert_eq!(
        choose_scope(None, app, Access::Pull),
        "repository:org/app:pull"
    );
    assert_eq!(
        choose_scope(None, app, Access::Push),
        "repository:org/app:pull,push"
    );
    assert_eq!(
        choose_scope(Some("repository:org/app:pull"), app, Access::Pull),
        "repository:org/app:pull"
    );
    // A HEAD before a push is challenged for pull; the write asks for push.
    assert_eq!(
        choose_scope(Some("repository:org/app:pull"), app, Access::Push),
        "repository:org/app:pull,push"
    );
    // The registry's own wording of a push scope is kept.
    for named in [
        "repository:org/app:push,pull",
        "repository:org/app:*",
        "repository:org/base:pull repository:org/app:pull,push",
    ] {
        assert_eq!(choose_scope(Some(named), app, Access::Push), named);
    }
    // Push on another repository does not count.
    assert_eq!(
        choose_scope(Some("repository:org/other:pull,push"), app, Access::Push),
        "repository:org/app:pull,push"
    );
    assert_eq!(
        choose_scope(Some("  "), app, Access::Pull),
        "repository:org/app:pull"
    );
}

#[test]
fn upload_locations_are_joined_and_given_the_digest() {
    let d = Digest::sha256_of(b"x");
    let q = format!("digest={}", d.as_str().replace(':', "%3A"));
    let start = Url::parse("http://127.0.0.1:5000/v2/org/app/blobs/uploads/").unwrap();
    let cases = [
        (
            "/v2/org/app/blobs/uploads/abc",
            format!("http://127.0.0.1:5000/v2/org/app/blobs/uploads/abc?{q}"),
        ),
        (
            "/v2/org/app/blobs/uploads/abc?_state=s%2Bt",
            format!("http://127.0.0.1:5000/v2/org/app/blobs/uploads/abc?_state=s%2Bt&{q}"),
        ),
        (
            "abc",
            format!("http://127.0.0.1:5000/v2/org/app/blobs/uploads/abc?{q}"),
        ),
        (
            "https://storage.example.com/up/1?sig=x",
            format!("https://storage.example.com/up/1?sig=x&{q}"),
        ),
    ];
    for (location, want) in cases {
        let session = session_url(&start, location).unwrap();
        assert_eq!(upload_url(&session, &d).as_str(), want, "{location}");
    }
    // The session's own query stays (a cancel goes to the session as given).
    assert_eq!(
        session_url(&start, "/v2/org/app/blobs/uploads/abc?_state=x")
            .unwrap()
            .as_str(),
        "http://127.0.0.1:5000/v2/org/app/blobs/uploads/abc?_state=x"
    );
    assert!(session_url(&start, "ftp://x/y").is_err());
    assert!(session_url(&start, "https://u:p@storage.example.com/").is_err());
    assert!(same_origin(&start, &session_url(&start, "/v2/x").unwrap()));
    assert!(!same_origin(
        &start,
        &session_url(&start, "http://localhost:5000/v2/x").unwrap()
    ));
}

#[test]
fn names_that_cannot_go_in_a_path_are_refused() {
    for ok in ["app", "org/app", "a.b/c_d/e-f", "library/busybox"] {
        assert!(is_repository_name(ok), "{ok}");
    }
    for bad in [
        "",
        "Org/app",
        "org//app",
        "org/../app",
        "./app",
        "org/app?x",
        "org/app/",
        "a b",
    ] {
        assert!(!is_repository_name(bad), "{bad}");
    }
    for ok in ["v1", "latest", "_x", "1.2.3-rc_1"] {
        assert!(is_reference(ok), "{ok}");
    }
    assert!(is_reference(Digest::sha256_of(b"").as_str()));
    for bad in [
        "",
        ".v1",
        "-v1",
        "v1/../x",
        "v1?x",
        "sha256:abc",
        &"a".repeat(129),
    ] {
        assert!(!is_reference(bad), "{bad}");
    }
}

/// A body that never ends, one byte a read.
struct Trickle;

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        buf[0] = b'x';
        Ok(1)
    }
}

#[test]
fn a_trickled_body_is_cut_off_at_its_deadline_and_a_long_one_at_its_limit() {
    // Within the size limit for ever: only the deadline ends it.
    let past = Instant::now();
    let e = read_body("r", "manifest v1", Trickle, None, u64::MAX, past).unwrap_err();
    assert!(matches!(e, RegistryError::TimedOut { .. }), "{e}");
    let later = Instant::now() + Duration::from_secs(3600);
    let e = read_body("r", "manifest v1", Trickle, Some(10), 1000, later).unwrap_err();
    assert!(
        matches!(e, RegistryError::TooLarge { limit: 1000, .. }),
        "{e}"
    );
    let ok = read_body("r", "m", &b"{}"[..], Some(2), 1000, later).unwrap();
    assert_eq!(ok, b"{}");
}

#[test]
fn grants_stay_under_their_cap_however_many_repositories_are_asked() {
    let mut g = Grants::default();
    let grant = || Zeroizing::new("Bearer t".to_owned());
    for i in 0..MAX_GRANTS {
        g.insert("r", &format!("repo{i}"), Access::Pull, grant());
        g.note_credentials("r", &format!("repo{i}"));
    }
    assert_eq!(g.granted.len(), MAX_GRANTS);
    assert!(g.get("r", "repo0", Access::Pull).is_some());
    // Renewing a grant already kept does not empty the table.
    g.insert("r", "repo0", Access::Pull, grant());
    g.note_credentials("r", "repo0");
    assert_eq!(g.granted.len(), MAX_GRANTS);
    assert_eq!(g.with_credentials.len(), MAX_GRANTS);
    // One more repository: the table starts over instead of growing.
    g.insert("r", "one-more", Access::Pull, grant());
    g.note_credentials("r", "one-more");
    assert_eq!(g.granted.len(), 1);
    assert_eq!(g.with_credentials.len(), 1);
    assert!(g.get("r", "repo0", Access::Pull).is_none());
    assert!(g.get("r", "one-more", Access::Push).is_some());
    assert!(g.used_credentials("r", "one-more"));
    assert!(!g.used_credentials("r", "repo1"));
    for i in 0..3 * MAX_GRANTS {
        g.insert("r", &format!("again{i}"), Access::Push, grant());
        g.note_credentials("r", &format!("again{i}"));
        assert!(g.granted.len() <= MAX_GRANTS);
        assert!(g.with_credentials.len() <= MAX_GRANTS);
    }
}

#[test]
fn a_callers_deadline_sooner_than_the_answer_timeout_wins() {
    let r = registries(Vec::new(), Login::Anonymous);
    let soon = Instant::now() + Duration::from_millis(10);
    assert_eq!(r.answer_by(Some(soon)), soon);
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let by = r.answer_by(Some(far));
    assert!(by < far);
    assert!(by <= Instant::now() + r.answer_timeout);
}
