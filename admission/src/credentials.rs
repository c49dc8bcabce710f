//! The bearer token the webhook sends to a trust server, from the policy's `[[server]]`
//! tables: written in the policy (`token`), or read from a file (`token_file`) and read
//! again when the file changes, as Kubernetes rotates projected service-account tokens.
//!
//! A [`ServerToken`] is what [`vouch_verifier::transport::HttpTransport`] asks for the token
//! on each request ([`BearerToken`]). A token file is read at most once per
//! [`RECHECK`]: reading a file of a few hundred bytes that often costs nothing next to a
//! TUF refresh, and comparing contents (not only the modification time) also catches a
//! kubelet swapping the `..data` symlink of a projected volume within one second. What is
//! read is trimmed of surrounding whitespace (a trailing newline). The token is never
//! logged, and the `Debug` form shows only where it comes from.
//!
//! A Notary server with token authentication (Harbor's, Docker Hub's) takes a login
//! instead: `username` and `password_file`, which [`ServerToken::credentials`] reads (on
//! every refresh, so a rotated secret is used) for the registry token flow of
//! [`vouch_verifier::registry_auth`], run by [`crate::notary`]. The password is never
//! logged, never in a message, and the `Debug` form shows only the file it comes from.
//!
//! What it is not: a client of an auth server. A token is sent as it is read; whoever
//! writes the file (the kubelet, a sidecar) keeps it valid. The token flow is
//! `vouch_verifier::registry_auth`'s.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vouch_verifier::registry_auth::Credentials;
use vouch_verifier::transport::BearerToken;
use zeroize::Zeroizing;

/// Longest time a token file is trusted without being read again.
pub const RECHECK: Duration = Duration::from_secs(1);

/// Largest token file read (a Kubernetes service-account token is about 1 KiB).
const MAX_TOKEN_BYTES: u64 = 64 * 1024;

/// Where a server's token comes from, and the last one read.
pub struct ServerToken {
    source: Source,
    file: Mutex<FileState>,
}

enum Source {
    /// Written in the policy.
    Inline(Zeroizing<String>),
    /// Read from this file.
    File(PathBuf),
    /// A login for a Notary server's token service: the user name, and the file holding
    /// the password.
    Login {
        username: String,
        password_file: PathBuf,
    },
}

#[derive(Default)]
struct FileState {
    /// When the file was last read.
    checked: Option<Instant>,
    /// What it held, when it held a usable token.
    token: Option<Zeroizing<String>>,
    /// Why it could not be used, when it could not.
    error: Option<String>,
}

impl std::fmt::Debug for ServerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerToken({})", self.describe())
    }
}

/// Why a token cannot be sent as an `Authorization` header value, or `None` when it can.
pub fn check_token(token: &str) -> Option<&'static str> {
    if token.is_empty() {
        Some("it is empty")
    } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
        Some("it holds spaces or characters an HTTP header cannot carry")
    } else {
        None
    }
}

impl ServerToken {
    /// A token written in the policy (checked by the caller with [`check_token`]).
    pub fn inline(token: String) -> Self {
        ServerToken {
            source: Source::Inline(Zeroizing::new(token)),
            file: Mutex::new(FileState::default()),
        }
    }

    /// A token read from `path` when first needed, and again when the file changes.
    pub fn file(path: PathBuf) -> Self {
        ServerToken {
            source: Source::File(path),
            file: Mutex::new(FileState::default()),
        }
    }

    /// A login (`username` and `password_file`) for a Notary server's token service: no
    /// token is sent as such; [`ServerToken::credentials`] gives the login to the token flow.
    pub fn login(username: String, password_file: PathBuf) -> Self {
        ServerToken {
            source: Source::Login {
                username,
                password_file,
            },
            file: Mutex::new(FileState::default()),
        }
    }

    /// True for a login ([`ServerToken::login`]).
    pub fn is_login(&self) -> bool {
        matches!(self.source, Source::Login { .. })
    }

    /// For a login: the credentials, the password read from its file now (trimmed), or why
    /// it cannot be read (the reason never holds the password). `None` for a token.
    pub fn credentials(&self) -> Option<Result<Credentials, String>> {
        let Source::Login {
            username,
            password_file,
        } = &self.source
        else {
            return None;
        };
        Some(
            read_trimmed(password_file)
                .and_then(|p| match p.is_empty() {
                    true => Err("it is empty".to_owned()),
                    false => Ok(Credentials::new(username.clone(), p)),
                })
                .map_err(|e| format!("password_file {}: {e}", password_file.display())),
        )
    }

    /// The token file, for a token read from one (or the password file of a login).
    pub fn path(&self) -> Option<&Path> {
        match &self.source {
            Source::Inline(_) => None,
            Source::File(p) => Some(p),
            Source::Login { password_file, .. } => Some(password_file),
        }
    }

