//! Online keys: the per-repository timestamp and snapshot keys the server signs with.
//!
//! Private keys are stored sealed with AES-256-GCM under a key-encryption key (KEK) that
//! never enters the database: by default a random 32-byte key in `<data-dir>/kek` (mode
//! 0600). The associated data binds each sealed key to its GUN, role and key id, so a sealed
//! key copied to another row does not open. Decrypted keys are cached in memory.
//!
//! Signing goes through [`vouch_tuf::crypto::Signer`], so a PKCS#11 token or a KMS can take
//! the place of the local key later without touching the rest of the server.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
use vouch_tuf::json;
use vouch_tuf::metadata::Key;
use vouch_tuf::reference::Gun;
use vouch_tuf::time::Timestamp;
use vouch_tuf::types::KeyId;
use zeroize::Zeroizing;

use crate::store::{Store, StoreError, StoredKey};
use crate::validate::{OnlineKey, OnlineSigners};

/// A failure to load, seal or open an online key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key-encryption key file is unreadable or malformed.
    #[error("key-encryption key {path}: {reason}")]
    Kek {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A sealed key did not open (wrong KEK, or the database row was altered).
    #[error("online {role} key {keyid} of {gun} cannot be decrypted with this key-encryption key")]
    Unseal {
        /// The repository.
        gun: String,
        /// The role.
        role: String,
        /// The key id.
        keyid: String,
    },
    /// Key generation or encoding failed.
    #[error("online key: {0}")]
    Crypto(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// More repositories got their first online key in the current minute than allowed.
    #[error("this server creates online keys for at most {per_minute} new repositories a minute: retry later")]
    CreationLimit {
        /// The limit.
        per_minute: u32,
    },
}

/// The key-encryption key.
pub struct Kek(LessSafeKey);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    /// A KEK from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| KeyError::Kek {
            path: "<memory>".into(),
            reason: "must be 32 bytes".into(),
        })?;
        Ok(Kek(LessSafeKey::new(key)))
    }

    /// Loads the KEK from `path` (64 hex characters), creating it with mode 0600 when absent.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let err = |reason: String| KeyError::Kek {
            path: path.display().to_string(),
            reason,
        };
        if !path.exists() {
            let mut raw = Zeroizing::new([0u8; 32]);
            SystemRandom::new()
                .fill(&mut raw[..])
                .map_err(|_| err("no randomness".into()))?;
            let hex = Zeroizing::new(vouch_tuf::hex::encode(&raw[..]) + "\n");
            crate::config::write_private_file(path, hex.as_bytes())
                .map_err(|e| err(e.to_string()))?;
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?);
        let raw = Zeroizing::new(
            vouch_tuf::hex::decode(text.trim())
                .map_err(|e| err(format!("expected 64 hex characters: {e}")))?,
        );
        if raw.len() != 32 {
            return Err(err(format!(
                "expected 32 bytes (64 hex characters), found {}",
                raw.len()
            )));
        }
        Self::from_bytes(&raw)
    }

    fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::Crypto("no randomness".into()))?;
        let mut buf = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut buf,
            )
            .map_err(|_| KeyError::Crypto("sealing failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    fn open(&self, aad: &str, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let plain_len = self
            .0
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf)
            .ok()?
            .len();
        buf.truncate(plain_len);
        Some(buf)
    }
}

/// What [`rotate_kek`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekRotation {
    /// Online keys now sealed under the new KEK (current and retired, every repository).
    pub resealed: usize,
    /// Whether an interrupted earlier rotation was completed rather than a new one started.
    pub resumed: bool,
}

/// The file a KEK rotation writes the new KEK to before it touches the database:
/// `<kek file>.new`.
pub fn pending_kek_path(kek_path: &Path) -> std::path::PathBuf {
    let mut name = kek_path.as_os_str().to_owned();
    name.push(".new");
    std::path::PathBuf::from(name)
}

