//! Call events as Realtime server events: the session, the input buffer's speech and
//! commits, the user's transcripts, and each response's lifecycle (created, its item and
//! content part opened, audio and transcript deltas, everything closed again in order,
//! then `response.done` with its status), plus errors in the Realtime shape.

use base64::Engine as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::config::AudioFormat;
use super::{Reply, State, assistant_item, g711, response_id, user_item};
use crate::call::events::{CallEvent, Fault};
use crate::protocol::{DoneStatus, TokenUsage};

impl State {
    /// The server events that carry `event`, in order.
    pub(super) fn encode(&mut self, event: CallEvent) -> Vec<Message> {
        match event {
            CallEvent::Started { session_id, .. } => {
                self.session_id = format!("sess_{session_id}");
                let session = self.config.to_json(&self.session_id);
                vec![self.server_event("session.created", json!({ "session": session }))]
            }
            CallEvent::SpeechStarted { turn_id, audio_ms } => {
                self.speech_started(turn_id, audio_ms)
            }
            CallEvent::ResponsePaused { turn_id, audio_ms } => {
                // Speech over the response: the client stops its player now, as it does
                // at OpenAI's speech_started; the response stays silent meanwhile.
                self.speech_started(turn_id + 1, audio_ms)
            }
            CallEvent::ResponseResumed {
                turn_id,
                speech_end_ms,
                ..
            } => self.backchannel_stopped(turn_id + 1, speech_end_ms),
            CallEvent::SpeechStopped {
                turn_id, audio_ms, ..
            } => self.speech_stopped(turn_id, audio_ms),
            CallEvent::Committed { turn_id, .. } => self.committed(turn_id),
            CallEvent::IdleTimeout {
                turn_id,
                start_ms,
                end_ms,
            } => self.timeout_triggered(turn_id, (start_ms, end_ms)),
            CallEvent::Transcript {
                turn_id,
                text,
                is_final,
                span_ms,
            } => self.transcript(turn_id, text, is_final, span_ms),
            CallEvent::ResponseStarted { turn_id, .. } => self.response_started(turn_id),
            CallEvent::ResponseText { turn_id, delta, .. } => self.response_text(turn_id, delta),
            CallEvent::ResponseAudio {
                turn_id, samples, ..
            } => self.response_audio(turn_id, &samples),
            CallEvent::ResponseDone {
                turn_id,
                status,
                text,
                heard_text,
                usage,
                ..
            } => self.response_done(turn_id, status, (text, heard_text), usage),
            CallEvent::Error { fault, turn_id } => vec![self.error(&fault, turn_id)],
            CallEvent::Resumed { .. }
            | CallEvent::Ended { .. }
            | CallEvent::AudioAck { .. }
            | CallEvent::Pong { .. } => Vec::new(),
        }
    }

    fn speech_started(&mut self, turn_id: u32, audio_ms: u64) -> Vec<Message> {
        if self.speech_open {
            return Vec::new();
        }
        self.speech_open = true;
        let body = json!({"audio_start_ms": audio_ms, "item_id": user_item(turn_id)});
        vec![self.server_event("input_audio_buffer.speech_started", body)]
    }

    fn speech_stopped(&mut self, turn_id: u32, audio_ms: u64) -> Vec<Message> {
        self.speech_open = false;
        let body = json!({"audio_end_ms": audio_ms, "item_id": user_item(turn_id)});
        let mut out = vec![self.server_event("input_audio_buffer.speech_stopped", body)];
        out.extend(self.committed(turn_id));
        out
    }

    /// The idle timeout, as OpenAI sends it: `timeout_triggered` with the silent span, then
    /// that span committed as an empty audio item (its answer follows).
    fn timeout_triggered(&mut self, turn_id: u32, (start_ms, end_ms): (u64, u64)) -> Vec<Message> {
        let item_id = user_item(turn_id);
        let body = json!({"audio_start_ms": start_ms, "audio_end_ms": end_ms, "item_id": item_id});
        let mut out = vec![self.server_event("input_audio_buffer.timeout_triggered", body)];
        out.extend(self.committed(turn_id));
        let item = user_audio_item(&item_id, None, "completed");
        self.remember(&item);
        let body = json!({"item": item, "previous_item_id": null});
        out.push(self.server_event("conversation.item.done", body));
        out
    }

