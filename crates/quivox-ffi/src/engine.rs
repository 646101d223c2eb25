//! The engine handle: models, enrolled speakers, number directory, optional store.

use std::ffi::{c_char, c_void};
use std::path::Path;

use quivox_core::audio::g711::{alaw_to_i16, ulaw_to_i16};
use quivox_core::audio::Waveform;
use quivox_core::engine::{EngineOptions, PhoneNumber, SpeakerId};
use quivox_core::service::{EnrollRequest, Service, ServiceOptions};
use quivox_core::store::{Actor, Consent, SqliteStore, StoreKey};

use crate::args::{c_str, opt_c_str, slice, slice_or_empty, Out};
use crate::boundary::entry;
use crate::handles::Registry;
use crate::status::{quivox_status, FfiError, FfiResult};

/// An engine: voice models, enrolled speakers, the number directory and (optionally) the
/// enrollment store. Opaque; opened by `quivox_engine_open`, released by `quivox_engine_free`.
/// One engine serves any number of threads and calls at once.
pub struct quivox_engine {
    _private: u8,
}

/// Audio sample formats, all at 8 kHz mono.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum quivox_audio_format {
    /// 16-bit signed linear PCM, native byte order; `len` counts samples (`int16_t`).
    Pcm16 = 0,
    /// G.711 μ-law bytes; `len` counts bytes (= samples).
    Ulaw = 1,
    /// G.711 A-law bytes; `len` counts bytes (= samples).
    Alaw = 2,
}

/// How to open an engine. Fill it with `quivox_engine_config_init` first, then set fields: later
/// library versions may add fields at the end (with a new `QUIVOX_ABI_VERSION`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct quivox_engine_config {
    /// Path of the voice models: a folder (e.g. `models`, the fused system) or a GMM-UBM file
    /// (e.g. `models/gmm-ubm.qvx`, that system alone). Required.
    pub models_path: *const c_char,
    /// Path of the SQLite enrollment store (created if missing). NULL: no store, enrollments and
    /// number links live in memory only and are lost when the engine is freed.
    pub store_path: *const c_char,
    /// File holding the store key as 64 hex digits. NULL: the key is read from the environment
    /// variable `QUIVOX_STORE_KEY`. Ignored without a store.
    pub store_key_file: *const c_char,
    /// Operator name recorded in the store's audit log. NULL: `"libquivox"`.
    pub operator_name: *const c_char,
    /// Posterior probability a voice decision needs, in (0, 1). 0: the library default (0.99).
    pub confidence: f64,
    /// Net speech before the first voice decision of a call, ms. 0: the library default (2000).
    pub min_speech_ms: u64,
    /// Net speech at which a call's decision is forced, ms. 0: the library default (7000).
    pub max_speech_ms: u64,
    /// Net speech an enrollment needs, ms. 0: the library default (10000).
    pub min_enroll_speech_ms: u64,
    /// Adaptive noise suppression: calls and recordings whose frame energies span less than this
    /// many dB (an SNR proxy) are scored on noise-suppressed features. 0: the library default
    /// (25 dB); negative: off (every call through the models' plain front end).
    pub noise_suppression_max_spread_db: f64,
}

/// One enrollment recording, 8 kHz mono.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct quivox_recording {
    /// A `quivox_audio_format` value (an integer so that an unknown value is an error, not
    /// undefined behaviour).
    pub format: u32,
    /// The samples: `int16_t` for PCM16 (aligned to 2 bytes), bytes for μ-law and A-law.
    pub data: *const c_void,
    /// Number of samples (for PCM16, `int16_t` values, not bytes). At least 1.
    pub len: usize,
}

/// Who is being enrolled and on what terms.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct quivox_enrollment {
    /// The operator's id for the speaker (customer id): 1–256 bytes of UTF-8, no control
    /// characters. Required.
    pub speaker_id: *const c_char,
    /// Name shown to agents (at most 256 characters). NULL: the speaker id.
    pub display_name: *const c_char,
    /// Customer id in the operator's CRM, if different. NULL: none.
    pub external_id: *const c_char,
    /// Calling numbers the speaker is known on (`numbers_len` strings). May be NULL when
    /// `numbers_len` is 0.
    pub numbers: *const *const c_char,
    /// Number of entries in `numbers`.
    pub numbers_len: usize,
    /// How consent was given, e.g. `"ivr-recorded"`, `"written"`. Required with a store.
    pub consent_method: *const c_char,
    /// Free-text consent reference (document or call id). NULL: empty.
    pub consent_reference: *const c_char,
    /// When consent was given, seconds since the Unix epoch. 0: now.
    pub consent_given_at: i64,
    /// Keep the recordings, encrypted, in the store (only when the caller asked for it; by
    /// default no raw audio is kept).
    pub keep_audio: bool,
}

