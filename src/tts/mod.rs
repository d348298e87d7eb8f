//! Speech synthesis: the `Synthesizer` trait, the engines behind it (Piper, the default
//! neural voice, and the in-process espeak-ng), and which voice a name means.
//!
//! # Cancellation
//! Each call gets the turn's `CancellationToken`. A synthesizer must return
//! [`TtsError::Cancelled`] promptly once it is cancelled, skip queued work whose token is
//! already cancelled, and must not keep the token after the call returns.

use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

pub mod cache;
pub mod espeak;
pub mod piper;
mod text;
mod voice;

pub use espeak::{EspeakConfig, EspeakSynthesizer};
pub use piper::{PiperConfig, PiperSynthesizer};
pub use text::first_piece_ends;
pub use voice::{VoiceOptions, VoiceSpec, open_voice};

/// How soon a sentence is needed: decides its place in an engine's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// The candidate is waiting for it (a response's first sentence).
    Now,
    /// Synthesized ahead, while earlier sentences play.
    Ahead,
}

/// Synthesized audio for one piece of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Speech {
    /// 16-bit signed mono PCM samples.
    pub samples: Vec<i16>,
    /// Samples per second (22050 for espeak-ng and the default Piper voice).
    pub sample_rate: u32,
}

impl Speech {
    /// How long the audio plays.
    pub fn duration(&self) -> Duration {
        if self.sample_rate == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.sample_rate))
    }
}

/// Turns text into audio.
pub trait Synthesizer: Send + Sync {
    /// Synthesizes `text` (one sentence, typically). The future owns everything it needs,
    /// so it can be spawned; it resolves to [`TtsError::Cancelled`] soon after `cancel` fires.
    fn synthesize(
        &self,
        text: String,
        cancel: CancellationToken,
        urgency: Urgency,
    ) -> BoxFuture<'static, Result<Speech, TtsError>>;

    /// A short, stable engine name for logs and metrics.
    fn name(&self) -> &'static str;

    /// The voice, as `--voice` would name it (`piper:en_US-joe-medium`, `espeak:en-us`):
    /// told to the client in `session.started` and kept in the report.
    fn voice(&self) -> String;
}

/// Why synthesis failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtsError {
    /// The turn was cancelled before the audio was complete.
    #[error("synthesis cancelled")]
    Cancelled,
    /// The engine could not start (for espeak-ng: its data files are missing or unreadable).
    #[error("speech engine failed to start: {0}")]
    Init(String),
    /// A setting is out of range.
    #[error("invalid speech configuration: {0}")]
    Config(String),
    /// The requested voice does not exist.
    #[error("unknown voice {voice:?} (espeak-ng error {code})")]
    Voice {
        /// The voice name asked for.
        voice: String,
        /// The engine's error code.
        code: i32,
    },
    /// The engine reported an error while synthesizing.
    #[error("synthesis failed (engine error {0})")]
    Synthesis(i32),
    /// A neural engine's inference failed.
    #[error("synthesis failed: {0}")]
    Engine(String),
    /// The engine's thread is gone (it panicked); nothing more can be synthesized.
    #[error("speech engine thread has stopped")]
    WorkerGone,
}
