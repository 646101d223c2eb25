//! Status codes, the error type behind them, and the per-thread last-error message.

use std::cell::RefCell;
use std::ffi::c_char;

use quivox_core::engine::{EngineError, NumberError};
use quivox_core::service::ServiceError;
use quivox_core::store::StoreError;

/// What a call returned. `QUIVOX_STATUS_OK` is 0; every other value is a failure whose message
/// `quivox_last_error` gives. The numbers are part of the ABI and never change meaning.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum quivox_status {
    /// Success.
    Ok = 0,
    /// A required pointer argument is NULL.
    NullArgument = 1,
    /// A handle is NULL, already freed, or not of the expected kind.
    InvalidHandle = 2,
    /// An argument is out of range: zero length, unknown enum value, misaligned buffer, option
    /// outside its range.
    InvalidArgument = 3,
    /// A string argument is not valid UTF-8.
    InvalidUtf8 = 4,
    /// An output buffer is too small; what fits was written (NUL-terminated) and the needed size
    /// was reported.
    BufferTooSmall = 5,
    /// A calling number is malformed (digits with an optional leading '+' expected).
    InvalidNumber = 6,
    /// The speaker is not enrolled.
    UnknownSpeaker = 7,
    /// Enrollment audio was refused by a quality check (too little speech, clipping, low SNR).
    EnrollmentRefused = 8,
    /// The session was already finished: only `quivox_session_free` is allowed.
    SessionFinished = 9,
    /// The models file could not be loaded, or a voiceprint does not fit the models.
    ModelError = 10,
    /// The enrollment store failed (database, encryption, consent, limits).
    StoreError = 11,
    /// The store key is missing, malformed, or not the key the store was created with.
    KeyError = 12,
    /// The operation needs a feature this build or this engine does not have.
    Unsupported = 13,
    /// Any other engine failure (feature extraction, scoring).
    EngineError = 14,
    /// A bug: the library panicked; the panic was caught at the boundary. The handle involved
    /// should be freed.
    Panic = 15,
}

impl quivox_status {
    fn name(self) -> &'static str {
        match self {
            Self::Ok => "QUIVOX_STATUS_OK\0",
            Self::NullArgument => "QUIVOX_STATUS_NULL_ARGUMENT\0",
            Self::InvalidHandle => "QUIVOX_STATUS_INVALID_HANDLE\0",
            Self::InvalidArgument => "QUIVOX_STATUS_INVALID_ARGUMENT\0",
            Self::InvalidUtf8 => "QUIVOX_STATUS_INVALID_UTF8\0",
            Self::BufferTooSmall => "QUIVOX_STATUS_BUFFER_TOO_SMALL\0",
            Self::InvalidNumber => "QUIVOX_STATUS_INVALID_NUMBER\0",
            Self::UnknownSpeaker => "QUIVOX_STATUS_UNKNOWN_SPEAKER\0",
            Self::EnrollmentRefused => "QUIVOX_STATUS_ENROLLMENT_REFUSED\0",
            Self::SessionFinished => "QUIVOX_STATUS_SESSION_FINISHED\0",
            Self::ModelError => "QUIVOX_STATUS_MODEL_ERROR\0",
            Self::StoreError => "QUIVOX_STATUS_STORE_ERROR\0",
            Self::KeyError => "QUIVOX_STATUS_KEY_ERROR\0",
            Self::Unsupported => "QUIVOX_STATUS_UNSUPPORTED\0",
            Self::EngineError => "QUIVOX_STATUS_ENGINE_ERROR\0",
            Self::Panic => "QUIVOX_STATUS_PANIC\0",
        }
    }
}

/// A failure on its way to C: the status and the message for [`quivox_last_error`].
#[derive(Debug)]
pub(crate) struct FfiError {
    pub(crate) status: quivox_status,
    pub(crate) message: String,
}

