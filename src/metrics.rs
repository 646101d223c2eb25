//! Evaluation metrics: EER, minDCF, Cllr, DET curves.
