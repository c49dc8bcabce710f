//! The one length-and-hash check of bytes against what trusted metadata says of them.
//!
//! Timestamp says it of snapshot, snapshot of each targets role ([`MetaFile`]), a targets
//! role of each target ([`TargetFile`]). The verifier runs this check on every file it
//! downloads; the server runs the same check on the `meta` of a snapshot a client uploads, so
//! the server never stores a snapshot that clients would refuse.
//!
//! The rule (TUF 1.0.34 client workflow: snapshot against timestamp in 5.5, targets roles
//! against snapshot in 5.6, targets against their targets role in 5.7):
//! - a given length must equal the number of bytes;
//! - every listed hash must match: hashes are not alternatives, so one good hash does not
//!   excuse a bad one;
//! - the supported algorithms are [`SUPPORTED_ALGORITHMS`] (`sha256`, `sha384`, `sha512`).
//!   An **unsupported algorithm refuses the file**, even next to a matching supported hash:
//!   skipping it would let whoever writes metadata name a hash that nobody checks, and
//!   python-tuf refuses it too;
//! - each listed hash must be the **lowercase** hex digest of its algorithm's full length
//!   (64, 96 or 128 characters), as securesystemslib writes and python-tuf compares it; an
//!   upper-case or truncated value is malformed, not a near miss;
//! - a hash map that is given must not be empty (the parsers already refuse one; a value
//!   built in code is held to the same rule);
//! - with no hashes at all, only the length is checked (timestamp's and snapshot's entries may
//!   omit both, and then the version they give is what binds the file).
//!
//! What is wrong with the metadata itself (no hashes, an unsupported algorithm, a malformed
//! hash) is reported before what is wrong with the bytes, so the answer does not depend on
//! the bytes offered. Then the length is checked, then each hash in algorithm order.
//!
//! ```
//! use vouch_tuf::metadata::{MetaFile, Mismatch};
//! use vouch_tuf::types::Version;
//!
//! let meta = MetaFile::for_bytes(Version::new(3).unwrap(), b"{\"signed\":{}}");
//! assert_eq!(meta.check(b"{\"signed\":{}}"), Ok(()));
//! assert!(matches!(meta.check(b"{\"signed\":{ }}"), Err(Mismatch::Length { .. })));
//! ```

use std::collections::BTreeMap;

use ring::digest;
use thiserror::Error;

use super::{MetaFile, TargetFile};

/// The hash algorithms whose hashes can be checked, by their TUF names.
pub const SUPPORTED_ALGORITHMS: [&str; 3] = ["sha256", "sha384", "sha512"];

/// What was wrong with a length or a hash.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Mismatch {
    /// The bytes are not of the trusted length.
    #[error("length is {got} bytes, trusted metadata says {expected}")]
    Length {
        /// Trusted length.
        expected: u64,
        /// Actual length.
        got: u64,
    },
    /// A hash differs.
    #[error("{algorithm} hash is {got}, trusted metadata says {expected}")]
    Hash {
        /// Hash algorithm.
        algorithm: String,
        /// Trusted hex digest.
        expected: String,
        /// Actual hex digest.
        got: String,
    },
    /// Trusted metadata names a hash algorithm that cannot be checked.
    #[error("hash algorithm {algorithm:?} is not supported (supported: sha256, sha384, sha512)")]
    UnsupportedAlgorithm {
        /// The algorithm named.
        algorithm: String,
    },
    /// Trusted metadata gives a hash that is not a lowercase hex digest of its algorithm.
    #[error("{algorithm} hash {value:?} is not {hex_len} lowercase hex characters")]
    MalformedHash {
        /// Hash algorithm.
        algorithm: String,
        /// The value given.
        value: String,
        /// How many hex characters a digest of that algorithm has.
        hex_len: usize,
    },
    /// Trusted metadata gives an empty hash map.
    #[error("no supported hash is listed")]
    NoHashes,
}

fn algorithm(name: &str) -> Option<&'static digest::Algorithm> {
    match name {
        "sha256" => Some(&digest::SHA256),
        "sha384" => Some(&digest::SHA384),
        "sha512" => Some(&digest::SHA512),
        _ => None,
    }
}

