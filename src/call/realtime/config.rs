//! A Realtime session's configuration as its client sees it: the defaults of
//! `session.created`, `session.update` merged in field by field (validated, with the bad
//! field named), the JSON echoed in `session.updated`, and the call core's view of it
//! (turn policy and [`CallConfig`]).

use serde_json::{Map, Value, json};

use crate::call::events::CallConfig;
use crate::eot::TurnPolicy;
use crate::protocol::{DEFAULT_MAX_SILENCE_MS, DEFAULT_MIN_SILENCE_MS, SILENCE_MS_RANGE};

/// Audio rate of `audio/pcm`, the only one the GA protocol names, Hz.
pub const PCM_RATE: u32 = 24_000;

/// Silence that ends a turn under `server_vad` when `silence_duration_ms` is not given
/// (the Realtime default).
const DEFAULT_SERVER_VAD_SILENCE_MS: u32 = 500;

/// Audio padding before speech, echoed (the VAD keeps its own pre-roll).
const DEFAULT_PREFIX_PADDING_MS: u32 = 300;

/// How audio is carried in `input_audio_buffer.append` and `response.output_audio.delta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// 16-bit little-endian PCM at 24 kHz.
    Pcm,
    /// G.711 μ-law at 8 kHz.
    Pcmu,
    /// G.711 A-law at 8 kHz.
    Pcma,
}

impl AudioFormat {
    /// The format object the SDKs read.
    pub fn to_json(self) -> Value {
        match self {
            Self::Pcm => json!({"type": "audio/pcm", "rate": PCM_RATE}),
            Self::Pcmu => json!({"type": "audio/pcmu"}),
            Self::Pcma => json!({"type": "audio/pcma"}),
        }
    }

    fn from_json(v: &Value, param: &str) -> Result<Self, BadField> {
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("audio/pcm");
        let format = match kind {
            "audio/pcm" => Self::Pcm,
            "audio/pcmu" => Self::Pcmu,
            "audio/pcma" => Self::Pcma,
            other => {
                return Err(BadField::new(
                    &format!("{param}.type"),
                    format!(
                        "unsupported audio format {other:?}; supported: audio/pcm, audio/pcmu, audio/pcma"
                    ),
                ));
            }
        };
        match v.get("rate") {
            None | Some(Value::Null) => {}
            Some(r) if format == Self::Pcm && r.as_u64() == Some(u64::from(PCM_RATE)) => {}
            Some(r) => {
                return Err(BadField::new(
                    &format!("{param}.rate"),
                    format!("rate {r} is not supported: audio/pcm is 24000 Hz"),
                ));
            }
        }
        Ok(format)
    }
}

/// How a Realtime session's turns end (`audio.input.turn_detection`).
#[derive(Debug, Clone, PartialEq)]
pub enum TurnDetection {
    /// A fixed silence ends each turn.
    ServerVad {
        /// The silence, ms.
        silence_ms: u32,
        /// Echoed.
        prefix_padding_ms: u32,
        /// Echoed (the VAD has its own threshold).
        threshold: f64,
        /// Echoed.
        idle_timeout_ms: Option<u64>,
        /// `false`: a VAD turn waits for `response.create`.
        create_response: bool,
        /// `false`: speech over a response lets it play on, and is answered after it.
        interrupt_response: bool,
    },
    /// callgate's smart end of turn, as eager as asked.
    SemanticVad {
        /// `low`, `medium`, `high` or `auto`.
        eagerness: String,
        /// As for `server_vad`.
        create_response: bool,
        /// As for `server_vad`.
        interrupt_response: bool,
    },
}

/// A field of a client event that cannot be honoured, named as the client spelt it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadField {
    /// The field's path, e.g. `session.audio.input.format.rate`.
    pub param: String,
    /// What is wrong with it.
    pub message: String,
}

impl BadField {
    /// A bad `param`.
    pub fn new(param: &str, message: String) -> Self {
        Self {
            param: param.to_owned(),
            message,
        }
    }
}

/// Everything a Realtime client can set on its session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// The model the client named (echoed; callgate's configured model answers).
    pub model: String,
    /// Replaces the persona's prompt when set.
    pub instructions: Option<String>,
    /// Text-only responses (`output_modalities: ["text"]`).
    pub text_only: bool,
    /// How input audio arrives.
    pub input_format: AudioFormat,
    /// How output audio is sent.
    pub output_format: AudioFormat,
    /// `None`: the client commits (`turn_detection: null`).
    pub turn_detection: Option<TurnDetection>,
    /// `audio.input.transcription` as given; the transcription events go out when set.
    pub transcription: Option<Value>,
    /// Echoed.
    pub voice: Value,
    /// Echoed.
    pub max_output_tokens: Value,
}

