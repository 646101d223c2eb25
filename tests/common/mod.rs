//! Shared by the integration tests: the repository root and the demo fixtures.

use std::path::PathBuf;

use quivox::audio::{ChannelPolicy, Waveform};
use quivox::engine::SpeakerId;
use quivox::recipe::read_telephone_wav;
use quivox::service::EnrollRequest;
use quivox::store::Consent;

/// The repository root (where `models/` and `audio-fixtures/` are).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `audio-fixtures/demo/<speaker>-<what>.wav` (`what` = `enroll` or `call`).
#[allow(dead_code)] // not every test binary that shares this module uses the named fixtures
pub fn fixture(speaker: &str, what: &str) -> Waveform {
    read_telephone_wav(
        &root().join(format!("audio-fixtures/demo/{speaker}-{what}.wav")),
        ChannelPolicy::RequireMono,
    )
    .unwrap()
}

/// An enrollment of a demo speaker from its `enroll` fixture, on one number, with a consent record.
#[allow(dead_code)] // not every test binary that shares this module enrolls through the service
pub fn enroll_request(speaker: &str, number: &str) -> EnrollRequest {
    EnrollRequest {
        speaker: SpeakerId::from(speaker),
        display_name: format!("Customer {speaker}"),
        external_id: None,
        numbers: vec![number.into()],
        consent: Consent {
            given_at: 1_700_000_000,
            method: "recorded-ivr".into(),
            operator: "test".into(),
            reference: "integration test".into(),
        },
        recordings: vec![fixture(speaker, "enroll")],
        keep_audio: false,
    }
}

/// Asserts that statistics which add over sessions do: `total[i] = a[i] + b[i]` to 1e-6
/// (relative), with equal lengths.
#[allow(dead_code)] // not every test binary that shares this module adds sessions
pub fn assert_sum_of(what: &str, total: &[f64], a: &[f64], b: &[f64]) {
    assert!(
        total.len() == a.len() && a.len() == b.len(),
        "{what}: lengths {} / {} / {}",
        total.len(),
        a.len(),
        b.len()
    );
    for (i, ((t, x), y)) in total.iter().zip(a).zip(b).enumerate() {
        assert!(
            (t - (x + y)).abs() <= 1e-6 * (1.0 + t.abs()),
            "{what}[{i}]: {t} vs {x} + {y}"
        );
    }
}
