//! Where speech may be cut: the clauses of a sentence (Piper's runs are made of them) and
//! the first pieces of a response (spoken first, so the first audio comes sooner).

/// A first sentence this long (words) is cut early even without an opener.
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

/// The most words an opener ("Okay,", "I see,") has.
const OPENER_WORDS: usize = 2;

/// Where the pieces of a response's first sentence end, as byte offsets into it (the last
/// piece ends with the sentence); empty keeps the sentence whole. The candidate is waiting
/// for the first audio, and the rest is synthesized while the first piece plays.
///
/// - An opener of one or two words with a comma ("Okay,", "Thanks,", "I see,") is a piece
///   of its own when two or more words follow. Interviewers open most replies with one of a handful of
///   openers, so the voice cache has it ready and the first audio costs no synthesis; what
///   follows is then cut once more by the next rule.
/// - A sentence of [`SPLIT_SENTENCE_WORDS`] or more is cut after a comma, semicolon or colon
///   within its first [`FIRST_PIECE_WORDS`] words, else before the first word there that
///   starts a phrase.
pub fn first_piece_ends(sentence: &str) -> Vec<usize> {
    let words = word_spans(sentence);
    let opener = words
        .iter()
        .take(OPENER_WORDS)
        .position(|(start, end)| sentence[*start..*end].ends_with(','))
        .filter(|last| words.len() - last > 2);
    let Some(last) = opener else {
        return long_sentence_cut(sentence, &words).into_iter().collect();
    };
    let rest = &words[last + 1..];
    std::iter::once(words[last].1)
        .chain(long_sentence_cut(sentence, rest))
        .collect()
}

/// The cut of a long run of `words` (spans in `sentence`), if it has one early.
fn long_sentence_cut(sentence: &str, words: &[(usize, usize)]) -> Option<usize> {
    if words.len() < SPLIT_SENTENCE_WORDS {
        return None;
    }
    let at_comma = words
        .iter()
        .skip(1)
        .take(FIRST_PIECE_WORDS - 1)
        .find(|(start, end)| sentence[*start..*end].ends_with([',', ';', ':']))
        .map(|(_, end)| *end);
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

    fn pieces(s: &str) -> Vec<&str> {
        let mut start = 0;
        let mut out = Vec::new();
        for end in first_piece_ends(s).into_iter().chain([s.len()]) {
            out.push(s[start..end].trim());
            start = end;
        }
        out
    }

    #[test]
    fn a_first_sentence_is_cut_after_its_opener_then_after_an_early_clause_or_before_a_phrase() {
        let s = "Hi there, thanks for joining, I'm Sam from the platform team.";
        assert_eq!(
            pieces(s),
            [
                "Hi there,",
                "thanks for joining,",
                "I'm Sam from the platform team."
            ]
        );
        assert_eq!(
            pieces("I see, remote teams, interesting."),
            ["I see,", "remote teams, interesting."]
        );
        let s = "Hi, thanks for joining, I'm Sam from the platform team.";
        assert_eq!(
            pieces(s),
            [
                "Hi,",
                "thanks for joining,",
                "I'm Sam from the platform team."
            ]
        );
        let s = "Great, so tell me, how did you measure whether the change worked?";
        assert_eq!(
            pieces(s),
            [
                "Great,",
                "so tell me,",
                "how did you measure whether the change worked?"
            ]
        );
        // No early comma: before the first word that starts a phrase.
        let s = "Tell me about a time you worked closely with a team.";
        assert_eq!(
            pieces(s),
            ["Tell me", "about a time you worked closely with a team."]
        );
        let s = "Okay, you have five years of experience with Rust, got it.";
        assert_eq!(
            pieces(s),
            [
                "Okay,",
                "you have five years",
                "of experience with Rust, got it."
            ]
        );
        assert_eq!(
            pieces("Thanks, that helps a lot."),
            ["Thanks,", "that helps a lot."]
        );
        // Short sentences stay whole, and so do long ones with no place to cut early.
        assert_eq!(pieces("Thanks, noted."), ["Thanks, noted."]);
        assert_eq!(pieces("Understood, thanks."), ["Understood, thanks."]);
        let s = "Describe one particularly memorable debugging session you led.";
        assert_eq!(pieces(s), [s]);
    }
}
