//! Strict JSON values and the canonical form TUF signs.
//!
//! [`parse`] reads JSON text into a [`Value`]; [`canonical`] writes the canonical form that
//! python securesystemslib's `encode_canonical` produces, byte for byte:
//! object keys sorted by code point, no whitespace, strings with only `\` and `"` escaped and
//! every other character written as raw UTF-8, integers only.
//!
//! The parser is stricter than most, on purpose, because everything it reads is about to be
//! checked against a signature:
//! - numbers with a fraction or exponent are refused (securesystemslib cannot canonicalise
//!   them, so no TUF implementation can have signed them);
//! - an object that names one key twice is refused (parsers disagree on which copy wins, so an
//!   unsigned copy could ride along with a signed one);
//! - lone UTF-16 surrogates, raw control characters in strings, a byte-order mark and trailing
//!   data are refused;
//! - nesting is capped at [`MAX_DEPTH`], and the number of values at one per
//!   [`BYTES_PER_VALUE`] bytes of input (plus 1,024; see [`max_values`]).
//!
//! Strings are compared and sorted exactly as written: there is no Unicode normalisation, so
//! `"é"` (NFC) and `"é"` (NFD) stay two different keys. Integers of any size are kept exactly.
//!
//! [`to_json`] writes a compact, sorted document that is valid JSON even where the canonical
//! form is not (a raw control character inside a string is canonical but not valid JSON);
//! for documents without control characters the two are identical.

use std::fmt;

use thiserror::Error;

/// Deepest nesting of arrays and objects accepted by [`parse`].
pub const MAX_DEPTH: usize = 512;

/// Bytes of input each value must take on average (see [`max_values`]).
pub const BYTES_PER_VALUE: usize = 4;

/// The most values (objects, arrays, strings, numbers, literals) a document of `len` bytes
/// may hold: one per [`BYTES_PER_VALUE`] bytes, plus 1,024. A parsed value takes tens of
/// bytes of memory however short its text (`0,` is two bytes, `[],` three), so a dense
/// document would cost many times its size; metadata is not that dense (a list of hash
/// prefixes such as `"0a1",` is six bytes a value, a target entry twenty-five or more), and
/// the bound keeps memory within a small multiple of the input.
pub fn max_values(len: usize) -> usize {
    len / BYTES_PER_VALUE + 1024
}

/// A JSON object: distinct keys, kept in code-point order (the order UTF-8 bytes sort in).
///
/// Stored as one sorted vector rather than a tree: TUF documents hold many small objects
/// (one per target), and a vector makes parsing, canonicalising and dropping them cheap.
/// Lookups are binary searches; inserting into a large map is linear, which builders avoid by
/// collecting from an iterator.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Map {
    entries: Vec<(String, Value)>,
}

impl Map {
    /// An empty object.
    pub const fn new() -> Self {
        Map {
            entries: Vec::new(),
        }
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    /// The value of `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self.find(key) {
            Ok(i) => Some(&mut self.entries[i].1),
            Err(_) => None,
        }
    }

    /// The stored key and value of `key`.
    pub fn get_key_value(&self, key: &str) -> Option<(&String, &Value)> {
        self.find(key)
            .ok()
            .map(|i| (&self.entries[i].0, &self.entries[i].1))
    }

    /// True when `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key`, returning the value it replaced.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.find(key).ok().map(|i| self.entries.remove(i).1)
    }

    /// Removes every one of `keys` in one pass, returning their values in the order asked;
    /// an object left empty gives its storage back.
    ///
    /// ```
    /// use vouch_tuf::json::{parse, Value};
    /// let Value::Object(mut m) = parse(br#"{"a":1,"b":2,"c":3}"#).unwrap() else { panic!() };
    /// let [c, z, a] = m.take_many(["c", "z", "a"]);
    /// assert_eq!((c, z, a), (Some(Value::from(3u64)), None, Some(Value::from(1u64))));
    /// assert_eq!(m.keys().collect::<Vec<_>>(), ["b"]);
    /// ```
    pub fn take_many<const N: usize>(&mut self, keys: [&str; N]) -> [Option<Value>; N] {
        let mut out: [Option<Value>; N] = std::array::from_fn(|_| None);
        self.entries.retain_mut(
            |(k, v)| match keys.iter().position(|key| *key == k.as_str()) {
                Some(i) => {
                    out[i] = Some(std::mem::replace(v, Value::Null));
                    false
                }
                None => true,
            },
        );
        if self.entries.is_empty() {
            self.entries = Vec::new();
        }
        out
    }

    /// Keeps only the entries for which `f` returns true.
    pub fn retain(&mut self, mut f: impl FnMut(&String, &mut Value) -> bool) {
        self.entries.retain_mut(|(k, v)| f(k, v));
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &Value)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Entries in key order, values mutable.
    pub fn iter_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = (&String, &mut Value)> + ExactSizeIterator {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// Keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    /// Values in key order, mutable.
    pub fn values_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = &mut Value> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// Builds a map from entries already sorted by key and distinct.
    fn from_sorted(entries: Vec<(String, Value)>) -> Self {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        Map { entries }
    }
}

