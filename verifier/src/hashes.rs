//! Length and hash checks of downloaded bytes against trusted metadata.

use std::collections::BTreeMap;

use ring::digest;

use crate::error::Mismatch;

fn algorithm(name: &str) -> Option<&'static digest::Algorithm> {
    match name {
        "sha256" => Some(&digest::SHA256),
        "sha384" => Some(&digest::SHA384),
        "sha512" => Some(&digest::SHA512),
        _ => None,
    }
}

/// Checks `bytes` against a trusted length (when given) and every trusted hash.
///
/// Every listed hash must be of a supported algorithm (sha256, sha384, sha512) and match;
/// an unknown algorithm fails rather than being skipped, so a hash cannot be dodged by naming
/// an algorithm the client does not know.
pub fn check(
    bytes: &[u8],
    length: Option<u64>,
    hashes: Option<&BTreeMap<String, String>>,
) -> Result<(), Mismatch> {
    if let Some(expected) = length {
        let got = bytes.len() as u64;
        if got != expected {
            return Err(Mismatch::Length { expected, got });
        }
    }
    if let Some(hashes) = hashes {
        if hashes.is_empty() {
            return Err(Mismatch::NoHashes);
        }
        for (name, expected) in hashes {
            let alg = algorithm(name).ok_or_else(|| Mismatch::UnsupportedAlgorithm {
                algorithm: name.clone(),
            })?;
            let got = vouch_tuf::hex::encode(digest::digest(alg, bytes).as_ref());
            if !got.eq_ignore_ascii_case(expected) {
                return Err(Mismatch::Hash {
                    algorithm: name.clone(),
                    expected: expected.clone(),
                    got,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256(b: &[u8]) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert(
            "sha256".into(),
            vouch_tuf::hex::encode(digest::digest(&digest::SHA256, b).as_ref()),
        );
        m
    }

    #[test]
    fn accepts_matching_bytes() {
        assert_eq!(check(b"abc", Some(3), Some(&sha256(b"abc"))), Ok(()));
        assert_eq!(check(b"abc", None, None), Ok(()));
    }

    #[test]
    fn rejects_wrong_length_and_hash() {
        assert!(matches!(
            check(b"abcd", Some(3), None),
            Err(Mismatch::Length {
                expected: 3,
                got: 4
            })
        ));
        assert!(matches!(
            check(b"abd", Some(3), Some(&sha256(b"abc"))),
            Err(Mismatch::Hash { .. })
        ));
    }

    #[test]
    fn rejects_unknown_algorithms_and_empty_hashes() {
        let mut m = sha256(b"abc");
        m.insert("md5".into(), "00".into());
        assert!(matches!(
            check(b"abc", None, Some(&m)),
            Err(Mismatch::UnsupportedAlgorithm { .. })
        ));
        assert_eq!(
            check(b"abc", None, Some(&BTreeMap::new())),
            Err(Mismatch::NoHashes)
        );
    }
}