    /// Where the token comes from, for messages: `token_file /path` or `the policy's token`.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Inline(_) => "the token written in the policy".to_owned(),
            Source::File(p) => format!("token_file {}", p.display()),
            Source::Login { password_file, .. } => format!(
                "the username and password_file {} of its [[server]] table",
                password_file.display()
            ),
        }
    }

    /// Why no token could be read from the file on the last attempt (`None` for an inline
    /// token, or when the last read gave one).
    pub fn read_error(&self) -> Option<String> {
        match &self.source {
            Source::Inline(_) | Source::Login { .. } => None,
            Source::File(_) => self.lock().error.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FileState> {
        self.file.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The token now: the inline one, or the file's, read again when [`RECHECK`] has passed
    /// since it was last read.
    pub fn current(&self) -> Option<Zeroizing<String>> {
        let path = match &self.source {
            Source::Inline(t) => return Some(t.clone()),
            Source::File(p) => p,
            Source::Login { .. } => return None,
        };
        let mut st = self.lock();
        if st.checked.is_some_and(|at| at.elapsed() < RECHECK) {
            return st.token.clone();
        }
        st.checked = Some(Instant::now());
        match read_token(path) {
            Ok(token) => {
                if st.token.as_ref().is_some_and(|t| **t == *token) {
                    return st.token.clone();
                }
                if st.token.is_some() || st.error.is_some() {
                    tracing::info!(file = %path.display(), "trust server token read again: it changed");
                }
                st.token = Some(token);
                st.error = None;
            }
            Err(e) => {
                if st.error.as_ref() != Some(&e) {
                    tracing::warn!(file = %path.display(), error = %e, "cannot read the trust server token; requests go without one");
                }
                st.token = None;
                st.error = Some(e);
            }
        }
        st.token.clone()
    }
}

impl BearerToken for ServerToken {
    fn bearer_token(&self) -> Option<String> {
        self.current().map(|t| (*t).clone())
    }
}

/// The token in `path`, trimmed, or why there is none.
fn read_token(path: &Path) -> Result<Zeroizing<String>, String> {
    let token = read_trimmed(path)?;
    if let Some(why) = check_token(&token) {
        return Err(format!("not a usable token: {why}"));
    }
    Ok(token)
}

/// The text of `path` (at most [`MAX_TOKEN_BYTES`]), trimmed of surrounding whitespace.
fn read_trimmed(path: &Path) -> Result<Zeroizing<String>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_TOKEN_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_TOKEN_BYTES {
        return Err(format!("larger than {MAX_TOKEN_BYTES} bytes"));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| "not UTF-8 text".to_owned())?;
    Ok(Zeroizing::new(text.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_token_file_is_read_trimmed_and_again_after_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let t = ServerToken::file(path.clone());
        assert_eq!(t.current(), None);
        assert!(t.read_error().unwrap().contains("No such file"));
        std::fs::write(&path, "first\n").unwrap();
        std::thread::sleep(RECHECK);
        assert_eq!(t.current().as_deref().map(String::as_str), Some("first"));
        assert_eq!(t.read_error(), None);
        // A changed file is noticed once RECHECK has passed, whatever its modification time.
        std::fs::write(&path, "second").unwrap();
        std::thread::sleep(RECHECK);
        assert_eq!(t.bearer_token().as_deref(), Some("second"));
        std::fs::write(&path, "two words").unwrap();
        std::thread::sleep(RECHECK);
        assert_eq!(t.current(), None);
        assert!(
            t.read_error().unwrap().contains("spaces"),
            "{:?}",
            t.read_error()
        );
    }

    #[test]
    fn a_login_reads_its_password_file_and_never_shows_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        let t = ServerToken::login("alice".to_owned(), path.clone());
        let e = t.credentials().unwrap().unwrap_err();
        assert!(
            e.contains("password_file") && e.contains("No such file"),
            "{e}"
        );
        std::fs::write(&path, "s3cret pass\n").unwrap();
        let c = t.credentials().unwrap().unwrap();
        assert_eq!((c.username(), c.password()), ("alice", "s3cret pass"));
        assert!(!format!("{t:?}").contains("s3cret"));
        assert!(!t.describe().contains("s3cret"));
        // A login is not a token: nothing is sent as one.
        assert_eq!(t.bearer_token(), None);
        std::fs::write(&path, "\n").unwrap();
        assert!(t.credentials().unwrap().unwrap_err().contains("empty"));
        assert!(ServerToken::inline("t".into()).credentials().is_none());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = ServerToken::inline("s3cret-token".to_owned());
        assert!(!format!("{t:?}").contains("s3cret"));
        assert_eq!(t.bearer_token().as_deref(), Some("s3cret-token"));
        let f = ServerToken::file("/run/token".into());
        assert_eq!(format!("{f:?}"), "ServerToken(token_file /run/token)");
        assert!(check_token("").is_some() && check_token("a b").is_some());
        assert!(check_token("eyJhbGciOi.x-y_z").is_none());
    }
}
