//! Pretrained neural speaker encoder (GE2E, Resemblyzer weights) run natively and streamed.
