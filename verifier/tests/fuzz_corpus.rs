//! The verifier's fuzz targets (offline bundles, trust-pin files, token challenges and
//! answers, error bodies, cache files) over their checked-in corpora
//! (`fuzz/corpus/<target>/`): every seed and every input a campaign ever crashed on,
//! replayed in seconds.

use vouch_testkit::fuzz::replay;
use vouch_verifier::fuzz::TARGETS;

#[test]
fn every_target_survives_its_corpus() {
    for (name, body) in TARGETS {
        let n = replay(name, *body);
        assert!(n > 0, "{name}: no corpus inputs");
    }
}