/// The lowercase hex digest of `bytes` under the TUF hash algorithm `name`, or `None` when
/// the algorithm is not one of [`SUPPORTED_ALGORITHMS`].
///
/// ```
/// use vouch_tuf::metadata::hashes::hex_digest;
/// assert_eq!(hex_digest("sha384", b"").map(|h| h.len()), Some(96));
/// assert_eq!(hex_digest("md5", b""), None);
/// ```
pub fn hex_digest(name: &str, bytes: &[u8]) -> Option<String> {
    algorithm(name).map(|alg| crate::hex::encode(digest::digest(alg, bytes).as_ref()))
}

/// Checks `bytes` against a trusted `length` and trusted `hashes` (algorithm name to hex),
/// by the rule in the [module documentation](self).
///
/// ```
/// use std::collections::BTreeMap;
/// use vouch_tuf::metadata::hashes::check;
/// use vouch_tuf::metadata::Mismatch;
///
/// let sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
/// let hashes = BTreeMap::from([("sha256".to_owned(), sha256.to_owned())]);
/// assert_eq!(check(b"abc", Some(3), Some(&hashes)), Ok(()));
/// assert!(matches!(check(b"abd", Some(3), Some(&hashes)), Err(Mismatch::Hash { .. })));
///
/// let mut with_md5 = hashes.clone();
/// with_md5.insert("md5".into(), "900150983cd24fb0d6963f7d28e17f72".into());
/// assert!(matches!(
///     check(b"abc", Some(3), Some(&with_md5)),
///     Err(Mismatch::UnsupportedAlgorithm { .. })
/// ));
/// ```
pub fn check(
    bytes: &[u8],
    length: Option<u64>,
    hashes: Option<&BTreeMap<String, String>>,
) -> Result<(), Mismatch> {
    let listed = match hashes {
        Some(hashes) => well_formed(hashes)?,
        None => Vec::new(),
    };
    if let Some(expected) = length {
        let got = bytes.len() as u64;
        if got != expected {
            return Err(Mismatch::Length { expected, got });
        }
    }
    for (name, alg, expected) in listed {
        let got = crate::hex::encode(digest::digest(alg, bytes).as_ref());
        if got != *expected {
            return Err(Mismatch::Hash {
                algorithm: name.clone(),
                expected: expected.clone(),
                got,
            });
        }
    }
    Ok(())
}

/// Checks that `hashes` (algorithm name to hex) is what trusted metadata may give, by the
/// rule in the [module documentation](self): not empty, every algorithm one of
/// [`SUPPORTED_ALGORITHMS`], every value the lowercase hex digest of its algorithm's full
/// length. [`check`] applies it before it looks at any bytes; whoever uses a listed hash
/// before the bytes are checked (say, to name the file to fetch) applies it first.
///
/// ```
/// use std::collections::BTreeMap;
/// use vouch_tuf::metadata::hashes::check_well_formed;
/// use vouch_tuf::metadata::Mismatch;
///
/// let sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
/// let good = BTreeMap::from([("sha256".to_owned(), sha256.to_owned())]);
/// assert_eq!(check_well_formed(&good), Ok(()));
/// let bad = BTreeMap::from([("sha256".to_owned(), "../../x".to_owned())]);
/// assert!(matches!(check_well_formed(&bad), Err(Mismatch::MalformedHash { .. })));
/// ```
pub fn check_well_formed(hashes: &BTreeMap<String, String>) -> Result<(), Mismatch> {
    well_formed(hashes).map(|_| ())
}

/// The listed hashes with their algorithms, when they are well-formed
/// ([`check_well_formed`]).
fn well_formed(
    hashes: &BTreeMap<String, String>,
) -> Result<Vec<(&String, &'static digest::Algorithm, &String)>, Mismatch> {
    if hashes.is_empty() {
        return Err(Mismatch::NoHashes);
    }
    let mut listed = Vec::with_capacity(hashes.len());
    for (name, expected) in hashes {
        let alg = algorithm(name).ok_or_else(|| Mismatch::UnsupportedAlgorithm {
            algorithm: name.clone(),
        })?;
        let hex_len = 2 * alg.output_len();
        if !crate::hex::is_lower_hex(expected, hex_len) {
            return Err(Mismatch::MalformedHash {
                algorithm: name.clone(),
                value: expected.clone(),
                hex_len,
            });
        }
        listed.push((name, alg, expected));
    }
    Ok(listed)
}

