//! Server configuration: every `callgate serve` setting defined once, in the table below,
//! from which its flag, `CALLGATE_*` variable, TOML key, default, allowed values, `--help`
//! text and the docs/configuration.md row all come. Settings are read from a TOML file, then
//! the environment, then flags (each later source wins), and validated once at start into
//! [`ServeConfig`].

pub mod docs;

use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::asr::AudioContext;
use crate::call::limits::LimitSettings;

/// The default whisper model, relative to the repository root (made by scripts/fetch-models).
pub const DEFAULT_MODEL: &str = "models/ggml-tiny.en.bin";

/// Threads per whisper decode unless configured: every core, up to the 64 a decode accepts.
pub fn default_asr_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(64))
}

/// Defines [`ServeSettings`] (every setting as read from one source), its overlay, its
/// defaults and range checks, and the facts `--help` and the docs show, from one row per
/// setting: `doc and clap attributes, name: type [= default] [, shown "text"] [, allowed
/// rule];`. `shown` replaces the default's own text where that is not helpful (or not
/// the same on every machine); a setting without a default stays optional after
/// [`ServeSettings::resolve`] fills the others.
macro_rules! serve_settings {
    (@filled_type $ty:ty) => { Option<$ty> };
    (@filled_type $ty:ty, $default:expr) => { $ty };
    (@fill $given:expr) => { $given };
    (@fill $given:expr, $default:expr) => { $given.unwrap_or_else(|| $default) };
    (@default $ty:ty, [$shown:literal] [$($default:expr)?]) => {
        Some(docs::DefaultText::words($shown))
    };
    (@default $ty:ty, [] [$default:expr]) => { Some(docs::DefaultText::value::<$ty>(&$default)) };
    (@default $ty:ty, [] []) => { None };
    (@allowed) => { None };
    (@allowed $rule:expr) => { Some($rule.to_string()) };
    (@check $given:expr, $field:ident) => {};
    (@check $given:expr, $field:ident, $rule:expr) => {
        if let Some(value) = $given {
            $rule
                .check(value)
                .map_err(|message| ConfigError::invalid(stringify!($field), message))?;
        }
    };
    ($(
        $(#[$attr:meta])*
        $field:ident: $ty:ty
            $(= $default:expr)? $(, shown $shown:literal)? $(, allowed $rule:expr)?;
    )*) => {
        /// Every serve setting, as read from one source: `None` = not given there. The field
        /// docs are the `--help` text; flags and TOML keys are the names in kebab-case.
        #[derive(Debug, Default, Clone, Deserialize, clap::Args)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub struct ServeSettings {
            $( $(#[$attr])* #[arg(long)] pub $field: Option<$ty>, )*
        }

        /// [`ServeSettings`] with the defaults filled in (a setting without one stays optional).
        struct Filled {
            $( $field: serve_settings!(@filled_type $ty $(, $default)?), )*
        }

        impl ServeSettings {
            /// Overlays `other` (a higher-precedence source) on `self`.
            pub fn overlay(self, other: ServeSettings) -> Self {
                Self { $( $field: other.$field.or(self.$field), )* }
            }

            fn filled(self) -> Filled {
                Filled { $( $field: serve_settings!(@fill self.$field $(, $default)?), )* }
            }

            /// Checks every given value against its setting's allowed range.
            fn check_allowed(&self) -> Result<(), ConfigError> {
                $( serve_settings!(@check &self.$field, $field $(, $rule)?); )*
                Ok(())
            }
        }

        /// The default and allowed values of every setting, in the table's order.
        pub fn setting_facts() -> Vec<docs::SettingFacts> {
            vec![$(docs::SettingFacts {
                id: stringify!($field),
                default: serve_settings!(@default $ty, [$($shown)?] [$($default)?]),
                allowed: serve_settings!(@allowed $($rule)?),
            },)*]
        }
    };
}

serve_settings! {
    /// Address to listen on.
    #[arg(env = "CALLGATE_LISTEN")]
    listen: String = "127.0.0.1:8080".into();
    /// ggml Whisper model file.
    #[arg(env = "CALLGATE_MODEL")]
    model: PathBuf = DEFAULT_MODEL.into();
    /// Concurrent whisper decodes shared by all calls.
    #[arg(env = "CALLGATE_ASR_WORKERS")]
    asr_workers: usize = 1, allowed within(1..=64, "");
    /// Threads per whisper decode.
    #[arg(env = "CALLGATE_ASR_THREADS")]
    asr_threads: usize = default_asr_threads(), shown "all cores", allowed within(1..=64, "");
    /// Let a final transcription stop a running partial when every whisper worker is busy
    /// (false: it waits; for before/after measurements).
    #[arg(env = "CALLGATE_ASR_PREEMPT")]
    asr_preempt: bool = true;
    /// Whisper encoder window: full, trimmed or floor:SECONDS (see docs/asr.md).
    #[arg(env = "CALLGATE_AUDIO_CONTEXT")]
    audio_context: String = "floor:10".into();
    /// Whisper initial prompt ('' for none).
    #[arg(env = "CALLGATE_ASR_PROMPT")]
    asr_prompt: String = crate::asr::DEFAULT_PROMPT.into(), shown "a software-interview prompt";
    /// Ask whisper to write the candidate's fillers (um, uh), so the call's report counts
    /// them. Off by default: it counts half the fillers, and once made whisper repeat the
    /// end of a long answer (docs/report.md has the figures).
    #[arg(env = "CALLGATE_ASR_KEEP_FILLERS")]
    asr_keep_fillers: bool = false;
    /// LLM backend: `script` (built-in interviewer) or `openai` (any OpenAI-compatible
    /// /chat/completions server).
    #[arg(env = "CALLGATE_LLM")]
    llm: String = "script".into();
    /// Base URL of the OpenAI-compatible server, e.g. http://127.0.0.1:8081/v1 (needed with
    /// `--llm openai`).
    #[arg(env = "CALLGATE_LLM_URL")]
    llm_url: String;
    /// Model name sent to the OpenAI-compatible server.
    #[arg(env = "CALLGATE_LLM_MODEL")]
    llm_model: String = "default".into();
    /// API key for the OpenAI-compatible server (prefer the environment variable).
    #[arg(env = "CALLGATE_LLM_API_KEY", hide_env_values = true)]
    llm_api_key: String;
    /// The interviewer's voice: `auto` (the Piper voice scripts/fetch-models installs, else
    /// espeak-ng), `piper[:NAME|:PATH.onnx]`, or `espeak:NAME` (a bare espeak-ng name such
    /// as `en-gb+f3` works too). A persona's `voice` overrides it for its calls.
    #[arg(env = "CALLGATE_VOICE")]
    voice: String = crate::tts::VoiceSpec::DEFAULT.into();
    /// espeak-ng speech rate (Piper voices speak at their own pace).
    #[arg(env = "CALLGATE_TTS_RATE")]
    tts_rate: u32 = crate::tts::espeak::DEFAULT_RATE_WPM as u32, allowed within(80..=450, " words per minute");
    /// Piper synthesis threads shared by all calls (one ONNX session each).
    #[arg(env = "CALLGATE_TTS_WORKERS")]
    tts_workers: usize = crate::tts::piper::DEFAULT_WORKERS, allowed within(1..=16, "");
    /// ONNX Runtime threads per Piper worker: 2 makes a sentence 1.6 times faster on an
    /// idle 2-core machine, and costs throughput when many calls speak at once.
    #[arg(env = "CALLGATE_TTS_THREADS")]
    tts_threads: usize = crate::onnx::DEFAULT_THREADS, allowed within(1..=16, "");
    /// Audio a Piper voice keeps of the sentences it spoke, so a repeated one (the
    /// greeting, an acknowledgement, a scripted question) costs nothing; 0 turns it off.
    #[arg(env = "CALLGATE_TTS_CACHE_MB")]
    tts_cache_mb: usize = 32, allowed within(0..=4096, " MB");
    /// Folder of extra persona TOML files (added to, or overriding, the built-in ones in
    /// personas/).
    #[arg(env = "CALLGATE_PERSONAS_DIR")]
    personas_dir: PathBuf;
    /// Persona used when session.start names none.
    #[arg(env = "CALLGATE_PERSONA")]
    persona: String = crate::llm::persona::DEFAULT_PERSONA.into();
    /// Folder for calls/<sessionId>/events.jsonl (and WAVs with --record); `calls-dir = ""`
    /// in the file disables.
    #[arg(env = "CALLGATE_CALLS_DIR")]
    calls_dir: PathBuf = "calls".into();
    /// Also record each call's input.wav and output.wav.
    #[arg(env = "CALLGATE_RECORD", num_args = 0..=1, default_missing_value = "true")]
    record: bool = false;
    /// Voice activity detector: `silero` (Silero VAD v5 on ONNX Runtime, models/ from
    /// scripts/fetch-models; holds up in room noise) or `energy` (loudness over an adaptive
    /// noise floor; needs nothing). docs/vad.md has the measurements.
    #[arg(env = "CALLGATE_VAD")]
    vad: VadDetector = VadDetector::Silero;
    /// Acoustic end-of-turn model fused with the words under `smart` turn detection:
    /// `none` (words alone) or `smart-turn` (Smart Turn v3.2 on ONNX Runtime, models/ from
    /// scripts/fetch-models). Off by default: on our fixtures it told finished answers from
    /// cut ones no better than chance and cost 40-160 ms a pause (docs/end-of-turn.md).
    #[arg(env = "CALLGATE_TURN_MODEL")]
    turn_model: TurnModel = TurnModel::None;
    /// Speech needed before the user's voice interrupts the AI, ms.
    #[arg(env = "CALLGATE_BARGE_IN_MS")]
    barge_in_ms: u64 = 200, allowed within(0..=5000, " ms");
    /// Silence after which the final transcript and the LLM start speculatively, ms.
    #[arg(env = "CALLGATE_SPECULATIVE_MS")]
    speculative_ms: u64 = 200, allowed within(0..=5000, " ms");
    /// Longest user turn, seconds: speech that goes on past it ends the turn (with
    /// `endOfTurn.rule` "longest_turn") and the rest is a new turn.
    #[arg(env = "CALLGATE_LONGEST_TURN_S")]
    longest_turn_s: u64 = 300, allowed within(10..=3600, " seconds");
    /// End a call after this many seconds without any client message.
    #[arg(env = "CALLGATE_IDLE_TIMEOUT_S")]
    idle_timeout_s: u64 = 300, allowed within(0..=86_400, " seconds");
    /// Seconds calls get to finish on shutdown.
    #[arg(env = "CALLGATE_DRAIN_S")]
    drain_s: u64 = 10, allowed within(0..=600, " seconds");
    /// Seconds the LLM may take to its first token before the turn fails (LLM_ERROR; the
    /// call goes on).
    #[arg(env = "CALLGATE_LLM_FIRST_TOKEN_TIMEOUT_S")]
    llm_first_token_timeout_s: f64 = 20.0, allowed within(0.05..=600.0, " seconds");
    /// Seconds the LLM may pause between tokens before the turn fails.
    #[arg(env = "CALLGATE_LLM_TOKEN_TIMEOUT_S")]
    llm_token_timeout_s: f64 = 10.0, allowed within(0.05..=600.0, " seconds");
    /// Seconds to wait for a TCP connection to the LLM server.
    #[arg(env = "CALLGATE_LLM_CONNECT_TIMEOUT_S")]
    llm_connect_timeout_s: f64 = 5.0, allowed within(0.05..=600.0, " seconds");
    /// Most conversation messages sent to the LLM with each request; the persona's system
    /// prompt always goes first on top of them.
    #[arg(env = "CALLGATE_LLM_HISTORY_MESSAGES")]
    llm_history_messages: usize = crate::llm::openai::HISTORY_MAX_MESSAGES,
        allowed within(1..=10_000, "");
    /// Most conversation characters sent to the LLM with each request (newest kept).
    #[arg(env = "CALLGATE_LLM_HISTORY_CHARS")]
    llm_history_chars: usize = crate::llm::openai::HISTORY_MAX_CHARS,
        allowed within(1..=10_000_000, "");
    /// Most tokens the LLM may generate for one answer.
    #[arg(env = "CALLGATE_LLM_MAX_TOKENS")]
    llm_max_tokens: u32 = crate::llm::openai::DEFAULT_MAX_TOKENS, allowed within(1..=32_768, "");
    /// HS256 secret (at least 16 bytes) that call tokens must be signed with; without it
    /// calls need no token, so the server refuses a non-loopback --listen (prefer the
    /// environment variable).
    #[arg(env = "CALLGATE_JWT_SECRET", hide_env_values = true)]
    jwt_secret: String;
    /// Listen on a non-loopback address without a JWT secret (anyone who can reach the
    /// port can open calls).
    #[arg(env = "CALLGATE_INSECURE", num_args = 0..=1, default_missing_value = "true")]
    insecure: bool = false;
    /// Browser origins allowed to open calls, comma-separated, e.g.
    /// https://app.example.com (others get 403). Requests without Origin are not affected.
    #[arg(env = "CALLGATE_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String>, shown "any";
    /// Calls at once on this server; the next gets close code 1013.
    #[arg(env = "CALLGATE_MAX_CALLS")]
    max_calls: usize = 256, allowed within(1..=100_000, "");
    /// Calls at once per user (token `sub`).
    #[arg(env = "CALLGATE_MAX_CALLS_PER_USER")]
    max_calls_per_user: usize = 3, allowed within(1..=100_000, "");
    /// Longest call, in minutes; then it ends with reason `timeout`.
    #[arg(env = "CALLGATE_MAX_CALL_MINUTES")]
    max_call_minutes: f64 = 60.0, allowed within(0.01..=1e6, " minutes");
    /// Text messages per second per call (bursts of twice that pass; beyond, RATE_LIMITED).
    #[arg(env = "CALLGATE_MAX_TEXT_RATE")]
    max_text_rate: f64 = 50.0, allowed within(1.0..=1e6, "");
    /// Input audio faster than this multiple of real time (after a 10 s burst) is refused
    /// with RATE_LIMITED; 0 turns the guard off, otherwise at least 1.
    #[arg(env = "CALLGATE_MAX_AUDIO_RATE")]
    max_audio_rate: f64 = 4.0, allowed within(0.0..=1e6, "");
    /// Seconds a call whose connection dropped waits for session.resume.
    #[arg(env = "CALLGATE_RESUME_GRACE_S")]
    resume_grace_s: f64 = 30.0, allowed within(0.0..=1e6, " seconds");
    /// Milliseconds an upgraded connection has to send session.start or session.resume;
    /// then it gets `error` BAD_MESSAGE and close 1008.
    #[arg(env = "CALLGATE_START_TIMEOUT_MS")]
    start_timeout_ms: u64 = 5000, allowed within(10..=600_000, " ms");
    /// Upgraded connections from one IP address that have not started (or resumed) a call
    /// yet; the next upgrade from that address gets HTTP 429.
    #[arg(env = "CALLGATE_MAX_UNSTARTED_PER_IP")]
    max_unstarted_per_ip: usize = 64, allowed within(1..=100_000, "");
    /// Upgraded connections in all that have not started (or resumed) a call yet; the next
    /// upgrade gets HTTP 503.
    #[arg(env = "CALLGATE_MAX_UNSTARTED")]
    max_unstarted: usize = 1024, allowed within(1..=1_000_000, "");
    /// Redis URL (redis://[:PASSWORD@]HOST:PORT[/DB]) that turns on cluster mode: this node
    /// joins the directory other nodes on that Redis read (`GET /v1/cluster`), and
    /// --max-calls-per-user counts the user's calls on every node. Unset: a single node.
    #[arg(env = "CALLGATE_REDIS", hide_env_values = true)]
    redis: String;
    /// This node's id in the cluster directory (letters, digits, '-', '_', '.').
    #[arg(env = "CALLGATE_NODE_ID")]
    node_id: String, shown "random at start";
    /// The address other nodes and the load balancer reach this node at, e.g.
    /// 10.0.0.5:8080, as the cluster directory lists it.
    #[arg(env = "CALLGATE_ADVERTISE")]
    advertise: String, shown "the listen address";
}

/// `callgate serve`'s arguments: a settings file, then the settings themselves (each flag
/// also read from its `CALLGATE_*` variable; `--help` shows defaults and ranges).
#[derive(Debug, clap::Args)]
#[command(mut_args = docs::help_with_defaults())]
pub struct ServeArgs {
    /// TOML file with any of the settings below (kebab-case keys, e.g. `asr-workers = 2`).
    #[arg(long, env = "CALLGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Environment and flags.
    #[command(flatten)]
    pub settings: ServeSettings,
}

impl ServeArgs {
    /// The file's settings overlaid with the environment's and the flags', validated.
    pub fn resolve(self) -> Result<ServeConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => ServeSettings::from_file(path)?,
            None => ServeSettings::default(),
        };
        file.overlay(self.settings).resolve()
    }
}