/// What an enrollment did.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct quivox_enroll_report {
    /// True when the speaker was new; false when audio was added to an enrolled speaker.
    pub new_speaker: bool,
    /// Net speech found in the recordings given, ms.
    pub added_speech_ms: u64,
    /// Net speech behind the speaker's voiceprint now, ms.
    pub total_speech_ms: u64,
    /// Revision of the stored voiceprint (1 for a new speaker, +1 per update).
    pub model_revision: u32,
}

/// The outcome of a verification (`quivox_engine_verify`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct quivox_verification {
    /// Calibrated natural-log likelihood ratio of the claim: ln p(voice | claimed speaker) /
    /// p(voice | someone else). Fused across the voice systems when the models are.
    pub llr: f64,
    /// Posterior probability of the claim with the library's verification prior.
    pub posterior: f64,
    /// Whether the posterior reaches the engine's confidence (`quivox_engine_config.confidence`).
    pub accepted: bool,
    /// Net speech scored, ms (0: no speech found, the LLR is then 0).
    pub net_speech_ms: u64,
}

/// What an engine handle holds.
pub(crate) struct EngineHandle {
    /// The engine kept in step with the store.
    pub(crate) service: Service,
    /// Operator name for the audit log.
    pub(crate) operator: String,
}

impl EngineHandle {
    /// Who acts now, for the store's audit log.
    pub(crate) fn actor(&self) -> Actor {
        Actor::now(&self.operator)
    }
}

pub(crate) static ENGINES: Registry<EngineHandle> = Registry::new("quivox_engine");

/// Longest speaker id the C API accepts, bytes (fits `QUIVOX_SPEAKER_ID_CAPACITY` with its NUL).
const MAX_SPEAKER_ID_BYTES: usize = crate::decision::QUIVOX_SPEAKER_ID_CAPACITY - 1;
/// Sample rate of all audio through the C API, Hz.
const SAMPLE_RATE_HZ: u32 = 8000;

/// Fills `config` with the defaults: every pointer NULL, every number 0 (library default).
///
/// Thread-safety: any thread.
///
/// # Safety
/// `config` must be NULL or point to writable memory for a `quivox_engine_config`.
#[no_mangle]
pub unsafe extern "C" fn quivox_engine_config_init(
    config: *mut quivox_engine_config,
) -> quivox_status {
    entry("quivox_engine_config_init", || {
        let out = Out::new(config, "config")?;
        // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
        unsafe {
            out.write(quivox_engine_config {
                models_path: std::ptr::null(),
                store_path: std::ptr::null(),
                store_key_file: std::ptr::null(),
                operator_name: std::ptr::null(),
                confidence: 0.0,
                min_speech_ms: 0,
                max_speech_ms: 0,
                min_enroll_speech_ms: 0,
                noise_suppression_max_spread_db: 0.0,
            })
        };
        Ok(())
    })
}

pub(crate) fn engine_options(config: &quivox_engine_config) -> FfiResult<EngineOptions> {
    let mut options = EngineOptions::default();
    if config.confidence != 0.0 {
        options.confidence = config.confidence;
    }
    if config.min_speech_ms != 0 {
        options.min_net_speech_ms = config.min_speech_ms;
    }
    if config.max_speech_ms != 0 {
        options.max_net_speech_ms = config.max_speech_ms;
        options.max_scored_speech_ms = options.max_scored_speech_ms.max(config.max_speech_ms);
    }
    if config.min_enroll_speech_ms != 0 {
        options.min_enroll_speech_ms = config.min_enroll_speech_ms;
    }
    let spread = config.noise_suppression_max_spread_db;
    if spread < 0.0 {
        options.adaptive_noise_suppression = None;
    } else if spread > 0.0 {
        if let Some(ns) = &mut options.adaptive_noise_suppression {
            ns.max_spread_db = spread;
        }
    } else if spread.is_nan() {
        return Err(FfiError::invalid(
            "config.noise_suppression_max_spread_db is NaN (expected 0, a negative number or dB)",
        ));
    }
    options.validate()?;
    Ok(options)
}

