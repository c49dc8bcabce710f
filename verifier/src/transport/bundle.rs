//! Offline trust bundles: every current metadata file of one GUN in one file.
//!
//! An air-gapped cluster cannot reach the trust server, so the metadata travels to it as
//! a bundle. The format is one JSON document:
//!
//! ```json
//! {
//!   "vouch_bundle": 1,
//!   "gun": "registry.example.com/org/app",
//!   "files": {
//!     "1.root.json": "<base64 of the exact bytes>",
//!     "2.root.json": "…",
//!     "timestamp.json": "…",
//!     "7.snapshot.json": "…",
//!     "12.targets.json": "…",
//!     "3.targets%2Freleases.json": "…"
//!   }
//! }
//! ```
//!
//! - `vouch_bundle` is the format version, `1`.
//! - `gun` is optional and informative: the verifier trusts nothing in a bundle that is not
//!   signed, and checks it exactly as it checks files fetched over HTTP.
//! - `files` maps each file name, exactly as the repository serves it (the names the client
//!   asks for: `N.root.json` for every root version after the one the client pins,
//!   `timestamp.json`, and versioned or plain snapshot, targets and delegated files), to the
//!   standard base64 (RFC 4648, with padding) of its exact bytes. Base64 keeps the bytes
//!   intact, so lengths and hashes that timestamp and snapshot give still match.
//!
//! A file the bundle lacks is [`TransportError::NotFound`], as on a server.

use std::collections::BTreeMap;

use base64ct::{Base64, Encoding};
use thiserror::Error;
use vouch_tuf::json::{self, Map, Value};

use super::{Transport, TransportError};

/// The bundle format version written and read.
pub const BUNDLE_FORMAT: u64 = 1;

/// A bundle that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BundleError {
    /// Not JSON, or not of the bundle's shape.
    #[error("not a vouch trust bundle: {0}")]
    Malformed(String),
    /// A format version this build does not read.
    #[error("unsupported trust bundle format {0}")]
    UnsupportedFormat(String),
    /// A file's content is not valid base64.
    #[error("bundle file {0}: content is not valid base64")]
    BadBase64(String),
}

/// Metadata files of one GUN, by file name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bundle {
    /// The GUN the files belong to, when recorded.
    pub gun: Option<String>,
    /// File name to exact bytes.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Bundle {
    /// Reads a bundle document.
    ///
    /// ```
    /// use vouch_verifier::transport::Bundle;
    /// let mut b = Bundle::default();
    /// b.files.insert("timestamp.json".into(), b"{}".to_vec());
    /// let back = Bundle::from_bytes(&b.to_bytes()).unwrap();
    /// assert_eq!(back, b);
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BundleError> {
        let v = json::parse(bytes).map_err(|e| BundleError::Malformed(e.to_string()))?;
        let obj = v
            .as_object()
            .ok_or_else(|| BundleError::Malformed("top level is not an object".into()))?;
        match obj.get("vouch_bundle").and_then(Value::as_u64) {
            Some(BUNDLE_FORMAT) => {}
            Some(other) => return Err(BundleError::UnsupportedFormat(other.to_string())),
            None => {
                return Err(BundleError::Malformed(
                    "missing vouch_bundle format version".into(),
                ))
            }
        }
        let gun = match obj.get("gun") {
            None => None,
            Some(g) => Some(
                g.as_str()
                    .ok_or_else(|| BundleError::Malformed("gun is not a string".into()))?
                    .to_owned(),
            ),
        };
        let files_v = obj
            .get("files")
            .and_then(Value::as_object)
            .ok_or_else(|| BundleError::Malformed("missing files object".into()))?;
        let mut files = BTreeMap::new();
        for (name, content) in files_v {
            let s = content.as_str().ok_or_else(|| {
                BundleError::Malformed(format!("file {name} is not a base64 string"))
            })?;
            let bytes = Base64::decode_vec(s).map_err(|_| BundleError::BadBase64(name.clone()))?;
            files.insert(name.clone(), bytes);
        }
        Ok(Bundle { gun, files })
    }

    /// Writes the bundle document.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut files = Map::new();
        for (name, bytes) in &self.files {
            files.insert(name.clone(), Value::from(Base64::encode_string(bytes)));
        }
        let mut top = Map::new();
        top.insert("vouch_bundle".into(), Value::from(BUNDLE_FORMAT));
        if let Some(g) = &self.gun {
            top.insert("gun".into(), Value::from(g.as_str()));
        }
        top.insert("files".into(), Value::Object(files));
        json::to_json(&Value::Object(top))
    }
}

/// Serves the files of a [`Bundle`].
#[derive(Clone, Debug)]
pub struct BundleTransport {
    bundle: Bundle,
}

impl BundleTransport {
    /// Serves `bundle`.
    pub fn new(bundle: Bundle) -> Self {
        BundleTransport { bundle }
    }

    /// Reads a bundle document and serves it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BundleError> {
        Bundle::from_bytes(bytes).map(Self::new)
    }

    /// The bundle.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }
}

impl Transport for BundleTransport {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        let bytes = self
            .bundle
            .files
            .get(path)
            .ok_or_else(|| TransportError::NotFound {
                path: path.to_owned(),
            })?;
        if bytes.len() as u64 > max_len {
            return Err(TransportError::TooLarge {
                path: path.to_owned(),
                limit: max_len,
            });
        }
        Ok(bytes.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_fetch() {
        let mut b = Bundle {
            gun: Some("example.com/app".into()),
            ..Bundle::default()
        };
        b.files.insert("1.root.json".into(), vec![0, 1, 2, 255]);
        let back = Bundle::from_bytes(&b.to_bytes()).unwrap();
        assert_eq!(back, b);
        let t = BundleTransport::new(back);
        assert_eq!(t.fetch("1.root.json", 4).unwrap(), vec![0, 1, 2, 255]);
        assert!(matches!(
            t.fetch("1.root.json", 3),
            Err(TransportError::TooLarge { .. })
        ));
        assert!(t.fetch("2.root.json", 3).unwrap_err().is_not_found());
    }

    #[test]
    fn rejects_malformed_bundles() {
        assert!(matches!(
            Bundle::from_bytes(b"[]"),
            Err(BundleError::Malformed(_))
        ));
        assert!(matches!(
            Bundle::from_bytes(br#"{"vouch_bundle":2,"files":{}}"#),
            Err(BundleError::UnsupportedFormat(_))
        ));
        assert!(matches!(
            Bundle::from_bytes(br#"{"vouch_bundle":1,"files":{"a":"!!"}}"#),
            Err(BundleError::BadBase64(_))
        ));
    }
}