impl FromIterator<(String, Value)> for Map {
    /// Later entries win over earlier ones with the same key, as with repeated `insert`.
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut entries: Vec<(String, Value)> = iter.into_iter().collect();
        if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            // Stable, so equal keys keep their order and the last one can be kept.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out: Vec<(String, Value)> = Vec::with_capacity(entries.len());
            for e in entries {
                match out.last_mut() {
                    Some(last) if last.0 == e.0 => *last = e,
                    _ => out.push(e),
                }
            }
            entries = out;
        }
        Map { entries }
    }
}

impl<const N: usize> From<[(String, Value); N]> for Map {
    fn from(entries: [(String, Value); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl Extend<(String, Value)> for Map {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = (&'a String, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, Value)>,
        fn(&'a (String, Value)) -> (&'a String, &'a Value),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl std::ops::Index<&str> for Map {
    type Output = Value;
    /// Panics when the key is absent.
    fn index(&self, key: &str) -> &Value {
        match self.get(key) {
            Some(v) => v,
            None => panic!("no key {key:?} in JSON object"),
        }
    }
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A JSON value as TUF uses it: no floating-point numbers.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// An integer of any size.
    Int(Int),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object.
    Object(Map),
}

/// An integer of any size, kept exactly.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Int(IntRepr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum IntRepr {
    Small(i64),
    /// Decimal digits with an optional leading `-`, no leading zeros, outside the `i64` range.
    Big(Box<str>),
}

impl Int {
    /// The value as `u64`, when it fits.
    pub fn as_u64(&self) -> Option<u64> {
        match &self.0 {
            IntRepr::Small(v) => u64::try_from(*v).ok(),
            IntRepr::Big(s) => s.parse().ok(),
        }
    }

    /// The value as `i64`, when it fits.
    pub fn as_i64(&self) -> Option<i64> {
        match &self.0 {
            IntRepr::Small(v) => Some(*v),
            IntRepr::Big(_) => None,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match &self.0 {
            IntRepr::Small(v) => {
                // Formats without allocating: this runs once per integer in every document.
                let mut buf = [0u8; 20];
                let mut n = v.unsigned_abs();
                let mut i = buf.len();
                loop {
                    i -= 1;
                    buf[i] = b'0' + (n % 10) as u8;
                    n /= 10;
                    if n == 0 {
                        break;
                    }
                }
                if *v < 0 {
                    out.push(b'-');
                }
                out.extend_from_slice(&buf[i..]);
            }
            IntRepr::Big(s) => out.extend_from_slice(s.as_bytes()),
        }
    }
}

impl From<u64> for Int {
    fn from(v: u64) -> Self {
        match i64::try_from(v) {
            Ok(v) => Int(IntRepr::Small(v)),
            Err(_) => Int(IntRepr::Big(v.to_string().into())),
        }
    }
}

impl From<i64> for Int {
    fn from(v: i64) -> Self {
        Int(IntRepr::Small(v))
    }
}

impl fmt::Display for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            IntRepr::Small(v) => write!(f, "{v}"),
            IntRepr::Big(s) => f.write_str(s),
        }
    }
}

impl fmt::Debug for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&to_json(self)))
    }
}

impl Value {
    /// The object, if this is one.
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer as `u64`, if this is a non-negative integer that fits.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Int(i) => i.as_u64(),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The array, if this is one.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// A short name of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(v.into())
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(u64::from(v).into())
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Object(m)
    }
}

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::Array(v)
    }
}

