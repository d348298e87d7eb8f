//! The callgate.v1 adapter: the only code that turns WebSocket frames into [`CallInput`]s and
//! [`CallEvent`]s into frames, maps [`Fault`]s to error codes and call endings to close
//! codes. A second wire protocol is a second implementation of [`Codec`].

use std::sync::Mutex;

use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::events::{CallEvent, CallInput, Fault, StartRequest};
use crate::eot::TurnPolicy;
use crate::protocol::{
    BadMessage, ClientMessage, ErrorCode, ErrorEvent, FrameError, InputFormat, Limits,
    MAX_FRAME_BYTES, OutputFormat, PROTOCOL_NAME, ServerMessage, SessionStart, Transport,
    decode_input_frame, decode_json_input_audio, encode_output_frame, parse_client_message,
};

/// Why the server closes a connection; a codec picks the close frame.
#[derive(Debug, Clone)]
pub enum Closing {
    /// The call ended normally (`session.ended` went out), with an optional reason.
    Ended(&'static str),
    /// The connection was refused before or instead of a call.
    Refused(Fault),
    /// The server is shutting down.
    Shutdown,
    /// The client stopped reading its output.
    NotReading,
    /// A frame over the size limit.
    TooBig,
    /// A newer connection resumed this connection's call.
    ResumedElsewhere,
    /// No `session.start` or `session.resume` came within the start deadline.
    NoStart,
}

/// What one client frame asks of the call, as a codec read it.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The call input, if the frame asks the call for something.
    pub input: Option<CallInput>,
    /// Frames the protocol answers with itself once the input is handled (an
    /// acknowledgement the call core has no event for).
    pub replies: Vec<Message>,
}

impl From<CallInput> for Decoded {
    fn from(input: CallInput) -> Self {
        Self {
            input: Some(input),
            replies: Vec::new(),
        }
    }
}

/// One wire protocol: frames in, events out, and how a connection closes.
pub trait Codec: Send + Sync + 'static {
    /// A text frame as a call input.
    fn decode_text(&self, text: &str) -> Result<Decoded, Fault>;
    /// A binary frame as a call input.
    fn decode_binary(&self, bytes: &[u8]) -> Result<Decoded, Fault>;
    /// The frames that carry `event`, in order; none when this protocol does not say it.
    fn encode(&self, event: CallEvent) -> Vec<Message>;
    /// The close frame for `closing`.
    fn close(&self, closing: &Closing) -> Message;
    /// The input a connection opens with before the client says anything: a protocol
    /// whose session exists from the upgrade starts its call here.
    fn opening(&self) -> Option<CallInput> {
        None
    }
    /// Whether a call outlives its connection, waiting for a resume; `false`: a dropped
    /// connection ends the call.
    fn resumable(&self) -> bool {
        true
    }
}

/// The formats a callgate.v1 client asked for, echoed in `session.started`.
struct Negotiated {
    input: InputFormat,
    output: OutputFormat,
}

/// The callgate.v1 codec of one call (it remembers the formats its `session.start` gave).
pub struct V1Codec {
    negotiated: Mutex<Option<Negotiated>>,
}

impl Default for V1Codec {
    fn default() -> Self {
        Self {
            negotiated: Mutex::new(None),
        }
    }
}

