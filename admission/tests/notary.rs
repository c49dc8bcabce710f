//! Verifying against a Notary v1 server during a migration: a real notary-server and the
//! real notary client sign tags (into `targets`, and into a `targets/releases` delegation
//! held by its own key), and the real `vouch-admission` binary, trusting the notary server's
//! CA through `SSL_CERT_FILE`, admits what notary signed, pinned to the digest `notary lookup`
//! prints; denies unsigned tags, wrong digests and tags outside a required delegation; denies
//! a tag re-pointed in notary's database behind the signers' backs; and, having seen newer
//! metadata, denies a notary server rolled back to older (still validly signed) metadata,
//! while it keeps running and after a restart. `check-policy` refuses a notary rule without
//! its pinned Notary root.
//!
//! With token authentication (Harbor's and Docker Hub's notary: a `401` challenge naming a
//! token service): the webhook admits a tag of a private collection with the `username` and
//! `password_file` of the server's `[[server]]` table, and denies — failing closed, saying
//! why, never printing the password — with a wrong password, an unreadable password file,
//! or no login at all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{message, pinned_image, pod_running, WebhookProcess};
use serde_json::Value;
use vouch_testkit::notary::{
    hex_digest, DelegationKey, NotaryClient, NotaryServer, TokenAuth, TokenIssuer, TokenService,
};

/// The repository notary signs (its GUN, and the canonical name of its images).
const APP: &str = "registry.example.com/legacy/app";
/// Images of `APP` under another name, whose rule requires `targets/releases`.
const RELEASES_ONLY: &str = "registry.example.com/releases-only/app";

/// A notary server, a client that initialised `APP`, and a directory for the policy.
struct Notary {
    tmp: tempfile::TempDir,
    server: NotaryServer,
    client: NotaryClient,
}

impl Notary {
    fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let server = NotaryServer::start(&tmp.path().join("notary-server"));
        let client = NotaryClient::new(&server, tmp.path().join("notary-trust"));
        client.init(APP);
        Notary {
            tmp,
            server,
            client,
        }
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Pins the root the notary client trusts for `APP` (`roots/app.notary-root.json`) and
    /// writes the policy: `APP` from the notary server, and `RELEASES_ONLY` mapped to the
    /// same repository, through `targets/releases` only.
    fn policy(&self) -> PathBuf {
        let roots = self.dir().join("roots");
        std::fs::create_dir_all(&roots).unwrap();
        std::fs::copy(
            self.client
                .trust_dir()
                .join("tuf")
                .join(APP)
                .join("metadata/root.json"),
            roots.join("app.notary-root.json"),
        )
        .unwrap();
        let url = self.server.url();
        let policy = self.dir().join("policy.toml");
        std::fs::write(
            &policy,
            format!(
                "refresh_interval_secs = 0\n\
                 [[rule]]\npattern = \"{APP}\"\naction = \"verify\"\nnotary = \"{url}\"\n\
                 notary_root = \"roots/app.notary-root.json\"\n\
                 [[rule]]\npattern = \"{RELEASES_ONLY}\"\naction = \"verify\"\n\
                 notary = \"{url}\"\nnotary_root = \"roots/app.notary-root.json\"\n\
                 gun = \"{APP}\"\nrequired_roles = [\"targets/releases\"]\n"
            ),
        )
        .unwrap();
        policy
    }

    /// The `vouch-admission` binary for `policy`, trusting the notary server's CA.
    fn webhook(&self, policy: &Path) -> WebhookProcess {
        let ca = self.server.ca_cert().to_str().unwrap().to_owned();
        WebhookProcess::start_with_env(
            policy,
            &self.dir().join("cache"),
            &[],
            &[("SSL_CERT_FILE", ca.as_str())],
        )
    }

    /// Every stored version of `role` of `APP`, oldest first.
    fn versions(&self, role: &str) -> Vec<u64> {
        self.server
            .psql(&format!(
                "SELECT version FROM tuf_files WHERE gun = '{APP}' AND role = '{role}' \
                 ORDER BY version"
            ))
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.trim().parse().unwrap())
            .collect()
    }
}

