//! Registry-format bearer tokens: the JSON Web Tokens that a Docker registry's token server
//! issues, checked so that one auth server can front both the registry and vouch.
//!
//! This module is sans-IO: it takes the token text, the configured public keys and the current
//! time, and returns the verified claims or why they were refused. [`crate::auth`] decides
//! what the claims allow.
//!
//! What is checked, in order:
//! - the token is three base64url parts and at most [`MAX_TOKEN_BYTES`] long;
//! - the header's `alg` is `ES256`, `RS256` or `EdDSA` (`none` and anything else are refused,
//!   so a token can never choose to be unsigned, nor pick an algorithm the key was not made
//!   for); the signature verifies under one configured key of that algorithm (all keys are
//!   tried, or only those whose `kid` matches the header's `kid` when one does, so that old
//!   and new keys can be configured together during a rollover);
//! - `iss` equals the configured issuer, `aud` (a string or an array) contains the
//!   configured service, `exp` is present and not past, `nbf` (if present) is not in the
//!   future, both with a small leeway for clock skew;
//! - `access` is a list of `{"type","name","actions"}` grants (missing means none).

use serde::Deserialize;
use spki::ObjectIdentifier;

/// Tokens longer than this are refused before they are decoded.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// A signature algorithm a token may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// ECDSA P-256 with SHA-256, signature `r || s` (64 bytes).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048 to 8192-bit keys.
    Rs256,
    /// Ed25519.
    EdDsa,
}

impl Alg {
    fn verification(self) -> &'static dyn ring::signature::VerificationAlgorithm {
        match self {
            Alg::Es256 => &ring::signature::ECDSA_P256_SHA256_FIXED,
            Alg::Rs256 => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            Alg::EdDsa => &ring::signature::ED25519,
        }
    }
}

/// One public key tokens may be signed with.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenKey {
    /// The `kid` tokens signed with it carry, if known.
    pub kid: Option<String>,
    /// The algorithm its type implies.
    pub alg: Alg,
    /// What ring verifies with: the EC point, the PKCS#1 RSA public key, or the Ed25519 key.
    material: Vec<u8>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl TokenKey {
    /// Parses a `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo) PEM holding a P-256,
    /// RSA or Ed25519 public key.
    pub fn from_pem(pem: &str, kid: Option<String>) -> Result<Self, String> {
        let (label, der) = spki::der::pem::decode_vec(pem.trim().as_bytes())
            .map_err(|e| format!("not a PEM public key: {e}"))?;
        if label != "PUBLIC KEY" {
            return Err(format!(
                "expected a \"PUBLIC KEY\" PEM block, found {label:?}"
            ));
        }
        Self::from_spki_der(&der, kid)
    }

    /// Parses a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8], kid: Option<String>) -> Result<Self, String> {
        let spki = spki::SubjectPublicKeyInfoRef::try_from(der)
            .map_err(|e| format!("malformed SubjectPublicKeyInfo: {e}"))?;
        let material = spki
            .subject_public_key
            .as_bytes()
            .ok_or("public key bit string has unused bits")?
            .to_vec();
        let alg = match spki.algorithm.oid {
            OID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters_oid()
                    .map_err(|_| "EC key without a named curve".to_owned())?;
                if curve != OID_P256 {
                    return Err(format!("EC curve {curve} is not P-256"));
                }
                Alg::Es256
            }
            OID_RSA => Alg::Rs256,
            OID_ED25519 => Alg::EdDsa,
            other => return Err(format!("unsupported public key algorithm {other}")),
        };
        Ok(TokenKey { kid, alg, material })
    }
}

/// What a token must be to be accepted.
#[derive(Clone, Debug)]
pub struct TokenPolicy {
    /// Required `iss`.
    pub issuer: String,
    /// Required member of `aud` (the configured service).
    pub audience: String,
    /// Allowed clock skew for `exp` and `nbf`, in seconds.
    pub leeway_seconds: i64,
    /// Keys tokens may be signed with.
    pub keys: Vec<TokenKey>,
}

/// One grant of the `access` claim.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Access {
    /// `repository` (or `registry` for the catalog).
    #[serde(rename = "type")]
    pub kind: String,
    /// The repository name (GUN) or `catalog`.
    pub name: String,
    /// Granted actions: `pull`, `push`, `delete`, `*`.
    #[serde(default)]
    pub actions: Vec<String>,
}