/// Why some bytes are not acceptable JSON. Offsets are byte offsets into the input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JsonError {
    /// The input ended in the middle of a value.
    #[error("unexpected end of JSON input")]
    UnexpectedEnd,
    /// A byte that cannot start or continue a value here.
    #[error("unexpected character {found:?} at byte {offset}")]
    Unexpected {
        /// Where.
        offset: usize,
        /// The character found (lossy).
        found: char,
    },
    /// Data after the top-level value.
    #[error("trailing data after the JSON value at byte {offset}")]
    TrailingData {
        /// Where the trailing data starts.
        offset: usize,
    },
    /// A number with a fraction or exponent.
    #[error("floating-point number at byte {offset}: TUF metadata allows integers only")]
    Float {
        /// Where the number starts.
        offset: usize,
    },
    /// A malformed number (leading zeros, lone minus sign, ...).
    #[error("malformed number at byte {offset}")]
    BadNumber {
        /// Where the number starts.
        offset: usize,
    },
    /// An object names the same key twice.
    #[error("duplicate key {key:?} in the object starting at byte {offset}")]
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// Where the object holding it starts.
        offset: usize,
    },
    /// A malformed string: bad escape, lone surrogate, raw control character, invalid UTF-8.
    #[error("invalid string at byte {offset}: {reason}")]
    BadString {
        /// Where the problem is.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("JSON nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// More values than [`max_values`] allows for the input's size.
    #[error("JSON holds more than {max} values, the most a document of its size may (one per {BYTES_PER_VALUE} bytes)")]
    TooDense {
        /// The most values allowed.
        max: usize,
    },
    /// The input starts with a UTF-8 byte-order mark.
    #[error("JSON input starts with a byte-order mark")]
    ByteOrderMark,
}

/// Parses one JSON value, strictly (see the module documentation).
///
/// ```
/// use vouch_tuf::json::{parse, JsonError};
/// let v = parse(br#" {"b": 1, "a": [true, null]} "#).unwrap();
/// assert_eq!(vouch_tuf::json::canonical(&v), br#"{"a":[true,null],"b":1}"#);
/// assert!(matches!(parse(b"1.5"), Err(JsonError::Float { .. })));
/// assert!(matches!(parse(br#"{"a":1,"a":2}"#), Err(JsonError::DuplicateKey { .. })));
/// ```
pub fn parse(input: &[u8]) -> Result<Value, JsonError> {
    Parser::run(input, None).map(|(v, _)| v)
}

/// [`parse`], also telling where the value of the top-level member `member` sits in `input`
/// when those bytes are already exactly its canonical form.
///
/// Metadata written by vouch (and by any signer that publishes the canonical form) carries
/// `signed` in canonical form; its signatures can then be checked over the input bytes
/// themselves instead of over a re-encoding. The range is `None` when the member is absent,
/// when the document is not an object, or when anything inside the member's value differs
/// from the canonical form (whitespace, an escape other than `\"` and `\\`, keys out of
/// order, `-0`).
///
/// ```
/// use vouch_tuf::json::{canonical, parse_with_canonical_member};
/// let doc = br#"{"sig": "x", "signed": {"a":[1,"b"],"z":{}}}"#;
/// let (v, range) = parse_with_canonical_member(doc, "signed").unwrap();
/// let range = range.unwrap();
/// assert_eq!(&doc[range], canonical(&v.as_object().unwrap()["signed"]).as_slice());
/// let pretty = br#"{"signed": {"a": 1}}"#;
/// assert_eq!(parse_with_canonical_member(pretty, "signed").unwrap().1, None);
/// ```
pub fn parse_with_canonical_member(
    input: &[u8],
    member: &str,
) -> Result<(Value, Option<std::ops::Range<usize>>), JsonError> {
    Parser::run(input, Some(member))
}

/// Gives back a parsed list's spare capacity when it is more than half its length (plus a
/// few slots): memory follows what was parsed, without a reallocation for most small lists.
fn trim<T>(v: &mut Vec<T>) {
    if v.capacity() > v.len() + v.len() / 2 + 4 {
        v.shrink_to_fit();
    }
}

struct Parser<'a> {
    input: &'a [u8],
    /// The same bytes, known to be UTF-8.
    text: &'a str,
    pos: usize,
    depth: usize,
    /// Values still allowed (see [`max_values`]).
    values_left: usize,
    /// How many places so far differ from the canonical form (whitespace, escapes other
    /// than `\"` and `\\`, unsorted keys, `-0`). Only compared before and after a value.
    noncanonical: usize,
    /// The top-level member whose canonical span is wanted, and that span once found.
    member: Option<&'a str>,
    member_span: Option<std::ops::Range<usize>>,
}

impl<'a> Parser<'a> {
    fn run(
        input: &'a [u8],
        member: Option<&'a str>,
    ) -> Result<(Value, Option<std::ops::Range<usize>>), JsonError> {
        if input.starts_with(&[0xef, 0xbb, 0xbf]) {
            return Err(JsonError::ByteOrderMark);
        }
        // Validating UTF-8 once up front lets strings be sliced out without checking each again.
        let text = std::str::from_utf8(input).map_err(|e| JsonError::BadString {
            offset: e.valid_up_to(),
            reason: "invalid UTF-8",
        })?;
        let mut p = Parser {
            input,
            text,
            pos: 0,
            depth: 0,
            values_left: max_values(input.len()),
            noncanonical: 0,
            member,
            member_span: None,
        };
        p.skip_ws();
        let v = p.value()?;
        p.skip_ws();
        if p.pos != input.len() {
            return Err(JsonError::TrailingData { offset: p.pos });
        }
        Ok((v, p.member_span))
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        let start = self.pos;
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
        if self.pos != start {
            self.noncanonical += 1;
        }
    }