/// Opens an engine: loads the models and, with a store, the enrolled speakers and number links
/// made with these models. On success `*engine_out` holds a new handle (free it with
/// `quivox_engine_free`); on failure it is set to NULL.
///
/// Thread-safety: any thread; the engine may then be used from any number of threads at once.
///
/// # Safety
/// `config` must be NULL or point to a `quivox_engine_config` whose string fields are NULL or
/// NUL-terminated strings; `engine_out` must be NULL or point to a writable `quivox_engine *`.
#[no_mangle]
pub unsafe extern "C" fn quivox_engine_open(
    config: *const quivox_engine_config,
    engine_out: *mut *mut quivox_engine,
) -> quivox_status {
    entry("quivox_engine_open", || {
        let out = Out::new(engine_out, "engine_out")?;
        // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
        unsafe { out.write(std::ptr::null_mut()) };
        if config.is_null() {
            return Err(FfiError::null("config"));
        }
        if !config.is_aligned() {
            return Err(FfiError::invalid("config is not aligned"));
        }
        // SAFETY: non-NULL, aligned; the caller guarantees a readable config.
        let config = unsafe { &*config };
        // SAFETY: the caller guarantees NULL or NUL-terminated strings in the config.
        let models_path = unsafe { c_str(config.models_path, "config.models_path") }?;
        // SAFETY: as above.
        let store_path = unsafe { opt_c_str(config.store_path, "config.store_path") }?;
        // SAFETY: as above.
        let key_file = unsafe { opt_c_str(config.store_key_file, "config.store_key_file") }?;
        // SAFETY: as above.
        let operator = unsafe { opt_c_str(config.operator_name, "config.operator_name") }?;
        let mut options = ServiceOptions::default();
        options.engine = engine_options(config)?;
        let store = match store_path {
            Some(path) => {
                // Whatever stops the key from loading (missing file included) is a key problem.
                let key = match key_file {
                    Some(file) => StoreKey::from_file(Path::new(file)),
                    None => StoreKey::from_env(),
                }
                .map_err(|e| FfiError::new(quivox_status::KeyError, e.to_string()))?;
                SqliteStore::open_sqlite(Path::new(path), key).map_err(FfiError::from)?
            }
            // No store: an in-memory database under a throw-away key keeps the one code path.
            None => {
                SqliteStore::open_sqlite_in_memory(StoreKey::generate()).map_err(FfiError::from)?
            }
        };
        let service = Service::open_model_file(Path::new(models_path), Box::new(store), options)?;
        let handle = ENGINES.insert(EngineHandle {
            service,
            operator: operator.unwrap_or("libquivox").to_string(),
        });
        // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Releases an engine handle. Sessions started from it keep working until they are freed (they
/// hold the models and the enrolled population they started with). After this call the handle is
/// invalid: any use, a second free included, returns `QUIVOX_STATUS_INVALID_HANDLE`.
///
/// Thread-safety: any thread; other threads still inside a call on this engine finish that call
/// safely, later calls on the handle fail.
#[no_mangle]
pub extern "C" fn quivox_engine_free(engine: *mut quivox_engine) -> quivox_status {
    entry("quivox_engine_free", || {
        ENGINES.remove(engine)?;
        Ok(())
    })
}

/// Decodes one C recording into a waveform at 8 kHz.
///
/// # Safety
/// `recording.data` must point to `recording.len` samples of the stated format.
unsafe fn recording_waveform(recording: &quivox_recording, index: usize) -> FfiResult<Waveform> {
    let name = format!("recordings[{index}].data");
    let samples: Vec<f32> = match recording.format {
        f if f == quivox_audio_format::Pcm16 as u32 => {
            // SAFETY: the caller guarantees `len` int16_t samples at `data`; checked by `slice`.
            let pcm = unsafe { slice(recording.data.cast::<i16>(), recording.len, &name) }?;
            pcm.iter().map(|&s| f32::from(s)).collect()
        }
        f if f == quivox_audio_format::Ulaw as u32 => {
            // SAFETY: the caller guarantees `len` bytes at `data`; checked by `slice`.
            let codes = unsafe { slice(recording.data.cast::<u8>(), recording.len, &name) }?;
            codes.iter().map(|&c| f32::from(ulaw_to_i16(c))).collect()
        }
        f if f == quivox_audio_format::Alaw as u32 => {
            // SAFETY: the caller guarantees `len` bytes at `data`; checked by `slice`.
            let codes = unsafe { slice(recording.data.cast::<u8>(), recording.len, &name) }?;
            codes.iter().map(|&c| f32::from(alaw_to_i16(c))).collect()
        }
        other => {
            return Err(FfiError::invalid(format!(
                "recordings[{index}].format = {other}: expected QUIVOX_AUDIO_FORMAT_PCM16 (0), \
                 QUIVOX_AUDIO_FORMAT_ULAW (1) or QUIVOX_AUDIO_FORMAT_ALAW (2)"
            )))
        }
    };
    Ok(Waveform {
        sample_rate_hz: SAMPLE_RATE_HZ,
        samples,
    })
}

/// Decodes `recordings_len` C recordings into waveforms at 8 kHz.
///
/// # Safety
/// `recordings` must be NULL or point to `recordings_len` structs, each with `len` samples of its
/// format at `data`.
unsafe fn read_recordings(
    recordings: *const quivox_recording,
    recordings_len: usize,
) -> FfiResult<Vec<Waveform>> {
    // SAFETY: the caller guarantees `recordings_len` structs at `recordings`.
    let recs = unsafe { slice(recordings, recordings_len, "recordings") }?;
    let mut waves = Vec::with_capacity(recs.len());
    for (i, rec) in recs.iter().enumerate() {
        // SAFETY: the caller guarantees each recording's data holds `len` samples.
        waves.push(unsafe { recording_waveform(rec, i) }?);
    }
    Ok(waves)
}

/// Checks a speaker id given through the C API.
pub(crate) fn speaker_id(text: &str, name: &str) -> FfiResult<SpeakerId> {
    if text.is_empty() || text.len() > MAX_SPEAKER_ID_BYTES {
        return Err(FfiError::invalid(format!(
            "{name} is {} bytes: expected 1 to {MAX_SPEAKER_ID_BYTES}",
            text.len()
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(FfiError::invalid(format!(
            "{name} {text:?} contains control characters: expected printable text"
        )));
    }
    Ok(SpeakerId(text.to_string()))
}

/// # Safety
/// As `quivox_engine_enroll`.
unsafe fn read_enrollment(
    enrollment: *const quivox_enrollment,
    recordings: *const quivox_recording,
    recordings_len: usize,
) -> FfiResult<EnrollRequest> {
    if enrollment.is_null() {
        return Err(FfiError::null("enrollment"));
    }
    if !enrollment.is_aligned() {
        return Err(FfiError::invalid("enrollment is not aligned"));
    }
    // SAFETY: non-NULL, aligned; the caller guarantees a readable struct.
    let e = unsafe { &*enrollment };
    // SAFETY (this and the string reads below): the caller guarantees NULL or NUL-terminated strings.
    let speaker = speaker_id(
        unsafe { c_str(e.speaker_id, "enrollment.speaker_id") }?,
        "enrollment.speaker_id",
    )?;
    // SAFETY: as above.
    let display_name = unsafe { opt_c_str(e.display_name, "enrollment.display_name") }?;
    // SAFETY: as above.
    let external_id = unsafe { opt_c_str(e.external_id, "enrollment.external_id") }?;
    // SAFETY: as above.
    let consent_method = unsafe { c_str(e.consent_method, "enrollment.consent_method") }?;
    // SAFETY: as above.
    let consent_reference =
        unsafe { opt_c_str(e.consent_reference, "enrollment.consent_reference") }?;
    // SAFETY: the caller guarantees `numbers_len` string pointers at `numbers`.
    let number_ptrs = unsafe { slice_or_empty(e.numbers, e.numbers_len, "enrollment.numbers") }?;
    let mut numbers = Vec::with_capacity(number_ptrs.len());
    for (i, &ptr) in number_ptrs.iter().enumerate() {
        let name = format!("enrollment.numbers[{i}]");
        // SAFETY: the caller guarantees each entry is NULL or a NUL-terminated string.
        let text = unsafe { c_str(ptr, &name) }?;
        // Parsed here too, so that the message names the entry.
        PhoneNumber::parse(text)
            .map_err(|err| FfiError::new(quivox_status::InvalidNumber, format!("{name}: {err}")))?;
        numbers.push(text.to_string());
    }
    // SAFETY: forwarded contract.
    let waves = unsafe { read_recordings(recordings, recordings_len) }?;
    Ok(EnrollRequest {
        display_name: display_name.unwrap_or(&speaker.0).to_string(),
        speaker,
        external_id: external_id.map(str::to_string),
        numbers,
        consent: Consent {
            given_at: e.consent_given_at,
            method: consent_method.to_string(),
            operator: String::new(),
            reference: consent_reference.unwrap_or_default().to_string(),
        },
        recordings: waves,
        keep_audio: e.keep_audio,
    })
}

/// Enrolls a speaker from one or more recordings of one session, concatenated in the order given
/// (at least 10 s of net speech by default), or adds them as another session to an enrolled
/// speaker (their statistics are added and the voiceprint re-adapted on all the audio),
/// links the given numbers, and (with a store) saves the encrypted voiceprint, numbers and consent
/// in one transaction. The audio is quality-checked (speech, clipping, SNR):
/// `QUIVOX_STATUS_ENROLLMENT_REFUSED` says what was wrong. `report_out` may be NULL.
///
/// Thread-safety: any thread, concurrently with calls on the same engine; calls already in
/// progress keep the population they started with.
///
/// # Safety
/// `enrollment` must be NULL or point to a readable `quivox_enrollment` whose strings are NULL or
/// NUL-terminated and whose `numbers` holds `numbers_len` string pointers; `recordings` must be
/// NULL or point to `recordings_len` structs, each with `len` samples at `data`; `report_out` must
/// be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn quivox_engine_enroll(
    engine: *mut quivox_engine,
    enrollment: *const quivox_enrollment,
    recordings: *const quivox_recording,
    recordings_len: usize,
    report_out: *mut quivox_enroll_report,
) -> quivox_status {
    entry("quivox_engine_enroll", || {
        let handle = ENGINES.get(engine)?;
        let report_out = Out::optional(report_out, "report_out")?;
        // SAFETY: forwarded contract of this function.
        let mut request = unsafe { read_enrollment(enrollment, recordings, recordings_len) }?;
        let actor = handle.actor();
        if request.consent.given_at == 0 {
            request.consent.given_at = actor.now;
        }
        request.consent.operator = handle.operator.clone();
        let report = handle.service.enroll(&actor, &request)?;
        if let Some(out) = report_out {
            // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
            unsafe {
                out.write(quivox_enroll_report {
                    new_speaker: report.new_speaker,
                    added_speech_ms: report.added_speech_ms,
                    total_speech_ms: report.total_speech_ms,
                    model_revision: report.model_revision,
                })
            };
        }
        Ok(())
    })
}

/// Records that `speaker_id` is known on the calling number `number` (raises their prior on calls
/// from it), in memory and in the store. The speaker must be enrolled. `*linked_out` (when not
/// NULL) is set to false when the link existed already.
///
/// Thread-safety: any thread, concurrently with calls on the same engine; calls already in
/// progress keep the number directory they started with.
///
/// # Safety
/// `number` and `speaker_id` must be NULL or NUL-terminated strings; `linked_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn quivox_engine_link_number(
    engine: *mut quivox_engine,
    number: *const c_char,
    speaker_id: *const c_char,
    linked_out: *mut bool,
) -> quivox_status {
    entry("quivox_engine_link_number", || {
        let handle = ENGINES.get(engine)?;
        let linked_out = Out::optional(linked_out, "linked_out")?;
        // SAFETY: the caller guarantees NULL or a NUL-terminated string.
        let number = unsafe { c_str(number, "number") }?;
        PhoneNumber::parse(number)?;
        // SAFETY: as above.
        let speaker = self::speaker_id(unsafe { c_str(speaker_id, "speaker_id") }?, "speaker_id")?;
        let linked = handle
            .service
            .link_number(&handle.actor(), number, &speaker)?;
        if let Some(out) = linked_out {
            // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
            unsafe { out.write(linked) };
        }
        Ok(())
    })
}

/// Removes the link between `number` and `speaker_id` (in memory and in the store).
/// `QUIVOX_STATUS_INVALID_ARGUMENT` if they were not linked.
///
/// Thread-safety: any thread, concurrently with calls on the same engine.
///
/// # Safety
/// `number` and `speaker_id` must be NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn quivox_engine_unlink_number(
    engine: *mut quivox_engine,
    number: *const c_char,
    speaker_id: *const c_char,
) -> quivox_status {
    entry("quivox_engine_unlink_number", || {
        let handle = ENGINES.get(engine)?;
        // SAFETY: the caller guarantees NULL or a NUL-terminated string.
        let number = unsafe { c_str(number, "number") }?;
        PhoneNumber::parse(number)?;
        // SAFETY: as above.
        let speaker = self::speaker_id(unsafe { c_str(speaker_id, "speaker_id") }?, "speaker_id")?;
        handle
            .service
            .unlink_number(&handle.actor(), number, &speaker)?;
        Ok(())
    })
}

/// Forgets a speaker: voiceprint, number links and every stored record (consent, kept audio), as
/// an erasure request requires; the store's audit log records the erasure.
/// `QUIVOX_STATUS_UNKNOWN_SPEAKER` if not enrolled.
///
/// Thread-safety: any thread, concurrently with calls on the same engine; calls already in
/// progress keep the population they started with.
///
/// # Safety
/// `speaker_id` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn quivox_engine_forget(
    engine: *mut quivox_engine,
    speaker_id: *const c_char,
) -> quivox_status {
    entry("quivox_engine_forget", || {
        let handle = ENGINES.get(engine)?;
        // SAFETY: the caller guarantees NULL or a NUL-terminated string.
        let speaker = self::speaker_id(unsafe { c_str(speaker_id, "speaker_id") }?, "speaker_id")?;
        handle.service.forget(&handle.actor(), &speaker)?;
        Ok(())
    })
}

/// Re-reads the enrolled speakers and number links from the store: for gateways sharing a store,
/// after another process enrolled or forgot someone.
///
/// Thread-safety: any thread, concurrently with calls on the same engine.
#[no_mangle]
pub extern "C" fn quivox_engine_reload(engine: *mut quivox_engine) -> quivox_status {
    entry("quivox_engine_reload", || {
        ENGINES.get(engine)?.service.reload()?;
        Ok(())
    })
}

/// Verifies a claimed identity ("this is speaker X") on one or more recordings of the same
/// person (batch; a live call is identified through a session instead): writes the calibrated
/// LLR, the posterior and the accept decision into `*result_out`, and records the attempt in the
/// store's audit log. `QUIVOX_STATUS_UNKNOWN_SPEAKER` when `speaker_id` is not enrolled.
///
/// Thread-safety: any thread, concurrently with calls on the same engine.
///
/// # Safety
/// `speaker_id` must be NULL or a NUL-terminated string; `recordings` NULL or `recordings_len`
/// structs, each with `len` samples at `data`; `result_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn quivox_engine_verify(
    engine: *mut quivox_engine,
    speaker_id: *const c_char,
    recordings: *const quivox_recording,
    recordings_len: usize,
    result_out: *mut quivox_verification,
) -> quivox_status {
    entry("quivox_engine_verify", || {
        let handle = ENGINES.get(engine)?;
        let out = Out::new(result_out, "result_out")?;
        // SAFETY: the caller guarantees NULL or a NUL-terminated string.
        let speaker = self::speaker_id(unsafe { c_str(speaker_id, "speaker_id") }?, "speaker_id")?;
        // SAFETY: forwarded contract of this function.
        let waves = unsafe { read_recordings(recordings, recordings_len) }?;
        if waves.is_empty() {
            return Err(FfiError::invalid(
                "recordings_len is 0: expected at least one recording",
            ));
        }
        let v = handle.service.verify(&handle.actor(), &speaker, &waves)?;
        // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
        unsafe {
            out.write(quivox_verification {
                llr: v.llr,
                posterior: v.posterior,
                accepted: v.accepted,
                net_speech_ms: v.net_speech_ms,
            })
        };
        Ok(())
    })
}

/// Writes the number of enrolled speakers into `*count_out`.
///
/// Thread-safety: any thread.
///
/// # Safety
/// `count_out` must be NULL or point to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn quivox_engine_speaker_count(
    engine: *const quivox_engine,
    count_out: *mut usize,
) -> quivox_status {
    entry("quivox_engine_speaker_count", || {
        let handle = ENGINES.get(engine)?;
        let out = Out::new(count_out, "count_out")?;
        // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
        unsafe { out.write(handle.service.engine().population().len()) };
        Ok(())
    })
}