/// Replaces the key-encryption key: re-seals every online key in `store` under a new random
/// KEK and then puts the new KEK in `kek_path`. Run it while no server uses the database.
///
/// Crash-safe in every step: the new KEK is first written to `<kek_path>.new` (flushed),
/// then every key is re-sealed in one database transaction, then the new file is renamed over
/// the old one. Run again after an interruption, it finds the pending KEK and finishes with
/// it: keys the database still seals under the old KEK are re-sealed, keys already under the
/// new one are kept. A key that opens under neither stops it with nothing changed.
pub fn rotate_kek(store: &dyn Store, kek_path: &Path) -> Result<KekRotation, KeyError> {
    if !kek_path.exists() {
        return Err(KeyError::Kek {
            path: kek_path.display().to_string(),
            reason: "no such file: there is no key-encryption key to replace".into(),
        });
    }
    let old = Kek::load_or_create(kek_path)?;
    let pending = pending_kek_path(kek_path);
    let resumed = pending.exists();
    // Creates the pending file (random, mode 0600) unless an interrupted run left one.
    let new = Kek::load_or_create(&pending)?;
    if let Ok(f) = std::fs::File::open(&pending) {
        let _ = f.sync_all();
    }
    let resealed = store.reseal_online_keys(&mut |gun, role, keyid, sealed| {
        let aad = aad_of(gun, role, keyid);
        if let Some(plain) = old.open(&aad, sealed) {
            new.seal(&aad, &plain).map_err(|e| e.to_string())
        } else if new.open(&aad, sealed).is_some() {
            Ok(sealed.to_vec())
        } else {
            Err(format!(
                "online {role} key {keyid} of {gun} opens under neither the current nor the new key-encryption key"
            ))
        }
    })?;
    std::fs::rename(&pending, kek_path).map_err(|e| KeyError::Kek {
        path: kek_path.display().to_string(),
        reason: format!("replacing it with {}: {e}", pending.display()),
    })?;
    if let Some(dir) = kek_path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(KekRotation { resealed, resumed })
}

/// Loads the key-encryption key at `path` for `store`, creating it only while the store
/// holds no online key, and checks that it opens the store's oldest online key: a server
/// given another KEK than the other servers of its store (a replica with a fresh data
/// directory, a mistyped path) refuses to start instead of failing every signature later,
/// or sealing keys no other replica can open.
pub fn load_kek_for(store: &dyn Store, path: &Path) -> Result<Kek, KeyError> {
    let err = |reason: String| KeyError::Kek {
        path: path.display().to_string(),
        reason,
    };
    let sample = store.sample_online_key()?;
    if let Some((gun, role, key)) = &sample {
        if !path.exists() {
            return Err(err(format!(
                "missing, but the store already holds online keys sealed under a key-encryption key (the first: {role} key {} of {gun}): give this server the KEK file the others use (--kek-file, keys.kek_file)",
                key.keyid
            )));
        }
    }
    let kek = Kek::load_or_create(path)?;
    if let Some((gun, role, key)) = sample {
        if kek
            .open(&aad_of(&gun, &role, &key.keyid), &key.sealed_private)
            .is_none()
        {
            return Err(err(format!(
                "does not open the store's online keys (tried the {role} key {} of {gun}): every server of one store needs the same key-encryption key; after an interrupted `vouch-server rotate-kek`, run it again",
                key.keyid
            )));
        }
    }
    Ok(kek)
}

fn aad(gun: &Gun, role: &str, keyid: &str) -> String {
    aad_of(gun.as_str(), role, keyid)
}

/// What a sealed online key is bound to: its GUN, role and key id.
fn aad_of(gun: &str, role: &str, keyid: &str) -> String {
    format!("vouch-online-key\0{gun}\0{role}\0{keyid}")
}

/// The roles the server may hold keys for.
pub const ONLINE_ROLES: [&str; 2] = ["timestamp", "snapshot"];

/// Online keys of all repositories: creation, rotation, and unsealed signers (cached).
///
/// A repository's first key is made on the first request for it, so a token whose scope is a
/// glob could otherwise make keys (rows, and key generation) for any number of names: first
/// keys are limited to [`OnlineKeys::DEFAULT_CREATIONS_PER_MINUTE`] a minute per process.
pub struct OnlineKeys {
    store: Arc<dyn Store>,
    kek: Kek,
    cache: Mutex<HashMap<(String, String, String), Arc<PrivateKey>>>,
    creations: Mutex<CreationWindow>,
    creations_per_minute: u32,
}

/// First keys made in the current minute.
#[derive(Debug, Default)]
struct CreationWindow {
    started: Option<std::time::Instant>,
    made: u32,
}

