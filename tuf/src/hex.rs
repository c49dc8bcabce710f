//! Lowercase hexadecimal encoding and strict decoding.
//!
//! TUF writes key ids, signatures and hashes as lowercase hex. Decoding accepts
//! upper case as well (some writers emit it) but never odd lengths or other characters.

use thiserror::Error;

/// A string that is not valid hexadecimal.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HexError {
    /// The string has an odd number of characters.
    #[error("hex string has odd length {0}")]
    OddLength(usize),
    /// A character outside `0-9a-fA-F` at the given byte offset.
    #[error("invalid hex character at offset {0}")]
    InvalidChar(usize),
}

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Encodes bytes as lowercase hex.
///
/// ```
/// assert_eq!(vouch_tuf::hex::encode([0xde, 0xad]), "dead");
/// ```
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    let bytes = bytes.as_ref();
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes a hex string.
///
/// ```
/// assert_eq!(vouch_tuf::hex::decode("DEad").unwrap(), vec![0xde, 0xad]);
/// assert!(vouch_tuf::hex::decode("abc").is_err());
/// ```
pub fn decode(s: &str) -> Result<Vec<u8>, HexError> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return Err(HexError::OddLength(b.len()));
    }
    let mut out = Vec::with_capacity(b.len() / 2);
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = nibble(pair[0]).ok_or(HexError::InvalidChar(2 * i))?;
        let lo = nibble(pair[1]).ok_or(HexError::InvalidChar(2 * i + 1))?;
        out.push((hi << 4) | lo);
    }
    Ok(out)
}

/// True when `s` is non-empty lowercase hex of exactly `len` characters.
pub fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_bad_input() {
        assert_eq!(decode("0g"), Err(HexError::InvalidChar(1)));
        assert_eq!(decode("000"), Err(HexError::OddLength(3)));
        assert!(decode("").unwrap().is_empty());
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let s = encode(&bytes);
            prop_assert!(is_lower_hex(&s, bytes.len() * 2));
            prop_assert_eq!(decode(&s).unwrap(), bytes);
        }
    }
}
