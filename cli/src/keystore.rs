//! Private keys on disk: `TRUST_DIR/private/<keyid>.key`, mode 0600, in a 0700 directory.
//!
//! Each file is an encrypted PKCS#8 PEM block (scrypt or PBKDF2 + AES-256-CBC, as
//! `vouch-tuf` writes and reads it), preceded by `name: value` lines that let `key list`
//! show the role, algorithm and public key without asking for a passphrase, and, for a key
//! `vouch init` made, the repository it was made for (so that `key list` can tell a key
//! rotated out of it):
//!
//! ```text
//! role: targets
//! algorithm: ed25519
//! public: {"keytype":"ed25519","keyval":{"public":"…"},"scheme":"ed25519"}
//! repository: registry.example.com/org/app
//! -----BEGIN ENCRYPTED PRIVATE KEY-----
//! …
//! ```
//!
//! Unknown lines are ignored, so older files (without `repository:`) read as before.
//!
//! Files readable or writable by anyone but their owner are refused, with the `chmod`
//! that fixes them. Nothing here prompts: passphrases are the caller's.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};
use vouch_tuf::crypto::{Algorithm, CryptoError, Kdf, PrivateKey, Signer};
use vouch_tuf::json;
use vouch_tuf::metadata::Key;
use vouch_tuf::types::KeyId;

/// The algorithm names the CLI uses.
pub fn algorithm_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::Ed25519 => "ed25519",
        Algorithm::EcdsaP256Sha256 => "ecdsa-p256",
        Algorithm::RsaPssSha256 => "rsa-pss",
    }
}

/// The TUF key object of a private key's public half.
pub fn public_key(key: &PrivateKey) -> Key {
    Key::from_verifying_key(&key.verifying_key())
}

/// One stored key, as listed (no secret material).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key id (of the public key object).
    pub keyid: KeyId,
    /// The role the key was made or imported for.
    pub role: String,
    /// `ed25519` or `ecdsa-p256`.
    pub algorithm: String,
    /// The public key object, when the file records it.
    pub public: Option<Key>,
    /// The repository the key was made for, when the file records it.
    pub repository: Option<String>,
    /// The file.
    pub path: PathBuf,
}

/// The private-key directory of a trust directory.
#[derive(Clone, Debug)]
pub struct Keystore {
    dir: PathBuf,
}

