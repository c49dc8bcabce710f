//! Notary v1 private-key files, read so that their keys can be carried over to vouch.
//!
//! The notary client (0.7) keeps each private key in `private/<keyid>.key` in its trust
//! directory: an `ENCRYPTED PRIVATE KEY` PEM block with PEM headers (`role: root`,
//! `gun: example.com/app`) between the BEGIN line and the base64 body, holding PKCS#8 in PBES2
//! with PBKDF2-HMAC-**SHA-1** and AES-256-CBC. [`NotaryKeyFile::from_pem`] reads exactly that
//! (SHA-256 PRFs too), returns the headers alongside the key, and bounds the PBKDF2 work as
//! [`PrivateKey::from_encrypted_pem`] does.
//!
//! SHA-1 is accepted here, for Notary's files only. vouch's own key files never use it and
//! [`PrivateKey::from_encrypted_pem`] keeps refusing it. Older notary releases wrote
//! `EC PRIVATE KEY` blocks with legacy PEM encryption; those are refused with a message saying
//! so.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, KeyIvInit};
use base64ct::{Base64, Encoding};
use pkcs8::pkcs5::{pbes2, EncryptionScheme};
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo};
use zeroize::Zeroizing;

use super::private::check_pbkdf2_cost;
use super::{CryptoError, PrivateKey};

/// Largest key file read, in bytes.
const MAX_FILE_LEN: usize = 64 * 1024;
/// Most PEM header lines read.
const MAX_HEADERS: usize = 16;

/// A Notary private-key file, decrypted.
#[derive(Debug)]
pub struct NotaryKeyFile {
    /// The key.
    pub key: PrivateKey,
    /// The `role` header (`root`, `targets`, `snapshot`, `targets/releases`), when present.
    pub role: Option<String>,
    /// The `gun` header (absent for root keys, which serve every GUN), when present.
    pub gun: Option<String>,
}

impl NotaryKeyFile {
    /// Reads and decrypts a Notary key file.
    ///
    /// A passphrase that does not decrypt it is [`CryptoError::WrongPassphrase`]; a file that
    /// is not a Notary key file is [`CryptoError::MalformedPrivateKey`]; an encryption scheme
    /// other than PBES2 with PBKDF2 (HMAC-SHA-1 or SHA-256) and AES-256-CBC, more than
    /// 10,000,000 PBKDF2 iterations, and keys vouch cannot sign with (RSA, Notary's Ed25519
    /// encoding) are [`CryptoError::UnsupportedPrivateKey`].
    pub fn from_pem(text: &str, passphrase: &[u8]) -> Result<Self, CryptoError> {
        let malformed = |reason: &str| CryptoError::MalformedPrivateKey(reason.to_owned());
        if text.len() > MAX_FILE_LEN {
            return Err(malformed("the key file is larger than 64 KiB"));
        }
        let mut lines = text.trim().lines().map(|l| l.trim_end_matches('\r'));
        let begin = lines
            .next()
            .ok_or_else(|| malformed("the key file is empty"))?;
        let label = begin
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
            .ok_or_else(|| malformed("not a PEM document (no BEGIN line)"))?;
        match label {
            "ENCRYPTED PRIVATE KEY" => {}
            "EC PRIVATE KEY" | "RSA PRIVATE KEY" => {
                return Err(CryptoError::UnsupportedPrivateKey(format!(
                    "{label} files with legacy PEM encryption (written by notary before 0.7) \
                     are not read; export the key with a notary 0.7 client first"
                )))
            }
            "PRIVATE KEY" => {
                return Err(malformed(
                    "the key file is not encrypted (expected an ENCRYPTED PRIVATE KEY PEM block)",
                ))
            }
            other => {
                return Err(CryptoError::MalformedPrivateKey(format!(
                    "expected an ENCRYPTED PRIVATE KEY PEM block, found {other:?}"
                )))
            }
        }
        let (mut role, mut gun) = (None, None);
        let mut body = String::new();
        let mut headers = 0;
        let mut in_body = false;
        let mut ended = false;
        for line in lines {
            if ended {
                return Err(malformed("data after the END line"));
            }
            if line == format!("-----END {label}-----") {
                ended = true;
                continue;
            }
            if !in_body {
                if line.is_empty() {
                    in_body = true;
                    continue;
                }
                if let Some((name, value)) = line.split_once(':') {
                    headers += 1;
                    if headers > MAX_HEADERS {
                        return Err(malformed("too many PEM headers"));
                    }
                    let value = value.trim().to_owned();
                    match name.trim() {
                        "role" => role = Some(value),
                        "gun" => gun = Some(value),
                        _ => {}
                    }
                    continue;
                }
                in_body = true;
            }
            body.push_str(line.trim());
        }
        if !ended {
            return Err(malformed("the PEM block has no END line"));
        }
        let der = Zeroizing::new(Base64::decode_vec(&body).map_err(|e| {
            CryptoError::MalformedPrivateKey(format!("the PEM body is not base64: {e}"))
        })?);
        let key = decrypt(&der, passphrase)?;
        Ok(Self { key, role, gun })
    }
}

