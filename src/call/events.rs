//! The call core's own vocabulary: what a protocol adapter hands a call ([`CallInput`]) and
//! what the call says back ([`CallEvent`]), with failures as typed [`Fault`]s. No JSON field
//! names, binary headers or close codes live here: an adapter (see [`super::v1`]) maps these
//! to and from one wire protocol.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::eot::TurnPolicy;
use crate::protocol::{
    DoneStatus, EndOfTurn, EndReason, InputChunk, Latency, ResponseStatus, TokenUsage, TurnRecord,
};

/// How a call wants its audio and its turns, as an adapter understood its client.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// Input sample rate, Hz.
    pub input_rate: u32,
    /// Interleaved input channels (≥ 1).
    pub channels: u16,
    /// Output sample rate, Hz.
    pub output_rate: u32,
    /// How the call's turns end.
    pub turn: TurnPolicy,
    /// Persona id; `None` for the server's default.
    pub persona: Option<String>,
    /// Free-form context for the interviewer (role, company, …), as text.
    pub context: BTreeMap<String, String>,
    /// A call token presented in the start message itself (browsers cannot set headers).
    pub token: Option<String>,
    /// The interviewer speaks first (callgate.v1); `false` waits for the client's turn or
    /// [`CallInput::Respond`] (the Realtime protocol).
    pub greet: bool,
    /// What the protocol may change later, as it is at the start.
    pub config: CallConfig,
}

/// The part of a call's behaviour a protocol may set at the start and change while the
/// call runs ([`CallInput::Configure`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CallConfig {
    /// Replaces the persona's system prompt when set.
    pub instructions: Option<String>,
    /// Responses are spoken; `false`: text only (no synthesis, no audio).
    pub speak: bool,
    /// A manual commit is answered at once (callgate.v1); `false` holds the committed turn
    /// (decoded, the model's answer buffered) until [`CallInput::Respond`] (Realtime).
    pub answer_commits: bool,
    /// A turn the server ends (its VAD) is answered at once; `false` holds it like a
    /// held commit (Realtime `create_response: false`).
    pub answer_turns: bool,
    /// Speech over a response pauses it and may stop it; `false`: the response plays on,
    /// and the speech is the next turn, answered once the response is done (Realtime
    /// `interrupt_response: false`).
    pub interruptible: bool,
    /// After this much of the candidate's silence (input audio, ms) once the interviewer
    /// has finished speaking, the silent span is committed as an empty turn and answered
    /// ([`CallEvent::IdleTimeout`]); `None`: never (callgate.v1's silence prompts follow an
    /// empty turn instead).
    pub idle_timeout_ms: Option<u64>,
}

impl Default for CallConfig {
    /// callgate.v1's behaviour: the persona's prompt, spoken answers, commits answered.
    fn default() -> Self {
        Self {
            instructions: None,
            speak: true,
            answer_commits: true,
            answer_turns: true,
            interruptible: true,
            idle_timeout_ms: None,
        }
    }
}

/// Who a seeded conversation message is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedRole {
    /// The candidate (a typed message that does not ask for an answer by itself).
    User,
    /// The interviewer (a line it is taken to have said).
    Assistant,
    /// An instruction for the model, kept in the history.
    System,
}

