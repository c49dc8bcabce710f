//! Private keys in memory, and their encrypted PKCS#8 PEM files.
//!
//! A [`PrivateKey`] signs with Ed25519 (through `ed25519-dalek`) or ECDSA P-256 (through
//! `ring`). Its on-disk form is an `ENCRYPTED PRIVATE KEY` PEM: PKCS#8 wrapped in PBES2
//! (RFC 8018) with scrypt or PBKDF2-HMAC-SHA-256 and AES-CBC, which is also what python's
//! `cryptography` writes with `BestAvailableEncryption` (PBKDF2-HMAC-SHA-256, AES-256-CBC).
//!
//! Secrets never reach `Debug` output, and the buffers this module owns (seeds, PKCS#8
//! plaintext, decryption buffers) are zeroized when dropped. ring's ECDSA key pair does not
//! zeroize its own copy of the scalar; that is outside this module's control.

use std::fmt;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use pkcs8::der::pem::{LineEnding, PemLabel};
use pkcs8::der::Document;
use pkcs8::pkcs5::pbes2;
use pkcs8::pkcs5::{self, EncryptionScheme};
use pkcs8::{EncryptedPrivateKeyInfo, ObjectIdentifier, PrivateKeyInfo};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use zeroize::Zeroizing;

use super::verify::{ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP256R1};
use super::{Algorithm, CryptoError, Kdf, Signer, VerifyingKey};

/// `id-Ed25519` (RFC 8410).
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Length of the random PBES2 salt written into new key files.
const SALT_LEN: usize = 16;
/// AES block size, and so the length of the CBC initialisation vector.
const AES_BLOCK_LEN: usize = 16;
/// Length of the derived AES-256 key that scrypt is asked for.
const AES_256_KEY_LEN: usize = 32;

/// Most memory one scrypt derivation may use, `128 * r * N` bytes: 1 GiB (the default uses
/// 32 MiB).
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
/// Most work one scrypt derivation may do, counted as `N * r * p` (the default does 2^18).
const MAX_SCRYPT_WORK: u64 = 1 << 24;
/// Most PBKDF2 iterations accepted (python `cryptography` writes 2048; RFC 8018 mentions
/// 10,000,000 for especially critical keys).
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// A private key held in memory.
///
/// `Debug` prints the algorithm and the public key only. Build one with
/// [`PrivateKey::generate`], [`PrivateKey::from_pkcs8_der`] or
/// [`PrivateKey::from_encrypted_pem`]; sign through the [`Signer`] trait.
///
/// ```
/// use vouch_tuf::crypto::{Algorithm, Kdf, PrivateKey, Signer};
///
/// let key = PrivateKey::generate(Algorithm::EcdsaP256Sha256)?;
/// let pem = key.to_encrypted_pem(b"correct horse", Kdf::fast_insecure_for_tests())?;
/// assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
///
/// let again = PrivateKey::from_encrypted_pem(&pem, b"correct horse")?;
/// assert_eq!(again.verifying_key(), key.verifying_key());
/// # Ok::<(), vouch_tuf::crypto::CryptoError>(())
/// ```
pub struct PrivateKey {
    secret: Secret,
    public: VerifyingKey,
}

enum Secret {
    /// `ed25519_dalek::SigningKey` zeroizes itself on drop.
    Ed25519(ed25519_dalek::SigningKey),
    /// ring's key pair cannot give its PKCS#8 back, so the document it was built from is kept
    /// for writing the key out again.
    EcdsaP256 {
        pair: EcdsaKeyPair,
        pkcs8: Zeroizing<Vec<u8>>,
    },
}

