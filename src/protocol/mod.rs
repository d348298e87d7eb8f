//! The callgate.v1 wire protocol: message types and the binary audio frame codec.
//!
//! Everything here is pure (no I/O, no tokio) so the server, the replay CLI and the tests
//! share one definition of the contract in `PROTOCOL.md`. Message types derive both
//! `Serialize` and `Deserialize` because each side of the wire needs both directions in
//! tests.
//!
//! Parsing never panics on client input: binary frames fail with a [`FrameError`] (sent as
//! `BAD_AUDIO`), text frames with a [`BadMessage`] (sent as `BAD_MESSAGE`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use ts_rs::TS;

mod error;
mod frame;

pub use error::*;
pub use frame::*;

/// The subprotocol name a client may offer and the `protocol` field of `session.started`.
pub const PROTOCOL_NAME: &str = "callgate.v1";

/// Largest binary or text frame accepted, in bytes; also sent as `limits.maxFrameBytes`.
pub const MAX_FRAME_BYTES: usize = 65536;
/// The only sample encoding callgate.v1 speaks in either direction.
pub const ENCODING_PCM_S16LE: &str = "pcm_s16le";

/// `silenceMs` used when `turnDetection` is `server_vad` and omits it.
pub const DEFAULT_SILENCE_MS: u32 = 500;

/// `minSilenceMs` used when `turnDetection` is `smart` and omits it: the shortest silence
/// that ends a turn judged complete.
pub const DEFAULT_MIN_SILENCE_MS: u32 = 250;

/// `maxSilenceMs` used when `turnDetection` is `smart` and omits it: the longest silence a
/// turn judged unfinished waits before it ends anyway.
pub const DEFAULT_MAX_SILENCE_MS: u32 = 2500;

/// Output sample rate used when `output.sampleRate` is omitted; the usual rate of TTS voices.
pub const DEFAULT_OUTPUT_SAMPLE_RATE: u32 = 24000;

/// Accepted `input.sampleRate` / `output.sampleRate` values.
pub const SAMPLE_RATE_RANGE: std::ops::RangeInclusive<u32> = 8000..=48000;

/// Accepted `turnDetection.silenceMs` values: below 100 ms every breath ends a turn, above
/// 5 s the call feels dead.
pub const SILENCE_MS_RANGE: std::ops::RangeInclusive<u32> = 100..=5000;

// ---------------------------------------------------------------------------------------
// JSON messages: client to server
// ---------------------------------------------------------------------------------------

/// A rejected text frame or `session.start`; `message` becomes the `BAD_MESSAGE` error's
/// `message` and names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BadMessage {
    /// Developer-facing description.
    pub message: String,
}

impl BadMessage {
    /// Wraps a description.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// A message from client to server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum ClientMessage {
    /// Opens a call; must be the first message.
    #[serde(rename = "session.start")]
    SessionStart(SessionStart),
    /// Reattaches a new connection to a call whose socket dropped.
    #[serde(rename = "session.resume")]
    SessionResume {
        /// The `sessionId` from `session.started`.
        session_id: String,
        /// The `resumeToken` from `session.started`; proves ownership of the session.
        resume_token: String,
        /// A call token, for a client that sent its token in `session.start` rather than
        /// on the upgrade request (the same rules apply).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// Ends the call normally.
    #[serde(rename = "session.end")]
    SessionEnd,
    /// Input audio for clients that cannot send binary frames.
    #[serde(rename = "audio.chunk")]
    AudioChunk {
        /// Input sequence number, shared with binary frames.
        seq: u32,
        /// Base64 of the little-endian PCM bytes.
        audio: String,
    },
    /// Manual turn detection: the user's turn is over.
    #[serde(rename = "input.commit")]
    InputCommit,
    /// Discards audio not yet committed.
    #[serde(rename = "input.clear")]
    InputClear,
    /// A complete user turn given as text (text-only clients and tests).
    #[serde(rename = "input.text")]
    InputText {
        /// The user's words, used as the final transcript.
        text: String,
    },
    /// Cancels the response in flight.
    #[serde(rename = "response.cancel")]
    ResponseCancel {
        /// Only cancel if this turn is the one in flight; `None` cancels whatever is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        turn_id: Option<u32>,
    },
    /// How much of a response's audio the client has actually played, for `heardText`.
    #[serde(rename = "playback.position")]
    PlaybackPosition {
        /// The response being played.
        turn_id: u32,
        /// Milliseconds of that response's audio played so far.
        played_ms: u64,
    },
    /// Application-level keep-alive and round-trip measurement.
    #[serde(rename = "ping")]
    Ping {
        /// Opaque client value echoed in `pong` (normally client ms); `null` when omitted.
        #[serde(default)]
        t: Value,
    },
}

/// Every `type` a client may send, so an unknown one can be named in the error instead of
/// reported as a serde variant list.
pub const CLIENT_MESSAGE_TYPES: &[&str] = &[
    "session.start",
    "session.resume",
    "session.end",
    "audio.chunk",
    "input.commit",
    "input.clear",
    "input.text",
    "response.cancel",
    "playback.position",
    "ping",
];

/// The `session.start` payload. Omitted parts take the defaults documented on each field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct SessionStart {
    /// JWT when not given on the upgrade request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Which AI role/script to use; `None` means the server's default persona.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona: Option<String>,
    /// Free-form context given to the LLM; empty when omitted.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub context: Map<String, Value>,
    /// The client's audio format. Required: there is no safe guess for a microphone's rate.
    pub input: InputFormat,
    /// The audio format the client wants back; defaults to 24 kHz binary PCM.
    #[serde(default)]
    pub output: OutputFormat,
    /// How the end of a user turn is found; defaults to `smart`.
    #[serde(default)]
    pub turn_detection: TurnDetection,
}

impl SessionStart {
    /// Checks the ranges the contract sets; the error names the offending field so a client
    /// developer can fix it from the `BAD_MESSAGE` alone.
    pub fn validate(&self) -> Result<(), BadMessage> {
        if !SAMPLE_RATE_RANGE.contains(&self.input.sample_rate) {
            return Err(BadMessage::new(format!(
                "input.sampleRate must be 8000..=48000, got {}",
                self.input.sample_rate
            )));
        }
        if !matches!(self.input.channels, 1 | 2) {
            return Err(BadMessage::new(format!(
                "input.channels must be 1 or 2, got {}",
                self.input.channels
            )));
        }
        if self.input.encoding != ENCODING_PCM_S16LE {
            return Err(BadMessage::new(format!(
                "input.encoding must be \"pcm_s16le\", got {:?}",
                self.input.encoding
            )));
        }
        if !SAMPLE_RATE_RANGE.contains(&self.output.sample_rate) {
            return Err(BadMessage::new(format!(
                "output.sampleRate must be 8000..=48000, got {}",
                self.output.sample_rate
            )));
        }
        if self.output.encoding != ENCODING_PCM_S16LE {
            return Err(BadMessage::new(format!(
                "output.encoding must be \"pcm_s16le\", got {:?}",
                self.output.encoding
            )));
        }
        self.turn_detection.validate()
    }
}