impl SessionConfig {
    /// The session every connection starts with: audio in and out as 24 kHz PCM, server
    /// VAD ending turns after 500 ms of silence, no input transcription events.
    pub fn new(model: &str) -> Self {
        Self {
            model: model.to_owned(),
            instructions: None,
            text_only: false,
            input_format: AudioFormat::Pcm,
            output_format: AudioFormat::Pcm,
            // The defaults of server_vad are valid.
            turn_detection: server_vad(&Map::new()).ok(),
            transcription: None,
            voice: json!("alloy"),
            max_output_tokens: json!("inf"),
        }
    }

    /// The call core's turn policy for this configuration.
    pub fn turn_policy(&self) -> TurnPolicy {
        match &self.turn_detection {
            None => TurnPolicy::Manual,
            Some(TurnDetection::ServerVad { silence_ms, .. }) => TurnPolicy::Fixed {
                silence_ms: *silence_ms,
            },
            Some(TurnDetection::SemanticVad { eagerness, .. }) => {
                let (min_silence_ms, max_silence_ms) = match eagerness.as_str() {
                    "low" => (600, *SILENCE_MS_RANGE.end()),
                    "high" => (150, 1500),
                    _ => (DEFAULT_MIN_SILENCE_MS, DEFAULT_MAX_SILENCE_MS),
                };
                TurnPolicy::Smart {
                    min_silence_ms,
                    max_silence_ms,
                }
            }
        }
    }

    /// The call core's view: prompt, speech, and commits held for `response.create`.
    pub fn call_config(&self) -> CallConfig {
        CallConfig {
            instructions: self.instructions.clone(),
            speak: !self.text_only,
            answer_commits: false,
            answer_turns: self
                .turn_detection
                .as_ref()
                .is_none_or(TurnDetection::creates),
            interruptible: self
                .turn_detection
                .as_ref()
                .is_none_or(TurnDetection::interrupts),
            idle_timeout_ms: match &self.turn_detection {
                Some(TurnDetection::ServerVad {
                    idle_timeout_ms, ..
                }) => *idle_timeout_ms,
                _ => None,
            },
        }
    }

    /// `session` (the body of a `session.update`) merged into this configuration; on a bad
    /// field nothing changes.
    pub fn merged(&self, session: &Value) -> Result<Self, BadField> {
        let Some(session) = session.as_object() else {
            return Err(BadField::new("session", "session must be an object".into()));
        };
        let mut next = self.clone();
        if let Some(kind) = session.get("type").filter(|t| !t.is_null())
            && kind != "realtime"
        {
            return Err(BadField::new(
                "session.type",
                format!("session type {kind} is not supported; use \"realtime\""),
            ));
        }
        if let Some(v) = session.get("instructions") {
            next.instructions = match v {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                _ => return Err(not_a("session.instructions", "string")),
            };
        }
        if let Some(v) = session.get("model").and_then(Value::as_str) {
            next.model = v.to_owned();
        }
        if let Some(v) = session.get("output_modalities") {
            next.text_only = text_only(v)?;
        }
        if let Some(v) = session.get("max_output_tokens") {
            next.max_output_tokens = v.clone();
        }
        if let Some(audio) = session.get("audio").filter(|a| !a.is_null()) {
            next.merge_audio(audio)?;
        }
        Ok(next)
    }

    fn merge_audio(&mut self, audio: &Value) -> Result<(), BadField> {
        if let Some(input) = audio.get("input").filter(|i| !i.is_null()) {
            if let Some(f) = input.get("format").filter(|f| !f.is_null()) {
                self.input_format = AudioFormat::from_json(f, "session.audio.input.format")?;
            }
            if let Some(t) = input.get("transcription") {
                self.transcription = Some(t.clone()).filter(|t| !t.is_null());
            }
            if let Some(td) = input.get("turn_detection") {
                self.turn_detection = turn_detection(td)?;
            }
        }
        if let Some(output) = audio.get("output").filter(|o| !o.is_null()) {
            if let Some(f) = output.get("format").filter(|f| !f.is_null()) {
                self.output_format = AudioFormat::from_json(f, "session.audio.output.format")?;
            }
            if let Some(v) = output.get("voice").filter(|v| !v.is_null()) {
                self.voice = v.clone();
            }
        }
        Ok(())
    }

