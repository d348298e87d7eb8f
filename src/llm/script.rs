//! The scripted interviewer: a deterministic `ChatModel` that walks through a persona's
//! script, so the server works offline and tests get the same words every time.

use std::time::Duration;

use futures_util::stream;

use super::persona::{ECHO, Persona, fill_with};
use super::{ChatMessage, ChatModel, ChatRequest, LlmError, LlmEvent, Role, TokenStream};

/// Words that carry no meaning in an echo: hesitations, hedges and glue. Lowercase.
const FILLER: &[&str] = &[
    "um",
    "umm",
    "uh",
    "uhh",
    "er",
    "erm",
    "hmm",
    "mm",
    "ah",
    "oh",
    "like",
    "so",
    "well",
    "yeah",
    "yes",
    "no",
    "okay",
    "ok",
    "right",
    "basically",
    "actually",
    "literally",
    "just",
    "really",
    "kind",
    "sort",
    "of",
    "and",
    "but",
    "or",
    "then",
    "also",
    "know",
    "mean",
    "guess",
    "think",
    "the",
    "a",
    "an",
    "to",
    "in",
    "on",
    "at",
    "for",
    "with",
    "that",
    "this",
    "it",
    "is",
    "was",
    "be",
    "been",
    "there",
    "here",
    "some",
    "stuff",
    "things",
    "thing",
];

/// Words an echo must not end on: it would sound cut off ("you built a system for").
const BAD_LAST: &[&str] = &[
    "the", "a", "an", "to", "in", "on", "at", "for", "with", "of", "and", "but", "or", "that",
    "my", "your", "our", "their", "is", "was", "are", "were", "be", "very", "so", "from", "by",
    "as", "into", "about", "like", "you", "we", "they", "i", "it",
];

/// Fewest and most words an echo may have.
const ECHO_MIN_WORDS: usize = 3;
const ECHO_MAX_WORDS: usize = 6;

/// A deterministic interviewer that follows the persona's script.
///
/// - No candidate turn yet: the greeting, then the first question.
/// - After the n-th candidate turn: an acknowledgement (rotating through the persona's list,
///   `{echo}` filled with 3 to 6 words from the answer, or an echo-free one when the answer
///   is too short), then question n+1.
/// - After the answer to the last question: an acknowledgement and the closing; after that,
///   the closing alone.
///
/// The text streams in word-sized deltas, each with its leading space, like an LLM.
#[derive(Debug, Clone, Default)]
pub struct ScriptedInterviewer {
    /// Pause before each delta, to imitate a real model's pace in demos and timing tests;
    /// zero just yields to the scheduler between deltas.
    token_delay: Duration,
}

impl ScriptedInterviewer {
    /// An interviewer that streams as fast as it is polled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits `delay` before each delta.
    pub fn with_token_delay(mut self, delay: Duration) -> Self {
        self.token_delay = delay;
        self
    }

    /// The whole reply for this request, as it will be streamed.
    pub fn reply(&self, request: &ChatRequest) -> String {
        let persona = &request.persona;
        let fill = |template: &str| persona.fill(template, &request.context);
        let answered = request
            .history
            .iter()
            .filter(|m| m.role == Role::User)
            .count();
        let questions = &persona.questions;
        if answered == 0 {
            return join(&fill(&persona.greeting), &fill(&questions[0]));
        }
        if answered > questions.len() {
            return fill(&persona.closing);
        }
        let ack = acknowledgement(persona, request, answered);
        let next = match questions.get(answered) {
            Some(question) => fill(question),
            None => fill(&persona.closing),
        };
        join(&ack, &next)
    }
}

impl ChatModel for ScriptedInterviewer {
    fn stream(&self, request: ChatRequest) -> TokenStream {
        let tokens = tokenize(&self.reply(&request));
        let delay = self.token_delay;
        Box::pin(stream::unfold(
            tokens.into_iter(),
            move |mut tokens| async move {
                let token = tokens.next()?;
                if delay.is_zero() {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(delay).await;
                }
                Some((Ok::<_, LlmError>(LlmEvent::Text(token)), tokens))
            },
        ))
    }

    fn name(&self) -> &'static str {
        "scripted"
    }
}

fn join(a: &str, b: &str) -> String {
    format!("{} {}", a.trim(), b.trim()).trim().to_owned()
}

