//! The registry token flow (Docker's token authentication, as distribution and notary-server
//! implement it), for tests that run a real registry or notary-server with `auth: token`.
//!
//! [`TokenIssuer`] signs the JWTs those servers accept: ES256 with the signing certificate in
//! the `x5c` header, the certificate being the server's `rootcertbundle`. [`TokenService`] is
//! the token endpoint (the challenge's `realm`): a loopback HTTP/1.1 server in a thread that
//! checks a login given with basic authentication and grants what a [`TokenPolicy`] allows,
//! recording every request ([`TokenAsked`]) so that a test can assert the bearer flow ran.
//! A test may deny repositories to everyone while it runs ([`TokenService::deny`]), as a
//! registry's access policy refusing one repository to an account would.
//!
//! Non-goals: no refresh tokens, no OAuth2 `POST` form, no token for anything but
//! `repository:` scopes. The service runs until the test process exits.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rcgen::{CertificateParams, DnType, KeyPair};

/// Issues the JWTs a registry's or notary-server's token authentication accepts: ES256,
/// signed by a fresh ECDSA P-256 key whose self-signed certificate travels in the token's
/// `x5c` header and is the server's `rootcertbundle` ([`TokenIssuer::write_bundle`]).
/// distribution 2.8 (`registry/auth/token`) and notary-server 0.7 both verify the `x5c`
/// certificate against that bundle and check `iss`, `aud`, `exp` and `nbf`.
pub struct TokenIssuer {
    key: ring::signature::EcdsaKeyPair,
    cert_der: Vec<u8>,
    cert_pem: String,
    issuer: String,
}

impl TokenIssuer {
    /// A new issuer calling itself `issuer` (the tokens' `iss`).
    pub fn new(issuer: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("cert parameters");
        params.distinguished_name.push(DnType::CommonName, issuer);
        let key = KeyPair::generate().expect("token signing key");
        let cert = params.self_signed(&key).expect("token signing certificate");
        let signing = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &ring::rand::SystemRandom::new(),
        )
        .expect("the token key as a ring key");
        TokenIssuer {
            key: signing,
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            issuer: issuer.to_owned(),
        }
    }

    /// The issuer's name (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Writes the certificate (PEM) to `file`: the server's `rootcertbundle`.
    pub fn write_bundle(&self, file: &Path) {
        std::fs::write(file, &self.cert_pem).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }

    /// A token for `service` granting `actions` (`pull`, `push`) on each repository named
    /// in `access`, valid for five minutes.
    pub fn token(&self, service: &str, subject: &str, access: &[(&str, &[&str])]) -> String {
        use base64ct::{Base64, Base64UrlUnpadded, Encoding};
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_secs();
        let header = format!(
            r#"{{"typ":"JWT","alg":"ES256","x5c":["{}"]}}"#,
            Base64::encode_string(&self.cert_der)
        );
        let access: Vec<String> = access
            .iter()
            .map(|(name, actions)| {
                let actions: Vec<String> = actions.iter().map(|a| format!("{a:?}")).collect();
                format!(
                    r#"{{"type":"repository","name":{name:?},"actions":[{}]}}"#,
                    actions.join(",")
                )
            })
            .collect();
        let claims = format!(
            r#"{{"iss":{iss:?},"sub":{subject:?},"aud":{service:?},"exp":{exp},"nbf":{nbf},"iat":{nbf},"jti":"{now}-{subject}","access":[{access}]}}"#,
            iss = self.issuer,
            exp = now + 300,
            nbf = now - 10,
            access = access.join(","),
        );
        let signing_input = format!(
            "{}.{}",
            Base64UrlUnpadded::encode_string(header.as_bytes()),
            Base64UrlUnpadded::encode_string(claims.as_bytes())
        );
        let sig = self
            .key
            .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
            .expect("sign a token");
        format!(
            "{signing_input}.{}",
            Base64UrlUnpadded::encode_string(sig.as_ref())
        )
    }
}

/// One token request a [`TokenService`] answered.
#[derive(Debug, Clone)]
pub struct TokenAsked {
    /// The scopes asked for (`repository:app:pull,push`); none for a bare login.
    pub scopes: Vec<String>,
    /// The `Authorization` header sent, if any.
    pub authorization: Option<String>,
}

impl TokenAsked {
    /// Whether the request carried credentials (an `Authorization` header).
    pub fn sent_credentials(&self) -> bool {
        self.authorization.is_some()
    }
}

/// What a request without credentials is granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anonymous {
    /// A token with no access at all (the server then refuses it).
    Nothing,
    /// `pull` on the repositories named, nothing else.
    PullOf(Vec<String>),
    /// `pull` on every repository.
    PullAll,
}

/// What a [`TokenService`] grants.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    /// The service tokens are for: requests naming another get `400 Bad Request`, and the
    /// tokens' `aud`.
    pub service: String,
    /// The one login it knows, `(user, password)`: granted whatever it asks. A request with
    /// other credentials gets `401 Unauthorized`.
    pub login: (String, String),
    /// What a request without credentials is granted.
    pub anonymous: Anonymous,
}

