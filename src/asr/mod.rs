//! Speech recognition: the `Transcriber` trait, the whisper engine, the ggml converter and
//! quantizer.

pub mod convert;
pub mod ggml;
pub mod pool;
pub mod prompt;
pub mod quantize;
pub mod score;
pub mod whisper;

pub use score::{WordErrors, normalize_words, wer, word_errors};

use tokio_util::sync::CancellationToken;

/// The initial prompt that primes whisper for interview answers. It lives in the library
/// (not the CLI) so the server, the tests and the measurements all decode exactly as
/// `callgate transcribe` does.
pub const DEFAULT_PROMPT: &str = "A job interview for a software engineering role. The candidate talks about Rust, Python, Go, Java and distributed systems.";

/// How much of whisper's 30 s encoder window a decode uses.
///
/// Whisper's encoder always sees 30 s; whisper.cpp can shrink that window (`audio_ctx`) to
/// the clip's length, which cuts encoder time roughly in proportion. Trimming too far hurts
/// accuracy on very short clips, so the default keeps a floor. The figures that chose the
/// default are in docs/asr.md.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AudioContext {
    /// The full 30 s window, as whisper was trained.
    Full,
    /// Trimmed to the clip's length (plus a small margin).
    Trimmed,
    /// Trimmed to the clip's length, but never below this many seconds.
    TrimmedWithFloor(f32),
}

impl AudioContext {
    /// The `audio_ctx` value for a clip of `samples` at 16 kHz (0 = whisper's full window).
    pub fn frames_for(&self, samples: usize) -> i32 {
        // The encoder emits one position per 20 ms (1500 per 30 s).
        let secs = samples as f32 / 16_000.0;
        let frames = |s: f32| ((s * 50.0).ceil() as i32 + 16).min(1500);
        match *self {
            AudioContext::Full => 0,
            AudioContext::Trimmed => frames(secs),
            AudioContext::TrimmedWithFloor(floor) => frames(secs.max(floor)),
        }
    }

    /// Parses `full`, `trimmed` or `floor:SECONDS`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "full" => Some(Self::Full),
            "trimmed" => Some(Self::Trimmed),
            _ => s
                .strip_prefix("floor:")
                .and_then(|v| v.parse::<f32>().ok())
                .filter(|v| v.is_finite() && *v > 0.0)
                .map(Self::TrimmedWithFloor),
        }
    }
}

impl std::fmt::Display for AudioContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AudioContext::Full => write!(f, "full"),
            AudioContext::Trimmed => write!(f, "trimmed"),
            AudioContext::TrimmedWithFloor(s) => write!(f, "floor:{s}"),
        }
    }
}

/// Options for one decode.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Text that primes the decoder (e.g. the interview's topic): improves accuracy on
    /// domain words.
    pub initial_prompt: Option<String>,
    /// Upper bound on decoded tokens, which also stops a repetition loop early.
    pub max_tokens: u32,
    /// Encoder window policy.
    pub audio_context: AudioContext,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            initial_prompt: None,
            max_tokens: 128,
            audio_context: AudioContext::TrimmedWithFloor(10.0),
        }
    }
}

/// A stretch of recognised text with its times in the clip.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Start in milliseconds from the clip's start.
    pub start_ms: u64,
    /// End in milliseconds.
    pub end_ms: u64,
    /// The text.
    pub text: String,
}

/// The result of one decode.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcription {
    /// All segments' text joined, trimmed, with blank/hallucination markers removed.
    pub text: String,
    /// The segments kept.
    pub segments: Vec<Segment>,
}

/// Why a decode failed.
#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    /// The model file could not be loaded.
    #[error("cannot load speech model {path}: {reason}")]
    Load {
        /// The model path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The decode was cancelled (barge-in, call ended) before it finished.
    #[error("transcription cancelled")]
    Cancelled,
    /// The engine failed.
    #[error("speech recognition failed: {0}")]
    Engine(String),
}

/// A speech recogniser. Implementations are blocking and CPU-heavy: call them from a
/// dedicated thread or `spawn_blocking`, never from an async task directly.
pub trait Transcriber: Send + Sync {
    /// Transcribes 16 kHz mono samples. Returns [`AsrError::Cancelled`] soon after `cancel`
    /// fires.
    fn transcribe(
        &self,
        audio: &[f32],
        options: &DecodeOptions,
        cancel: &CancellationToken,
    ) -> Result<Transcription, AsrError>;

    /// A short name for logs and metrics.
    fn name(&self) -> &'static str;
}

/// Removes whisper's non-speech markers (`[BLANK_AUDIO]`, `(music)`, `[ Silence ]`...) and
/// tidies whitespace.
pub fn clean_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut depth = 0usize;
    for c in raw.chars() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_drops_markers() {
        assert_eq!(clean_text(" [BLANK_AUDIO]"), "");
        assert_eq!(clean_text(" Hello (music) world. "), "Hello world.");
        assert_eq!(clean_text("[ Silence ] Yes."), "Yes.");
    }

    #[test]
    fn audio_context_frames() {
        assert_eq!(AudioContext::Full.frames_for(16000), 0);
        assert_eq!(AudioContext::Trimmed.frames_for(16000 * 3), 166);
        assert_eq!(
            AudioContext::TrimmedWithFloor(10.0).frames_for(16000 * 3),
            516
        );
        assert_eq!(AudioContext::Trimmed.frames_for(16000 * 40), 1500);
        assert_eq!(
            AudioContext::parse("floor:5"),
            Some(AudioContext::TrimmedWithFloor(5.0))
        );
        assert_eq!(AudioContext::parse("bogus"), None);
    }
}
