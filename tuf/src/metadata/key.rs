//! The TUF public-key object: `{"keytype", "scheme", "keyval": {"public"}}`.

use crate::crypto::{CryptoError, VerifyingKey};
use crate::json::{self, Map, Value};
use crate::types::KeyId;

use super::fields::{self, Fields};
use super::MetadataError;

/// A public key as metadata lists it. Unknown fields (in the key and in `keyval`) are kept.
///
/// The key is not interpreted until it is used: a key of a scheme vouch does not support
/// parses fine and simply never verifies a signature, as TUF requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// `keytype`, e.g. `ed25519`.
    pub keytype: String,
    /// `scheme`, e.g. `ed25519`.
    pub scheme: String,
    /// `keyval.public`.
    pub public: String,
    /// Unknown fields of `keyval`.
    pub keyval_extra: Map,
    /// Unknown fields of the key object.
    pub extra: Map,
}

impl Key {
    /// The key object for a public key, as vouch publishes it.
    ///
    /// ```
    /// use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};
    /// use vouch_tuf::metadata::Key;
    /// let sk = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    /// let key = Key::from_verifying_key(&sk.verifying_key());
    /// assert_eq!(key.keytype, "ed25519");
    /// assert_eq!(key.key_id().as_str().len(), 64);
    /// ```
    pub fn from_verifying_key(vk: &VerifyingKey) -> Self {
        let alg = vk.algorithm();
        Key {
            keytype: alg.keytype().to_owned(),
            scheme: alg.scheme().to_owned(),
            public: vk.to_tuf_public(),
            keyval_extra: Map::new(),
            extra: Map::new(),
        }
    }

    pub(crate) fn parse(f: &mut Fields<'_>) -> Result<Self, MetadataError> {
        let keytype = f.req_str("keytype")?;
        let scheme = f.req_str("scheme")?;
        let mut keyval = f.req_object("keyval")?;
        let public = keyval.req_str("public")?;
        Ok(Key {
            keytype,
            scheme,
            public,
            keyval_extra: keyval.rest(),
            extra: Map::new(),
        })
    }

    /// Parses a key object on its own (as served by the server's `.key` endpoints).
    pub fn from_value(v: Value) -> Result<Self, MetadataError> {
        let mut f = Fields::new("key", "", v)?;
        let mut key = Self::parse(&mut f)?;
        key.extra = f.rest();
        Ok(key)
    }

    /// The key object as a value.
    pub fn to_value(&self) -> Value {
        fields::object(
            &self.extra,
            [
                ("keytype", Value::from(self.keytype.as_str())),
                ("scheme", Value::from(self.scheme.as_str())),
                (
                    "keyval",
                    fields::object(
                        &self.keyval_extra,
                        [("public", Value::from(self.public.as_str()))],
                    ),
                ),
            ],
        )
    }

    /// The id vouch gives this key: lowercase hex SHA-256 of the canonical JSON of the key
    /// object. (When verifying, the id is whatever the delegating metadata lists.)
    pub fn key_id(&self) -> KeyId {
        let digest =
            ring::digest::digest(&ring::digest::SHA256, &json::canonical(&self.to_value()));
        // 64 lowercase hex characters always make a valid key id.
        KeyId::new(crate::hex::encode(digest.as_ref())).unwrap_or_else(|_| unreachable!())
    }

    /// Parses the key material for verification.
    pub fn verifying_key(&self) -> Result<VerifyingKey, CryptoError> {
        VerifyingKey::from_tuf(&self.keytype, &self.scheme, &self.public)
    }
}

/// Parses a `keys` object: key id to key.
pub(crate) fn parse_keys(
    f: &mut Fields<'_>,
    name: &str,
) -> Result<std::collections::BTreeMap<KeyId, Key>, MetadataError> {
    let mut keys_f = f.req_object(name)?;
    let entries = std::mem::take(keys_f.rest_mut());
    let mut out = std::collections::BTreeMap::new();
    for (id, v) in entries {
        let keyid = KeyId::new(id.clone()).map_err(|e| keys_f.error(&id, e.to_string()))?;
        let mut kf = Fields::new(keys_f.role(), keys_f.field_path(&id), v)?;
        let mut key = Key::parse(&mut kf)?;
        key.extra = kf.rest();
        out.insert(keyid, key);
    }
    Ok(out)
}

pub(crate) fn keys_value(keys: &std::collections::BTreeMap<KeyId, Key>) -> Value {
    Value::Object(
        keys.iter()
            .map(|(id, k)| (id.as_str().to_owned(), k.to_value()))
            .collect(),
    )
}
