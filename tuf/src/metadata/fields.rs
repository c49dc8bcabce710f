//! Reading typed fields out of JSON objects with errors that name the role and the field.

use std::collections::{BTreeMap, HashSet};

use crate::json::{Map, Value};
use crate::time::Timestamp;
use crate::types::{KeyId, Threshold, Version};

use super::MetadataError;

/// An object being taken apart: known fields are removed, what is left is kept as
/// unknown fields.
pub(crate) struct Fields<'r> {
    role: &'r str,
    path: FieldPath<'r>,
    map: Map,
}

/// Where an object sits in the document. Only formatted when an error is reported, so the
/// happy path over many small objects (one per target) allocates no path strings.
enum FieldPath<'r> {
    Owned(String),
    Child(&'r str, &'r str),
}

impl FieldPath<'_> {
    fn render(&self) -> String {
        match self {
            FieldPath::Owned(p) => p.clone(),
            FieldPath::Child("", key) => (*key).to_owned(),
            FieldPath::Child(parent, key) => format!("{parent}.{key}"),
        }
    }
}

impl<'r> Fields<'r> {
    pub(crate) fn new(
        role: &'r str,
        path: impl Into<String>,
        v: Value,
    ) -> Result<Self, MetadataError> {
        Self::with_path(role, FieldPath::Owned(path.into()), v)
    }

    /// The object at `parent.key`, with the path formatted only if an error needs it.
    pub(crate) fn child(
        role: &'r str,
        parent: &'r str,
        key: &'r str,
        v: Value,
    ) -> Result<Self, MetadataError> {
        Self::with_path(role, FieldPath::Child(parent, key), v)
    }

    fn with_path(role: &'r str, path: FieldPath<'r>, v: Value) -> Result<Self, MetadataError> {
        match v {
            Value::Object(map) => Ok(Fields { role, path, map }),
            other => Err(MetadataError::Malformed {
                role: role.to_owned(),
                field: path.render(),
                reason: format!("expected an object, found {}", other.kind()),
            }),
        }
    }

    /// This object's own path (e.g. `signed.targets`).
    pub(crate) fn path(&self) -> String {
        self.path.render()
    }

