//! PLDA scoring and score normalisation (Z/T/S-norm, adaptive S-norm).
