//! Streaming caller-identification engine: sessions, number prior, fusion, decisions.
