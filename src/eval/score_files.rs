//! The per-trial and per-test files `quivox eval --scores-dir` writes, and their readers (for
//! analyses such as `examples/fusion_bounds.rs` and `examples/quality_fusion.rs`).
//!
//! - `scores-<set>-<system>.tsv`: header `enrollment test kind score`, one line per trial of the
//!   set (enrollment speaker, test file relative to the set's root when it lies under it,
//!   `target`/`nontarget`, the system's score: a calibrated natural-log LR where it has a
//!   calibration);
//! - `tests-<set>.tsv`: header `test energy_spread speech_frames`, one line per test (the spread
//!   of its frame log energies in nats, NaN under two frames, and its voiced frames: what a
//!   fusion's quality recalibration reads, [`TestQuality`]).

use std::path::Path;

use super::{CorpusError, DevSet, ScoreMatrix};
use crate::calibration::TestQuality;

/// Header line of a trial-scores file.
pub const TRIAL_SCORES_HEADER: &str = "enrollment\ttest\tkind\tscore";
/// Header line of a test-quality file.
pub const TEST_QUALITY_HEADER: &str = "test\tenergy_spread\tspeech_frames";

/// One line of a trial-scores file.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredTrial {
    /// Enrolled speaker.
    pub enrollment: String,
    /// Test file as written (relative to the set's root when under it).
    pub test: String,
    /// Target trial.
    pub target: bool,
    /// The system's score.
    pub score: f64,
}

fn test_name(set: &DevSet, test: usize) -> String {
    let path = &set.tests[test];
    path.strip_prefix(&set.root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The trial-scores file of `scores` on `set` (one line per trial, in trial order).
pub fn trial_scores_tsv(set: &DevSet, scores: &ScoreMatrix) -> String {
    let mut out = format!("{TRIAL_SCORES_HEADER}\n");
    for t in &set.trials {
        out.push_str(&format!(
            "{}\t{}\t{}\t{:.6}\n",
            set.enrollments[t.enrollment].speaker,
            test_name(set, t.test),
            if t.target { "target" } else { "nontarget" },
            scores.get(t.enrollment, t.test)
        ));
    }
    out
}

/// The test-quality file of `set` (`quality` in `set.tests` order).
pub fn test_quality_tsv(set: &DevSet, quality: &[TestQuality]) -> String {
    let mut out = format!("{TEST_QUALITY_HEADER}\n");
    for (test, q) in quality.iter().enumerate().take(set.tests.len()) {
        out.push_str(&format!(
            "{}\t{:.6}\t{}\n",
            test_name(set, test),
            q.energy_spread_nats,
            q.speech_frames
        ));
    }
    out
}

/// The data lines of `text` split on tabs, each with its 1-based line number, after checking the
/// header and the number of fields.
fn rows<'a>(
    path: &Path,
    text: &'a str,
    header: &'static str,
) -> Result<Vec<(usize, Vec<&'a str>)>, CorpusError> {
    let fields = header.split('\t').count();
    let bad = |line: usize, found: &str| CorpusError::BadLine {
        path: path.to_path_buf(),
        line,
        expected: header,
        found: found.to_string(),
    };
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h == header => {}
        other => return Err(bad(1, other.map_or("", |(_, l)| l))),
    }
    lines
        .filter(|(_, l)| !l.is_empty())
        .map(|(n, l)| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() == fields {
                Ok((n + 1, f))
            } else {
                Err(bad(n + 1, l))
            }
        })
        .collect()
}

