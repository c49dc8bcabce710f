//! Notary v1 public keys, their key ids, and the certificates root keys are.
//!
//! A Notary key object is `{"keytype": T, "keyval": {"private": null, "public": B64}}` where
//! `B64` is standard base64 of:
//! - `ed25519`: the 32 raw public-key bytes;
//! - `ecdsa`, `rsa`: a DER SubjectPublicKeyInfo;
//! - `ecdsa-x509`, `rsa-x509`: a PEM X.509 certificate (the text, base64-encoded again), whose
//!   SubjectPublicKeyInfo is the key. Notary's root keys are always certificates.
//!
//! Notary's key id is the lowercase hex SHA-256 of the canonical JSON of
//! `{"keytype":T,"keyval":{"private":null,"public":B64}}`; [`NotaryKey::parse`] refuses a key
//! listed under any other id. There is no `scheme`: the signature's `method` says how it was
//! made, and [`NotaryKey::verify`] accepts only the method that fits the key type.

use base64ct::{Base64, Encoding};
use spki::der::asn1::{Ia5StringRef, PrintableStringRef, TeletexStringRef, Utf8StringRef};
use spki::der::{Decode, Encode, Tag, Tagged};
use x509_cert::ext::pkix::BasicConstraints;

use crate::crypto::{Algorithm, VerifyingKey};
use crate::json::{canonical, Map, Value};
use crate::time::Timestamp;

use super::{Method, NotaryError};

/// Most PEM blocks read from one certificate key (a leaf and its intermediates).
const MAX_CERTIFICATES: usize = 8;

/// A Notary key type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `ed25519`
    Ed25519,
    /// `ecdsa`
    Ecdsa,
    /// `ecdsa-x509`
    EcdsaX509,
    /// `rsa`
    Rsa,
    /// `rsa-x509`
    RsaX509,
}

impl KeyType {
    /// Reads a `keytype` string (exactly as Notary writes it).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "ed25519" => Self::Ed25519,
            "ecdsa" => Self::Ecdsa,
            "ecdsa-x509" => Self::EcdsaX509,
            "rsa" => Self::Rsa,
            "rsa-x509" => Self::RsaX509,
            _ => return None,
        })
    }

    /// The `keytype` string.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::Ecdsa => "ecdsa",
            Self::EcdsaX509 => "ecdsa-x509",
            Self::Rsa => "rsa",
            Self::RsaX509 => "rsa-x509",
        }
    }

    /// True for the certificate key types.
    pub fn is_certificate(self) -> bool {
        matches!(self, Self::EcdsaX509 | Self::RsaX509)
    }

    /// The signature method that fits this key type.
    pub fn method(self) -> Method {
        match self {
            Self::Ed25519 => Method::Eddsa,
            Self::Ecdsa | Self::EcdsaX509 => Method::Ecdsa,
            Self::Rsa | Self::RsaX509 => Method::RsaPss,
        }
    }
}

/// What vouch reads from a certificate key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// The subject's common name (Notary requires it to name the GUN).
    pub common_name: Option<String>,
    /// Start of the validity period.
    pub not_before: Timestamp,
    /// End of the validity period.
    pub not_after: Timestamp,
    /// True when the certificate is a CA certificate (Notary refuses those as root keys).
    pub is_ca: bool,
    /// True when the certificate is signed with a SHA-1 algorithm (Notary refuses those).
    pub sha1_signature: bool,
}

impl Certificate {
    /// Why Notary would not take this certificate as a root key for `gun` at `now`, if it
    /// would not: the common name must be the GUN (or a prefix of it ending in `*`), the
    /// certificate must not be a CA or signed with SHA-1, and, when `check_validity` is set,
    /// `now` must lie within its validity period (with Notary's one day of leeway on the
    /// start).
    pub fn problem(&self, gun: &str, now: Timestamp, check_validity: bool) -> Option<String> {
        let cn = self.common_name.as_deref().unwrap_or("");
        let matches = match cn.strip_suffix('*') {
            Some(prefix) => gun.starts_with(prefix),
            None => cn == gun,
        };
        if !matches {
            return Some(format!(
                "its certificate's common name {cn:?} does not name the GUN {gun:?}"
            ));
        }
        if self.is_ca {
            return Some("its certificate is a CA certificate, not a leaf".to_owned());
        }
        if self.sha1_signature {
            return Some("its certificate is signed with SHA-1".to_owned());
        }
        if self.not_before > self.not_after {
            return Some("its certificate's validity period is empty".to_owned());
        }
        if check_validity && (now.add_seconds(86_400) < self.not_before || now > self.not_after) {
            return Some(format!(
                "its certificate is valid from {} to {}, not at {now}",
                self.not_before, self.not_after
            ));
        }
        None
    }
}