/// One thing a client asked of its call.
#[derive(Debug, Clone)]
pub enum CallInput {
    /// Open the call.
    Start(StartRequest),
    /// Continue a dropped call on this connection.
    Resume {
        /// The call.
        session_id: String,
        /// Its secret, from the call's start.
        resume_token: String,
        /// A call token sent in the message (not on the upgrade request).
        token: Option<String>,
    },
    /// Hang up.
    End,
    /// Sequenced input audio, interleaved at the input rate.
    Audio(InputChunk),
    /// The user's turn is over (manual turn detection).
    Commit,
    /// Forget the audio since the last commit.
    Clear,
    /// A typed user turn.
    Text(String),
    /// Stop the response in flight (`None`: whichever it is).
    Cancel {
        /// The response to stop.
        turn_id: Option<u32>,
    },
    /// How much of a response the client has played.
    PlaybackPosition {
        /// The response.
        turn_id: u32,
        /// Milliseconds played.
        played_ms: u64,
    },
    /// A liveness probe, answered with [`CallEvent::Pong`].
    Ping {
        /// Opaque to the server; echoed.
        t: serde_json::Value,
    },
    /// Changes how the call behaves from now on (`None`: the turn policy stays).
    Configure {
        /// How turns end from now on.
        turn: Option<TurnPolicy>,
        /// Prompt, speech and commit handling.
        config: CallConfig,
    },
    /// Answer now: the held committed turn, or the conversation as it stands. Ignored while
    /// a response is in flight.
    Respond {
        /// Replaces the system prompt for this response only.
        instructions: Option<String>,
    },
    /// Adds a message to the conversation without answering it.
    Seed {
        /// Who said it.
        role: SeedRole,
        /// The words.
        text: String,
    },
}

/// One thing a call tells its client, in order.
#[derive(Debug, Clone)]
pub enum CallEvent {
    /// The call is open.
    Started {
        /// Identifies the call for a resume.
        session_id: String,
        /// Proves ownership of the call to a new connection.
        resume_token: String,
        /// The interviewer's voice (`piper:en_US-joe-medium`, `espeak:en-us`).
        voice: String,
    },
    /// A new connection took the call over.
    Resumed {
        /// The call.
        session_id: String,
        /// The first input seq the client must (re)send.
        next_seq: u32,
        /// The conversation so far.
        turns: Vec<TurnRecord>,
    },
    /// The call is over.
    Ended {
        /// The call.
        session_id: String,
        /// Who or what ended it.
        reason: EndReason,
        /// Turns taken.
        turns: u32,
        /// Call length, ms.
        duration_ms: u64,
    },
    /// Input received up to and including `seq`, with no gap before it.
    AudioAck {
        /// Highest contiguous input seq.
        seq: u32,
    },
    /// Speech began (opens user turn `turn_id`).
    SpeechStarted {
        /// The user turn.
        turn_id: u32,
        /// Onset in the input stream, ms.
        audio_ms: u64,
    },
    /// The user's turn is over.
    SpeechStopped {
        /// The user turn.
        turn_id: u32,
        /// End of speech in the input stream, ms.
        audio_ms: u64,
        /// Which rule ended the turn.
        end_of_turn: EndOfTurn,
    },
    /// The candidate stayed silent for the idle timeout after the interviewer finished:
    /// the silent span is user turn `turn_id`, empty, and is answered.
    IdleTimeout {
        /// The user turn.
        turn_id: u32,
        /// Where the silence began in the input (the interviewer's audio ended), ms.
        start_ms: u64,
        /// Where it was cut, ms.
        end_ms: u64,
    },
    /// A manual commit made user turn `turn_id` of the audio since the last commit.
    Committed {
        /// The user turn.
        turn_id: u32,
        /// End of the committed audio in the input stream, ms.
        audio_ms: u64,
    },
    /// What the user said.
    Transcript {
        /// The user turn.
        turn_id: u32,
        /// The words.
        text: String,
        /// The turn's one final transcript (else a partial).
        is_final: bool,
        /// Where the transcribed speech lies in the input, ms (finals of spoken turns).
        span_ms: Option<(u64, u64)>,
    },
    /// A response began, or is waiting.
    ResponseStarted {
        /// The turn answered.
        turn_id: u32,
        /// Thinking, queued or retrying.
        status: ResponseStatus,
        /// Expected wait, ms.
        eta_ms: Option<u64>,
    },
    /// The candidate spoke over the response: its audio is held until the words are known.
    ResponsePaused {
        /// The response paused.
        turn_id: u32,
        /// Where the overlapping speech began in the input, ms.
        audio_ms: u64,
    },
    /// The overlapping speech was a backchannel: the response plays on.
    ResponseResumed {
        /// The response resumed.
        turn_id: u32,
        /// How long it was paused, ms.
        paused_ms: u64,
        /// What the candidate said.
        text: String,
        /// Where the backchannel's speech ended in the input, ms.
        speech_end_ms: u64,
    },
    /// The next piece of the response's text.
    ResponseText {
        /// The turn answered.
        turn_id: u32,
        /// 0-based position of this piece.
        index: u32,
        /// The text.
        delta: String,
    },
    /// The next frame of the response's audio, at the output rate.
    ResponseAudio {
        /// The turn answered.
        turn_id: u32,
        /// Output frame number, counted across the call.
        seq: u32,
        /// The response's first frame.
        first: bool,
        /// The response's last frame.
        last: bool,
        /// Mono PCM.
        samples: Arc<[i16]>,
    },
    /// A response ended; closes every response that started, exactly once.
    ResponseDone {
        /// The turn answered.
        turn_id: u32,
        /// How it ended.
        status: DoneStatus,
        /// Everything generated.
        text: String,
        /// What the client played of it.
        heard_text: String,
        /// Stage timings.
        latency: Latency,
        /// Tokens the model reported.
        usage: Option<TokenUsage>,
    },
    /// Something went wrong; `turn_id` names the turn affected.
    Error {
        /// What went wrong.
        fault: Fault,
        /// The turn affected, if any.
        turn_id: Option<u32>,
    },
    /// The answer to [`CallInput::Ping`].
    Pong {
        /// The client's value.
        t: serde_json::Value,
        /// Server wall clock, ms since the Unix epoch.
        server_time: u64,
    },
}

