//! Checked conversions of C arguments: strings, buffers, out-pointers.
//!
//! Every raw pointer the library reads or writes goes through one of these functions, which check
//! NULL, alignment and length before touching memory. What they cannot check (that a non-NULL
//! pointer really points to that much memory) is the caller's part of the contract, stated in
//! each function's `# Safety` section.

use std::ffi::{c_char, CStr};

use crate::status::{quivox_status, FfiError, FfiResult};

/// Largest string argument accepted, bytes (speaker ids, names, numbers, paths are far shorter;
/// a longer one is a missing NUL or a wrong pointer more likely than data).
pub(crate) const MAX_STRING_BYTES: usize = 64 * 1024;

/// A required NUL-terminated UTF-8 string.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string valid for the returned lifetime.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char, name: &str) -> FfiResult<&'a str> {
    // SAFETY: forwarded contract.
    unsafe { opt_c_str(ptr, name) }?.ok_or_else(|| FfiError::null(name))
}

/// An optional NUL-terminated UTF-8 string (NULL gives `None`).
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string valid for the returned lifetime.
pub(crate) unsafe fn opt_c_str<'a>(ptr: *const c_char, name: &str) -> FfiResult<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, and the caller guarantees a NUL-terminated string that outlives 'a.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    if bytes.len() > MAX_STRING_BYTES {
        return Err(FfiError::invalid(format!(
            "{name} is {} bytes long: expected at most {MAX_STRING_BYTES} (missing NUL?)",
            bytes.len()
        )));
    }
    std::str::from_utf8(bytes).map(Some).map_err(|e| {
        FfiError::new(
            quivox_status::InvalidUtf8,
            format!(
                "{name} is not valid UTF-8 (bad byte at offset {}): expected UTF-8 text",
                e.valid_up_to()
            ),
        )
    })
}

/// A non-empty input buffer of `len` elements.
///
/// # Safety
/// `ptr` must be NULL or point to `len` initialised elements valid for the returned lifetime and
/// not written to meanwhile.
pub(crate) unsafe fn slice<'a, T>(ptr: *const T, len: usize, name: &str) -> FfiResult<&'a [T]> {
    if ptr.is_null() {
        return Err(FfiError::null(name));
    }
    if len == 0 {
        return Err(FfiError::invalid(format!(
            "{name} has length 0: expected at least one element"
        )));
    }
    if !ptr.is_aligned() {
        return Err(FfiError::invalid(format!(
            "{name} at address {ptr:p} is not aligned to {} bytes",
            std::mem::align_of::<T>()
        )));
    }
    if len
        .checked_mul(std::mem::size_of::<T>())
        .is_none_or(|bytes| bytes > isize::MAX as usize)
    {
        return Err(FfiError::invalid(format!(
            "{name} has length {len}: larger than the address space"
        )));
    }
    // SAFETY: non-NULL, aligned, total size ≤ isize::MAX; the caller guarantees `len` initialised
    // elements that stay valid and unmodified for 'a.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// An input buffer that may be empty (`len == 0`, then `ptr` may be NULL).
///
/// # Safety
/// As [`slice`].
pub(crate) unsafe fn slice_or_empty<'a, T>(
    ptr: *const T,
    len: usize,
    name: &str,
) -> FfiResult<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: forwarded contract.
    unsafe { slice(ptr, len, name) }
}

/// A checked, not yet written, out-pointer.
pub(crate) struct Out<T> {
    ptr: *mut T,
}

impl<T> Out<T> {
    /// Checks a required out-pointer (non-NULL, aligned) without writing it.
    pub(crate) fn new(ptr: *mut T, name: &str) -> FfiResult<Self> {
        if ptr.is_null() {
            return Err(FfiError::null(name));
        }
        if !ptr.is_aligned() {
            return Err(FfiError::invalid(format!(
                "{name} at address {ptr:p} is not aligned to {} bytes",
                std::mem::align_of::<T>()
            )));
        }
        Ok(Self { ptr })
    }

    /// Checks an optional out-pointer (NULL gives `None`).
    pub(crate) fn optional(ptr: *mut T, name: &str) -> FfiResult<Option<Self>> {
        if ptr.is_null() {
            Ok(None)
        } else {
            Self::new(ptr, name).map(Some)
        }
    }

    /// Writes the value (without dropping whatever bytes were there: C memory holds no Rust value).
    ///
    /// # Safety
    /// The pointer checked by [`Out::new`] must point to memory writable as a `T`.
    pub(crate) unsafe fn write(&self, value: T) {
        // SAFETY: non-NULL and aligned (checked in `new`); writable per the caller's contract.
        unsafe { self.ptr.write(value) }
    }
}

/// Writes `text` NUL-terminated into `buf` (`len` bytes), cut at a character boundary when it
/// does not fit (then `BufferTooSmall`), and its full length into `*out_len` when given.
///
/// # Safety
/// `buf` must be NULL or point to `len` writable bytes; `out_len` must be NULL or point to a
/// writable `size_t`.
pub(crate) unsafe fn write_c_string(
    text: &str,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> FfiResult<()> {
    let out_len = Out::optional(out_len, "out_len")?;
    if buf.is_null() {
        return Err(FfiError::null("buf"));
    }
    if len == 0 {
        if let Some(out) = out_len {
            // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
            unsafe { out.write(text.len()) };
        }
        return Err(FfiError::new(
            quivox_status::BufferTooSmall,
            format!(
                "buffer of 0 bytes: expected at least {} (text and NUL)",
                text.len() + 1
            ),
        ));
    }
    let fits = floor_char_boundary(text, len - 1);
    // SAFETY: `buf` is non-NULL and holds `len` ≥ fits + 1 bytes per the caller's contract; the
    // source is a Rust string, which cannot overlap caller memory handed to us for writing.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), fits);
        buf.add(fits).write(0);
    }
    if let Some(out) = out_len {
        // SAFETY: checked non-NULL and aligned; writable per the caller's contract.
        unsafe { out.write(text.len()) };
    }
    if fits < text.len() {
        return Err(FfiError::new(
            quivox_status::BufferTooSmall,
            format!(
                "buffer of {len} bytes: expected at least {} (text and NUL)",
                text.len() + 1
            ),
        ));
    }
    Ok(())
}

/// Largest index ≤ `max` that is a character boundary of `text` (at most `text.len()`).
pub(crate) fn floor_char_boundary(text: &str, max: usize) -> usize {
    let mut at = max.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Copies `text` NUL-terminated into a fixed array; returns whether it was cut (at a character
/// boundary) to fit.
pub(crate) fn copy_to_array<const N: usize>(text: &str, array: &mut [c_char; N]) -> bool {
    let fits = floor_char_boundary(text, N - 1);
    for (dst, &src) in array.iter_mut().zip(&text.as_bytes()[..fits]) {
        *dst = src as c_char;
    }
    array[fits] = 0;
    fits < text.len()
}
