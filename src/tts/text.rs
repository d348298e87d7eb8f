//! Where speech may be cut: the clauses of a sentence (Piper's runs are made of them) and
//! the first clause of a long sentence (spoken first, so the first audio comes sooner).

/// A first sentence this long (words) is spoken clause first.
const SPLIT_SENTENCE_WORDS: usize = 8;

/// Marks that end a clause when a space or the end follows.
pub(super) fn is_mark(c: char) -> bool {
    matches!(c, ',' | '.' | '?' | '!' | ';' | ':')
}

/// Cuts `text` after each clause-ending mark followed by a space or the end: the clause's
/// text and the mark (which Piper voices speak as a pause or a cadence).
pub(super) fn clauses(text: &str) -> Vec<(String, Option<char>)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if is_mark(c) && chars.peek().is_none_or(|n| n.is_whitespace()) {
            push_clause(&mut out, &mut current, Some(c));
        } else {
            current.push(c);
        }
    }
    push_clause(&mut out, &mut current, None);
    out
}

fn push_clause(out: &mut Vec<(String, Option<char>)>, current: &mut String, end: Option<char>) {
    let text = current.trim();
    // "Really?!", "Wait...": the first of the marks ends the clause.
    let words = text.trim_end_matches(is_mark);
    let end = text[words.len()..].chars().next().or(end);
    let text = words.trim_end();
    if !text.is_empty() {
        out.push((text.to_owned(), end));
    } else if let (Some(end), Some(last)) = (end, out.last_mut()) {
        // Marks with nothing before them belong to the clause before.
        last.1 = last.1.or(Some(end));
    }
    current.clear();
}

/// The most words spoken before the first cut of a long first sentence: about 1.2 s of
/// speech, which Piper synthesizes in about 150 ms on one core.
const FIRST_PIECE_WORDS: usize = 5;

/// Words a phrase may start with: a first sentence without an early comma is cut before
/// one of them, where a speaker could take a breath ("Tell me | about a time ...").
const PHRASE_STARTS: [&str; 22] = [
    "about", "after", "and", "as", "at", "because", "before", "but", "by", "for", "from", "how",
    "if", "in", "of", "on", "or", "so", "that", "to", "when", "with",
];

/// Where a long sentence's first piece ends: after a comma, semicolon or colon within its
/// first [`FIRST_PIECE_WORDS`] words (past a lone opener such as "So," or "Great,", which
/// spoken alone sounds clipped and gains nothing), else before the first phrase-starting
/// word there. `None` keeps the sentence whole (it is short, or has no such place).
pub fn first_clause_end(sentence: &str) -> Option<usize> {
    if sentence.split_whitespace().count() < SPLIT_SENTENCE_WORDS {
        return None;
    }
    let words = word_spans(sentence);
    let at_comma = words
        .iter()
        .enumerate()
        .skip(1)
        .take(FIRST_PIECE_WORDS - 1)
        .find(|(_, (start, end))| sentence[*start..*end].ends_with([',', ';', ':']))
        .map(|(_, (_, end))| *end);
    let before_phrase = || {
        words
            .iter()
            .enumerate()
            .skip(2)
            .take(FIRST_PIECE_WORDS - 1)
            .find(|(_, (start, end))| {
                let word = sentence[*start..*end].to_lowercase();
                PHRASE_STARTS.contains(&word.as_str())
            })
            .map(|(i, _)| words[i - 1].1)
    };
    at_comma.or_else(before_phrase)
}

/// The byte spans of `text`'s words.
fn word_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_end_at_punctuation_followed_by_a_space() {
        assert_eq!(
            clauses("Well, I led it. Version 2.5 shipped; really?! Yes"),
            vec![
                ("Well".into(), Some(',')),
                ("I led it".into(), Some('.')),
                ("Version 2.5 shipped".into(), Some(';')),
                ("really".into(), Some('?')),
                ("Yes".into(), None),
            ]
        );
        assert!(clauses("  . , ").is_empty());
        assert_eq!(clauses("Wait..."), vec![("Wait".into(), Some('.'))]);
        assert_eq!(
            clauses("So , yes"),
            vec![("So".into(), Some(',')), ("yes".into(), None)]
        );
    }

    fn first_piece(s: &str) -> Option<&str> {
        first_clause_end(s).map(|i| &s[..i])
    }

    #[test]
    fn a_long_first_sentence_is_cut_after_an_early_clause_or_before_a_phrase() {
        let s = "Hi there, thanks for joining, I'm Sam from the platform team.";
        assert_eq!(first_piece(s), Some("Hi there,"));
        // A one-word opener is not a clause of its own: the next comma is used.
        let s = "Great, so tell me, how did you measure whether the change worked?";
        assert_eq!(first_piece(s), Some("Great, so tell me,"));
        // No early comma: before the first word that starts a phrase.
        let s = "Tell me about a time you worked closely with a team.";
        assert_eq!(first_piece(s), Some("Tell me"));
        let s = "Okay, you have five years of experience with Rust, got it.";
        assert_eq!(first_piece(s), Some("Okay, you have five years"));
        // Short sentences stay whole, and so do long ones with no place to cut early.
        assert_eq!(first_piece("Thanks, that helps a lot."), None);
        assert_eq!(
            first_piece("Describe one particularly memorable debugging session you led."),
            None
        );
    }
}
