//! Total-variability (i-vector) extractor and post-processing (centring, LDA, WCCN, length norm).