/// A public key from Notary metadata, with its (checked) key id.
#[derive(Clone, Debug)]
pub struct NotaryKey {
    id: String,
    keytype: KeyType,
    public_b64: String,
    key: VerifyingKey,
    certificate: Option<Certificate>,
}

impl PartialEq for NotaryKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for NotaryKey {}

/// Notary's key id: hex SHA-256 of `{"keytype":T,"keyval":{"private":null,"public":B64}}`
/// in canonical form.
///
/// ```
/// use vouch_tuf::notary::key_id;
/// assert_eq!(key_id("ed25519", "AAAA").len(), 64);
/// ```
pub fn key_id(keytype: &str, public_b64: &str) -> String {
    let keyval = Map::from([
        ("private".to_owned(), Value::Null),
        ("public".to_owned(), Value::from(public_b64)),
    ]);
    let key = Map::from([
        ("keytype".to_owned(), Value::from(keytype)),
        ("keyval".to_owned(), Value::Object(keyval)),
    ]);
    let digest = ring::digest::digest(&ring::digest::SHA256, &canonical(&Value::Object(key)));
    crate::hex::encode(digest.as_ref())
}

/// The id the notary client names a key's private file by (`private/<id>.key`): the key id of
/// the bare public key (`ecdsa` and `rsa` as base64 SubjectPublicKeyInfo DER, `ed25519` as its
/// raw 32 bytes), which differs from the id of the certificate form (`ecdsa-x509`) a root or a
/// delegation lists the same key under.
///
/// ```
/// use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
/// use vouch_tuf::notary::bare_key_id;
/// let key = PrivateKey::generate(Algorithm::EcdsaP256Sha256)?;
/// assert_eq!(bare_key_id(&key.verifying_key()).len(), 64);
/// # Ok::<(), vouch_tuf::crypto::CryptoError>(())
/// ```
pub fn bare_key_id(key: &VerifyingKey) -> String {
    let keytype = match key.algorithm() {
        Algorithm::Ed25519 => "ed25519",
        Algorithm::EcdsaP256Sha256 => "ecdsa",
        Algorithm::RsaPssSha256 => "rsa",
    };
    key_id(keytype, &Base64::encode_string(key.material()))
}

