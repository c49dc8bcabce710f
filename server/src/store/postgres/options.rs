//! [`PgOptions`]: how to reach PostgreSQL, parsed from a `postgres://` URL and the
//! `[storage]` settings, with the password kept out of every message.
//!
//! The URL takes libpq's form, `postgres://user:password@host:port/database?param=value`.
//! The parameters understood besides those of the `postgres` crate (`application_name`,
//! `connect_timeout`, `keepalives`, `target_session_attrs`, ...) are libpq's TLS ones:
//! - `sslmode`: `disable`, `prefer` (the default, as in libpq: TLS when the server offers it,
//!   certificate unchecked), `require` (TLS, certificate unchecked), `verify-ca` (TLS, the
//!   certificate must chain to `sslrootcert`), `verify-full` (as `verify-ca`, and it must
//!   name the host);
//! - `sslrootcert`: a PEM file of the CA certificates `verify-ca` and `verify-full` trust
//!   (required by both: there is no implicit trust store).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How the connection to PostgreSQL is protected (libpq's `sslmode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, the certificate unchecked.
    Prefer,
    /// TLS always, the certificate unchecked (protects against passive eavesdropping only).
    Require,
    /// TLS, the certificate chaining to the CAs of this file.
    VerifyCa(PathBuf),
    /// TLS, the certificate chaining to the CAs of this file and naming the host.
    VerifyFull(PathBuf),
}

/// Everything needed to open connections to one PostgreSQL database.
#[derive(Clone)]
pub struct PgOptions {
    /// The connection settings, TLS mode excepted.
    pub(super) config: postgres::Config,
    /// TLS.
    pub tls: TlsMode,
    /// The URL with its password replaced by `***`, for messages and logs.
    pub redacted: String,
    /// Most connections open at once (per server process).
    pub pool_size: usize,
    /// How long opening a connection (TCP, TLS, authentication) may take.
    pub connect_timeout: Duration,
    /// How long one statement may run before the database cancels it.
    pub statement_timeout: Duration,
    /// How long a request waits for a free pooled connection.
    pub acquire_timeout: Duration,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &self.redacted)
            .field("tls", &self.tls)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

/// Whether `url` names a PostgreSQL database (rather than a SQLite file).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `url` with the password of its user-info part replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The user info ends at the last `@` before the path: a password may hold `@`
    // unescaped in sloppy URLs, and must still not be shown.
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some(at) = authority.rfind('@') else {
        return redact_query(url);
    };
    let (userinfo, host) = authority.split_at(at);
    let user = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => userinfo.to_owned(),
    };
    redact_query(&format!("{scheme}://{user}{host}{tail}"))
}

/// `url` with the value of a `password=` query parameter replaced by `***`.
fn redact_query(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => p.to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

impl PgOptions {
    /// Parses `url` (see the module documentation). The error names the URL with its
    /// password hidden and says what is wrong with it.
    pub fn from_url(url: &str) -> Result<Self, String> {
        let redacted = redact(url);
        let fail = |why: String| format!("storage url {redacted}: {why}");
        if !is_postgres_url(url) {
            return Err(fail(
                "not a PostgreSQL URL (postgres://user:password@host:port/database)".into(),
            ));
        }
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (url, None),
        };
        let mut sslmode = "prefer".to_owned();
        let mut rootcert: Option<PathBuf> = None;
        let mut rest = Vec::new();
        for param in query.into_iter().flat_map(|q| q.split('&')) {
            if param.is_empty() {
                continue;
            }
            let (k, v) = param.split_once('=').unwrap_or((param, ""));
            match k {
                "sslmode" => sslmode = v.to_owned(),
                "sslrootcert" => rootcert = Some(PathBuf::from(percent_decode(v))),
                _ => rest.push(param),
            }
        }
        let stripped = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let mut config = postgres::Config::from_str(&stripped).map_err(|e| {
            // The crate's messages never quote the password.
            fail(e.to_string())
        })?;
        if config.get_hosts().is_empty() {
            return Err(fail("no host".into()));
        }
        if config.get_dbname().is_none() {
            return Err(fail("no database name".into()));
        }
        if config.get_user().is_none_or(str::is_empty) {
            return Err(fail("no user name".into()));
        }
        let need_root = |mode: &str| {
            rootcert.clone().ok_or_else(|| {
                fail(format!(
                    "sslmode={mode} needs sslrootcert=<PEM file of the CA certificates to trust>"
                ))
            })
        };
        let tls = match sslmode.as_str() {
            "disable" => TlsMode::Disable,
            "prefer" | "allow" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa(need_root("verify-ca")?),
            "verify-full" => TlsMode::VerifyFull(need_root("verify-full")?),
            other => {
                return Err(fail(format!(
                "sslmode {other:?} is not one of disable, prefer, require, verify-ca, verify-full"
            )))
            }
        };
        if config.get_application_name().is_none() {
            config.application_name("vouch-server");
        }
        Ok(PgOptions {
            config,
            tls,
            redacted,
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(5),
        })
    }

    /// The same options with other pool size and timeouts.
    pub fn with_limits(
        mut self,
        pool_size: usize,
        connect_timeout: Duration,
        statement_timeout: Duration,
        acquire_timeout: Duration,
    ) -> Self {
        self.pool_size = pool_size.max(1);
        self.connect_timeout = connect_timeout;
        self.statement_timeout = statement_timeout;
        self.acquire_timeout = acquire_timeout;
        self
    }
}

