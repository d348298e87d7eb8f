//! Language models: the `ChatModel` trait, the scripted interviewer, the OpenAI-compatible
//! streaming client, interviewer personas, and the sentence splitter that feeds synthesis.
//!
//! # Cancellation
//! A [`ChatModel`] never sees a cancellation token. The caller owns the turn's token and
//! `select!`s on it while polling the [`TokenStream`]; to cancel, it simply drops the stream.
//! Every implementation must make dropping the stream enough: no detached tasks, and for HTTP
//! models the in-flight request (and its connection) is closed by the drop.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use serde::{Deserialize, Serialize};

pub use crate::protocol::TokenUsage;

pub mod openai;
pub mod persona;
pub mod script;
pub mod sentences;
pub mod sse;

pub use openai::OpenAiChat;
pub use persona::{Persona, PersonaError, PersonaSet};
pub use script::ScriptedInterviewer;
pub use sentences::SentenceSplitter;

/// Who said a message, in the OpenAI chat vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model; built from the persona, never stored in history.
    System,
    /// The candidate (a final transcript).
    User,
    /// The interviewer (the text the candidate actually heard).
    Assistant,
}

/// The interviewer's last question in `history`: the last sentence it said.
pub fn last_question(history: &[ChatMessage]) -> Option<String> {
    let said = history
        .iter()
        .rev()
        .find(|m| m.role == Role::Assistant)
        .map(|m| m.content.trim())?;
    // Look for a sentence end before the last character (a char boundary, whatever it is).
    let last = said.char_indices().last().map_or(0, |(i, _)| i);
    let cut = said[..last].rfind(['.', '?', '!']).map_or(0, |i| i + 1);
    Some(said[cut..].trim().to_owned()).filter(|q| !q.is_empty())
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// What was said, as plain text.
    pub content: String,
}

impl ChatMessage {
    /// A candidate message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    /// An interviewer message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// Everything a model needs to produce the interviewer's next turn.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// The interviewer persona of this call; shared, because it is the same for every turn.
    pub persona: Arc<Persona>,
    /// Placeholder values for the persona's templates (`role`, `company`, `candidate`, ...);
    /// keys missing here fall back to the persona's `[defaults]`.
    pub context: BTreeMap<String, String>,
    /// User/assistant turns so far: empty for the greeting turn, otherwise it ends with the
    /// candidate's latest turn.
    pub history: Vec<ChatMessage>,
}

/// One item of a model's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LlmEvent {
    /// A text delta, to be appended to the previous ones.
    Text(String),
    /// The server's token count for the request (OpenAI `usage`), usually last.
    Usage(TokenUsage),
}

/// The interviewer's answer as it is generated, in order. An `Err` item is the last item.
/// Drop the stream to cancel (see the module docs).
pub type TokenStream = Pin<Box<dyn Stream<Item = Result<LlmEvent, LlmError>> + Send>>;

/// A source of interviewer turns.
pub trait ChatModel: Send + Sync {
    /// Starts generating the next interviewer turn. Nothing happens until the stream is
    /// polled; dropping it cancels the generation and any HTTP request behind it.
    fn stream(&self, request: ChatRequest) -> TokenStream;

    /// A short, stable engine name for logs and metrics.
    fn name(&self) -> &'static str;

    /// Whether it can judge answers after a call (a language model can; a script cannot).
    fn writes_feedback(&self) -> bool {
        false
    }
}

/// Why a model could not produce (all of) a turn.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The model is configured wrongly (bad URL, unsupported scheme).
    #[error("invalid LLM configuration: {0}")]
    Config(String),
    /// The server could not be reached or the request could not be sent.
    #[error("cannot reach LLM server: {0}")]
    Connect(#[source] reqwest::Error),
    /// The server answered with a non-success status; `body` is its first few hundred bytes.
    #[error("LLM server answered HTTP {status}: {body}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, for the log.
        body: String,
        /// The server's `Retry-After` (delta-seconds form), when it sent one.
        retry_after: Option<std::time::Duration>,
    },
    /// The response body broke off while streaming.
    #[error("LLM response stream failed: {0}")]
    Body(#[source] reqwest::Error),
    /// The server reported an error inside the event stream (`{"error": ...}`).
    #[error("LLM server reported an error: {0}")]
    Api(String),
    /// The response was not the expected event stream (bad JSON, oversized event, bad UTF-8).
    #[error("LLM protocol error: {0}")]
    Protocol(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_question_is_the_interviewers_last_sentence() {
        let history = vec![
            ChatMessage::assistant("Thanks. Tell me about a bug you fixed."),
            ChatMessage::user("I fixed a race."),
        ];
        assert_eq!(
            last_question(&history).as_deref(),
            Some("Tell me about a bug you fixed.")
        );
        // A model may end on any character: no byte slicing inside it.
        let odd = vec![ChatMessage::assistant("Great. What did you learn…")];
        assert_eq!(last_question(&odd).as_deref(), Some("What did you learn…"));
        assert_eq!(last_question(&[]), None);
    }
}
