//! The one threshold check, for top-level and delegated roles alike.

use std::collections::{BTreeMap, HashMap, HashSet};

use thiserror::Error;

use crate::types::{KeyId, Threshold};

use super::{Key, Signature};

/// Signatures that do not meet a role's threshold.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// Fewer distinct keys signed validly than the threshold requires.
    #[error("{role} metadata has {valid} valid signature(s) from distinct authorized keys, {needed} required")]
    ThresholdNotMet {
        /// The role checked.
        role: String,
        /// Distinct authorized keys with a valid signature.
        valid: usize,
        /// The threshold.
        needed: u32,
    },
    /// The delegating role does not delegate to this role.
    #[error("role {role} is not delegated by the delegating role")]
    NotDelegated {
        /// The role checked.
        role: String,
    },
}

/// The outcome of a successful threshold check: which key ids signed validly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Authorized key ids whose signature verified, in the order the role lists them.
    pub keyids: Vec<KeyId>,
}

/// Checks that the signatures over `canonical` include valid ones by at least `threshold`
/// distinct authorized keys.
///
/// - Only key ids in `authorized` count, resolved through `keys`; an id the role lists but
///   `keys` lacks, a key of an unsupported scheme, a signature that is not hex or does not
///   verify: each simply does not count, and does not spoil a threshold met without it.
/// - Keys are counted by their key material: two ids naming the same public key count once.
/// - Two signatures by one key id never reach this point: [`Metadata`](super::Metadata)
///   parsing rejects them.
///
/// ```
/// use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
/// use vouch_tuf::metadata::{verify_threshold, Key, Metadata, Targets};
/// use vouch_tuf::time::Timestamp;
/// use vouch_tuf::types::Threshold;
///
/// let sk = PrivateKey::generate(Algorithm::Ed25519).unwrap();
/// let key = Key::from_verifying_key(&sk.verifying_key());
/// let id = key.key_id();
/// let md = Metadata::signed_by(Targets::new(Timestamp::from_unix(0)), &[&sk]).unwrap();
/// let keys = [(id.clone(), key)].into_iter().collect();
/// let two = Threshold::new(2).unwrap();
/// assert!(verify_threshold("targets", md.canonical_signed(), md.signatures(), &keys, &[id.clone()], Threshold::ONE).is_ok());
/// assert!(verify_threshold("targets", md.canonical_signed(), md.signatures(), &keys, &[id], two).is_err());
/// ```
pub fn verify_threshold(
    role: &str,
    canonical: &[u8],
    signatures: &[Signature],
    keys: &BTreeMap<KeyId, Key>,
    authorized: &[KeyId],
    threshold: Threshold,
) -> Result<Verified, SignatureError> {
    let signed_by = tally(canonical, signatures, keys, authorized);
    if signed_by.len() < threshold.get() as usize {
        return Err(SignatureError::ThresholdNotMet {
            role: role.to_owned(),
            valid: signed_by.len(),
            needed: threshold.get(),
        });
    }
    Ok(Verified { keyids: signed_by })
}

/// The authorized key ids whose signature over `canonical` is present and valid, in the
/// order `authorized` lists them, counted as [`verify_threshold`] counts them (distinct key
/// material; what does not verify simply does not count). For a staged proposal, which shows
/// how far each threshold is from being met.
pub fn tally(
    canonical: &[u8],
    signatures: &[Signature],
    keys: &BTreeMap<KeyId, Key>,
    authorized: &[KeyId],
) -> Vec<KeyId> {
    let mut seen_material: HashSet<(crate::crypto::Algorithm, Vec<u8>)> = HashSet::new();
    let mut signed_by = Vec::new();
    // Indexed once: finding each authorized key's signature by a scan would cost
    // keys × signatures, both chosen by whoever wrote the metadata.
    let by_keyid: HashMap<&KeyId, &Signature> = signatures.iter().map(|s| (&s.keyid, s)).collect();
    for keyid in authorized {
        let Some(sig) = by_keyid.get(keyid) else {
            continue;
        };
        let Some(key) = keys.get(keyid) else {
            continue;
        };
        let Ok(vk) = key.verifying_key() else {
            continue;
        };
        let Ok(sig_bytes) = crate::hex::decode(&sig.sig) else {
            continue;
        };
        if vk.verify(canonical, &sig_bytes).is_err() {
            continue;
        }
        if seen_material.insert((vk.algorithm(), vk.material().to_vec())) {
            signed_by.push(keyid.clone());
        }
    }
    signed_by
}

/// The keys one authority (a root, or a delegating role) lets sign a role: its key
/// objects and the ids it assigns to the role.
#[derive(Clone, Copy, Debug)]
pub struct Authority<'a> {
    /// The authority's keys by id.
    pub keys: &'a BTreeMap<KeyId, Key>,
    /// The ids it assigns to the role.
    pub keyids: &'a [KeyId],
}