    /// The `session` object of `session.created` / `session.updated`.
    pub fn to_json(&self, session_id: &str) -> Value {
        let modalities = if self.text_only { "text" } else { "audio" };
        json!({
            "type": "realtime",
            "object": "realtime.session",
            "id": session_id,
            "model": self.model,
            "output_modalities": [modalities],
            "instructions": self.instructions.clone().unwrap_or_default(),
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": self.max_output_tokens,
            "tracing": null,
            "truncation": "auto",
            "prompt": null,
            "expires_at": 0,
            "include": null,
            "audio": {
                "input": {
                    "format": self.input_format.to_json(),
                    "transcription": self.transcription,
                    "noise_reduction": null,
                    "turn_detection": self.turn_detection.as_ref().map(TurnDetection::to_json),
                },
                "output": {
                    "format": self.output_format.to_json(),
                    "voice": self.voice,
                    "speed": 1.0,
                },
            },
        })
    }
}

impl TurnDetection {
    /// Whether a turn it ends is answered without a `response.create`.
    fn creates(&self) -> bool {
        match self {
            Self::ServerVad {
                create_response, ..
            }
            | Self::SemanticVad {
                create_response, ..
            } => *create_response,
        }
    }

    /// Whether speech over a response interrupts it.
    fn interrupts(&self) -> bool {
        match self {
            Self::ServerVad {
                interrupt_response, ..
            }
            | Self::SemanticVad {
                interrupt_response, ..
            } => *interrupt_response,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Self::ServerVad {
                silence_ms,
                prefix_padding_ms,
                threshold,
                idle_timeout_ms,
                create_response,
                interrupt_response,
            } => json!({
                "type": "server_vad",
                "threshold": threshold,
                "prefix_padding_ms": prefix_padding_ms,
                "silence_duration_ms": silence_ms,
                "idle_timeout_ms": idle_timeout_ms,
                "create_response": create_response,
                "interrupt_response": interrupt_response,
            }),
            Self::SemanticVad {
                eagerness,
                create_response,
                interrupt_response,
            } => json!({
                "type": "semantic_vad",
                "eagerness": eagerness,
                "create_response": create_response,
                "interrupt_response": interrupt_response,
            }),
        }
    }
}

const TURN_DETECTION: &str = "session.audio.input.turn_detection";

fn not_a(param: &str, kind: &str) -> BadField {
    BadField::new(param, format!("{param} must be a {kind}"))
}

/// `output_modalities`: `["audio"]` or `["text"]`.
fn text_only(v: &Value) -> Result<bool, BadField> {
    const PARAM: &str = "session.output_modalities";
    let list: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match list.as_slice() {
        ["audio"] => Ok(false),
        ["text"] => Ok(true),
        _ => Err(BadField::new(
            PARAM,
            format!("{PARAM} must be [\"audio\"] or [\"text\"], not {v}"),
        )),
    }
}

fn turn_detection(v: &Value) -> Result<Option<TurnDetection>, BadField> {
    let Some(fields) = v.as_object() else {
        return match v {
            Value::Null => Ok(None),
            _ => Err(not_a(TURN_DETECTION, "object or null")),
        };
    };
    match fields.get("type").and_then(Value::as_str) {
        Some("server_vad") | None => server_vad(fields).map(Some),
        Some("semantic_vad") => {
            let eagerness = fields
                .get("eagerness")
                .and_then(Value::as_str)
                .unwrap_or("auto");
            if !["low", "medium", "high", "auto"].contains(&eagerness) {
                return Err(BadField::new(
                    &format!("{TURN_DETECTION}.eagerness"),
                    format!("eagerness {eagerness:?} is not one of low, medium, high, auto"),
                ));
            }
            Ok(Some(TurnDetection::SemanticVad {
                eagerness: eagerness.to_owned(),
                create_response: flag(fields, "create_response")?,
                interrupt_response: flag(fields, "interrupt_response")?,
            }))
        }
        Some(other) => Err(BadField::new(
            &format!("{TURN_DETECTION}.type"),
            format!("turn detection {other:?} is not one of server_vad, semantic_vad"),
        )),
    }
}

