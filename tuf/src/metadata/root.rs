//! The root role: which keys may sign each top-level role, and how many must.

use std::collections::BTreeMap;

use crate::json::{Map, Value};
use crate::time::Timestamp;
use crate::types::{KeyId, Threshold, TopLevelRole};

use super::fields::{self, Fields};
use super::key::{keys_value, parse_keys};
use super::{
    verify_threshold, Common, Key, Metadata, MetadataError, Role, SignatureError, Verified,
};

/// The keys and threshold root assigns to one top-level role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleKeys {
    /// Key ids allowed to sign, distinct.
    pub keyids: Vec<KeyId>,
    /// How many distinct keys must sign.
    pub threshold: Threshold,
    /// Unknown fields.
    pub extra: Map,
}

impl RoleKeys {
    /// `threshold` of the given keys.
    pub fn new(keyids: Vec<KeyId>, threshold: Threshold) -> Self {
        RoleKeys {
            keyids,
            threshold,
            extra: Map::new(),
        }
    }
}

/// The `signed` part of root metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    /// Version, expiry, spec version.
    pub common: Common,
    /// `consistent_snapshot`, when present.
    pub consistent_snapshot: Option<bool>,
    /// All keys any top-level role may use.
    pub keys: BTreeMap<KeyId, Key>,
    /// Keys and threshold of each top-level role (always all four).
    pub roles: BTreeMap<TopLevelRole, RoleKeys>,
    /// Unknown fields.
    pub extra: Map,
}

impl Root {
    /// A version-1 root with consistent snapshots, expiring at `expires`, where each top-level
    /// role is assigned `keys` with threshold 1 — a starting point for
    /// [`Root::add_key`] and [`Root::set_threshold`].
    ///
    /// ```
    /// use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
    /// use vouch_tuf::metadata::{Key, Metadata, Root};
    /// use vouch_tuf::time::Timestamp;
    /// use vouch_tuf::types::TopLevelRole;
    ///
    /// let sk = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    /// let key = Key::from_verifying_key(&sk.verifying_key());
    /// let mut root = Root::new(Timestamp::parse("2030-01-01T00:00:00Z").unwrap());
    /// for role in TopLevelRole::ALL {
    ///     root.add_key(role, key.clone());
    /// }
    /// let md = Metadata::signed_by(root, &[&sk]).unwrap();
    /// let bytes = md.to_bytes();
    /// let back = Metadata::<Root>::from_bytes(&bytes).unwrap();
    /// back.signed().verify_role(TopLevelRole::Root, &back).unwrap();
    /// ```
    pub fn new(expires: Timestamp) -> Self {
        Root {
            common: Common::new(expires),
            consistent_snapshot: Some(true),
            keys: BTreeMap::new(),
            roles: TopLevelRole::ALL
                .into_iter()
                .map(|r| (r, RoleKeys::new(Vec::new(), Threshold::ONE)))
                .collect(),
            extra: Map::new(),
        }
    }

    /// Lists `key` for `role` (adding it to `keys` if new) and returns its key id.
    pub fn add_key(&mut self, role: TopLevelRole, key: Key) -> KeyId {
        let id = key.key_id();
        self.keys.insert(id.clone(), key);
        let rk = self.role_keys_mut(role);
        if !rk.keyids.contains(&id) {
            rk.keyids.push(id.clone());
        }
        id
    }

    /// Removes `keyid` from `role`, and from `keys` when no role uses it any more.
    pub fn remove_key(&mut self, role: TopLevelRole, keyid: &KeyId) {
        self.role_keys_mut(role).keyids.retain(|k| k != keyid);
        if !self.roles.values().any(|rk| rk.keyids.contains(keyid)) {
            self.keys.remove(keyid);
        }
    }

    /// The repository (GUN) this root names in its [`Root::GUN_FIELD`] field, if it names
    /// one (`None` too when the field is not a string).
    pub fn gun(&self) -> Option<&str> {
        self.extra.get(Self::GUN_FIELD).and_then(Value::as_str)
    }

