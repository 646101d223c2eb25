//! Handle registries: a handle given to C is an address that is looked up here, never
//! dereferenced. A NULL, freed, or foreign handle is then an error instead of undefined
//! behaviour, and freeing a handle while another thread still uses it is safe (the object lives
//! until its last user returns).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::status::{quivox_status, FfiError, FfiResult};

/// Live handles: the handle's address → (its token, the object). The token is a heap byte owned by
/// the entry, so its address is unique among live handles of every kind.
type LiveHandles<T> = BTreeMap<usize, (Box<u8>, Arc<T>)>;

/// A registry of live handles of one kind.
pub(crate) struct Registry<T> {
    kind: &'static str,
    live: Mutex<LiveHandles<T>>,
}

impl<T> Registry<T> {
    /// An empty registry; `kind` names the handle type in messages.
    pub(crate) const fn new(kind: &'static str) -> Self {
        Self {
            kind,
            live: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LiveHandles<T>> {
        // A panic while holding this lock cannot leave the map half-updated (insert and remove
        // are single calls), so a poisoned lock is still consistent.
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an object; returns its handle.
    pub(crate) fn insert<H>(&self, object: T) -> *mut H {
        let token = Box::new(0u8);
        let handle = std::ptr::from_ref::<u8>(&token).cast_mut().cast::<H>();
        self.lock()
            .insert(handle as usize, (token, Arc::new(object)));
        handle
    }

    fn invalid(&self, handle: usize) -> FfiError {
        if handle == 0 {
            FfiError::new(
                quivox_status::InvalidHandle,
                format!("{} handle is NULL: expected a live handle", self.kind),
            )
        } else {
            FfiError::new(
                quivox_status::InvalidHandle,
                format!(
                    "{} handle {handle:#x} is not live: already freed, or not a {} handle",
                    self.kind, self.kind
                ),
            )
        }
    }

    /// The object behind a live handle.
    pub(crate) fn get<H>(&self, handle: *const H) -> FfiResult<Arc<T>> {
        let key = handle as usize;
        self.lock()
            .get(&key)
            .map(|(_, object)| Arc::clone(object))
            .ok_or_else(|| self.invalid(key))
    }

    /// Unregisters a handle; the object is dropped when its last user returns.
    pub(crate) fn remove<H>(&self, handle: *const H) -> FfiResult<Arc<T>> {
        let key = handle as usize;
        let entry = self.lock().remove(&key);
        entry
            .map(|(_, object)| object)
            .ok_or_else(|| self.invalid(key))
    }
}