/// A numeric setting's allowed values: an inclusive range, shown with a unit.
#[derive(Debug, Clone)]
pub struct Within<T> {
    range: RangeInclusive<T>,
    unit: &'static str,
}

/// The values in `range`; `unit` (with its leading space) follows it in messages.
fn within<T>(range: RangeInclusive<T>, unit: &'static str) -> Within<T> {
    Within { range, unit }
}

impl<T: PartialOrd + Display> Within<T> {
    fn check(&self, value: &T) -> Result<(), String> {
        if self.range.contains(value) {
            Ok(())
        } else {
            Err(format!("must be {self}, got {value}"))
        }
    }
}

impl<T: Display> Display for Within<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (start, end) = (self.range.start(), self.range.end());
        write!(f, "{start}..={end}{}", self.unit)
    }
}

/// Why the configuration is unusable. Each message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for these settings.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// toml's message (names the key and line).
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("{setting}: {message}")]
    Invalid {
        /// The setting's name as in the file (and `--flag`).
        setting: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// `setting` (a field name or its kebab-case key) is wrong: `message` says how.
    fn invalid(setting: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            setting: setting.replace('_', "-"),
            message: message.into(),
        }
    }
}

/// Which voice activity detector scores the input's frames ([`crate::audio::vad`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum VadDetector {
    /// The adaptive energy detector.
    Energy,
    /// Silero VAD v5 ([`crate::audio::silero::DEFAULT_MODEL`]).
    Silero,
}