    /// A backchannel ended the speech over a response: `speech_stopped` closes the
    /// `speech_started` the client saw, and nothing is committed (it is not a turn); the
    /// response's audio deltas go on from where they were held. The next speech is new
    /// speech, under the same item id (no turn was taken).
    fn backchannel_stopped(&mut self, turn_id: u32, audio_ms: u64) -> Vec<Message> {
        if !self.speech_open {
            return Vec::new();
        }
        self.speech_open = false;
        let body = json!({"audio_end_ms": audio_ms, "item_id": user_item(turn_id)});
        vec![self.server_event("input_audio_buffer.speech_stopped", body)]
    }

    /// `committed` and the user item's `conversation.item.added`, once per turn.
    fn committed(&mut self, turn_id: u32) -> Vec<Message> {
        if self.committed == Some(turn_id) {
            return Vec::new();
        }
        self.committed = Some(turn_id);
        self.speech_open = false;
        let item_id = user_item(turn_id);
        let body = json!({"item_id": item_id, "previous_item_id": self.last_item});
        let committed = self.server_event("input_audio_buffer.committed", body);
        let item = user_audio_item(&item_id, None, "in_progress");
        let mut out = vec![committed];
        out.push(self.item_added(&item));
        out
    }

    fn transcript(
        &mut self,
        turn_id: u32,
        text: String,
        is_final: bool,
        span_ms: Option<(u64, u64)>,
    ) -> Vec<Message> {
        if self.config.transcription.is_none() && is_final {
            // No transcription events were asked for; the item still gets its words.
            self.partial = None;
            return self.user_item_done(turn_id, &text);
        }
        if self.config.transcription.is_none() {
            return Vec::new();
        }
        let item_id = user_item(turn_id);
        if !is_final {
            let said = match &self.partial {
                Some((t, said)) if *t == turn_id => said.clone(),
                _ => String::new(),
            };
            let Some(delta) = text.strip_prefix(said.as_str()).filter(|d| !d.is_empty()) else {
                // Whisper revised what it heard: deltas only ever add.
                return Vec::new();
            };
            let body = json!({"item_id": item_id, "content_index": 0, "delta": delta});
            let delta =
                self.server_event("conversation.item.input_audio_transcription.delta", body);
            self.partial = Some((turn_id, text));
            return vec![delta];
        }
        self.partial = None;
        let seconds = span_ms.map_or(0.0, |(a, b)| b.saturating_sub(a) as f64 / 1000.0);
        let body = json!({"item_id": item_id, "content_index": 0, "transcript": text,
            "usage": {"type": "duration", "seconds": seconds}});
        let mut out = vec![self.server_event(
            "conversation.item.input_audio_transcription.completed",
            body,
        )];
        out.extend(self.user_item_done(turn_id, &text));
        out
    }

    /// The user item of a committed spoken turn, done with its transcript.
    fn user_item_done(&mut self, turn_id: u32, text: &str) -> Vec<Message> {
        if self.committed != Some(turn_id) {
            return Vec::new();
        }
        let item = user_audio_item(&user_item(turn_id), Some(text), "completed");
        self.remember(&item);
        let body = json!({"item": item, "previous_item_id": null});
        vec![self.server_event("conversation.item.done", body)]
    }

    fn response_started(&mut self, turn_id: u32) -> Vec<Message> {
        if self.response.as_ref().is_some_and(|r| r.turn_id == turn_id) {
            // Queued, then thinking: one response.
            return Vec::new();
        }
        let text_only = self.config.text_only;
        if !text_only {
            self.audio_sent.push((turn_id, 0));
            if self.audio_sent.len() > super::MAX_ITEMS {
                self.audio_sent.remove(0);
            }
        }
        self.response = Some(Reply {
            turn_id,
            text_only,
            client_cancelled: false,
        });
        let opened = ("in_progress", Value::Null);
        let response = self.response_json(turn_id, text_only, opened, Vec::new(), None);
        let mut out = vec![self.server_event("response.created", json!({ "response": response }))];
        let item = assistant_item_json(turn_id, "in_progress", text_only, "");
        let added = json!({"response_id": response_id(turn_id), "output_index": 0, "item": item});
        out.push(self.server_event("response.output_item.added", added));
        out.push(self.item_added(&item));
        let part = content_part(text_only, "");
        let body = self.content_fields(turn_id, json!({ "part": part }));
        out.push(self.server_event("response.content_part.added", body));
        out
    }

