//! The OpenAI Realtime (GA) adapter: a second implementation of [`Codec`] over the same
//! call core as callgate.v1. Client events (`session.update`, `input_audio_buffer.*`,
//! `conversation.item.*`, `response.*`) become [`CallInput`]s; [`CallEvent`]s become the
//! server events the official SDKs expect ([`server`]), with the ids that tie them together.
//! A session starts at the upgrade and ends when its client closes the socket.

mod config;
mod g711;
mod server;

use std::sync::{Mutex, MutexGuard};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::events::{CallEvent, CallInput, Fault, SeedRole, StartRequest};
use super::session;
use super::v1::{Closing, Codec, Decoded, close_code};
use crate::protocol::InputChunk;
pub use config::{AudioFormat, BadField, SessionConfig, TurnDetection};

/// Largest client event accepted, bytes: about 16 s of 24 kHz PCM in one append (the
/// SDKs send whole clips in one event; callgate.v1's 64 KiB frames would refuse them).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// The subprotocol browsers offer (with `openai-insecure-api-key.<key>`), echoed.
pub const SUBPROTOCOL: &str = "realtime";

/// The subprotocol prefix that carries a browser's key.
pub const KEY_SUBPROTOCOL_PREFIX: &str = "openai-insecure-api-key.";

/// Conversation items remembered for `conversation.item.retrieve` (text only, no audio).
const MAX_ITEMS: usize = 256;

/// Bytes of remembered items (their JSON) beyond which the oldest are forgotten: a client
/// may send items of up to [`MAX_MESSAGE_BYTES`] each.
const MAX_ITEM_BYTES: usize = 2 * MAX_MESSAGE_BYTES;

/// The Realtime codec of one call: the session's configuration and the ids of what is
/// being said, shared by the decoding (the call's task) and encoding (any turn's task).
pub struct RealtimeCodec {
    state: Mutex<State>,
    persona: Option<String>,
}

/// The response in flight, as its client knows it.
struct Reply {
    turn_id: u32,
    /// Its text only (no audio part), fixed when it started.
    text_only: bool,
    /// The client asked for it to stop (`client_cancelled`, not `turn_detected`).
    client_cancelled: bool,
}

