//! The webhook's fuzz targets (the `AdmissionReview` it is posted, its policy file) over
//! their checked-in corpora (`fuzz/corpus/<target>/`): every seed and every input a
//! campaign ever crashed on, replayed in seconds.

use vouch_admission::fuzz::TARGETS;
use vouch_testkit::fuzz::replay;

#[test]
fn every_target_survives_its_corpus() {
    for (name, body) in TARGETS {
        let n = replay(name, *body);
        assert!(n > 0, "{name}: no corpus inputs");
    }
}
