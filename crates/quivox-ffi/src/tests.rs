//! Rust-side tests of the C entry points. The C tests in `tests/c/` drive the built library the
//! way a gateway does; these check the pieces whose failure C could not see clearly.

use std::ffi::{c_char, CStr};
use std::ptr;

use quivox_core::engine::{Decision, DecisionEvent, SpeakerId, VoiceSays, VoiceShortfall};

use crate::args::{copy_to_array, write_c_string};
use crate::boundary::entry;
use crate::decision::{
    quivox_decision, quivox_decision_kind, quivox_shortfall, quivox_voice_verdict,
};
use crate::*;

fn last_error() -> String {
    let mut buf = [0 as c_char; 1024];
    // SAFETY: the buffer holds 1024 bytes.
    unsafe { quivox_last_error(buf.as_mut_ptr(), buf.len(), ptr::null_mut()) };
    // SAFETY: quivox_last_error NUL-terminates what it writes.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn c_text(array: &[c_char]) -> String {
    let bytes: Vec<u8> = array
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8(bytes).expect("UTF-8")
}

fn models_path() -> std::ffi::CString {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/gmm-ubm.qvx");
    std::ffi::CString::new(path).expect("no NUL in the path")
}

#[test]
fn status_names_are_the_header_names_and_distinct() {
    let header = include_str!("../include/quivox.h");
    let mut seen = std::collections::HashSet::new();
    for value in 0..16u32 {
        // SAFETY: quivox_status_name returns a static NUL-terminated string.
        let name = unsafe { CStr::from_ptr(quivox_status_name(value)) }
            .to_str()
            .expect("ASCII");
        assert!(
            header.contains(&format!("{name} = {value},")),
            "{name} = {value} is not in the header"
        );
        assert!(seen.insert(name.to_string()), "{name} repeated");
    }
    // SAFETY: as above.
    let unknown = unsafe { CStr::from_ptr(quivox_status_name(16)) };
    assert_eq!(unknown.to_str(), Ok("QUIVOX_STATUS_UNKNOWN"));
}

#[test]
fn version_is_the_crate_version() {
    // SAFETY: quivox_version returns a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(quivox_version()) };
    assert_eq!(version.to_str(), Ok(env!("CARGO_PKG_VERSION")));
    assert_eq!(quivox_abi_version(), QUIVOX_ABI_VERSION);
}

#[test]
fn a_panic_becomes_a_status_with_its_message() {
    let status = entry("quivox_test_entry", || panic!("boom {}", 42));
    assert_eq!(status, quivox_status::Panic);
    let message = last_error();
    assert!(message.starts_with("quivox_test_entry: "), "{message}");
    assert!(message.contains("boom 42"), "{message}");
}

#[test]
fn last_error_is_cut_at_a_character_boundary_and_reports_the_full_length() {
    // "é" is two bytes: a 4-byte buffer holds "aé" (3 bytes) and the NUL; 5 bytes would cut "é".
    let text = "aéé";
    let mut buf = [0x55 as c_char; 5];
    let mut full = 0usize;
    // SAFETY: buf holds 5 bytes, full is a valid usize.
    let result = unsafe { write_c_string(text, buf.as_mut_ptr(), buf.len(), &mut full) };
    assert_eq!(
        result.map_err(|e| e.status).err(),
        Some(quivox_status::BufferTooSmall)
    );
    assert_eq!(full, text.len());
    assert_eq!(c_text(&buf), "aé");
    let mut exact = [0 as c_char; 6];
    // SAFETY: exact holds 6 bytes.
    let result = unsafe { write_c_string(text, exact.as_mut_ptr(), exact.len(), ptr::null_mut()) };
    assert!(result.is_ok());
    assert_eq!(c_text(&exact), text);
}

#[test]
fn ids_longer_than_the_array_are_cut_and_flagged() {
    let mut array = [0 as c_char; 4];
    assert!(!copy_to_array("abc", &mut array));
    assert_eq!(c_text(&array), "abc");
    assert!(copy_to_array("abcd", &mut array));
    assert_eq!(c_text(&array), "abc");
    assert!(copy_to_array("aéé", &mut array));
    assert_eq!(c_text(&array), "aé");
}

fn event(decision: Decision) -> DecisionEvent {
    DecisionEvent {
        decision,
        call_audio_ms: 4210,
        net_speech_ms: 2000,
        top_speaker: None,
    }
}

