//! Keys and signatures: the three TUF signature schemes vouch understands, and encrypted
//! private-key files.
//!
//! What is here:
//! - [`Algorithm`] names a TUF `keytype`/`scheme` pair: `ed25519` (the default), ECDSA over
//!   P-256 with SHA-256 (`ecdsa-sha2-nistp256`, for HSM and KMS users) and RSASSA-PSS with
//!   SHA-256 (`rsassa-pss-sha256`, verify-only, for interoperability).
//! - [`VerifyingKey`] is a public key parsed once from the `keyval.public` string of a TUF key
//!   object and then used to check any number of signatures.
//! - [`Signer`] is the small synchronous signing interface. [`PrivateKey`] implements it for a
//!   key held in memory; a PKCS#11 token or a KMS can implement it as well.
//! - [`PrivateKey`] also reads and writes the on-disk form of a key: encrypted PKCS#8 PEM
//!   (PBES2 with scrypt or PBKDF2-HMAC-SHA256, AES-256-CBC), the same form python's
//!   `cryptography` writes.
//!
//! - [`NotaryKeyFile`] reads the notary client's encrypted key files (PBKDF2-HMAC-SHA-1,
//!   PEM headers naming the role and GUN), so that Notary keys can be carried over; SHA-1
//!   is accepted there and nowhere else.
//!
//! What is not here: key ids (they are hashes of canonical JSON and belong with the metadata
//! model), thresholds, and any IO. Reading a key file from disk, prompting for a passphrase and
//! choosing file modes are the caller's job; this module only turns bytes and strings into
//! keys and back.
//!
//! ```
//! use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer, VerifyingKey};
//!
//! let key = PrivateKey::generate(Algorithm::Ed25519)?;
//! let signature = key.sign(b"canonical bytes")?;
//!
//! // What a TUF key object carries, and what a verifier rebuilds from it.
//! let public = key.verifying_key().to_tuf_public();
//! let parsed = VerifyingKey::from_tuf("ed25519", "ed25519", &public)?;
//! parsed.verify(b"canonical bytes", &signature)?;
//! assert!(parsed.verify(b"other bytes", &signature).is_err());
//! # Ok::<(), vouch_tuf::crypto::CryptoError>(())
//! ```

mod notary_key;
mod private;
mod verify;

pub use notary_key::NotaryKeyFile;
pub use private::PrivateKey;
pub use verify::VerifyingKey;

use std::fmt;

use thiserror::Error;

/// A TUF signature scheme that vouch can verify (and, except for RSA, sign with).
///
/// `Display` prints the TUF `scheme` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519 (RFC 8032): `keytype` and `scheme` `ed25519`, public key as 64 hex digits.
    Ed25519,
    /// ECDSA over NIST P-256 with SHA-256 and DER-encoded signatures: `keytype` `ecdsa`,
    /// `scheme` `ecdsa-sha2-nistp256`, public key as a SubjectPublicKeyInfo PEM.
    EcdsaP256Sha256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt: `keytype` `rsa`, `scheme`
    /// `rsassa-pss-sha256`, public key as a SubjectPublicKeyInfo PEM. Verify-only.
    RsaPssSha256,
}

impl Algorithm {
    /// Maps a TUF `keytype`/`scheme` pair to an algorithm.
    ///
    /// Accepted pairs: (`ed25519`, `ed25519`), (`ecdsa`, `ecdsa-sha2-nistp256`), the legacy
    /// (`ecdsa-sha2-nistp256`, `ecdsa-sha2-nistp256`) that older securesystemslib wrote, and
    /// (`rsa`, `rsassa-pss-sha256`). Anything else is [`CryptoError::UnsupportedScheme`].
    ///
    /// ```
    /// use vouch_tuf::crypto::Algorithm;
    ///
    /// assert_eq!(Algorithm::from_tuf("ecdsa", "ecdsa-sha2-nistp256")?, Algorithm::EcdsaP256Sha256);
    /// assert!(Algorithm::from_tuf("rsa", "rsa-pkcs1v15-sha256").is_err());
    /// # Ok::<(), vouch_tuf::crypto::CryptoError>(())
    /// ```
    pub fn from_tuf(keytype: &str, scheme: &str) -> Result<Self, CryptoError> {
        match (keytype, scheme) {
            ("ed25519", "ed25519") => Ok(Self::Ed25519),
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => Ok(Self::EcdsaP256Sha256),
            ("rsa", "rsassa-pss-sha256") => Ok(Self::RsaPssSha256),
            _ => Err(CryptoError::UnsupportedScheme {
                keytype: keytype.to_owned(),
                scheme: scheme.to_owned(),
            }),
        }
    }