fn check_private(path: &Path, meta: &fs::Metadata, max_mode: u32) -> anyhow::Result<()> {
    let mode = meta.permissions().mode() & 0o777;
    if mode & !max_mode != 0 {
        let want = if meta.is_dir() { "700" } else { "600" };
        bail!(
            "{} has mode {mode:o}: private keys must be readable by their owner only \
             (run: chmod {want} {})",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

impl Keystore {
    /// The key store of `trust_dir` (not created until a key is saved).
    pub fn new(trust_dir: &Path) -> Self {
        Keystore {
            dir: trust_dir.join("private"),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn ensure_dir(&self) -> anyhow::Result<()> {
        if !self.dir.exists() {
            fs::create_dir_all(&self.dir)
                .with_context(|| format!("cannot create {}", self.dir.display()))?;
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot set the mode of {}", self.dir.display()))?;
        }
        let meta = fs::metadata(&self.dir)?;
        check_private(&self.dir, &meta, 0o700)
    }

    /// Every stored key, sorted by role then key id. A directory that group or others may
    /// read, write or enter is refused, like a loose key file.
    pub fn list(&self) -> anyhow::Result<Vec<Entry>> {
        let meta = match fs::metadata(&self.dir) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", self.dir.display())),
        };
        check_private(&self.dir, &meta, 0o700)?;
        let rd = fs::read_dir(&self.dir)
            .with_context(|| format!("cannot read {}", self.dir.display()))?;
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent?;
            let name = ent.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".key")) else {
                continue;
            };
            let Ok(keyid) = KeyId::new(stem) else {
                continue;
            };
            let path = ent.path();
            let text = self.read_checked(&path)?;
            let (head, _) = split_file(&path, &text)?;
            out.push(Entry {
                keyid,
                role: head.role,
                algorithm: head.algorithm,
                public: head.public,
                repository: head.repository,
                path,
            });
        }
        out.sort_by(|a, b| (&a.role, &a.keyid).cmp(&(&b.role, &b.keyid)));
        Ok(out)
    }

    /// The stored key whose id is `keyid`, if any.
    pub fn get(&self, keyid: &KeyId) -> anyhow::Result<Option<Entry>> {
        Ok(self.list()?.into_iter().find(|e| &e.keyid == keyid))
    }

    /// The stored key whose id starts with `prefix` (at least 4 hex digits, unique).
    pub fn find(&self, prefix: &str) -> anyhow::Result<Entry> {
        if prefix.len() < 4 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("{prefix:?} is not a key id: give at least 4 hex digits of one (see `vouch key list`)");
        }
        let prefix = prefix.to_ascii_lowercase();
        let mut hits: Vec<Entry> = self
            .list()?
            .into_iter()
            .filter(|e| e.keyid.as_str().starts_with(&prefix))
            .collect();
        match hits.len() {
            0 => bail!(
                "no private key {prefix} in {} (see `vouch key list`)",
                self.dir.display()
            ),
            1 => Ok(hits.remove(0)),
            n => bail!("{n} keys start with {prefix}: give more digits"),
        }
    }

    fn read_checked(&self, path: &Path) -> anyhow::Result<String> {
        let meta = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        check_private(path, &meta, 0o600)?;
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    }

    /// The encrypted PEM block of `entry`, as stored.
    pub fn pem(&self, entry: &Entry) -> anyhow::Result<String> {
        let text = self.read_checked(&entry.path)?;
        let (_, pem) = split_file(&entry.path, &text)?;
        Ok(pem.to_owned())
    }

    /// Decrypts `entry` with `passphrase`.
    pub fn unlock(&self, entry: &Entry, passphrase: &str) -> anyhow::Result<PrivateKey> {
        let pem = self.pem(entry)?;
        match PrivateKey::from_encrypted_pem(&pem, passphrase.as_bytes()) {
            Ok(k) => Ok(k),
            Err(CryptoError::WrongPassphrase) => Err(anyhow!(CryptoError::WrongPassphrase)),
            Err(e) => Err(e).with_context(|| format!("cannot read key {}", entry.path.display())),
        }
    }

    /// Encrypts `key` with `passphrase` and stores it for `role`; refuses to overwrite.
    pub fn save(
        &self,
        key: &PrivateKey,
        role: &str,
        passphrase: &str,
        kdf: Kdf,
    ) -> anyhow::Result<Entry> {
        let pem = key
            .to_encrypted_pem(passphrase.as_bytes(), kdf)
            .context("cannot encrypt the key")?;
        self.save_pem(
            &public_key(key),
            role,
            algorithm_name(key.algorithm()),
            &pem,
            false,
        )
    }

    /// Stores an encrypted PEM block (already checked to decrypt to the key whose public
    /// half is `public`). With `replace`, an existing file of that key is replaced atomically.
    pub fn save_pem(
        &self,
        public: &Key,
        role: &str,
        algorithm: &str,
        pem: &str,
        replace: bool,
    ) -> anyhow::Result<Entry> {
        self.save_pem_for(public, role, algorithm, None, pem, replace)
    }

    /// Records in `entry`'s file that the key was made for `repository` (the file is
    /// rewritten atomically, the encrypted PEM block unchanged).
    pub fn record_repository(&self, entry: &Entry, repository: &str) -> anyhow::Result<Entry> {
        let public = entry
            .public
            .as_ref()
            .ok_or_else(|| anyhow!("{} does not record its public key", entry.path.display()))?;
        let pem = self.pem(entry)?;
        self.save_pem_for(
            public,
            &entry.role,
            &entry.algorithm,
            Some(repository),
            &pem,
            true,
        )
    }

    /// [`Keystore::save_pem`], recording the repository the key was made for, if any.
    pub fn save_pem_for(
        &self,
        public: &Key,
        role: &str,
        algorithm: &str,
        repository: Option<&str>,
        pem: &str,
        replace: bool,
    ) -> anyhow::Result<Entry> {
        if repository.is_some_and(|r| r.contains(['\n', '\r'])) {
            bail!("a repository name cannot span lines");
        }
        self.ensure_dir()?;
        let keyid = &public.key_id();
        let public_json = String::from_utf8_lossy(&json::to_json(&public.to_value())).into_owned();
        let path = self.dir.join(format!("{keyid}.key"));
        if !replace && path.exists() {
            bail!("key {keyid} is already stored in {}", path.display());
        }
        let tmp = self
            .dir
            .join(format!(".{keyid}.tmp.{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            write!(
                f,
                "role: {role}\nalgorithm: {algorithm}\npublic: {public_json}\n"
            )?;
            if let Some(r) = repository {
                writeln!(f, "repository: {r}")?;
            }
            write!(f, "{}", pem.trim_end())?;
            writeln!(f)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            anyhow!(e).context(format!("cannot write {}", path.display()))
        })?;
        Ok(Entry {
            keyid: keyid.clone(),
            role: role.to_owned(),
            algorithm: algorithm.to_owned(),
            public: Some(public.clone()),
            repository: repository.map(str::to_owned),
            path,
        })
    }

    /// Deletes a stored key (used to undo keys made for a change that was refused).
    pub fn remove(&self, entry: &Entry) -> anyhow::Result<()> {
        fs::remove_file(&entry.path)
            .with_context(|| format!("cannot remove {}", entry.path.display()))
    }
}

/// Keys created for a change that may still be refused: deleted again when dropped, unless
/// [`NewKeys::keep_for`] is called once the change is accepted.
pub struct NewKeys<'a> {
    keystore: &'a Keystore,
    entries: Vec<Entry>,
}

impl<'a> NewKeys<'a> {
    /// Nothing created yet.
    pub fn new(keystore: &'a Keystore) -> Self {
        NewKeys {
            keystore,
            entries: Vec::new(),
        }
    }