/// Why the next `error` is sent: the client event being answered and its bad field.
#[derive(Default)]
struct Answering {
    /// The client's `event_id`.
    event_id: Option<String>,
    /// The client event's `type`.
    kind: String,
    /// The Realtime error code and field, when the codec itself refused the event.
    refusal: Option<(&'static str, Option<String>)>,
}

struct State {
    config: SessionConfig,
    session_id: String,
    next_event: u64,
    /// Input seq for the next append.
    next_seq: u32,
    /// Last 8 kHz input sample (G.711 interpolation joins chunks).
    last_input: i16,
    response: Option<Reply>,
    /// The last item of the conversation (`previous_item_id`).
    last_item: Option<String>,
    /// The last user turn committed (its `committed` went out).
    committed: Option<u32>,
    /// `speech_started` went out without its `speech_stopped`.
    speech_open: bool,
    /// The user turn and text of the last partial transcript sent.
    partial: Option<(u32, String)>,
    answering: Answering,
    /// Conversation items by id, oldest first.
    items: Vec<Value>,
    /// The JSON size of `items`, bytes.
    item_bytes: usize,
    next_seed: u32,
    /// Messages the client seeded, and the characters of the system ones (the call core's
    /// bound on them, [`session::seed_fits`], is refused here with an error).
    seeded: (u32, usize),
    /// Audio sent of each recent spoken response, by turn, in 24 kHz samples: how far a
    /// `conversation.item.truncate` may reach (the last [`MAX_ITEMS`]).
    audio_sent: Vec<(u32, u64)>,
}

impl RealtimeCodec {
    /// A session for a client that asked for `model` (a persona of that id is the
    /// interviewer when `persona` is given).
    pub fn new(model: &str, persona: Option<String>) -> Self {
        Self {
            state: Mutex::new(State {
                config: SessionConfig::new(model),
                session_id: String::new(),
                next_event: 0,
                next_seq: 0,
                last_input: 0,
                response: None,
                last_item: None,
                committed: None,
                speech_open: false,
                partial: None,
                answering: Answering::default(),
                items: Vec::new(),
                item_bytes: 0,
                next_seed: 0,
                seeded: (0, 0),
                audio_sent: Vec::new(),
            }),
            persona,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Codec for RealtimeCodec {
    fn decode_text(&self, text: &str) -> Result<Decoded, Fault> {
        let mut st = self.lock();
        st.answering = Answering::default();
        let event: Value = serde_json::from_str(text)
            .map_err(|e| st.refuse("invalid_json", None, format!("not a JSON event: {e}")))?;
        st.answering.event_id = event
            .get("event_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        st.answering.kind = kind.to_owned();
        match kind {
            "session.update" => st.session_update(&event),
            "input_audio_buffer.append" => st.append(&event),
            "input_audio_buffer.commit" => st.commit(),
            "input_audio_buffer.clear" => {
                let cleared = st.server_event("input_audio_buffer.cleared", json!({}));
                Ok(Decoded {
                    input: Some(CallInput::Clear),
                    replies: vec![cleared],
                })
            }
            "response.create" => st.response_create(&event),
            "response.cancel" => st.response_cancel(&event),
            "conversation.item.create" => st.item_create(&event),
            "conversation.item.truncate" => st.item_truncate(&event),
            "conversation.item.delete" => st.item_delete(&event),
            "conversation.item.retrieve" => st.item_retrieve(&event),
            "" => Err(st.refuse(
                "invalid_value",
                Some("type"),
                "an event needs a type".into(),
            )),
            other => Err(st.refuse(
                "invalid_value",
                Some("type"),
                format!("event type {other:?} is not supported by callgate"),
            )),
        }
    }

    fn decode_binary(&self, _bytes: &[u8]) -> Result<Decoded, Fault> {
        let mut st = self.lock();
        st.answering = Answering::default();
        Err(st.refuse(
            "invalid_value",
            None,
            "binary frames are not part of the Realtime protocol; send input_audio_buffer.append"
                .into(),
        ))
    }

    fn encode(&self, event: CallEvent) -> Vec<Message> {
        self.lock().encode(event)
    }

    fn close(&self, closing: &Closing) -> Message {
        let (code, reason) = match closing {
            Closing::TooBig => (
                tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Size,
                "event larger than 1 MiB",
            ),
            other => close_code(other),
        };
        Message::Close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code,
            reason: reason.to_string().into(),
        }))
    }

    fn opening(&self) -> Option<CallInput> {
        let st = self.lock();
        Some(CallInput::Start(StartRequest {
            input_rate: config::PCM_RATE,
            channels: 1,
            output_rate: config::PCM_RATE,
            turn: st.config.turn_policy(),
            persona: self.persona.clone(),
            context: Default::default(),
            token: None,
            greet: false,
            config: st.config.call_config(),
        }))
    }

    fn resumable(&self) -> bool {
        false
    }
}

impl State {
    /// Remembers why the next error is sent, and makes the fault that sends it.
    fn refuse(&mut self, code: &'static str, param: Option<&str>, message: String) -> Fault {
        self.answering.refusal = Some((code, param.map(str::to_owned)));
        Fault::BadMessage(message)
    }

    fn bad_field(&mut self, e: BadField) -> Fault {
        self.answering.refusal = Some(("invalid_value", Some(e.param)));
        Fault::BadMessage(e.message)
    }