    fn unexpected(&self) -> JsonError {
        match std::str::from_utf8(&self.input[self.pos..]) {
            _ if self.pos >= self.input.len() => JsonError::UnexpectedEnd,
            Ok(s) => JsonError::Unexpected {
                offset: self.pos,
                found: s.chars().next().unwrap_or('\u{fffd}'),
            },
            Err(_) => JsonError::Unexpected {
                offset: self.pos,
                found: char::from(self.input[self.pos]),
            },
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), JsonError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn literal(&mut self, word: &[u8], v: Value) -> Result<Value, JsonError> {
        if self.input[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.unexpected())
        }
    }

    fn value(&mut self) -> Result<Value, JsonError> {
        self.values_left = self.values_left.checked_sub(1).ok_or(JsonError::TooDense {
            max: max_values(self.input.len()),
        })?;
        match self.peek() {
            None => Err(JsonError::UnexpectedEnd),
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.unexpected()),
        }
    }

    fn enter(&mut self) -> Result<(), JsonError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        self.pos += 1;
        self.skip_ws();
        Ok(())
    }

    fn object(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        self.enter()?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Object(Map::new()));
        }
        // Entries are collected first and sorted once (input is usually sorted already).
        let mut entries: Vec<(String, Value)> = Vec::new();
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.unexpected());
            }
            let key = self.string()?;
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            let v = if self.depth == 1 && self.member == Some(key.as_str()) {
                let (before, at) = (self.noncanonical, self.pos);
                let v = self.value()?;
                if self.noncanonical == before {
                    self.member_span = Some(at..self.pos);
                }
                v
            } else {
                self.value()?
            };
            entries.push((key, v));
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(b'}') => {
                    self.pos += 1;
                    self.depth -= 1;
                    break;
                }
                _ => return Err(self.unexpected()),
            }
        }
        if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            self.noncanonical += 1;
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(JsonError::DuplicateKey {
                    key: w[1].0.clone(),
                    offset: start,
                });
            }
        }
        trim(&mut entries);
        Ok(Value::Object(Map::from_sorted(entries)))
    }

    fn array(&mut self) -> Result<Value, JsonError> {
        self.enter()?;
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(b']') => {
                    self.pos += 1;
                    self.depth -= 1;
                    trim(&mut items);
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let digits_at = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        let digits = &self.input[digits_at..self.pos];
        if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
            return Err(JsonError::BadNumber { offset: start });
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return Err(JsonError::Float { offset: start });
        }
        if negative && digits == b"0" {
            // `-0` is written as `0`.
            self.noncanonical += 1;
        }
        // The digits are ASCII by construction.
        let text = std::str::from_utf8(&self.input[start..self.pos])
            .map_err(|_| JsonError::BadNumber { offset: start })?;
        let int = match text.parse::<i64>() {
            Ok(v) => Int(IntRepr::Small(v)),
            Err(_) => Int(IntRepr::Big(text.into())),
        };
        Ok(Value::Int(int))
    }

    fn hex4(&mut self) -> Result<u16, JsonError> {
        let bad = JsonError::BadString {
            offset: self.pos,
            reason: "malformed \\u escape",
        };
        let h = self.input.get(self.pos..self.pos + 4).ok_or(bad.clone())?;
        let s = std::str::from_utf8(h).map_err(|_| bad.clone())?;
        let v = u16::from_str_radix(s, 16).map_err(|_| bad.clone())?;
        if !h.iter().all(u8::is_ascii_hexdigit) {
            return Err(bad);
        }
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        // Caller has checked the opening quote. Runs of plain characters are copied as
        // slices of the (already validated) input: they start and end next to ASCII bytes,
        // so the slice boundaries are character boundaries.
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            self.pos = plain_run_end(self.input, self.pos);
            let run = &self.text[run_start..self.pos];
            match self.peek() {
                None => return Err(JsonError::UnexpectedEnd),
                Some(b'"') => {
                    self.pos += 1;
                    if out.is_empty() {
                        return Ok(run.to_owned());
                    }
                    out.push_str(run);
                    return Ok(out);
                }
                Some(b'\\') => {
                    out.push_str(run);
                    let at = self.pos;
                    self.pos += 1;
                    let esc = self.peek().ok_or(JsonError::UnexpectedEnd)?;
                    self.pos += 1;
                    if esc != b'"' && esc != b'\\' {
                        // The canonical form escapes only these two.
                        self.noncanonical += 1;
                    }
                    let c = match esc {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape(at)?,
                        _ => {
                            return Err(JsonError::BadString {
                                offset: at,
                                reason: "unknown escape",
                            })
                        }
                    };
                    out.push(c);
                }
                Some(_) => {
                    return Err(JsonError::BadString {
                        offset: self.pos,
                        reason: "raw control character",
                    })
                }
            }
        }
    }

    fn unicode_escape(&mut self, at: usize) -> Result<char, JsonError> {
        let lone = JsonError::BadString {
            offset: at,
            reason: "lone UTF-16 surrogate",
        };
        let hi = self.hex4()?;
        let code = match hi {
            0xd800..=0xdbff => {
                if !self.input[self.pos..].starts_with(b"\\u") {
                    return Err(lone);
                }
                self.pos += 2;
                let lo = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&lo) {
                    return Err(lone);
                }
                0x10000 + ((u32::from(hi) - 0xd800) << 10) + (u32::from(lo) - 0xdc00)
            }
            0xdc00..=0xdfff => return Err(lone),
            _ => u32::from(hi),
        };
        char::from_u32(code).ok_or(lone)
    }
}

