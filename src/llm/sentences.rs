//! Sentence splitting for streamed LLM text, so synthesis can start on the first sentence
//! while the model is still generating the rest.

/// Past this many bytes without a sentence end, the text is cut at a comma or space anyway,
/// so a run-on answer does not hold back the audio.
pub const DEFAULT_MAX_SENTENCE: usize = 200;

/// Titles and Latin abbreviations that are never a sentence end, compared lowercased and
/// without their final dot.
const NEVER_FINAL: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "e.g", "i.e", "cf", "approx", "no",
    "fig", "mt",
];

/// Abbreviations that often end a sentence too: they end one only when the next word
/// starts with a capital letter.
const MAYBE_FINAL: &[&str] = &["etc", "inc", "ltd", "co", "corp", "al"];

/// Closing characters that belong to the sentence before them.
fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | ')' | ']' | '}' | '\u{201d}' | '\u{2019}' | '\u{bb}' | '*' | '_'
    )
}

fn is_terminal(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '\u{2026}')
}

/// Splits streamed text into sentences.
///
/// A sentence ends at `.`, `!`, `?` or `…` (with any closing quotes or brackets) followed by
/// whitespace, and at every line break. A `.` does not end a sentence inside a number (`3.5`),
/// after a list number at the start of a line (`1.`), after an initial (`J.`), or after common
/// abbreviations (`e.g.`, `Mr.`, `etc.` unless a capitalised word follows). Text that runs
/// past the length limit is cut at its last comma-like mark, or else its last space.
///
/// Returned sentences are trimmed; pieces with no letter or digit (a stray `-` or `**`) are
/// dropped, since there is nothing to say.
#[derive(Debug, Clone)]
pub struct SentenceSplitter {
    /// Text received but not yet returned.
    buf: String,
    /// The run-on limit in bytes.
    max_len: usize,
}

impl Default for SentenceSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl SentenceSplitter {
    /// A splitter with the default run-on limit ([`DEFAULT_MAX_SENTENCE`]).
    pub fn new() -> Self {
        Self::with_max_len(DEFAULT_MAX_SENTENCE)
    }

    /// A splitter that cuts run-on text after about `max_len` bytes (at least 16).
    pub fn with_max_len(max_len: usize) -> Self {
        Self {
            buf: String::new(),
            max_len: max_len.max(16),
        }
    }

    /// Appends a text delta; returns the sentences it completed, in order.
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        self.buf.push_str(delta);
        let mut out = Vec::new();
        while let Some(end) = self.find_end() {
            let rest = self.buf.split_off(end);
            let sentence = std::mem::replace(&mut self.buf, rest);
            push_piece(&mut out, &sentence);
        }
        out
    }

    /// Ends the stream; returns what is left, if there is anything to say.
    pub fn finish(&mut self) -> Option<String> {
        let mut out = Vec::new();
        push_piece(&mut out, &std::mem::take(&mut self.buf));
        out.pop()
    }

    /// The byte offset just past the first complete sentence in the buffer, if any.
    fn find_end(&self) -> Option<usize> {
        let buf = self.buf.as_str();
        let mut chars = buf.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if i > self.max_len {
                break;
            }
            if c == '\n' {
                return Some(i + 1);
            }
            if !is_terminal(c) {
                continue;
            }
            // Swallow "?!", "..." and closing quotes/brackets into this sentence.
            let mut end = i + c.len_utf8();
            while let Some(&(j, next)) = chars.peek() {
                if is_terminal(next) || is_closer(next) {
                    end = j + next.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let after = &buf[end..];
            let Some(next) = after.chars().next() else {
                // Cannot tell yet: "3." may become "3.5".
                return None;
            };
            if !next.is_whitespace() {
                continue;
            }
            if c == '.' && i == end - 1 {
                match self.dot_decision(i, after) {
                    Decision::Split => {}
                    Decision::Keep => continue,
                    Decision::Wait => return None,
                }
            }
            return Some(end);
        }
        if buf.len() > self.max_len {
            return Some(run_on_cut(buf, self.max_len));
        }
        None
    }

    /// Whether the lone `.` at byte `dot` ends a sentence; `after` is the text after it.
    fn dot_decision(&self, dot: usize, after: &str) -> Decision {
        let before = &self.buf[..dot];
        let word_start = before
            .rfind(|c: char| c.is_whitespace() || c == '(' || c == '"')
            .map_or(0, |i| {
                i + before[i..].chars().next().map_or(1, char::len_utf8)
            });
        let word = &before[word_start..];
        let lower = word.to_lowercase();
        if NEVER_FINAL.contains(&lower.as_str()) {
            return Decision::Keep;
        }
        // Initials and dotted acronyms: "J.", "U.S."
        if word.split('.').all(|part| {
            let mut cs = part.chars();
            matches!((cs.next(), cs.next()), (Some(c), None) if c.is_uppercase())
        }) {
            return Decision::Keep;
        }
        // A list number at the start of a line: "1. First, ..."
        let line_start = before[..word_start].rfind('\n').map_or(0, |i| i + 1);
        if !word.is_empty()
            && word.chars().all(|c| c.is_ascii_digit())
            && before[line_start..word_start].trim().is_empty()
        {
            return Decision::Keep;
        }
        if MAYBE_FINAL.contains(&lower.as_str()) {
            return match after.trim_start().chars().next() {
                None => Decision::Wait,
                Some(c) if c.is_uppercase() => Decision::Split,
                Some(_) => Decision::Keep,
            };
        }
        Decision::Split
    }
}

enum Decision {
    Split,
    Keep,
    Wait,
}

