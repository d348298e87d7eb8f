//! Word error rate: the normalisation and word-level edit distance used to score
//! transcriptions in tests and measurements.

/// Single number words mapped to digits. Whisper writes "5 years" or "five years" depending
/// on context; scoring them differently would measure formatting, not recognition.
const NUMBER_WORDS: &[(&str, &str)] = &[
    ("zero", "0"),
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
    ("eleven", "11"),
    ("twelve", "12"),
    ("thirteen", "13"),
    ("fourteen", "14"),
    ("fifteen", "15"),
    ("sixteen", "16"),
    ("seventeen", "17"),
    ("eighteen", "18"),
    ("nineteen", "19"),
    ("twenty", "20"),
    ("thirty", "30"),
    ("forty", "40"),
    ("fifty", "50"),
    ("sixty", "60"),
    ("seventy", "70"),
    ("eighty", "80"),
    ("ninety", "90"),
    ("hundred", "100"),
];

/// Lower-cases, drops punctuation (apostrophes too, so "haven't" and "havent" agree),
/// splits on whitespace and hyphens, and spells single number words as digits.
pub fn normalize_words(text: &str) -> Vec<String> {
    let lowered = text.to_lowercase();
    let spaced: String = lowered
        .chars()
        .filter_map(|c| match c {
            // Hyphens and slashes join words ("five-year", "CI/CD"): split there.
            '-' | '/' | '\u{2013}' | '\u{2014}' => Some(' '),
            c if c.is_alphanumeric() || c.is_whitespace() => Some(c),
            // Other punctuation goes; "3.5" becomes "35" on both sides alike.
            _ => None,
        })
        .collect();
    spaced
        .split_whitespace()
        .map(|w| {
            NUMBER_WORDS
                .iter()
                .find(|(word, _)| *word == w)
                .map_or_else(|| w.to_string(), |(_, digits)| (*digits).to_string())
        })
        .collect()
}

/// Word-level edit counts of a hypothesis against a reference, for summing over a corpus
/// (corpus WER is total edits over total reference words, not a mean of per-clip rates).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WordErrors {
    /// Substitutions + deletions + insertions (the Levenshtein distance in words).
    pub edits: usize,
    /// Words in the normalised reference.
    pub reference_words: usize,
}

impl WordErrors {
    /// The error rate; 0 for an empty reference with an empty hypothesis, and the number of
    /// inserted words when only the reference is empty (so it is never NaN).
    pub fn rate(&self) -> f64 {
        if self.reference_words == 0 {
            self.edits as f64
        } else {
            self.edits as f64 / self.reference_words as f64
        }
    }
}

impl std::ops::Add for WordErrors {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self {
            edits: self.edits + other.edits,
            reference_words: self.reference_words + other.reference_words,
        }
    }
}

impl std::iter::Sum for WordErrors {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), |a, b| a + b)
    }
}

/// Counts word edits between `reference` and `hypothesis` after [`normalize_words`].
pub fn word_errors(reference: &str, hypothesis: &str) -> WordErrors {
    let r = normalize_words(reference);
    let h = normalize_words(hypothesis);
    // One row of the Levenshtein table at a time: O(len(h)) memory.
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    let mut cur = vec![0; h.len() + 1];
    for (i, rw) in r.iter().enumerate() {
        cur[0] = i + 1;
        for (j, hw) in h.iter().enumerate() {
            let substitute = prev[j] + usize::from(rw != hw);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    WordErrors {
        edits: prev[h.len()],
        reference_words: r.len(),
    }
}

/// Word error rate of `hypothesis` against `reference` (see [`WordErrors::rate`]).
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    word_errors(reference, hypothesis).rate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_punctuation_and_numbers() {
        assert_eq!(
            normalize_words("No, I haven't. Five-year plan!"),
            ["no", "i", "havent", "5", "year", "plan"]
        );
        assert_eq!(normalize_words("  "), Vec::<String>::new());
    }

    #[test]
    fn identical_texts_score_zero() {
        assert_eq!(
            wer(
                "I have five years of experience.",
                "i have 5 years of experience"
            ),
            0.0
        );
    }

    #[test]
    fn counts_substitutions_deletions_insertions() {
        // One substitution out of four words.
        assert_eq!(wer("a b c d", "a x c d"), 0.25);
        // One deletion.
        assert_eq!(wer("a b c d", "a c d"), 0.25);
        // Two insertions.
        assert_eq!(wer("a b", "a x b y"), 1.0);
        // Everything wrong, and more: WER can exceed 1.
        assert_eq!(wer("a", "x y z"), 3.0);
        assert_eq!(
            word_errors("the race condition", "a race"),
            WordErrors {
                edits: 2,
                reference_words: 3
            }
        );
    }

    #[test]
    fn empty_inputs_are_not_nan() {
        assert_eq!(wer("", ""), 0.0);
        assert_eq!(wer("", "hello there"), 2.0);
        assert_eq!(wer("hello", ""), 1.0);
    }

    #[test]
    fn corpus_sum_weights_by_reference_length() {
        let total: WordErrors = [word_errors("a b c d", "a b c d"), word_errors("x", "y")]
            .into_iter()
            .sum();
        assert_eq!(total.edits, 1);
        assert_eq!(total.reference_words, 5);
        assert!((total.rate() - 0.2).abs() < 1e-12);
    }
}