    fn session_update(&mut self, event: &Value) -> Result<Decoded, Fault> {
        let session = event.get("session").cloned().unwrap_or(Value::Null);
        let next = self
            .config
            .merged(&session)
            .map_err(|e| self.bad_field(e))?;
        let turn = (next.turn_policy() != self.config.turn_policy()).then(|| next.turn_policy());
        let input = CallInput::Configure {
            turn,
            config: next.call_config(),
        };
        self.config = next;
        let body = json!({"session": self.config.to_json(&self.session_id)});
        let updated = self.server_event("session.updated", body);
        Ok(Decoded {
            input: Some(input),
            replies: vec![updated],
        })
    }

    fn append(&mut self, event: &Value) -> Result<Decoded, Fault> {
        let Some(audio) = event.get("audio").and_then(Value::as_str) else {
            return Err(self.refuse(
                "missing_required_parameter",
                Some("audio"),
                "input_audio_buffer.append needs audio (base64)".into(),
            ));
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(audio)
            .map_err(|e| {
                self.refuse(
                    "invalid_value",
                    Some("audio"),
                    format!("audio is not base64: {e}"),
                )
            })?;
        let samples = match self.config.input_format {
            AudioFormat::Pcm => {
                if bytes.len() % 2 != 0 {
                    return Err(self.refuse(
                        "invalid_value",
                        Some("audio"),
                        format!("audio/pcm is 16-bit: {} bytes is an odd count", bytes.len()),
                    ));
                }
                bytes
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect()
            }
            AudioFormat::Pcmu => self.upsample(bytes.iter().map(|&b| g711::ulaw_to_linear(b))),
            AudioFormat::Pcma => self.upsample(bytes.iter().map(|&b| g711::alaw_to_linear(b))),
        };
        if samples.is_empty() {
            return Ok(Decoded::default());
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        Ok(CallInput::Audio(InputChunk { seq, samples }).into())
    }

    fn commit(&mut self) -> Result<Decoded, Fault> {
        if self.config.turn_detection.is_some() {
            return Err(self.refuse(
                "invalid_value",
                Some("session.audio.input.turn_detection"),
                "input_audio_buffer.commit needs turn_detection null: under server_vad and \
                 semantic_vad the server commits each turn"
                    .into(),
            ));
        }
        Ok(CallInput::Commit.into())
    }

    fn upsample(&mut self, narrow: impl Iterator<Item = i16>) -> Vec<i16> {
        let narrow: Vec<i16> = narrow.collect();
        g711::upsample(&narrow, &mut self.last_input)
    }

    fn response_create(&mut self, event: &Value) -> Result<Decoded, Fault> {
        let response = event.get("response").unwrap_or(&Value::Null);
        let instructions = match response.get("instructions") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(self.refuse(
                    "invalid_type",
                    Some("response.instructions"),
                    "response.instructions must be a string".into(),
                ));
            }
        };
        if response.get("conversation").and_then(Value::as_str) == Some("none") {
            return Err(self.refuse(
                "invalid_value",
                Some("response.conversation"),
                "out-of-band responses (conversation \"none\") are not supported".into(),
            ));
        }
        Ok(CallInput::Respond { instructions }.into())
    }

    fn response_cancel(&mut self, event: &Value) -> Result<Decoded, Fault> {
        let asked = event.get("response_id").and_then(Value::as_str);
        let current = self.response.as_ref().map(|r| r.turn_id);
        let Some(turn_id) = current.filter(|t| asked.is_none_or(|id| id == response_id(*t))) else {
            return Err(self.refuse(
                "response_cancel_not_active",
                asked.map(|_| "response_id"),
                "there is no response in progress to cancel".into(),
            ));
        };
        if let Some(r) = self.response.as_mut() {
            r.client_cancelled = true;
        }
        Ok(CallInput::Cancel {
            turn_id: Some(turn_id),
        }
        .into())
    }