/// Which acoustic end-of-turn model `smart` turn detection uses ([`crate::eot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TurnModel {
    /// Pipecat's Smart Turn v3.2 ([`crate::eot::smart_turn::DEFAULT_MODEL`]).
    SmartTurn,
    /// None: pauses are judged by their words.
    None,
}

/// Which LLM backend answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LlmBackend {
    /// The built-in scripted interviewer (needs nothing).
    Script,
    /// An OpenAI-compatible server.
    OpenAi {
        /// Base URL, e.g. http://127.0.0.1:8081/v1.
        url: String,
        /// Model name sent in requests.
        model: String,
        /// Bearer token, if the server needs one.
        api_key: Option<String>,
        /// How much conversation each request carries.
        history: crate::llm::openai::HistoryLimits,
        /// TCP connect timeout.
        connect_timeout: Duration,
        /// `max_tokens` of each request.
        max_tokens: u32,
    },
}

/// The validated configuration `callgate serve` runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Whisper model.
    pub model: PathBuf,
    /// Concurrent decodes.
    pub asr_workers: usize,
    /// Threads per decode.
    pub asr_threads: usize,
    /// Finals preempt running partials.
    pub asr_preempt: bool,
    /// Encoder window policy.
    pub audio_context: AudioContext,
    /// Whisper prompt.
    pub asr_prompt: String,
    /// Prompt whisper to keep fillers.
    pub asr_keep_fillers: bool,
    /// LLM backend.
    pub llm: LlmBackend,
    /// The interviewer's voice.
    pub voice: crate::tts::VoiceSpec,
    /// Words per minute (espeak-ng).
    pub tts_rate: u32,
    /// Piper threads.
    pub tts_workers: usize,
    /// ONNX threads per Piper thread.
    pub tts_threads: usize,
    /// Piper's sentence cache, MB.
    pub tts_cache_mb: usize,
    /// Extra personas.
    pub personas_dir: Option<PathBuf>,
    /// Default persona.
    pub persona: String,
    /// Per-call folder root.
    pub calls_dir: Option<PathBuf>,
    /// Record WAVs.
    pub record: bool,
    /// Voice activity detector.
    pub vad: VadDetector,
    /// Acoustic end-of-turn model.
    pub turn_model: TurnModel,
    /// Barge-in minimum speech.
    pub barge_in: Duration,
    /// Speculative final after this much silence.
    pub speculative: Duration,
    /// Longest user turn.
    pub longest_turn: Duration,
    /// Idle timeout.
    pub idle_timeout: Duration,
    /// Drain deadline on shutdown.
    pub drain: Duration,
    /// LLM first-token stall limit.
    pub llm_first_token_timeout: Duration,
    /// LLM between-token stall limit.
    pub llm_token_timeout: Duration,
    /// JWT secret; `None` = no authentication.
    pub jwt_secret: Option<String>,
    /// Browser origins allowed (empty = any).
    pub allowed_origins: Vec<String>,
    /// Call limits.
    pub limits: LimitSettings,
    /// Cluster mode, when a Redis URL is given.
    pub cluster: Option<ClusterConfig>,
}