/// The verified claims vouch uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    /// `sub`, for logs (empty when absent).
    pub subject: String,
    /// The grants.
    pub access: Vec<Access>,
    /// The last Unix second the token is accepted at (`exp` plus the leeway): what a
    /// long-lived response authorised by it (an event stream) must end by.
    pub valid_until: i64,
}

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts of JSON, or too long.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` is `none`.
    #[error("unsigned tokens (alg \"none\") are not accepted")]
    AlgNone,
    /// `alg` is not ES256, RS256 or EdDSA, or no key of that algorithm is configured.
    #[error("token algorithm {0:?} is not accepted")]
    UnsupportedAlg(String),
    /// No configured key verifies the signature.
    #[error("token signature does not verify")]
    BadSignature,
    /// `iss` is not the configured issuer.
    #[error("token issuer is not the configured issuer")]
    WrongIssuer,
    /// `aud` does not contain the configured service.
    #[error("token audience does not include this service")]
    WrongAudience,
    /// `exp` is past (or absent).
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token is not valid yet")]
    NotYetValid,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    nbf: Option<f64>,
    #[serde(default)]
    access: Option<Vec<Access>>,
}

fn b64(part: &str) -> Result<Vec<u8>, TokenError> {
    use base64ct::Encoding;
    base64ct::Base64UrlUnpadded::decode_vec(part)
        .map_err(|_| TokenError::Malformed("bad base64url"))
}

/// Whether `token` has the shape of a JWT (three dot-separated parts), as opposed to a static
/// API token.
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// Verifies `token` against `policy` at unix time `now`.
pub fn verify(token: &str, policy: &TokenPolicy, now: i64) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed("too long"));
    }
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("expected three dot-separated parts"));
    };
    let header: Header = serde_json::from_slice(&b64(h64)?)
        .map_err(|_| TokenError::Malformed("header is not a JSON object with \"alg\""))?;
    let alg = match header.alg.as_str() {
        "ES256" => Alg::Es256,
        "RS256" => Alg::Rs256,
        "EdDSA" => Alg::EdDsa,
        a if a.eq_ignore_ascii_case("none") => return Err(TokenError::AlgNone),
        other => return Err(TokenError::UnsupportedAlg(other.to_owned())),
    };
    let mut candidates: Vec<&TokenKey> = policy.keys.iter().filter(|k| k.alg == alg).collect();
    if candidates.is_empty() {
        return Err(TokenError::UnsupportedAlg(header.alg));
    }
    if let Some(kid) = &header.kid {
        if candidates.iter().any(|k| k.kid.as_ref() == Some(kid)) {
            candidates.retain(|k| k.kid.as_ref() == Some(kid));
        }
    }
    let signature = b64(s64)?;
    let signed = &token.as_bytes()[..h64.len() + 1 + p64.len()];
    let verified = candidates.iter().any(|k| {
        ring::signature::UnparsedPublicKey::new(alg.verification(), &k.material)
            .verify(signed, &signature)
            .is_ok()
    });
    if !verified {
        return Err(TokenError::BadSignature);
    }
    let claims: RawClaims = serde_json::from_slice(&b64(p64)?)
        .map_err(|_| TokenError::Malformed("claims are not a JSON object of the expected shape"))?;
    if claims.iss.as_deref() != Some(policy.issuer.as_str()) {
        return Err(TokenError::WrongIssuer);
    }
    let audience_ok = match &claims.aud {
        Some(Audience::One(a)) => *a == policy.audience,
        Some(Audience::Many(v)) => v.contains(&policy.audience),
        None => false,
    };
    if !audience_ok {
        return Err(TokenError::WrongAudience);
    }
    let now = now as f64;
    let leeway = policy.leeway_seconds as f64;
    match claims.exp {
        Some(exp) if now <= exp + leeway => {}
        _ => return Err(TokenError::Expired),
    }
    if let Some(nbf) = claims.nbf {
        if now + leeway < nbf {
            return Err(TokenError::NotYetValid);
        }
    }
    let valid_until = claims.exp.map_or(0.0, |exp| (exp + leeway).floor()) as i64;
    Ok(Claims {
        subject: claims.sub.unwrap_or_default(),
        access: claims.access.unwrap_or_default(),
        valid_until,
    })
}

#[cfg(test)]
pub(crate) mod testing {
    //! Minting tokens with keys made in the test.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use base64ct::Encoding;
    use ring::rand::SystemRandom;
    use ring::signature::{self, KeyPair};

    /// A key that signs tokens, with its public key as config would hold it.
    pub enum TestSigner {
        Es256(signature::EcdsaKeyPair),
        Ed(signature::Ed25519KeyPair),
        Rs(signature::RsaKeyPair),
    }

    const P256_SPKI_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
    const ED25519_SPKI_PREFIX: &str = "302a300506032b6570032100";

    impl TestSigner {
        pub fn es256() -> Self {
            let rng = SystemRandom::new();
            let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
            let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
            TestSigner::Es256(
                signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap(),
            )
        }

        pub fn ed25519() -> Self {
            let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
            TestSigner::Ed(signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
        }

        /// The checked-in, test-only RSA key (ring cannot generate RSA keys).
        pub fn rs256() -> Self {
            let pem = include_str!("../tests/data/jwt/rsa-test-only.pem");
            let (_, der) = spki::der::pem::decode_vec(pem.as_bytes()).unwrap();
            TestSigner::Rs(signature::RsaKeyPair::from_pkcs8(&der).unwrap())
        }

        pub fn alg(&self) -> &'static str {
            match self {
                TestSigner::Es256(_) => "ES256",
                TestSigner::Ed(_) => "EdDSA",
                TestSigner::Rs(_) => "RS256",
            }
        }

        /// The SubjectPublicKeyInfo PEM of the public key.
        pub fn public_pem(&self) -> String {
            let der = match self {
                TestSigner::Es256(k) => {
                    let mut d = vouch_tuf::hex::decode(P256_SPKI_PREFIX).unwrap();
                    d.extend_from_slice(k.public_key().as_ref());
                    d
                }
                TestSigner::Ed(k) => {
                    let mut d = vouch_tuf::hex::decode(ED25519_SPKI_PREFIX).unwrap();
                    d.extend_from_slice(k.public_key().as_ref());
                    d
                }
                TestSigner::Rs(_) => {
                    return include_str!("../tests/data/jwt/rsa-test-only.pub.pem").to_owned()
                }
            };
            spki::der::pem::encode_string("PUBLIC KEY", spki::der::pem::LineEnding::LF, &der)
                .unwrap()
        }

        fn sign(&self, msg: &[u8]) -> Vec<u8> {
            let rng = SystemRandom::new();
            match self {
                TestSigner::Es256(k) => k.sign(&rng, msg).unwrap().as_ref().to_vec(),
                TestSigner::Ed(k) => k.sign(msg).as_ref().to_vec(),
                TestSigner::Rs(k) => {
                    let mut sig = vec![0; k.public().modulus_len()];
                    k.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                        .unwrap();
                    sig
                }
            }
        }

        /// A token with this header `alg` (normally [`Self::alg`]) and these claims.
        pub fn mint_with_alg(&self, alg: &str, claims: &serde_json::Value) -> String {
            let header = serde_json::json!({"alg": alg, "typ": "JWT", "kid": "test"});
            let h = base64ct::Base64UrlUnpadded::encode_string(header.to_string().as_bytes());
            let p = base64ct::Base64UrlUnpadded::encode_string(claims.to_string().as_bytes());
            let input = format!("{h}.{p}");
            let s = base64ct::Base64UrlUnpadded::encode_string(&self.sign(input.as_bytes()));
            format!("{input}.{s}")
        }

        pub fn mint(&self, claims: &serde_json::Value) -> String {
            self.mint_with_alg(self.alg(), claims)
        }
    }

    /// Standard claims: issuer `https://auth.example.com`, audience `vouch.example.com`,
    /// valid from `now - 10` to `now + 300`, with `access`.
    pub fn claims(now: i64, access: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "iss": "https://auth.example.com",
            "sub": "ci-bot",
            "aud": "vouch.example.com",
            "iat": now - 10,
            "nbf": now - 10,
            "exp": now + 300,
            "jti": "abc",
            "access": access,
        })
    }
}

#[cfg(test)]
mod tests;