impl OnlineKeys {
    /// First keys a process makes a minute by default: far above how fast an organisation
    /// creates repositories.
    pub const DEFAULT_CREATIONS_PER_MINUTE: u32 = 600;

    /// Online keys kept in `store`, sealed under `kek`.
    pub fn new(store: Arc<dyn Store>, kek: Kek) -> Self {
        OnlineKeys {
            store,
            kek,
            cache: Mutex::new(HashMap::new()),
            creations: Mutex::new(CreationWindow::default()),
            creations_per_minute: Self::DEFAULT_CREATIONS_PER_MINUTE,
        }
    }

    /// The same, making at most `per_minute` first keys a minute.
    pub fn with_creation_limit(mut self, per_minute: u32) -> Self {
        self.creations_per_minute = per_minute;
        self
    }

    /// Takes one first-key creation from the current minute's allowance.
    fn allow_creation(&self) -> Result<(), KeyError> {
        let mut w = self.creations.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        if w.started
            .is_none_or(|s| now.duration_since(s) >= std::time::Duration::from_secs(60))
        {
            *w = CreationWindow {
                started: Some(now),
                made: 0,
            };
        }
        if w.made >= self.creations_per_minute {
            return Err(KeyError::CreationLimit {
                per_minute: self.creations_per_minute,
            });
        }
        w.made += 1;
        Ok(())
    }

    fn generate(
        &self,
        gun: &Gun,
        role: &str,
        now: Timestamp,
    ) -> Result<(StoredKey, Arc<PrivateKey>), KeyError> {
        let sk = PrivateKey::generate(Algorithm::Ed25519)
            .map_err(|e| KeyError::Crypto(e.to_string()))?;
        let key = Key::from_verifying_key(&sk.verifying_key());
        let keyid = key.key_id().to_string();
        let der = sk
            .to_pkcs8_der()
            .map_err(|e| KeyError::Crypto(e.to_string()))?;
        let sealed = self.kek.seal(&aad(gun, role, &keyid), &der)?;
        let public = String::from_utf8_lossy(&json::canonical(&key.to_value())).into_owned();
        Ok((
            StoredKey {
                keyid,
                public,
                sealed_private: sealed,
                created_at: now,
            },
            Arc::new(sk),
        ))
    }

    /// The newest key of (gun, role); with `create`, one is made when there is none.
    pub fn current(
        &self,
        gun: &Gun,
        role: &str,
        create: bool,
        now: Timestamp,
    ) -> Result<Option<StoredKey>, KeyError> {
        if let Some(k) = self.store.online_keys(gun, role)?.pop() {
            return Ok(Some(k));
        }
        if !create {
            return Ok(None);
        }
        self.allow_creation()?;
        let (stored, sk) = self.generate(gun, role, now)?;
        let winner = self.store.add_online_key(gun, role, &stored, None)?;
        if winner.keyid == stored.keyid {
            self.remember(gun, role, &stored.keyid, sk);
        }
        Ok(Some(winner))
    }

    /// Adds a new key for (gun, role), which becomes the one offered to clients; `named`
    /// are the key ids the repository's current root lists for `role`.
    ///
    /// When the newest key is not among them it is still waiting for a root to adopt it, and
    /// it is returned instead of a new one: rotating again before publishing is idempotent,
    /// so a client holding only a push token cannot pile up keys (each of which every publish
    /// would otherwise read). Keys grow only with the root versions that adopt them.
    pub fn rotate(
        &self,
        gun: &Gun,
        role: &str,
        named: &[KeyId],
        now: Timestamp,
    ) -> Result<Rotation, KeyError> {
        let after = match self.store.online_keys(gun, role)?.pop() {
            Some(newest) if !named.iter().any(|id| id.as_str() == newest.keyid) => {
                return Ok(Rotation::Pending(newest));
            }
            Some(newest) => Some(newest.keyid),
            // A repository's first key, made by a rotation: the same limit as a first read.
            None => {
                self.allow_creation()?;
                None
            }
        };
        let (stored, sk) = self.generate(gun, role, now)?;
        // Conditional on the newest key read above: of two rotations racing (on this
        // replica or another), one adds its key and the other gets that key back, pending.
        let k = self
            .store
            .add_online_key(gun, role, &stored, after.as_deref())?;
        if k.keyid != stored.keyid {
            return Ok(Rotation::Pending(k));
        }
        self.remember(gun, role, &stored.keyid, sk);
        Ok(Rotation::New(k))
    }