/// Where the cluster directory lives and how this node appears in it.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The Redis URL.
    pub redis: String,
    /// This node's id.
    pub node_id: String,
    /// Where other nodes reach this node; `None`: its listen address.
    pub advertise: Option<String>,
}

impl Default for ServeConfig {
    /// What `callgate serve` runs with when given nothing: every built-in default.
    fn default() -> Self {
        ServeSettings::default()
            .resolve()
            .expect("the built-in defaults are valid (tested below)")
    }
}

impl ServeSettings {
    /// Reads a TOML file of settings (kebab-case keys, as the flags).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Validates and fills defaults.
    pub fn resolve(self) -> Result<ServeConfig, ConfigError> {
        self.check_allowed()?;
        self.filled().into_config()
    }
}

impl Filled {
    fn into_config(self) -> Result<ServeConfig, ConfigError> {
        let listen = self.listen_address()?;
        let jwt_secret = self.jwt_secret()?;
        let audio_context = AudioContext::parse(&self.audio_context).ok_or_else(|| {
            ConfigError::invalid(
                "audio-context",
                format!(
                    "expected full, trimmed or floor:SECONDS, got {:?}",
                    self.audio_context
                ),
            )
        })?;
        let llm = self.llm_backend()?;
        let limits = self.limits()?;
        let cluster = self.cluster()?;
        Ok(ServeConfig {
            listen,
            model: self.model,
            asr_workers: self.asr_workers,
            asr_threads: self.asr_threads,
            asr_preempt: self.asr_preempt,
            audio_context,
            asr_prompt: self.asr_prompt,
            asr_keep_fillers: self.asr_keep_fillers,
            llm,
            voice: crate::tts::VoiceSpec::parse(&self.voice),
            tts_rate: self.tts_rate,
            tts_workers: self.tts_workers,
            tts_threads: self.tts_threads,
            tts_cache_mb: self.tts_cache_mb,
            personas_dir: self.personas_dir,
            persona: self.persona,
            calls_dir: Some(self.calls_dir).filter(|p| !p.as_os_str().is_empty()),
            record: self.record,
            vad: self.vad,
            turn_model: self.turn_model,
            barge_in: Duration::from_millis(self.barge_in_ms),
            speculative: Duration::from_millis(self.speculative_ms),
            longest_turn: Duration::from_secs(self.longest_turn_s),
            idle_timeout: Duration::from_secs(self.idle_timeout_s),
            drain: Duration::from_secs(self.drain_s),
            llm_first_token_timeout: Duration::from_secs_f64(self.llm_first_token_timeout_s),
            llm_token_timeout: Duration::from_secs_f64(self.llm_token_timeout_s),
            jwt_secret,
            allowed_origins: self
                .allowed_origins
                .unwrap_or_default()
                .into_iter()
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            limits,
            cluster,
        })
    }

