//! The targets role and delegated targets roles: what may be installed, and who else may say so.

use std::collections::BTreeMap;

use crate::json::{Map, Value};
use crate::reference::{Digest, DigestAlgorithm};
use crate::time::Timestamp;
use crate::types::{KeyId, RoleName, TargetName, Threshold};

use super::fields::{self, Fields};
use super::key::{keys_value, parse_keys};
use super::paths::{path_hash_prefix_matches, path_pattern_matches};
use super::{
    verify_threshold, Common, Key, Metadata, MetadataError, Role, SignatureError, Verified,
};

/// One target: its length, hashes and optional custom data.
///
/// For an image, `length` is the manifest's size, `hashes.sha256` the hex of the manifest
/// digest, and `custom.mediaType` the manifest's media type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetFile {
    /// Size in bytes.
    pub length: u64,
    /// Hash algorithm name to lowercase hex digest; never empty.
    pub hashes: BTreeMap<String, String>,
    /// `custom`, when present.
    pub custom: Option<Value>,
    /// Unknown fields.
    pub extra: Map,
}

impl TargetFile {
    /// A target for an image manifest with the given digest and size.
    ///
    /// ```
    /// use vouch_tuf::metadata::TargetFile;
    /// use vouch_tuf::reference::Digest;
    /// let d = Digest::sha256_of(b"{}");
    /// let t = TargetFile::image(&d, 2, Some("application/vnd.oci.image.manifest.v1+json"));
    /// assert_eq!(t.digests(), vec![d]);
    /// ```
    pub fn image(digest: &Digest, length: u64, media_type: Option<&str>) -> Self {
        let mut hashes = BTreeMap::new();
        hashes.insert(digest.algorithm().to_string(), digest.hex().to_owned());
        let custom = media_type.map(|mt| {
            let mut m = Map::new();
            m.insert("mediaType".into(), Value::from(mt));
            Value::Object(m)
        });
        TargetFile {
            length,
            hashes,
            custom,
            extra: Map::new(),
        }
    }

    /// The content addresses this target carries (its well-formed `sha256`/`sha512` hashes).
    pub fn digests(&self) -> Vec<Digest> {
        [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512]
            .into_iter()
            .filter_map(|alg| {
                let hex = self.hashes.get(&alg.to_string())?;
                Digest::new(alg, hex).ok()
            })
            .collect()
    }

    /// True when this target carries `digest` as one of its hashes.
    pub fn has_digest(&self, digest: &Digest) -> bool {
        self.hashes
            .get(&digest.algorithm().to_string())
            .is_some_and(|h| h == digest.hex())
    }

    /// `custom.mediaType`, when present.
    pub fn media_type(&self) -> Option<&str> {
        self.custom
            .as_ref()?
            .as_object()?
            .get("mediaType")?
            .as_str()
    }

    fn parse(f: &mut Fields<'_>) -> Result<Self, MetadataError> {
        // One pass over the target's object: there is one per target.
        let [length, hashes, custom] = f.take_many(["length", "hashes", "custom"]);
        let length = match length {
            Some(v) => f.as_u64("length", &v)?,
            None => return Err(f.error("length", "missing required field")),
        };
        let hashes = match hashes {
            Some(hv) => f.string_map("hashes", hv)?,
            None => return Err(f.error("hashes", "missing required field")),
        };
        if hashes.is_empty() {
            return Err(f.error("hashes", "must list at least one hash"));
        }
        Ok(TargetFile {
            length,
            hashes,
            custom,
            extra: Map::new(),
        })
    }

    fn to_value(&self) -> Value {
        let mut v = fields::object(
            &self.extra,
            [
                ("length", Value::from(self.length)),
                ("hashes", fields::string_map_value(&self.hashes)),
            ],
        );
        if let (Value::Object(m), Some(c)) = (&mut v, &self.custom) {
            m.insert("custom".into(), c.clone());
        }
        v
    }
}

/// Which targets a delegated role may sign for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathScope {
    /// Shell-style patterns (`*`, `?`, `[…]`); `*` does not cross `/`.
    Paths(Vec<String>),
    /// Hex prefixes of the SHA-256 of the target name.
    HashPrefixes(Vec<String>),
    /// Neither field given: the role is trusted for no target.
    Nothing,
}

/// One delegation from a targets role to another role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelegatedRole {
    /// The delegated role's name.
    pub name: RoleName,
    /// Key ids allowed to sign it, distinct.
    pub keyids: Vec<KeyId>,
    /// How many distinct keys must sign.
    pub threshold: Threshold,
    /// When true, a search that reaches this role stops here.
    pub terminating: bool,
    /// Which target names it may sign for.
    pub scope: PathScope,
    /// Unknown fields.
    pub extra: Map,
}

