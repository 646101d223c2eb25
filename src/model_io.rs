//! Versioned, checksummed model files.
