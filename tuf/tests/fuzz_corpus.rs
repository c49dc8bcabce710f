//! Every fuzz target of `vouch-tuf` over its checked-in corpus (`fuzz/corpus/<target>/`):
//! the seeds and every input a campaign ever crashed on, replayed in seconds.

use vouch_testkit::fuzz::replay;
use vouch_tuf::fuzz::TARGETS;

#[test]
fn every_target_survives_its_corpus() {
    for (name, body) in TARGETS {
        let n = replay(name, *body);
        assert!(n > 0, "{name}: no corpus inputs");
    }
}