fn default_channels() -> u16 {
    1
}

fn default_encoding() -> String {
    ENCODING_PCM_S16LE.to_owned()
}

fn default_output_rate() -> u32 {
    DEFAULT_OUTPUT_SAMPLE_RATE
}

/// The format of the client's input audio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct InputFormat {
    /// Samples per second per channel; the server resamples to what ASR needs.
    pub sample_rate: u32,
    /// 1, or 2 for interleaved stereo that the server down-mixes; defaults to 1.
    #[serde(default = "default_channels")]
    pub channels: u16,
    /// Always `pcm_s16le`; the field exists so a future encoding can be negotiated.
    #[serde(default = "default_encoding")]
    pub encoding: String,
}

/// The format of the audio the server sends back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct OutputFormat {
    /// Samples per second; defaults to [`DEFAULT_OUTPUT_SAMPLE_RATE`].
    #[serde(default = "default_output_rate")]
    pub sample_rate: u32,
    /// Always `pcm_s16le`.
    #[serde(default = "default_encoding")]
    pub encoding: String,
    /// Binary frames or JSON `response.audio.chunk` messages; defaults to binary.
    #[serde(default)]
    pub transport: Transport,
}

impl Default for OutputFormat {
    fn default() -> Self {
        Self {
            sample_rate: DEFAULT_OUTPUT_SAMPLE_RATE,
            encoding: default_encoding(),
            transport: Transport::Binary,
        }
    }
}

/// How output audio travels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Kind-2 binary frames: the compact default.
    #[default]
    Binary,
    /// `response.audio.chunk` text messages, for clients that cannot take binary.
    Json,
}

/// How the server decides a user turn is over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct TurnDetection {
    /// Smart end of turn (the default), server VAD with a fixed silence, or client commits.
    #[serde(default)]
    pub mode: TurnMode,
    /// `server_vad`: the silence that ends a turn; `None` means [`DEFAULT_SILENCE_MS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence_ms: Option<u32>,
    /// `smart`: the silence that ends a turn judged complete; `None` means
    /// [`DEFAULT_MIN_SILENCE_MS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_silence_ms: Option<u32>,
    /// `smart`: the silence that ends any turn, however unfinished it sounds; `None` means
    /// [`DEFAULT_MAX_SILENCE_MS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_silence_ms: Option<u32>,
}

impl TurnDetection {
    /// The silence that ends a `server_vad` turn, with the default applied.
    pub fn silence_ms_or_default(&self) -> u32 {
        self.silence_ms.unwrap_or(DEFAULT_SILENCE_MS)
    }

    /// `smart`'s shortest and longest end-of-turn silences, with the defaults applied.
    pub fn smart_silences_ms(&self) -> (u32, u32) {
        (
            self.min_silence_ms.unwrap_or(DEFAULT_MIN_SILENCE_MS),
            self.max_silence_ms.unwrap_or(DEFAULT_MAX_SILENCE_MS),
        )
    }

    /// Checks each silence against [`SILENCE_MS_RANGE`] and `minSilenceMs <= maxSilenceMs`.
    pub fn validate(&self) -> Result<(), BadMessage> {
        for (name, value) in [
            ("silenceMs", self.silence_ms),
            ("minSilenceMs", self.min_silence_ms),
            ("maxSilenceMs", self.max_silence_ms),
        ] {
            if let Some(ms) = value
                && !SILENCE_MS_RANGE.contains(&ms)
            {
                return Err(BadMessage::new(format!(
                    "turnDetection.{name} must be 100..=5000, got {ms}"
                )));
            }
        }
        let (min, max) = self.smart_silences_ms();
        if min > max {
            return Err(BadMessage::new(format!(
                "turnDetection.minSilenceMs ({min}) must not exceed maxSilenceMs ({max})"
            )));
        }
        Ok(())
    }
}

/// Turn detection mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "snake_case")]
pub enum TurnMode {
    /// The server ends the turn after `minSilenceMs` when what was said sounds finished,
    /// later when it sounds unfinished, and never later than `maxSilenceMs`.
    #[default]
    Smart,
    /// The server's VAD ends the turn after `silenceMs` of silence.
    ServerVad,
    /// The client ends the turn with `input.commit`.
    Manual,
}

/// Which rule ended a user turn, in `input.speech_stopped` and `response.done.latency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "snake_case")]
pub enum EndRule {
    /// `server_vad`: `silenceMs` of silence.
    Silence,
    /// `smart`: the answer sounded finished; ended after `minSilenceMs`.
    Complete,
    /// `smart`: the answer might go on; ended after a longer silence.
    Unsure,
    /// `smart`: the answer sounded unfinished, but `maxSilenceMs` passed.
    MaxSilence,
    /// The turn reached the server's longest turn; the speech after it is a new turn.
    LongestTurn,
}

/// Why a user turn ended when it did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct EndOfTurn {
    /// The rule that ended it.
    pub rule: EndRule,
    /// Silence after the speech when the turn ended.
    pub silence_ms: u64,
    /// `smart`: how likely the answer was finished (0-1), from its words and its sound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
}

/// Parses one text frame from a client.
///
/// The checks run in the order a client developer would want them reported: size, JSON
/// syntax, the `type` field, an unknown `type` (named), then the fields of a known type
/// (the type and serde's complaint). Unknown extra fields are ignored.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, BadMessage> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(BadMessage::new(format!(
            "text frame is {} bytes, over the {MAX_FRAME_BYTES}-byte limit",
            text.len()
        )));
    }
    let value = parse_object_with_type(text, CLIENT_MESSAGE_TYPES)?;
    let kind = message_type(&value);
    serde_json::from_value(value).map_err(|e| BadMessage::new(format!("bad {kind} message: {e}")))
}

