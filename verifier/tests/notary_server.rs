//! The Notary verifier against a running notary-server (Debian's 0.7, see
//! `vouch_testkit::notary`): the files it asks for are the ones notary-server's routes serve,
//! every tag resolves to what `notary lookup` prints, a digest changed in the server's
//! database is refused, and a server rolled back to an older state is caught on the next run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use vouch_testkit::notary::{NotaryClient, NotaryServer};
use vouch_tuf::clock::{Clock, SystemClock};
use vouch_tuf::reference::Gun;
use vouch_verifier::notary::{
    client_trusted_root, fetch_collection, ExpiredMetadata, Layout, NotaryCollection, NotaryState,
    NotaryVerifyError,
};
use vouch_verifier::transport::{Transport, TransportError};
use vouch_verifier::Limits;

/// notary-server's trust-data routes for one GUN, through the test's TLS client; records the
/// paths asked for.
struct ServerFiles<'a> {
    server: &'a NotaryServer,
    gun: &'a str,
    asked: Mutex<Vec<String>>,
}

impl Transport for ServerFiles<'_> {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        self.asked.lock().unwrap().push(path.to_owned());
        let (status, body) = self.server.get(self.gun, path);
        match status {
            200 if body.len() as u64 <= max_len => Ok(body),
            200 => Err(TransportError::TooLarge {
                path: path.to_owned(),
                limit: max_len,
            }),
            404 => Err(TransportError::NotFound {
                path: path.to_owned(),
            }),
            status => Err(TransportError::Status {
                path: path.to_owned(),
                status,
            }),
        }
    }
}

fn verify(
    server: &NotaryServer,
    gun: &str,
    state: &NotaryState,
) -> (Result<NotaryCollection, NotaryVerifyError>, Vec<String>) {
    let files = ServerFiles {
        server,
        gun,
        asked: Mutex::new(Vec::new()),
    };
    let got = fetch_collection(
        &files,
        Layout::Server,
        state,
        SystemClock.now(),
        ExpiredMetadata::Refuse,
        Limits::DEFAULT,
    );
    let asked = files.asked.into_inner().unwrap();
    (got, asked)
}

fn digest(n: u8) -> String {
    vouch_tuf::hex::encode([n; 32])
}

#[test]
fn a_live_notary_server_is_verified_and_its_tampering_and_rollback_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = NotaryServer::start(&tmp.path().join("server"));
    let client = NotaryClient::new(&server, tmp.path().join("trust"));
    let gun = "example.com/verify/app";
    client.init(gun);
    client.addhash(gun, "v1", 1001, &digest(1), None);
    client.publish(gun);

    // Pinned to the root the notary client trusted at init.
    let pinned =
        client_trusted_root(client.trust_dir(), &Gun::new(gun).unwrap(), Limits::DEFAULT).unwrap();
    let (got, asked) = verify(&server, gun, &pinned);
    let first = got.unwrap();
    let v1 = first.lookup("v1").unwrap();
    let notary = client.lookup(gun, "v1");
    assert_eq!(
        format!("sha256:{}", v1.sha256.as_deref().unwrap()),
        notary.digest
    );
    assert_eq!(v1.length, notary.size);
    assert_eq!(asked[0], "root.json");
    assert_eq!(asked[1], "timestamp.json");
    assert!(asked[2].starts_with("snapshot.") && asked[2].len() == "snapshot..json".len() + 64);
    assert!(asked[3].starts_with("targets.") && asked[3].len() == "targets..json".len() + 64);
    let ids_after_first = server.psql(&format!(
        "SELECT max(id) FROM tuf_files WHERE gun = '{gun}'"
    ));

    // A second publish; the next run starts from the first run's state.
    client.addhash(gun, "v2", 2002, &digest(2), None);
    client.publish(gun);
    let (got, _) = verify(&server, gun, &first.state);
    let second = got.unwrap();
    assert_eq!(
        second.lookup("v2").unwrap().sha256.as_deref(),
        Some(&*digest(2))
    );
    assert!(second.state.timestamp_version() > first.state.timestamp_version());

    // The server's database rolled back to the first publish: caught against the kept state,
    // though a client without that state would take it.
    server.psql(&format!(
        "DELETE FROM tuf_files WHERE gun = '{gun}' AND id > {}",
        ids_after_first.trim()
    ));
    server.restart();
    let (got, _) = verify(&server, gun, &second.state);
    let err = got.unwrap_err();
    assert!(matches!(err, NotaryVerifyError::Rollback { .. }), "{err}");
    let (got, _) = verify(&server, gun, &pinned);
    assert!(got.unwrap().lookup("v2").is_none());

    // v1's digest changed in the database behind the server's back: refused.
    server.tamper_hash(gun, "targets", &"01".repeat(32), &"07".repeat(32));
    let (got, _) = verify(&server, gun, &pinned);
    let err = got.unwrap_err();
    assert!(err.to_string().contains("targets"), "{err}");
}
