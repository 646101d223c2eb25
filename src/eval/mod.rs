//! Evaluation on a corpus laid out like `../shared/corpus` (enroll lists, trials, identification lists).

pub mod corpus;
pub mod report;
pub mod score_files;

pub use corpus::{Background, CorpusError, DevSet, Enrollment, IdentTest, Trial};
pub use report::{markdown_table, report, OpenSetRule, ScoreMatrix, SystemReport};
