//! Streaming caller-identification engine: sessions, number prior, fusion, decisions.

pub mod bayes;
pub mod embedding_system;
pub mod ivector_system;
pub mod number;
pub mod voice;

pub use bayes::{caller_posterior, log_sum_exp, Best, CallerPosterior};
pub use number::{CallerPrior, NumberDirectory, NumberError, PhoneNumber, PriorOptions, SpeakerId};