impl DelegatedRole {
    /// A delegation to `name` for the given path patterns, threshold 1, not terminating.
    pub fn with_paths(name: RoleName, keyids: Vec<KeyId>, paths: Vec<String>) -> Self {
        DelegatedRole {
            name,
            keyids,
            threshold: Threshold::ONE,
            terminating: false,
            scope: PathScope::Paths(paths),
            extra: Map::new(),
        }
    }

    /// True when this role is trusted for `target` (by its paths or hash prefixes).
    ///
    /// ```
    /// use vouch_tuf::metadata::DelegatedRole;
    /// use vouch_tuf::types::RoleName;
    /// let r = DelegatedRole::with_paths(RoleName::new("releases").unwrap(), vec![], vec!["v*".into()]);
    /// assert!(r.is_delegated_path("v1.2.0"));
    /// assert!(!r.is_delegated_path("latest"));
    /// ```
    pub fn is_delegated_path(&self, target: &str) -> bool {
        match &self.scope {
            PathScope::Paths(ps) => ps.iter().any(|p| path_pattern_matches(p, target)),
            PathScope::HashPrefixes(ps) => ps.iter().any(|p| path_hash_prefix_matches(p, target)),
            PathScope::Nothing => false,
        }
    }

    fn parse(f: &mut Fields<'_>) -> Result<Self, MetadataError> {
        let name_s = f.req_str("name")?;
        let name = RoleName::new(name_s).map_err(|e| f.error("name", e.to_string()))?;
        if name.top_level().is_some() {
            return Err(f.error("name", format!("a delegated role cannot be named {name}")));
        }
        let keyids = f.req_keyids("keyids")?;
        let threshold = f.req_threshold("threshold")?;
        let terminating = f.req_bool("terminating")?;
        let paths = f.opt_string_array("paths")?;
        let prefixes = f.opt_string_array("path_hash_prefixes")?;
        let scope = match (paths, prefixes) {
            (Some(_), Some(_)) => {
                return Err(f.error(
                    "paths",
                    "paths and path_hash_prefixes are mutually exclusive",
                ))
            }
            (Some(p), None) => PathScope::Paths(p),
            (None, Some(p)) => PathScope::HashPrefixes(p),
            (None, None) => PathScope::Nothing,
        };
        Ok(DelegatedRole {
            name,
            keyids,
            threshold,
            terminating,
            scope,
            extra: Map::new(),
        })
    }

    fn to_value(&self) -> Value {
        let mut v = fields::object(
            &self.extra,
            [
                ("name", Value::from(self.name.as_str())),
                ("keyids", fields::keyids_value(&self.keyids)),
                ("threshold", Value::from(self.threshold.get())),
                ("terminating", Value::Bool(self.terminating)),
            ],
        );
        let strings = |items: &[String]| {
            Value::Array(items.iter().map(|s| Value::from(s.as_str())).collect())
        };
        if let Value::Object(m) = &mut v {
            match &self.scope {
                PathScope::Paths(p) => {
                    m.insert("paths".into(), strings(p));
                }
                PathScope::HashPrefixes(p) => {
                    m.insert("path_hash_prefixes".into(), strings(p));
                }
                PathScope::Nothing => {}
            }
        }
        v
    }
}

/// The `delegations` of a targets role: keys, and the delegated roles in search order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delegations {
    /// Keys the delegated roles may use.
    pub keys: BTreeMap<KeyId, Key>,
    /// Delegated roles, in the order a search visits them; names are distinct.
    pub roles: Vec<DelegatedRole>,
    /// Unknown fields.
    pub extra: Map,
}

impl Delegations {
    /// The delegation to `name`, if any (a scan: where many roles are checked against one
    /// parent, find each delegation once and use [`Delegations::verify_delegated`]).
    pub fn role(&self, name: &str) -> Option<&DelegatedRole> {
        self.roles.iter().find(|r| r.name.as_str() == name)
    }

    /// Checks that `md` is signed by a threshold of the keys `role`, one of these
    /// delegations, lists.
    pub fn verify_delegated(
        &self,
        role: &DelegatedRole,
        md: &Metadata<Targets>,
    ) -> Result<Verified, SignatureError> {
        verify_threshold(
            role.name.as_str(),
            md.canonical_signed(),
            md.signatures(),
            &self.keys,
            &role.keyids,
            role.threshold,
        )
    }

    /// Drops the keys that no delegated role lists any more (after roles were removed or
    /// moved to other keys), so retired keys do not linger in the metadata.
    pub fn retain_used_keys(&mut self) {
        let used: std::collections::BTreeSet<&KeyId> =
            self.roles.iter().flat_map(|r| r.keyids.iter()).collect();
        self.keys.retain(|id, _| used.contains(id));
    }