/// Decodes `%XX` escapes (a file path in a URL parameter); invalid escapes stay as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn passwords_never_appear_in_redacted_urls() {
        for (url, want) in [
            (
                "postgres://vouch:s3cret@db.example:5432/vouch?sslmode=require",
                "postgres://vouch:***@db.example:5432/vouch?sslmode=require",
            ),
            (
                "postgresql://vouch:p@ss@db/vouch",
                "postgresql://vouch:***@db/vouch",
            ),
            ("postgres://vouch@db/vouch", "postgres://vouch@db/vouch"),
            (
                "postgres://db/vouch?user=vouch&password=s3cret",
                "postgres://db/vouch?user=vouch&password=***",
            ),
            ("postgres://db", "postgres://db"),
        ] {
            assert_eq!(redact(url), want, "{url}");
        }
    }

    #[test]
    fn tls_modes_parse_as_libpq_names_them() {
        let mode =
            |q: &str| PgOptions::from_url(&format!("postgres://u:pw@h/db{q}")).map(|o| o.tls);
        assert_eq!(mode(""), Ok(TlsMode::Prefer));
        assert_eq!(mode("?sslmode=disable"), Ok(TlsMode::Disable));
        assert_eq!(mode("?sslmode=require"), Ok(TlsMode::Require));
        assert_eq!(
            mode("?sslmode=verify-full&sslrootcert=/etc/ca%20s.pem"),
            Ok(TlsMode::VerifyFull(PathBuf::from("/etc/ca s.pem")))
        );
        assert_eq!(
            mode("?sslrootcert=/ca.pem&sslmode=verify-ca&application_name=x"),
            Ok(TlsMode::VerifyCa(PathBuf::from("/ca.pem")))
        );
        let err = mode("?sslmode=verify-full").unwrap_err();
        assert!(err.contains("needs sslrootcert"), "{err}");
        assert!(!err.contains("pw"), "{err}");
        let err = mode("?sslmode=sometimes").unwrap_err();
        assert!(err.contains("\"sometimes\""), "{err}");
    }

    #[test]
    fn unusable_urls_are_refused_naming_the_problem_not_the_password() {
        for (url, why) in [
            ("mysql://u:hunter2@h/db", "not a PostgreSQL URL"),
            ("postgres://u:hunter2@h", "no database name"),
            ("postgres://:hunter2@h/db", "no user name"),
            ("postgres://u:hunter2@h/db?bogus=1", "bogus"),
            ("postgres://u:hunter2@h:notaport/db", "port"),
        ] {
            let err = PgOptions::from_url(url).unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
            assert!(!err.contains("hunter2"), "{url}: {err}");
        }
    }
}