    fn item_create(&mut self, event: &Value) -> Result<Decoded, Fault> {
        let item = event.get("item").unwrap_or(&Value::Null);
        if item.get("type").and_then(Value::as_str) != Some("message") {
            return Err(self.refuse(
                "invalid_value",
                Some("item.type"),
                "only message items are supported (no function calls)".into(),
            ));
        }
        let role = match item.get("role").and_then(Value::as_str) {
            Some("user") => SeedRole::User,
            Some("assistant") => SeedRole::Assistant,
            Some("system") => SeedRole::System,
            _ => {
                return Err(self.refuse(
                    "invalid_value",
                    Some("item.role"),
                    "item.role must be user, assistant or system".into(),
                ));
            }
        };
        let text = message_text(item).map_err(|e| self.bad_field(e))?;
        let (seeded, system_chars) = self.seeded;
        let chars = text.chars().count();
        if !session::seed_fits(seeded, system_chars, role, chars) {
            return Err(self.refuse(
                "invalid_value",
                Some("item"),
                format!(
                    "the conversation takes at most {} messages from the client, and {} \
                     characters of system messages",
                    session::MAX_SEEDS,
                    session::MAX_SEEDED_SYSTEM_CHARS
                ),
            ));
        }
        self.seeded.0 += 1;
        if role == SeedRole::System {
            self.seeded.1 += chars.min(session::MAX_SEED_CHARS);
        }
        let id = match item.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() && id.len() <= 64 => id.to_owned(),
            _ => {
                self.next_seed += 1;
                format!("item_seed_{}", self.next_seed)
            }
        };
        let mut stored = item.clone();
        stored["id"] = json!(id);
        stored["object"] = json!("realtime.item");
        stored["status"] = json!("completed");
        let replies = self.item_added_and_done(stored);
        Ok(Decoded {
            input: Some(CallInput::Seed { role, text }),
            replies,
        })
    }

    fn item_truncate(&mut self, event: &Value) -> Result<Decoded, Fault> {
        let item_id = event.get("item_id").and_then(Value::as_str).unwrap_or("");
        let Some(played_ms) = event.get("audio_end_ms").and_then(Value::as_u64) else {
            return Err(self.refuse(
                "missing_required_parameter",
                Some("audio_end_ms"),
                "conversation.item.truncate needs audio_end_ms".into(),
            ));
        };
        let spoken = assistant_turn(item_id)
            .and_then(|t| self.audio_sent.iter().find(|(turn, _)| *turn == t).copied());
        let Some((turn_id, samples)) = spoken else {
            let known = self.items.iter().any(|i| i["id"] == item_id);
            return Err(if known {
                // OpenAI's words for a user, text or seeded item.
                self.refuse(
                    "invalid_value",
                    Some("item_id"),
                    "Only model output audio messages can be truncated".into(),
                )
            } else {
                self.refuse(
                    "item_not_found",
                    Some("item_id"),
                    format!("no item {item_id:?} in the conversation"),
                )
            });
        };
        let sent_ms = samples * 1000 / u64::from(config::PCM_RATE);
        if played_ms > sent_ms {
            // OpenAI's words for a truncate beyond the audio it sent.
            return Err(self.refuse(
                "invalid_value",
                Some("audio_end_ms"),
                format!("Audio content of {sent_ms}ms is already shorter than {played_ms}ms"),
            ));
        }
        let content_index = event
            .get("content_index")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let truncated = self.server_event(
            "conversation.item.truncated",
            json!({"item_id": item_id, "content_index": content_index, "audio_end_ms": played_ms}),
        );
        Ok(Decoded {
            input: Some(CallInput::PlaybackPosition { turn_id, played_ms }),
            replies: vec![truncated],
        })
    }

    fn item_delete(&mut self, event: &Value) -> Result<Decoded, Fault> {
        let item_id = self.known_item(event)?;
        self.items.retain(|i| i["id"] != item_id.as_str());
        self.item_bytes = self.items.iter().map(json_bytes).sum();
        let deleted = self.server_event("conversation.item.deleted", json!({"item_id": item_id}));
        Ok(Decoded {
            input: None,
            replies: vec![deleted],
        })
    }

