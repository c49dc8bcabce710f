//! Public keys: parsing TUF `keyval.public` strings and verifying signatures.
//!
//! A [`VerifyingKey`] is validated once when it is built (hex length and curve point for
//! Ed25519; PEM label, algorithm identifiers, point format and RSA modulus size for the SPKI
//! keys) and keeps a canonical byte form of the key, so two spellings of one public key
//! (upper- and lower-case hex, differently wrapped PEM, RSA parameters absent or `NULL`)
//! compare equal and are counted once by threshold checks.

use std::fmt;
use std::hash::{Hash, Hasher};

use ring::signature::{
    UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED, RSA_PSS_2048_8192_SHA256,
};
use spki::der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, UintRef};
use spki::der::pem::LineEnding;
use spki::der::{Decode, Document, Encode, Reader, SliceReader};
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};

use super::{Algorithm, CryptoError};

/// `id-ecPublicKey` (RFC 5480).
pub(super) const ID_EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1`, also called `prime256v1` or NIST P-256 (RFC 5480).
pub(super) const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// `rsaEncryption` (RFC 8017).
pub(super) const RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The PEM label of a SubjectPublicKeyInfo.
const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";
/// Length of an uncompressed SEC1 point on P-256: `0x04 || x || y`.
const P256_POINT_LEN: usize = 65;
/// RSA modulus sizes ring verifies with `RSA_PSS_2048_8192_SHA256`.
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

/// A parsed public key ready to verify signatures (parse once, verify many).
///
/// Two keys are equal when they have the same algorithm and the same key material, whatever
/// text they were parsed from; see [`VerifyingKey::material`].
///
/// ```
/// use vouch_tuf::crypto::VerifyingKey;
///
/// let hex = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";
/// let lower = VerifyingKey::from_tuf("ed25519", "ed25519", hex)?;
/// let upper = VerifyingKey::from_tuf("ed25519", "ed25519", &hex.to_uppercase())?;
/// assert_eq!(lower, upper);
/// assert_eq!(upper.to_tuf_public(), hex);
/// # Ok::<(), vouch_tuf::crypto::CryptoError>(())
/// ```
#[derive(Clone)]
pub struct VerifyingKey {
    algorithm: Algorithm,
    /// Canonical identity: the raw 32 bytes for Ed25519, the DER SubjectPublicKeyInfo
    /// (re-encoded by us) for ECDSA and RSA.
    material: Vec<u8>,
    /// The `keyval.public` string vouch writes for this key.
    tuf_public: String,
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Ed25519(ed25519_dalek::VerifyingKey),
    /// The uncompressed SEC1 point, as ring takes it.
    EcdsaP256(Vec<u8>),
    /// The DER `RSAPublicKey` (modulus and exponent), as ring takes it.
    Rsa(Vec<u8>),
}

impl VerifyingKey {
    /// Parses the `keyval.public` string of a TUF key object with the given `keytype` and
    /// `scheme`.
    ///
    /// - `ed25519`: 64 hex digits (either case) encoding a valid curve point.
    /// - `ecdsa-sha2-nistp256`: a `PUBLIC KEY` PEM (SubjectPublicKeyInfo) with the
    ///   `id-ecPublicKey` algorithm, the P-256 curve and an uncompressed point. A point that is
    ///   not on the curve is not detected here; every signature check with it fails.
    /// - `rsassa-pss-sha256`: a `PUBLIC KEY` PEM with the `rsaEncryption` algorithm, a modulus
    ///   of 2048 to 8192 bits and an odd public exponent of at least 3.
    ///
    /// Whitespace around the PEM block is ignored.
    pub fn from_tuf(keytype: &str, scheme: &str, public: &str) -> Result<Self, CryptoError> {
        match Algorithm::from_tuf(keytype, scheme)? {
            Algorithm::Ed25519 => parse_ed25519_hex(public),
            Algorithm::EcdsaP256Sha256 => parse_ecdsa_p256_pem(public),
            Algorithm::RsaPssSha256 => parse_rsa_pem(public),
        }
    }

