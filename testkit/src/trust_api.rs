//! A server's trust-data endpoints, spoken to as a client without the CLI's checks would:
//! publishing metadata files as one multipart update (`POST /v2/<gun>/_trust/tuf/`, one
//! `files` part per role) and fetching one file back (`GET /v2/<gun>/_trust/tuf/<file>`).
//! The server alone decides what it accepts; these helpers return its response whatever
//! the status. Paths come from `vouch-tuf`'s [`vouch_tuf::api::path`], as the server parses
//! them.

use reqwest::blocking::{multipart, Client, Response};

/// The URL of `file` (`root.json`, `3.targets.json`, `snapshot.key`, or empty for the publish
/// endpoint) of `gun` on the server at `base`. The layout is `vouch-tuf`'s
/// ([`vouch_tuf::api::path`]); `gun` and `file` go out as given, unchecked, so that tests can
/// send what the server must refuse.
pub fn tuf_url(base: &str, gun: &str, file: &str) -> String {
    format!(
        "{}{}{file}",
        base.trim_end_matches('/'),
        vouch_tuf::api::path::repository_path_unchecked(gun)
    )
}

/// The multipart form of one update: a `files` part per `(role, bytes)`, named after the role.
pub fn form(files: &[(&str, Vec<u8>)]) -> multipart::Form {
    files
        .iter()
        .fold(multipart::Form::new(), |form, (role, bytes)| {
            form.part(
                "files",
                multipart::Part::bytes(bytes.clone()).file_name(role.to_string()),
            )
        })
}

/// Posts `files` (role name, bytes) to `gun` on the server at `base` in one update, with
/// `token` when given; returns the server's response whatever its status.
pub fn publish(
    client: &Client,
    base: &str,
    gun: &str,
    files: &[(&str, Vec<u8>)],
    token: Option<&str>,
) -> Response {
    let mut req = client.post(tuf_url(base, gun, "")).multipart(form(files));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send()
        .unwrap_or_else(|e| panic!("publish to {base} for {gun}: {e}"))
}

/// Gets `file` of `gun` from the server at `base`, with `token` when given; returns the
/// server's response whatever its status.
pub fn fetch(client: &Client, base: &str, gun: &str, file: &str, token: Option<&str>) -> Response {
    let url = tuf_url(base, gun, file);
    let mut req = client.get(&url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().unwrap_or_else(|e| panic!("GET {url}: {e}"))
}
