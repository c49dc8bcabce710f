//! The keys of webhook signatures: the server's ed25519 key (a PKCS#8 PEM file, made on
//! first start, mode 0600), its public half as receivers write it (`whpk_` and base64), and
//! subscriptions' HMAC secrets (`whsec_` and base64, as Standard Webhooks spells them).

use std::path::Path;

use base64ct::{Base64, Encoding};
use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
use zeroize::Zeroizing;

use crate::config::write_private_file;

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// Shortest HMAC secret accepted, in bytes (Standard Webhooks asks for 24 to 64).
const MIN_SECRET: usize = 24;
/// Longest secret file read.
const MAX_SECRET_FILE: u64 = 4096;

/// Reads the ed25519 key at `path`, or makes one there when the file does not exist and
/// `may_create` (a key every replica must share is never made by one of them alone). A key
/// file others may read or write is refused.
pub(crate) fn load_or_create_key(path: &Path, may_create: bool) -> anyhow::Result<PrivateKey> {
    if !path.exists() {
        anyhow::ensure!(
            may_create,
            "the webhook signing key {} does not exist: with PostgreSQL every replica must sign with one key, so make it once (e.g. `openssl genpkey -algorithm ed25519 -out {}`) and give every replica the file",
            path.display(),
            path.display()
        );
        let key = PrivateKey::generate(Algorithm::Ed25519)
            .map_err(|e| anyhow::anyhow!("making the webhook signing key: {e}"))?;
        let der = key
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("encoding the webhook signing key: {e}"))?;
        let body = Zeroizing::new(Base64::encode_string(&der));
        let mut pem = Zeroizing::new(format!("{PEM_BEGIN}\n"));
        for line in body.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str(PEM_END);
        pem.push('\n');
        write_private_file(path, pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        tracing::info!(file = %path.display(), "made the webhook signing key");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| {
                anyhow::anyhow!("reading the webhook signing key {}: {e}", path.display())
            })?
            .permissions()
            .mode();
        anyhow::ensure!(
            mode & 0o077 == 0,
            "the webhook signing key {} may be read or written by others (mode {:o}): chmod 600 it",
            path.display(),
            mode & 0o777
        );
    }
    let text =
        Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("reading the webhook signing key {}: {e}", path.display())
        })?);
    let inner = text
        .trim()
        .strip_prefix(PEM_BEGIN)
        .and_then(|t| t.strip_suffix(PEM_END))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} is not an unencrypted PKCS#8 PEM (\"{PEM_BEGIN}\")",
                path.display()
            )
        })?;
    let b64: Zeroizing<String> = Zeroizing::new(inner.split_whitespace().collect());
    let der = Zeroizing::new(
        Base64::decode_vec(&b64)
            .map_err(|_| anyhow::anyhow!("{}: the PEM body is not base64", path.display()))?,
    );
    let key =
        PrivateKey::from_pkcs8_der(&der).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    anyhow::ensure!(
        key.algorithm() == Algorithm::Ed25519,
        "{}: the webhook signing key must be ed25519 (Standard Webhooks v1a)",
        path.display()
    );
    Ok(key)
}

/// `whpk_` and the base64 of the raw 32-byte public key.
pub(crate) fn public_text(key: &PrivateKey) -> String {
    format!(
        "whpk_{}",
        Base64::encode_string(key.verifying_key().material())
    )
}

/// An ed25519 signature over `message`.
pub(crate) fn sign(key: &PrivateKey, message: &[u8]) -> Result<Vec<u8>, String> {
    key.sign(message)
        .map_err(|e| format!("signing the delivery: {e}"))
}

/// Reads a private file of at most `max` bytes, refusing one that others may read or
/// write; `what` names its setting in errors. The one home of that check (webhook secrets,
/// mirror passwords).
pub(crate) fn read_private_file(
    path: &Path,
    what: &str,
    max: u64,
) -> Result<Zeroizing<String>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if meta.len() > max {
        return Err(format!("{what} {} is too large", path.display()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{what} {} may be read or written by others (mode {:o}): chmod 600 it",
                path.display(),
                mode & 0o777
            ));
        }
    }
    Ok(Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| format!("{what} {}: {e}", path.display()))?,
    ))
}

/// Reads a subscription's secret file: `whsec_` and the base64 of at least 24 bytes.
pub(crate) fn read_secret(path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    let text = read_private_file(path, "secret_file", MAX_SECRET_FILE)?;
    let b64 = text.trim().strip_prefix("whsec_").ok_or_else(|| {
        format!(
            "secret_file {} must hold whsec_ and base64 (a Standard Webhooks secret)",
            path.display()
        )
    })?;
    let secret = Zeroizing::new(
        Base64::decode_vec(b64)
            .map_err(|_| format!("secret_file {}: not base64 after whsec_", path.display()))?,
    );
    if secret.len() < MIN_SECRET {
        return Err(format!(
            "secret_file {}: the secret is {} bytes, at least {MIN_SECRET} are needed",
            path.display(),
            secret.len()
        ));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("webhook-signing.pem");
        assert!(
            load_or_create_key(&path, false).is_err(),
            "made where it may not be"
        );
        let made = load_or_create_key(&path, true).unwrap();
        let again = load_or_create_key(&path, false).unwrap();
        assert_eq!(public_text(&made), public_text(&again));
        assert!(public_text(&made).starts_with("whpk_"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key file is readable by others");
        }
        let sig = sign(&made, b"msg").unwrap();
        made.verifying_key().verify(b"msg", &sig).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = load_or_create_key(&path, false).unwrap_err().to_string();
            assert!(e.contains("chmod 600"), "{e}");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(load_or_create_key(&path, true).is_err());
    }

    #[test]
    fn secrets_are_whsec_base64_of_enough_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let good = format!("whsec_{}\n", Base64::encode_string(&[7u8; 32]));
        std::fs::write(&path, &good).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(read_secret(&path).unwrap_err().contains("chmod 600"));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(read_secret(&path).unwrap().len(), 32);
        for bad in [
            "plain".to_owned(),
            "whsec_!!!".to_owned(),
            format!("whsec_{}", Base64::encode_string(&[7u8; 8])),
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(read_secret(&path).is_err());
        }
        assert!(read_secret(&dir.path().join("missing")).is_err());
    }
}
