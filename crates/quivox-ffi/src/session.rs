//! The session handle: one call, audio in, decisions out.

use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex, MutexGuard};

use quivox_core::engine::{CallInfo, DecisionEvent, EngineError, Session};

use crate::args::{opt_c_str, slice, Out};
use crate::boundary::entry;
use crate::decision::quivox_decision;
use crate::engine::{quivox_engine, EngineHandle, ENGINES};
use crate::status::{quivox_status, FfiError, FfiResult};

/// One call in progress. Opaque; started by `quivox_engine_start_call`, released by
/// `quivox_session_free`. A session belongs to one call: use it from one thread at a time (calls
/// from several threads at once are serialised, never unsafe, but their order is unspecified).
pub struct quivox_session {
    _private: u8,
}

/// Receives each decision as it is made, on the thread that pushed the audio, before the push
/// function returns. `decision` is valid only during the call (copy what you keep). The callback
/// must not call functions on the same session (the session is not locked meanwhile, but the push
/// that triggered the callback has not returned yet), must return quickly (it delays the call's
/// audio processing) and must not unwind (no C++ exceptions, no `longjmp` out of it).
pub type quivox_decision_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, decision: *const quivox_decision)>;

struct SessionState {
    /// `None` once finished.
    session: Option<Session>,
    callback: quivox_decision_callback,
    /// The callback's user data, as an address (a raw pointer is not `Send`).
    user_data: usize,
    /// The engine the call belongs to (finishing audits the call in its store), kept alive even
    /// if the engine handle is freed first.
    engine: Arc<EngineHandle>,
}

pub(crate) struct SessionHandle {
    state: Mutex<SessionState>,
}

static SESSIONS: Registry<SessionHandle> = Registry::new("quivox_session");

use crate::handles::Registry;

impl SessionHandle {
    fn lock(&self) -> FfiResult<MutexGuard<'_, SessionState>> {
        self.state.lock().map_err(|_| {
            FfiError::new(
                quivox_status::Panic,
                "the session is unusable after an internal error in an earlier call: free it",
            )
        })
    }
}

fn finished() -> FfiError {
    FfiError::new(
        quivox_status::SessionFinished,
        "the session was finished: expected only quivox_session_free now",
    )
}

