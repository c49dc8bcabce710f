//! The webhook's fuzz target (the `AdmissionReview` it is posted) over its checked-in corpus
//! (`fuzz/corpus/admission_review/`): every seed and every input a campaign ever crashed on,
//! replayed in seconds.

use vouch_admission::fuzz::TARGETS;
use vouch_testkit::fuzz::replay;

#[test]
fn every_target_survives_its_corpus() {
    for (name, body) in TARGETS {
        let n = replay(name, *body);
        assert!(n > 0, "{name}: no corpus inputs");
    }
}