    /// The TUF `keytype` vouch writes: `ed25519`, `ecdsa` or `rsa`.
    pub fn keytype(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256Sha256 => "ecdsa",
            Self::RsaPssSha256 => "rsa",
        }
    }

    /// The TUF `scheme`: `ed25519`, `ecdsa-sha2-nistp256` or `rsassa-pss-sha256`.
    pub fn scheme(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256Sha256 => "ecdsa-sha2-nistp256",
            Self::RsaPssSha256 => "rsassa-pss-sha256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme())
    }
}

/// Makes signatures with one private key.
///
/// Deliberately small and synchronous so that a key in memory ([`PrivateKey`]), a PKCS#11
/// token or a cloud KMS are interchangeable behind `Box<dyn Signer>` / `Arc<dyn Signer>`.
/// Signatures are returned in the byte form TUF stores (hex-encoded by the caller): 64 bytes
/// for Ed25519, an ASN.1 DER `ECDSA-Sig-Value` for ECDSA P-256.
pub trait Signer: Send + Sync {
    /// The scheme this signer signs with.
    fn algorithm(&self) -> Algorithm;

    /// The public half, as it goes into TUF metadata.
    fn verifying_key(&self) -> VerifyingKey;

    /// Signs `message` (for TUF: the canonical JSON of the `signed` object).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError>;
}

/// Key-derivation settings for encrypted private-key files.
///
/// The derived key encrypts the PKCS#8 document with AES-256-CBC (PBES2, RFC 8018).
/// Reading a file takes its settings from the file itself; these settings only matter when
/// writing. Costs above what [`PrivateKey::from_encrypted_pem`] is willing to spend are
/// rejected when writing too, so vouch never writes a file it refuses to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kdf {
    /// scrypt (RFC 7914) with cost `N = 2^log_n`, block size `r` and parallelism `p`.
    Scrypt {
        /// Base-2 logarithm of the CPU/memory cost `N`.
        log_n: u8,
        /// Block size.
        r: u32,
        /// Parallelism.
        p: u32,
    },
    /// PBKDF2 with HMAC-SHA-256 and the given iteration count.
    Pbkdf2Sha256 {
        /// Number of iterations.
        iterations: u32,
    },
}

impl Default for Kdf {
    /// scrypt with `log_n` 15, `r` 8, `p` 1 (32 MiB of memory per derivation).
    ///
    /// python's `cryptography` reads such files. The `openssl` command line does not: it
    /// caps scrypt at 32 MiB including overhead. Use [`Kdf::Pbkdf2Sha256`] for files that
    /// must open there.
    fn default() -> Self {
        Self::Scrypt {
            log_n: 15,
            r: 8,
            p: 1,
        }
    }
}

impl Kdf {
    /// Cheap scrypt settings (`log_n` 10) so that tests run quickly.
    ///
    /// For tests only: a file written with these settings falls to a passphrase guessing
    /// attack far sooner than one written with [`Kdf::default`].
    pub fn fast_insecure_for_tests() -> Self {
        Self::Scrypt {
            log_n: 10,
            r: 8,
            p: 1,
        }
    }
}