    /// Cluster mode's settings; the node id and address only count with a Redis URL.
    fn cluster(&self) -> Result<Option<ClusterConfig>, ConfigError> {
        let Some(redis) = self.redis.clone().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        if !redis.starts_with("redis://") && !redis.starts_with("unix://") {
            return Err(ConfigError::invalid(
                "redis",
                "expected redis://HOST:PORT (or unix:///PATH)",
            ));
        }
        let node_id = match self.node_id.clone().filter(|id| !id.is_empty()) {
            Some(id) => id,
            None => crate::call::random_id()[..12].to_owned(),
        };
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if node_id.len() > 64 || !node_id.chars().all(plain) {
            return Err(ConfigError::invalid(
                "node-id",
                format!("{node_id:?}: use up to 64 letters, digits, '-', '_' or '.'"),
            ));
        }
        Ok(Some(ClusterConfig {
            redis,
            node_id,
            advertise: self.advertise.clone().filter(|a| !a.is_empty()),
        }))
    }

    /// The listen address, refused when it is reachable from other machines and nothing
    /// (a secret, or `--insecure`) says who may call.
    fn listen_address(&self) -> Result<SocketAddr, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            ConfigError::invalid(
                "listen",
                format!("{:?} is not an address like 127.0.0.1:8080", self.listen),
            )
        })?;
        let has_secret = self.jwt_secret.as_ref().is_some_and(|s| !s.is_empty());
        if !has_secret && !self.insecure && !listen.ip().is_loopback() {
            return Err(ConfigError::invalid(
                "listen",
                format!(
                    "{listen} is reachable from other machines, and without --jwt-secret anyone \
                     there could open calls and stream audio: set a secret \
                     (CALLGATE_JWT_SECRET), listen on 127.0.0.1, or pass --insecure"
                ),
            ));
        }
        Ok(listen)
    }

    /// The JWT secret; an empty one means none.
    fn jwt_secret(&self) -> Result<Option<String>, ConfigError> {
        let secret = self.jwt_secret.clone().filter(|s| !s.is_empty());
        if let Some(secret) = &secret
            && secret.len() < 16
        {
            return Err(ConfigError::invalid(
                "jwt-secret",
                format!("must be at least 16 bytes, got {}", secret.len()),
            ));
        }
        Ok(secret)
    }

    fn llm_backend(&self) -> Result<LlmBackend, ConfigError> {
        match self.llm.as_str() {
            "script" => Ok(LlmBackend::Script),
            "openai" => {
                let url = self.llm_url.clone().ok_or_else(|| {
                    ConfigError::invalid(
                        "llm-url",
                        "required with --llm openai (e.g. http://127.0.0.1:8081/v1)",
                    )
                })?;
                if !url.starts_with("http://") && !url.starts_with("https://") {
                    return Err(ConfigError::invalid(
                        "llm-url",
                        format!("{url:?} must start with http:// or https://"),
                    ));
                }
                Ok(LlmBackend::OpenAi {
                    url,
                    model: self.llm_model.clone(),
                    api_key: self.llm_api_key.clone().filter(|k| !k.is_empty()),
                    history: crate::llm::openai::HistoryLimits {
                        max_messages: self.llm_history_messages,
                        max_chars: self.llm_history_chars,
                    },
                    connect_timeout: Duration::from_secs_f64(self.llm_connect_timeout_s),
                    max_tokens: self.llm_max_tokens,
                })
            }
            other => Err(ConfigError::invalid(
                "llm",
                format!("expected script or openai, got {other:?}"),
            )),
        }
    }

    fn limits(&self) -> Result<LimitSettings, ConfigError> {
        if self.max_audio_rate > 0.0 && self.max_audio_rate < 1.0 {
            return Err(ConfigError::invalid(
                "max-audio-rate",
                "must be 0 (off) or at least 1 (real time)",
            ));
        }
        Ok(LimitSettings {
            max_calls: self.max_calls,
            max_calls_per_user: self.max_calls_per_user,
            max_call_duration: Duration::from_secs_f64(60.0 * self.max_call_minutes),
            text_messages_per_s: self.max_text_rate,
            max_audio_rate: self.max_audio_rate,
            resume_grace: Duration::from_secs_f64(self.resume_grace_s),
            start_timeout: Duration::from_millis(self.start_timeout_ms),
            max_unstarted_per_ip: self.max_unstarted_per_ip,
            max_unstarted: self.max_unstarted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_sources_win_and_defaults_fill() {
        let file = ServeSettings {
            listen: Some("127.0.0.1:9000".into()),
            tts_rate: Some(150),
            ..Default::default()
        };
        let flags = ServeSettings {
            listen: Some("127.0.0.1:9001".into()),
            ..Default::default()
        };
        let c = file.overlay(flags).resolve().expect("valid");
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.tts_rate, 150);
        assert_eq!(c.llm, LlmBackend::Script);
    }

    #[test]
    fn errors_name_the_setting() {
        let bad = ServeSettings {
            llm: Some("openai".into()),
            ..Default::default()
        };
        assert!(
            bad.resolve()
                .expect_err("no url")
                .to_string()
                .starts_with("llm-url")
        );
        let bad = ServeSettings {
            listen: Some("nope".into()),
            ..Default::default()
        };
        assert!(
            bad.resolve()
                .expect_err("bad addr")
                .to_string()
                .starts_with("listen")
        );
        let parsed: Result<ServeSettings, _> = toml::from_str("listne = \"x\"");
        assert!(parsed.is_err(), "unknown keys are rejected");
        let bad = ServeSettings {
            llm: Some("openai".into()),
            llm_url: Some("http://127.0.0.1:8081/v1".into()),
            llm_history_messages: Some(0),
            ..Default::default()
        };
        assert!(
            bad.resolve()
                .expect_err("no history")
                .to_string()
                .starts_with("llm-history-messages")
        );
    }

    #[test]
    fn openai_limits_come_from_the_file() {
        let file: ServeSettings = toml::from_str(
            "llm = \"openai\"\nllm-url = \"http://127.0.0.1:8081/v1\"\n\
             llm-history-messages = 8\nllm-history-chars = 2000\nllm-max-tokens = 64\n\
             llm-connect-timeout-s = 1.5",
        )
        .expect("toml");
        match file.resolve().expect("valid").llm {
            LlmBackend::OpenAi {
                history,
                connect_timeout,
                max_tokens,
                ..
            } => {
                assert_eq!((history.max_messages, history.max_chars), (8, 2000));
                assert_eq!(max_tokens, 64);
                assert_eq!(connect_timeout, Duration::from_millis(1500));
            }
            other => panic!("expected openai, got {other:?}"),
        }
    }

    #[test]
    fn the_built_in_defaults_resolve() {
        let c = ServeConfig::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.model, PathBuf::from(DEFAULT_MODEL));
        assert_eq!(c.calls_dir, Some(PathBuf::from("calls")));
        assert_eq!(c.limits.max_call_duration, Duration::from_secs(60 * 60));
        assert_eq!(c.llm_first_token_timeout, Duration::from_secs(20));
    }

    #[test]
    fn ranges_name_the_setting_and_the_range() {
        let cases: [(ServeSettings, &str); 5] = [
            (
                ServeSettings {
                    asr_workers: Some(0),
                    ..Default::default()
                },
                "asr-workers: must be 1..=64, got 0",
            ),
            (
                ServeSettings {
                    tts_rate: Some(500),
                    ..Default::default()
                },
                "tts-rate: must be 80..=450 words per minute, got 500",
            ),
            (
                ServeSettings {
                    llm_token_timeout_s: Some(f64::NAN),
                    ..Default::default()
                },
                "llm-token-timeout-s: must be 0.05..=600 seconds, got NaN",
            ),
            (
                ServeSettings {
                    max_audio_rate: Some(0.5),
                    ..Default::default()
                },
                "max-audio-rate: must be 0 (off) or at least 1 (real time)",
            ),
            (
                ServeSettings {
                    calls_dir: Some(PathBuf::new()),
                    jwt_secret: Some("short".into()),
                    ..Default::default()
                },
                "jwt-secret: must be at least 16 bytes, got 5",
            ),
        ];
        for (settings, message) in cases {
            assert_eq!(settings.resolve().expect_err(message).to_string(), message);
        }
    }

    #[test]
    fn an_empty_calls_dir_disables_call_folders() {
        let c = ServeSettings {
            calls_dir: Some(PathBuf::new()),
            ..Default::default()
        };
        assert_eq!(c.resolve().expect("valid").calls_dir, None);
    }

    #[test]
    fn cluster_mode_needs_a_redis_url_and_a_plain_node_id() {
        let with = |redis: &str, node_id: Option<&str>| ServeSettings {
            redis: Some(redis.into()),
            node_id: node_id.map(str::to_owned),
            ..Default::default()
        };
        assert!(
            ServeSettings::default()
                .resolve()
                .expect("valid")
                .cluster
                .is_none()
        );
        let c = with("redis://127.0.0.1:6379", Some("gw-1"))
            .resolve()
            .expect("valid");
        let cluster = c.cluster.expect("cluster mode");
        assert_eq!(
            (cluster.node_id.as_str(), cluster.advertise),
            ("gw-1", None)
        );
        let random = with("redis://127.0.0.1:6379", None)
            .resolve()
            .expect("valid");
        assert_eq!(random.cluster.expect("cluster mode").node_id.len(), 12);
        let err = with("http://127.0.0.1:6379", None)
            .resolve()
            .expect_err("not redis");
        assert!(
            err.to_string().starts_with("redis: expected redis://"),
            "{err}"
        );
        let err = with("redis://h", Some("a b"))
            .resolve()
            .expect_err("a space");
        assert!(err.to_string().starts_with("node-id: "), "{err}");
    }
}