/// Starts a call. `caller_number` is the calling number as presented by the network (ANI/CLI);
/// NULL or an empty string when withheld. `call_id` is your identifier for logs (NULL: none).
/// The session snapshots the enrolled population and the number directory. On success
/// `*session_out` holds a new handle (free it with `quivox_session_free`); on failure NULL.
///
/// Thread-safety: any thread, concurrently with any other call on the same engine.
///
/// # Safety
/// `caller_number` and `call_id` must be NULL or NUL-terminated strings; `session_out` must be
/// NULL or point to a writable `quivox_session *`.
#[no_mangle]
pub unsafe extern "C" fn quivox_engine_start_call(
    engine: *mut quivox_engine,
    caller_number: *const c_char,
    call_id: *const c_char,
    session_out: *mut *mut quivox_session,
) -> quivox_status {
    entry("quivox_engine_start_call", || {
        let out = Out::new(session_out, "session_out")?;
        // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
        unsafe { out.write(std::ptr::null_mut()) };
        let engine = ENGINES.get(engine)?;
        // SAFETY: the caller guarantees NULL or a NUL-terminated string.
        let number = unsafe { opt_c_str(caller_number, "caller_number") }?;
        // SAFETY: as above.
        let call_id = unsafe { opt_c_str(call_id, "call_id") }?;
        let info = CallInfo {
            caller_number: number.filter(|n| !n.is_empty()).map(str::to_string),
            call_id: call_id.unwrap_or_default().to_string(),
        };
        let session = engine.service.start_call(info)?;
        let handle = SESSIONS.insert(SessionHandle {
            state: Mutex::new(SessionState {
                session: Some(session),
                callback: None,
                user_data: 0,
                engine,
            }),
        });
        // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Feeds audio through `feed`, then hands the new decisions to the callback if one is set.
fn push(
    session: *mut quivox_session,
    feed: impl FnOnce(&mut Session) -> Result<(), EngineError>,
) -> FfiResult<()> {
    let handle = SESSIONS.get(session)?;
    let (events, callback, user_data) = {
        let mut state = handle.lock()?;
        let callback = state.callback;
        let user_data = state.user_data;
        let call = state.session.as_mut().ok_or_else(finished)?;
        feed(call)?;
        let mut events: Vec<DecisionEvent> = Vec::new();
        if callback.is_some() {
            while let Some(event) = call.poll() {
                events.push(event);
            }
        }
        (events, callback, user_data)
    };
    if let Some(callback) = callback {
        for event in &events {
            let decision = quivox_decision::from_event(event, false);
            // SAFETY: the callback and its user data were registered together by the caller,
            // who guarantees the callback may be called with them; `decision` outlives the call.
            unsafe { callback(user_data as *mut c_void, &decision) };
        }
    }
    Ok(())
}

/// Pushes 16-bit linear PCM at 8 kHz (native byte order), any number of samples ≥ 1. Decisions
/// are made at fixed amounts of speech, so they do not depend on how the audio is chunked.
///
/// Thread-safety: one thread at a time per session; sessions of different calls run in parallel.
///
/// # Safety
/// `samples` must be NULL or point to `len` readable `int16_t` values.
#[no_mangle]
pub unsafe extern "C" fn quivox_session_push_pcm16(
    session: *mut quivox_session,
    samples: *const i16,
    len: usize,
) -> quivox_status {
    entry("quivox_session_push_pcm16", || {
        // SAFETY: the caller guarantees `len` samples at `samples`; checked by `slice`.
        let pcm = unsafe { slice(samples, len, "samples") }?;
        push(session, |call| call.push_pcm(pcm))
    })
}

/// Pushes G.711 μ-law bytes at 8 kHz, any number of bytes ≥ 1 (e.g. 160 per 20-ms RTP packet).
///
/// Thread-safety: one thread at a time per session; sessions of different calls run in parallel.
///
/// # Safety
/// `codes` must be NULL or point to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn quivox_session_push_ulaw(
    session: *mut quivox_session,
    codes: *const u8,
    len: usize,
) -> quivox_status {
    entry("quivox_session_push_ulaw", || {
        // SAFETY: the caller guarantees `len` bytes at `codes`; checked by `slice`.
        let codes = unsafe { slice(codes, len, "codes") }?;
        push(session, |call| call.push_ulaw(codes))
    })
}

/// Pushes G.711 A-law bytes at 8 kHz, any number of bytes ≥ 1.
///
/// Thread-safety: one thread at a time per session; sessions of different calls run in parallel.
///
/// # Safety
/// `codes` must be NULL or point to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn quivox_session_push_alaw(
    session: *mut quivox_session,
    codes: *const u8,
    len: usize,
) -> quivox_status {
    entry("quivox_session_push_alaw", || {
        // SAFETY: the caller guarantees `len` bytes at `codes`; checked by `slice`.
        let codes = unsafe { slice(codes, len, "codes") }?;
        push(session, |call| call.push_alaw(codes))
    })
}

/// Takes the oldest decision not yet delivered: writes it to `*decision_out` and sets
/// `*has_decision` to true, or sets `*has_decision` to false when none is waiting (then
/// `*decision_out` is left unchanged). A new decision is emitted only when the verdict changes.
/// With a callback registered, decisions go to the callback instead and this finds none.
///
/// Thread-safety: one thread at a time per session.
///
/// # Safety
/// `decision_out` and `has_decision` must be NULL or point to writable objects of their types.
#[no_mangle]
pub unsafe extern "C" fn quivox_session_poll(
    session: *mut quivox_session,
    decision_out: *mut quivox_decision,
    has_decision: *mut bool,
) -> quivox_status {
    entry("quivox_session_poll", || {
        let handle = SESSIONS.get(session)?;
        let decision_out = Out::new(decision_out, "decision_out")?;
        let has_decision = Out::new(has_decision, "has_decision")?;
        let mut state = handle.lock()?;
        let call = state.session.as_mut().ok_or_else(finished)?;
        let event = call.poll();
        // SAFETY (both writes): checked non-NULL and aligned; writable per the caller's contract.
        unsafe { has_decision.write(event.is_some()) };
        if let Some(event) = event {
            // SAFETY: as above.
            unsafe { decision_out.write(quivox_decision::from_event(&event, false)) };
        }
        Ok(())
    })
}

/// Registers `callback` (NULL to remove it) with `user_data`, passed back unchanged. Decisions
/// not yet polled are delivered at the next push.
///
/// Thread-safety: one thread at a time per session.
///
/// # Safety
/// `callback` must be NULL or a function that can be called with `user_data` from the threads
/// that push audio into this session, for as long as it is registered.
#[no_mangle]
pub unsafe extern "C" fn quivox_session_set_callback(
    session: *mut quivox_session,
    callback: quivox_decision_callback,
    user_data: *mut c_void,
) -> quivox_status {
    entry("quivox_session_set_callback", || {
        let handle = SESSIONS.get(session)?;
        let mut state = handle.lock()?;
        if state.session.is_none() {
            return Err(finished());
        }
        state.callback = callback;
        state.user_data = user_data as usize;
        Ok(())
    })
}

/// Writes the call audio received so far and its net speech, in ms. Either pointer may be NULL.
///
/// Thread-safety: one thread at a time per session.
///
/// # Safety
/// `call_ms_out` and `speech_ms_out` must be NULL or point to writable `uint64_t`s.
#[no_mangle]
pub unsafe extern "C" fn quivox_session_progress(
    session: *mut quivox_session,
    call_ms_out: *mut u64,
    speech_ms_out: *mut u64,
) -> quivox_status {
    entry("quivox_session_progress", || {
        let handle = SESSIONS.get(session)?;
        let call_ms_out = Out::optional(call_ms_out, "call_ms_out")?;
        let speech_ms_out = Out::optional(speech_ms_out, "speech_ms_out")?;
        let state = handle.lock()?;
        let call = state.session.as_ref().ok_or_else(finished)?;
        if let Some(out) = call_ms_out {
            // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
            unsafe { out.write(call.call_audio_ms()) };
        }
        if let Some(out) = speech_ms_out {
            // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
            unsafe { out.write(call.net_speech_ms()) };
        }
        Ok(())
    })
}

/// Ends the call: decides on all the audio and writes the final decision (`is_final` true) to
/// `*decision_out`. The call is written to the store's audit log, and when the voice identified
/// someone known on the calling number, the call is counted on that number (raising their prior). An inconclusive last look does not retract an earlier confident voice
/// decision. Afterwards only `quivox_session_free` is allowed (other calls return
/// `QUIVOX_STATUS_SESSION_FINISHED`). Decisions not yet polled are dropped.
///
/// Thread-safety: one thread at a time per session.
///
/// # Safety
/// `decision_out` must be NULL or point to a writable `quivox_decision`.
#[no_mangle]
pub unsafe extern "C" fn quivox_session_finish(
    session: *mut quivox_session,
    decision_out: *mut quivox_decision,
) -> quivox_status {
    entry("quivox_session_finish", || {
        let handle = SESSIONS.get(session)?;
        let decision_out = Out::new(decision_out, "decision_out")?;
        let (call, engine) = {
            let mut state = handle.lock()?;
            let call = state.session.take().ok_or_else(finished)?;
            (call, Arc::clone(&state.engine))
        };
        let outcome = engine.service.finish_call(&engine.actor(), call)?;
        // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
        unsafe { decision_out.write(quivox_decision::from_event(&outcome.final_decision, true)) };
        Ok(())
    })
}

/// Releases a session (finished or not). Afterwards the handle is invalid: any use, a second free
/// included, returns `QUIVOX_STATUS_INVALID_HANDLE`. Sessions may be freed before or after the
/// engine they came from.
///
/// Thread-safety: any thread, once no other thread uses the session.
#[no_mangle]
pub extern "C" fn quivox_session_free(session: *mut quivox_session) -> quivox_status {
    entry("quivox_session_free", || {
        SESSIONS.remove(session)?;
        Ok(())
    })
}
