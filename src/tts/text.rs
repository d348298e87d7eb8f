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

/// Where the first clause of a long sentence ends (after its comma, semicolon or colon),
/// when both sides of the cut have at least two words: a lone "So," or "Great," spoken on
/// its own sounds clipped and gains nothing.
pub fn first_clause_end(sentence: &str) -> Option<usize> {
    if sentence.split_whitespace().count() < SPLIT_SENTENCE_WORDS {
        return None;
    }
    let mut words_before = 0;
    let mut at = 0;
    for piece in sentence.split_inclusive(char::is_whitespace) {
        let word = piece.trim_end();
        let end = at + word.len();
        at += piece.len();
        if word.is_empty() {
            continue;
        }
        words_before += 1;
        if words_before >= 2 && word.ends_with([',', ';', ':']) {
            let rest_words = sentence[end..].split_whitespace().count();
            return (rest_words >= 2).then_some(end);
        }
    }
    None
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

    #[test]
    fn a_long_first_sentence_is_cut_after_its_first_real_clause() {
        let s = "Hi there, thanks for joining, I'm Sam from the platform team.";
        assert_eq!(first_clause_end(s).map(|i| &s[..i]), Some("Hi there,"));
        // A one-word opener is not a clause of its own: the next comma is used.
        let s = "Great, so tell me, how did you measure whether the change worked?";
        assert_eq!(
            first_clause_end(s).map(|i| &s[..i]),
            Some("Great, so tell me,")
        );
        // Short sentences and sentences without a clause stay whole.
        assert_eq!(first_clause_end("Thanks, that helps a lot."), None);
        assert_eq!(
            first_clause_end("Tell me about a time you worked closely with a team."),
            None
        );
    }
}