/// Whether `b` ends a run of plain string characters: a quote, a backslash or a control
/// character.
fn ends_plain_run(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// The index of the first byte at or after `pos` that ends a run of plain string characters
/// (or `input.len()`). Looks at eight bytes at a time: strings (digests, names, media types)
/// are most of a metadata document.
fn plain_run_end(input: &[u8], mut pos: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of `x` that is zero, exact up to the first such byte (a
    // borrow can only mark bytes above it).
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    while let Some(chunk) = input.get(pos..pos + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let hits = zero_bytes(w ^ (ONES * u64::from(b'"')))
            | zero_bytes(w ^ (ONES * u64::from(b'\\')))
            // bytes below 0x20: subtracting 0x20 borrows into the high bit, which the byte
            // itself does not have
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
        if hits != 0 {
            return pos + (hits.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while input.get(pos).is_some_and(|&b| !ends_plain_run(b)) {
        pos += 1;
    }
    pos
}

/// The canonical form of a value (what TUF signs), as bytes.
///
/// ```
/// use vouch_tuf::json::{canonical, parse};
/// let v = parse("{\"é\": \"a\\\"b\", \"z\": [], \"a\": {}}".as_bytes()).unwrap();
/// assert_eq!(canonical(&v), "{\"a\":{},\"z\":[],\"é\":\"a\\\"b\"}".as_bytes());
/// ```
pub fn canonical(v: &Value) -> Vec<u8> {
    canonical_with_capacity(v, 256)
}

/// [`canonical`], writing into a buffer that starts with `capacity` bytes (the size of the
/// parsed input is a good guess, and saves growing the buffer step by step).
pub fn canonical_with_capacity(v: &Value, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    write(v, &mut out, Escape::Canonical);
    out
}

/// Appends the canonical form of `v` to `out`.
pub fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    write(v, out, Escape::Canonical);
}

/// A compact, key-sorted JSON document that is always valid JSON (control characters in
/// strings escaped). Identical to [`canonical`] when no string holds a control character.
pub fn to_json(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(v, &mut out, Escape::Json);
    out
}

/// [`to_json`] of `map` with one more member, `key`, whose value is given as its JSON text
/// `raw` (which must be compact JSON; an entry of `map` under `key` is left out).
///
/// ```
/// use vouch_tuf::json::{parse, to_json_with_raw_member, Map, Value};
/// let mut m = Map::new();
/// m.insert("z".into(), Value::from(1u64));
/// m.insert("a".into(), Value::from("x"));
/// assert_eq!(to_json_with_raw_member(&m, "m", br#"[true]"#), br#"{"a":"x","m":[true],"z":1}"#);
/// ```
pub fn to_json_with_raw_member(map: &Map, key: &str, raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 64 * (map.len() + 1) + key.len());
    let mut first = true;
    let mut member = |out: &mut Vec<u8>, k: &str| {
        out.push(if first { b'{' } else { b',' });
        first = false;
        write_str(k, out, Escape::Json);
        out.push(b':');
    };
    let mut raw_written = false;
    for (k, v) in map.iter() {
        if k == key {
            continue;
        }
        if !raw_written && key < k.as_str() {
            member(&mut out, key);
            out.extend_from_slice(raw);
            raw_written = true;
        }
        member(&mut out, k);
        write(v, &mut out, Escape::Json);
    }
    if !raw_written {
        member(&mut out, key);
        out.extend_from_slice(raw);
    }
    out.push(b'}');
    out
}

#[derive(Clone, Copy)]
enum Escape {
    Canonical,
    Json,
}

fn write(v: &Value, out: &mut Vec<u8>, esc: Escape) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => i.write(out),
        Value::String(s) => write_str(s, out, esc),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out, esc);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(k, out, esc);
                out.push(b':');
                write(item, out, esc);
            }
            out.push(b'}');
        }
    }
}