/// The acknowledgement after the `answered`-th answer.
fn acknowledgement(persona: &Persona, request: &ChatRequest, answered: usize) -> String {
    let acks = &persona.acknowledgements;
    let last_answer = request
        .history
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map_or("", |m: &ChatMessage| m.content.as_str());
    let echo = echo_words(last_answer);
    let has_echo = |a: &String| a.contains(&format!("{{{ECHO}}}"));
    let start = (answered - 1) % acks.len();
    // Rotate from `start`; when there is nothing to echo, skip to the next echo-free entry
    // (validation guarantees one exists).
    let template = (0..acks.len())
        .map(|k| &acks[(start + k) % acks.len()])
        .find(|a| echo.is_some() || !has_echo(a))
        .unwrap_or(&acks[start]);
    fill_with(template, |name| {
        if name == ECHO {
            echo.as_deref()
        } else {
            request
                .context
                .get(name)
                .or_else(|| persona.defaults.get(name))
                .map(String::as_str)
        }
    })
}

/// Picks 3 to 6 meaningful words from an answer, turned to the second person ("I built" ->
/// "you built"), from the clause with the most non-filler words. `None` if no clause has
/// enough.
pub(crate) fn echo_words(answer: &str) -> Option<String> {
    let cleaned = strip_bracketed(answer);
    let mut best: Option<(usize, Vec<String>)> = None;
    for clause in cleaned.split(|c: char| ",.;:!?\u{2014}\u{2013}()\"".contains(c) || c == '\n') {
        let words: Vec<String> = clause
            .split_whitespace()
            .map(|w| {
                w.chars()
                    .filter(|c| c.is_alphanumeric() || *c == '\'' || *c == '-' || *c == '+')
                    .collect::<String>()
            })
            .filter(|w| !w.is_empty() && w.chars().any(char::is_alphanumeric))
            .collect();
        let words = trim_words(words);
        let meaningful = words
            .iter()
            .filter(|w| !FILLER.contains(&w.to_lowercase().as_str()))
            .count();
        if best.as_ref().is_none_or(|(score, _)| meaningful > *score) {
            best = Some((meaningful, words));
        }
    }
    let (score, words) = best?;
    if score < 2 {
        return None;
    }
    let mut words = words;
    words.truncate(ECHO_MAX_WORDS);
    let words = trim_words(words);
    if words.len() < ECHO_MIN_WORDS {
        return None;
    }
    Some(reflect(&words).join(" "))
}

/// Drops filler from the front and dangling words from the end.
fn trim_words(mut words: Vec<String>) -> Vec<String> {
    let is = |list: &[&str], w: &str| list.contains(&w.to_lowercase().as_str());
    let first = words
        .iter()
        .position(|w| !is(FILLER, w) || is(&["i", "we", "my"], w))
        .unwrap_or(words.len());
    words.drain(..first);
    while words
        .last()
        .is_some_and(|w| is(BAD_LAST, w) || is(FILLER, w))
    {
        words.pop();
    }
    words
}

/// Whisper writes non-speech as "[BLANK_AUDIO]" or "(laughs)"; none of it should be echoed.
fn strip_bracketed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '[' | '(' | '{' | '<' => depth += 1,
            ']' | ')' | '}' | '>' => {
                depth = depth.saturating_sub(1);
                out.push(' ');
            }
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Swaps first person for second person so the interviewer can say the words back.
fn reflect(words: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(words.len());
    let mut after_i = false;
    for word in words {
        let lower = word.to_lowercase();
        let swapped = match lower.as_str() {
            "i" | "me" => "you",
            "my" => "your",
            "mine" => "yours",
            "myself" => "yourself",
            "i'm" => "you're",
            "i've" => "you've",
            "i'd" => "you'd",
            "i'll" => "you'll",
            "am" if after_i => "are",
            "was" if after_i => "were",
            _ => "",
        };
        after_i = lower == "i";
        if swapped.is_empty() {
            out.push(word.clone());
        } else {
            out.push(swapped.to_owned());
        }
    }
    out
}