/// Returns the `type` of an object already checked by [`parse_object_with_type`].
fn message_type(value: &Value) -> String {
    value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn parse_object_with_type(text: &str, known: &[&str]) -> Result<Value, BadMessage> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| BadMessage::new(format!("invalid JSON: {e}")))?;
    let Some(obj) = value.as_object() else {
        return Err(BadMessage::new("message must be a JSON object"));
    };
    match obj.get("type") {
        None => return Err(BadMessage::new("message has no \"type\" field")),
        Some(Value::String(t)) if !known.contains(&t.as_str()) => {
            return Err(BadMessage::new(format!("unknown message type {t:?}")));
        }
        Some(Value::String(_)) => {}
        Some(_) => return Err(BadMessage::new("message field \"type\" must be a string")),
    }
    Ok(value)
}

// ---------------------------------------------------------------------------------------
// JSON messages: server to client
// ---------------------------------------------------------------------------------------

/// A message from server to client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum ServerMessage {
    /// The call is open; echoes the negotiated formats.
    #[serde(rename = "session.started")]
    SessionStarted {
        /// Identifies the session for `session.resume`.
        session_id: String,
        /// Secret the client must present to resume.
        resume_token: String,
        /// Always [`PROTOCOL_NAME`].
        protocol: String,
        /// The input format in effect, defaults filled in.
        input: InputFormat,
        /// The output format in effect, defaults filled in.
        output: OutputFormat,
        /// Limits the client must respect.
        limits: Limits,
        /// The interviewer's voice, as `--voice` names it: `piper:en_US-joe-medium` (the
        /// default neural voice) or `espeak:NAME`.
        voice: String,
    },
    /// A resumed call: where to restart sending, and the conversation so far.
    #[serde(rename = "session.resumed")]
    SessionResumed {
        /// The session that was resumed.
        session_id: String,
        /// The first input seq the client must (re)send: one past the last ack.
        next_seq: u32,
        /// The conversation so far, oldest first, so the client can redraw its transcript.
        turns: Vec<TurnRecord>,
    },
    /// The call is over; the socket closes next.
    #[serde(rename = "session.ended")]
    SessionEnded {
        /// The session that ended.
        session_id: String,
        /// Who or what ended it.
        reason: EndReason,
        /// User turns taken.
        turns: u32,
        /// Call length.
        duration_ms: u64,
    },
    /// Input audio received up to and including `seq` with no gap before it.
    #[serde(rename = "audio.ack")]
    AudioAck {
        /// Highest contiguous input seq received.
        seq: u32,
    },
    /// Server VAD heard the user start speaking.
    #[serde(rename = "input.speech_started")]
    InputSpeechStarted {
        /// The user turn this speech opens.
        turn_id: u32,
        /// Position in the input stream of the speech onset.
        audio_ms: u64,
    },
    /// Server VAD decided the user's turn is over.
    #[serde(rename = "input.speech_stopped")]
    InputSpeechStopped {
        /// The user turn that ended.
        turn_id: u32,
        /// Position in the input stream where speech ended.
        audio_ms: u64,
        /// Which rule ended the turn, and when.
        end_of_turn: EndOfTurn,
    },
    /// What the user said: partials while speaking, exactly one final per turn.
    #[serde(rename = "transcript")]
    Transcript {
        /// The user turn transcribed.
        turn_id: u32,
        /// Transcribed text.
        text: String,
        /// True for the one final transcript of the turn.
        is_final: bool,
        /// Start of the transcribed audio in the input stream (final only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_ms: Option<u64>,
        /// End of the transcribed audio in the input stream (final only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end_ms: Option<u64>,
    },
    /// A response to the turn has begun (or is waiting).
    #[serde(rename = "response.started")]
    ResponseStarted {
        /// The turn answered.
        turn_id: u32,
        /// Thinking, queued for capacity, or retrying an engine.
        status: ResponseStatus,
        /// Expected wait when queued.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        eta_ms: Option<u64>,
    },
    /// The candidate spoke over the response: its audio has stopped and the client should
    /// stop playing, keeping what it has buffered, until `response.resumed` (a backchannel)
    /// or `response.done` `cancelled` (an interruption).
    #[serde(rename = "response.paused")]
    ResponsePaused {
        /// The response paused.
        turn_id: u32,
        /// Where the candidate's speech began in the input stream.
        audio_ms: u64,
    },
    /// What the candidate said over the response was a backchannel ("mm-hmm", a cough):
    /// play on from where playback stopped; the server's audio continues from where it
    /// stopped. The backchannel is not a user turn.
    #[serde(rename = "response.resumed")]
    ResponseResumed {
        /// The response resumed.
        turn_id: u32,
        /// How long it was paused, ms.
        paused_ms: u64,
        /// What the candidate said ("" for sound without words).
        text: String,
    },
    /// One piece of the response text, in order.
    #[serde(rename = "response.text.delta")]
    ResponseTextDelta {
        /// The turn answered.
        turn_id: u32,
        /// 0-based position of this delta, so a client can spot a lost one.
        index: u32,
        /// The text piece.
        delta: String,
    },
    /// Output audio for JSON-transport clients; the same content as a kind-2 frame.
    #[serde(rename = "response.audio.chunk")]
    ResponseAudioChunk {
        /// The turn the audio belongs to.
        turn_id: u32,
        /// Output seq, counted across the call.
        seq: u32,
        /// Base64 of the little-endian PCM bytes.
        audio: String,
        /// First chunk of the response.
        first: bool,
        /// Last chunk of the response.
        last: bool,
    },
    /// Closes every response that started, exactly once.
    #[serde(rename = "response.done")]
    ResponseDone {
        /// The turn answered.
        turn_id: u32,
        /// How the response ended.
        status: DoneStatus,
        /// Everything the AI generated.
        text: String,
        /// The part the client actually played; what the conversation history keeps.
        heard_text: String,
        /// Stage timings.
        latency: Latency,
        /// Tokens the model reported using for this turn, when its server sends them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<TokenUsage>,
    },
    /// Something went wrong; see [`ErrorEvent`].
    #[serde(rename = "error")]
    Error(ErrorEvent),
    /// Answer to `ping`.
    #[serde(rename = "pong")]
    Pong {
        /// The client's `t`, unchanged.
        t: Value,
        /// Server wall clock in ms since the Unix epoch, for clock-offset estimates.
        server_time: u64,
    },
}

