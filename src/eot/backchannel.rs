//! Backchannels: what a listener says to show they are following ("mm-hmm", "okay",
//! "right") rather than to take the floor, judged from whisper's transcript of speech over
//! the interviewer.

use super::text::words;

/// Phrases a listener says without asking for the floor, as lower-case words. Whisper
/// spells the same sound several ways ("mm-hmm", "mhm", "mm hmm"), so each spelling is here.
const BACKCHANNELS: &[&[&str]] = &[
    &["mm-hmm"],
    &["mm", "hmm"],
    &["mhm"],
    &["mmhmm"],
    &["mm"],
    &["hmm"],
    &["uh-huh"],
    &["uh", "huh"],
    &["okay"],
    &["ok"],
    &["right"],
    // whisper's usual spelling of a lone "right"
    &["write"],
    &["yeah"],
    &["yes"],
    &["yep"],
    &["yup"],
    &["sure"],
    &["i", "see"],
    &["got", "it"],
    &["all", "right"],
    &["alright"],
    &["cool"],
    &["great"],
    &["oh"],
    &["ah"],
    &["aha"],
    &["makes", "sense"],
    &["that", "makes", "sense"],
    &["thank", "you"],
    &["thanks"],
    // Whisper's usual reading of a cough or a breath.
    &["you"],
];

/// Longest backchannel kept as one, in words ("yeah, yeah, okay, got it" is still one).
const MAX_WORDS: usize = 6;

/// Whether `transcript` (whisper's words for speech over the interviewer) is a backchannel
/// or a sound without words (a cough, a laugh: whisper writes "[coughs]", "(laughs)" or
/// nothing), as opposed to an interruption that takes the floor.
pub fn is_backchannel(transcript: &str) -> bool {
    let mut spoken = words(&without_annotations(transcript));
    // Whisper loops on a short clip ("Right. Right. Right. …" to the token cap): one word
    // said once. A candidate who really repeats a word a dozen times runs past
    // BACKCHANNEL_MAX_MS and takes the floor by its length.
    spoken.dedup();
    if spoken.len() > MAX_WORDS {
        return false;
    }
    let mut rest: &[String] = &spoken;
    while !rest.is_empty() {
        if is_hum(&rest[0]) {
            rest = &rest[1..];
            continue;
        }
        let matched = BACKCHANNELS
            .iter()
            .filter(|p| p.len() <= rest.len() && p.iter().zip(rest).all(|(a, b)| a == b))
            .map(|p| p.len())
            .max();
        match matched {
            Some(n) => rest = &rest[n..],
            None => return false,
        }
    }
    true
}

/// A hum however whisper spells it: "mmm", "hmmm", "mhmm", "mm-m-m" (only m, h and
/// hyphens, with an m), which no list of spellings covers.
fn is_hum(word: &str) -> bool {
    word.contains('m') && word.chars().all(|c| matches!(c, 'm' | 'h' | '-'))
}

/// `text` without whisper's sound annotations: `[BLANK_AUDIO]`, `(coughs)`, `*laughs*`.
fn without_annotations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut closing: Option<char> = None;
    for c in text.chars() {
        match closing {
            Some(end) if c == end => closing = None,
            Some(_) => {}
            None => match c {
                '[' => closing = Some(']'),
                '(' => closing = Some(')'),
                '*' => closing = Some('*'),
                _ => out.push(c),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backchannels_in_whispers_spellings_are_backchannels() {
        for t in [
            "Mm-hmm.",
            "Mhm.",
            "mm hmm",
            "Uh-huh.",
            "Okay.",
            "OK.",
            "Right.",
            "Yeah.",
            "Yeah, yeah.",
            "I see.",
            "Sure.",
            "Got it.",
            "All right.",
            "Okay, got it.",
            "Right, right, right.",
            "Write.",
            "That makes sense.",
            "MMM.",
            "Hmmm?",
            "Mm-m-m-m.",
            "Mmm, okay.",
            // whisper's loop on a short window, cut at the token cap
            "Right. Right. Right. Right. Right. Right. Right. Right. Right. Right. Right",
            "okay okay okay okay okay okay okay",
        ] {
            assert!(is_backchannel(t), "{t}");
        }
    }

    #[test]
    fn sounds_without_words_are_backchannels() {
        for t in [
            "",
            "  ",
            "[BLANK_AUDIO]",
            "(coughs)",
            "*laughs*",
            "[Laughter]",
            "you",
        ] {
            assert!(is_backchannel(t), "{t:?}");
        }
    }

    #[test]
    fn anything_that_takes_the_floor_is_not() {
        for t in [
            "Sorry, can I stop you there?",
            "Wait, let me add something.",
            "Okay, but I think",
            "No.",
            "Actually",
            "Yeah, so the thing is",
            "Can you repeat that?",
            "Yeah yeah yeah, no, yeah, so I think",
            "Uh-uh.",
            "Him.",
            "Hm, no.",
        ] {
            assert!(!is_backchannel(t), "{t}");
        }
    }
}