/// A signature that may not stand on a staged proposal.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StrictError {
    /// The key is not one the role's authorities assign to it.
    #[error("{role} carries a signature by key {keyid}, which is not a key of {role}")]
    Unauthorized {
        /// The role.
        role: String,
        /// The key id the signature claims.
        keyid: KeyId,
    },
    /// The key is assigned, but the signature does not verify with it.
    #[error("{role} carries a signature by key {keyid} that does not verify")]
    Invalid {
        /// The role.
        role: String,
        /// The key id the signature claims.
        keyid: KeyId,
    },
}

/// Checks that every signature present is by a key one of `authorities` assigns to the
/// role, and verifies with that key. Unlike [`verify_threshold`], which ignores what does
/// not count, this refuses it: what a staged proposal accumulates must all be good, so that
/// a key holder is never asked to add their signature beside a forged one, and so that a
/// signature that cannot count is refused when it is added rather than when the threshold
/// is finally reached. Thresholds are not checked.
pub fn check_each_signature(
    role: &str,
    canonical: &[u8],
    signatures: &[Signature],
    authorities: &[Authority<'_>],
) -> Result<(), StrictError> {
    for sig in signatures {
        let key = authorities
            .iter()
            .filter(|a| a.keyids.contains(&sig.keyid))
            .find_map(|a| a.keys.get(&sig.keyid))
            .ok_or_else(|| StrictError::Unauthorized {
                role: role.to_owned(),
                keyid: sig.keyid.clone(),
            })?;
        let valid = key.verifying_key().ok().is_some_and(|vk| {
            crate::hex::decode(&sig.sig).is_ok_and(|bytes| vk.verify(canonical, &bytes).is_ok())
        });
        if !valid {
            return Err(StrictError::Invalid {
                role: role.to_owned(),
                keyid: sig.keyid.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::crypto::{Algorithm, PrivateKey, Signer};
    use crate::json::Map;

    fn gen() -> (PrivateKey, KeyId, Key) {
        let sk = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let key = Key::from_verifying_key(&sk.verifying_key());
        (sk, key.key_id(), key)
    }

    fn sig(sk: &PrivateKey, id: &KeyId, msg: &[u8]) -> Signature {
        Signature {
            keyid: id.clone(),
            sig: crate::hex::encode(sk.sign(msg).unwrap()),
            extra: Map::new(),
        }
    }

    #[test]
    fn tally_counts_what_verify_threshold_counts() {
        let msg = b"signed";
        let (a, ida, ka) = gen();
        let (b, idb, kb) = gen();
        let keys: BTreeMap<KeyId, Key> = [(ida.clone(), ka), (idb.clone(), kb)].into();
        let ids = [ida.clone(), idb.clone()];
        let sigs = [sig(&a, &ida, msg)];
        assert_eq!(tally(msg, &sigs, &keys, &ids), std::slice::from_ref(&ida));
        let two = Threshold::new(2).unwrap();
        assert!(verify_threshold("r", msg, &sigs, &keys, &ids, two).is_err());
        let sigs = [sig(&a, &ida, msg), sig(&b, &idb, msg)];
        assert_eq!(tally(msg, &sigs, &keys, &ids), ids);
        assert!(verify_threshold("r", msg, &sigs, &keys, &ids, two).is_ok());
        // A signature over other bytes does not count.
        let sigs = [sig(&a, &ida, b"other")];
        assert!(tally(msg, &sigs, &keys, &ids).is_empty());
    }

    #[test]
    fn strict_checking_refuses_foreign_and_forged_signatures() {
        let msg = b"signed";
        let (a, ida, ka) = gen();
        let (b, idb, kb) = gen();
        let (c, idc, kc) = gen();
        let old: BTreeMap<KeyId, Key> = [(ida.clone(), ka)].into();
        let new: BTreeMap<KeyId, Key> = [(idb.clone(), kb), (idc.clone(), kc)].into();
        let old_ids = [ida.clone()];
        let new_ids = [idb.clone()];
        let both = [
            Authority {
                keys: &old,
                keyids: &old_ids,
            },
            Authority {
                keys: &new,
                keyids: &new_ids,
            },
        ];
        // A key of either authority: fine.
        let good = [sig(&a, &ida, msg), sig(&b, &idb, msg)];
        check_each_signature("root", msg, &good, &both).unwrap();
        // A key the second authority holds but does not assign to the role.
        let foreign = [sig(&a, &ida, msg), sig(&c, &idc, msg)];
        assert_eq!(
            check_each_signature("root", msg, &foreign, &both),
            Err(StrictError::Unauthorized {
                role: "root".into(),
                keyid: idc.clone()
            })
        );
        // An assigned key, a signature by another key under its id.
        let forged = [sig(&c, &idb, msg)];
        assert_eq!(
            check_each_signature("root", msg, &forged, &both),
            Err(StrictError::Invalid {
                role: "root".into(),
                keyid: idb.clone()
            })
        );
        // Not hex.
        let mut garbled = sig(&b, &idb, msg);
        garbled.sig.replace_range(0..2, "zz");
        assert!(check_each_signature("root", msg, &[garbled], &both).is_err());
        // No authority: nothing can stand.
        assert!(check_each_signature("root", msg, &good[..1], &[]).is_err());
    }
}
