//! Filler words in a transcript: which, and where (so the report can mark them).

use serde::{Deserialize, Serialize};

/// Sounds that are fillers wherever they are.
const HESITATIONS: &[&str] = &["um", "umm", "uh", "uhh", "er", "erm", "ah", "hmm", "mm"];

/// Words that are fillers only when set off from the sentence ("it was, like, hard"; "you
/// know, we"): "I like Rust" and "you know the answer" are not.
const SET_OFF: &[&str] = &["like", "you know", "i mean"];

/// One filler in the transcript.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema, ts_rs::TS, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Filler {
    /// As written in the transcript.
    pub text: String,
    /// Byte range in the transcript.
    pub start: usize,
    /// End of the byte range.
    pub end: usize,
}

/// A word of the text with its byte range and what surrounds it.
struct Word<'a> {
    bare: String,
    start: usize,
    end: usize,
    /// Punctuation right after the word (`,` in "like,").
    trailing: &'a str,
}

fn words(text: &str) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut offset = 0;
    for raw in text.split_inclusive(char::is_whitespace) {
        let token = raw.trim_end();
        let lead = token.len()
            - token
                .trim_start_matches(|c: char| !c.is_alphanumeric())
                .len();
        let core = token[lead..].trim_end_matches(|c: char| !c.is_alphanumeric() && c != '\'');
        if !core.is_empty() {
            let start = offset + lead;
            out.push(Word {
                bare: core.to_lowercase(),
                start,
                end: start + core.len(),
                trailing: &token[lead + core.len()..],
            });
        }
        offset += raw.len();
    }
    out
}

/// The number of words in `text` (fillers count: they were spoken).
pub fn word_count(text: &str) -> usize {
    words(text).len()
}

/// The fillers in `text`, in order.
pub fn find(text: &str) -> Vec<Filler> {
    let words = words(text);
    let mut found = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let hesitation = HESITATIONS.contains(&w.bare.as_str())
            || (w.bare.len() >= 3
                && w.bare.chars().all(|c| "umh".contains(c))
                && w.bare.contains('m'));
        if hesitation {
            found.push(filler(text, &words[i..=i]));
            i += 1;
            continue;
        }
        let set_off = SET_OFF.iter().find_map(|phrase| {
            let n = phrase.split(' ').count();
            let run = words.get(i..i + n)?;
            let same = run.iter().map(|w| w.bare.as_str()).eq(phrase.split(' '));
            let before_comma = i == 0 || words[i - 1].trailing.starts_with(',');
            let after_comma = run
                .last()
                .is_some_and(|w| w.trailing.starts_with([',', '.', '?', '!']));
            (same && (after_comma || (before_comma && i > 0))).then_some(n)
        });
        match set_off {
            Some(n) => {
                found.push(filler(text, &words[i..i + n]));
                i += n;
            }
            None => i += 1,
        }
    }
    found
}

fn filler(text: &str, run: &[Word<'_>]) -> Filler {
    let (start, end) = (run[0].start, run[run.len() - 1].end);
    Filler {
        text: text[start..end].to_string(),
        start,
        end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<String> {
        find(text).into_iter().map(|f| f.text).collect()
    }

    #[test]
    fn hesitations_count_anywhere() {
        assert_eq!(
            texts("Um, I worked on, uh, payments. Hmm."),
            ["Um", "uh", "Hmm"]
        );
        assert_eq!(texts("So ummm yes"), ["ummm"]);
    }

    #[test]
    fn like_and_you_know_count_only_when_set_off() {
        assert_eq!(
            texts("I like Rust and you know the answer."),
            Vec::<String>::new()
        );
        assert_eq!(
            texts("It was, like, hard. You know, we shipped."),
            ["like", "You know"]
        );
        assert_eq!(texts("I mean, it worked"), ["I mean"]);
    }

    #[test]
    fn ranges_point_into_the_text_and_words_are_counted() {
        let text = "Well, um, five years.";
        let f = &find(text)[0];
        assert_eq!(&text[f.start..f.end], "um");
        assert_eq!(word_count(text), 4);
        assert_eq!(word_count(" - "), 0);
    }
}