/// A token service: a loopback HTTP server answering `GET /token?service=…&scope=…` with JWTs
/// from a [`TokenIssuer`], granting what its [`TokenPolicy`] allows, like Docker Hub:
/// - to the one login it knows, whatever is asked;
/// - to a wrong login, `401 Unauthorized`;
/// - to anyone else, what [`TokenPolicy::anonymous`] says (possibly a token with no access);
/// - for another `service`, `400 Bad Request`;
/// - on a repository denied ([`TokenService::deny`]), nothing to anyone: the token leaves
///   it out, and the registry answers `401` to a request with it.
///
/// It records every request ([`TokenService::asked`]).
pub struct TokenService {
    realm: String,
    asked: Arc<Mutex<Vec<TokenAsked>>>,
    denied: Arc<Mutex<BTreeSet<String>>>,
}

/// A [`TokenPolicy`] with the expected `Authorization` header worked out, and the
/// repositories denied now.
struct Grants {
    policy: TokenPolicy,
    basic: String,
    denied: Arc<Mutex<BTreeSet<String>>>,
}

impl TokenService {
    /// Starts the service for `service`, with `public` repositories pullable by anyone, and
    /// `login` (user, password) granted everything.
    pub fn start(
        issuer: Arc<TokenIssuer>,
        service: &str,
        public: &[&str],
        login: (&str, &str),
    ) -> Self {
        Self::start_with(
            issuer,
            TokenPolicy {
                service: service.to_owned(),
                login: (login.0.to_owned(), login.1.to_owned()),
                anonymous: Anonymous::PullOf(public.iter().map(|p| (*p).to_owned()).collect()),
            },
        )
    }

    /// Starts the service granting what `policy` allows.
    pub fn start_with(issuer: Arc<TokenIssuer>, policy: TokenPolicy) -> Self {
        use base64ct::{Base64, Encoding};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the token service");
        let realm = format!(
            "http://{}/token",
            listener.local_addr().expect("token service address")
        );
        let basic = format!(
            "Basic {}",
            Base64::encode_string(format!("{}:{}", policy.login.0, policy.login.1).as_bytes())
        );
        let denied = Arc::new(Mutex::new(BTreeSet::new()));
        let grants = Arc::new(Grants {
            policy,
            basic,
            denied: denied.clone(),
        });
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (issuer, log, grants) = (issuer.clone(), log.clone(), grants.clone());
                std::thread::spawn(move || serve_token(conn, &issuer, &grants, &log));
            }
        });
        TokenService {
            realm,
            asked,
            denied,
        }
    }

    /// From now on, grants nothing on `repository` (its path, `org/app`), to anyone.
    pub fn deny(&self, repository: &str) {
        self.denied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(repository.to_owned());
    }

    /// From now on, grants on `repository` what the policy says again.
    pub fn allow(&self, repository: &str) {
        self.denied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(repository);
    }

    /// The realm URL, `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Every request answered so far, oldest first.
    pub fn asked(&self) -> Vec<TokenAsked> {
        self.asked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The actions of `scope` (`repository:NAME:ACTIONS`) that `grants` allow; `known` when the
/// request carried the known login.
fn granted(grants: &Grants, known: bool, scope: &str) -> Option<(String, Vec<String>)> {
    let rest = scope.strip_prefix("repository:")?;
    let (name, actions) = rest.rsplit_once(':')?;
    if grants
        .denied
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(name)
    {
        return None;
    }
    let actions: Vec<String> = actions
        .split(',')
        .filter(|a| {
            known
                || (*a == "pull"
                    && match &grants.policy.anonymous {
                        Anonymous::Nothing => false,
                        Anonymous::PullOf(names) => names.iter().any(|p| p == name),
                        Anonymous::PullAll => true,
                    })
        })
        .map(str::to_owned)
        .collect();
    (!actions.is_empty()).then(|| (name.to_owned(), actions))
}

fn serve_token(
    mut conn: std::net::TcpStream,
    issuer: &TokenIssuer,
    grants: &Grants,
    log: &Mutex<Vec<TokenAsked>>,
) {
    use std::io::BufRead as _;
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = std::io::BufReader::new(read_half);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_owned());
            }
        }
    }
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let params: Vec<(String, String)> = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect();
    // A client may ask for several scopes in one parameter, separated by spaces.
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    log.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(TokenAsked {
            scopes: scopes.clone(),
            authorization: authorization.clone(),
        });
    let service_ok = params
        .iter()
        .any(|(k, v)| k == "service" && *v == grants.policy.service);
    let (status, body) = if !service_ok {
        (
            "400 Bad Request",
            r#"{"details":"unknown service"}"#.to_owned(),
        )
    } else {
        match authorization.as_deref() {
            Some(a) if a != grants.basic => (
                "401 Unauthorized",
                r#"{"details":"incorrect username or password"}"#.to_owned(),
            ),
            given => {
                let known = given.is_some();
                let access: Vec<(String, Vec<String>)> = scopes
                    .iter()
                    .filter_map(|s| granted(grants, known, s))
                    .collect();
                let access: Vec<(&str, Vec<&str>)> = access
                    .iter()
                    .map(|(n, a)| (n.as_str(), a.iter().map(String::as_str).collect()))
                    .collect();
                let access: Vec<(&str, &[&str])> =
                    access.iter().map(|(n, a)| (*n, a.as_slice())).collect();
                let subject = if known {
                    grants.policy.login.0.as_str()
                } else {
                    ""
                };
                let token = issuer.token(&grants.policy.service, subject, &access);
                (
                    "200 OK",
                    format!(r#"{{"token":"{token}","access_token":"{token}","expires_in":300}}"#),
                )
            }
        }
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Percent-decoding of a query component (`+` is a space).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