impl V1Codec {
    fn transport(&self) -> Transport {
        self.lock()
            .as_ref()
            .map_or(Transport::Binary, |n| n.output.transport)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Negotiated>> {
        self.negotiated.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start(&self, start: SessionStart) -> Result<CallInput, Fault> {
        start.validate().map_err(|e| bad_message(&e))?;
        let request = start_request(&start);
        *self.lock() = Some(Negotiated {
            input: start.input,
            output: start.output,
        });
        Ok(CallInput::Start(request))
    }

    fn started(&self, session_id: &str, resume_token: &str, voice: String) -> ServerMessage {
        let (input, output) = match self.lock().as_ref() {
            Some(n) => (n.input.clone(), n.output.clone()),
            None => (
                InputFormat {
                    sample_rate: 0,
                    channels: 1,
                    encoding: String::new(),
                },
                OutputFormat::default(),
            ),
        };
        ServerMessage::SessionStarted {
            session_id: session_id.to_owned(),
            resume_token: resume_token.to_owned(),
            protocol: PROTOCOL_NAME.to_string(),
            input,
            output,
            limits: Limits {
                max_frame_bytes: MAX_FRAME_BYTES,
            },
            voice,
        }
    }
}

impl Codec for V1Codec {
    fn decode_text(&self, text: &str) -> Result<Decoded, Fault> {
        self.decode_message(text).map(Decoded::from)
    }

    fn decode_binary(&self, bytes: &[u8]) -> Result<Decoded, Fault> {
        decode_input_frame(bytes)
            .map(|chunk| CallInput::Audio(chunk).into())
            .map_err(|e| bad_audio(&e))
    }

    fn encode(&self, event: CallEvent) -> Vec<Message> {
        if let CallEvent::ResponseAudio {
            turn_id,
            seq,
            first,
            last,
            samples,
        } = &event
            && self.transport() == Transport::Binary
        {
            return vec![Message::binary(encode_output_frame(
                *seq, *turn_id, *first, *last, samples,
            ))];
        }
        self.server_message(event)
            .map(|m| Message::text(m.to_json()))
            .into_iter()
            .collect()
    }

    fn close(&self, closing: &Closing) -> Message {
        let (code, reason) = close_code(closing);
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.to_string().into(),
        }))
    }
}

impl V1Codec {
    fn decode_message(&self, text: &str) -> Result<CallInput, Fault> {
        let msg = parse_client_message(text).map_err(|e| bad_message(&e))?;
        Ok(match msg {
            ClientMessage::SessionStart(start) => return self.start(start),
            ClientMessage::SessionResume {
                session_id,
                resume_token,
                token,
            } => CallInput::Resume {
                session_id,
                resume_token,
                token,
            },
            ClientMessage::SessionEnd => CallInput::End,
            ClientMessage::AudioChunk { seq, audio } => {
                CallInput::Audio(decode_json_input_audio(seq, &audio).map_err(|e| bad_audio(&e))?)
            }
            ClientMessage::InputCommit => CallInput::Commit,
            ClientMessage::InputClear => CallInput::Clear,
            ClientMessage::InputText { text } => CallInput::Text(text),
            ClientMessage::ResponseCancel { turn_id } => CallInput::Cancel { turn_id },
            ClientMessage::PlaybackPosition { turn_id, played_ms } => {
                CallInput::PlaybackPosition { turn_id, played_ms }
            }
            ClientMessage::Ping { t } => CallInput::Ping { t },
        })
    }
}

/// The `error` body for `fault`: code, recoverability and the sentence a candidate sees.
pub fn error_event(fault: &Fault, turn_id: Option<u32>) -> ErrorEvent {
    let code = match fault {
        Fault::BadMessage(_) => ErrorCode::BadMessage,
        Fault::BadAudio(_) => ErrorCode::BadAudio,
        Fault::AudioGap { .. } => ErrorCode::AudioGap,
        Fault::RateLimited { .. } => ErrorCode::RateLimited,
        Fault::Overloaded { .. } => ErrorCode::Overloaded,
        Fault::Unauthorized(_) => ErrorCode::Unauthorized,
        Fault::SessionNotFound(_) => ErrorCode::SessionNotFound,
        Fault::Asr(_) => ErrorCode::AsrError,
        Fault::Llm(_) => ErrorCode::LlmError,
        Fault::Tts { .. } => ErrorCode::TtsError,
    };
    let mut e = ErrorEvent::new(code, fault.to_string(), fault.recoverable());
    e.turn_id = turn_id;
    match fault {
        Fault::AudioGap { from, to } => {
            e.from = Some(*from);
            e.to = Some(*to);
        }
        Fault::RateLimited {
            retry_after_ms,
            user_message,
            ..
        } => {
            e.retry_after_ms = Some(*retry_after_ms);
            if let Some(text) = user_message {
                e.user_message = (*text).to_owned();
            }
        }
        Fault::Overloaded { retry_after_ms, .. } => e.retry_after_ms = Some(*retry_after_ms),
        Fault::Tts { partial: true, .. } => {
            e.user_message = "Part of the interviewer's answer could not be spoken.".to_owned();
        }
        _ => {}
    }
    e
}

