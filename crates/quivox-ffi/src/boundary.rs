//! The panic boundary every entry point goes through.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::status::{quivox_status, set_last_error, FfiResult};

/// Runs an entry point's body: maps its error to a status (recording the message for
/// `quivox_last_error`, prefixed with the function name) and turns a panic into
/// [`quivox_status::Panic`], so that no unwind ever reaches C.
pub(crate) fn entry(function: &'static str, body: impl FnOnce() -> FfiResult<()>) -> quivox_status {
    // AssertUnwindSafe: after a panic the only shared state a body may have left half-updated is
    // behind a Mutex (poisoning is recovered where locks are taken) or in a session, which then
    // keeps answering but whose caller is told to free it.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => quivox_status::Ok,
        Ok(Err(e)) => {
            set_last_error(format!("{function}: {}", e.message));
            e.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_string());
            set_last_error(format!(
                "{function}: internal error (panic: {what}); please report it"
            ));
            quivox_status::Panic
        }
    }
}