impl PrivateKey {
    /// Generates a new key from the operating system's random number generator.
    ///
    /// RSA is verify-only in vouch: [`Algorithm::RsaPssSha256`] gives
    /// [`CryptoError::SigningUnsupported`].
    pub fn generate(alg: Algorithm) -> Result<Self, CryptoError> {
        let rng = SystemRandom::new();
        match alg {
            Algorithm::Ed25519 => {
                let mut seed = Zeroizing::new([0u8; ed25519_dalek::SECRET_KEY_LENGTH]);
                rng.fill(seed.as_mut()).map_err(|_| CryptoError::Rng)?;
                Ok(Self::ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)))
            }
            Algorithm::EcdsaP256Sha256 => {
                let document = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .map_err(|_| CryptoError::Rng)?;
                Self::ecdsa_p256(Zeroizing::new(document.as_ref().to_vec()))
            }
            Algorithm::RsaPssSha256 => Err(CryptoError::SigningUnsupported(alg)),
        }
    }

    /// Reads an unencrypted PKCS#8 document (DER) holding an Ed25519 or a P-256 EC key.
    ///
    /// An RSA key gives [`CryptoError::SigningUnsupported`]; other key types and curves give
    /// [`CryptoError::UnsupportedPrivateKey`].
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        let info = PrivateKeyInfo::try_from(der)
            .map_err(|e| CryptoError::MalformedPrivateKey(format!("not a PKCS#8 document: {e}")))?;
        let oid = info.algorithm.oid;
        if oid == ID_ED25519 {
            let key = ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(|e| {
                CryptoError::MalformedPrivateKey(format!("{}: {e}", Algorithm::Ed25519))
            })?;
            Ok(Self::ed25519(key))
        } else if oid == ID_EC_PUBLIC_KEY {
            let curve = info.algorithm.parameters_oid().map_err(|e| {
                CryptoError::MalformedPrivateKey(format!(
                    "missing or malformed EC curve identifier: {e}"
                ))
            })?;
            if curve != SECP256R1 {
                return Err(CryptoError::UnsupportedPrivateKey(format!(
                    "EC curve {curve} (only P-256, {SECP256R1}, is supported)"
                )));
            }
            Self::ecdsa_p256(Zeroizing::new(der.to_vec()))
        } else if oid == RSA_ENCRYPTION {
            Err(CryptoError::SigningUnsupported(Algorithm::RsaPssSha256))
        } else {
            Err(CryptoError::UnsupportedPrivateKey(format!(
                "key algorithm {oid} (ed25519 and P-256 EC keys are supported)"
            )))
        }
    }

    /// The unencrypted PKCS#8 document (DER), for callers that wrap keys themselves (for
    /// example with a key-encryption key). Keep it out of logs and off disk.
    ///
    /// Ed25519 keys are written as PKCS#8 version 1 without the optional public key, the form
    /// OpenSSL and python's `cryptography` read (both reject the version 2 form).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match &self.secret {
            Secret::Ed25519(key) => {
                let mut pair = ed25519_dalek::pkcs8::KeypairBytes::from(key);
                pair.public_key = None;
                let document = pair
                    .to_pkcs8_der()
                    .map_err(|e| CryptoError::Encoding(e.to_string()))?;
                Ok(Zeroizing::new(document.as_bytes().to_vec()))
            }
            Secret::EcdsaP256 { pkcs8, .. } => Ok(pkcs8.clone()),
        }
    }

    /// Writes the key as an encrypted PKCS#8 PEM (`-----BEGIN ENCRYPTED PRIVATE KEY-----`):
    /// PBES2 with the given key derivation, AES-256-CBC, a fresh random 16-byte salt and IV.
    ///
    /// Use [`Kdf::default`] for real keys.
    pub fn to_encrypted_pem(
        &self,
        passphrase: &[u8],
        kdf: Kdf,
    ) -> Result<Zeroizing<String>, CryptoError> {
        let rng = SystemRandom::new();
        let mut salt = [0u8; SALT_LEN];
        rng.fill(&mut salt).map_err(|_| CryptoError::Rng)?;
        let mut iv = [0u8; AES_BLOCK_LEN];
        rng.fill(&mut iv).map_err(|_| CryptoError::Rng)?;

        let invalid = |e: pkcs5::Error| CryptoError::InvalidKdf(e.to_string());
        let parameters = match kdf {
            Kdf::Scrypt { log_n, r, p } => {
                check_scrypt_cost(log_n, r, p).map_err(CryptoError::InvalidKdf)?;
                let params = pkcs5::scrypt::Params::new(log_n, r, p, AES_256_KEY_LEN)
                    .map_err(|e| CryptoError::InvalidKdf(format!("scrypt: {e}")))?;
                pbes2::Parameters::scrypt_aes256cbc(params, &salt, &iv).map_err(invalid)?
            }
            Kdf::Pbkdf2Sha256 { iterations } => {
                check_pbkdf2_cost(iterations).map_err(CryptoError::InvalidKdf)?;
                pbes2::Parameters::pbkdf2_sha256_aes256cbc(iterations, &salt, &iv)
                    .map_err(invalid)?
            }
        };

        let der = self.to_pkcs8_der()?;
        let info = PrivateKeyInfo::try_from(der.as_slice())
            .map_err(|e| CryptoError::Encoding(e.to_string()))?;
        let encrypted = info
            .encrypt_with_params(parameters, passphrase)
            .map_err(|e| CryptoError::Encoding(e.to_string()))?;
        encrypted
            .to_pem(EncryptedPrivateKeyInfo::PEM_LABEL, LineEnding::LF)
            .map_err(|e| CryptoError::Encoding(e.to_string()))
    }

    /// Reads an encrypted PKCS#8 PEM (`-----BEGIN ENCRYPTED PRIVATE KEY-----`) holding an
    /// Ed25519 or a P-256 EC key: PBES2 with scrypt or PBKDF2 (HMAC-SHA-2), AES-CBC.
    ///
    /// A passphrase that does not decrypt the file gives [`CryptoError::WrongPassphrase`]; a
    /// file that is not well-formed gives [`CryptoError::MalformedPrivateKey`]; other
    /// encryption schemes, and key-derivation costs above the limits vouch accepts (1 GiB of
    /// scrypt memory, 10,000,000 PBKDF2 iterations), give
    /// [`CryptoError::UnsupportedPrivateKey`]. Whitespace around the PEM block is ignored.
    pub fn from_encrypted_pem(pem: &str, passphrase: &[u8]) -> Result<Self, CryptoError> {
        let malformed = |reason: String| CryptoError::MalformedPrivateKey(reason);
        let (label, document) = Document::from_pem(pem.trim())
            .map_err(|e| malformed(format!("not a PEM document: {e}")))?;
        if label != EncryptedPrivateKeyInfo::PEM_LABEL {
            return Err(malformed(if label == PrivateKeyInfo::PEM_LABEL {
                "the key file is not encrypted (expected an ENCRYPTED PRIVATE KEY PEM block)"
                    .to_owned()
            } else {
                format!("expected an ENCRYPTED PRIVATE KEY PEM block, found {label:?}")
            }));
        }
        let info = EncryptedPrivateKeyInfo::try_from(document.as_bytes())
            .map_err(|e| malformed(format!("not a PKCS#8 EncryptedPrivateKeyInfo: {e}")))?;
        let EncryptionScheme::Pbes2(parameters) = &info.encryption_algorithm else {
            return Err(CryptoError::UnsupportedPrivateKey(
                "PBES1 encryption (only PBES2 is supported)".to_owned(),
            ));
        };
        check_pbes2_cost(parameters).map_err(CryptoError::UnsupportedPrivateKey)?;

        let ciphertext = info.encrypted_data;
        if ciphertext.is_empty() || ciphertext.len() % AES_BLOCK_LEN != 0 {
            return Err(malformed(format!(
                "encrypted data of {} bytes is not a whole number of AES blocks",
                ciphertext.len()
            )));
        }
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        let plaintext = parameters
            .decrypt_in_place(passphrase, buffer.as_mut_slice())
            .map_err(|e| match e {
                // The only failure after a successful key derivation is bad CBC padding.
                pkcs5::Error::DecryptFailed | pkcs5::Error::EncryptFailed => {
                    CryptoError::WrongPassphrase
                }
                pkcs5::Error::AlgorithmParametersInvalid { .. } => {
                    malformed(format!("invalid encryption parameters: {e}"))
                }
                other => CryptoError::UnsupportedPrivateKey(other.to_string()),
            })?;
        // With a wrong key the padding check passes about once in 256 tries; the plaintext is
        // then noise that does not parse.
        if PrivateKeyInfo::try_from(plaintext).is_err() {
            return Err(CryptoError::WrongPassphrase);
        }
        Self::from_pkcs8_der(plaintext)
    }

    fn ed25519(key: ed25519_dalek::SigningKey) -> Self {
        let public = VerifyingKey::ed25519(key.verifying_key());
        Self {
            secret: Secret::Ed25519(key),
            public,
        }
    }

    fn ecdsa_p256(pkcs8: Zeroizing<Vec<u8>>) -> Result<Self, CryptoError> {
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|e| {
            CryptoError::MalformedPrivateKey(format!("{}: {e}", Algorithm::EcdsaP256Sha256))
        })?;
        let public = VerifyingKey::ecdsa_p256(pair.public_key().as_ref())?;
        Ok(Self {
            secret: Secret::EcdsaP256 { pair, pkcs8 },
            public,
        })
    }
}

