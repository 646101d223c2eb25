//! Readers for the corpus layout of `../shared/corpus` (see its README):
//! `enroll.lst`, `trials.txt`, `ident_closed.txt` / `ident_open.txt` with their model lists,
//! and `background/utt2spk`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Errors while reading a corpus description.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorpusError {
    /// A list file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line does not have the expected shape.
    #[error("{path}:{line}: expected {expected}, found {found:?}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What the line should look like.
        expected: &'static str,
        /// The offending line.
        found: String,
    },
    /// A list refers to a speaker that is not enrolled.
    #[error("{path}: speaker {speaker:?} is not in enroll.lst")]
    UnknownSpeaker {
        /// The file.
        path: PathBuf,
        /// The speaker id.
        speaker: String,
    },
    /// The set contains nothing to evaluate.
    #[error("{path}: no entries")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// One enrolled speaker: id and the WAV files (absolute paths) to concatenate.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrollment {
    /// Speaker id.
    pub speaker: String,
    /// Enrollment recordings.
    pub wavs: Vec<PathBuf>,
}

/// One verification trial.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// Index into [`DevSet::enrollments`].
    pub enrollment: usize,
    /// Index into [`DevSet::tests`].
    pub test: usize,
    /// True for a target (same-speaker) trial.
    pub target: bool,
}

/// One identification test: the test file and the true speaker (`None` = not in the gallery).
#[derive(Debug, Clone, PartialEq)]
pub struct IdentTest {
    /// Index into [`DevSet::tests`].
    pub test: usize,
    /// The true speaker, or `None` when the caller is not in the gallery ("unknown").
    pub speaker: Option<String>,
}

/// A development set (`dev/`, `dev-read/`): enrollments, tests, trials and identification lists.
#[derive(Debug, Clone, PartialEq)]
pub struct DevSet {
    /// Root folder of the set.
    pub root: PathBuf,
    /// Enrolled speakers in file order.
    pub enrollments: Vec<Enrollment>,
    /// Distinct test files (absolute paths) in first-seen order.
    pub tests: Vec<PathBuf>,
    /// Verification trials.
    pub trials: Vec<Trial>,
    /// Closed-set identification tests (gallery: `closed_gallery`).
    pub ident_closed: Vec<IdentTest>,
    /// Indices of the closed-set gallery speakers in `enrollments`.
    pub closed_gallery: Vec<usize>,
    /// Open-set identification tests (gallery: `open_gallery`).
    pub ident_open: Vec<IdentTest>,
    /// Indices of the open-set gallery speakers in `enrollments`.
    pub open_gallery: Vec<usize>,
}

fn read_lines(path: &Path) -> Result<Vec<(usize, String)>, CorpusError> {
    let text = fs::read_to_string(path).map_err(|source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect())
}

impl DevSet {
    /// Reads a set laid out as `../shared/corpus/dev`. Identification lists are optional.
    pub fn load(root: &Path) -> Result<Self, CorpusError> {
        let enroll_path = root.join("enroll.lst");
        let mut enrollments = Vec::new();
        for (line, text) in read_lines(&enroll_path)? {
            let mut fields = text.split_whitespace();
            let speaker = fields.next().unwrap_or_default().to_string();
            let wavs: Vec<PathBuf> = fields.map(|f| root.join(f)).collect();
            if wavs.is_empty() {
                return Err(CorpusError::BadLine {
                    path: enroll_path,
                    line,
                    expected: "<speaker> <wav> [<wav> ...]",
                    found: text,
                });
            }
            enrollments.push(Enrollment { speaker, wavs });
        }
        if enrollments.is_empty() {
            return Err(CorpusError::Empty { path: enroll_path });
        }
        let mut set = DevSet {
            root: root.to_path_buf(),
            enrollments,
            tests: Vec::new(),
            trials: Vec::new(),
            ident_closed: Vec::new(),
            closed_gallery: Vec::new(),
            ident_open: Vec::new(),
            open_gallery: Vec::new(),
        };

        let trials_path = root.join("trials.txt");
        for (line, text) in read_lines(&trials_path)? {
            let f: Vec<&str> = text.split_whitespace().collect();
            let target = match f.get(2) {
                Some(&"target") => true,
                Some(&"nontarget") => false,
                _ => {
                    return Err(CorpusError::BadLine {
                        path: trials_path,
                        line,
                        expected: "<enroll_speaker> <test_wav> target|nontarget",
                        found: text,
                    })
                }
            };
            let enrollment =
                set.speaker_index(f[0])
                    .ok_or_else(|| CorpusError::UnknownSpeaker {
                        path: trials_path.clone(),
                        speaker: f[0].to_string(),
                    })?;
            let test = set.test_index(f[1]);
            set.trials.push(Trial {
                enrollment,
                test,
                target,
            });
        }

        for (list, models, open) in [
            ("ident_closed.txt", "ident_closed_models.txt", false),
            ("ident_open.txt", "ident_open_models.txt", true),
        ] {
            let list_path = root.join(list);
            if !list_path.exists() {
                continue;
            }
            let models_path = root.join(models);
            let gallery: Vec<usize> = if models_path.exists() {
                read_lines(&models_path)?
                    .into_iter()
                    .map(|(_, s)| {
                        set.speaker_index(&s).ok_or(CorpusError::UnknownSpeaker {
                            path: models_path.clone(),
                            speaker: s,
                        })
                    })
                    .collect::<Result<_, _>>()?
            } else {
                (0..set.enrollments.len()).collect()
            };
            let gallery_names: BTreeSet<&str> = gallery
                .iter()
                .map(|&i| set.enrollments[i].speaker.as_str())
                .collect();
            let mut tests = Vec::new();
            for (line, text) in read_lines(&list_path)? {
                let f: Vec<&str> = text.split_whitespace().collect();
                if f.len() != 2 {
                    return Err(CorpusError::BadLine {
                        path: list_path,
                        line,
                        expected: "<test_wav> <true_speaker|unknown>",
                        found: text,
                    });
                }
                let speaker =
                    (f[1] != "unknown" && gallery_names.contains(f[1])).then(|| f[1].to_string());
                tests.push((f[0].to_string(), speaker));
            }
            let tests: Vec<IdentTest> = tests
                .into_iter()
                .map(|(wav, speaker)| IdentTest {
                    test: set.test_index(&wav),
                    speaker,
                })
                .collect();
            if open {
                set.ident_open = tests;
                set.open_gallery = gallery;
            } else {
                set.ident_closed = tests;
                set.closed_gallery = gallery;
            }
        }
        Ok(set)
    }

