//! Whether an answer's words sound finished: the last word, the punctuation whisper gave
//! it, and the question it answers. Pure string rules, a few microseconds a call.

/// Words a finished English clause does not end on: articles, prepositions,
/// conjunctions, possessives, fillers. A pause after one is a thinking pause.
const DANGLING: &[&str] = &[
    "a",
    "an",
    "the",
    "for",
    "of",
    "to",
    "in",
    "on",
    "at",
    "with",
    "from",
    "by",
    "about",
    "into",
    "onto",
    "under",
    "between",
    "through",
    "during",
    "like",
    "as",
    "than",
    "via",
    "and",
    "but",
    "or",
    "nor",
    "so",
    "because",
    "since",
    "although",
    "though",
    "while",
    "if",
    "unless",
    "whether",
    "that",
    "which",
    "who",
    "whom",
    "whose",
    "where",
    "my",
    "our",
    "their",
    "your",
    "his",
    "its",
    "this",
    "these",
    "those",
    "very",
    "some",
    "every",
    "each",
    "um",
    "uh",
    "er",
    "erm",
    "ah",
    "hmm",
    "mm",
    "i",
    "we",
    "they",
    "it's",
    "i'm",
    "we're",
    "they're",
    "there's",
    "let's",
    "basically",
    "actually",
];

/// Verbs that end a clause only after their subject in a short reply ("Yes, I can.").
const AUXILIARIES: &[&str] = &[
    "was", "were", "is", "are", "am", "be", "been", "being", "have", "has", "had", "do", "does",
    "did", "will", "would", "can", "could", "should", "shall", "may", "might", "must",
];

/// Subjects that let an auxiliary end a short reply.
const PRONOUNS: &[&str] = &["i", "we", "they", "you", "he", "she", "it", "that"];

/// Replies of at most this many words may end on "I can", "we did".
const SHORT_REPLY_WORDS: usize = 4;

/// Two-word endings that leave a thought open.
const DANGLING_PAIRS: &[(&str, &str)] = &[
    ("you", "know"),
    ("i", "mean"),
    ("kind", "of"),
    ("sort", "of"),
    ("such", "as"),
    ("and", "then"),
    ("so", "that"),
    ("in", "order"),
];

/// Two-word endings that finish a thought although their last word usually does not.
const FINISHED_PAIRS: &[(&str, &str)] = &[
    ("think", "so"),
    ("hope", "so"),
    ("guess", "so"),
    ("believe", "so"),
    ("as", "well"),
    ("moved", "on"),
    ("went", "on"),
    ("carry", "on"),
    ("follow", "through"),
    ("followed", "through"),
    ("thank", "you"),
];

/// Prompts that ask for a story, not a word: a few words after one are a start.
const OPEN_PROMPTS: &[&str] = &[
    "tell me",
    "describe",
    "walk me",
    "talk about",
    "talk me",
    "example",
    "explain",
    "what was",
    "how did",
    "why",
];

/// Fewest words an answer to an open prompt has before its punctuation is believed.
const OPEN_ANSWER_MIN_WORDS: usize = 6;

/// Probability (0-1) that `transcript` is a finished answer to `question`.
pub fn completeness(transcript: &str, question: Option<&str>) -> f32 {
    let text = transcript.trim();
    let words = words(text);
    if words.is_empty() {
        // No words (a cough, a breath): nothing to answer, nothing to wait for.
        return 0.5;
    }
    if ends_open(text) {
        return 0.1;
    }
    if is_dangling(&words) {
        return 0.05;
    }
    let by_punctuation: f32 = match text.chars().last() {
        Some('?' | '!') => 0.9,
        Some('.') => 0.8,
        Some(',' | ';' | ':') => 0.2,
        _ => 0.45,
    };
    let open = question.is_some_and(is_open_prompt);
    if open && words.len() < OPEN_ANSWER_MIN_WORDS && !is_yes_or_no(&words[0]) {
        return by_punctuation.min(0.5);
    }
    by_punctuation
}

/// Whether the last word (or two) leave the clause open.
fn is_dangling(words: &[String]) -> bool {
    let Some(last) = words.last().map(String::as_str) else {
        return false;
    };
    let prev = words.len().checked_sub(2).map(|i| words[i].as_str());
    if let Some(prev) = prev {
        if FINISHED_PAIRS.contains(&(prev, last)) {
            return false;
        }
        if DANGLING_PAIRS.contains(&(prev, last)) {
            return true;
        }
    }
    if AUXILIARIES.contains(&last) {
        let short_reply = words.len() <= SHORT_REPLY_WORDS || is_yes_or_no(&words[0]);
        return !(short_reply && prev.is_some_and(|p| PRONOUNS.contains(&p)));
    }
    DANGLING.contains(&last)
}

/// Lower-case words with their punctuation stripped.
pub(crate) fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// An ellipsis or a dash: whisper's mark for a voice that trailed off.
fn ends_open(text: &str) -> bool {
    text.ends_with("...") || text.ends_with('…') || text.ends_with('-') || text.ends_with('—')
}

fn is_open_prompt(question: &str) -> bool {
    let q = question.to_lowercase();
    OPEN_PROMPTS.iter().any(|p| q.contains(p))
}

fn is_yes_or_no(word: &str) -> bool {
    matches!(
        word,
        "yes" | "no" | "yeah" | "yep" | "nope" | "sure" | "definitely" | "absolutely"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinking_pauses_are_unfinished() {
        for text in [
            "At my last job I was responsible for",
            "At my last job I was responsible for.",
            "We moved the whole system to the",
            "I chose Kafka because",
            "My first project there was a",
            "I led the team and, um,",
            "It was, you know",
            "We used it as a kind of",
            "At my last job I was",
            "The hardest part of it was",
            "I wanted to improve the...",
        ] {
            assert!(completeness(text, None) <= 0.1, "{text}");
        }
    }

    #[test]
    fn finished_answers_are_complete() {
        for (text, question) in [
            ("Yes.", Some("Have you used Rust?")),
            ("No, I haven't.", Some("Have you used Kubernetes?")),
            ("Yes, I can.", Some("Can you start next month?")),
            ("I enjoyed the work as well.", None),
            ("I think so.", None),
            ("Thank you.", None),
            ("I don't know.", None),
            (
                "I rebuilt the billing service and cut its latency in half.",
                Some("Tell me about a project you are proud of."),
            ),
        ] {
            assert!(completeness(text, question) >= 0.7, "{text}");
        }
    }

    #[test]
    fn a_few_words_after_an_open_prompt_are_only_a_start() {
        let q = Some("Tell me about yourself.");
        assert!(completeness("Hi, my name is Priya.", q) <= 0.5);
        assert!(completeness("Hi, my name is Priya.", None) >= 0.7);
    }

    #[test]
    fn commas_and_missing_punctuation_are_in_between() {
        let comma = completeness("I moved to the platform team,", None);
        let bare = completeness("I moved to the platform team", None);
        assert!(comma < 0.3 && bare > 0.3 && bare < 0.7, "{comma} {bare}");
        assert_eq!(completeness("  ", None), 0.5);
    }
}