/// Reads `path`, checks its header, and parses every data line with `parse` (1-based line
/// number, the tab-separated fields, as many as the header has). Also the reader of the
/// back-end recipe's held-out trial files ([`crate::recipe::backend::read_held_out_trials`]).
pub(crate) fn read_rows<T>(
    path: &Path,
    header: &'static str,
    parse: impl Fn(usize, &[&str]) -> Result<T, CorpusError>,
) -> Result<Vec<T>, CorpusError> {
    let text = std::fs::read_to_string(path).map_err(|source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    rows(path, &text, header)?
        .into_iter()
        .map(|(line, f)| parse(line, &f))
        .collect()
}

/// Reads a trial-scores file written by [`trial_scores_tsv`].
pub fn read_trial_scores(path: &Path) -> Result<Vec<ScoredTrial>, CorpusError> {
    read_rows(path, TRIAL_SCORES_HEADER, |line, f| {
        let bad = |expected| CorpusError::BadLine {
            path: path.to_path_buf(),
            line,
            expected,
            found: f.join("\t"),
        };
        let target = match f[2] {
            "target" => true,
            "nontarget" => false,
            _ => return Err(bad("kind target or nontarget")),
        };
        let score: f64 = f[3].parse().map_err(|_| bad("a numeric score"))?;
        Ok(ScoredTrial {
            enrollment: f[0].to_string(),
            test: f[1].to_string(),
            target,
            score,
        })
    })
}

/// Reads a test-quality file written by [`test_quality_tsv`]: (test, its quality) per line.
pub fn read_test_quality(path: &Path) -> Result<Vec<(String, TestQuality)>, CorpusError> {
    read_rows(path, TEST_QUALITY_HEADER, |line, f| {
        let bad = || CorpusError::BadLine {
            path: path.to_path_buf(),
            line,
            expected: "a numeric energy spread and a frame count",
            found: f.join("\t"),
        };
        let spread: f64 = f[1].parse().map_err(|_| bad())?;
        let frames: usize = f[2].parse().map_err(|_| bad())?;
        Ok((f[0].to_string(), TestQuality::new(spread, frames)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{Enrollment, Trial};

    fn set(root: &Path) -> DevSet {
        DevSet {
            root: root.to_path_buf(),
            enrollments: ["a", "b"]
                .map(|s| Enrollment {
                    speaker: s.into(),
                    wavs: Vec::new(),
                })
                .to_vec(),
            tests: vec![root.join("test/a-t00.wav"), "/elsewhere/b-t00.wav".into()],
            trials: vec![
                Trial {
                    enrollment: 0,
                    test: 0,
                    target: true,
                },
                Trial {
                    enrollment: 1,
                    test: 0,
                    target: false,
                },
                Trial {
                    enrollment: 0,
                    test: 1,
                    target: false,
                },
            ],
            ident_closed: Vec::new(),
            closed_gallery: Vec::new(),
            ident_open: Vec::new(),
            open_gallery: Vec::new(),
        }
    }

    #[test]
    fn trial_scores_and_test_quality_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let set = set(dir.path());
        // enrollment-major: scores[e * num_tests + t]
        let scores = ScoreMatrix {
            num_tests: 2,
            scores: vec![2.5, -1.25, -3.0, 0.5],
        };
        let path = dir.path().join("scores.tsv");
        std::fs::write(&path, trial_scores_tsv(&set, &scores)).unwrap();
        let got = read_trial_scores(&path).unwrap();
        let expected = [
            ("a", "test/a-t00.wav", true, 2.5),
            ("b", "test/a-t00.wav", false, -3.0),
            ("a", "/elsewhere/b-t00.wav", false, -1.25),
        ];
        assert_eq!(got.len(), expected.len());
        for (g, (e, t, target, s)) in got.iter().zip(expected) {
            assert_eq!((g.enrollment.as_str(), g.test.as_str()), (e, t));
            assert_eq!((g.target, g.score), (target, s));
        }
        let quality = [TestQuality::new(7.25, 512), TestQuality::new(f64::NAN, 0)];
        let path = dir.path().join("tests.tsv");
        std::fs::write(&path, test_quality_tsv(&set, &quality)).unwrap();
        let got = read_test_quality(&path).unwrap();
        assert_eq!(got[0], ("test/a-t00.wav".into(), quality[0]));
        assert_eq!(got[1].0, "/elsewhere/b-t00.wav");
        assert!(got[1].1.energy_spread_nats.is_nan());
        assert_eq!(got[1].1.speech_frames, 0);
    }

    #[test]
    fn malformed_files_name_the_line_and_what_was_expected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scores.tsv");
        let cases = [
            ("enrollment\ttest\tscore\n", 1),
            (
                "enrollment\ttest\tkind\tscore\na\tt.wav\ttarget\t1.0\nb\tt.wav\tmaybe\t1.0\n",
                3,
            ),
            ("enrollment\ttest\tkind\tscore\na\tt.wav\ttarget\n", 2),
            ("enrollment\ttest\tkind\tscore\na\tt.wav\ttarget\thigh\n", 2),
        ];
        for (text, line) in cases {
            std::fs::write(&path, text).unwrap();
            match read_trial_scores(&path) {
                Err(CorpusError::BadLine { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        assert!(matches!(
            read_test_quality(&dir.path().join("missing.tsv")),
            Err(CorpusError::Io { .. })
        ));
    }
}
