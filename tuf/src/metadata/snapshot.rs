//! The snapshot and timestamp roles: which versions of the other roles belong together.

use std::collections::BTreeMap;

use crate::json::{Map, Value};
use crate::time::Timestamp as Time;
use crate::types::Version;

use super::fields::{self, Fields};
use super::{Common, MetadataError, Role};

/// What snapshot says of a targets role, or timestamp of snapshot: its version, and
/// optionally its length and hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaFile {
    /// The role's version.
    pub version: Version,
    /// Size of the role's metadata file in bytes.
    pub length: Option<u64>,
    /// Hashes of the role's metadata file (algorithm to lowercase hex).
    pub hashes: Option<BTreeMap<String, String>>,
    /// Unknown fields.
    pub extra: Map,
}

impl MetaFile {
    /// Names only the version.
    pub fn version_only(version: Version) -> Self {
        MetaFile {
            version,
            length: None,
            hashes: None,
            extra: Map::new(),
        }
    }

    /// Names the version, length and SHA-256 of the given file bytes.
    pub fn for_bytes(version: Version, bytes: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
        let mut hashes = BTreeMap::new();
        hashes.insert("sha256".to_owned(), crate::hex::encode(digest.as_ref()));
        MetaFile {
            version,
            length: Some(bytes.len() as u64),
            hashes: Some(hashes),
            extra: Map::new(),
        }
    }

    fn parse(f: &mut Fields<'_>) -> Result<Self, MetadataError> {
        let version = f.req_version("version")?;
        let length = f.opt_u64("length")?;
        let hashes = match f.take("hashes") {
            None => None,
            Some(hv) => {
                let h = f.string_map("hashes", hv)?;
                if h.is_empty() {
                    return Err(f.error("hashes", "must list at least one hash when present"));
                }
                Some(h)
            }
        };
        Ok(MetaFile {
            version,
            length,
            hashes,
            extra: Map::new(),
        })
    }

    fn to_value(&self) -> Value {
        let mut v = fields::object(&self.extra, [("version", Value::from(self.version.get()))]);
        if let Value::Object(m) = &mut v {
            if let Some(l) = self.length {
                m.insert("length".into(), Value::from(l));
            }
            if let Some(h) = &self.hashes {
                m.insert("hashes".into(), fields::string_map_value(h));
            }
        }
        v
    }
}

fn parse_meta(f: &mut Fields<'_>) -> Result<BTreeMap<String, MetaFile>, MetadataError> {
    let mut mf = f.req_object("meta")?;
    let entries = std::mem::take(mf.rest_mut());
    let mut out = BTreeMap::new();
    for (name, v) in entries {
        let mut one = Fields::new(mf.role(), mf.field_path(&name), v)?;
        let mut m = MetaFile::parse(&mut one)?;
        m.extra = one.rest();
        out.insert(name, m);
    }
    Ok(out)
}

fn meta_value(meta: &BTreeMap<String, MetaFile>) -> Value {
    Value::Object(
        meta.iter()
            .map(|(k, m)| (k.clone(), m.to_value()))
            .collect(),
    )
}

/// The `signed` part of snapshot metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Version, expiry, spec version.
    pub common: Common,
    /// File name (`targets.json`, `<role>.json`) to what is known of it.
    pub meta: BTreeMap<String, MetaFile>,
    /// Unknown fields.
    pub extra: Map,
}

impl Snapshot {
    /// A version-1 snapshot expiring at `expires`, listing nothing yet.
    pub fn new(expires: Time) -> Self {
        Snapshot {
            common: Common::new(expires),
            meta: BTreeMap::new(),
            extra: Map::new(),
        }
    }

    /// The file name snapshot uses for a targets role: `<role>.json`.
    pub fn meta_name(role: &str) -> String {
        format!("{role}.json")
    }
}

impl Role for Snapshot {
    const TYPE: &'static str = "snapshot";

    fn from_value(role: &str, v: Value) -> Result<Self, MetadataError> {
        let mut f = Fields::new(role, "signed", v)?;
        let common = Common::parse(&mut f, Self::TYPE)?;
        let meta = parse_meta(&mut f)?;
        Ok(Snapshot {
            common,
            meta,
            extra: f.rest(),
        })
    }

    fn to_value(&self) -> Value {
        let mut v = fields::object(&self.extra, self.common.fields(Self::TYPE));
        if let Value::Object(m) = &mut v {
            m.insert("meta".into(), meta_value(&self.meta));
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

/// The `signed` part of timestamp metadata: names the current snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// Version, expiry, spec version.
    pub common: Common,
    /// What is known of `snapshot.json`.
    pub snapshot: MetaFile,
    /// Unknown fields.
    pub extra: Map,
}

impl Timestamp {
    /// A version-1 timestamp expiring at `expires`, naming `snapshot`.
    pub fn new(expires: Time, snapshot: MetaFile) -> Self {
        Timestamp {
            common: Common::new(expires),
            snapshot,
            extra: Map::new(),
        }
    }
}

impl Role for Timestamp {
    const TYPE: &'static str = "timestamp";

    fn from_value(role: &str, v: Value) -> Result<Self, MetadataError> {
        let mut f = Fields::new(role, "signed", v)?;
        let common = Common::parse(&mut f, Self::TYPE)?;
        let mut meta = parse_meta(&mut f)?;
        let snapshot = meta
            .remove("snapshot.json")
            .ok_or_else(|| f.error("meta", "must name snapshot.json"))?;
        if let Some(other) = meta.keys().next() {
            return Err(f.error(
                "meta",
                format!("may only name snapshot.json, found {other:?}"),
            ));
        }
        Ok(Timestamp {
            common,
            snapshot,
            extra: f.rest(),
        })
    }

    fn to_value(&self) -> Value {
        let mut v = fields::object(&self.extra, self.common.fields(Self::TYPE));
        if let Value::Object(m) = &mut v {
            let mut meta = Map::new();
            meta.insert("snapshot.json".into(), self.snapshot.to_value());
            m.insert("meta".into(), Value::Object(meta));
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