    fn response_text(&mut self, turn_id: u32, delta: String) -> Vec<Message> {
        let Some(text_only) = self.reply_for(turn_id).map(|r| r.text_only) else {
            return Vec::new();
        };
        let kind = if text_only {
            "response.output_text.delta"
        } else {
            "response.output_audio_transcript.delta"
        };
        let body = self.content_fields(turn_id, json!({ "delta": delta }));
        vec![self.server_event(kind, body)]
    }

    fn response_audio(&mut self, turn_id: u32, samples: &[i16]) -> Vec<Message> {
        if self.reply_for(turn_id).is_none_or(|r| r.text_only) {
            return Vec::new();
        }
        if let Some((_, sent)) = self.audio_sent.iter_mut().find(|(t, _)| *t == turn_id) {
            *sent += samples.len() as u64;
        }
        let bytes: Vec<u8> = match self.config.output_format {
            AudioFormat::Pcm => samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
            AudioFormat::Pcmu => g711::downsample(samples)
                .into_iter()
                .map(g711::linear_to_ulaw)
                .collect(),
            AudioFormat::Pcma => g711::downsample(samples)
                .into_iter()
                .map(g711::linear_to_alaw)
                .collect(),
        };
        let delta = base64::engine::general_purpose::STANDARD.encode(bytes);
        let body = self.content_fields(turn_id, json!({ "delta": delta }));
        vec![self.server_event("response.output_audio.delta", body)]
    }

    fn response_done(
        &mut self,
        turn_id: u32,
        status: DoneStatus,
        (text, heard_text): (String, String),
        usage: Option<TokenUsage>,
    ) -> Vec<Message> {
        let mut out = self.response_started(turn_id);
        let Some(reply) = self.response.take().filter(|r| r.turn_id == turn_id) else {
            return out;
        };
        let kept = if status == DoneStatus::Completed {
            text.clone()
        } else {
            heard_text
        };
        if reply.text_only {
            let body = self.content_fields(turn_id, json!({ "text": kept }));
            out.push(self.server_event("response.output_text.done", body));
        } else {
            let body = self.content_fields(turn_id, json!({}));
            out.push(self.server_event("response.output_audio.done", body));
            let body = self.content_fields(turn_id, json!({ "transcript": kept }));
            out.push(self.server_event("response.output_audio_transcript.done", body));
        }
        let part = content_part(reply.text_only, &kept);
        let body = self.content_fields(turn_id, json!({ "part": part }));
        out.push(self.server_event("response.content_part.done", body));
        let item_status = if status == DoneStatus::Completed {
            "completed"
        } else {
            "incomplete"
        };
        let item = assistant_item_json(turn_id, item_status, reply.text_only, &kept);
        self.remember(&item);
        let body = json!({"response_id": response_id(turn_id), "output_index": 0, "item": item});
        out.push(self.server_event("response.output_item.done", body));
        let body = json!({"item": item, "previous_item_id": null});
        out.push(self.server_event("conversation.item.done", body));
        let status = done_status(status, reply.client_cancelled);
        let response = self.response_json(turn_id, reply.text_only, status, vec![item], usage);
        out.push(self.server_event("response.done", json!({ "response": response })));
        out
    }

    fn reply_for(&self, turn_id: u32) -> Option<&Reply> {
        self.response.as_ref().filter(|r| r.turn_id == turn_id)
    }

    /// `conversation.item.added` for `item`, which becomes the conversation's last.
    fn item_added(&mut self, item: &Value) -> Message {
        self.remember(item);
        let body = json!({"item": item, "previous_item_id": self.last_item});
        self.last_item = item["id"].as_str().map(str::to_owned);
        self.server_event("conversation.item.added", body)
    }

    /// Added and done at once: a message the client put into the conversation.
    pub(super) fn item_added_and_done(&mut self, item: Value) -> Vec<Message> {
        let added = self.item_added(&item);
        let body = json!({"item": item, "previous_item_id": null});
        vec![added, self.server_event("conversation.item.done", body)]
    }

    /// The fields that place a delta in turn `turn_id`'s response, merged into `body`.
    fn content_fields(&self, turn_id: u32, mut body: Value) -> Value {
        body["response_id"] = json!(response_id(turn_id));
        body["item_id"] = json!(assistant_item(turn_id));
        body["output_index"] = json!(0);
        body["content_index"] = json!(0);
        body
    }