impl NotaryKey {
    /// Parses the key object `value` listed under `listed_id`, refusing a key whose id is
    /// not `listed_id`, unknown key types, a non-null private part, unknown fields, and keys
    /// that do not parse for their type.
    pub fn parse(listed_id: &str, value: &Value) -> Result<Self, NotaryError> {
        let bad = |reason: String| NotaryError::BadKey {
            keyid: listed_id.chars().take(80).collect(),
            reason,
        };
        let obj = value
            .as_object()
            .ok_or_else(|| bad(format!("expected an object, found {}", value.kind())))?;
        super::metadata::only_fields(obj, &["keytype", "keyval"], "key")
            .map_err(|e| bad(e.to_string()))?;
        let keytype_name = obj
            .get("keytype")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("keytype is missing or not a string".to_owned()))?;
        let keytype = KeyType::from_name(keytype_name)
            .ok_or_else(|| bad(format!("unsupported key type {keytype_name:?}")))?;
        let keyval = obj
            .get("keyval")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("keyval is missing or not an object".to_owned()))?;
        super::metadata::only_fields(keyval, &["private", "public"], "keyval")
            .map_err(|e| bad(e.to_string()))?;
        match keyval.get("private") {
            None | Some(Value::Null) => {}
            Some(_) => return Err(bad("metadata must not carry a private key".to_owned())),
        }
        let public_b64 = keyval
            .get("public")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("keyval.public is missing or not a string".to_owned()))?;
        let computed = key_id(keytype.name(), public_b64);
        if computed != listed_id {
            return Err(NotaryError::KeyIdMismatch {
                listed: listed_id.chars().take(80).collect(),
                computed,
            });
        }
        let raw = Base64::decode_vec(public_b64)
            .map_err(|e| bad(format!("keyval.public is not base64: {e}")))?;
        let (key, certificate) = match keytype {
            KeyType::Ed25519 => (VerifyingKey::from_ed25519_bytes(&raw), None),
            KeyType::Ecdsa | KeyType::Rsa => (VerifyingKey::from_spki_der(&raw), None),
            KeyType::EcdsaX509 | KeyType::RsaX509 => {
                let (spki, cert) = parse_certificate_pem(&raw).map_err(bad)?;
                (VerifyingKey::from_spki_der(&spki), Some(cert))
            }
        };
        let key = key.map_err(|e| bad(e.to_string()))?;
        let expected = match keytype {
            KeyType::Ed25519 => Algorithm::Ed25519,
            KeyType::Ecdsa | KeyType::EcdsaX509 => Algorithm::EcdsaP256Sha256,
            KeyType::Rsa | KeyType::RsaX509 => Algorithm::RsaPssSha256,
        };
        if key.algorithm() != expected {
            return Err(bad(format!(
                "key type {} holds a {} key",
                keytype.name(),
                key.algorithm()
            )));
        }
        Ok(Self {
            id: computed,
            keytype,
            public_b64: public_b64.to_owned(),
            key,
            certificate,
        })
    }

    /// The key id (checked to be Notary's key id of this key).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key type.
    pub fn keytype(&self) -> KeyType {
        self.keytype
    }

    /// The `keyval.public` text as written.
    pub fn public_b64(&self) -> &str {
        &self.public_b64
    }

    /// The public key (for certificate keys, the certificate's).
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The certificate, for `ecdsa-x509` and `rsa-x509` keys.
    pub fn certificate(&self) -> Option<&Certificate> {
        self.certificate.as_ref()
    }

    /// Verifies a signature made with `method` over `message`: the method must fit the key
    /// type (`ecdsa` for ECDSA keys, raw `r || s`; `eddsa` for Ed25519; `rsapss` for RSA).
    pub fn verify(&self, method: &Method, message: &[u8], sig: &[u8]) -> Result<(), NotaryError> {
        if *method != self.keytype.method() {
            return Err(NotaryError::MethodMismatch {
                keyid: self.id.clone(),
                keytype: self.keytype.name(),
                method: method.name().to_owned(),
            });
        }
        let result = match self.keytype.method() {
            Method::Ecdsa => self.key.verify_ecdsa_fixed(message, sig),
            _ => self.key.verify(message, sig),
        };
        result.map_err(|_| NotaryError::BadSignature {
            keyid: self.id.clone(),
        })
    }
}

/// The one certificate of a `CERTIFICATE` PEM block (DER, with nothing after it).
fn certificate(block: &str) -> Result<x509_cert::Certificate, String> {
    let (label, der) = spki::der::Document::from_pem(block.trim())
        .map_err(|e| format!("the certificate is not valid PEM: {e}"))?;
    if label != "CERTIFICATE" {
        return Err(format!("expected a CERTIFICATE PEM block, found {label:?}"));
    }
    // `from_der` refuses trailing data after the certificate.
    x509_cert::Certificate::from_der(der.as_bytes())
        .map_err(|e| format!("not an X.509 certificate: {e}"))
}

/// Whether `cert` is a CA (its basic constraints say so). Malformed or repeated basic
/// constraints count as a CA: such a certificate is never taken as a leaf key.
fn is_ca(cert: &x509_cert::Certificate) -> bool {
    match cert.tbs_certificate.get::<BasicConstraints>() {
        Ok(Some((_, bc))) => bc.ca,
        Ok(None) => false,
        Err(_) => true,
    }
}

/// The common names of `cert`'s subject, in order; `None` for one that is not a string.
fn common_names(cert: &x509_cert::Certificate) -> Vec<Option<String>> {
    const CN: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("2.5.4.3");
    cert.tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid == CN)
        .map(|atv| {
            let v = &atv.value;
            match v.tag() {
                Tag::Utf8String => Utf8StringRef::try_from(v)
                    .ok()
                    .map(|s| s.as_str().to_owned()),
                Tag::PrintableString => PrintableStringRef::try_from(v)
                    .ok()
                    .map(|s| s.as_str().to_owned()),
                Tag::Ia5String => Ia5StringRef::try_from(v)
                    .ok()
                    .map(|s| s.as_str().to_owned()),
                Tag::TeletexString => TeletexStringRef::try_from(v)
                    .ok()
                    .map(|s| s.as_str().to_owned()),
                _ => None,
            }
        })
        .collect()
}