fn admitted(w: &WebhookProcess, image: &str) -> (Value, Option<String>) {
    let review = pod_running(image);
    let resp = w.review(&review);
    assert_eq!(resp["allowed"], true, "{image}: {resp}");
    let pinned = pinned_image(&review, &resp);
    (resp, pinned)
}

fn denied(w: &WebhookProcess, image: &str) -> String {
    let resp = w.review(&pod_running(image));
    assert_eq!(resp["allowed"], false, "{image}: {resp}");
    message(&resp)
}

#[test]
fn notary_signed_tags_are_admitted_pinned_and_checked_and_tampering_is_denied() {
    let mut notary = Notary::start();
    let client = &notary.client;
    client.addhash(APP, "v1", 101, &hex_digest('1'), None);
    client.addhash(APP, "v2", 102, &hex_digest('2'), None);
    client.publish(APP);
    let releases = DelegationKey::create(notary.dir(), "releases");
    client.delegation_add(APP, "targets/releases", &releases.cert);
    client.key_import(&releases.key, "targets/releases");
    client.publish(APP);
    client.addhash(APP, "v3", 103, &hex_digest('3'), Some("targets/releases"));
    client.publish(APP);
    let v1 = client.lookup(APP, "v1");
    let v3 = client.lookup(APP, "v3");
    assert_eq!(v1.digest, format!("sha256:{}", hex_digest('1')));

    let policy = notary.policy();
    let w = notary.webhook(&policy);

    // A tag notary signed: admitted, pinned to the digest `notary lookup` printed, in the
    // pod's own spelling.
    let (_, pinned) = admitted(&w, &format!("{APP}:v1"));
    assert_eq!(pinned, Some(format!("{APP}:v1@{}", v1.digest)));
    let (_, pinned) = admitted(&w, &format!("{APP}:v3"));
    assert_eq!(pinned, Some(format!("{APP}:v3@{}", v3.digest)));
    // By digest: trusted when signed, not rewritten.
    let (_, pinned) = admitted(&w, &format!("{APP}@{}", v1.digest));
    assert_eq!(pinned, None);
    let (_, pinned) = admitted(&w, &format!("{APP}:v1@{}", v1.digest));
    assert_eq!(pinned, None);

    // Unsigned tags and digests, and a tag with another digest than the one signed.
    let m = denied(&w, &format!("{APP}:v9"));
    assert!(m.contains("tag v9 is not signed in"), "{m}");
    let m = denied(&w, &format!("{APP}@sha256:{}", hex_digest('9')));
    assert!(m.contains("is not signed in"), "{m}");
    let m = denied(&w, &format!("{APP}:v1@sha256:{}", hex_digest('2')));
    assert!(
        m.contains(&format!("is not the signed digest {} of tag v1", v1.digest)),
        "{m}"
    );

    // Through targets/releases only: v3 is, v1 (signed by targets) is not.
    let (_, pinned) = admitted(&w, &format!("{RELEASES_ONLY}:v3"));
    assert_eq!(pinned, Some(format!("{RELEASES_ONLY}:v3@{}", v3.digest)));
    let m = denied(&w, &format!("{RELEASES_ONLY}:v1"));
    assert!(
        m.contains("tag v1 is signed in")
            && m.contains("by targets, not by the required role targets/releases"),
        "{m}"
    );

    let metrics = w.get("/metrics").1;
    assert!(
        metrics.contains(
            "vouch_admission_decisions_total{result=\"allowed\",reason=\"notary_verified\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("vouch_admission_decisions_total{result=\"denied\",reason=\"unsigned\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "vouch_admission_decisions_total{result=\"denied\",reason=\"required_role\"}"
        ),
        "{metrics}"
    );

    // v1 re-pointed in notary's database, without the targets key: denied.
    notary
        .server
        .tamper_hash(APP, "targets", &hex_digest('1'), &hex_digest('2'));
    let m = denied(&w, &format!("{APP}:v1"));
    assert!(m.contains("trust metadata rejected"), "{m}");
    let m = denied(&w, &format!("{APP}:v2"));
    assert!(m.contains("trust metadata rejected"), "{m}");
}

#[test]
fn a_notary_server_rolled_back_is_denied_while_the_webhook_runs_and_after_a_restart() {
    let mut notary = Notary::start();
    let client = &notary.client;
    client.addhash(APP, "v1", 101, &hex_digest('1'), None);
    client.publish(APP);
    let policy = notary.policy();
    let w = notary.webhook(&policy);
    let (_, pinned) = admitted(&w, &format!("{APP}:v1"));
    assert_eq!(pinned, Some(format!("{APP}:v1@sha256:{}", hex_digest('1'))));

    // A newer collection, which the webhook sees.
    client.addhash(APP, "v2", 102, &hex_digest('2'), None);
    client.publish(APP);
    admitted(&w, &format!("{APP}:v2"));
    let timestamps = notary.versions("timestamp");
    assert!(timestamps.len() >= 2, "{timestamps:?}");

    // The server goes back to the older timestamp, snapshot and targets (still signed,
    // still unexpired): every newer row removed.
    for role in ["timestamp", "snapshot", "targets"] {
        let versions = notary.versions(role);
        let first = versions[0];
        notary.server.psql(&format!(
            "DELETE FROM tuf_files WHERE gun = '{APP}' AND role = '{role}' AND version > {first}"
        ));
    }
    notary.server.restart();
    // The older data is what the server serves now.
    let (status, _) = notary.server.get(APP, "timestamp.json");
    assert_eq!(status, 200);

    for image in [
        format!("{APP}:v1"),
        format!("{APP}:v1"),
        format!("{APP}:v2"),
    ] {
        let m = denied(&w, &image);
        assert!(
            m.contains("the Notary server rolled back")
                && m.contains("rollback attempt: timestamp"),
            "{m}"
        );
    }
    let (status, _) = w.get("/healthz");
    assert_eq!(status, 200);
    let metrics = w.get("/metrics").1;
    assert!(
        metrics.contains(
            "vouch_admission_decisions_total{result=\"denied\",reason=\"notary_rollback\"}"
        ),
        "{metrics}"
    );
    let rollbacks: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("vouch_admission_notary_rollbacks_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(rollbacks >= 3, "{metrics}");

    // A restarted webhook still knows the newer versions (kept in its cache directory).
    drop(w);
    let w = notary.webhook(&policy);
    let m = denied(&w, &format!("{APP}:v1"));
    assert!(m.contains("the Notary server rolled back"), "{m}");
}

fn check_policy(file: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vouch-admission"))
        .arg("check-policy")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn check_policy_validates_notary_rules_and_refuses_one_without_its_root() {
    let notary = Notary::start();
    let policy = notary.policy();
    let (code, out, err) = check_policy(&policy);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "rule 1: {APP} -> Verify against the Notary server {} (GUN {{name}}, notary root",
            notary.server.url()
        )) && out.contains("signed by targets/releases"),
        "{out}"
    );

    let url = notary.server.url();
    let rule = format!("[[rule]]\npattern = \"{APP}\"\naction = \"verify\"\nnotary = \"{url}\"\n");
    for (extra, problem) in [
        ("", "needs its pinned Notary root"),
        (
            "notary_root = \"roots/missing.json\"\n",
            "cannot read notary root",
        ),
        (
            "notary_root = \"policy.toml\"\n",
            "is not a Notary root",
        ),
        (
            "[rule.notary_roots]\n\"registry.example.com/other/app\" = \"roots/app.notary-root.json\"\n",
            "is not a usable root for registry.example.com/other/app",
        ),
        (
            "notary_root = \"roots/app.notary-root.json\"\nserver = \"https://vouch.example\"\n",
            "not both",
        ),
        (
            "notary_root = \"roots/app.notary-root.json\"\nrequired_roles = [\"releases\"]\n",
            "names Notary delegations",
        ),
    ] {
        let bad = notary.dir().join("bad.toml");
        std::fs::write(&bad, format!("{rule}{extra}")).unwrap();
        let (code, out, err) = check_policy(&bad);
        assert_eq!(code, 2, "{extra}: {out}{err}");
        assert!(err.contains(problem), "{extra}: {err}");
    }
}

/// The password of the login the token service knows.
const PASSWORD: &str = "s3cret-notary-pw";

#[test]
fn a_notary_server_with_token_auth_is_read_with_the_policys_login_and_denies_without_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let issuer = std::sync::Arc::new(TokenIssuer::new("vouch-test-token-issuer"));
    let bundle = dir.join("token-signer.pem");
    issuer.write_bundle(&bundle);
    let tokens = TokenService::start(issuer.clone(), "notary-test", &[], ("alice", PASSWORD));
    let server = NotaryServer::start_with_token_auth(
        &dir.join("notary-server"),
        &TokenAuth {
            realm: tokens.realm().to_owned(),
            service: "notary-test".to_owned(),
            issuer: issuer.issuer().to_owned(),
            rootcertbundle: bundle,
        },
    );
    let client = NotaryClient::new(&server, dir.join("notary-trust")).with_auth("alice", PASSWORD);
    client.init(APP);
    client.addhash(APP, "v1", 101, &hex_digest('1'), None);
    client.publish(APP);
    let root = dir.join("app.notary-root.json");
    std::fs::copy(
        client
            .trust_dir()
            .join("tuf")
            .join(APP)
            .join("metadata/root.json"),
        &root,
    )
    .unwrap();
    let url = server.url();
    let ca = server.ca_cert().to_str().unwrap().to_owned();
    // A webhook of its own (policy, cache) for each `[[server]]` table: a refused refresh
    // would otherwise answer from what an earlier one trusted.
    let webhook = |name: &str, server_table: &str| {
        let policy = dir.join(format!("{name}.toml"));
        std::fs::write(
            &policy,
            format!(
                "refresh_interval_secs = 0\n\
                 [[rule]]\npattern = \"{APP}\"\naction = \"verify\"\nnotary = \"{url}\"\n\
                 notary_root = \"{}\"\n{server_table}",
                root.display()
            ),
        )
        .unwrap();
        WebhookProcess::start_with_env(
            &policy,
            &dir.join(format!("cache-{name}")),
            &[],
            &[("SSL_CERT_FILE", ca.as_str())],
        )
    };
    let login = |password_file: &str| {
        format!(
            "[[server]]\nurl = \"{url}\"\nusername = \"alice\"\npassword_file = \"{password_file}\"\n"
        )
    };
    std::fs::write(dir.join("right.pw"), format!("{PASSWORD}\n")).unwrap();
    std::fs::write(dir.join("wrong.pw"), "wrong-s3cret").unwrap();

    // The policy's login: a token for pull on the collection, asked with it; admitted and
    // pinned.
    let w = webhook("right", &login("right.pw"));
    let (_, pinned) = admitted(&w, &format!("{APP}:v1"));
    assert_eq!(pinned, Some(format!("{APP}:v1@sha256:{}", hex_digest('1'))));
    let asked = tokens.asked();
    let last = asked.last().unwrap();
    assert_eq!(last.scopes, [format!("repository:{APP}:pull")]);
    assert!(
        last.authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic ")),
        "{last:?}"
    );
    let m = denied(&w, &format!("{APP}:v2"));
    assert!(m.contains("tag v2 is not signed in"), "{m}");
    assert!(w.log_lines(PASSWORD).is_empty(), "the password was logged");
    drop(w);

    // A wrong password: the token service refuses it; denied, naming the file, not the
    // password.
    let w = webhook("wrong", &login("wrong.pw"));
    let m = denied(&w, &format!("{APP}:v1"));
    assert!(
        m.contains("refused the username and password_file") && m.contains("wrong.pw"),
        "{m}"
    );
    assert!(!m.contains("s3cret"), "{m}");
    assert!(w.log_lines("s3cret").is_empty(), "the password was logged");
    drop(w);

    // An unreadable password file: denied before asking for a token.
    let before = tokens.asked().len();
    let w = webhook("missing", &login("missing.pw"));
    let m = denied(&w, &format!("{APP}:v1"));
    assert!(
        m.contains("cannot log in to the token service") && m.contains("missing.pw"),
        "{m}"
    );
    assert_eq!(
        tokens.asked().len(),
        before,
        "a token was asked without the login"
    );
    drop(w);

    // No login: the anonymous token grants nothing, and the server refuses it.
    let w = webhook("anonymous", "");
    let m = denied(&w, &format!("{APP}:v1"));
    assert!(
        m.contains("refused the anonymous token")
            && m.contains("username")
            && m.contains("password_file"),
        "{m}"
    );
    let last = tokens.asked().last().cloned().unwrap();
    assert_eq!(last.authorization, None, "{last:?}");
}