    /// Names the repository (GUN) this root is for, in its signed [`Root::GUN_FIELD`] field:
    /// a root signed for one repository then cannot be passed off as another's (an
    /// organisation's root keys sign the first root of every repository, so the signatures
    /// alone do not say which repository a root belongs to).
    pub fn set_gun(&mut self, gun: &str) {
        self.extra
            .insert(Self::GUN_FIELD.to_owned(), Value::from(gun));
    }

    /// The signed field of root metadata naming the repository: an extension field, which
    /// TUF clients that do not know it keep and ignore.
    pub const GUN_FIELD: &'static str = "x-vouch-gun";

    /// Sets the threshold of `role`.
    pub fn set_threshold(&mut self, role: TopLevelRole, threshold: Threshold) {
        self.role_keys_mut(role).threshold = threshold;
    }

    /// The keys and threshold of a top-level role.
    pub fn role_keys(&self, role: TopLevelRole) -> &RoleKeys {
        // Parsing and construction guarantee all four roles are present.
        self.roles.get(&role).unwrap_or_else(|| unreachable!())
    }

    fn role_keys_mut(&mut self, role: TopLevelRole) -> &mut RoleKeys {
        self.roles
            .entry(role)
            .or_insert_with(|| RoleKeys::new(Vec::new(), Threshold::ONE))
    }

    /// The keys of `role`, resolved (ids root lists but does not define are skipped).
    pub fn keys_of(&self, role: TopLevelRole) -> impl Iterator<Item = (&KeyId, &Key)> {
        self.role_keys(role)
            .keyids
            .iter()
            .filter_map(|id| self.keys.get_key_value(id))
    }

    /// Checks that `md` carries signatures by a threshold of the keys this root assigns to
    /// `role`.
    pub fn verify_role<T: Role>(
        &self,
        role: TopLevelRole,
        md: &Metadata<T>,
    ) -> Result<Verified, SignatureError> {
        let rk = self.role_keys(role);
        verify_threshold(
            role.as_str(),
            md.canonical_signed(),
            md.signatures(),
            &self.keys,
            &rk.keyids,
            rk.threshold,
        )
    }
}

impl Role for Root {
    const TYPE: &'static str = "root";

    fn from_value(role: &str, v: Value) -> Result<Self, MetadataError> {
        let mut f = Fields::new(role, "signed", v)?;
        let common = Common::parse(&mut f, Self::TYPE)?;
        let consistent_snapshot = f.opt_bool("consistent_snapshot")?;
        let keys = parse_keys(&mut f, "keys")?;
        let mut roles_f = f.req_object("roles")?;
        let mut roles = BTreeMap::new();
        for r in TopLevelRole::ALL {
            let mut rf = roles_f.req_object(r.as_str())?;
            let keyids = rf.req_keyids("keyids")?;
            let threshold = rf.req_threshold("threshold")?;
            roles.insert(
                r,
                RoleKeys {
                    keyids,
                    threshold,
                    extra: rf.rest(),
                },
            );
        }
        let other = roles_f.rest_mut().keys().next().cloned();
        if let Some(other) = other {
            return Err(roles_f.error(&other, "root may only assign the four top-level roles"));
        }
        Ok(Root {
            common,
            consistent_snapshot,
            keys,
            roles,
            extra: f.rest(),
        })
    }

    fn to_value(&self) -> Value {
        let roles = self
            .roles
            .iter()
            .map(|(r, rk)| {
                (
                    r.as_str().to_owned(),
                    fields::object(
                        &rk.extra,
                        [
                            ("keyids", fields::keyids_value(&rk.keyids)),
                            ("threshold", Value::from(rk.threshold.get())),
                        ],
                    ),
                )
            })
            .collect::<Map>();
        let mut v = fields::object(&self.extra, self.common.fields(Self::TYPE));
        if let Value::Object(m) = &mut v {
            if let Some(cs) = self.consistent_snapshot {
                m.insert("consistent_snapshot".into(), Value::Bool(cs));
            }
            m.insert("keys".into(), keys_value(&self.keys));
            m.insert("roles".into(), Value::Object(roles));
        }
        v
    }

    fn common(&self) -> &Common {
        &self.common
    }

    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}