    /// Generates a key for `role` (passphrase from `VOUCH_<ROLE>_PASSPHRASE` or a prompt)
    /// and stores it, to be deleted again unless kept.
    pub fn generate(&mut self, role: &str, alg: Algorithm) -> anyhow::Result<(PrivateKey, Entry)> {
        let pass = crate::passphrase::for_new_key(role)?;
        let key = PrivateKey::generate(alg).context("cannot generate a key")?;
        let e = self
            .keystore
            .save(&key, role, &pass, crate::passphrase::kdf()?)?;
        self.entries.push(e.clone());
        Ok((key, e))
    }

    /// The change to `repository` was accepted: keep the keys, recording in each file the
    /// repository it was made for. A file that cannot be rewritten keeps its key, with a
    /// warning.
    pub fn keep_for(mut self, repository: &str) {
        for e in std::mem::take(&mut self.entries) {
            if let Err(err) = self.keystore.record_repository(&e, repository) {
                crate::output::warn(&format!(
                    "cannot record the repository in {}: {}",
                    e.path.display(),
                    crate::failure::one_line(&err)
                ));
            }
        }
    }
}

impl Drop for NewKeys<'_> {
    fn drop(&mut self) {
        for e in &self.entries {
            let _ = self.keystore.remove(e);
        }
    }
}

/// The `name: value` lines before a key file's PEM block.
struct Head {
    role: String,
    algorithm: String,
    public: Option<Key>,
    repository: Option<String>,
}

/// Splits a key file into its head and the PEM block.
fn split_file<'a>(path: &Path, text: &'a str) -> anyhow::Result<(Head, &'a str)> {
    // The PEM block starts at the first line that opens one (the `public:` line of an
    // ECDSA key carries an escaped PEM public key, which must not count).
    let start = if text.starts_with("-----BEGIN") {
        0
    } else {
        text.find("\n-----BEGIN")
            .map(|i| i + 1)
            .ok_or_else(|| anyhow!("{} holds no PEM block", path.display()))?
    };
    let (head, pem) = text.split_at(start);
    let mut out = Head {
        role: "-".to_owned(),
        algorithm: "-".to_owned(),
        public: None,
        repository: None,
    };
    for line in head.lines() {
        match line.split_once(':') {
            Some(("role", v)) => out.role = v.trim().to_owned(),
            Some(("algorithm", v)) => out.algorithm = v.trim().to_owned(),
            Some(("repository", v)) => out.repository = Some(v.trim().to_owned()),
            Some(("public", v)) => {
                out.public = json::parse(v.trim().as_bytes())
                    .ok()
                    .and_then(|v| Key::from_value(v).ok());
            }
            _ => {}
        }
    }
    Ok((out, pem))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn save_list_unlock_and_refuse_loose_modes() {
        let dir = tempfile::tempdir().unwrap();
        let ks = Keystore::new(dir.path());
        assert!(ks.list().unwrap().is_empty());
        let ecdsa = PrivateKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let ee = ks
            .save(&ecdsa, "ci", "pw", Kdf::fast_insecure_for_tests())
            .unwrap();
        assert!(ks
            .pem(&ee)
            .unwrap()
            .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        assert_eq!(ks.list().unwrap()[0].public, Some(public_key(&ecdsa)));
        ks.remove(&ee).unwrap();

        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let e = ks
            .save(&key, "targets", "pw", Kdf::fast_insecure_for_tests())
            .unwrap();
        assert_eq!(
            fs::metadata(&e.path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let listed = ks.list().unwrap();
        assert_eq!(listed, vec![e.clone()]);
        assert_eq!(listed[0].algorithm, "ed25519");
        assert_eq!(listed[0].public, Some(public_key(&key)));
        assert_eq!(ks.find(&e.keyid.as_str()[..8]).unwrap(), e);
        assert_eq!(e.repository, None);
        let before = ks.pem(&e).unwrap();
        let recorded = ks.record_repository(&e, "example.com/org/app").unwrap();
        assert_eq!(recorded.repository.as_deref(), Some("example.com/org/app"));
        assert_eq!(ks.list().unwrap(), vec![recorded.clone()]);
        assert_eq!(ks.pem(&recorded).unwrap(), before);
        assert_eq!(
            ks.unlock(&recorded, "pw").unwrap().algorithm(),
            key.algorithm()
        );
        let e = recorded;
        let back = ks.unlock(&e, "pw").unwrap();
        assert_eq!(public_key(&back).key_id(), e.keyid);
        let wrong = ks.unlock(&e, "nope").unwrap_err();
        assert!(wrong.to_string().contains("passphrase"), "{wrong}");
        assert!(ks
            .save(&key, "targets", "pw", Kdf::fast_insecure_for_tests())
            .is_err());

        fs::set_permissions(&e.path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = ks.list().unwrap_err().to_string();
        assert!(
            err.contains("mode 644") && err.contains("chmod 600"),
            "{err}"
        );
        fs::set_permissions(&e.path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(ks.dir(), fs::Permissions::from_mode(0o755)).unwrap();
        let err = ks.list().unwrap_err().to_string();
        assert!(
            err.contains("mode 755") && err.contains("chmod 700"),
            "{err}"
        );
    }
}
