//! Score calibration (prior-weighted linear logistic regression) and fusion.