    /// Parses a DER SubjectPublicKeyInfo holding a P-256 EC key or an RSA key, telling the
    /// two apart by the algorithm identifier; the checks are those of [`VerifyingKey::from_tuf`]
    /// for the same key in PEM form. This is the form Notary v1 metadata carries (base64 of
    /// the DER) and the one inside an X.509 certificate.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, CryptoError> {
        let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(|e| {
            CryptoError::MalformedPublicKey {
                reason: format!("not a SubjectPublicKeyInfo: {e}"),
            }
        })?;
        if spki.algorithm.oid == RSA_ENCRYPTION {
            rsa_from_spki(spki)
        } else {
            ecdsa_p256_from_spki(spki)
        }
    }

    /// Builds an Ed25519 key from its 32 raw bytes, refusing other lengths and invalid curve
    /// points.
    pub fn from_ed25519_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        ed25519_from_bytes(bytes, "")
    }

    /// Verifies an ECDSA P-256 SHA-256 signature in the fixed-width form `r || s` (32 bytes
    /// each, 64 in all), the form Notary v1 writes, rather than the ASN.1 DER form TUF 1.0
    /// uses. Any other key, and any failure, is [`CryptoError::BadSignature`].
    pub fn verify_ecdsa_fixed(&self, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        match &self.inner {
            Inner::EcdsaP256(point) => UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(message, signature)
                .map_err(|_| CryptoError::BadSignature),
            _ => Err(CryptoError::BadSignature),
        }
    }

    /// The algorithm (TUF scheme) of this key.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The `keyval.public` string vouch writes for this key: lowercase hex for Ed25519; for
    /// ECDSA and RSA a SubjectPublicKeyInfo PEM with 64-character lines and a trailing newline,
    /// as python's `cryptography` writes it.
    pub fn to_tuf_public(&self) -> String {
        self.tuf_public.clone()
    }

    /// Verifies `signature` over `message`.
    ///
    /// - Ed25519: strict verification (RFC 8032 with canonical `S`, and small-order public
    ///   keys and `R` values rejected), so a signature has exactly one accepted encoding.
    /// - ECDSA P-256: SHA-256 and an ASN.1 DER signature.
    /// - RSA-PSS: SHA-256, MGF1-SHA-256 and a salt as long as the digest (32 bytes).
    ///
    /// Any failure is [`CryptoError::BadSignature`].
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        match &self.inner {
            Inner::Ed25519(key) => {
                let signature = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| CryptoError::BadSignature)?;
                key.verify_strict(message, &signature)
                    .map_err(|_| CryptoError::BadSignature)
            }
            Inner::EcdsaP256(point) => UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
                .verify(message, signature)
                .map_err(|_| CryptoError::BadSignature),
            Inner::Rsa(key) => UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, key)
                .verify(message, signature)
                .map_err(|_| CryptoError::BadSignature),
        }
    }

    /// A stable byte identity of the key material: the raw 32 bytes for Ed25519, the DER
    /// SubjectPublicKeyInfo for ECDSA and RSA. Used to count one public key once even when it
    /// is listed under several key ids.
    pub fn material(&self) -> &[u8] {
        &self.material
    }

    /// Builds an Ed25519 key from its 32 raw bytes.
    pub(super) fn ed25519(key: ed25519_dalek::VerifyingKey) -> Self {
        let material = key.to_bytes().to_vec();
        Self {
            algorithm: Algorithm::Ed25519,
            tuf_public: crate::hex::encode(&material),
            material,
            inner: Inner::Ed25519(key),
        }
    }

    /// Builds an ECDSA P-256 key from an uncompressed SEC1 point.
    pub(super) fn ecdsa_p256(point: &[u8]) -> Result<Self, CryptoError> {
        let malformed = |reason: String| CryptoError::MalformedPublicKey {
            reason: format!("{}: {reason}", Algorithm::EcdsaP256Sha256),
        };
        match point.first() {
            Some(0x04) if point.len() == P256_POINT_LEN => {}
            Some(0x02 | 0x03) => {
                return Err(malformed(
                    "compressed curve points are not supported".to_owned(),
                ))
            }
            _ => {
                return Err(malformed(format!(
                    "expected a {P256_POINT_LEN}-byte uncompressed curve point, found {} bytes",
                    point.len()
                )))
            }
        }
        let parameters = AnyRef::from(&SECP256R1);
        let material = encode_spki(ID_EC_PUBLIC_KEY, parameters, point)
            .map_err(|e| malformed(format!("cannot encode the key: {e}")))?;
        Self::with_spki(
            Algorithm::EcdsaP256Sha256,
            material,
            Inner::EcdsaP256(point.to_vec()),
        )
    }

    fn with_spki(
        algorithm: Algorithm,
        material: Vec<u8>,
        inner: Inner,
    ) -> Result<Self, CryptoError> {
        let tuf_public = spki::der::pem::encode_string(PUBLIC_KEY_LABEL, LineEnding::LF, &material)
            .map_err(|e| CryptoError::MalformedPublicKey {
                reason: format!("{algorithm}: cannot encode the key as PEM: {e}"),
            })?;
        Ok(Self {
            algorithm,
            material,
            tuf_public,
            inner,
        })
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && self.material == other.material
    }
}

