//! The number directory: which enrolled people are known on which calling number (ANI/CLI),
//! with call counts, and the prior over callers that a number implies.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Identifier of an enrolled speaker (the operator's id, e.g. a customer id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SpeakerId(pub String);

impl fmt::Display for SpeakerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for SpeakerId {
    fn from(s: &str) -> Self {
        SpeakerId(s.to_string())
    }
}

/// Errors about calling numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NumberError {
    /// The number has no digits after normalisation, or contains characters a dialled number cannot have.
    #[error("calling number {0:?}: expected digits with an optional leading '+' (spaces, dots, dashes and brackets are ignored)")]
    Invalid(String),
    /// More digits than E.164 allows (15) plus a generous margin for prefixes.
    #[error("calling number {number:?} has {digits} digits: expected at most 20")]
    TooLong {
        /// The number as given.
        number: String,
        /// How many digits it has.
        digits: usize,
    },
}

/// A normalised calling number: digits with an optional leading `+`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Normalises a number as presented by the network: keeps digits and a leading `+`, drops
    /// visual separators (space, `.`, `-`, `(`, `)`), refuses anything else.
    pub fn parse(raw: &str) -> Result<Self, NumberError> {
        let trimmed = raw.trim();
        let mut out = String::with_capacity(trimmed.len());
        for (i, ch) in trimmed.chars().enumerate() {
            match ch {
                '0'..='9' => out.push(ch),
                '+' if i == 0 => out.push('+'),
                ' ' | '.' | '-' | '(' | ')' => {}
                _ => return Err(NumberError::Invalid(raw.to_string())),
            }
        }
        let digits = out.chars().filter(char::is_ascii_digit).count();
        if digits == 0 {
            return Err(NumberError::Invalid(raw.to_string()));
        }
        if digits > 20 {
            return Err(NumberError::TooLong {
                number: raw.to_string(),
                digits,
            });
        }
        Ok(PhoneNumber(out))
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the calling number shapes the prior over callers. Probabilities, validated by [`PriorOptions::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PriorOptions {
    /// P(caller is one of the people known on the calling number), when the number has known people.
    pub p_line_member: f64,
    /// P(caller is nobody enrolled), when the number has known people.
    pub p_unknown_on_known_line: f64,
    /// P(caller is nobody enrolled), when the number is withheld or has nobody known on it.
    pub p_unknown_without_line: f64,
    /// Dirichlet pseudo-count added to every member's call count on a line (1 = Laplace smoothing).
    pub call_count_pseudo: f64,
}

impl Default for PriorOptions {
    fn default() -> Self {
        Self {
            p_line_member: 0.90,
            p_unknown_on_known_line: 0.05,
            p_unknown_without_line: 0.5,
            call_count_pseudo: 1.0,
        }
    }
}

/// Invalid prior options.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PriorOptionsError {
    /// A probability outside (0, 1) or a sum that exceeds 1.
    #[error("prior option {name} = {value}: expected {expected}")]
    OutOfRange {
        /// Option name.
        name: &'static str,
        /// Its value.
        value: f64,
        /// The valid range.
        expected: &'static str,
    },
}

impl PriorOptions {
    /// Checks every probability is in (0, 1) and that line member + unknown mass leaves room (≤ 1).
    pub fn validate(&self) -> Result<(), PriorOptionsError> {
        let open = |name, value: f64| {
            if value > 0.0 && value < 1.0 {
                Ok(())
            } else {
                Err(PriorOptionsError::OutOfRange {
                    name,
                    value,
                    expected: "a probability strictly between 0 and 1",
                })
            }
        };
        open("p_line_member", self.p_line_member)?;
        open("p_unknown_on_known_line", self.p_unknown_on_known_line)?;
        open("p_unknown_without_line", self.p_unknown_without_line)?;
        let sum = self.p_line_member + self.p_unknown_on_known_line;
        if sum > 1.0 {
            return Err(PriorOptionsError::OutOfRange {
                name: "p_line_member + p_unknown_on_known_line",
                value: sum,
                expected: "at most 1",
            });
        }
        if !(self.call_count_pseudo.is_finite() && self.call_count_pseudo > 0.0) {
            return Err(PriorOptionsError::OutOfRange {
                name: "call_count_pseudo",
                value: self.call_count_pseudo,
                expected: "a positive pseudo-count",
            });
        }
        Ok(())
    }
}

/// Which numbers each enrolled person is known on, with how often they called from it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NumberDirectory {
    lines: BTreeMap<PhoneNumber, BTreeMap<SpeakerId, u64>>,
}

impl NumberDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `speaker` is known on `number` (no-op if already linked).
    pub fn link(&mut self, number: PhoneNumber, speaker: SpeakerId) {
        self.lines
            .entry(number)
            .or_default()
            .entry(speaker)
            .or_insert(0);
    }

    /// Records a call from `number` by `speaker` (linking them if needed).
    pub fn record_call(&mut self, number: PhoneNumber, speaker: SpeakerId) {
        *self
            .lines
            .entry(number)
            .or_default()
            .entry(speaker)
            .or_insert(0) += 1;
    }

    /// Sets the call count of a link (creating it).
    pub fn set_call_count(&mut self, number: PhoneNumber, speaker: SpeakerId, calls: u64) {
        self.lines.entry(number).or_default().insert(speaker, calls);
    }

    /// Removes one link; returns whether it existed.
    pub fn unlink(&mut self, number: &PhoneNumber, speaker: &SpeakerId) -> bool {
        let Some(members) = self.lines.get_mut(number) else {
            return false;
        };
        let existed = members.remove(speaker).is_some();
        if members.is_empty() {
            self.lines.remove(number);
        }
        existed
    }

    /// Removes a person from every line (erasure); returns how many links were removed.
    pub fn remove_speaker(&mut self, speaker: &SpeakerId) -> usize {
        let mut removed = 0;
        self.lines.retain(|_, members| {
            removed += usize::from(members.remove(speaker).is_some());
            !members.is_empty()
        });
        removed
    }

    /// The people known on `number`, with their call counts.
    pub fn members(&self, number: &PhoneNumber) -> impl Iterator<Item = (&SpeakerId, u64)> {
        self.lines
            .get(number)
            .into_iter()
            .flat_map(|m| m.iter().map(|(s, &c)| (s, c)))
    }

    /// Numbers a person is known on.
    pub fn numbers_of<'a>(
        &'a self,
        speaker: &'a SpeakerId,
    ) -> impl Iterator<Item = &'a PhoneNumber> + 'a {
        self.lines
            .iter()
            .filter(move |(_, m)| m.contains_key(speaker))
            .map(|(n, _)| n)
    }

    /// All (number, speaker, calls) links.
    pub fn links(&self) -> impl Iterator<Item = (&PhoneNumber, &SpeakerId, u64)> {
        self.lines
            .iter()
            .flat_map(|(n, m)| m.iter().map(move |(s, &c)| (n, s, c)))
    }

    /// The prior over `population` (the enrolled speakers, in scoring order) and "unknown" implied
    /// by a call from `number` (`None` = withheld).
    ///
    /// Line members share `p_line_member` in proportion to their smoothed call counts; the rest of
    /// the enrolled population shares what is left after the unknown mass; without a usable number
    /// everyone enrolled is equally likely.
    pub fn prior(
        &self,
        number: Option<&PhoneNumber>,
        population: &[SpeakerId],
        opts: &PriorOptions,
    ) -> CallerPrior {
        let n = population.len();
        let members: BTreeMap<&SpeakerId, u64> = number
            .map(|num| self.members(num).collect())
            .unwrap_or_default();
        let on_line: Vec<bool> = population.iter().map(|s| members.contains_key(s)).collect();
        let n_line = on_line.iter().filter(|&&b| b).count();
        let mut probs = vec![0.0f64; n];
        let p_unknown;
        if n_line == 0 {
            p_unknown = if n == 0 {
                1.0
            } else {
                opts.p_unknown_without_line
            };
            if n > 0 {
                let each = (1.0 - p_unknown) / n as f64;
                probs.iter_mut().for_each(|p| *p = each);
            }
        } else {
            let n_other = n - n_line;
            p_unknown = opts.p_unknown_on_known_line;
            // With nobody else enrolled the "other" mass goes to the line members.
            let (p_line, p_other) = if n_other == 0 {
                (1.0 - p_unknown, 0.0)
            } else {
                (opts.p_line_member, 1.0 - p_unknown - opts.p_line_member)
            };
            let total: f64 = population
                .iter()
                .zip(&on_line)
                .filter(|(_, &b)| b)
                .map(|(s, _)| members[s] as f64 + opts.call_count_pseudo)
                .sum();
            for (i, s) in population.iter().enumerate() {
                probs[i] = if on_line[i] {
                    p_line * (members[s] as f64 + opts.call_count_pseudo) / total
                } else {
                    p_other / n_other as f64
                };
            }
        }
        CallerPrior {
            log_prior: probs.iter().map(|p| p.ln()).collect(),
            log_prior_unknown: p_unknown.ln(),
            on_line,
        }
    }
}

/// Prior over the enrolled population (in scoring order) and "unknown", as natural logs.
#[derive(Debug, Clone, PartialEq)]
pub struct CallerPrior {
    /// ln P(caller = speaker i), one per enrolled speaker (−∞ allowed).
    pub log_prior: Vec<f64>,
    /// ln P(caller is nobody enrolled).
    pub log_prior_unknown: f64,
    /// Whether speaker i is known on the calling number.
    pub on_line: Vec<bool>,
}

impl CallerPrior {
    /// True when the calling number has at least one known person.
    pub fn has_line_members(&self) -> bool {
        self.on_line.iter().any(|&b| b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<SpeakerId> {
        names.iter().map(|&s| s.into()).collect()
    }

    #[test]
    fn numbers_are_normalised_and_bad_ones_refused() {
        assert_eq!(
            PhoneNumber::parse(" +33 (0)1 23-45.67 ").unwrap().as_str(),
            "+3301234567"
        );
        assert!(matches!(
            PhoneNumber::parse("anonymous"),
            Err(NumberError::Invalid(_))
        ));
        assert!(matches!(
            PhoneNumber::parse("12+3"),
            Err(NumberError::Invalid(_))
        ));
        assert!(matches!(
            PhoneNumber::parse("+"),
            Err(NumberError::Invalid(_))
        ));
        assert!(matches!(
            PhoneNumber::parse(&"9".repeat(21)),
            Err(NumberError::TooLong { digits: 21, .. })
        ));
    }

    #[test]
    fn prior_sums_to_one_and_follows_call_history() {
        let mut dir = NumberDirectory::new();
        let home = PhoneNumber::parse("+441234567890").unwrap();
        for _ in 0..8 {
            dir.record_call(home.clone(), "mum".into());
        }
        dir.record_call(home.clone(), "dad".into());
        dir.link(home.clone(), "kid".into());
        let pop = ids(&["mum", "dad", "kid", "stranger1", "stranger2"]);
        let opts = PriorOptions::default();
        let prior = dir.prior(Some(&home), &pop, &opts);
        let p: Vec<f64> = prior.log_prior.iter().map(|l| l.exp()).collect();
        let total: f64 = p.iter().sum::<f64>() + prior.log_prior_unknown.exp();
        assert!((total - 1.0).abs() < 1e-12);
        // Smoothed counts 9 : 2 : 1 over the 0.9 line mass.
        assert!((p[0] - 0.9 * 9.0 / 12.0).abs() < 1e-12);
        assert!((p[1] - 0.9 * 2.0 / 12.0).abs() < 1e-12);
        assert!((p[2] - 0.9 * 1.0 / 12.0).abs() < 1e-12);
        assert!((p[3] - 0.025).abs() < 1e-12);
        assert_eq!(prior.on_line, vec![true, true, true, false, false]);
    }

    #[test]
    fn withheld_number_gives_a_flat_prior() {
        let dir = NumberDirectory::new();
        let pop = ids(&["a", "b", "c", "d"]);
        let prior = dir.prior(None, &pop, &PriorOptions::default());
        for l in &prior.log_prior {
            assert!((l.exp() - 0.125).abs() < 1e-12);
        }
        assert!((prior.log_prior_unknown.exp() - 0.5).abs() < 1e-12);
        assert!(!prior.has_line_members());
    }

    #[test]
    fn erasure_removes_every_link() {
        let mut dir = NumberDirectory::new();
        let a = PhoneNumber::parse("111").unwrap();
        let b = PhoneNumber::parse("222").unwrap();
        dir.link(a.clone(), "x".into());
        dir.link(b.clone(), "x".into());
        dir.link(b.clone(), "y".into());
        assert_eq!(dir.remove_speaker(&"x".into()), 2);
        assert_eq!(dir.members(&a).count(), 0);
        assert_eq!(
            dir.members(&b)
                .map(|(s, _)| s.0.clone())
                .collect::<Vec<_>>(),
            vec!["y"]
        );
    }

    #[test]
    fn options_are_validated() {
        assert!(PriorOptions::default().validate().is_ok());
        let bad = PriorOptions {
            p_line_member: 0.99,
            p_unknown_on_known_line: 0.05,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = PriorOptions {
            p_unknown_without_line: 0.0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }
}