    fn item_retrieve(&mut self, event: &Value) -> Result<Decoded, Fault> {
        let item_id = self.known_item(event)?;
        let item = self
            .items
            .iter()
            .find(|i| i["id"] == item_id.as_str())
            .cloned()
            .unwrap_or(Value::Null);
        let retrieved = self.server_event("conversation.item.retrieved", json!({"item": item}));
        Ok(Decoded {
            input: None,
            replies: vec![retrieved],
        })
    }

    /// The `item_id` of `event`, when the conversation holds it.
    fn known_item(&mut self, event: &Value) -> Result<String, Fault> {
        let item_id = event.get("item_id").and_then(Value::as_str).unwrap_or("");
        if self.items.iter().any(|i| i["id"] == item_id) {
            return Ok(item_id.to_owned());
        }
        Err(self.refuse(
            "item_not_found",
            Some("item_id"),
            format!("no item {item_id:?} in the conversation"),
        ))
    }

    /// Keeps `item` (replacing an earlier version of it), newest last; the oldest are
    /// forgotten beyond [`MAX_ITEMS`] or [`MAX_ITEM_BYTES`].
    fn remember(&mut self, item: &Value) {
        let bytes = json_bytes(item);
        if let Some(old) = self.items.iter_mut().find(|i| i["id"] == item["id"]) {
            self.item_bytes = self.item_bytes.saturating_sub(json_bytes(old)) + bytes;
            *old = item.clone();
        } else {
            self.items.push(item.clone());
            self.item_bytes += bytes;
        }
        while self.items.len() > 1
            && (self.items.len() > MAX_ITEMS || self.item_bytes > MAX_ITEM_BYTES)
        {
            let gone = self.items.remove(0);
            self.item_bytes = self.item_bytes.saturating_sub(json_bytes(&gone));
        }
    }

    /// A server event of `kind` with `body`'s fields and the next `event_id`.
    fn server_event(&mut self, kind: &str, mut body: Value) -> Message {
        self.next_event += 1;
        body["type"] = json!(kind);
        body["event_id"] = json!(format!("event_{}", self.next_event));
        Message::text(body.to_string())
    }
}

/// The size of `item` as JSON, bytes.
fn json_bytes(item: &Value) -> usize {
    item.to_string().len()
}

/// The text of a message item's content parts, joined.
fn message_text(item: &Value) -> Result<String, BadField> {
    let parts = item
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| BadField::new("item.content", "item.content must be a list".into()))?;
    let mut text = String::new();
    for (i, part) in parts.iter().enumerate() {
        match part.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text" | "text") => {
                text.push_str(part.get("text").and_then(Value::as_str).unwrap_or(""));
            }
            Some("input_audio" | "output_audio") if part.get("transcript").is_some() => {
                text.push_str(part.get("transcript").and_then(Value::as_str).unwrap_or(""));
            }
            other => {
                return Err(BadField::new(
                    &format!("item.content[{i}].type"),
                    format!(
                        "content {other:?} is not supported: text, or audio with its transcript"
                    ),
                ));
            }
        }
    }
    if text.trim().is_empty() {
        return Err(BadField::new(
            "item.content",
            "the message has no text".into(),
        ));
    }
    Ok(text)
}

/// The user item of turn `turn_id`.
fn user_item(turn_id: u32) -> String {
    format!("item_user_{turn_id}")
}

/// The assistant item answering turn `turn_id`.
fn assistant_item(turn_id: u32) -> String {
    format!("item_asst_{turn_id}")
}

/// The turn an assistant item answers.
fn assistant_turn(item_id: &str) -> Option<u32> {
    item_id.strip_prefix("item_asst_")?.parse().ok()
}

/// The response answering turn `turn_id`.
fn response_id(turn_id: u32) -> String {
    format!("resp_{turn_id}")
}

#[cfg(test)]
mod tests;