impl Eq for VerifyingKey {}

impl Hash for VerifyingKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.algorithm.hash(state);
        self.material.hash(state);
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("algorithm", &self.algorithm)
            .field("public", &self.tuf_public)
            .finish()
    }
}

fn parse_ed25519_hex(public: &str) -> Result<VerifyingKey, CryptoError> {
    let malformed = |reason: String| CryptoError::MalformedPublicKey {
        reason: format!("{}: {reason}", Algorithm::Ed25519),
    };
    let bytes = crate::hex::decode(public).map_err(|e| malformed(format!("not hex: {e}")))?;
    ed25519_from_bytes(&bytes, " (64 hex digits)")
}

/// An Ed25519 key from its raw 32 bytes; `spelled` says how the length reads in the input's
/// own encoding, for the error (` (64 hex digits)`, or nothing for raw bytes).
fn ed25519_from_bytes(bytes: &[u8], spelled: &str) -> Result<VerifyingKey, CryptoError> {
    let malformed = |reason: String| CryptoError::MalformedPublicKey {
        reason: format!("{}: {reason}", Algorithm::Ed25519),
    };
    let array: [u8; ed25519_dalek::PUBLIC_KEY_LENGTH] = bytes.try_into().map_err(|_| {
        malformed(format!(
            "expected {} bytes{spelled}, found {} bytes",
            ed25519_dalek::PUBLIC_KEY_LENGTH,
            bytes.len()
        ))
    })?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&array)
        .map_err(|_| malformed("not a valid curve point".to_owned()))?;
    Ok(VerifyingKey::ed25519(key))
}

/// Decodes a `PUBLIC KEY` PEM into its DER bytes.
fn decode_spki_pem(algorithm: Algorithm, public: &str) -> Result<Document, CryptoError> {
    let rewrapped = rewrap_pem(public);
    let text = rewrapped.as_deref().unwrap_or(public.trim());
    let (label, document) =
        Document::from_pem(text).map_err(|e| CryptoError::MalformedPublicKey {
            reason: format!("{algorithm}: not a PEM document: {e}"),
        })?;
    if label != PUBLIC_KEY_LABEL {
        return Err(CryptoError::MalformedPublicKey {
            reason: format!(
                "{algorithm}: expected a {PUBLIC_KEY_LABEL:?} PEM block, found {label:?}"
            ),
        });
    }
    Ok(document)
}

/// Base64 characters per line in the PEM form the decoder accepts (RFC 7468 strict).
const PEM_LINE_WIDTH: usize = 64;

/// Re-wraps the base64 body of a single PEM block to 64-character lines with `\n` endings,
/// so keys written with other line widths (or on one line) parse too. The DER inside is what
/// identifies a key, so accepting more spellings of the same bytes changes nothing else.
/// Returns `None` when the text is not shaped like one PEM block without headers; the strict
/// decoder then reports what is wrong.
fn rewrap_pem(text: &str) -> Option<String> {
    let mut lines = text.trim().lines().map(str::trim);
    let begin = lines.next().filter(|l| l.starts_with("-----BEGIN "))?;
    let mut body = String::new();
    let mut end = None;
    for line in lines {
        if end.is_some() {
            return None;
        }
        if line.starts_with("-----END ") {
            end = Some(line);
        } else if line.contains(':') {
            return None;
        } else {
            body.push_str(line);
        }
    }
    let end = end?;
    if body.is_empty() || !body.is_ascii() {
        return None;
    }
    let mut out = String::with_capacity(body.len() + body.len() / PEM_LINE_WIDTH + 80);
    out.push_str(begin);
    out.push('\n');
    for chunk in body.as_bytes().chunks(PEM_LINE_WIDTH) {
        out.push_str(std::str::from_utf8(chunk).ok()?);
        out.push('\n');
    }
    out.push_str(end);
    out.push('\n');
    Some(out)
}

