//! Files in a local directory.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{check_path, read_capped_sized, Transport, TransportError};

/// Serves files from a directory: `fetch("3.snapshot.json")` reads `DIR/3.snapshot.json`.
#[derive(Clone, Debug)]
pub struct DirectoryTransport {
    base: PathBuf,
}

impl DirectoryTransport {
    /// Files under `base`.
    pub fn new(base: impl Into<PathBuf>) -> Self {
        DirectoryTransport { base: base.into() }
    }

    /// The directory.
    pub fn base(&self) -> &Path {
        &self.base
    }
}

impl Transport for DirectoryTransport {
    fn fetch(&self, path: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        check_path(path)?;
        let full = self.base.join(path);
        let file = match File::open(&full) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(TransportError::NotFound {
                    path: path.to_owned(),
                })
            }
            Err(source) => {
                return Err(TransportError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let announced = file.metadata().ok().map(|m| m.len());
        read_capped_sized(path, file, max_len, announced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetches_with_a_cap() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), b"0123456789").unwrap();
        let t = DirectoryTransport::new(dir.path());
        assert_eq!(t.fetch("a.json", 10).unwrap(), b"0123456789");
        assert!(matches!(
            t.fetch("a.json", 9),
            Err(TransportError::TooLarge { limit: 9, .. })
        ));
        assert!(t.fetch("b.json", 9).unwrap_err().is_not_found());
        assert!(matches!(
            t.fetch("../a.json", 9),
            Err(TransportError::BadPath { .. })
        ));
    }
}