/// Reads the first certificate of a PEM bundle: its DER SubjectPublicKeyInfo and what Notary
/// checks of it.
fn parse_certificate_pem(pem: &[u8]) -> Result<(Vec<u8>, Certificate), String> {
    let text =
        std::str::from_utf8(pem).map_err(|_| "the certificate is not PEM text".to_owned())?;
    // Only PEM blocks and whitespace: Go's PEM decoder sees a BEGIN line only at the start
    // of a line and skips what it cannot read, so text around the blocks could make Notary
    // take another block as the key than the first one here.
    let outside = |s: &str| {
        if s.trim().is_empty() {
            Ok(())
        } else {
            Err("text outside the certificate's PEM blocks".to_owned())
        }
    };
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        if blocks.len() == MAX_CERTIFICATES {
            return Err(format!(
                "more than {MAX_CERTIFICATES} certificates in one key"
            ));
        }
        outside(&rest[..start])?;
        let after = &rest[start..];
        let end_marker = after
            .find("-----END ")
            .ok_or_else(|| "a PEM block has no END line".to_owned())?;
        let line_end = after[end_marker..]
            .find('\n')
            .map_or(after.len(), |i| end_marker + i + 1);
        blocks.push(&after[..line_end]);
        rest = &after[line_end..];
    }
    outside(rest)?;
    let first = blocks
        .first()
        .ok_or_else(|| "no PEM certificate in the key".to_owned())?;
    let cert = certificate(first)?;
    // Notary takes a bundle whose first certificate is the one leaf, the rest intermediates.
    for other in blocks.iter().skip(1) {
        if !is_ca(&certificate(other)?) {
            return Err("more than one leaf certificate in the key".to_owned());
        }
    }
    // Go keeps the last common name of a subject, and Notary checks that one: a subject with
    // several would name one GUN to vouch and another to Notary.
    let names = common_names(&cert);
    if names.len() > 1 {
        return Err("the certificate's subject has more than one common name".to_owned());
    }
    let common_name = names.into_iter().next().flatten();
    let sha1_oids = [
        "1.2.840.113549.1.1.5", // sha1WithRSAEncryption
        "1.2.840.10045.4.1",    // ecdsa-with-SHA1
        "1.2.840.10040.4.3",    // dsa-with-sha1
    ];
    let sig_oid = cert.signature_algorithm.oid.to_string();
    let tbs = &cert.tbs_certificate;
    let unix = |t: x509_cert::time::Time| {
        i64::try_from(t.to_unix_duration().as_secs()).map_err(|_| "a validity time out of range")
    };
    let info = Certificate {
        common_name,
        not_before: Timestamp::from_unix(unix(tbs.validity.not_before)?),
        not_after: Timestamp::from_unix(unix(tbs.validity.not_after)?),
        is_ca: is_ca(&cert),
        sha1_signature: sha1_oids.contains(&sig_oid.as_str()),
    };
    let spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|e| format!("the certificate's public key does not encode: {e}"))?;
    Ok((spki, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_is_the_hash_of_notarys_canonical_key_object() {
        let expected = ring::digest::digest(
            &ring::digest::SHA256,
            br#"{"keytype":"ecdsa","keyval":{"private":null,"public":"QUJD"}}"#,
        );
        assert_eq!(
            key_id("ecdsa", "QUJD"),
            crate::hex::encode(expected.as_ref())
        );
    }

    #[test]
    fn certificate_problems_follow_notary() {
        let t = |s| Timestamp::parse(s).unwrap();
        let cert = Certificate {
            common_name: Some("example.com/app".into()),
            not_before: t("2026-01-01T00:00:00Z"),
            not_after: t("2036-01-01T00:00:00Z"),
            is_ca: false,
            sha1_signature: false,
        };
        let now = t("2027-01-01T00:00:00Z");
        assert_eq!(cert.problem("example.com/app", now, true), None);
        assert!(cert.problem("example.com/other", now, true).is_some());
        assert!(cert
            .problem("example.com/app", t("2037-01-01T00:00:00Z"), true)
            .unwrap()
            .contains("valid from"));
        assert_eq!(
            cert.problem("example.com/app", t("2037-01-01T00:00:00Z"), false),
            None
        );
        // One day of leeway before the start.
        assert_eq!(
            cert.problem("example.com/app", t("2025-12-31T01:00:00Z"), true),
            None
        );
        let wild = Certificate {
            common_name: Some("example.com/*".into()),
            ..cert.clone()
        };
        assert_eq!(wild.problem("example.com/app", now, true), None);
        let ca = Certificate {
            is_ca: true,
            ..cert
        };
        assert!(ca.problem("example.com/app", now, true).is_some());
    }
}