#[test]
fn decisions_map_to_the_c_struct_field_by_field() {
    let d = quivox_decision::from_event(
        &event(Decision::Identified {
            speaker: SpeakerId::from("alice"),
            llr: 7.5,
            posterior: 0.995,
        }),
        true,
    );
    assert_eq!(d.kind, quivox_decision_kind::Identified);
    assert_eq!(d.reason, quivox_shortfall::None);
    assert_eq!(c_text(&d.speaker_id), "alice");
    assert_eq!(c_text(&d.number_speaker_id), "");
    assert_eq!((d.llr, d.posterior), (7.5, 0.995));
    assert_eq!((d.call_ms, d.speech_ms, d.is_final), (4210, 2000, true));

    let d = quivox_decision::from_event(
        &event(Decision::Mismatch {
            number_says: vec![SpeakerId::from("bob"), SpeakerId::from("carol")],
            voice_says: VoiceSays::NobodyEnrolled,
            llr: 0.0,
            posterior: 0.993,
        }),
        false,
    );
    assert_eq!(d.kind, quivox_decision_kind::Mismatch);
    assert_eq!(d.voice_verdict, quivox_voice_verdict::NobodyEnrolled);
    assert_eq!(c_text(&d.speaker_id), "");
    assert_eq!(c_text(&d.number_speaker_id), "bob");
    assert_eq!(d.number_candidates, 2);
    assert!(d.llr.is_nan(), "no voice speaker: no LLR");
    assert_eq!(d.posterior, 0.993);

    let d = quivox_decision::from_event(
        &event(Decision::NumberOnly {
            candidates: vec![
                (SpeakerId::from("bob"), 0.6),
                (SpeakerId::from("carol"), 0.3),
            ],
            reason: VoiceShortfall::LowSnr,
        }),
        false,
    );
    assert_eq!(d.kind, quivox_decision_kind::NumberOnly);
    assert_eq!(d.reason, quivox_shortfall::LowSnr);
    assert_eq!(c_text(&d.number_speaker_id), "bob");
    assert_eq!(d.posterior, 0.6);

    let d = quivox_decision::from_event(
        &event(Decision::NeedMoreAudio {
            reason: VoiceShortfall::TooLittleSpeech,
        }),
        false,
    );
    assert_eq!(d.kind, quivox_decision_kind::NeedMoreAudio);
    assert_eq!(d.reason, quivox_shortfall::TooLittleSpeech);
    assert!(d.posterior.is_nan() && d.llr.is_nan());

    let d = quivox_decision::from_event(&event(Decision::Unknown { posterior: 0.999 }), false);
    assert_eq!(d.kind, quivox_decision_kind::Unknown);
    assert_eq!(d.posterior, 0.999);
}

#[test]
fn handles_are_checked_and_may_be_freed_in_any_order() {
    let models = models_path();
    let mut config = std::mem::MaybeUninit::<quivox_engine_config>::uninit();
    // SAFETY: config points to writable memory for a config.
    assert_eq!(
        unsafe { quivox_engine_config_init(config.as_mut_ptr()) },
        quivox_status::Ok
    );
    // SAFETY: initialised by quivox_engine_config_init.
    let mut config = unsafe { config.assume_init() };
    config.models_path = models.as_ptr();
    let mut engine: *mut quivox_engine = ptr::null_mut();
    // SAFETY: valid config and out-pointer.
    assert_eq!(
        unsafe { quivox_engine_open(&config, &mut engine) },
        quivox_status::Ok
    );
    let mut session: *mut quivox_session = ptr::null_mut();
    // SAFETY: valid handle and out-pointer; NULL strings are allowed.
    assert_eq!(
        unsafe { quivox_engine_start_call(engine, ptr::null(), ptr::null(), &mut session) },
        quivox_status::Ok
    );
    // An engine handle is not a session handle, and vice versa.
    let frame = [0xffu8; 160];
    // SAFETY: frame holds 160 bytes.
    let wrong_kind =
        unsafe { quivox_session_push_ulaw(engine.cast(), frame.as_ptr(), frame.len()) };
    assert_eq!(wrong_kind, quivox_status::InvalidHandle);
    assert!(last_error().contains("not live"), "{}", last_error());

    assert_eq!(quivox_engine_free(engine), quivox_status::Ok);
    assert_eq!(quivox_engine_free(engine), quivox_status::InvalidHandle);
    // The session outlives its engine handle.
    for _ in 0..50 {
        // SAFETY: frame holds 160 bytes.
        let pushed = unsafe { quivox_session_push_ulaw(session, frame.as_ptr(), frame.len()) };
        assert_eq!(pushed, quivox_status::Ok);
    }
    let mut decision = std::mem::MaybeUninit::<quivox_decision>::uninit();
    // SAFETY: decision points to writable memory for a decision.
    assert_eq!(
        unsafe { quivox_session_finish(session, decision.as_mut_ptr()) },
        quivox_status::Ok
    );
    // SAFETY: written by quivox_session_finish.
    let decision = unsafe { decision.assume_init() };
    assert!(decision.is_final);
    assert_eq!(decision.kind, quivox_decision_kind::NeedMoreAudio);
    assert_eq!(decision.reason, quivox_shortfall::NoSpeech);
    assert_eq!(decision.call_ms, 1000);
    assert_eq!(quivox_session_free(session), quivox_status::Ok);
    assert_eq!(quivox_session_free(session), quivox_status::InvalidHandle);
}

#[test]
fn the_config_sets_or_turns_off_the_adaptive_noise_suppression() {
    let mut config = std::mem::MaybeUninit::<quivox_engine_config>::uninit();
    // SAFETY: a valid, writable pointer.
    assert_eq!(
        unsafe { quivox_engine_config_init(config.as_mut_ptr()) },
        quivox_status::Ok
    );
    // SAFETY: initialised by quivox_engine_config_init.
    let mut config = unsafe { config.assume_init() };
    let library = quivox_core::engine::EngineOptions::default();
    let default = crate::engine::engine_options(&config).unwrap();
    assert_eq!(
        default.adaptive_noise_suppression,
        library.adaptive_noise_suppression
    );
    assert!(default.adaptive_noise_suppression.is_some());
    config.noise_suppression_max_spread_db = 30.0;
    let set = crate::engine::engine_options(&config).unwrap();
    assert_eq!(set.adaptive_noise_suppression.unwrap().max_spread_db, 30.0);
    config.noise_suppression_max_spread_db = -1.0;
    let off = crate::engine::engine_options(&config).unwrap();
    assert_eq!(off.adaptive_noise_suppression, None);
    config.noise_suppression_max_spread_db = f64::NAN;
    assert!(crate::engine::engine_options(&config).is_err());
}
