//! The checked-in fuzz corpora, replayed as ordinary tests.
//!
//! Each fuzz target of the repository's `fuzz/` project keeps its seeds, and every input that
//! once crashed it, under `fuzz/corpus/<target>/`. [`replay`] runs a target's body (the plain
//! `fn(&[u8])` its library exposes in a `fuzz` module) over each of those files, so CI checks
//! in seconds that no seed and no past crash panics again; the long campaigns stay outside CI.

use std::path::{Path, PathBuf};

/// Where the corpora live: `fuzz/corpus/` at the repository's root.
pub fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the testkit crate sits in the workspace root")
        .join("fuzz")
        .join("corpus")
}

/// Every file of `fuzz/corpus/<target>/`, sorted by name. Panics when the directory is
/// missing or empty: every target has seeds.
pub fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_root().join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading the corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the corpus {} is empty", dir.display());
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// Runs `body` over every file of `target`'s corpus; a panic names the file that caused it.
/// Returns how many inputs ran.
pub fn replay(target: &str, body: fn(&[u8])) -> usize {
    let inputs = corpus(target);
    let mut failed = Vec::new();
    for (path, bytes) in &inputs {
        if std::panic::catch_unwind(|| body(bytes)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "fuzz target {target} panicked on {} corpus input(s): {failed:?}",
        failed.len()
    );
    inputs.len()
}