impl Signer for PrivateKey {
    fn algorithm(&self) -> Algorithm {
        self.public.algorithm()
    }

    fn verifying_key(&self) -> VerifyingKey {
        self.public.clone()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.secret {
            Secret::Ed25519(key) => {
                let signature = ed25519_dalek::Signer::sign(key, message);
                Ok(signature.to_bytes().to_vec())
            }
            Secret::EcdsaP256 { pair, .. } => {
                let signature = pair
                    .sign(&SystemRandom::new(), message)
                    .map_err(|_| CryptoError::Rng)?;
                Ok(signature.as_ref().to_vec())
            }
        }
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.public.algorithm())
            .field("public", &self.public.to_tuf_public())
            .finish_non_exhaustive()
    }
}

/// Checks scrypt costs against the limits, for writing and for reading.
fn check_scrypt_cost(log_n: u8, r: u32, p: u32) -> Result<(), String> {
    let n = 1u64.checked_shl(u32::from(log_n)).filter(|_| log_n < 64);
    let memory = n.and_then(|n| n.checked_mul(u64::from(r))?.checked_mul(128));
    let work = n.and_then(|n| n.checked_mul(u64::from(r))?.checked_mul(u64::from(p)));
    match (memory, work) {
        (Some(memory), Some(work)) if memory <= MAX_SCRYPT_MEMORY && work <= MAX_SCRYPT_WORK => {
            Ok(())
        }
        _ => Err(format!(
            "scrypt cost log_n {log_n}, r {r}, p {p} is above the limit \
             (128 * r * 2^log_n <= {MAX_SCRYPT_MEMORY} bytes, 2^log_n * r * p <= {MAX_SCRYPT_WORK})"
        )),
    }
}