    fn remember(&self, gun: &Gun, role: &str, keyid: &str, sk: Arc<PrivateKey>) {
        if let Ok(mut c) = self.cache.lock() {
            // Bounded: past the cap it starts over, and keys are unsealed again on demand.
            if c.len() >= UNSEALED_CACHE_KEYS {
                c.clear();
            }
            c.insert((gun.to_string(), role.to_owned(), keyid.to_owned()), sk);
        }
    }

    /// How many unsealed keys are kept in memory.
    #[cfg(test)]
    pub(crate) fn cached(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.len())
    }

    fn unsealed(&self, gun: &Gun, role: &str, k: &StoredKey) -> Result<Arc<PrivateKey>, KeyError> {
        let cache_key = (gun.to_string(), role.to_owned(), k.keyid.clone());
        if let Some(sk) = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(&cache_key).cloned())
        {
            return Ok(sk);
        }
        let unseal_err = || KeyError::Unseal {
            gun: gun.to_string(),
            role: role.to_owned(),
            keyid: k.keyid.clone(),
        };
        let der = self
            .kek
            .open(&aad(gun, role, &k.keyid), &k.sealed_private)
            .ok_or_else(unseal_err)?;
        let sk = Arc::new(PrivateKey::from_pkcs8_der(&der).map_err(|_| unseal_err())?);
        self.remember(gun, role, &k.keyid, sk.clone());
        Ok(sk)
    }

    /// The online keys of `gun` that `wanted` lets through, and the newest key of each role
    /// (the one a new root may adopt), unsealed, for signing. Retired keys no root names any
    /// more are never unsealed.
    pub fn signers(&self, gun: &Gun, wanted: &Wanted<'_>) -> Result<HeldSigners, KeyError> {
        let mut held = HeldSigners::default();
        for role in ONLINE_ROLES {
            let mut keys = self.store.online_keys(gun, role)?;
            let newest = keys.pop();
            keys.retain(|k| wanted.wants(&k.keyid));
            keys.extend(newest);
            for k in keys {
                let sk = self.unsealed(gun, role, &k)?;
                let keyid =
                    KeyId::new(k.keyid.clone()).map_err(|e| KeyError::Crypto(e.to_string()))?;
                let list = if role == "timestamp" {
                    &mut held.timestamp
                } else {
                    &mut held.snapshot
                };
                list.push((keyid, sk));
            }
        }
        Ok(held)
    }
}

/// Which of a repository's online keys a signing operation needs besides the newest ones.
#[derive(Clone, Copy, Debug)]
pub enum Wanted<'a> {
    /// Every key (an uploaded root may name any of them).
    All,
    /// The keys with these ids (those the current root names).
    Named(&'a [KeyId]),
}

impl Wanted<'_> {
    fn wants(&self, keyid: &str) -> bool {
        match self {
            Wanted::All => true,
            Wanted::Named(ids) => ids.iter().any(|id| id.as_str() == keyid),
        }
    }
}

/// What a rotation did.
#[derive(Debug)]
pub enum Rotation {
    /// A new key was made.
    New(StoredKey),
    /// The newest key was not yet adopted by a root: it is the answer again.
    Pending(StoredKey),
}

/// Most unsealed keys kept in memory.
const UNSEALED_CACHE_KEYS: usize = 4096;

/// Unsealed online keys of one repository.
#[derive(Default)]
pub struct HeldSigners {
    timestamp: Vec<(KeyId, Arc<PrivateKey>)>,
    snapshot: Vec<(KeyId, Arc<PrivateKey>)>,
}

impl HeldSigners {
    /// Borrowed as the validator wants them.
    pub fn as_online(&self) -> OnlineSigners<'_> {
        OnlineSigners {
            timestamp: borrow_keys(&self.timestamp),
            snapshot: borrow_keys(&self.snapshot),
        }
    }
}

fn borrow_keys(v: &[(KeyId, Arc<PrivateKey>)]) -> Vec<OnlineKey<'_>> {
    v.iter()
        .map(|(id, sk)| OnlineKey {
            keyid: id.clone(),
            signer: sk.as_ref() as &dyn Signer,
        })
        .collect()
}

#[cfg(test)]
mod tests;