impl ServerMessage {
    /// Serializes for a text frame. These types always serialize; should that ever break,
    /// the client gets an `INTERNAL` error rather than the server panicking.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            let fallback = ErrorEvent::new(
                ErrorCode::Internal,
                format!("could not serialize a server message: {e}"),
                true,
            );
            serde_json::to_string(&ServerMessage::Error(fallback)).unwrap_or_else(|_| {
                r#"{"type":"error","code":"INTERNAL","message":"serialization failed","userMessage":"Something went wrong on our side.","recoverable":true}"#.to_owned()
            })
        })
    }

    /// A JSON-transport audio chunk with the samples base64-encoded.
    pub fn audio_chunk(turn_id: u32, seq: u32, first: bool, last: bool, samples: &[i16]) -> Self {
        Self::ResponseAudioChunk {
            turn_id,
            seq,
            audio: samples_to_base64(samples),
            first,
            last,
        }
    }
}

impl From<ErrorEvent> for ServerMessage {
    fn from(e: ErrorEvent) -> Self {
        Self::Error(e)
    }
}

/// Every `type` the server may send.
pub const SERVER_MESSAGE_TYPES: &[&str] = &[
    "session.started",
    "session.resumed",
    "session.ended",
    "audio.ack",
    "input.speech_started",
    "input.speech_stopped",
    "transcript",
    "response.started",
    "response.paused",
    "response.resumed",
    "response.text.delta",
    "response.audio.chunk",
    "response.done",
    "error",
    "pong",
];

/// Parses one text frame from the server (for clients), with the same error reporting as
/// [`parse_client_message`].
pub fn parse_server_message(text: &str) -> Result<ServerMessage, BadMessage> {
    let value = parse_object_with_type(text, SERVER_MESSAGE_TYPES)?;
    let kind = message_type(&value);
    serde_json::from_value(value).map_err(|e| BadMessage::new(format!("bad {kind} message: {e}")))
}

/// Limits announced in `session.started`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Largest frame the server accepts, [`MAX_FRAME_BYTES`].
    pub max_frame_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: MAX_FRAME_BYTES,
        }
    }
}

/// One exchange of the conversation, replayed in `session.resumed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct TurnRecord {
    /// The turn id (0 for a greeting).
    pub turn_id: u32,
    /// The user's final transcript; empty for the greeting.
    pub user_text: String,
    /// What the AI said that the user heard (`heardText`).
    pub ai_text: String,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "lowercase")]
pub enum EndReason {
    /// The client sent `session.end`.
    Client,
    /// No audio or messages for too long.
    Idle,
    /// The server is shutting down.
    Shutdown,
    /// An unrecoverable error.
    Error,
    /// The connection dropped and no resume came within the grace period.
    Timeout,
}

/// Status in `response.started`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "lowercase")]
pub enum ResponseStatus {
    /// Working on it.
    Thinking,
    /// Waiting for engine capacity; `etaMs` says how long.
    Queued,
    /// An engine call failed and is being retried.
    Retrying,
}

/// Status in `response.done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "lowercase")]
pub enum DoneStatus {
    /// Spoken in full.
    Completed,
    /// Barge-in or `response.cancel`.
    Cancelled,
    /// An engine failed; an `error` accompanies it.
    Failed,
}

/// Stage timings of one response, in ms. Each is `null` when the stage did not run (a
/// cancelled turn may stop before TTS, a typed turn has no ASR), so clients see every key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    /// End of speech in the audio to the end-of-turn decision.
    pub endpoint_ms: Option<u64>,
    /// The rule that ended the user's turn (`null` for typed and manual turns).
    pub end_of_turn: Option<EndOfTurn>,
    /// Final transcription.
    pub asr_ms: Option<u64>,
    /// LLM request to its first token.
    pub llm_first_token_ms: Option<u64>,
    /// First sentence to its first synthesized audio.
    pub tts_first_audio_ms: Option<u64>,
    /// End-of-turn decision to the first output audio frame sent.
    pub first_audio_ms: Option<u64>,
    /// End-of-turn decision to `response.done`.
    pub total_ms: Option<u64>,
}