pub(super) fn check_pbkdf2_cost(iterations: u32) -> Result<(), String> {
    if iterations == 0 {
        return Err("PBKDF2 needs at least one iteration".to_owned());
    }
    if iterations > MAX_PBKDF2_ITERATIONS {
        return Err(format!(
            "{iterations} PBKDF2 iterations is above the limit of {MAX_PBKDF2_ITERATIONS}"
        ));
    }
    Ok(())
}

/// Checks the key-derivation cost a file asks for before spending it.
fn check_pbes2_cost(parameters: &pbes2::Parameters<'_>) -> Result<(), String> {
    match &parameters.kdf {
        pbes2::Kdf::Pbkdf2(pbkdf2) => check_pbkdf2_cost(pbkdf2.iteration_count),
        pbes2::Kdf::Scrypt(scrypt) => {
            let n = scrypt.cost_parameter;
            if !n.is_power_of_two() || n < 2 {
                return Err(format!("scrypt cost N = {n} is not a power of two above 1"));
            }
            let log_n = u8::try_from(n.trailing_zeros())
                .map_err(|_| format!("scrypt cost N = {n} is out of range"))?;
            check_scrypt_cost(
                log_n,
                u32::from(scrypt.block_size),
                u32::from(scrypt.parallelization),
            )
        }
        other => Err(format!("key derivation function {}", other.oid())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSPHRASE: &[u8] = b"correct horse battery staple";
    /// The passphrase `testdata/generate.py` encrypts its key files with.
    const PYTHON_PASSPHRASE: &[u8] = b"vouch-test-passphrase";
    const MESSAGE: &[u8] = include_bytes!("testdata/message.txt");

    fn fast_pbkdf2() -> Kdf {
        Kdf::Pbkdf2Sha256 { iterations: 1000 }
    }

    #[test]
    fn signer_is_object_safe_and_thread_safe() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<PrivateKey>();
        let signer: Box<dyn Signer> = Box::new(PrivateKey::generate(Algorithm::Ed25519).unwrap());
        assert_eq!(signer.algorithm(), Algorithm::Ed25519);
    }

    #[test]
    fn sign_verify_round_trip() {
        for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
            let key = PrivateKey::generate(alg).unwrap();
            assert_eq!(key.algorithm(), alg);
            let public = key.verifying_key();
            assert_eq!(public.algorithm(), alg);

            let signature = key.sign(MESSAGE).unwrap();
            assert_eq!(public.verify(MESSAGE, &signature), Ok(()), "{alg}");

            // The key survives the trip through its TUF text form.
            let parsed =
                VerifyingKey::from_tuf(alg.keytype(), alg.scheme(), &public.to_tuf_public())
                    .unwrap();
            assert_eq!(parsed, public);
            assert_eq!(parsed.verify(MESSAGE, &signature), Ok(()), "{alg}");
        }
    }

    #[test]
    fn flipped_bits_fail_verification() {
        for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
            let key = PrivateKey::generate(alg).unwrap();
            let public = key.verifying_key();
            let signature = key.sign(MESSAGE).unwrap();

            for byte in [0, MESSAGE.len() / 2, MESSAGE.len() - 1] {
                let mut message = MESSAGE.to_vec();
                message[byte] ^= 0x04;
                assert_eq!(
                    public.verify(&message, &signature),
                    Err(CryptoError::BadSignature),
                    "{alg}: message byte {byte}"
                );
            }
            for byte in [0, signature.len() / 2, signature.len() - 1] {
                let mut bad = signature.clone();
                bad[byte] ^= 0x01;
                assert_eq!(
                    public.verify(MESSAGE, &bad),
                    Err(CryptoError::BadSignature),
                    "{alg}: signature byte {byte}"
                );
            }
            assert_eq!(public.verify(MESSAGE, &[]), Err(CryptoError::BadSignature));

            // Another key of the same kind does not verify it either.
            let other = PrivateKey::generate(alg).unwrap().verifying_key();
            assert_ne!(other, public);
            assert_eq!(
                other.verify(MESSAGE, &signature),
                Err(CryptoError::BadSignature)
            );
        }
    }

    #[test]
    fn rsa_is_verify_only() {
        assert_eq!(
            PrivateKey::generate(Algorithm::RsaPssSha256).unwrap_err(),
            CryptoError::SigningUnsupported(Algorithm::RsaPssSha256)
        );
    }

    #[test]
    fn encrypted_pem_round_trip_with_both_kdfs() {
        for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
            for kdf in [Kdf::fast_insecure_for_tests(), fast_pbkdf2()] {
                let key = PrivateKey::generate(alg).unwrap();
                let pem = key.to_encrypted_pem(PASSPHRASE, kdf).unwrap();
                assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
                assert!(pem.ends_with("-----END ENCRYPTED PRIVATE KEY-----\n"));

                let read = PrivateKey::from_encrypted_pem(&pem, PASSPHRASE).unwrap();
                assert_eq!(read.verifying_key(), key.verifying_key(), "{alg} {kdf:?}");
                // The key read back signs for the original public key.
                let signature = read.sign(MESSAGE).unwrap();
                assert_eq!(key.verifying_key().verify(MESSAGE, &signature), Ok(()));
                assert_eq!(*read.to_pkcs8_der().unwrap(), *key.to_pkcs8_der().unwrap());
            }
        }
    }

    #[test]
    fn written_files_record_the_kdf_asked_for() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let kdfs = [
            (Kdf::fast_insecure_for_tests(), true),
            (fast_pbkdf2(), false),
        ];
        for (kdf, is_scrypt) in kdfs {
            let pem = key.to_encrypted_pem(PASSPHRASE, kdf).unwrap();
            let (_, document) = Document::from_pem(&pem).unwrap();
            let info = EncryptedPrivateKeyInfo::try_from(document.as_bytes()).unwrap();
            let parameters = info.encryption_algorithm.pbes2().unwrap();
            assert!(matches!(
                parameters.encryption,
                pbes2::EncryptionScheme::Aes256Cbc { .. }
            ));
            match (&parameters.kdf, is_scrypt) {
                (pbes2::Kdf::Scrypt(s), true) => {
                    assert_eq!(s.cost_parameter, 1 << 10);
                    assert_eq!((s.block_size, s.parallelization), (8, 1));
                    assert_eq!(s.salt.len(), SALT_LEN);
                }
                (pbes2::Kdf::Pbkdf2(p), false) => {
                    assert_eq!(p.iteration_count, 1000);
                    assert_eq!(p.prf, pbes2::Pbkdf2Prf::HmacWithSha256);
                }
                (other, _) => panic!("unexpected kdf {other:?}"),
            }
        }
        // Fresh salt and IV every time.
        let a = key.to_encrypted_pem(PASSPHRASE, fast_pbkdf2()).unwrap();
        let b = key.to_encrypted_pem(PASSPHRASE, fast_pbkdf2()).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn default_kdf_round_trip() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let pem = key.to_encrypted_pem(PASSPHRASE, Kdf::default()).unwrap();
        let read = PrivateKey::from_encrypted_pem(&pem, PASSPHRASE).unwrap();
        assert_eq!(read.verifying_key(), key.verifying_key());
    }

    #[test]
    fn wrong_passphrase_is_reported_as_such() {
        for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
            for kdf in [Kdf::fast_insecure_for_tests(), fast_pbkdf2()] {
                let key = PrivateKey::generate(alg).unwrap();
                let pem = key.to_encrypted_pem(PASSPHRASE, kdf).unwrap();
                for wrong in [&b"correct horse battery stapler"[..], b"", b"x"] {
                    assert_eq!(
                        PrivateKey::from_encrypted_pem(&pem, wrong).unwrap_err(),
                        CryptoError::WrongPassphrase,
                        "{alg} {kdf:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn many_wrong_passphrases_never_yield_a_key() {
        // Enough tries that some pass the CBC padding check and decrypt to noise.
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let pem = key
            .to_encrypted_pem(PASSPHRASE, Kdf::Pbkdf2Sha256 { iterations: 1 })
            .unwrap();
        for i in 0..2000u32 {
            assert_eq!(
                PrivateKey::from_encrypted_pem(&pem, &i.to_be_bytes()).unwrap_err(),
                CryptoError::WrongPassphrase
            );
        }
    }

    #[test]
    fn garbage_is_a_malformed_key() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let pem = key.to_encrypted_pem(PASSPHRASE, fast_pbkdf2()).unwrap();
        let body: Vec<&str> = pem.lines().collect();
        let truncated = format!("{}\n{}\n{}\n", body[0], body[1], body[body.len() - 1]);
        let unencrypted = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            body[1..body.len() - 1].join("\n")
        );
        let cases = [
            String::new(),
            "garbage".to_owned(),
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
                .to_owned(),
            truncated,
            unencrypted,
            include_str!("testdata/py_ecdsa_p256.pub.pem").to_owned(),
        ];
        for case in cases {
            let err = PrivateKey::from_encrypted_pem(&case, PASSPHRASE).unwrap_err();
            assert!(
                matches!(err, CryptoError::MalformedPrivateKey(_)),
                "{case:?}: {err:?}"
            );
        }
        assert!(matches!(
            PrivateKey::from_pkcs8_der(b"\x30\x03\x02\x01\x00"),
            Err(CryptoError::MalformedPrivateKey(_))
        ));
    }

    #[test]
    fn ciphertext_that_is_not_whole_blocks_is_malformed() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let pem = key.to_encrypted_pem(PASSPHRASE, fast_pbkdf2()).unwrap();
        let (_, document) = Document::from_pem(&pem).unwrap();
        let info = EncryptedPrivateKeyInfo::try_from(document.as_bytes()).unwrap();
        let short = EncryptedPrivateKeyInfo {
            encryption_algorithm: info.encryption_algorithm.clone(),
            encrypted_data: &info.encrypted_data[..info.encrypted_data.len() - 1],
        };
        let pem = pkcs8::der::EncodePem::to_pem(&short, LineEnding::LF).unwrap();
        let err = PrivateKey::from_encrypted_pem(&pem, PASSPHRASE).unwrap_err();
        assert!(
            matches!(err, CryptoError::MalformedPrivateKey(_)),
            "{err:?}"
        );
    }

    #[test]
    fn excessive_kdf_costs_are_refused() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        for kdf in [
            Kdf::Scrypt {
                log_n: 24,
                r: 8,
                p: 1,
            },
            Kdf::Scrypt {
                log_n: 15,
                r: 8,
                p: 1000,
            },
            Kdf::Scrypt {
                log_n: 200,
                r: 8,
                p: 1,
            },
            Kdf::Pbkdf2Sha256 {
                iterations: 20_000_000,
            },
            Kdf::Pbkdf2Sha256 { iterations: 0 },
        ] {
            assert!(
                matches!(
                    key.to_encrypted_pem(PASSPHRASE, kdf),
                    Err(CryptoError::InvalidKdf(_))
                ),
                "{kdf:?}"
            );
        }

        // A file asking for more than the limit is refused before any derivation.
        let salt = [1u8; SALT_LEN];
        let iv = [2u8; AES_BLOCK_LEN];
        let params = pkcs5::scrypt::Params::new(22, 8, 1, AES_256_KEY_LEN).unwrap();
        let parameters = pbes2::Parameters::scrypt_aes256cbc(params, &salt, &iv).unwrap();
        let hostile = EncryptedPrivateKeyInfo {
            encryption_algorithm: parameters.into(),
            encrypted_data: &[0u8; 64],
        };
        let pem = pkcs8::der::EncodePem::to_pem(&hostile, LineEnding::LF).unwrap();
        let err = PrivateKey::from_encrypted_pem(&pem, PASSPHRASE).unwrap_err();
        assert!(
            matches!(&err, CryptoError::UnsupportedPrivateKey(reason) if reason.contains("scrypt")),
            "{err:?}"
        );
    }

    #[test]
    fn debug_output_holds_no_secret() {
        for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
            let key = PrivateKey::generate(alg).unwrap();
            let debug = format!("{key:?}");
            let pretty = format!("{key:#?}");
            assert!(debug.contains(&format!("{alg:?}")), "{debug}");
            assert!(debug.contains("public"), "{debug}");

            let der = key.to_pkcs8_der().unwrap();
            let secret: Vec<u8> = match &key.secret {
                Secret::Ed25519(signing) => signing.to_bytes().to_vec(),
                // The 32-byte scalar sits right after the `04 20` OCTET STRING header
                // inside the ECPrivateKey.
                Secret::EcdsaP256 { .. } => {
                    let at = der
                        .windows(5)
                        .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
                        .unwrap();
                    der[at + 5..at + 37].to_vec()
                }
            };
            let hex = crate::hex::encode(&secret);
            for text in [&debug, &pretty] {
                assert!(!text.contains(&hex), "{text}");
                assert!(!text.contains(&hex.to_uppercase()), "{text}");
                assert!(!text.contains(&format!("{:?}", &secret[..8])), "{text}");
                assert!(!text.contains(&crate::hex::encode(&*der)), "{text}");
            }
        }
    }

    #[test]
    fn reads_python_encrypted_ed25519_key() {
        let pem = include_str!("testdata/py_ed25519.enc.pem");
        let key = PrivateKey::from_encrypted_pem(pem, PYTHON_PASSPHRASE).unwrap();
        assert_eq!(key.algorithm(), Algorithm::Ed25519);
        let expected = include_str!("testdata/py_ed25519.pub.hex").trim();
        assert_eq!(key.verifying_key().to_tuf_public(), expected);
        // Ed25519 is deterministic: the same signature python made.
        let python_signature = include_str!("testdata/py_ed25519.sig.hex").trim();
        assert_eq!(
            crate::hex::encode(key.sign(MESSAGE).unwrap()),
            python_signature
        );
        assert_eq!(
            PrivateKey::from_encrypted_pem(pem, b"vouch-test-passphrasE").unwrap_err(),
            CryptoError::WrongPassphrase
        );
    }

    #[test]
    fn reads_python_encrypted_ecdsa_key() {
        let pem = include_str!("testdata/py_ecdsa_p256.enc.pem");
        let key = PrivateKey::from_encrypted_pem(pem, PYTHON_PASSPHRASE).unwrap();
        assert_eq!(key.algorithm(), Algorithm::EcdsaP256Sha256);
        let expected = include_str!("testdata/py_ecdsa_p256.pub.pem");
        assert_eq!(key.verifying_key().to_tuf_public(), expected);
        let signature = key.sign(MESSAGE).unwrap();
        let public = VerifyingKey::from_tuf("ecdsa", "ecdsa-sha2-nistp256", expected).unwrap();
        assert_eq!(public.verify(MESSAGE, &signature), Ok(()));
        assert_eq!(
            PrivateKey::from_encrypted_pem(pem, b"").unwrap_err(),
            CryptoError::WrongPassphrase
        );
    }

    #[test]
    fn ed25519_pkcs8_is_written_in_the_version_openssl_reads() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let der = key.to_pkcs8_der().unwrap();
        let info = PrivateKeyInfo::try_from(der.as_slice()).unwrap();
        assert_eq!(info.version(), pkcs8::Version::V1);
        assert!(info.public_key.is_none());
        assert_eq!(info.algorithm.oid, ID_ED25519);
        assert!(info.algorithm.parameters.is_none());
    }

    #[test]
    fn unencrypted_pkcs8_is_read_from_der() {
        for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
            let key = PrivateKey::generate(alg).unwrap();
            let der = key.to_pkcs8_der().unwrap();
            let read = PrivateKey::from_pkcs8_der(&der).unwrap();
            assert_eq!(read.verifying_key(), key.verifying_key());
        }
    }

    #[test]
    fn other_key_types_are_not_signing_keys() {
        // A PrivateKeyInfo whose algorithm is rsaEncryption (contents irrelevant).
        let rsa = PrivateKeyInfo::new(
            pkcs8::AlgorithmIdentifierRef {
                oid: RSA_ENCRYPTION,
                parameters: Some(pkcs8::der::AnyRef::NULL),
            },
            &[0x30, 0x00],
        );
        let der = pkcs8::der::Encode::to_der(&rsa).unwrap();
        assert_eq!(
            PrivateKey::from_pkcs8_der(&der).unwrap_err(),
            CryptoError::SigningUnsupported(Algorithm::RsaPssSha256)
        );

        // An EC key on P-384.
        let p384 = ObjectIdentifier::new_unwrap("1.3.132.0.34");
        let ec = PrivateKeyInfo::new(
            pkcs8::AlgorithmIdentifierRef {
                oid: ID_EC_PUBLIC_KEY,
                parameters: Some((&p384).into()),
            },
            &[0x30, 0x00],
        );
        let der = pkcs8::der::Encode::to_der(&ec).unwrap();
        assert!(matches!(
            PrivateKey::from_pkcs8_der(&der),
            Err(CryptoError::UnsupportedPrivateKey(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn ecdsa_signatures_verify_for_any_message(
            message in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        ) {
            let key = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
            let signature = key.sign(&message).unwrap();
            let public = key.verifying_key();
            proptest::prop_assert_eq!(public.verify(&message, &signature), Ok(()));
            let mut tampered = message.clone();
            tampered.push(1);
            proptest::prop_assert_eq!(
                public.verify(&tampered, &signature),
                Err(CryptoError::BadSignature)
            );
        }

        #[test]
        fn reading_arbitrary_text_never_panics(pem in ".{0,300}") {
            let _ = PrivateKey::from_encrypted_pem(&pem, PASSPHRASE);
        }

        #[test]
        fn reading_arbitrary_der_never_panics(
            der in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            let _ = PrivateKey::from_pkcs8_der(&der);
        }
    }

    #[test]
    fn ed25519_pkcs8_with_mismatched_public_key_is_rejected() {
        let a = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let b = ed25519_dalek::SigningKey::from_bytes(&[8u8; 32]);
        let mut pair = ed25519_dalek::pkcs8::KeypairBytes::from(&a);
        pair.public_key = Some(ed25519_dalek::pkcs8::PublicKeyBytes(
            b.verifying_key().to_bytes(),
        ));
        let der = pair.to_pkcs8_der().unwrap();
        assert!(matches!(
            PrivateKey::from_pkcs8_der(der.as_bytes()),
            Err(CryptoError::MalformedPrivateKey(_))
        ));
    }
}