impl CallEvent {
    /// An error event not tied to a turn.
    pub fn fault(fault: Fault) -> Self {
        Self::Error {
            fault,
            turn_id: None,
        }
    }

    /// An error event for turn `turn_id`.
    pub fn turn_fault(turn_id: u32, fault: Fault) -> Self {
        Self::Error {
            fault,
            turn_id: Some(turn_id),
        }
    }
}

/// Why something a client sent, or an engine did, failed. Adapters map each to their
/// protocol's error codes in one place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// A message that cannot be parsed, validated or honoured now; it is dropped.
    #[error("{0}")]
    BadMessage(String),
    /// An audio frame that cannot be decoded; it is dropped.
    #[error("{0}")]
    BadAudio(String),
    /// Input audio `from..=to` never arrived and was filled with silence.
    #[error("input audio chunks {from}..={to} were lost and filled with silence")]
    AudioGap {
        /// First lost seq.
        from: u32,
        /// Last lost seq.
        to: u32,
    },
    /// The client is sending too fast; the excess is dropped.
    #[error("{what}")]
    RateLimited {
        /// What was too fast.
        what: String,
        /// When to try again, ms.
        retry_after_ms: u64,
        /// A sentence for the candidate, when the default does not fit.
        user_message: Option<&'static str>,
    },
    /// The server has no room (calls, decodes).
    #[error("{what}")]
    Overloaded {
        /// What is full.
        what: String,
        /// When to try again, ms.
        retry_after_ms: u64,
    },
    /// No valid token for a call that needs one.
    #[error("{0}")]
    Unauthorized(String),
    /// No dropped call with this id and secret is waiting.
    #[error("{0}")]
    SessionNotFound(String),
    /// Speech recognition failed for a turn.
    #[error("{0}")]
    Asr(String),
    /// The language model failed a turn.
    #[error("{0}")]
    Llm(String),
    /// Synthesis failed (all of a turn, or part: see `partial`).
    #[error("{message}")]
    Tts {
        /// For developers.
        message: String,
        /// Only part of the answer was lost; the rest is spoken.
        partial: bool,
    },
}

impl Fault {
    /// Whether the call goes on after this fault.
    pub fn recoverable(&self) -> bool {
        !matches!(self, Self::Unauthorized(_) | Self::SessionNotFound(_))
    }
}
