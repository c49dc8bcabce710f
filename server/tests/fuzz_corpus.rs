//! The server's fuzz targets (the publish body's multipart reader, registry bearer tokens,
//! the configuration, the changefeed's query) over their checked-in corpora
//! (`fuzz/corpus/<target>/`): every seed and every input a campaign ever crashed on,
//! replayed in seconds.

use vouch_server::fuzz::TARGETS;
use vouch_testkit::fuzz::replay;

#[test]
fn every_target_survives_its_corpus() {
    for (name, body) in TARGETS {
        let n = replay(name, *body);
        assert!(n > 0, "{name}: no corpus inputs");
    }
}