fn decrypt(der: &[u8], passphrase: &[u8]) -> Result<PrivateKey, CryptoError> {
    let info = EncryptedPrivateKeyInfo::try_from(der).map_err(|e| {
        CryptoError::MalformedPrivateKey(format!("not a PKCS#8 EncryptedPrivateKeyInfo: {e}"))
    })?;
    let unsupported = |what: String| CryptoError::UnsupportedPrivateKey(what);
    let EncryptionScheme::Pbes2(params) = &info.encryption_algorithm else {
        return Err(unsupported(
            "PBES1 encryption (Notary writes PBES2)".to_owned(),
        ));
    };
    let pbes2::Kdf::Pbkdf2(kdf) = &params.kdf else {
        return Err(unsupported(format!(
            "key derivation {} (Notary writes PBKDF2)",
            params.kdf.oid()
        )));
    };
    let pbes2::EncryptionScheme::Aes256Cbc { iv } = params.encryption else {
        return Err(unsupported(
            "an encryption scheme other than AES-256-CBC".to_owned(),
        ));
    };
    check_pbkdf2_cost(kdf.iteration_count).map_err(unsupported)?;
    let algorithm = match kdf.prf {
        pbes2::Pbkdf2Prf::HmacWithSha1 => ring::pbkdf2::PBKDF2_HMAC_SHA1,
        pbes2::Pbkdf2Prf::HmacWithSha256 => ring::pbkdf2::PBKDF2_HMAC_SHA256,
        other => return Err(unsupported(format!("PBKDF2 with {other:?}"))),
    };
    if kdf.key_length.is_some_and(|l| l != 32) {
        return Err(CryptoError::MalformedPrivateKey(
            "the PBKDF2 key length is not 32 bytes (AES-256)".to_owned(),
        ));
    }
    let iterations = std::num::NonZeroU32::new(kdf.iteration_count)
        .ok_or_else(|| unsupported("zero PBKDF2 iterations".to_owned()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    ring::pbkdf2::derive(algorithm, iterations, kdf.salt, passphrase, key.as_mut());
    let ciphertext = info.encrypted_data;
    if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
        return Err(CryptoError::MalformedPrivateKey(format!(
            "encrypted data of {} bytes is not a whole number of AES blocks",
            ciphertext.len()
        )));
    }
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    let plaintext = cbc::Decryptor::<aes::Aes256>::new(key.as_ref().into(), iv.into())
        .decrypt_padded_mut::<Pkcs7>(buffer.as_mut_slice())
        .map_err(|_| CryptoError::WrongPassphrase)?;
    let plaintext = if PrivateKeyInfo::try_from(plaintext).is_ok() {
        Zeroizing::new(plaintext.to_vec())
    } else {
        as_pkcs8_v1(plaintext)
    };
    let Ok(pkcs8) = PrivateKeyInfo::try_from(plaintext.as_slice()) else {
        return Err(CryptoError::WrongPassphrase);
    };
    if pkcs8.algorithm.oid.to_string() == NOTARY_ED25519_OID {
        return Err(CryptoError::UnsupportedPrivateKey(
            "Notary's own Ed25519 key encoding is not read (ECDSA P-256 keys are)".to_owned(),
        ));
    }
    PrivateKey::from_pkcs8_der(&plaintext)
}

/// Notary writes PKCS#8 with version number 1 (the value that announces a public key, RFC
/// 5958) but no public key; readers of PKCS#8 refuse that. The version is set back to 0
/// (PKCS#8 v1, RFC 5208) when the document says 1 and does not parse as it is; whether the
/// result parses is checked after.
fn as_pkcs8_v1(plaintext: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(plaintext.to_vec());
    let version_at = match out.get(1) {
        Some(0x81) => 3,
        Some(0x82) => 4,
        Some(n) if *n < 0x80 => 2,
        _ => return out,
    };
    if out.get(version_at..version_at + 3) == Some(&[0x02, 0x01, 0x01][..]) {
        out[version_at + 2] = 0x00;
    }
    out
}

/// The object identifier Notary writes for its Ed25519 keys (not RFC 8410's).
const NOTARY_ED25519_OID: &str = "1.3.6.1.4.1.11591.15.1";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::crypto::{Algorithm, Signer};

    const NOTARY_ROOT: &str = include_str!("testdata/notary_root.key");
    const NOTARY_ROOT_ID: &str = include_str!("testdata/notary_root.keyid");

    #[test]
    fn reads_a_key_file_the_notary_client_wrote() {
        let file = NotaryKeyFile::from_pem(NOTARY_ROOT, b"rootpass").unwrap();
        assert_eq!(file.role.as_deref(), Some("root"));
        assert_eq!(file.gun, None);
        assert_eq!(file.key.algorithm(), Algorithm::EcdsaP256Sha256);
        // The file is named after Notary's key id of its public key.
        let spki = file.key.verifying_key().material().to_vec();
        let id = crate::notary::key_id("ecdsa", &Base64::encode_string(&spki));
        assert_eq!(id, NOTARY_ROOT_ID.trim());
        // It signs, and the signature verifies.
        let sig = file.key.sign(b"message").unwrap();
        file.key.verifying_key().verify(b"message", &sig).unwrap();
    }

    #[test]
    fn the_gun_header_is_returned() {
        let text = NOTARY_ROOT.replace("role: root\n", "gun: example.com/app\nrole: targets\n");
        let file = NotaryKeyFile::from_pem(&text, b"rootpass").unwrap();
        assert_eq!(file.role.as_deref(), Some("targets"));
        assert_eq!(file.gun.as_deref(), Some("example.com/app"));
    }

    #[test]
    fn a_wrong_passphrase_is_reported_as_such() {
        for wrong in [&b"rootpas"[..], b"", b"ROOTPASS"] {
            assert_eq!(
                NotaryKeyFile::from_pem(NOTARY_ROOT, wrong).unwrap_err(),
                CryptoError::WrongPassphrase
            );
        }
    }

    #[test]
    fn vouchs_own_loader_still_refuses_sha1() {
        // Headers stripped, so that only the SHA-1 PRF stands in the way.
        let stripped: String = NOTARY_ROOT
            .lines()
            .filter(|l| !l.contains(':') && !l.is_empty())
            .map(|l| format!("{l}\n"))
            .collect();
        let err = PrivateKey::from_encrypted_pem(&stripped, b"rootpass").unwrap_err();
        assert!(
            matches!(err, CryptoError::UnsupportedPrivateKey(_)),
            "{err}"
        );
        // And with the headers it is not even a PEM document to it.
        assert!(PrivateKey::from_encrypted_pem(NOTARY_ROOT, b"rootpass").is_err());
    }

    #[test]
    fn other_files_are_refused_clearly() {
        let legacy = "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let err = NotaryKeyFile::from_pem(legacy, b"x").unwrap_err();
        assert!(err.to_string().contains("before 0.7"), "{err}");
        let plain = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(NotaryKeyFile::from_pem(plain, b"x")
            .unwrap_err()
            .to_string()
            .contains("not encrypted"));
        let truncated: String = NOTARY_ROOT.lines().take(4).collect::<Vec<_>>().join("\n");
        assert!(matches!(
            NotaryKeyFile::from_pem(&truncated, b"rootpass"),
            Err(CryptoError::MalformedPrivateKey(_))
        ));
        let huge = "A".repeat(MAX_FILE_LEN + 1);
        assert!(NotaryKeyFile::from_pem(&huge, b"x").is_err());
    }

    #[test]
    fn excessive_iterations_are_refused_before_deriving() {
        // Rewrite the iteration count (INTEGER 0x0800) to 0x7fffffff.
        let file = NOTARY_ROOT;
        let body: String = file
            .lines()
            .filter(|l| !l.contains(':') && !l.is_empty() && !l.starts_with("-----"))
            .collect();
        let mut der = Base64::decode_vec(&body).unwrap();
        let at = der
            .windows(4)
            .position(|w| w == [0x02, 0x02, 0x08, 0x00])
            .unwrap();
        der.splice(at..at + 4, [0x02, 0x04, 0x7f, 0xff, 0xff, 0xff]);
        // Lengths of the enclosing sequences grow by two.
        for i in [2usize, 4, 17, 19, 32] {
            der[i] += 2;
        }
        let pem = format!(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{}\n-----END ENCRYPTED PRIVATE KEY-----\n",
            Base64::encode_string(&der)
        );
        let err = NotaryKeyFile::from_pem(&pem, b"rootpass").unwrap_err();
        assert!(err.to_string().contains("above the limit"), "{err}");
    }
}