fn server_vad(fields: &Map<String, Value>) -> Result<TurnDetection, BadField> {
    let silence_ms =
        number(fields, "silence_duration_ms")?.map_or(Ok(DEFAULT_SERVER_VAD_SILENCE_MS), |ms| {
            u32::try_from(ms)
                .ok()
                .filter(|ms| SILENCE_MS_RANGE.contains(ms))
                .ok_or_else(|| {
                    BadField::new(
                        &format!("{TURN_DETECTION}.silence_duration_ms"),
                        format!(
                            "silence_duration_ms {ms} is outside {}..={}",
                            SILENCE_MS_RANGE.start(),
                            SILENCE_MS_RANGE.end()
                        ),
                    )
                })
        })?;
    let prefix_padding_ms = number(fields, "prefix_padding_ms")?
        .map_or(DEFAULT_PREFIX_PADDING_MS, |ms| ms.min(10_000) as u32);
    let threshold = match fields.get("threshold") {
        None | Some(Value::Null) => 0.5,
        Some(t) => t
            .as_f64()
            .filter(|t| (0.0..=1.0).contains(t))
            .ok_or_else(|| not_a(&format!("{TURN_DETECTION}.threshold"), "number from 0 to 1"))?,
    };
    Ok(TurnDetection::ServerVad {
        silence_ms,
        prefix_padding_ms,
        threshold,
        idle_timeout_ms: number(fields, "idle_timeout_ms")?,
        create_response: flag(fields, "create_response")?,
        interrupt_response: flag(fields, "interrupt_response")?,
    })
}

/// An optional whole number field of the turn detection.
fn number(fields: &Map<String, Value>, name: &str) -> Result<Option<u64>, BadField> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| not_a(&format!("{TURN_DETECTION}.{name}"), "whole number")),
    }
}

/// An optional boolean field of the turn detection, `true` when absent.
fn flag(fields: &Map<String, Value>, name: &str) -> Result<bool, BadField> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(true),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(not_a(&format!("{TURN_DETECTION}.{name}"), "boolean")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_session_is_server_vad_over_24_khz_pcm() {
        let c = SessionConfig::new("gpt-realtime");
        assert_eq!(c.turn_policy(), TurnPolicy::Fixed { silence_ms: 500 });
        let j = c.to_json("sess_1");
        assert_eq!(j["audio"]["input"]["format"]["rate"], 24000);
        assert_eq!(j["audio"]["input"]["turn_detection"]["type"], "server_vad");
        assert_eq!(j["output_modalities"][0], "audio");
    }

    #[test]
    fn an_update_changes_only_what_it_names() {
        let c = SessionConfig::new("m");
        let u = json!({"type":"realtime","instructions":"Be brief.",
            "audio":{"input":{"turn_detection":{"type":"server_vad","silence_duration_ms":800}}}});
        let n = c.merged(&u).expect("valid");
        assert_eq!(n.instructions.as_deref(), Some("Be brief."));
        assert_eq!(n.turn_policy(), TurnPolicy::Fixed { silence_ms: 800 });
        assert_eq!(n.output_format, AudioFormat::Pcm);
        let manual = n.merged(&json!({"audio":{"input":{"turn_detection":null}}}));
        assert_eq!(manual.expect("valid").turn_policy(), TurnPolicy::Manual);
        let text = n
            .merged(&json!({"output_modalities":["text"]}))
            .expect("valid");
        assert!(text.text_only && !text.call_config().speak);
    }

    #[test]
    fn semantic_vad_eagerness_sets_the_smart_silences() {
        let c = SessionConfig::new("m");
        let high = json!({"audio":{"input":{"turn_detection":{"type":"semantic_vad","eagerness":"high"}}}});
        let policy = c.merged(&high).expect("valid").turn_policy();
        assert_eq!(
            policy,
            TurnPolicy::Smart {
                min_silence_ms: 150,
                max_silence_ms: 1500
            }
        );
        let auto = json!({"audio":{"input":{"turn_detection":{"type":"semantic_vad"}}}});
        let policy = c.merged(&auto).expect("valid").turn_policy();
        assert_eq!(
            policy,
            TurnPolicy::Smart {
                min_silence_ms: DEFAULT_MIN_SILENCE_MS,
                max_silence_ms: DEFAULT_MAX_SILENCE_MS
            }
        );
    }

    #[test]
    fn a_bad_field_is_named_and_changes_nothing() {
        let c = SessionConfig::new("m");
        let cases = [
            (
                json!({"audio":{"input":{"format":{"type":"audio/pcm","rate":16000}}}}),
                "session.audio.input.format.rate",
            ),
            (
                json!({"audio":{"output":{"format":{"type":"audio/opus"}}}}),
                "session.audio.output.format.type",
            ),
            (
                json!({"audio":{"input":{"turn_detection":{"type":"server_vad","silence_duration_ms":9}}}}),
                "session.audio.input.turn_detection.silence_duration_ms",
            ),
            (
                json!({"output_modalities":["text","audio"]}),
                "session.output_modalities",
            ),
            (json!({"instructions": 3}), "session.instructions"),
            (json!({"type":"transcription"}), "session.type"),
        ];
        for (update, param) in cases {
            let e = c.merged(&update).expect_err("invalid");
            assert_eq!(e.param, param, "{update}");
        }
    }
}