/// Splits text into word-sized deltas that concatenate back to it, each word carrying the
/// whitespace before it.
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut start = 0;
    let mut prev_space = false;
    for (i, c) in text.char_indices() {
        let space = c.is_whitespace();
        if space && !prev_space && i > start {
            tokens.push(text[start..i].to_owned());
            start = i;
        }
        prev_space = space;
    }
    if start < text.len() {
        tokens.push(text[start..].to_owned());
    }
    tokens
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use futures_util::StreamExt;

    use super::*;
    use crate::llm::PersonaSet;

    fn request(history: Vec<ChatMessage>) -> ChatRequest {
        let persona = PersonaSet::builtin()
            .get("interviewer")
            .expect("built-in persona");
        let mut context = BTreeMap::new();
        context.insert("candidate".into(), "Ada".into());
        ChatRequest {
            persona,
            context,
            history,
        }
    }

    async fn collect(model: &ScriptedInterviewer, req: ChatRequest) -> Vec<String> {
        model
            .stream(req)
            .map(|t| match t.expect("scripted model never fails") {
                LlmEvent::Text(text) => text,
                LlmEvent::Usage(_) => String::new(),
            })
            .collect()
            .await
    }

    #[tokio::test]
    async fn greets_then_asks_the_first_question() {
        let model = ScriptedInterviewer::new();
        let req = request(vec![]);
        let persona = Arc::clone(&req.persona);
        let tokens = collect(&model, req).await;
        let text = tokens.concat();
        assert!(text.starts_with("Hi Ada, thanks for joining."), "{text}");
        assert!(
            text.contains("software engineer role at our company"),
            "{text}"
        );
        assert!(text.ends_with(&persona.questions[0]), "{text}");
        assert!(tokens.len() > 10);
        assert!(tokens[1..].iter().all(|t| t.starts_with(' ')), "{tokens:?}");
        assert!(tokens.iter().all(|t| t.trim().split(' ').count() == 1));
    }

    #[tokio::test]
    async fn acknowledges_with_an_echo_then_asks_the_next_question() {
        let model = ScriptedInterviewer::new();
        let history = vec![
            ChatMessage::assistant("Hi. Tell me about your experience."),
            ChatMessage::user(
                "Um, so, I've been, like, working as a backend developer for five years, mostly in Rust.",
            ),
        ];
        let req = request(history);
        let persona = Arc::clone(&req.persona);
        let text = collect(&model, req).await.concat();
        assert_eq!(
            text,
            format!(
                "Okay, working as a backend developer, got it. {}",
                persona.questions[1]
            )
        );
    }

    #[tokio::test]
    async fn short_answers_get_an_acknowledgement_without_echo() {
        let model = ScriptedInterviewer::new();
        for answer in ["", "Yes.", "um, uh, okay", "[BLANK_AUDIO]"] {
            let req = request(vec![
                ChatMessage::assistant("Q1"),
                ChatMessage::user(answer),
            ]);
            let text = collect(&model, req).await.concat();
            assert!(
                text.starts_with("Thanks, that's helpful."),
                "{answer:?} -> {text}"
            );
        }
    }

    #[tokio::test]
    async fn walks_the_whole_script_then_closes() {
        let model = ScriptedInterviewer::new();
        let base = request(vec![]);
        let persona = Arc::clone(&base.persona);
        let mut history = Vec::new();
        let mut replies = Vec::new();
        for _ in 0..=persona.questions.len() + 1 {
            let req = ChatRequest {
                history: history.clone(),
                ..base.clone()
            };
            let reply = collect(&model, req).await.concat();
            history.push(ChatMessage::assistant(reply.clone()));
            history.push(ChatMessage::user(
                "I designed a caching layer that cut latency in half.",
            ));
            replies.push(reply);
        }
        for (i, q) in persona.questions.iter().enumerate() {
            let q = persona.fill(q, &base.context);
            assert!(replies[i].ends_with(&q), "turn {i}: {}", replies[i]);
        }
        let n = persona.questions.len();
        assert!(replies[n].ends_with(&persona.closing), "{}", replies[n]);
        assert!(
            replies[n].contains("you designed a caching layer"),
            "{}",
            replies[n]
        );
        assert_eq!(replies[n + 1], persona.closing);
        assert!(replies.iter().all(|r| !r.contains('{')));
    }

    #[tokio::test]
    async fn token_delay_paces_the_stream() {
        let delay = Duration::from_millis(2);
        let model = ScriptedInterviewer::new().with_token_delay(delay);
        let start = tokio::time::Instant::now();
        let tokens = collect(&model, request(vec![])).await;
        assert!(start.elapsed() >= delay * tokens.len() as u32);
    }

    #[test]
    fn echo_picks_meaningful_words() {
        assert_eq!(
            echo_words("Well, I built a payment system in Rust, and it was fun.").as_deref(),
            Some("you built a payment system")
        );
        assert_eq!(
            echo_words("My biggest project was a compiler for a toy language").as_deref(),
            Some("your biggest project was a compiler")
        );
        assert_eq!(echo_words("yeah I think so"), None);
        assert_eq!(echo_words("{role} {echo} <b>"), None);
    }

    #[test]
    fn tokens_concatenate_back() {
        let text = "Hello  there,\nfriend. Ok";
        let tokens = tokenize(text);
        assert_eq!(tokens.concat(), text);
        assert_eq!(tokens, ["Hello", "  there,", "\nfriend.", " Ok"]);
    }
}
