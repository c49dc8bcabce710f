//! Publishes a benchmark repository to a running vouch-server: fresh root and targets keys,
//! the server's online keys for timestamp and snapshot, and one targets role with N image
//! tags (`tag-0` … `tag-{N-1}`, each a sha256 digest and a length, as `notary addhash` writes
//! them). Used by `bench/notary-vs-vouch/run.sh`.
//!
//! ```sh
//! cargo run --release -p vouch-server --example bench_publish -- \
//!     http://127.0.0.1:4443 bench/app10 10 vouch-data/admin.token
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::blocking::{multipart, Client};
use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
use vouch_tuf::json;
use vouch_tuf::metadata::{Key, Metadata, Root, TargetFile, Targets};
use vouch_tuf::reference::Digest;
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::{TargetName, TopLevelRole};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, gun, n, token_file] = args.as_slice() else {
        eprintln!("usage: bench_publish BASE_URL GUN NTAGS ADMIN_TOKEN_FILE");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("NTAGS is a number");
    let token = std::fs::read_to_string(token_file).expect("read token");
    let token = token.trim();
    // reqwest's TLS stack needs a crypto provider chosen once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::new();
    let online = |role: &str| {
        let r = client
            .get(format!("{base}/v2/{gun}/_trust/tuf/{role}.key"))
            .bearer_auth(token)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{role}.key: {}", r.status());
        Key::from_value(json::parse(&r.bytes().unwrap()).unwrap()).unwrap()
    };
    let expires = Timestamp::parse("2099-01-01T00:00:00Z").unwrap();
    let root_key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let targets_key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let mut root = Root::new(expires);
    root.add_key(
        TopLevelRole::Root,
        Key::from_verifying_key(&root_key.verifying_key()),
    );
    root.add_key(
        TopLevelRole::Targets,
        Key::from_verifying_key(&targets_key.verifying_key()),
    );
    root.add_key(TopLevelRole::Snapshot, online("snapshot"));
    root.add_key(TopLevelRole::Timestamp, online("timestamp"));
    let mut targets = Targets::new(expires);
    for i in 0..n {
        let tag = format!("tag-{i}");
        let digest = Digest::sha256_of(format!("manifest of {gun}:{tag}").as_bytes());
        targets.add_target(
            TargetName::new(tag).unwrap(),
            TargetFile::image(&digest, 1000 + i as u64, None),
        );
    }
    let files = [
        (
            "root",
            Metadata::signed_by(root, &[&root_key]).unwrap().to_bytes(),
        ),
        (
            "targets",
            Metadata::signed_by(targets, &[&targets_key])
                .unwrap()
                .to_bytes(),
        ),
    ];
    let mut form = multipart::Form::new();
    for (role, bytes) in files {
        form = form.part("files", multipart::Part::bytes(bytes).file_name(role));
    }
    let r = client
        .post(format!("{base}/v2/{gun}/_trust/tuf/"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .unwrap();
    let status = r.status();
    assert!(
        status.is_success(),
        "publish: {status} {}",
        r.text().unwrap()
    );
    println!("published {gun} with {n} tags");
}