/// Errors from parsing keys, verifying and making signatures, and key files.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The `keytype`/`scheme` pair is not one vouch supports.
    #[error("unsupported key type {keytype:?} with scheme {scheme:?}")]
    UnsupportedScheme {
        /// The `keytype` as given.
        keytype: String,
        /// The `scheme` as given.
        scheme: String,
    },
    /// `keyval.public` could not be parsed for the scheme; the reason names the scheme.
    #[error("malformed public key: {reason}")]
    MalformedPublicKey {
        /// What was wrong, naming the scheme.
        reason: String,
    },
    /// The signature does not verify for this key and message (this includes signatures of
    /// the wrong length or encoding).
    #[error("signature verification failed")]
    BadSignature,
    /// The scheme is verify-only in vouch.
    #[error("signing with {0} keys is not supported (verify-only)")]
    SigningUnsupported(Algorithm),
    /// The passphrase does not decrypt the private-key file.
    #[error("wrong passphrase for the encrypted private key")]
    WrongPassphrase,
    /// The private-key file or PKCS#8 document is not well-formed.
    #[error("malformed private key: {0}")]
    MalformedPrivateKey(String),
    /// The private-key file is well-formed but uses a key type, curve or encryption scheme
    /// vouch does not read, or key-derivation costs above the accepted limits.
    #[error("unsupported private key: {0}")]
    UnsupportedPrivateKey(String),
    /// The [`Kdf`] settings given for writing a key file are invalid or too costly.
    #[error("invalid key-derivation settings: {0}")]
    InvalidKdf(String),
    /// Encoding a key failed (should not happen for keys this module produced).
    #[error("could not encode the key: {0}")]
    Encoding(String),
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Rng,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_from_tuf_accepts_the_known_pairs() {
        let cases = [
            ("ed25519", "ed25519", Algorithm::Ed25519),
            ("ecdsa", "ecdsa-sha2-nistp256", Algorithm::EcdsaP256Sha256),
            (
                "ecdsa-sha2-nistp256",
                "ecdsa-sha2-nistp256",
                Algorithm::EcdsaP256Sha256,
            ),
            ("rsa", "rsassa-pss-sha256", Algorithm::RsaPssSha256),
        ];
        for (keytype, scheme, expected) in cases {
            assert_eq!(Algorithm::from_tuf(keytype, scheme), Ok(expected));
        }
    }

    #[test]
    fn algorithm_from_tuf_rejects_everything_else() {
        for (keytype, scheme) in [
            ("ed25519", "ecdsa-sha2-nistp256"),
            ("ecdsa", "ed25519"),
            ("rsa", "rsassa-pss-sha512"),
            ("rsa", "rsa-pkcs1v15-sha256"),
            ("ecdsa", "ecdsa-sha2-nistp384"),
            ("ED25519", "ed25519"),
            ("", ""),
        ] {
            assert_eq!(
                Algorithm::from_tuf(keytype, scheme),
                Err(CryptoError::UnsupportedScheme {
                    keytype: keytype.to_owned(),
                    scheme: scheme.to_owned(),
                })
            );
        }
    }

    #[test]
    fn algorithm_names_round_trip() {
        for alg in [
            Algorithm::Ed25519,
            Algorithm::EcdsaP256Sha256,
            Algorithm::RsaPssSha256,
        ] {
            assert_eq!(Algorithm::from_tuf(alg.keytype(), alg.scheme()), Ok(alg));
            assert_eq!(alg.to_string(), alg.scheme());
        }
    }

    #[test]
    fn error_messages_name_the_scheme() {
        let err = Algorithm::from_tuf("rsa", "rsa-pkcs1v15-sha256").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unsupported key type "rsa" with scheme "rsa-pkcs1v15-sha256""#
        );
        assert_eq!(
            CryptoError::SigningUnsupported(Algorithm::RsaPssSha256).to_string(),
            "signing with rsassa-pss-sha256 keys is not supported (verify-only)"
        );
    }

    #[test]
    fn kdf_defaults() {
        assert_eq!(
            Kdf::default(),
            Kdf::Scrypt {
                log_n: 15,
                r: 8,
                p: 1
            }
        );
        assert_eq!(
            Kdf::fast_insecure_for_tests(),
            Kdf::Scrypt {
                log_n: 10,
                r: 8,
                p: 1
            }
        );
    }
}
