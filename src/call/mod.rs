//! Calls: the call core (session, ingest, turn-taking, turn tasks) speaking internal events,
//! the driver that runs a call over any socket, the callgate.v1 adapter, the start policy
//! and limits, and the engines every call shares.
//!
//! Data flows one way: a codec ([`v1`], [`realtime`]) decodes frames into [`events::CallInput`]s, the
//! [`driver`] feeds them to the [`session::Session`], which emits [`events::CallEvent`]s
//! through the [`outbox::Outbox`], which encodes them with the same codec.

pub mod admission;
pub mod driver;
pub mod events;
pub mod limits;
pub mod outbox;
pub mod realtime;
pub mod recorder;
pub mod registry;
pub mod relay;
pub mod session;
pub mod turn;
pub mod v1;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::asr::DecodeOptions;
use crate::asr::pool::AsrPool;
use crate::audio::vad::SpeechDetector;
use crate::llm::{ChatModel, PersonaSet};
use crate::metrics::Metrics;
use crate::tts::Synthesizer;

/// The engines every call shares, built once from configuration at start.
pub struct Engines {
    /// Whisper worker pool.
    pub asr: AsrPool,
    /// Decode settings (prompt, token cap, audio context).
    pub decode: DecodeOptions,
    /// The interviewer.
    pub llm: Arc<dyn ChatModel>,
    /// The interviewer's voice unless the call's persona names its own.
    pub tts: Arc<dyn Synthesizer>,
    /// The voices personas name, by persona id.
    pub persona_voices: std::collections::BTreeMap<String, Arc<dyn Synthesizer>>,
    /// Personas by id.
    pub personas: PersonaSet,
    /// Process metrics.
    pub metrics: Arc<Metrics>,
    /// How long the LLM may stay silent before the turn fails.
    pub llm_timeouts: LlmTimeouts,
    /// The voice activity detector each call's input is judged by.
    pub vad: SpeechDetector,
    /// The acoustic end-of-turn model, when one is configured.
    pub turn_model: Option<crate::eot::acoustic::AcousticScorer>,
    /// Work a call leaves behind when it ends (the model's feedback on its answers); the
    /// server waits for it, within its drain time, before it stops.
    pub after_call: tokio_util::task::TaskTracker,
}

/// Stall limits for a streaming LLM.
#[derive(Debug, Clone, Copy)]
pub struct LlmTimeouts {
    /// From the request (or the end-of-turn decision, if later) to the first token.
    pub first_token: Duration,
    /// Between two tokens.
    pub between_tokens: Duration,
}

impl Default for LlmTimeouts {
    /// The serve settings' defaults (src/config.rs holds them).
    fn default() -> Self {
        Self::from_config(&crate::config::ServeConfig::default())
    }
}

impl LlmTimeouts {
    /// The stall limits a [`crate::config::ServeConfig`] sets.
    pub fn from_config(cfg: &crate::config::ServeConfig) -> Self {
        Self {
            first_token: cfg.llm_first_token_timeout,
            between_tokens: cfg.llm_token_timeout,
        }
    }
}

/// Per-call behaviour the operator can tune.
#[derive(Debug, Clone)]
pub struct CallSettings {
    /// Speech needed before the user's voice cancels a response in flight; shorter sounds
    /// (a click, a cough) are ignored while the AI talks.
    pub barge_in_min: Duration,
    /// Silence after speech at which the final decode (and the LLM) start speculatively.
    pub speculative_silence: Duration,
    /// Longest user turn: speech past it starts a new turn.
    pub longest_turn: Duration,
    /// Interval between partial transcripts while the user speaks.
    pub partial_interval: Duration,
    /// Where `calls/<sessionId>/` folders go; `None` disables persistence.
    pub calls_dir: Option<PathBuf>,
    /// Also write input.wav and output.wav.
    pub record_audio: bool,
    /// A call with no message from the client for this long ends with reason `idle`.
    pub idle_timeout: Duration,
    /// Persona used when `session.start` names none.
    pub default_persona: String,
    /// Rates, durations and counts a call may not exceed.
    pub limits: crate::call::limits::LimitSettings,
}