fn write_str(s: &str, out: &mut Vec<u8>, esc: Escape) {
    let bytes = s.as_bytes();
    let special = |b: u8| b == b'"' || b == b'\\' || (b < 0x20 && matches!(esc, Escape::Json));
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Most strings need no escaping: copy them whole.
    if !bytes.iter().any(|&b| special(b)) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !special(b) {
            continue;
        }
        out.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            c => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
        }
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn canon(s: &str) -> String {
        String::from_utf8(canonical(&parse(s.as_bytes()).unwrap())).unwrap()
    }

    #[test]
    fn sorts_keys_by_code_point_not_utf16() {
        // U+FF61 sorts before U+1F600 by code point (and UTF-8), after it in UTF-16.
        assert_eq!(canon(r#"{"😀":1,"｡":2,"a":3}"#), r#"{"a":3,"｡":2,"😀":1}"#);
    }

    #[test]
    fn keeps_nfc_and_nfd_apart() {
        let v = parse("{\"\u{e9}\":1,\"e\u{301}\":2}".as_bytes()).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 2);
    }

    #[test]
    fn escapes_only_quote_and_backslash() {
        assert_eq!(canon(r#""a\"b\\c\n\u0001é""#), "\"a\\\"b\\\\c\n\u{1}é\"");
        assert_eq!(
            String::from_utf8(to_json(&parse(br#""a\"b\\c\n\u0001""#).unwrap())).unwrap(),
            r#""a\"b\\c\u000a\u0001""#
        );
    }

    #[test]
    fn big_integers_are_exact() {
        assert_eq!(
            canon("100000000000000000000000000000000000000000"),
            "100000000000000000000000000000000000000000"
        );
        assert_eq!(canon("-9223372036854775809"), "-9223372036854775809");
        assert_eq!(canon("18446744073709551615"), "18446744073709551615");
        assert_eq!(
            parse(b"18446744073709551615").unwrap().as_u64(),
            Some(u64::MAX)
        );
        assert_eq!(parse(b"-1").unwrap().as_u64(), None);
        assert_eq!(canon("-0"), "0");
    }

    #[test]
    fn rejects() {
        type Check = fn(&JsonError) -> bool;
        let cases: &[(&[u8], Check)] = &[
            (b"1.0", |e| matches!(e, JsonError::Float { .. })),
            (b"1e5", |e| matches!(e, JsonError::Float { .. })),
            (b"[1E5]", |e| matches!(e, JsonError::Float { .. })),
            (b"01", |e| matches!(e, JsonError::BadNumber { .. })),
            (b"-", |e| matches!(e, JsonError::BadNumber { .. })),
            (b"{\"a\":1,\"a\":1}", |e| {
                matches!(e, JsonError::DuplicateKey { .. })
            }),
            (b"\"\\ud800\"", |e| matches!(e, JsonError::BadString { .. })),
            (b"\"\\udc00\\ud800\"", |e| {
                matches!(e, JsonError::BadString { .. })
            }),
            (b"\"\\ud800\\u0041\"", |e| {
                matches!(e, JsonError::BadString { .. })
            }),
            (b"\"a\nb\"", |e| matches!(e, JsonError::BadString { .. })),
            (b"\"\\x\"", |e| matches!(e, JsonError::BadString { .. })),
            (b"\"\\u12g4\"", |e| matches!(e, JsonError::BadString { .. })),
            (b"\"\\u+123\"", |e| matches!(e, JsonError::BadString { .. })),
            (b"\"\xff\"", |e| matches!(e, JsonError::BadString { .. })),
            (b"{} {}", |e| matches!(e, JsonError::TrailingData { .. })),
            (b"{}x", |e| matches!(e, JsonError::TrailingData { .. })),
            (b"\xef\xbb\xbf{}", |e| matches!(e, JsonError::ByteOrderMark)),
            (b"", |e| matches!(e, JsonError::UnexpectedEnd)),
            (b"[1,]", |e| matches!(e, JsonError::Unexpected { .. })),
            (b"{\"a\":1,}", |e| matches!(e, JsonError::Unexpected { .. })),
            (b"{\"a\" 1}", |e| matches!(e, JsonError::Unexpected { .. })),
            (b"[", |e| matches!(e, JsonError::UnexpectedEnd)),
            (b"tru", |e| matches!(e, JsonError::Unexpected { .. })),
            (b"NaN", |e| matches!(e, JsonError::Unexpected { .. })),
            (b"{1:2}", |e| matches!(e, JsonError::Unexpected { .. })),
        ];
        for (input, check) in cases {
            let err = parse(input).expect_err(&String::from_utf8_lossy(input));
            assert!(
                check(&err),
                "{:?} gave {err:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn canonical_spans_of_edge_cases() {
        let span = |doc: &str| {
            parse_with_canonical_member(doc.as_bytes(), "signed")
                .unwrap()
                .1
        };
        // Canonical: compact, sorted, only `\"` and `\\` escaped, big and negative integers.
        let doc = r#"{"signed":{"a":"q\"b\\","b":[-1,0,100000000000000000000000],"c":{}}}"#;
        assert_eq!(span(doc), Some(10..doc.len() - 1));
        // Each of these differs from the canonical form somewhere inside `signed`.
        for doc in [
            r#"{"signed":{"b":1,"a":2}}"#,
            r#"{"signed":{"a": 1}}"#,
            r#"{"signed":[1 ]}"#,
            r#"{"signed":"\u0041"}"#,
            r#"{"signed":"a\/b"}"#,
            r#"{"signed":"\n"}"#,
            r#"{"signed":-0}"#,
            r#"{"signed":{"a":{"z":1,"y":2}}}"#,
        ] {
            assert_eq!(span(doc), None, "{doc}");
        }
        // Whitespace and order outside `signed` do not matter; a nested `signed` is not it.
        let doc = r#" { "z" : 1 , "signed":[1] } "#;
        let at = doc.find('[').unwrap();
        assert_eq!(span(doc), Some(at..at + 3));
        assert_eq!(span(r#"{"a":{"signed":1}}"#), None);
        assert_eq!(span("[1]"), None);
    }

    #[test]
    fn plain_runs_end_at_the_first_quote_backslash_or_control_character() {
        // Every position and every kind of stop, including UTF-8 bytes (high bit set) around
        // it, against the byte-by-byte definition.
        let fill = "aé€😀".as_bytes();
        for len in 0..40 {
            for stop in [None, Some(b'"'), Some(b'\\'), Some(0u8), Some(0x1f)] {
                for at in 0..=len {
                    let mut input: Vec<u8> = fill.iter().copied().cycle().take(len).collect();
                    if let Some(b) = stop {
                        if at < len {
                            input[at] = b;
                        }
                    }
                    for start in 0..=input.len() {
                        let slow = (start..input.len())
                            .find(|&i| ends_plain_run(input[i]))
                            .unwrap_or(input.len());
                        assert_eq!(plain_run_end(&input, start), slow, "{input:?} from {start}");
                    }
                }
            }
        }
    }

    #[test]
    fn dense_documents_are_refused() {
        // Two bytes a value: refused, however the values nest.
        let zeros = format!("[{}0]", "0,".repeat(100_000));
        let max = max_values(zeros.len());
        assert_eq!(parse(zeros.as_bytes()), Err(JsonError::TooDense { max }));
        let objects = format!("[{}{{}}]", "{},".repeat(100_000));
        assert!(matches!(
            parse(objects.as_bytes()),
            Err(JsonError::TooDense { .. })
        ));
        // At the limit, it parses; small documents have room to spare.
        let n = 50_000;
        let mut at_limit = format!("[{}0]", "0,".repeat(n - 1));
        let needed = (n + 1 - 1024) * BYTES_PER_VALUE;
        at_limit.push_str(&" ".repeat(needed.saturating_sub(at_limit.len())));
        assert!(parse(at_limit.as_bytes()).is_ok());
        assert!(parse(b"[1,2,3,[4,5],{\"a\":6}]").is_ok());
    }

    #[test]
    fn depth_is_capped() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(deep.as_bytes()), Err(JsonError::TooDeep));
        // An unclosed run of brackets must not recurse without bound either.
        assert_eq!(
            parse("[".repeat(100_000).as_bytes()),
            Err(JsonError::TooDeep)
        );
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|v| Value::Int(v.into())),
            any::<u64>().prop_map(|v| Value::Int(v.into())),
            ".*".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::btree_map(".*", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// JSON with a space after every `[`, `{`, `:` and `,`.
    fn spaced(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Array(items) => {
                out.extend_from_slice(b"[ ");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    spaced(item, out);
                }
                out.push(b']');
            }
            Value::Object(map) => {
                out.extend_from_slice(b"{ ");
                for (i, (k, item)) in map.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    out.extend_from_slice(&to_json(&Value::String(k.clone())));
                    out.extend_from_slice(b": ");
                    spaced(item, out);
                }
                out.push(b'}');
            }
            leaf => out.extend_from_slice(&to_json(leaf)),
        }
    }

    proptest! {
        #[test]
        fn to_json_round_trips(v in arb_value()) {
            let text = to_json(&v);
            let back = parse(&text).unwrap();
            prop_assert_eq!(&back, &v);
            prop_assert_eq!(to_json(&back), text);
        }

        #[test]
        fn canonical_is_idempotent(v in arb_value()) {
            // Without control characters the canonical form is itself JSON that parses back.
            let c = canonical(&v);
            if !c.iter().any(|b| *b < 0x20) {
                prop_assert_eq!(canonical(&parse(&c).unwrap()), c);
            }
        }

        #[test]
        fn a_canonical_span_is_exactly_the_canonical_form(v in arb_value(), pretty in any::<bool>()) {
            // Wrap the value as `signed` beside another member; written compactly (as vouch
            // writes) or with whitespace.
            let mut env = Map::new();
            env.insert("signed".into(), v.clone());
            env.insert("other".into(), Value::from("x"));
            let doc = if pretty {
                let mut out = Vec::new();
                spaced(&Value::Object(env), &mut out);
                out
            } else {
                to_json(&Value::Object(env))
            };
            let (parsed, span) = parse_with_canonical_member(&doc, "signed").unwrap();
            let signed = &parsed.as_object().unwrap()["signed"];
            prop_assert_eq!(signed, &v);
            let c = canonical(&v);
            match span {
                Some(range) => prop_assert_eq!(&doc[range], c.as_slice()),
                // Without whitespace or control characters the compact form is canonical,
                // so it must have been recognised as such.
                None => prop_assert!(pretty || c.iter().any(|b| *b < 0x20)),
            }
        }

        #[test]
        fn a_span_is_never_claimed_for_bytes_that_are_not_canonical(
            bytes in proptest::collection::vec(
                prop_oneof![
                    Just(b'{'), Just(b'}'), Just(b'['), Just(b']'), Just(b'"'), Just(b':'),
                    Just(b','), Just(b' '), Just(b'\\'), Just(b'-'), Just(b'0'), Just(b'1'),
                    Just(b'a'), Just(b'b'), Just(b'n'), Just(b'u'), Just(b'/'),
                ],
                0..40,
            )
        ) {
            let mut doc = b"{\"signed\":".to_vec();
            doc.extend_from_slice(&bytes);
            doc.push(b'}');
            if let Ok((parsed, Some(range))) = parse_with_canonical_member(&doc, "signed") {
                let c = canonical(&parsed.as_object().unwrap()["signed"]);
                prop_assert_eq!(&doc[range], c.as_slice());
            }
        }

        #[test]
        fn a_raw_member_is_written_where_its_key_sorts(
            m in proptest::collection::btree_map(".*", arb_value(), 0..6),
            key in ".*",
            v in arb_value(),
        ) {
            let map: Map = m.into_iter().collect();
            let mut whole = map.clone();
            whole.insert(key.clone(), v.clone());
            prop_assert_eq!(
                to_json_with_raw_member(&map, &key, &to_json(&v)),
                to_json(&Value::Object(whole))
            );
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse(&bytes);
        }
    }
}

#[cfg(test)]
mod map_tests {
    use super::*;

    #[test]
    fn map_behaves_like_an_ordered_map() {
        let mut m = Map::new();
        assert!(m.insert("b".into(), Value::from(1u64)).is_none());
        assert!(m.insert("a".into(), Value::from(2u64)).is_none());
        assert_eq!(
            m.insert("b".into(), Value::from(3u64)),
            Some(Value::from(1u64))
        );
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(m["b"], Value::from(3u64));
        assert!(m.contains_key("a") && !m.contains_key("c"));
        assert_eq!(m.remove("a"), Some(Value::from(2u64)));
        assert_eq!(m.len(), 1);
        // Collecting keeps the last of repeated keys, in key order.
        let c: Map = [("z", 1u64), ("y", 2), ("z", 3)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect();
        assert_eq!(
            c.iter()
                .map(|(k, v)| (k.as_str(), v.as_u64().unwrap()))
                .collect::<Vec<_>>(),
            [("y", 2), ("z", 3)]
        );
    }
}