    fn parse(f: &mut Fields<'_>) -> Result<Self, MetadataError> {
        let keys = parse_keys(f, "keys")?;
        if f.take("succinct_roles").is_some() {
            return Err(f.error(
                "succinct_roles",
                "succinct hash-bin delegations are not supported",
            ));
        }
        let items = f.req_array("roles")?;
        let mut roles: Vec<DelegatedRole> = Vec::with_capacity(items.len());
        let mut names: std::collections::HashSet<RoleName> =
            std::collections::HashSet::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let mut rf = Fields::new(f.role(), f.field_path(&format!("roles[{i}]")), item)?;
            let mut role = DelegatedRole::parse(&mut rf)?;
            role.extra = rf.rest();
            if !names.insert(role.name.clone()) {
                return Err(f.error("roles", format!("role {} delegated twice", role.name)));
            }
            roles.push(role);
        }
        Ok(Delegations {
            keys,
            roles,
            extra: Map::new(),
        })
    }

    fn to_value(&self) -> Value {
        fields::object(
            &self.extra,
            [
                ("keys", keys_value(&self.keys)),
                (
                    "roles",
                    Value::Array(self.roles.iter().map(DelegatedRole::to_value).collect()),
                ),
            ],
        )
    }
}

/// The `signed` part of targets metadata (top-level or delegated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Targets {
    /// Version, expiry, spec version.
    pub common: Common,
    /// Target name to target.
    pub targets: BTreeMap<TargetName, TargetFile>,
    /// Delegations, when present.
    pub delegations: Option<Delegations>,
    /// Unknown fields.
    pub extra: Map,
}

impl Targets {
    /// An empty version-1 targets role expiring at `expires`.
    pub fn new(expires: Timestamp) -> Self {
        Targets {
            common: Common::new(expires),
            targets: BTreeMap::new(),
            delegations: None,
            extra: Map::new(),
        }
    }

    /// Adds or replaces a target; returns the one it replaced.
    pub fn add_target(&mut self, name: TargetName, target: TargetFile) -> Option<TargetFile> {
        self.targets.insert(name, target)
    }

    /// Removes a target; returns it if it was there.
    pub fn remove_target(&mut self, name: &str) -> Option<TargetFile> {
        self.targets.remove(name)
    }

    /// Checks that `md`, the metadata of delegated role `name`, is signed by a threshold of
    /// the keys this role delegates to it.
    pub fn verify_delegate(
        &self,
        name: &str,
        md: &Metadata<Targets>,
    ) -> Result<Verified, SignatureError> {
        let delegations =
            self.delegations
                .as_ref()
                .ok_or_else(|| SignatureError::NotDelegated {
                    role: name.to_owned(),
                })?;
        let role = delegations
            .role(name)
            .ok_or_else(|| SignatureError::NotDelegated {
                role: name.to_owned(),
            })?;
        delegations.verify_delegated(role, md)
    }
}

impl Role for Targets {
    const TYPE: &'static str = "targets";

    fn from_value(role: &str, v: Value) -> Result<Self, MetadataError> {
        let mut f = Fields::new(role, "signed", v)?;
        let common = Common::parse(&mut f, Self::TYPE)?;
        let mut tf = f.req_object("targets")?;
        let entries = std::mem::take(tf.rest_mut());
        let targets_path = tf.path();
        // Entries come sorted, so collecting builds the map in one pass.
        let targets = entries
            .into_iter()
            .map(|(name, tv)| {
                let target = {
                    let mut one = Fields::child(role, &targets_path, &name, tv)?;
                    let mut target = TargetFile::parse(&mut one)?;
                    target.extra = one.rest();
                    target
                };
                let tname = TargetName::new(name).map_err(|e| tf.error("", e.to_string()))?;
                Ok((tname, target))
            })
            .collect::<Result<BTreeMap<_, _>, MetadataError>>()?;
        let delegations = match f.take("delegations") {
            None => None,
            Some(dv) => {
                let mut df = Fields::new(role, f.field_path("delegations"), dv)?;
                let mut d = Delegations::parse(&mut df)?;
                d.extra = df.rest();
                Some(d)
            }
        };
        Ok(Targets {
            common,
            targets,
            delegations,
            extra: f.rest(),
        })
    }

    fn to_value(&self) -> Value {
        let targets = self
            .targets
            .iter()
            .map(|(n, t)| (n.as_str().to_owned(), t.to_value()))
            .collect::<Map>();
        let mut v = fields::object(&self.extra, self.common.fields(Self::TYPE));
        if let Value::Object(m) = &mut v {
            m.insert("targets".into(), Value::Object(targets));
            if let Some(d) = &self.delegations {
                m.insert("delegations".into(), d.to_value());
            }
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
