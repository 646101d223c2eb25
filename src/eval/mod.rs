//! Evaluation on a corpus laid out like `../shared/corpus` (enroll lists, trials, identification lists).

pub mod corpus;

pub use corpus::{Background, CorpusError, DevSet, Enrollment, IdentTest, Trial};