/// Where to cut text that has no sentence end within `max_len` bytes: after the last
/// comma-like mark in the second half of the window, else after the last space, else at
/// the limit itself (on a character boundary).
fn run_on_cut(buf: &str, max_len: usize) -> usize {
    let mut limit = max_len;
    while !buf.is_char_boundary(limit) {
        limit -= 1;
    }
    let window = &buf[..limit];
    let comma = window
        .char_indices()
        .rev()
        .find(|&(i, c)| {
            matches!(c, ',' | ';' | ':' | '\u{2014}' | '\u{2013}')
                && i >= max_len / 2
                && window[i + c.len_utf8()..].starts_with(char::is_whitespace)
        })
        .map(|(i, c)| i + c.len_utf8());
    let space = window
        .char_indices()
        .rev()
        .find(|&(i, c)| c.is_whitespace() && i > 0)
        .map(|(i, _)| i);
    comma.or(space).unwrap_or(limit)
}

fn push_piece(out: &mut Vec<String>, piece: &str) {
    let piece = piece.trim();
    if piece.chars().any(char::is_alphanumeric) {
        out.push(piece.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_whole(text: &str) -> Vec<String> {
        let mut s = SentenceSplitter::new();
        let mut out = s.push(text);
        out.extend(s.finish());
        out
    }

    /// Feeds `text` in word-sized deltas with their leading space, like an LLM.
    fn split_tokens(text: &str) -> Vec<String> {
        let mut s = SentenceSplitter::new();
        let mut out = Vec::new();
        let mut start = 0;
        for (i, c) in text.char_indices() {
            if c == ' ' && i > start {
                out.extend(s.push(&text[start..i]));
                start = i;
            }
        }
        out.extend(s.push(&text[start..]));
        out.extend(s.finish());
        out
    }

    fn split_chars(text: &str) -> Vec<String> {
        let mut s = SentenceSplitter::new();
        let mut out = Vec::new();
        let mut buf = [0u8; 4];
        for c in text.chars() {
            out.extend(s.push(c.encode_utf8(&mut buf)));
        }
        out.extend(s.finish());
        out
    }

    fn check(text: &str, expected: &[&str]) {
        assert_eq!(split_whole(text), expected, "whole: {text:?}");
        assert_eq!(split_tokens(text), expected, "tokens: {text:?}");
        assert_eq!(split_chars(text), expected, "chars: {text:?}");
    }

    #[test]
    fn splits_on_terminal_punctuation() {
        check(
            "Hello there. How are you? Great!  Next",
            &["Hello there.", "How are you?", "Great!", "Next"],
        );
    }

    #[test]
    fn keeps_closing_quotes_and_brackets() {
        check(
            "He said \"stop.\" Then (quietly.) we left?! Done...",
            &[
                "He said \"stop.\"",
                "Then (quietly.)",
                "we left?!",
                "Done...",
            ],
        );
    }

    #[test]
    fn does_not_split_decimals_abbreviations_or_initials() {
        check(
            "It took 3.5 days, e.g. a long time. Dr. Smith and J. R. R. Tolkien agreed. \
             We used Rust, Go, etc. and it worked in the U.S. too. Fine.",
            &[
                "It took 3.5 days, e.g. a long time.",
                "Dr. Smith and J. R. R. Tolkien agreed.",
                "We used Rust, Go, etc. and it worked in the U.S. too.",
                "Fine.",
            ],
        );
    }

    #[test]
    fn etc_before_a_capital_ends_the_sentence() {
        check(
            "Rust, Go, etc. Then more.",
            &["Rust, Go, etc.", "Then more."],
        );
    }

    #[test]
    fn a_sentence_ending_in_a_number_still_splits() {
        check(
            "I have been coding since 2015. Mostly Rust.",
            &["I have been coding since 2015.", "Mostly Rust."],
        );
    }

    #[test]
    fn splits_on_newlines_and_keeps_list_numbers() {
        check(
            "Two things:\n\n1. First one\n2. Second one\n- \n**Bold** end",
            &[
                "Two things:",
                "1. First one",
                "2. Second one",
                "**Bold** end",
            ],
        );
    }

    #[test]
    fn waits_for_the_character_after_a_dot() {
        let mut s = SentenceSplitter::new();
        assert!(s.push("Version 3.").is_empty());
        assert!(s.push("5 is out").is_empty());
        assert_eq!(s.push(". Yes"), ["Version 3.5 is out."]);
        assert_eq!(s.finish().as_deref(), Some("Yes"));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn cuts_run_on_text_at_a_comma_then_a_space() {
        let clause = "and then we kept going with the work";
        let long = format!("{clause}, {clause}, {clause}, {clause}, {clause}, {clause}, {clause}");
        let pieces = split_tokens(&long);
        assert!(pieces.len() >= 2, "{pieces:?}");
        for p in &pieces {
            assert!(p.len() <= DEFAULT_MAX_SENTENCE, "{p}");
        }
        assert!(pieces[0].ends_with(','), "{pieces:?}");
        assert_eq!(pieces.join(" "), long);

        let words = "word ".repeat(100);
        let pieces = split_whole(&words);
        assert!(
            pieces
                .iter()
                .all(|p| p.len() <= DEFAULT_MAX_SENTENCE && !p.ends_with("wor"))
        );
        assert_eq!(pieces.join(" "), words.trim());

        let blob = "x".repeat(450);
        let pieces = split_whole(&blob);
        assert_eq!(pieces.concat(), blob);
    }

    #[test]
    fn unicode_and_empty_input() {
        check(
            "Ça va? Très bien… Merci.",
            &["Ça va?", "Très bien…", "Merci."],
        );
        check("", &[]);
        check("   \n\n  ", &[]);
        let long = "é".repeat(300);
        assert_eq!(split_whole(&long).concat(), long);
    }
}
