//! Evaluation on a corpus laid out like `../shared/corpus` (enroll lists, trials, identification lists).