    pub(crate) fn role(&self) -> &'r str {
        self.role
    }

    pub(crate) fn field_path(&self, key: &str) -> String {
        let path = self.path.render();
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    }

    pub(crate) fn error(&self, key: &str, reason: impl Into<String>) -> MetadataError {
        MetadataError::Malformed {
            role: self.role.to_owned(),
            field: self.field_path(key),
            reason: reason.into(),
        }
    }

    fn wrong_kind(&self, key: &str, expected: &str, found: &Value) -> MetadataError {
        self.error(key, format!("expected {expected}, found {}", found.kind()))
    }

    pub(crate) fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    /// [`Fields::take`] of several keys in one pass over the object.
    pub(crate) fn take_many<const N: usize>(&mut self, keys: [&str; N]) -> [Option<Value>; N] {
        self.map.take_many(keys)
    }

    pub(crate) fn req(&mut self, key: &str) -> Result<Value, MetadataError> {
        self.take(key)
            .ok_or_else(|| self.error(key, "missing required field"))
    }

    pub(crate) fn req_str(&mut self, key: &str) -> Result<String, MetadataError> {
        match self.req(key)? {
            Value::String(s) => Ok(s),
            other => Err(self.wrong_kind(key, "a string", &other)),
        }
    }

    pub(crate) fn as_u64(&self, key: &str, v: &Value) -> Result<u64, MetadataError> {
        match v {
            Value::Int(i) => i
                .as_u64()
                .ok_or_else(|| self.error(key, format!("integer {i} out of range"))),
            other => Err(self.wrong_kind(key, "an integer", other)),
        }
    }

    pub(crate) fn req_u64(&mut self, key: &str) -> Result<u64, MetadataError> {
        let v = self.req(key)?;
        self.as_u64(key, &v)
    }

    pub(crate) fn opt_u64(&mut self, key: &str) -> Result<Option<u64>, MetadataError> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => self.as_u64(key, &v).map(Some),
        }
    }

    pub(crate) fn req_bool(&mut self, key: &str) -> Result<bool, MetadataError> {
        match self.req(key)? {
            Value::Bool(b) => Ok(b),
            other => Err(self.wrong_kind(key, "a boolean", &other)),
        }
    }

    pub(crate) fn opt_bool(&mut self, key: &str) -> Result<Option<bool>, MetadataError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(self.wrong_kind(key, "a boolean", &other)),
        }
    }

    pub(crate) fn req_version(&mut self, key: &str) -> Result<Version, MetadataError> {
        let v = self.req_u64(key)?;
        Version::new(v).map_err(|e| self.error(key, e.to_string()))
    }

    pub(crate) fn req_threshold(&mut self, key: &str) -> Result<Threshold, MetadataError> {
        let v = self.req_u64(key)?;
        let n =
            u32::try_from(v).map_err(|_| self.error(key, format!("threshold {v} out of range")))?;
        Threshold::new(n).map_err(|e| self.error(key, e.to_string()))
    }

    pub(crate) fn req_time(&mut self, key: &str) -> Result<Timestamp, MetadataError> {
        let s = self.req_str(key)?;
        Timestamp::parse(&s).map_err(|e| self.error(key, e.to_string()))
    }

    pub(crate) fn req_object(&mut self, key: &str) -> Result<Fields<'r>, MetadataError> {
        let v = self.req(key)?;
        Fields::new(self.role, self.field_path(key), v)
    }

    pub(crate) fn req_array(&mut self, key: &str) -> Result<Vec<Value>, MetadataError> {
        match self.req(key)? {
            Value::Array(a) => Ok(a),
            other => Err(self.wrong_kind(key, "an array", &other)),
        }
    }

    pub(crate) fn opt_string_array(
        &mut self,
        key: &str,
    ) -> Result<Option<Vec<String>>, MetadataError> {
        let Some(v) = self.take(key) else {
            return Ok(None);
        };
        let Value::Array(items) = v else {
            return Err(self.wrong_kind(key, "an array of strings", &v));
        };
        items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(self.wrong_kind(key, "an array of strings", &other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A list of distinct key ids.
    pub(crate) fn req_keyids(&mut self, key: &str) -> Result<Vec<KeyId>, MetadataError> {
        let items = self
            .opt_string_array(key)?
            .ok_or_else(|| self.error(key, "missing required field"))?;
        if items.len() > super::MAX_ROLE_KEYS {
            return Err(self.error(
                key,
                format!(
                    "{} key ids, at most {} are accepted",
                    items.len(),
                    super::MAX_ROLE_KEYS
                ),
            ));
        }
        let mut out: Vec<KeyId> = Vec::with_capacity(items.len());
        let mut seen: HashSet<KeyId> = HashSet::with_capacity(items.len());
        for s in items {
            let id = KeyId::new(s).map_err(|e| self.error(key, e.to_string()))?;
            if !seen.insert(id.clone()) {
                return Err(self.error(key, format!("key id {id} listed twice")));
            }
            out.push(id);
        }
        Ok(out)
    }

    /// A map of strings to strings (e.g. `hashes`).
    pub(crate) fn string_map(
        &self,
        key: &str,
        v: Value,
    ) -> Result<BTreeMap<String, String>, MetadataError> {
        let Value::Object(m) = v else {
            return Err(self.wrong_kind(key, "an object of strings", &v));
        };
        m.into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                other => Err(self.wrong_kind(key, "an object of strings", &other)),
            })
            .collect()
    }

    /// The remaining entries, for objects whose keys are data (key ids, role names).
    pub(crate) fn rest_mut(&mut self) -> &mut Map {
        &mut self.map
    }

    /// What was not taken: the unknown fields, kept to be written back unchanged.
    pub(crate) fn rest(self) -> Map {
        self.map
    }
}

/// Builds an object from known fields plus the unknown ones kept from parsing.
pub(crate) fn object(
    extra: &Map,
    fields: impl IntoIterator<Item = (&'static str, Value)>,
) -> Value {
    let mut m = extra.clone();
    for (k, v) in fields {
        m.insert(k.to_owned(), v);
    }
    Value::Object(m)
}

pub(crate) fn string_map_value(m: &BTreeMap<String, String>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    )
}

pub(crate) fn keyids_value(ids: &[KeyId]) -> Value {
    Value::Array(ids.iter().map(|k| Value::from(k.as_str())).collect())
}