/// Token counts a model server reported for one response (OpenAI's `usage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    /// Tokens of the prompt (system prompt and history).
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header(kind: u8, flags: u8, reserved: u16, seq: u32, turn: u32) -> Vec<u8> {
        let mut v = vec![kind, flags];
        v.extend_from_slice(&reserved.to_le_bytes());
        v.extend_from_slice(&seq.to_le_bytes());
        v.extend_from_slice(&turn.to_le_bytes());
        v
    }

    // ---- binary frames ----

    #[test]
    fn input_frame_round_trip() {
        let samples = [0i16, 1, -1, i16::MAX, i16::MIN, 1234];
        let bytes = encode_input_frame(42, &samples);
        assert_eq!(bytes.len(), FRAME_HEADER_LEN + 12);
        assert_eq!(&bytes[..12], &header(1, 0, 0, 42, 0)[..]);
        let chunk = decode_input_frame(&bytes).unwrap();
        assert_eq!(chunk.seq, 42);
        assert_eq!(chunk.samples, samples);
    }

    #[test]
    fn input_frame_is_little_endian() {
        let mut bytes = header(1, 0, 0, 0x0102_0304, 0);
        bytes.extend_from_slice(&[0x34, 0x12]);
        let chunk = decode_input_frame(&bytes).unwrap();
        assert_eq!(chunk.seq, 0x0102_0304);
        assert_eq!(chunk.samples, [0x1234]);
    }

    #[test]
    fn output_frame_round_trip_all_flag_combinations() {
        for (first, last) in [(false, false), (true, false), (false, true), (true, true)] {
            let bytes = encode_output_frame(7, 3, first, last, &[5, -5]);
            let expected_flags = u8::from(first) | (u8::from(last) << 1);
            assert_eq!(bytes[1], expected_flags);
            let c = decode_output_frame(&bytes).unwrap();
            assert_eq!(
                c,
                OutputChunk {
                    seq: 7,
                    turn: 3,
                    first,
                    last,
                    samples: vec![5, -5]
                }
            );
        }
    }

    #[test]
    fn output_frame_may_be_a_bare_marker() {
        let c = decode_output_frame(&encode_output_frame(1, 2, false, true, &[])).unwrap();
        assert!(c.last && c.samples.is_empty());
    }

    #[test]
    fn largest_frame_is_accepted_one_more_sample_is_not() {
        let samples = vec![1i16; MAX_SAMPLES_PER_FRAME];
        let bytes = encode_input_frame(0, &samples);
        assert!(bytes.len() <= MAX_FRAME_BYTES);
        assert_eq!(
            decode_input_frame(&bytes).unwrap().samples.len(),
            MAX_SAMPLES_PER_FRAME
        );
        let too_big = encode_input_frame(0, &vec![1i16; MAX_SAMPLES_PER_FRAME + 1]);
        assert!(matches!(
            decode_input_frame(&too_big),
            Err(FrameError::TooLong { .. })
        ));
    }

    #[test]
    fn hostile_input_frames_are_rejected() {
        let sample = [1u8, 0];
        let with = |h: Vec<u8>, payload: &[u8]| {
            let mut v = h;
            v.extend_from_slice(payload);
            v
        };
        let cases: Vec<(Vec<u8>, FrameError)> = vec![
            (vec![], FrameError::TooShort { len: 0 }),
            (vec![1; 11], FrameError::TooShort { len: 11 }),
            (
                vec![0; MAX_FRAME_BYTES + 1],
                FrameError::TooLong {
                    len: MAX_FRAME_BYTES + 1,
                },
            ),
            (header(1, 0, 0, 0, 0), FrameError::Empty),
            (
                with(header(2, 0, 0, 0, 0), &sample),
                FrameError::WrongKind {
                    found: 2,
                    expected: 1,
                },
            ),
            (
                with(header(0, 0, 0, 0, 0), &sample),
                FrameError::WrongKind {
                    found: 0,
                    expected: 1,
                },
            ),
            (
                with(header(1, 0, 7, 0, 0), &sample),
                FrameError::Reserved(7),
            ),
            (
                with(header(1, 1, 0, 0, 0), &sample),
                FrameError::InputFlags(1),
            ),
            (
                with(header(1, 0, 0, 0, 9), &sample),
                FrameError::InputTurn(9),
            ),
            (
                with(header(1, 0, 0, 0, 0), &[1, 2, 3]),
                FrameError::OddLength(3),
            ),
            (with(header(1, 0, 0, 0, 0), &[1]), FrameError::OddLength(1)),
        ];
        for (bytes, expected) in cases {
            let err = decode_input_frame(&bytes).unwrap_err();
            assert_eq!(err, expected);
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn hostile_output_frames_are_rejected() {
        let mut bad_flags = header(2, 4, 0, 0, 1);
        bad_flags.extend_from_slice(&[0, 0]);
        assert_eq!(
            decode_output_frame(&bad_flags),
            Err(FrameError::UnknownFlags(4))
        );
        assert!(matches!(
            decode_output_frame(&encode_input_frame(0, &[1])),
            Err(FrameError::WrongKind {
                found: 1,
                expected: 2
            })
        ));
        let mut odd = header(2, 0, 0, 0, 1);
        odd.push(0);
        assert_eq!(decode_output_frame(&odd), Err(FrameError::OddLength(1)));
        assert!(matches!(
            decode_output_frame(&[2; 5]),
            Err(FrameError::TooShort { len: 5 })
        ));
    }

    #[test]
    fn frame_error_messages_are_descriptive() {
        assert_eq!(
            FrameError::TooLong { len: 70000 }.to_string(),
            "audio frame is 70000 bytes, over the 65536-byte limit"
        );
        assert_eq!(
            FrameError::InputFlags(2).to_string(),
            "input audio frame flags must be 0, got 0x02"
        );
    }

    #[test]
    fn base64_round_trip_and_errors() {
        let samples = [1i16, -2, 300, i16::MIN];
        let b64 = samples_to_base64(&samples);
        assert_eq!(base64_to_samples(&b64).unwrap(), samples);
        // The base64 carries the same little-endian bytes as a binary frame.
        assert_eq!(samples_to_base64(&[0x0201]), "AQI=");
        assert_eq!(base64_to_samples("").unwrap(), Vec::<i16>::new());
        assert!(matches!(
            base64_to_samples("!!!"),
            Err(FrameError::Base64(_))
        ));
        assert_eq!(base64_to_samples("AQID"), Err(FrameError::OddLength(3)));
        assert_eq!(decode_json_input_audio(3, ""), Err(FrameError::Empty));
        assert_eq!(
            decode_json_input_audio(3, &b64).unwrap(),
            InputChunk {
                seq: 3,
                samples: samples.to_vec()
            }
        );
    }

    // ---- client messages ----

    fn parse(text: &str) -> ClientMessage {
        parse_client_message(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn round_trip(msg: &ClientMessage) {
        let text = serde_json::to_string(msg).unwrap();
        assert_eq!(&parse(&text), msg, "{text}");
    }

    #[test]
    fn session_start_full_example_from_protocol_md() {
        let text = r#"{"type":"session.start",
            "token":"<jwt, optional>",
            "persona":"interviewer",
            "context":{"role":"Backend engineer"},
            "input":{"sampleRate":48000,"channels":1,"encoding":"pcm_s16le"},
            "output":{"sampleRate":24000,"encoding":"pcm_s16le","transport":"binary"},
            "turnDetection":{"mode":"server_vad","silenceMs":500}}"#;
        let ClientMessage::SessionStart(s) = parse(text) else {
            panic!("not a session.start")
        };
        assert_eq!(s.token.as_deref(), Some("<jwt, optional>"));
        assert_eq!(s.persona.as_deref(), Some("interviewer"));
        assert_eq!(s.context.get("role"), Some(&json!("Backend engineer")));
        assert_eq!(
            s.input,
            InputFormat {
                sample_rate: 48000,
                channels: 1,
                encoding: "pcm_s16le".into()
            }
        );
        assert_eq!(s.output, OutputFormat::default());
        assert_eq!(s.turn_detection.mode, TurnMode::ServerVad);
        assert_eq!(s.turn_detection.silence_ms, Some(500));
        s.validate().unwrap();
        round_trip(&ClientMessage::SessionStart(s));
    }

    #[test]
    fn session_start_minimal_gets_defaults() {
        let ClientMessage::SessionStart(s) =
            parse(r#"{"type":"session.start","input":{"sampleRate":16000}}"#)
        else {
            panic!("not a session.start")
        };
        assert_eq!(s.token, None);
        assert_eq!(s.persona, None);
        assert!(s.context.is_empty());
        assert_eq!(s.input.channels, 1);
        assert_eq!(s.input.encoding, "pcm_s16le");
        assert_eq!(s.output.sample_rate, 24000);
        assert_eq!(s.output.transport, Transport::Binary);
        assert_eq!(s.turn_detection.mode, TurnMode::Smart);
        assert_eq!(s.turn_detection.smart_silences_ms(), (250, 2500));
        assert_eq!(s.turn_detection.silence_ms_or_default(), 500);
        s.validate().unwrap();
        round_trip(&ClientMessage::SessionStart(s));
    }

    #[test]
    fn session_start_manual_json_transport() {
        let ClientMessage::SessionStart(s) = parse(
            r#"{"type":"session.start","input":{"sampleRate":8000,"channels":2},
               "output":{"transport":"json"},"turnDetection":{"mode":"manual"}}"#,
        ) else {
            panic!("not a session.start")
        };
        assert_eq!(s.turn_detection.mode, TurnMode::Manual);
        assert_eq!(s.output.transport, Transport::Json);
        assert_eq!(s.output.sample_rate, 24000);
        s.validate().unwrap();
    }

    #[test]
    fn session_start_requires_input() {
        let err = parse_client_message(r#"{"type":"session.start"}"#).unwrap_err();
        assert!(err.message.contains("session.start"), "{err}");
        assert!(err.message.contains("input"), "{err}");
    }

    fn start_with(input: Value, output: Value, td: Value) -> SessionStart {
        let v = json!({"type":"session.start","input":input,"output":output,"turnDetection":td});
        match parse(&v.to_string()) {
            ClientMessage::SessionStart(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn session_start_validation_names_the_field() {
        let ok_in = json!({"sampleRate":16000});
        let ok_out = json!({});
        let ok_td = json!({});
        let cases = [
            (
                start_with(json!({"sampleRate":96000}), ok_out.clone(), ok_td.clone()),
                "input.sampleRate must be 8000..=48000, got 96000",
            ),
            (
                start_with(json!({"sampleRate":7999}), ok_out.clone(), ok_td.clone()),
                "input.sampleRate must be 8000..=48000, got 7999",
            ),
            (
                start_with(
                    json!({"sampleRate":16000,"channels":3}),
                    ok_out.clone(),
                    ok_td.clone(),
                ),
                "input.channels must be 1 or 2, got 3",
            ),
            (
                start_with(
                    json!({"sampleRate":16000,"channels":0}),
                    ok_out.clone(),
                    ok_td.clone(),
                ),
                "input.channels must be 1 or 2, got 0",
            ),
            (
                start_with(
                    json!({"sampleRate":16000,"encoding":"opus"}),
                    ok_out.clone(),
                    ok_td.clone(),
                ),
                "input.encoding must be \"pcm_s16le\", got \"opus\"",
            ),
            (
                start_with(ok_in.clone(), json!({"sampleRate":4000}), ok_td.clone()),
                "output.sampleRate must be 8000..=48000, got 4000",
            ),
            (
                start_with(ok_in.clone(), json!({"encoding":"mp3"}), ok_td.clone()),
                "output.encoding must be \"pcm_s16le\", got \"mp3\"",
            ),
            (
                start_with(ok_in.clone(), ok_out.clone(), json!({"silenceMs":50})),
                "turnDetection.silenceMs must be 100..=5000, got 50",
            ),
            (
                start_with(
                    ok_in.clone(),
                    ok_out.clone(),
                    json!({"mode":"manual","silenceMs":60000}),
                ),
                "turnDetection.silenceMs must be 100..=5000, got 60000",
            ),
        ];
        for (start, expected) in cases {
            assert_eq!(start.validate().unwrap_err().message, expected);
        }
        // The boundaries themselves are valid.
        start_with(
            json!({"sampleRate":8000,"channels":2}),
            json!({"sampleRate":48000}),
            json!({"silenceMs":100}),
        )
        .validate()
        .unwrap();
        start_with(
            json!({"sampleRate":48000}),
            json!({"sampleRate":8000}),
            json!({"silenceMs":5000}),
        )
        .validate()
        .unwrap();
    }

    #[test]
    fn session_start_bad_enum_values_are_bad_messages() {
        for text in [
            r#"{"type":"session.start","input":{"sampleRate":16000},"output":{"transport":"xml"}}"#,
            r#"{"type":"session.start","input":{"sampleRate":16000},"turnDetection":{"mode":"auto"}}"#,
            r#"{"type":"session.start","input":{"sampleRate":-1}}"#,
            r#"{"type":"session.start","input":{"sampleRate":16000},"context":"x"}"#,
        ] {
            let err = parse_client_message(text).unwrap_err();
            assert!(
                err.message.starts_with("bad session.start message: "),
                "{err}"
            );
        }
    }

    #[test]
    fn other_client_messages_from_protocol_md() {
        let cases = [
            (
                r#"{"type":"session.resume","sessionId":"s1","resumeToken":"r1"}"#,
                ClientMessage::SessionResume {
                    session_id: "s1".into(),
                    resume_token: "r1".into(),
                    token: None,
                },
            ),
            (
                r#"{"type":"session.resume","sessionId":"s1","resumeToken":"r1","token":"t"}"#,
                ClientMessage::SessionResume {
                    session_id: "s1".into(),
                    resume_token: "r1".into(),
                    token: Some("t".into()),
                },
            ),
            (r#"{"type":"session.end"}"#, ClientMessage::SessionEnd),
            (
                r#"{"type":"audio.chunk","seq":5,"audio":"AQI="}"#,
                ClientMessage::AudioChunk {
                    seq: 5,
                    audio: "AQI=".into(),
                },
            ),
            (r#"{"type":"input.commit"}"#, ClientMessage::InputCommit),
            (r#"{"type":"input.clear"}"#, ClientMessage::InputClear),
            (
                r#"{"type":"input.text","text":"I like Rust."}"#,
                ClientMessage::InputText {
                    text: "I like Rust.".into(),
                },
            ),
            (
                r#"{"type":"response.cancel"}"#,
                ClientMessage::ResponseCancel { turn_id: None },
            ),
            (
                r#"{"type":"response.cancel","turnId":3}"#,
                ClientMessage::ResponseCancel { turn_id: Some(3) },
            ),
            (
                r#"{"type":"playback.position","turnId":2,"playedMs":1500}"#,
                ClientMessage::PlaybackPosition {
                    turn_id: 2,
                    played_ms: 1500,
                },
            ),
            (
                r#"{"type":"ping","t":1712345678901}"#,
                ClientMessage::Ping {
                    t: json!(1712345678901u64),
                },
            ),
            (r#"{"type":"ping"}"#, ClientMessage::Ping { t: Value::Null }),
        ];
        for (text, expected) in cases {
            let msg = parse(text);
            assert_eq!(msg, expected, "{text}");
            round_trip(&msg);
        }
    }

    #[test]
    fn unknown_fields_are_ignored() {
        assert_eq!(
            parse(r#"{"type":"session.end","why":"bye","extra":{"a":[1]}}"#),
            ClientMessage::SessionEnd
        );
        assert_eq!(
            parse(r#"{"type":"input.text","text":"hi","lang":"en"}"#),
            ClientMessage::InputText { text: "hi".into() }
        );
        let ClientMessage::SessionStart(s) = parse(
            r#"{"type":"session.start","input":{"sampleRate":16000,"agc":true},"video":false}"#,
        ) else {
            panic!()
        };
        assert_eq!(s.input.sample_rate, 16000);
    }

    #[test]
    fn parse_errors_are_distinguished() {
        let msg = |t: &str| parse_client_message(t).unwrap_err().message;
        assert!(msg("{not json").starts_with("invalid JSON: "));
        assert!(msg("").starts_with("invalid JSON: "));
        assert_eq!(msg("[1,2]"), "message must be a JSON object");
        assert_eq!(msg("\"session.end\""), "message must be a JSON object");
        assert_eq!(msg(r#"{"seq":1}"#), "message has no \"type\" field");
        assert_eq!(
            msg(r#"{"type":5}"#),
            "message field \"type\" must be a string"
        );
        assert_eq!(
            msg(r#"{"type":"audio.chunks"}"#),
            "unknown message type \"audio.chunks\""
        );
        assert_eq!(
            msg(r#"{"type":"audio.chunk","seq":"1","audio":""}"#),
            "bad audio.chunk message: invalid type: string \"1\", expected u32"
        );
        assert_eq!(
            msg(r#"{"type":"audio.chunk","audio":""}"#),
            "bad audio.chunk message: missing field `seq`"
        );
        assert!(
            msg(r#"{"type":"audio.chunk","seq":-1,"audio":""}"#)
                .starts_with("bad audio.chunk message: ")
        );
        assert!(msg(r#"{"type":"playback.position","turnId":1}"#).contains("playedMs"));
        let huge = format!(
            r#"{{"type":"input.text","text":"{}"}}"#,
            "a".repeat(MAX_FRAME_BYTES)
        );
        assert!(msg(&huge).contains("over the 65536-byte limit"));
    }

    #[test]
    fn every_client_type_is_listed() {
        let samples = [
            ClientMessage::SessionStart(start_with(
                json!({"sampleRate":16000}),
                json!({}),
                json!({}),
            )),
            ClientMessage::SessionResume {
                session_id: String::new(),
                resume_token: String::new(),
                token: None,
            },
            ClientMessage::SessionEnd,
            ClientMessage::AudioChunk {
                seq: 0,
                audio: String::new(),
            },
            ClientMessage::InputCommit,
            ClientMessage::InputClear,
            ClientMessage::InputText {
                text: String::new(),
            },
            ClientMessage::ResponseCancel { turn_id: None },
            ClientMessage::PlaybackPosition {
                turn_id: 0,
                played_ms: 0,
            },
            ClientMessage::Ping { t: Value::Null },
        ];
        assert_eq!(samples.len(), CLIENT_MESSAGE_TYPES.len());
        for (m, t) in samples.iter().zip(CLIENT_MESSAGE_TYPES) {
            assert_eq!(serde_json::to_value(m).unwrap()["type"], *t);
            round_trip(m);
        }
    }

    // ---- server messages ----

    fn shape(msg: &ServerMessage) -> Value {
        let text = msg.to_json();
        assert_eq!(&parse_server_message(&text).unwrap(), msg, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn session_started_shape() {
        let v = shape(&ServerMessage::SessionStarted {
            session_id: "s".into(),
            resume_token: "r".into(),
            protocol: PROTOCOL_NAME.into(),
            input: InputFormat {
                sample_rate: 48000,
                channels: 1,
                encoding: "pcm_s16le".into(),
            },
            output: OutputFormat::default(),
            limits: Limits::default(),
            voice: "piper:en_US-joe-medium".into(),
        });
        assert_eq!(
            v,
            json!({"type":"session.started","sessionId":"s","resumeToken":"r","protocol":"callgate.v1",
                "input":{"sampleRate":48000,"channels":1,"encoding":"pcm_s16le"},
                "output":{"sampleRate":24000,"encoding":"pcm_s16le","transport":"binary"},
                "limits":{"maxFrameBytes":65536},"voice":"piper:en_US-joe-medium"})
        );
    }

    #[test]
    fn lifecycle_and_input_shapes() {
        assert_eq!(
            shape(&ServerMessage::SessionEnded {
                session_id: "s".into(),
                reason: EndReason::Client,
                turns: 3,
                duration_ms: 61000
            }),
            json!({"type":"session.ended","sessionId":"s","reason":"client","turns":3,"durationMs":61000})
        );
        for (r, s) in [
            (EndReason::Idle, "idle"),
            (EndReason::Shutdown, "shutdown"),
            (EndReason::Error, "error"),
            (EndReason::Timeout, "timeout"),
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), json!(s));
        }
        assert_eq!(
            shape(&ServerMessage::SessionResumed {
                session_id: "s".into(),
                next_seq: 17,
                turns: vec![TurnRecord {
                    turn_id: 1,
                    user_text: "hi".into(),
                    ai_text: "hello".into()
                }]
            }),
            json!({"type":"session.resumed","sessionId":"s","nextSeq":17,
                "turns":[{"turnId":1,"userText":"hi","aiText":"hello"}]})
        );
        assert_eq!(
            shape(&ServerMessage::AudioAck { seq: 9 }),
            json!({"type":"audio.ack","seq":9})
        );
        assert_eq!(
            shape(&ServerMessage::InputSpeechStarted {
                turn_id: 1,
                audio_ms: 1200
            }),
            json!({"type":"input.speech_started","turnId":1,"audioMs":1200})
        );
        assert_eq!(
            shape(&ServerMessage::InputSpeechStopped {
                turn_id: 1,
                audio_ms: 3400,
                end_of_turn: EndOfTurn {
                    rule: EndRule::Complete,
                    silence_ms: 310,
                    score: Some(0.75),
                },
            }),
            json!({"type":"input.speech_stopped","turnId":1,"audioMs":3400,
                "endOfTurn":{"rule":"complete","silenceMs":310,"score":0.75}})
        );
        assert_eq!(
            shape(&ServerMessage::Pong {
                t: json!(12),
                server_time: 99
            }),
            json!({"type":"pong","t":12,"serverTime":99})
        );
    }

    #[test]
    fn transcript_shapes_skip_absent_times() {
        assert_eq!(
            shape(&ServerMessage::Transcript {
                turn_id: 1,
                text: "hel".into(),
                is_final: false,
                start_ms: None,
                end_ms: None
            }),
            json!({"type":"transcript","turnId":1,"text":"hel","isFinal":false})
        );
        assert_eq!(
            shape(&ServerMessage::Transcript {
                turn_id: 1,
                text: "hello".into(),
                is_final: true,
                start_ms: Some(100),
                end_ms: Some(900)
            }),
            json!({"type":"transcript","turnId":1,"text":"hello","isFinal":true,"startMs":100,"endMs":900})
        );
    }

    #[test]
    fn response_shapes() {
        assert_eq!(
            shape(&ServerMessage::ResponseStarted {
                turn_id: 2,
                status: ResponseStatus::Thinking,
                eta_ms: None
            }),
            json!({"type":"response.started","turnId":2,"status":"thinking"})
        );
        assert_eq!(
            shape(&ServerMessage::ResponseStarted {
                turn_id: 2,
                status: ResponseStatus::Queued,
                eta_ms: Some(1500)
            }),
            json!({"type":"response.started","turnId":2,"status":"queued","etaMs":1500})
        );
        assert_eq!(
            serde_json::to_value(ResponseStatus::Retrying).unwrap(),
            json!("retrying")
        );
        assert_eq!(
            shape(&ServerMessage::ResponseTextDelta {
                turn_id: 2,
                index: 0,
                delta: "Hi".into()
            }),
            json!({"type":"response.text.delta","turnId":2,"index":0,"delta":"Hi"})
        );
        assert_eq!(
            shape(&ServerMessage::audio_chunk(2, 40, true, false, &[0x0201])),
            json!({"type":"response.audio.chunk","turnId":2,"seq":40,"audio":"AQI=","first":true,"last":false})
        );
    }

    #[test]
    fn response_done_shape() {
        let v = shape(&ServerMessage::ResponseDone {
            turn_id: 4,
            status: DoneStatus::Cancelled,
            text: "Tell me about a project you led.".into(),
            heard_text: "Tell me about".into(),
            latency: Latency {
                endpoint_ms: Some(500),
                end_of_turn: Some(EndOfTurn {
                    rule: EndRule::MaxSilence,
                    silence_ms: 2500,
                    score: None,
                }),
                asr_ms: Some(120),
                llm_first_token_ms: Some(80),
                tts_first_audio_ms: None,
                first_audio_ms: Some(400),
                total_ms: Some(2100),
            },
            usage: None,
        });
        assert_eq!(
            v,
            json!({"type":"response.done","turnId":4,"status":"cancelled",
                "text":"Tell me about a project you led.","heardText":"Tell me about",
                "latency":{"endpointMs":500,
                    "endOfTurn":{"rule":"max_silence","silenceMs":2500},
                    "asrMs":120,"llmFirstTokenMs":80,
                    "ttsFirstAudioMs":null,"firstAudioMs":400,"totalMs":2100}})
        );
        let with_usage = shape(&ServerMessage::ResponseDone {
            turn_id: 5,
            status: DoneStatus::Completed,
            text: "Hi.".into(),
            heard_text: "Hi.".into(),
            latency: Latency::default(),
            usage: Some(TokenUsage {
                prompt_tokens: 120,
                completion_tokens: 3,
            }),
        });
        assert_eq!(
            with_usage["usage"],
            json!({"promptTokens":120,"completionTokens":3})
        );
        assert_eq!(
            serde_json::to_value(DoneStatus::Completed).unwrap(),
            json!("completed")
        );
        assert_eq!(
            serde_json::to_value(DoneStatus::Failed).unwrap(),
            json!("failed")
        );
    }

    #[test]
    fn error_shapes() {
        let v = shape(
            &ErrorEvent::new(ErrorCode::LlmError, "upstream 502", true)
                .turn(3)
                .into(),
        );
        assert_eq!(
            v,
            json!({"type":"error","code":"LLM_ERROR","message":"upstream 502",
                "userMessage":ErrorCode::LlmError.default_user_message(),"recoverable":true,"turnId":3})
        );
        let v = shape(&ServerMessage::Error(ErrorEvent::audio_gap(4, 9)));
        assert_eq!(v["code"], "AUDIO_GAP");
        assert_eq!(v["from"], 4);
        assert_eq!(v["to"], 9);
        assert!(v.get("turnId").is_none());
        let v = shape(
            &ErrorEvent::new(ErrorCode::Overloaded, "at call limit", false)
                .retry_after(5000)
                .user_message("Busy, try later.")
                .into(),
        );
        assert_eq!(v["retryAfterMs"], 5000);
        assert_eq!(v["userMessage"], "Busy, try later.");
        assert_eq!(v["recoverable"], false);
        let e = ErrorEvent::bad_audio(&FrameError::Empty);
        assert_eq!(e.code, ErrorCode::BadAudio);
        assert_eq!(e.message, "audio chunk has no samples");
        assert_eq!(
            e.user_message,
            "Some audio could not be understood by the server; the call continues."
        );
        assert!(e.recoverable);
        let e = ErrorEvent::bad_message(&BadMessage::new("session.start first"));
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::BadMessage, "session.start first")
        );
    }

    #[test]
    fn error_codes_are_screaming_snake_and_display_matches() {
        let all = [
            ErrorCode::BadMessage,
            ErrorCode::BadAudio,
            ErrorCode::AudioGap,
            ErrorCode::Unauthorized,
            ErrorCode::RateLimited,
            ErrorCode::SessionNotFound,
            ErrorCode::AsrError,
            ErrorCode::LlmError,
            ErrorCode::TtsError,
            ErrorCode::Overloaded,
            ErrorCode::Internal,
        ];
        let names = [
            "BAD_MESSAGE",
            "BAD_AUDIO",
            "AUDIO_GAP",
            "UNAUTHORIZED",
            "RATE_LIMITED",
            "SESSION_NOT_FOUND",
            "ASR_ERROR",
            "LLM_ERROR",
            "TTS_ERROR",
            "OVERLOADED",
            "INTERNAL",
        ];
        for (c, n) in all.iter().zip(names) {
            assert_eq!(serde_json::to_value(c).unwrap(), json!(n));
            assert_eq!(c.to_string(), n);
            assert!(!c.default_user_message().is_empty());
        }
    }

    #[test]
    fn parse_server_message_rejects_unknown_types() {
        assert_eq!(
            parse_server_message(r#"{"type":"session.start"}"#)
                .unwrap_err()
                .message,
            "unknown message type \"session.start\""
        );
    }
}