    fn response_json(
        &self,
        turn_id: u32,
        text_only: bool,
        (status, status_details): (&str, Value),
        output: Vec<Value>,
        usage: Option<TokenUsage>,
    ) -> Value {
        let modality = if text_only { "text" } else { "audio" };
        let usage = usage.map(|u| {
            json!({"total_tokens": u.prompt_tokens + u.completion_tokens,
                "input_tokens": u.prompt_tokens, "output_tokens": u.completion_tokens,
                "input_token_details": {"text_tokens": u.prompt_tokens, "audio_tokens": 0,
                    "cached_tokens": 0},
                "output_token_details": {"text_tokens": u.completion_tokens, "audio_tokens": 0}})
        });
        json!({
            "id": response_id(turn_id),
            "object": "realtime.response",
            "status": status,
            "status_details": status_details,
            "output": output,
            "conversation_id": "conv_default",
            "output_modalities": [modality],
            "max_output_tokens": self.config.max_output_tokens,
            "audio": {"output": {"format": self.config.output_format.to_json(),
                "voice": self.config.voice}},
            "usage": usage,
            "metadata": null,
        })
    }

    /// `fault` in the Realtime shape; an error not tied to a turn answers the client
    /// event being handled (its `event_id`, and the field the codec refused).
    fn error(&mut self, fault: &Fault, turn_id: Option<u32>) -> Message {
        let answering = std::mem::take(&mut self.answering);
        let (kind, code, param) = match (fault, answering.refusal) {
            (_, Some((code, param))) if turn_id.is_none() => ("invalid_request_error", code, param),
            (Fault::BadMessage(_), _) if answering.kind == "input_audio_buffer.commit" => (
                "invalid_request_error",
                "input_audio_buffer_commit_empty",
                None,
            ),
            _ => {
                let (kind, code) = fault_code(fault);
                (kind, code, None)
            }
        };
        let event_id = if turn_id.is_none() {
            answering.event_id
        } else {
            None
        };
        let body = json!({"error": {"type": kind, "code": code, "message": fault.to_string(),
            "param": param, "event_id": event_id}});
        self.server_event("error", body)
    }
}

/// The Realtime error type and code of a fault the call core raised.
fn fault_code(fault: &Fault) -> (&'static str, &'static str) {
    match fault {
        Fault::BadMessage(_) => ("invalid_request_error", "invalid_value"),
        Fault::BadAudio(_) => ("invalid_request_error", "invalid_audio"),
        Fault::AudioGap { .. } => ("invalid_request_error", "audio_gap"),
        Fault::RateLimited { .. } => ("invalid_request_error", "rate_limit_exceeded"),
        Fault::Overloaded { .. } => ("server_error", "server_overloaded"),
        Fault::Unauthorized(_) => ("invalid_request_error", "invalid_api_key"),
        Fault::SessionNotFound(_) => ("invalid_request_error", "session_not_found"),
        Fault::Asr(_) => ("server_error", "transcription_failed"),
        Fault::Llm(_) => ("server_error", "model_failed"),
        Fault::Tts { .. } => ("server_error", "speech_failed"),
    }
}

/// `response.done`'s status and `status_details`.
fn done_status(status: DoneStatus, client_cancelled: bool) -> (&'static str, Value) {
    match status {
        DoneStatus::Completed => ("completed", Value::Null),
        DoneStatus::Cancelled => {
            let reason = if client_cancelled {
                "client_cancelled"
            } else {
                "turn_detected"
            };
            ("cancelled", json!({"type": "cancelled", "reason": reason}))
        }
        DoneStatus::Failed => (
            "failed",
            json!({"type": "failed", "error": {"type": "server_error", "code": "response_failed"}}),
        ),
    }
}

fn user_audio_item(item_id: &str, transcript: Option<&str>, status: &str) -> Value {
    json!({"id": item_id, "object": "realtime.item", "type": "message", "role": "user",
        "status": status, "content": [{"type": "input_audio", "transcript": transcript}]})
}

fn assistant_item_json(turn_id: u32, status: &str, text_only: bool, text: &str) -> Value {
    let content = if text_only {
        json!({"type": "output_text", "text": text})
    } else {
        json!({"type": "output_audio", "transcript": text})
    };
    let content = if status == "in_progress" {
        json!([])
    } else {
        json!([content])
    };
    json!({"id": assistant_item(turn_id), "object": "realtime.item", "type": "message",
        "role": "assistant", "status": status, "content": content})
}

fn content_part(text_only: bool, text: &str) -> Value {
    if text_only {
        json!({"type": "text", "text": text})
    } else {
        json!({"type": "audio", "transcript": text})
    }
}
