//! Shared by the integration tests: the repository root and the demo fixtures.

use std::path::PathBuf;

use quivox::audio::{ChannelPolicy, Waveform};
use quivox::recipe::read_telephone_wav;

/// The repository root (where `models/` and `audio-fixtures/` are).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `audio-fixtures/demo/<speaker>-<what>.wav` (`what` = `enroll` or `call`).
pub fn fixture(speaker: &str, what: &str) -> Waveform {
    read_telephone_wav(
        &root().join(format!("audio-fixtures/demo/{speaker}-{what}.wav")),
        ChannelPolicy::RequireMono,
    )
    .unwrap()
}
