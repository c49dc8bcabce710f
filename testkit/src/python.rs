//! The Python interpreter with python-tuf (the reference implementation) installed, which the
//! interoperability tests run to write repositories and to update from vouch.
//!
//! `VOUCH_TEST_PYTHON` names it (`scripts/test` sets it); otherwise it is the workspace's
//! `target/venv/bin/python`, which `scripts/python-env` creates. A missing interpreter is a
//! failed test, not a skipped one.

use std::path::{Path, PathBuf};

/// The Python with python-tuf: `VOUCH_TEST_PYTHON`, else the workspace's
/// `target/venv/bin/python`.
///
/// Panics, saying how to make one, when neither is there.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("VOUCH_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    // This crate sits at the top of the workspace, beside `target/`.
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/venv/bin/python");
    assert!(
        venv.exists(),
        "python-tuf is needed for this test: run ./scripts/test or scripts/python-env (they \
         create target/venv), or set VOUCH_TEST_PYTHON to a python with tuf==7.0.1"
    );
    venv
}