fn parse_ecdsa_p256_pem(public: &str) -> Result<VerifyingKey, CryptoError> {
    let document = decode_spki_pem(Algorithm::EcdsaP256Sha256, public)?;
    let spki = SubjectPublicKeyInfoRef::from_der(document.as_bytes()).map_err(|e| {
        CryptoError::MalformedPublicKey {
            reason: format!(
                "{}: not a SubjectPublicKeyInfo: {e}",
                Algorithm::EcdsaP256Sha256
            ),
        }
    })?;
    ecdsa_p256_from_spki(spki)
}

fn ecdsa_p256_from_spki(spki: SubjectPublicKeyInfoRef<'_>) -> Result<VerifyingKey, CryptoError> {
    let algorithm = Algorithm::EcdsaP256Sha256;
    let malformed = |reason: String| CryptoError::MalformedPublicKey {
        reason: format!("{algorithm}: {reason}"),
    };
    if spki.algorithm.oid != ID_EC_PUBLIC_KEY {
        return Err(malformed(format!(
            "expected the id-ecPublicKey algorithm ({ID_EC_PUBLIC_KEY}), found {}",
            spki.algorithm.oid
        )));
    }
    let curve = spki
        .algorithm
        .parameters_oid()
        .map_err(|e| malformed(format!("missing or malformed curve identifier: {e}")))?;
    if curve != SECP256R1 {
        return Err(malformed(format!(
            "expected the P-256 curve ({SECP256R1}), found {curve}"
        )));
    }
    let point = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| malformed("the public key bit string is not whole bytes".to_owned()))?;
    VerifyingKey::ecdsa_p256(point)
}

fn parse_rsa_pem(public: &str) -> Result<VerifyingKey, CryptoError> {
    let document = decode_spki_pem(Algorithm::RsaPssSha256, public)?;
    let spki = SubjectPublicKeyInfoRef::from_der(document.as_bytes()).map_err(|e| {
        CryptoError::MalformedPublicKey {
            reason: format!(
                "{}: not a SubjectPublicKeyInfo: {e}",
                Algorithm::RsaPssSha256
            ),
        }
    })?;
    rsa_from_spki(spki)
}

fn rsa_from_spki(spki: SubjectPublicKeyInfoRef<'_>) -> Result<VerifyingKey, CryptoError> {
    let algorithm = Algorithm::RsaPssSha256;
    let malformed = |reason: String| CryptoError::MalformedPublicKey {
        reason: format!("{algorithm}: {reason}"),
    };
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return Err(malformed(format!(
            "expected the rsaEncryption algorithm ({RSA_ENCRYPTION}), found {}",
            spki.algorithm.oid
        )));
    }
    if !spki.algorithm.parameters.is_none_or(AnyRef::is_null) {
        return Err(malformed(
            "rsaEncryption parameters must be NULL or absent".to_owned(),
        ));
    }
    let rsa_public_key = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| malformed("the public key bit string is not whole bytes".to_owned()))?;
    let (modulus, exponent) = decode_rsa_public_key(rsa_public_key)
        .map_err(|e| malformed(format!("not an RSAPublicKey: {e}")))?;

    let bits = bit_length(modulus.as_bytes());
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(malformed(format!(
            "the modulus has {bits} bits; {RSA_MIN_BITS} to {RSA_MAX_BITS} bits are supported"
        )));
    }
    let exponent = exponent.as_bytes();
    // ring accepts odd exponents from 3 to 2^33 - 1.
    let exponent_ok = bit_length(exponent) <= 33
        && exponent.last().is_some_and(|last| last & 1 == 1)
        && bit_length(exponent) >= 2;
    if !exponent_ok {
        return Err(malformed(
            "the public exponent must be odd, at least 3 and below 2^33".to_owned(),
        ));
    }

    let material = encode_spki(RSA_ENCRYPTION, AnyRef::NULL, rsa_public_key)
        .map_err(|e| malformed(format!("cannot encode the key: {e}")))?;
    VerifyingKey::with_spki(algorithm, material, Inner::Rsa(rsa_public_key.to_vec()))
}