/// The close code and reason for `closing` (the Realtime adapter closes the same way).
pub(super) fn close_code(closing: &Closing) -> (CloseCode, &'static str) {
    match closing {
        Closing::Ended(reason) => (CloseCode::Normal, reason),
        Closing::Refused(Fault::Unauthorized(_)) => (CloseCode::Policy, "unauthorized"),
        Closing::Refused(Fault::Overloaded { .. }) => {
            (CloseCode::Again, "server at its call limit")
        }
        Closing::Refused(Fault::RateLimited { .. }) => {
            (CloseCode::Again, "too many calls for this user")
        }
        Closing::Refused(_) => (CloseCode::Policy, "session not found"),
        Closing::Shutdown => (CloseCode::Away, "server shutting down"),
        Closing::NotReading => (CloseCode::Error, "client not reading"),
        Closing::TooBig => (CloseCode::Size, "frame larger than 65536 bytes"),
        Closing::ResumedElsewhere => (CloseCode::Normal, "resumed on another connection"),
        Closing::NoStart => (CloseCode::Policy, "no session.start in time"),
    }
}

impl V1Codec {
    /// The JSON message for `event` (audio as a JSON-transport chunk); `None` for what
    /// callgate.v1 does not say (a manual commit is known from the transcript).
    fn server_message(&self, event: CallEvent) -> Option<ServerMessage> {
        Some(match event {
            CallEvent::Started {
                session_id,
                resume_token,
                voice,
            } => self.started(&session_id, &resume_token, voice),
            CallEvent::Resumed {
                session_id,
                next_seq,
                turns,
            } => ServerMessage::SessionResumed {
                session_id,
                next_seq,
                turns,
            },
            CallEvent::Ended {
                session_id,
                reason,
                turns,
                duration_ms,
            } => ServerMessage::SessionEnded {
                session_id,
                reason,
                turns,
                duration_ms,
            },
            CallEvent::AudioAck { seq } => ServerMessage::AudioAck { seq },
            CallEvent::SpeechStarted { turn_id, audio_ms } => {
                ServerMessage::InputSpeechStarted { turn_id, audio_ms }
            }
            CallEvent::SpeechStopped {
                turn_id,
                audio_ms,
                end_of_turn,
            } => ServerMessage::InputSpeechStopped {
                turn_id,
                audio_ms,
                end_of_turn,
            },
            CallEvent::Transcript {
                turn_id,
                text,
                is_final,
                span_ms,
            } => ServerMessage::Transcript {
                turn_id,
                text,
                is_final,
                start_ms: span_ms.map(|s| s.0),
                end_ms: span_ms.map(|s| s.1),
            },
            CallEvent::ResponseStarted {
                turn_id,
                status,
                eta_ms,
            } => ServerMessage::ResponseStarted {
                turn_id,
                status,
                eta_ms,
            },
            CallEvent::ResponsePaused { turn_id, audio_ms } => {
                ServerMessage::ResponsePaused { turn_id, audio_ms }
            }
            CallEvent::ResponseResumed {
                turn_id,
                paused_ms,
                text,
                ..
            } => ServerMessage::ResponseResumed {
                turn_id,
                paused_ms,
                text,
            },
            CallEvent::ResponseText {
                turn_id,
                index,
                delta,
            } => ServerMessage::ResponseTextDelta {
                turn_id,
                index,
                delta,
            },
            CallEvent::ResponseAudio {
                turn_id,
                seq,
                first,
                last,
                samples,
            } => ServerMessage::audio_chunk(turn_id, seq, first, last, &samples),
            CallEvent::ResponseDone {
                turn_id,
                status,
                text,
                heard_text,
                latency,
                usage,
            } => ServerMessage::ResponseDone {
                turn_id,
                status,
                text,
                heard_text,
                latency,
                usage,
            },
            CallEvent::Error { fault, turn_id } => {
                ServerMessage::Error(error_event(&fault, turn_id))
            }
            CallEvent::Pong { t, server_time } => ServerMessage::Pong { t, server_time },
            // callgate.v1 has no idle timeout (its calls never set one) and no commit event.
            CallEvent::Committed { .. } | CallEvent::IdleTimeout { .. } => return None,
        })
    }
}