    /// Index of an enrolled speaker by id.
    pub fn speaker_index(&self, speaker: &str) -> Option<usize> {
        self.enrollments.iter().position(|e| e.speaker == speaker)
    }

    fn test_index(&mut self, rel: &str) -> usize {
        let path = self.root.join(rel);
        if let Some(i) = self.tests.iter().position(|p| *p == path) {
            return i;
        }
        self.tests.push(path);
        self.tests.len() - 1
    }
}

/// Background training data: (file, speaker) pairs from `utt2spk`.
#[derive(Debug, Clone, PartialEq)]
pub struct Background {
    /// Root folder.
    pub root: PathBuf,
    /// (absolute WAV path, speaker id) in file order.
    pub utterances: Vec<(PathBuf, String)>,
}

impl Background {
    /// Reads `<root>/utt2spk` ("<path under root> <speaker>").
    pub fn load(root: &Path) -> Result<Self, CorpusError> {
        let path = root.join("utt2spk");
        let mut utterances = Vec::new();
        for (line, text) in read_lines(&path)? {
            let f: Vec<&str> = text.split_whitespace().collect();
            if f.len() != 2 {
                return Err(CorpusError::BadLine {
                    path,
                    line,
                    expected: "<wav path> <speaker>",
                    found: text,
                });
            }
            utterances.push((root.join(f[0]), f[1].to_string()));
        }
        if utterances.is_empty() {
            return Err(CorpusError::Empty { path });
        }
        Ok(Self {
            root: root.to_path_buf(),
            utterances,
        })
    }

    /// Distinct speakers in first-seen order.
    pub fn speakers(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.utterances
            .iter()
            .filter(|(_, s)| seen.insert(s.clone()))
            .map(|(_, s)| s.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn reads_a_small_set() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(
            d,
            "enroll.lst",
            "alice enroll/a/1.wav enroll/a/2.wav\nbob enroll/b/1.wav\n",
        );
        write(
            d,
            "trials.txt",
            "alice test/a-t0.wav target\nbob test/a-t0.wav nontarget\nbob test/b-t0.wav target\n",
        );
        write(
            d,
            "ident_closed.txt",
            "test/a-t0.wav alice\ntest/b-t0.wav bob\n",
        );
        write(d, "ident_closed_models.txt", "alice\nbob\n");
        write(
            d,
            "ident_open.txt",
            "test/a-t0.wav alice\ntest/b-t0.wav unknown\n",
        );
        write(d, "ident_open_models.txt", "alice\n");
        let set = DevSet::load(d).unwrap();
        assert_eq!(set.enrollments.len(), 2);
        assert_eq!(set.enrollments[0].wavs.len(), 2);
        assert_eq!(set.tests.len(), 2);
        assert_eq!(set.trials.len(), 3);
        assert_eq!(
            set.trials[1],
            Trial {
                enrollment: 1,
                test: 0,
                target: false
            }
        );
        assert_eq!(set.closed_gallery, vec![0, 1]);
        assert_eq!(set.open_gallery, vec![0]);
        assert_eq!(set.ident_open[1].speaker, None);
        assert_eq!(set.ident_closed[1].speaker.as_deref(), Some("bob"));
    }

    #[test]
    fn bad_trial_line_is_reported_with_its_line_number() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "enroll.lst", "alice a.wav\n");
        write(
            dir.path(),
            "trials.txt",
            "alice t.wav target\nalice t.wav maybe\n",
        );
        match DevSet::load(dir.path()) {
            Err(CorpusError::BadLine { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected BadLine, got {other:?}"),
        }
    }

    #[test]
    fn trial_for_unenrolled_speaker_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "enroll.lst", "alice a.wav\n");
        write(dir.path(), "trials.txt", "carol t.wav target\n");
        assert!(matches!(
            DevSet::load(dir.path()),
            Err(CorpusError::UnknownSpeaker { .. })
        ));
    }

    #[test]
    fn reads_the_shared_corpus_when_present() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/dev");
        if !root.exists() {
            return;
        }
        let set = DevSet::load(&root).unwrap();
        assert_eq!(set.enrollments.len(), 58);
        assert_eq!(set.trials.len(), 7888);
        assert_eq!(set.trials.iter().filter(|t| t.target).count(), 136);
        assert_eq!(set.ident_closed.len(), 136);
        assert_eq!(
            set.ident_open
                .iter()
                .filter(|t| t.speaker.is_none())
                .count(),
            16
        );
    }
}
