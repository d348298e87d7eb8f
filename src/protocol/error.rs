//! The callgate.v1 `error` message: its codes, the sentence a candidate may see for each,
//! and the body.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::{BadMessage, FrameError};

/// Protocol error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// Unparseable or invalid text message.
    BadMessage,
    /// Invalid binary audio frame or JSON audio.
    BadAudio,
    /// Input audio lost and filled with silence.
    AudioGap,
    /// Missing or bad token.
    Unauthorized,
    /// Client sends too much.
    RateLimited,
    /// Unknown session or wrong resume token.
    SessionNotFound,
    /// Speech recognition failed.
    AsrError,
    /// Language model failed.
    LlmError,
    /// Speech synthesis failed.
    TtsError,
    /// Server at capacity.
    Overloaded,
    /// A server bug.
    Internal,
}

impl ErrorCode {
    /// A message safe to show a candidate: no internals, and says whether the call goes on.
    pub fn default_user_message(self) -> &'static str {
        match self {
            Self::BadMessage => {
                "The app sent something the server did not understand; the call continues."
            }
            Self::BadAudio => {
                "Some audio could not be understood by the server; the call continues."
            }
            Self::AudioGap => {
                "A moment of your audio was lost in transit; you may need to repeat yourself."
            }
            Self::Unauthorized => {
                "You are not signed in, or your session has expired. Please sign in again."
            }
            Self::RateLimited => "Too many requests; please wait a moment.",
            Self::SessionNotFound => "This call could not be resumed. Please start a new call.",
            Self::AsrError => "Sorry, we could not make out what you said. Please try again.",
            Self::LlmError => "The interviewer could not answer just now. Please try again.",
            Self::TtsError => "The interviewer's voice could not be played just now.",
            Self::Overloaded => "The service is busy right now. Please try again shortly.",
            Self::Internal => "Something went wrong on our side.",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Same spelling as on the wire, so logs and clients agree.
        let s = match self {
            Self::BadMessage => "BAD_MESSAGE",
            Self::BadAudio => "BAD_AUDIO",
            Self::AudioGap => "AUDIO_GAP",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::RateLimited => "RATE_LIMITED",
            Self::SessionNotFound => "SESSION_NOT_FOUND",
            Self::AsrError => "ASR_ERROR",
            Self::LlmError => "LLM_ERROR",
            Self::TtsError => "TTS_ERROR",
            Self::Overloaded => "OVERLOADED",
            Self::Internal => "INTERNAL",
        };
        f.write_str(s)
    }
}

/// The `error` message body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ErrorEvent {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// For developers and logs.
    pub message: String,
    /// Safe to show a candidate.
    pub user_message: String,
    /// Whether the call goes on.
    pub recoverable: bool,
    /// The turn affected, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn_id: Option<u32>,
    /// With `OVERLOADED` / `RATE_LIMITED`: when to try again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// With `AUDIO_GAP`: first lost seq.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<u32>,
    /// With `AUDIO_GAP`: last lost seq (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u32>,
}

impl ErrorEvent {
    /// An error with the code's default `userMessage`.
    pub fn new(code: ErrorCode, message: impl Into<String>, recoverable: bool) -> Self {
        Self {
            code,
            message: message.into(),
            user_message: code.default_user_message().to_owned(),
            recoverable,
            turn_id: None,
            retry_after_ms: None,
            from: None,
            to: None,
        }
    }

    /// Sets the affected turn.
    pub fn turn(mut self, turn_id: u32) -> Self {
        self.turn_id = Some(turn_id);
        self
    }

    /// Replaces the default `userMessage`.
    pub fn user_message(mut self, text: impl Into<String>) -> Self {
        self.user_message = text.into();
        self
    }

    /// Sets `retryAfterMs`.
    pub fn retry_after(mut self, ms: u64) -> Self {
        self.retry_after_ms = Some(ms);
        self
    }

    /// Recoverable `BAD_MESSAGE` from a parse or validation failure.
    pub fn bad_message(err: &BadMessage) -> Self {
        Self::new(ErrorCode::BadMessage, err.message.clone(), true)
    }

    /// Recoverable `BAD_AUDIO` for a dropped frame.
    pub fn bad_audio(err: &FrameError) -> Self {
        Self::new(ErrorCode::BadAudio, err.to_string(), true)
    }

    /// Recoverable `AUDIO_GAP` for input seqs `from..=to` filled with silence.
    pub fn audio_gap(from: u32, to: u32) -> Self {
        let mut e = Self::new(
            ErrorCode::AudioGap,
            format!("input audio chunks {from}..={to} were lost and filled with silence"),
            true,
        );
        e.from = Some(from);
        e.to = Some(to);
        e
    }
}