impl MetaFile {
    /// Checks a role's metadata bytes against the length and hashes given here (the version
    /// is checked after parsing, by whoever compares roles).
    pub fn check(&self, bytes: &[u8]) -> Result<(), Mismatch> {
        check(bytes, self.length, self.hashes.as_ref())
    }
}

impl TargetFile {
    /// Checks a target's bytes against its length and hashes.
    pub fn check(&self, bytes: &[u8]) -> Result<(), Mismatch> {
        check(bytes, Some(self.length), Some(&self.hashes))
    }

    /// Checks that this target's hashes are well-formed ([`check_well_formed`]), before
    /// any of them is used.
    pub fn check_hashes(&self) -> Result<(), Mismatch> {
        check_well_formed(&self.hashes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Map;
    use crate::types::Version;

    fn hex_of(alg: &'static digest::Algorithm, b: &[u8]) -> String {
        crate::hex::encode(digest::digest(alg, b).as_ref())
    }

    fn map(entries: &[(&str, String)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    fn sha256(b: &[u8]) -> BTreeMap<String, String> {
        map(&[("sha256", hex_of(&digest::SHA256, b))])
    }

    #[test]
    fn accepts_matching_bytes_with_every_supported_algorithm() {
        let all = map(&[
            ("sha256", hex_of(&digest::SHA256, b"abc")),
            ("sha384", hex_of(&digest::SHA384, b"abc")),
            ("sha512", hex_of(&digest::SHA512, b"abc")),
        ]);
        assert_eq!(check(b"abc", Some(3), Some(&all)), Ok(()));
        for (name, value) in &all {
            let one = map(&[(name.as_str(), value.clone())]);
            assert_eq!(check(b"abc", Some(3), Some(&one)), Ok(()), "{name}");
        }
        assert_eq!(
            SUPPORTED_ALGORITHMS.to_vec(),
            all.keys().map(String::as_str).collect::<Vec<_>>()
        );
    }

    #[test]
    fn nothing_listed_checks_nothing() {
        assert_eq!(check(b"anything", None, None), Ok(()));
    }

    #[test]
    fn a_length_alone_is_checked() {
        assert_eq!(check(b"abc", Some(3), None), Ok(()));
        assert_eq!(
            check(b"abcd", Some(3), None),
            Err(Mismatch::Length {
                expected: 3,
                got: 4
            })
        );
        assert_eq!(
            check(b"", Some(1), None),
            Err(Mismatch::Length {
                expected: 1,
                got: 0
            })
        );
    }

    #[test]
    fn hashes_alone_are_checked() {
        assert_eq!(check(b"abc", None, Some(&sha256(b"abc"))), Ok(()));
        assert!(matches!(
            check(b"abd", None, Some(&sha256(b"abc"))),
            Err(Mismatch::Hash { .. })
        ));
    }

    /// The attack: bytes of the right size with other content.
    #[test]
    fn right_length_wrong_hash_is_refused() {
        assert_eq!(
            check(b"abd", Some(3), Some(&sha256(b"abc"))),
            Err(Mismatch::Hash {
                algorithm: "sha256".into(),
                expected: hex_of(&digest::SHA256, b"abc"),
                got: hex_of(&digest::SHA256, b"abd"),
            })
        );
    }

    /// The attack: the right bytes with a lie about their size (or the right content padded).
    #[test]
    fn right_hash_wrong_length_is_refused() {
        assert_eq!(
            check(b"abc", Some(4), Some(&sha256(b"abc"))),
            Err(Mismatch::Length {
                expected: 4,
                got: 3
            })
        );
    }

    #[test]
    fn every_listed_hash_must_match_not_just_one() {
        let mut m = sha256(b"abc");
        m.insert("sha512".into(), hex_of(&digest::SHA512, b"abd"));
        assert!(matches!(
            check(b"abc", Some(3), Some(&m)),
            Err(Mismatch::Hash { ref algorithm, .. }) if algorithm == "sha512"
        ));
    }

    #[test]
    fn an_unsupported_algorithm_refuses_even_next_to_a_matching_hash() {
        let mut m = sha256(b"abc");
        m.insert("md5".into(), "900150983cd24fb0d6963f7d28e17f72".into());
        assert_eq!(
            check(b"abc", Some(3), Some(&m)),
            Err(Mismatch::UnsupportedAlgorithm {
                algorithm: "md5".into()
            })
        );
        // Sorted after sha256, and with wrong bytes: still reported as unsupported.
        let mut m = sha256(b"abc");
        m.insert("blake2b".into(), "00".repeat(64));
        m.insert("sha3-256".into(), "00".repeat(32));
        assert_eq!(
            check(b"xyz", Some(3), Some(&m)),
            Err(Mismatch::UnsupportedAlgorithm {
                algorithm: "blake2b".into()
            })
        );
    }

    #[test]
    fn only_unsupported_algorithms_are_refused() {
        let m = map(&[("sha224", "00".repeat(28))]);
        assert!(matches!(
            check(b"abc", None, Some(&m)),
            Err(Mismatch::UnsupportedAlgorithm { .. })
        ));
        // Algorithm names are exact: no case folding.
        let m = map(&[("SHA256", hex_of(&digest::SHA256, b"abc"))]);
        assert!(matches!(
            check(b"abc", None, Some(&m)),
            Err(Mismatch::UnsupportedAlgorithm { .. })
        ));
    }

    #[test]
    fn an_empty_hash_map_is_refused() {
        assert_eq!(
            check(b"abc", Some(3), Some(&BTreeMap::new())),
            Err(Mismatch::NoHashes)
        );
    }

    #[test]
    fn an_uppercase_hash_is_malformed() {
        let upper = hex_of(&digest::SHA256, b"abc").to_ascii_uppercase();
        assert_eq!(
            check(b"abc", Some(3), Some(&map(&[("sha256", upper.clone())]))),
            Err(Mismatch::MalformedHash {
                algorithm: "sha256".into(),
                value: upper,
                hex_len: 64
            })
        );
    }

    #[test]
    fn a_hash_of_the_wrong_length_is_malformed() {
        let full = hex_of(&digest::SHA512, b"abc");
        for value in [
            full[..64].to_owned(),         // a sha256-sized value under sha512
            format!("{full}00"),           // too long
            String::new(),                 // empty
            format!("{}zz", &full[..126]), // not hex
        ] {
            assert_eq!(
                check(b"abc", None, Some(&map(&[("sha512", value.clone())]))),
                Err(Mismatch::MalformedHash {
                    algorithm: "sha512".into(),
                    value,
                    hex_len: 128
                })
            );
        }
        let m = map(&[("sha384", hex_of(&digest::SHA256, b"abc"))]);
        assert!(matches!(
            check(b"abc", None, Some(&m)),
            Err(Mismatch::MalformedHash { hex_len: 96, .. })
        ));
    }

    #[test]
    fn metadata_faults_are_reported_whatever_the_bytes() {
        let mut m = sha256(b"abc");
        m.insert("md5".into(), "00".repeat(16));
        for bytes in [&b"abc"[..], b"abcd", b""] {
            assert!(matches!(
                check(bytes, Some(3), Some(&m)),
                Err(Mismatch::UnsupportedAlgorithm { .. })
            ));
        }
    }

    #[test]
    fn meta_file_and_target_file_apply_the_same_rule() {
        let v = Version::new(1).unwrap();
        let meta = MetaFile::for_bytes(v, b"abc");
        assert_eq!(meta.check(b"abc"), Ok(()));
        assert!(matches!(meta.check(b"abd"), Err(Mismatch::Hash { .. })));
        assert_eq!(MetaFile::version_only(v).check(b"anything"), Ok(()));
        let length_only = MetaFile {
            length: Some(3),
            ..MetaFile::version_only(v)
        };
        assert!(matches!(
            length_only.check(b"abcd"),
            Err(Mismatch::Length { .. })
        ));

        let target = TargetFile {
            length: 3,
            hashes: sha256(b"abc"),
            custom: None,
            extra: Map::new(),
        };
        assert_eq!(target.check(b"abc"), Ok(()));
        assert!(matches!(target.check(b"abd"), Err(Mismatch::Hash { .. })));
        assert!(matches!(
            target.check(b"abcd"),
            Err(Mismatch::Length { .. })
        ));
        let no_hashes = TargetFile {
            hashes: BTreeMap::new(),
            ..target
        };
        assert_eq!(no_hashes.check(b"abc"), Err(Mismatch::NoHashes));
    }
}
