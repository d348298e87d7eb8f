//! Server configuration: a TOML file, then environment variables, then flags (each later
//! source wins), validated once at start into [`ServeConfig`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::asr::AudioContext;

/// Every setting, as read from one source: `None` = not given there.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeSettings {
    /// Address to listen on.
    pub listen: Option<String>,
    /// ggml Whisper model file.
    pub model: Option<PathBuf>,
    /// Concurrent whisper decodes.
    pub asr_workers: Option<usize>,
    /// Threads per whisper decode.
    pub asr_threads: Option<usize>,
    /// Whether a final transcription stops a running partial when every worker is busy.
    pub asr_preempt: Option<bool>,
    /// Encoder window policy: full, trimmed, floor:SECONDS.
    pub audio_context: Option<String>,
    /// Initial prompt for whisper.
    pub asr_prompt: Option<String>,
    /// LLM backend: script or openai.
    pub llm: Option<String>,
    /// OpenAI-compatible base URL (…/v1).
    pub llm_url: Option<String>,
    /// Model name for the openai backend.
    pub llm_model: Option<String>,
    /// API key for the openai backend.
    pub llm_api_key: Option<String>,
    /// espeak-ng voice.
    pub voice: Option<String>,
    /// Speech rate, words per minute.
    pub tts_rate: Option<u32>,
    /// Extra persona TOML files.
    pub personas_dir: Option<PathBuf>,
    /// Default persona id.
    pub persona: Option<String>,
    /// Folder for per-call event logs and recordings ("" disables).
    pub calls_dir: Option<PathBuf>,
    /// Record input.wav / output.wav.
    pub record: Option<bool>,
    /// Speech needed to interrupt the AI, ms.
    pub barge_in_ms: Option<u64>,
    /// Silence after which the final decode starts speculatively, ms.
    pub speculative_ms: Option<u64>,
    /// Idle timeout, seconds.
    pub idle_timeout_s: Option<u64>,
    /// Time calls get to finish on shutdown, seconds.
    pub drain_s: Option<u64>,
    /// Seconds the LLM may take to its first token before the turn fails.
    pub llm_first_token_timeout_s: Option<f64>,
    /// Seconds the LLM may pause between tokens before the turn fails.
    pub llm_token_timeout_s: Option<f64>,
    /// Seconds to wait for a TCP connection to the LLM server.
    pub llm_connect_timeout_s: Option<f64>,
    /// Most conversation messages sent to the LLM with each request.
    pub llm_history_messages: Option<usize>,
    /// Most conversation characters sent to the LLM with each request.
    pub llm_history_chars: Option<usize>,
    /// Most tokens the LLM may generate per answer.
    pub llm_max_tokens: Option<u32>,
    /// HS256 secret for JWT authentication; unset = no authentication.
    pub jwt_secret: Option<String>,
    /// Allow a non-loopback listen address without a JWT secret.
    pub insecure: Option<bool>,
    /// Origins allowed to open calls from a browser page (empty = any).
    pub allowed_origins: Option<Vec<String>>,
    /// Calls at once on this server.
    pub max_calls: Option<usize>,
    /// Calls at once per user.
    pub max_calls_per_user: Option<usize>,
    /// Longest call, minutes.
    pub max_call_minutes: Option<f64>,
    /// Text messages per second per call.
    pub max_text_rate: Option<f64>,
    /// Input audio faster than this multiple of real time is refused (0 = off).
    pub max_audio_rate: Option<f64>,
    /// Seconds a dropped call waits for session.resume.
    pub resume_grace_s: Option<f64>,
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
        setting: &'static str,
        /// What is wrong.
        message: String,
    },
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
    /// LLM backend.
    pub llm: LlmBackend,
    /// espeak-ng voice.
    pub voice: String,
    /// Words per minute.
    pub tts_rate: u32,
    /// Extra personas.
    pub personas_dir: Option<PathBuf>,
    /// Default persona.
    pub persona: String,
    /// Per-call folder root.
    pub calls_dir: Option<PathBuf>,
    /// Record WAVs.
    pub record: bool,
    /// Barge-in minimum speech.
    pub barge_in: Duration,
    /// Speculative final after this much silence.
    pub speculative: Duration,
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
    pub limits: crate::call::limits::LimitSettings,
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

    /// Overlays `other` (a higher-precedence source) on `self`.
    pub fn overlay(self, other: ServeSettings) -> Self {
        macro_rules! pick { ($($f:ident),*) => { Self { $($f: other.$f.or(self.$f)),* } } }
        pick!(
            listen,
            model,
            asr_workers,
            asr_threads,
            asr_preempt,
            audio_context,
            asr_prompt,
            llm,
            llm_url,
            llm_model,
            llm_api_key,
            voice,
            tts_rate,
            personas_dir,
            persona,
            calls_dir,
            record,
            barge_in_ms,
            speculative_ms,
            idle_timeout_s,
            drain_s,
            llm_first_token_timeout_s,
            llm_token_timeout_s,
            llm_connect_timeout_s,
            llm_history_messages,
            llm_history_chars,
            llm_max_tokens,
            jwt_secret,
            insecure,
            allowed_origins,
            max_calls,
            max_calls_per_user,
            max_call_minutes,
            max_text_rate,
            max_audio_rate,
            resume_grace_s
        )
    }

    /// Validates and fills defaults.
    pub fn resolve(self) -> Result<ServeConfig, ConfigError> {
        let invalid =
            |setting: &'static str, message: String| ConfigError::Invalid { setting, message };
        let listen_s = self.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_s.parse().map_err(|_| {
            invalid(
                "listen",
                format!("{listen_s:?} is not an address like 127.0.0.1:8080"),
            )
        })?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let asr_workers = self.asr_workers.unwrap_or(1);
        if !(1..=64).contains(&asr_workers) {
            return Err(invalid(
                "asr-workers",
                format!("must be 1..=64, got {asr_workers}"),
            ));
        }
        let asr_threads = self.asr_threads.unwrap_or(cores);
        if !(1..=64).contains(&asr_threads) {
            return Err(invalid(
                "asr-threads",
                format!("must be 1..=64, got {asr_threads}"),
            ));
        }
        let ac = self.audio_context.unwrap_or_else(|| "floor:10".into());
        let audio_context = AudioContext::parse(&ac).ok_or_else(|| {
            invalid(
                "audio-context",
                format!("expected full, trimmed or floor:SECONDS, got {ac:?}"),
            )
        })?;
        let secs = |v: Option<f64>, default: f64, setting: &'static str| {
            let v = v.unwrap_or(default);
            if v.is_finite() && (0.05..=600.0).contains(&v) {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(invalid(
                    setting,
                    format!("must be 0.05..=600 seconds, got {v}"),
                ))
            }
        };
        let count = |v: Option<usize>, default: usize, setting: &'static str, max: usize| {
            let v = v.unwrap_or(default);
            if (1..=max).contains(&v) {
                Ok(v)
            } else {
                Err(invalid(setting, format!("must be 1..={max}, got {v}")))
            }
        };
        let llm = match self.llm.as_deref().unwrap_or("script") {
            "script" => LlmBackend::Script,
            "openai" => {
                let url = self.llm_url.ok_or_else(|| {
                    invalid(
                        "llm-url",
                        "required with --llm openai (e.g. http://127.0.0.1:8081/v1)".into(),
                    )
                })?;
                if !url.starts_with("http://") && !url.starts_with("https://") {
                    return Err(invalid(
                        "llm-url",
                        format!("{url:?} must start with http:// or https://"),
                    ));
                }
                LlmBackend::OpenAi {
                    url,
                    model: self.llm_model.unwrap_or_else(|| "default".into()),
                    api_key: self.llm_api_key.filter(|k| !k.is_empty()),
                    history: crate::llm::openai::HistoryLimits {
                        max_messages: count(
                            self.llm_history_messages,
                            crate::llm::openai::HISTORY_MAX_MESSAGES,
                            "llm-history-messages",
                            10_000,
                        )?,
                        max_chars: count(
                            self.llm_history_chars,
                            crate::llm::openai::HISTORY_MAX_CHARS,
                            "llm-history-chars",
                            10_000_000,
                        )?,
                    },
                    connect_timeout: secs(
                        self.llm_connect_timeout_s,
                        5.0,
                        "llm-connect-timeout-s",
                    )?,
                    max_tokens: count(
                        self.llm_max_tokens.map(|t| t as usize),
                        256,
                        "llm-max-tokens",
                        32_768,
                    )? as u32,
                }
            }
            other => {
                return Err(invalid(
                    "llm",
                    format!("expected script or openai, got {other:?}"),
                ));
            }
        };
        let tts_rate = self.tts_rate.unwrap_or(175);
        if !(80..=450).contains(&tts_rate) {
            return Err(invalid(
                "tts-rate",
                format!("must be 80..=450 words per minute, got {tts_rate}"),
            ));
        }
        let ms = |v: Option<u64>, default: u64, setting: &'static str, max: u64| {
            let v = v.unwrap_or(default);
            if v > max {
                Err(invalid(setting, format!("must be at most {max}, got {v}")))
            } else {
                Ok(v)
            }
        };
        let calls_dir = match self.calls_dir {
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => Some(p),
            None => Some(PathBuf::from("calls")),
        };
        let llm_first_token_timeout = secs(
            self.llm_first_token_timeout_s,
            20.0,
            "llm-first-token-timeout-s",
        )?;
        let llm_token_timeout = secs(self.llm_token_timeout_s, 10.0, "llm-token-timeout-s")?;
        let jwt_secret = self.jwt_secret.filter(|s| !s.is_empty());
        if let Some(secret) = &jwt_secret
            && secret.len() < 16
        {
            return Err(invalid(
                "jwt-secret",
                format!("must be at least 16 bytes, got {}", secret.len()),
            ));
        }
        if jwt_secret.is_none() && !self.insecure.unwrap_or(false) && !listen.ip().is_loopback() {
            return Err(invalid(
                "listen",
                format!(
                    "{listen} is reachable from other machines, and without --jwt-secret anyone \
                     there could open calls and stream audio: set a secret \
                     (CALLGATE_JWT_SECRET), listen on 127.0.0.1, or pass --insecure"
                ),
            ));
        }
        let positive = |v: Option<f64>, default: f64, setting: &'static str, min: f64| {
            let v = v.unwrap_or(default);
            if v.is_finite() && v >= min && v <= 1e6 {
                Ok(v)
            } else {
                Err(invalid(
                    setting,
                    format!("must be {min}..=1000000, got {v}"),
                ))
            }
        };
        let defaults = crate::call::limits::LimitSettings::default();
        let limits = crate::call::limits::LimitSettings {
            max_calls: count(self.max_calls, defaults.max_calls, "max-calls", 100_000)?,
            max_calls_per_user: count(
                self.max_calls_per_user,
                defaults.max_calls_per_user,
                "max-calls-per-user",
                100_000,
            )?,
            max_call_duration: Duration::from_secs_f64(
                60.0 * positive(self.max_call_minutes, 60.0, "max-call-minutes", 0.01)?,
            ),
            text_messages_per_s: positive(
                self.max_text_rate,
                defaults.text_messages_per_s,
                "max-text-rate",
                1.0,
            )?,
            max_audio_rate: positive(
                self.max_audio_rate,
                defaults.max_audio_rate,
                "max-audio-rate",
                0.0,
            )?,
            resume_grace: Duration::from_secs_f64(positive(
                self.resume_grace_s,
                defaults.resume_grace.as_secs_f64(),
                "resume-grace-s",
                0.0,
            )?),
        };
        if limits.max_audio_rate > 0.0 && limits.max_audio_rate < 1.0 {
            return Err(invalid(
                "max-audio-rate",
                "must be 0 (off) or at least 1 (real time)".into(),
            ));
        }
        Ok(ServeConfig {
            jwt_secret,
            allowed_origins: self
                .allowed_origins
                .unwrap_or_default()
                .into_iter()
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            limits,
            llm_first_token_timeout,
            llm_token_timeout,
            listen,
            model: self
                .model
                .unwrap_or_else(|| PathBuf::from("models/ggml-tiny.en.bin")),
            asr_workers,
            asr_threads,
            asr_preempt: self.asr_preempt.unwrap_or(true),
            audio_context,
            asr_prompt: self
                .asr_prompt
                .unwrap_or_else(|| crate::asr::DEFAULT_PROMPT.to_string()),
            llm,
            voice: self.voice.unwrap_or_else(|| "en-us".into()),
            tts_rate,
            personas_dir: self.personas_dir,
            persona: self
                .persona
                .unwrap_or_else(|| crate::llm::persona::DEFAULT_PERSONA.into()),
            calls_dir,
            record: self.record.unwrap_or(false),
            barge_in: Duration::from_millis(ms(self.barge_in_ms, 200, "barge-in-ms", 5000)?),
            speculative: Duration::from_millis(ms(
                self.speculative_ms,
                200,
                "speculative-ms",
                5000,
            )?),
            idle_timeout: Duration::from_secs(ms(
                self.idle_timeout_s,
                300,
                "idle-timeout-s",
                86_400,
            )?),
            drain: Duration::from_secs(ms(self.drain_s, 10, "drain-s", 600)?),
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
}