impl FfiError {
    pub(crate) fn new(status: quivox_status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn null(argument: &str) -> Self {
        Self::new(
            quivox_status::NullArgument,
            format!("{argument} is NULL: expected a valid pointer"),
        )
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(quivox_status::InvalidArgument, message)
    }
}

/// Result of an entry point's body.
pub(crate) type FfiResult<T> = Result<T, FfiError>;

impl From<EngineError> for FfiError {
    fn from(e: EngineError) -> Self {
        let status = match &e {
            EngineError::InvalidOption { .. } => quivox_status::InvalidArgument,
            EngineError::Number(_) => quivox_status::InvalidNumber,
            EngineError::EnrollmentRefused { .. } => quivox_status::EnrollmentRefused,
            EngineError::UnknownSpeaker(_) => quivox_status::UnknownSpeaker,
            EngineError::ModelIo(_) | EngineError::Voiceprint(_) => quivox_status::ModelError,
            EngineError::SampleRate { .. } => quivox_status::InvalidArgument,
            _ => quivox_status::EngineError,
        };
        Self::new(status, e.to_string())
    }
}

impl From<NumberError> for FfiError {
    fn from(e: NumberError) -> Self {
        Self::new(quivox_status::InvalidNumber, e.to_string())
    }
}

impl From<StoreError> for FfiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::WrongKey { .. } | StoreError::InvalidKey { .. } => quivox_status::KeyError,
            StoreError::NotFound { what, .. } if *what == "speaker" => {
                quivox_status::UnknownSpeaker
            }
            StoreError::NotFound { .. } | StoreError::InvalidInput { .. } => {
                quivox_status::InvalidArgument
            }
            _ => quivox_status::StoreError,
        };
        Self::new(status, e.to_string())
    }
}

impl From<ServiceError> for FfiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Engine(e) => e.into(),
            ServiceError::Store(e) => e.into(),
            ServiceError::ModelFile { .. } => Self::new(quivox_status::ModelError, e.to_string()),
            ServiceError::UnknownSpeaker(_) => {
                Self::new(quivox_status::UnknownSpeaker, e.to_string())
            }
            ServiceError::InvalidRequest { .. } => {
                Self::new(quivox_status::InvalidArgument, e.to_string())
            }
            other => Self::new(quivox_status::EngineError, other.to_string()),
        }
    }
}

thread_local! {
    /// Message of the most recent failed call on this thread.
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

pub(crate) fn set_last_error(message: String) {
    LAST_ERROR.with(|m| *m.borrow_mut() = message);
}

/// Copies the message of the most recent failed call **on the calling thread** into `buf`
/// (`len` bytes), NUL-terminated, and the message length (without the NUL) into `*out_len`
/// when `out_len` is not NULL. An empty string when no call has failed on this thread.
///
/// Returns `QUIVOX_STATUS_BUFFER_TOO_SMALL` when the message did not fit: the first `len - 1`
/// bytes (cut at a UTF-8 character boundary) were written with a NUL, and `*out_len` holds the
/// full length, so a buffer of `*out_len + 1` bytes fits it. Reading the message does not clear it.
///
/// Thread-safety: any thread; each thread sees its own message.
///
/// # Safety
/// `buf` must point to `len` writable bytes; `out_len` must be NULL or point to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn quivox_last_error(
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> quivox_status {
    // Not through the usual boundary: reading the message must not overwrite it.
    let copied = std::panic::catch_unwind(|| {
        LAST_ERROR.with(|m| {
            let message = m.borrow();
            // SAFETY: the caller guarantees `buf` holds `len` bytes and `out_len` is NULL or valid.
            unsafe { crate::args::write_c_string(&message, buf, len, out_len) }
        })
    });
    match copied {
        Ok(Ok(())) => quivox_status::Ok,
        Ok(Err(e)) => e.status,
        Err(_) => quivox_status::Panic,
    }
}

/// The name of a status as a static NUL-terminated string, e.g. `"QUIVOX_STATUS_OK"`;
/// `"QUIVOX_STATUS_UNKNOWN"` for a value that is not a status. Never free it.
///
/// Thread-safety: any thread, any time.
#[no_mangle]
pub extern "C" fn quivox_status_name(status: u32) -> *const c_char {
    // Taken as an integer: a C enum may hold any value, a Rust enum may not.
    const ALL: [quivox_status; 16] = [
        quivox_status::Ok,
        quivox_status::NullArgument,
        quivox_status::InvalidHandle,
        quivox_status::InvalidArgument,
        quivox_status::InvalidUtf8,
        quivox_status::BufferTooSmall,
        quivox_status::InvalidNumber,
        quivox_status::UnknownSpeaker,
        quivox_status::EnrollmentRefused,
        quivox_status::SessionFinished,
        quivox_status::ModelError,
        quivox_status::StoreError,
        quivox_status::KeyError,
        quivox_status::Unsupported,
        quivox_status::EngineError,
        quivox_status::Panic,
    ];
    let name = ALL
        .iter()
        .find(|s| **s as u32 == status)
        .map_or("QUIVOX_STATUS_UNKNOWN\0", |s| s.name());
    name.as_ptr().cast()
}