/// Interval between partial transcripts while the user speaks (not a serve setting).
pub const PARTIAL_INTERVAL: Duration = Duration::from_millis(300);

impl Default for CallSettings {
    /// The serve settings' defaults (src/config.rs holds them).
    fn default() -> Self {
        Self::from_config(&crate::config::ServeConfig::default())
    }
}

/// A random 128-bit id in hex (session ids, resume tokens), from the OS's CSPRNG: with
/// tokens off a session id is the only key to a call's recordings, and a resume token is
/// a secret, so neither may be predictable from the clock or from earlier ids.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    // The OS's generator does not fail once the process runs on a supported kernel; if it
    // ever did, no id is safer than a guessable one.
    getrandom::getrandom(&mut bytes).expect("the OS random number generator failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why the engines could not be built at start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Whisper could not load.
    #[error(transparent)]
    Asr(#[from] crate::asr::AsrError),
    /// The LLM backend is misconfigured.
    #[error(transparent)]
    Llm(#[from] crate::llm::LlmError),
    /// A voice could not start.
    #[error(transparent)]
    Tts(#[from] crate::tts::TtsError),
    /// A persona file is invalid.
    #[error(transparent)]
    Persona(#[from] crate::llm::PersonaError),
    /// The Silero VAD model or ONNX Runtime could not load.
    #[error("vad: {0}")]
    Vad(#[from] crate::onnx::OnnxError),
    /// The acoustic end-of-turn model could not load (run scripts/fetch-models, or
    /// `--turn-model none`).
    #[error("turn-model: {0}")]
    TurnModel(String),
    /// The default persona does not exist.
    #[error("persona: no persona {0:?} (see personas/ and --personas-dir)")]
    UnknownPersona(String),
}

impl Engines {
    /// The voice of a call with persona `persona_id`.
    pub fn voice_for(&self, persona_id: &str) -> Arc<dyn Synthesizer> {
        self.persona_voices
            .get(persona_id)
            .unwrap_or(&self.tts)
            .clone()
    }

    /// Builds the engines a [`crate::config::ServeConfig`] describes: loads whisper, starts
    /// espeak-ng, loads personas, and sets up the LLM backend.
    pub async fn from_config(cfg: &crate::config::ServeConfig) -> Result<Self, EngineError> {
        let model = cfg.model.clone();
        let threads = cfg.asr_threads;
        let whisper = tokio::task::spawn_blocking(move || {
            crate::asr::whisper::WhisperEngine::load(&model, threads)
        })
        .await
        .map_err(|e| crate::asr::AsrError::Engine(e.to_string()))??;
        tracing::info!(model = %cfg.model.display(), load_ms = whisper.load_ms, workers = cfg.asr_workers, threads, "speech model loaded");
        let vad = load_vad(cfg.vad).await?;
        let turn_model = load_turn_model(cfg.turn_model).await?;
        let asr = AsrPool::new(Arc::new(whisper), cfg.asr_workers).preempting(cfg.asr_preempt);
        let options = crate::tts::VoiceOptions {
            rate_wpm: cfg.tts_rate,
            piper_workers: cfg.tts_workers,
            piper_threads: cfg.tts_threads,
            cache_bytes: cfg.tts_cache_mb << 20,
        };
        let tts = crate::tts::open_voice(&cfg.voice, options).await?;
        tracing::info!(voice = tts.voice(), "voice ready");
        let mut personas = PersonaSet::builtin();
        if let Some(dir) = &cfg.personas_dir {
            personas.load_dir(dir)?;
        }
        let mut persona_voices = std::collections::BTreeMap::new();
        for persona in personas.iter() {
            if let Some(name) = &persona.voice {
                let spec = crate::tts::VoiceSpec::parse(name);
                let voice = crate::tts::open_voice(&spec, options).await?;
                persona_voices.insert(persona.id.clone(), voice);
            }
        }
        if personas.get(&cfg.persona).is_none() {
            return Err(EngineError::UnknownPersona(cfg.persona.clone()));
        }
        let llm: Arc<dyn ChatModel> = match &cfg.llm {
            crate::config::LlmBackend::Script => Arc::new(crate::llm::ScriptedInterviewer::new()),
            crate::config::LlmBackend::OpenAi {
                url,
                model,
                api_key,
                history,
                connect_timeout,
                max_tokens,
            } => {
                let mut chat = crate::llm::OpenAiChat::with_connect_timeout(
                    url.clone(),
                    model.clone(),
                    *connect_timeout,
                )?;
                if let Some(k) = api_key {
                    chat = chat.with_api_key(k.clone());
                }
                chat.history = *history;
                chat.max_tokens = Some(*max_tokens);
                Arc::new(chat)
            }
        };
        Ok(Self {
            asr,
            decode: DecodeOptions {
                initial_prompt: crate::asr::prompt::InterviewPrompt {
                    base: Some(cfg.asr_prompt.as_str()).filter(|p| !p.is_empty()),
                    keep_fillers: cfg.asr_keep_fillers,
                    ..Default::default()
                }
                .text(),
                audio_context: cfg.audio_context,
                ..DecodeOptions::default()
            },
            llm,
            tts,
            persona_voices,
            personas,
            metrics: Arc::new(Metrics::default()),
            llm_timeouts: LlmTimeouts::from_config(cfg),
            vad,
            turn_model,
            after_call: Default::default(),
        })
    }
}

/// The detector the `vad` setting names, with Silero's model loaded (off the tokio workers:
/// it reads and optimises the file) and one session per core ready (about 10 MB each), since
/// a run takes a session on whichever worker thread feeds a call's audio.
async fn load_vad(kind: crate::config::VadDetector) -> Result<SpeechDetector, EngineError> {
    match kind {
        crate::config::VadDetector::Energy => Ok(SpeechDetector::Energy),
        crate::config::VadDetector::Silero => {
            let sessions = std::thread::available_parallelism().map_or(2, |n| n.get());
            let path = std::path::Path::new(crate::audio::silero::DEFAULT_MODEL);
            let model = tokio::task::spawn_blocking(move || {
                crate::audio::silero::SileroModel::load(path, sessions)
            })
            .await
            .map_err(|e| crate::onnx::OnnxError::Run(e.to_string()))??;
            tracing::info!(model = %path.display(), sessions, "Silero VAD loaded");
            Ok(SpeechDetector::Silero(model))
        }
    }
}

/// The acoustic end-of-turn model the `turn-model` setting names, loaded off the tokio
/// workers, on its own scoring thread.
async fn load_turn_model(
    kind: crate::config::TurnModel,
) -> Result<Option<crate::eot::acoustic::AcousticScorer>, EngineError> {
    use crate::eot::smart_turn::{DEFAULT_MODEL, SmartTurn};
    if kind == crate::config::TurnModel::None {
        return Ok(None);
    }
    let model = tokio::task::spawn_blocking(|| SmartTurn::load(DEFAULT_MODEL))
        .await
        .map_err(|e| EngineError::TurnModel(e.to_string()))?
        .map_err(|e| EngineError::TurnModel(e.to_string()))?;
    let scorer = crate::eot::acoustic::AcousticScorer::start(Arc::new(model))
        .map_err(|e| EngineError::TurnModel(e.to_string()))?;
    tracing::info!(model = DEFAULT_MODEL, "Smart Turn end-of-turn model loaded");
    Ok(Some(scorer))
}

impl CallSettings {
    /// The per-call part of a [`crate::config::ServeConfig`].
    pub fn from_config(cfg: &crate::config::ServeConfig) -> Self {
        Self {
            barge_in_min: cfg.barge_in,
            speculative_silence: cfg.speculative,
            longest_turn: cfg.longest_turn,
            calls_dir: cfg.calls_dir.clone(),
            record_audio: cfg.record,
            idle_timeout: cfg.idle_timeout,
            default_persona: cfg.persona.clone(),
            limits: cfg.limits.clone(),
            partial_interval: PARTIAL_INTERVAL,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn random_ids_are_128_bits_in_hex_and_distinct() {
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| super::random_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| {
            id.len() == 32
                && id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }));
    }
}