/// Decodes `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017),
/// rejecting trailing data and negative numbers.
fn decode_rsa_public_key(der: &[u8]) -> spki::der::Result<(UintRef<'_>, UintRef<'_>)> {
    let mut reader = SliceReader::new(der)?;
    let pair = reader.sequence(|seq| Ok((UintRef::decode(seq)?, UintRef::decode(seq)?)))?;
    reader.finish(pair)
}

/// Number of significant bits in a big-endian unsigned integer.
fn bit_length(be: &[u8]) -> usize {
    let mut rest = be;
    while let [0, tail @ ..] = rest {
        rest = tail;
    }
    match rest.first() {
        None => 0,
        Some(first) => rest.len() * 8 - first.leading_zeros() as usize,
    }
}

/// DER-encodes a SubjectPublicKeyInfo.
fn encode_spki(
    oid: ObjectIdentifier,
    parameters: AnyRef<'_>,
    key: &[u8],
) -> spki::der::Result<Vec<u8>> {
    SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef {
            oid,
            parameters: Some(parameters),
        },
        subject_public_key: BitStringRef::from_bytes(key)?,
    }
    .to_der()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = include_bytes!("testdata/message.txt");
    const RSA_PUBLIC: &str = include_str!("testdata/rsa_pss_sha256.pub.pem");
    const RSA_SIGNATURE: &str = include_str!("testdata/rsa_pss_sha256.sig.hex");

    fn unhex(s: &str) -> Vec<u8> {
        crate::hex::decode(s.trim()).unwrap()
    }

    fn rsa_key() -> VerifyingKey {
        VerifyingKey::from_tuf("rsa", "rsassa-pss-sha256", RSA_PUBLIC).unwrap()
    }

    #[test]
    fn rsa_pss_vector_from_python_verifies() {
        let key = rsa_key();
        assert_eq!(key.algorithm(), Algorithm::RsaPssSha256);
        assert_eq!(key.verify(MESSAGE, &unhex(RSA_SIGNATURE)), Ok(()));
    }

    #[test]
    fn rsa_pss_rejects_tampering() {
        let key = rsa_key();
        let signature = unhex(RSA_SIGNATURE);

        let mut message = MESSAGE.to_vec();
        message[3] ^= 0x01;
        assert_eq!(
            key.verify(&message, &signature),
            Err(CryptoError::BadSignature)
        );

        let mut bad = signature.clone();
        bad[100] ^= 0x80;
        assert_eq!(key.verify(MESSAGE, &bad), Err(CryptoError::BadSignature));
        assert_eq!(
            key.verify(MESSAGE, &signature[1..]),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn spki_public_keys_are_written_as_python_writes_them() {
        assert_eq!(rsa_key().to_tuf_public(), RSA_PUBLIC);
        let ecdsa = include_str!("testdata/py_ecdsa_p256.pub.pem");
        let key = VerifyingKey::from_tuf("ecdsa", "ecdsa-sha2-nistp256", ecdsa).unwrap();
        assert_eq!(key.to_tuf_public(), ecdsa);
        assert!(key.to_tuf_public().ends_with("-----END PUBLIC KEY-----\n"));
    }

    #[test]
    fn ecdsa_signature_from_python_verifies() {
        let public = include_str!("testdata/py_ecdsa_p256.pub.pem");
        let signature = unhex(include_str!("testdata/py_ecdsa_p256.sig.hex"));
        let key = VerifyingKey::from_tuf("ecdsa", "ecdsa-sha2-nistp256", public).unwrap();
        assert_eq!(key.verify(MESSAGE, &signature), Ok(()));
        assert_eq!(
            key.verify(b"another message", &signature),
            Err(CryptoError::BadSignature)
        );
        // The legacy keytype names the same key.
        let legacy =
            VerifyingKey::from_tuf("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256", public).unwrap();
        assert_eq!(legacy, key);
        assert_eq!(legacy.algorithm().keytype(), "ecdsa");
    }

    #[test]
    fn ed25519_signature_from_python_verifies() {
        let public = include_str!("testdata/py_ed25519.pub.hex").trim();
        let signature = unhex(include_str!("testdata/py_ed25519.sig.hex"));
        let key = VerifyingKey::from_tuf("ed25519", "ed25519", public).unwrap();
        assert_eq!(key.verify(MESSAGE, &signature), Ok(()));
        assert_eq!(
            key.verify(MESSAGE, &signature[..63]),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn pem_spelling_does_not_change_identity() {
        let canonical = rsa_key();
        let body: String = RSA_PUBLIC
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        let wrapped = |width: usize| {
            let lines: Vec<&str> = body
                .as_bytes()
                .chunks(width)
                .map(|chunk| std::str::from_utf8(chunk).unwrap())
                .collect();
            format!(
                "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                lines.join("\n")
            )
        };
        let spellings = [
            RSA_PUBLIC.replace('\n', "\r\n"),
            format!("\n  {}  \n\n", RSA_PUBLIC.trim_end()),
            RSA_PUBLIC.trim_end().to_owned(),
            wrapped(76),
            wrapped(body.len()),
        ];
        for text in spellings {
            let key = VerifyingKey::from_tuf("rsa", "rsassa-pss-sha256", &text)
                .unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(key, canonical);
            assert_eq!(key.material(), canonical.material());
            assert_eq!(key.to_tuf_public(), RSA_PUBLIC);
        }
    }

    #[test]
    fn rsa_null_and_absent_parameters_are_the_same_key() {
        let canonical = rsa_key();
        let spki = SubjectPublicKeyInfoRef::from_der(canonical.material()).unwrap();
        let without_params = SubjectPublicKeyInfoRef {
            algorithm: AlgorithmIdentifierRef {
                oid: RSA_ENCRYPTION,
                parameters: None,
            },
            subject_public_key: spki.subject_public_key,
        }
        .to_der()
        .unwrap();
        let pem = spki::der::pem::encode_string(PUBLIC_KEY_LABEL, LineEnding::LF, &without_params)
            .unwrap();
        assert_ne!(pem, RSA_PUBLIC);
        let key = VerifyingKey::from_tuf("rsa", "rsassa-pss-sha256", &pem).unwrap();
        assert_eq!(key, canonical);
        assert_eq!(key.to_tuf_public(), RSA_PUBLIC);
    }

    #[test]
    fn ed25519_hex_case_does_not_change_identity() {
        let lower = include_str!("testdata/py_ed25519.pub.hex").trim();
        let a = VerifyingKey::from_tuf("ed25519", "ed25519", lower).unwrap();
        let b = VerifyingKey::from_tuf("ed25519", "ed25519", &lower.to_uppercase()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.material(), b.material());
        assert_eq!(b.to_tuf_public(), lower);
        let mut set = std::collections::HashSet::new();
        set.insert(a);
        assert!(!set.insert(b));
    }

    #[test]
    fn different_keys_and_algorithms_differ() {
        let ed = VerifyingKey::from_tuf(
            "ed25519",
            "ed25519",
            include_str!("testdata/py_ed25519.pub.hex").trim(),
        )
        .unwrap();
        let ec = VerifyingKey::from_tuf(
            "ecdsa",
            "ecdsa-sha2-nistp256",
            include_str!("testdata/py_ecdsa_p256.pub.pem"),
        )
        .unwrap();
        assert_ne!(ed, ec);
        assert_ne!(ec, rsa_key());
    }

    #[test]
    fn malformed_ed25519_keys_are_rejected() {
        let good = include_str!("testdata/py_ed25519.pub.hex").trim();
        for bad in [
            "",
            &good[..62],
            &format!("{good}00"),
            &format!("{}zz", &good[..62]),
            &format!("{} ", &good[..63]),
        ] {
            let err = VerifyingKey::from_tuf("ed25519", "ed25519", bad).unwrap_err();
            assert!(
                matches!(&err, CryptoError::MalformedPublicKey { reason } if reason.starts_with("ed25519: ")),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn pem_keys_must_match_the_scheme() {
        let ec = include_str!("testdata/py_ecdsa_p256.pub.pem");
        let err = VerifyingKey::from_tuf("rsa", "rsassa-pss-sha256", ec).unwrap_err();
        assert!(err.to_string().contains("rsassa-pss-sha256"), "{err}");
        assert!(err.to_string().contains("rsaEncryption"), "{err}");
        let err = VerifyingKey::from_tuf("ecdsa", "ecdsa-sha2-nistp256", RSA_PUBLIC).unwrap_err();
        assert!(err.to_string().contains("ecdsa-sha2-nistp256"), "{err}");
        // An ed25519 key must be hex, not PEM.
        assert!(VerifyingKey::from_tuf("ed25519", "ed25519", ec).is_err());
    }

    #[test]
    fn pem_label_and_body_are_checked() {
        let wrong_label = RSA_PUBLIC.replace("PUBLIC KEY", "RSA PUBLIC KEY");
        let err = VerifyingKey::from_tuf("rsa", "rsassa-pss-sha256", &wrong_label).unwrap_err();
        assert!(err.to_string().contains("RSA PUBLIC KEY"), "{err}");
        for bad in [
            "",
            "not pem",
            "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
        ] {
            assert!(matches!(
                VerifyingKey::from_tuf("rsa", "rsassa-pss-sha256", bad),
                Err(CryptoError::MalformedPublicKey { .. })
            ));
        }
    }

    #[test]
    fn ecdsa_other_curves_and_compressed_points_are_rejected() {
        // P-384 OID in place of P-256.
        let p384 = ObjectIdentifier::new_unwrap("1.3.132.0.34");
        let der = encode_spki(ID_EC_PUBLIC_KEY, AnyRef::from(&p384), &[4; 97]).unwrap();
        let pem = spki::der::pem::encode_string(PUBLIC_KEY_LABEL, LineEnding::LF, &der).unwrap();
        let err = VerifyingKey::from_tuf("ecdsa", "ecdsa-sha2-nistp256", &pem).unwrap_err();
        assert!(err.to_string().contains("P-256"), "{err}");

        let mut compressed = vec![0x02];
        compressed.extend_from_slice(&[7; 32]);
        let err = VerifyingKey::ecdsa_p256(&compressed).unwrap_err();
        assert!(err.to_string().contains("compressed"), "{err}");
        assert!(VerifyingKey::ecdsa_p256(&[4; 64]).is_err());
    }

    #[test]
    fn small_rsa_moduli_are_rejected() {
        // A 1024-bit modulus (value irrelevant to the size check) with e = 65537.
        let mut modulus = vec![0x00, 0xc0];
        modulus.extend_from_slice(&[0x11; 127]);
        let rsa_public_key = rsa_public_key_der(&modulus, &[0x01, 0x00, 0x01]);
        let pem = rsa_pem(&rsa_public_key);
        let err = VerifyingKey::from_tuf("rsa", "rsassa-pss-sha256", &pem).unwrap_err();
        assert!(err.to_string().contains("1024 bits"), "{err}");
    }

    #[test]
    fn rsa_exponent_is_checked() {
        let canonical = rsa_key();
        let Inner::Rsa(der) = &canonical.inner else {
            panic!("not an rsa key")
        };
        let (modulus, _) = decode_rsa_public_key(der).unwrap();
        let mut n = vec![0];
        n.extend_from_slice(modulus.as_bytes());
        for e in [
            &[0x01][..],
            &[0x01, 0x00, 0x00],
            &[0x02, 0x00, 0x00, 0x00, 0x01],
        ] {
            let pem = rsa_pem(&rsa_public_key_der(&n, e));
            let err = VerifyingKey::from_tuf("rsa", "rsassa-pss-sha256", &pem).unwrap_err();
            assert!(err.to_string().contains("exponent"), "{e:?}: {err}");
        }
        // Re-encoding the original numbers gives back the same key.
        let pem = rsa_pem(&rsa_public_key_der(&n, &[0x01, 0x00, 0x01]));
        assert_eq!(
            VerifyingKey::from_tuf("rsa", "rsassa-pss-sha256", &pem).unwrap(),
            canonical
        );
    }

    #[test]
    fn bit_length_counts_significant_bits() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[1]), 1);
        assert_eq!(bit_length(&[0, 0x80, 0]), 16);
        assert_eq!(bit_length(&[0x01, 0x00, 0x01]), 17);
    }

    #[test]
    fn debug_shows_algorithm_and_public_key() {
        let key = rsa_key();
        let debug = format!("{key:?}");
        assert!(debug.contains("RsaPssSha256"), "{debug}");
        assert!(debug.contains("BEGIN PUBLIC KEY"), "{debug}");
    }

    /// The order of the Ed25519 base point, little-endian.
    const ED25519_L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    /// Little-endian addition of two 256-bit numbers (no overflow for the values used here).
    fn add_le(a: &[u8], b: &[u8]) -> Vec<u8> {
        let mut carry = 0u16;
        a.iter()
            .zip(b)
            .map(|(x, y)| {
                let sum = u16::from(*x) + u16::from(*y) + carry;
                carry = sum >> 8;
                sum as u8
            })
            .collect()
    }

    #[test]
    fn ed25519_rejects_non_canonical_s() {
        let signing = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
        let key = VerifyingKey::ed25519(signing.verifying_key());
        let signature = ed25519_dalek::Signer::sign(&signing, MESSAGE).to_bytes();
        assert_eq!(key.verify(MESSAGE, &signature), Ok(()));

        // S + L is the same scalar mod L, written non-canonically (it still fits 255 bits).
        let mut malleated = signature.to_vec();
        let s_plus_l = add_le(&signature[32..], &ED25519_L);
        assert!(s_plus_l[31] < 0x80);
        malleated[32..].copy_from_slice(&s_plus_l);
        assert_ne!(malleated, signature);
        assert_eq!(
            key.verify(MESSAGE, &malleated),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn ed25519_rejects_small_order_public_key() {
        // The identity point as public key, with R = identity and S = 0, satisfies the
        // unbatched verification equation for every message.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&identity);

        let lax = ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap();
        let forged_sig = ed25519_dalek::Signature::from_bytes(&forged);
        assert!(
            ed25519_dalek::Verifier::verify(&lax, b"anything", &forged_sig).is_ok(),
            "the forgery must pass lax verification for this test to mean something"
        );

        // Parsing succeeds (the point is on the curve), every verification fails.
        let key =
            VerifyingKey::from_tuf("ed25519", "ed25519", &crate::hex::encode(identity)).unwrap();
        for message in [&b"anything"[..], b"", MESSAGE] {
            assert_eq!(key.verify(message, &forged), Err(CryptoError::BadSignature));
        }
    }

    proptest::proptest! {
        #[test]
        fn ed25519_sign_verify_and_text_round_trip(
            seed in proptest::array::uniform32(proptest::prelude::any::<u8>()),
            message in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        ) {
            let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
            let key = VerifyingKey::ed25519(signing.verifying_key());
            let text = key.to_tuf_public();
            proptest::prop_assert!(crate::hex::is_lower_hex(&text, 64));
            let parsed = VerifyingKey::from_tuf("ed25519", "ed25519", &text).unwrap();
            proptest::prop_assert_eq!(&parsed, &key);
            let signature = ed25519_dalek::Signer::sign(&signing, &message).to_bytes();
            proptest::prop_assert_eq!(parsed.verify(&message, &signature), Ok(()));
            let mut tampered = message.clone();
            tampered.push(0);
            proptest::prop_assert_eq!(
                parsed.verify(&tampered, &signature),
                Err(CryptoError::BadSignature)
            );
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(public in ".{0,200}") {
            for (keytype, scheme) in [
                ("ed25519", "ed25519"),
                ("ecdsa", "ecdsa-sha2-nistp256"),
                ("rsa", "rsassa-pss-sha256"),
            ] {
                let _ = VerifyingKey::from_tuf(keytype, scheme, &public);
            }
        }
    }

    /// DER `RSAPublicKey` from big-endian integer contents (already minimally encoded).
    fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        for int in [n, e] {
            body.push(0x02);
            push_len(&mut body, int.len());
            body.extend_from_slice(int);
        }
        let mut der = vec![0x30];
        push_len(&mut der, body.len());
        der.extend_from_slice(&body);
        der
    }

    fn push_len(out: &mut Vec<u8>, len: usize) {
        match len {
            0..=0x7f => out.push(len as u8),
            0x80..=0xff => out.extend_from_slice(&[0x81, len as u8]),
            _ => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
        }
    }

    fn rsa_pem(rsa_public_key: &[u8]) -> String {
        let der = encode_spki(RSA_ENCRYPTION, AnyRef::NULL, rsa_public_key).unwrap();
        spki::der::pem::encode_string(PUBLIC_KEY_LABEL, LineEnding::LF, &der).unwrap()
    }
}
