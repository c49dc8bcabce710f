//! Differential test of the canonical JSON encoder against python securesystemslib, on
//! generated documents (`tests/python/canonical_differential.py`): for every case vouch
//! writes byte-identical canonical bytes, or both refuse the text.
//!
//! CI runs 3,000 cases from a fixed seed; `VOUCH_DIFFERENTIAL_CASES` and
//! `VOUCH_DIFFERENTIAL_SEED` run more, or others (the long runs in `bench/RESULTS.md`).
//! Duplicate object keys are not generated: vouch refuses them by design (Python's `json`
//! keeps the last), which `tests/canonical.rs` covers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use vouch_testkit::python::python;
use vouch_tuf::hex;
use vouch_tuf::json::{self, Value};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        })
        .unwrap_or(default)
}

#[test]
fn canonical_json_agrees_with_securesystemslib_on_generated_documents() {
    let count = env_or("VOUCH_DIFFERENTIAL_CASES", 3000);
    let seed = env_or("VOUCH_DIFFERENTIAL_SEED", 20261202);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/canonical_differential.py"
    );
    let out = Command::new(python())
        .args([
            script,
            "--count",
            &count.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .output()
        .expect("run the generator");
    assert!(
        out.status.success(),
        "the generator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut agreed, mut refused) = (0_u64, 0_u64);
    let mut disagreements = Vec::new();
    for line in out.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let case = json::parse(line).expect("a case line");
        let m = case.as_object().unwrap();
        let input = hex::decode(m["input_hex"].as_str().unwrap()).unwrap();
        let want = match &m["canonical_hex"] {
            Value::Null => None,
            v => Some(hex::decode(v.as_str().unwrap()).unwrap()),
        };
        let got = json::parse(&input).ok().map(|v| json::canonical(&v));
        match (&got, &want) {
            (Some(g), Some(w)) if g == w => agreed += 1,
            (None, None) => refused += 1,
            _ => disagreements.push(format!(
                "input {:?}\n  vouch:            {}\n  securesystemslib: {}",
                String::from_utf8_lossy(&input),
                got.as_deref().map_or("refused".into(), |b| format!(
                    "{:?}",
                    String::from_utf8_lossy(b)
                )),
                want.as_deref().map_or("refused".into(), |b| format!(
                    "{:?}",
                    String::from_utf8_lossy(b)
                )),
            )),
        }
    }
    assert_eq!(
        agreed + refused + disagreements.len() as u64,
        count,
        "every case read"
    );
    assert!(
        disagreements.is_empty(),
        "{} of {count} cases disagree (seed {seed}); the first:\n{}",
        disagreements.len(),
        disagreements
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Both kinds of case were exercised.
    assert!(
        agreed > count / 2 && refused > 0,
        "agreed {agreed}, refused {refused}"
    );
    println!("{count} cases (seed {seed}): {agreed} identical, {refused} refused by both");
}