/// The core's view of a validated `session.start`; context values become short strings,
/// since they end up in prompts and speech.
fn start_request(start: &SessionStart) -> StartRequest {
    let context = start
        .context
        .iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.chars().take(64).collect(), v.chars().take(200).collect())
        })
        .collect();
    StartRequest {
        input_rate: start.input.sample_rate,
        channels: start.input.channels.max(1),
        output_rate: start.output.sample_rate,
        turn: TurnPolicy::from_wire(&start.turn_detection),
        persona: start.persona.clone(),
        context,
        token: start.token.clone(),
        greet: true,
        config: super::events::CallConfig::default(),
    }
}

fn bad_message(e: &BadMessage) -> Fault {
    Fault::BadMessage(e.message.clone())
}

fn bad_audio(e: &FrameError) -> Fault {
    Fault::BadAudio(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_maps_to_its_code_once() {
        let cases = [
            (Fault::BadMessage("x".into()), ErrorCode::BadMessage, true),
            (
                Fault::AudioGap { from: 3, to: 9 },
                ErrorCode::AudioGap,
                true,
            ),
            (
                Fault::Unauthorized("no".into()),
                ErrorCode::Unauthorized,
                false,
            ),
            (
                Fault::SessionNotFound("no".into()),
                ErrorCode::SessionNotFound,
                false,
            ),
            (Fault::Llm("stall".into()), ErrorCode::LlmError, true),
        ];
        for (fault, code, recoverable) in cases {
            let e = error_event(&fault, Some(4));
            assert_eq!(
                (e.code, e.recoverable, e.turn_id),
                (code, recoverable, Some(4))
            );
        }
        let gap = error_event(&Fault::AudioGap { from: 3, to: 9 }, None);
        assert_eq!((gap.from, gap.to), (Some(3), Some(9)));
    }

    #[test]
    fn audio_goes_binary_until_a_start_asks_for_json() {
        let codec = V1Codec::default();
        let audio = CallEvent::ResponseAudio {
            turn_id: 1,
            seq: 0,
            first: true,
            last: false,
            samples: vec![1i16, 2].into(),
        };
        assert!(matches!(
            codec.encode(audio.clone()).as_slice(),
            [Message::Binary(_)]
        ));
        let start = r#"{"type":"session.start","input":{"sampleRate":16000},
            "output":{"transport":"json"}}"#;
        assert!(matches!(
            codec.decode_text(start),
            Ok(Decoded {
                input: Some(CallInput::Start(_)),
                ..
            })
        ));
        assert!(matches!(
            codec.encode(audio.clone()).as_slice(),
            [Message::Text(_)]
        ));
    }

    #[test]
    fn an_invalid_start_is_a_bad_message_naming_the_field() {
        let codec = V1Codec::default();
        let start = r#"{"type":"session.start","input":{"sampleRate":4}}"#;
        match codec.decode_text(start) {
            Err(Fault::BadMessage(m)) => assert!(m.contains("input.sampleRate"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
