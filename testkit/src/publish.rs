//! Publishing metadata files to a server as one multipart update (`POST
//! /v2/<gun>/_trust/tuf/`, one `files` part per role), as a client without the CLI's checks
//! would: the server alone decides what it accepts.

use reqwest::blocking::{multipart, Client, Response};

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
    let mut req = client
        .post(format!("{base}/v2/{gun}/_trust/tuf/"))
        .multipart(form(files));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send()
        .unwrap_or_else(|e| panic!("publish to {base} for {gun}: {e}"))
}
