//! One file as one OpenAI Realtime session (`--protocol realtime`): the same file, pacing
//! and voice-to-voice measure as a callgate.v1 call, so the two protocols compare on the
//! same files. The file becomes 24 kHz mono PCM (the only PCM rate of the GA protocol; a
//! client resamples other sources, as it must for OpenAI), is appended in base64 chunks as
//! a microphone delivers them, and the server's VAD ends the turn (or, with push-to-talk,
//! the client commits and asks for the answer right after the chunk holding the end of
//! speech). Voice-to-voice runs from the send of that chunk to the first
//! `response.output_audio.delta` of the turn's response.
//!
//! The Realtime protocol carries no latency breakdown, so the reports' server figures are
//! empty; there is no resume (a dropped socket ends the session) and no barge-in clip.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::pacing::{Pacer, Phase};
use super::report::{TurnReport, TurnStatus, failed_report};
use super::{ReplayOptions, SpeechBounds};
use crate::audio::wav::Interleaved;
use crate::client::{ClientError, DEFAULT_CONNECT_TIMEOUT, TurnModeName};

/// The only `audio/pcm` rate of the GA protocol, Hz.
const PCM_RATE: u32 = 24_000;

/// The model a bench session names when the URL does not (callgate echoes it).
const DEFAULT_MODEL: &str = "callgate";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One response as the client saw it.
#[derive(Default)]
struct Turn {
    transcript: String,
    ai_text: String,
    first_audio_at: Option<Instant>,
    created_at: Option<Instant>,
    audio_bytes: u64,
    speech_end_ms: Option<u64>,
    status: Option<TurnStatus>,
}

/// A session's state while its file streams.
#[derive(Default)]
struct Session {
    session_id: String,
    turns: BTreeMap<u32, Turn>,
    /// `speech_started` came without its `speech_stopped`.
    speaking: bool,
    errors: Vec<String>,
}

/// Replays `audio` as one Realtime session; one report per response (at least one).
pub async fn replay_file(
    opts: &ReplayOptions,
    path: &Path,
    audio: &Interleaved,
    speech: Option<SpeechBounds>,
) -> Result<Vec<TurnReport>, ClientError> {
    let (pcm, speech) = to_pcm24k(path, audio, speech).await?;
    let (ws, session_id) = match open(opts).await {
        Ok(open) => open,
        Err(e) => return Ok(vec![failed_report(path, "", TurnStatus::Error, e)]),
    };
    let mut session = Session {
        session_id,
        ..Session::default()
    };
    let (eos_sent, outcome) = session.stream(ws, opts, &pcm, speech).await;
    Ok(session.reports(path, eos_sent, outcome))
}

/// The file as 24 kHz mono 16-bit samples, resampled off the async workers, with its
/// speech bounds in the new frames.
async fn to_pcm24k(
    path: &Path,
    audio: &Interleaved,
    speech: Option<SpeechBounds>,
) -> Result<(Interleaved, Option<SpeechBounds>), ClientError> {
    let (mono, rate) = (audio.to_mono_f32(), audio.rate);
    let resampled = tokio::task::spawn_blocking(move || {
        crate::audio::resample::resample_all(&mono, rate, PCM_RATE)
    })
    .await
    .map_err(|e| ClientError::file(path, e))?
    .map_err(|e| ClientError::file(path, e))?;
    let scale = |f: usize| (f as u64 * u64::from(PCM_RATE) / u64::from(rate.max(1))) as usize;
    let pcm = Interleaved {
        samples: crate::audio::f32_to_i16(&resampled),
        rate: PCM_RATE,
        channels: 1,
    };
    Ok((pcm, speech.map(|(a, b)| (scale(a), scale(b)))))
}

/// `url` with a `model` query parameter (the SDKs always send one).
fn session_url(url: &str) -> String {
    if url.contains("model=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}model={DEFAULT_MODEL}")
}

/// The `session.update` these options ask for: 24 kHz PCM in, transcripts on, and the
/// turn detection of `--turn-detection` / `--silence-ms` (null with push-to-talk).
fn session_update(opts: &ReplayOptions) -> Value {
    let turn_detection = if opts.push_to_talk {
        Value::Null
    } else {
        match opts.turn_taking.mode {
            Some(TurnModeName::Smart) => json!({"type": "semantic_vad"}),
            _ => {
                let mut vad = json!({"type": "server_vad"});
                if let Some(ms) = opts.silence_ms {
                    vad["silence_duration_ms"] = json!(ms);
                }
                vad
            }
        }
    };
    json!({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "format": {"type": "audio/pcm", "rate": PCM_RATE},
        "transcription": {"model": "whisper-1"},
        "turn_detection": turn_detection}}}})
}

/// Connects, waits for `session.created`, configures the session and waits for
/// `session.updated`; the socket and the session's id, or why not.
async fn open(opts: &ReplayOptions) -> Result<(Ws, String), String> {
    let open = async {
        let (mut ws, _) = tokio_tungstenite::connect_async(session_url(&opts.url))
            .await
            .map_err(|e| format!("websocket: {e}"))?;
        let created = next_event(&mut ws, "session.created").await?;
        let session_id = created["session"]["id"].as_str().unwrap_or("").to_owned();
        let update = session_update(opts).to_string();
        ws.send(Message::text(update))
            .await
            .map_err(|e| format!("websocket: {e}"))?;
        next_event(&mut ws, "session.updated").await?;
        Ok((ws, session_id))
    };
    tokio::time::timeout(DEFAULT_CONNECT_TIMEOUT, open)
        .await
        .map_err(|_| format!("no session.updated within {DEFAULT_CONNECT_TIMEOUT:?}"))?
}

/// The next event of type `kind`; an `error` or the end of the socket first is why not.
async fn next_event(ws: &mut Ws, kind: &str) -> Result<Value, String> {
    while let Some(msg) = ws.next().await {
        let Message::Text(text) = msg.map_err(|e| format!("websocket: {e}"))? else {
            continue;
        };
        let event: Value = serde_json::from_str(&text).map_err(|e| format!("bad event: {e}"))?;
        match event["type"].as_str() {
            Some(k) if k == kind => return Ok(event),
            Some("error") => return Err(format!("server error: {}", event["error"])),
            _ => {}
        }
    }
    Err(format!("the socket closed before {kind}"))
}

/// How streaming ended.
enum Outcome {
    Finished,
    TimedOut,
    Broken(String),
}

impl Session {
    /// Streams the file then silence (with push-to-talk: commits at the end of speech and
    /// stops) until every response is done; when the end of speech was sent, and how it
    /// ended.
    async fn stream(
        &mut self,
        mut ws: Ws,
        opts: &ReplayOptions,
        pcm: &Interleaved,
        speech: Option<SpeechBounds>,
    ) -> (Option<Instant>, Outcome) {
        let mut pacer = Pacer::new(pcm, opts.chunk_ms, speech);
        let mut eos_sent = None;
        let mut committed_at: Option<Instant> = None;
        let outcome = loop {
            let send_at = committed_at
                .is_none()
                .then(|| pacer.send_at(opts.fast, true))
                .flatten();
            let give_up = committed_at.map_or_else(
                || pacer.give_up(opts.tail_timeout),
                |t| t + opts.tail_timeout,
            );
            tokio::select! {
                biased;
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(text))) => self.received(&text),
                    Some(Ok(Message::Close(frame))) => {
                        break Outcome::Broken(format!("the server closed the session: {frame:?}"));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break Outcome::Broken(format!("websocket: {e}")),
                    None => break Outcome::Broken("the socket closed".into()),
                },
                _ = tokio::time::sleep_until(send_at.unwrap_or(give_up)), if send_at.is_some() => {
                    let eos = pacer.phase == Phase::Streaming
                        && Some(pacer.next_chunk) == pacer.clip.eos_chunk;
                    if let Err(e) = send_chunk(&mut ws, &mut pacer).await {
                        break Outcome::Broken(e);
                    }
                    if eos {
                        eos_sent = Some(Instant::now());
                        if opts.push_to_talk {
                            if let Err(e) = push_to_talk_release(&mut ws).await {
                                break Outcome::Broken(e);
                            }
                            committed_at = Some(Instant::now());
                        }
                    }
                }
                _ = tokio::time::sleep_until(give_up) => break Outcome::TimedOut,
            }
            let streamed = pacer.phase == Phase::Tail || committed_at.is_some();
            if streamed && self.done() {
                break Outcome::Finished;
            }
        };
        if !matches!(outcome, Outcome::Broken(_)) {
            let _ = ws.close(None).await;
        }
        (eos_sent, outcome)
    }

    /// Some response is done, none is open, and the user is not mid-speech.
    fn done(&self) -> bool {
        !self.speaking
            && self.turns.values().any(|t| t.status.is_some())
            && self
                .turns
                .values()
                .all(|t| t.status.is_some() || t.created_at.is_none())
    }

    /// What one server event does to the session.
    fn received(&mut self, text: &str) {
        let Ok(event) = serde_json::from_str::<Value>(text) else {
            self.errors.push(format!("not JSON: {text:.80}"));
            return;
        };
        let kind = event["type"].as_str().unwrap_or("");
        let turn_of = |field: &str, prefix: &str| {
            event[field]
                .as_str()
                .and_then(|id| id.strip_prefix(prefix))
                .and_then(|n| n.parse::<u32>().ok())
        };
        match kind {
            "input_audio_buffer.speech_started" => self.speaking = true,
            "input_audio_buffer.speech_stopped" => {
                self.speaking = false;
                if let Some(id) = turn_of("item_id", "item_user_") {
                    self.turns.entry(id).or_default().speech_end_ms =
                        event["audio_end_ms"].as_u64();
                }
            }
            "conversation.item.input_audio_transcription.completed" => {
                if let Some(id) = turn_of("item_id", "item_user_") {
                    let said = event["transcript"].as_str().unwrap_or("").to_owned();
                    self.turns.entry(id).or_default().transcript = said;
                }
            }
            "response.created" => {
                let id = event["response"]["id"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("resp_"));
                if let Some(id) = id.and_then(|n| n.parse::<u32>().ok()) {
                    self.turns.entry(id).or_default().created_at = Some(Instant::now());
                }
            }
            "response.output_audio.delta" => {
                if let Some(id) = turn_of("response_id", "resp_") {
                    let t = self.turns.entry(id).or_default();
                    t.first_audio_at.get_or_insert_with(Instant::now);
                    let b64 = event["delta"].as_str().unwrap_or("");
                    t.audio_bytes += (b64.len() as u64 / 4) * 3;
                }
            }
            "response.output_audio_transcript.delta" | "response.output_text.delta" => {
                if let Some(id) = turn_of("response_id", "resp_") {
                    let delta = event["delta"].as_str().unwrap_or("");
                    self.turns.entry(id).or_default().ai_text.push_str(delta);
                }
            }
            "response.done" => self.response_done(&event["response"]),
            "error" => self.errors.push(format!("error event: {}", event["error"])),
            _ => {}
        }
    }

    fn response_done(&mut self, response: &Value) {
        let id = response["id"]
            .as_str()
            .and_then(|r| r.strip_prefix("resp_"));
        let Some(id) = id.and_then(|n| n.parse::<u32>().ok()) else {
            return;
        };
        let status = match response["status"].as_str() {
            Some("completed") => TurnStatus::Completed,
            Some("cancelled") => TurnStatus::Cancelled,
            _ => TurnStatus::Failed,
        };
        let t = self.turns.entry(id).or_default();
        t.created_at.get_or_insert_with(Instant::now);
        t.status = Some(status);
    }

    /// One report per response; the session's errors go to the last.
    fn reports(self, path: &Path, eos_sent: Option<Instant>, outcome: Outcome) -> Vec<TurnReport> {
        let ms_after =
            |t: Instant, from: Instant| t.saturating_duration_since(from).as_millis() as u64;
        let mut reports: Vec<TurnReport> = self
            .turns
            .into_iter()
            .filter(|(_, t)| t.created_at.is_some())
            .map(|(turn_id, t)| {
                let status = t.status.unwrap_or(match outcome {
                    Outcome::Broken(_) => TurnStatus::Error,
                    _ => TurnStatus::Timeout,
                });
                TurnReport {
                    final_transcript: t.transcript,
                    ai_text: t.ai_text,
                    voice_to_voice_ms: t.first_audio_at.zip(eos_sent).map(|(a, e)| ms_after(a, e)),
                    audio_ms_received: t.audio_bytes * 1000 / (2 * u64::from(PCM_RATE)),
                    speech_end_ms: t.speech_end_ms,
                    response_started_ms: t.created_at.zip(eos_sent).map(|(c, e)| {
                        let ms = |d: Duration| d.as_millis() as i64;
                        ms(c.saturating_duration_since(e)) - ms(e.saturating_duration_since(c))
                    }),
                    ..TurnReport::blank(path, &self.session_id, turn_id, status)
                }
            })
            .collect();
        if reports.is_empty() {
            let why = match &outcome {
                Outcome::Broken(why) => why.clone(),
                _ => "no response came".to_owned(),
            };
            let status = match outcome {
                Outcome::Broken(_) => TurnStatus::Error,
                _ => TurnStatus::Timeout,
            };
            reports.push(failed_report(path, &self.session_id, status, why));
        }
        if let Some(last) = reports.last_mut() {
            last.client_errors.extend(self.errors);
            if let Outcome::Broken(why) = outcome {
                last.client_errors.push(why);
            }
        }
        reports
    }
}

/// Sends the pacer's next chunk (of the file, or of the silence after it) as an append.
async fn send_chunk(ws: &mut Ws, pacer: &mut Pacer<'_>) -> Result<(), String> {
    let samples = if pacer.phase == Phase::Tail {
        pacer.silence_sent();
        pacer.silence.clone()
    } else {
        let chunk = pacer.clip.chunk(pacer.next_chunk).to_vec();
        pacer.chunk_sent();
        chunk
    };
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let audio = base64::engine::general_purpose::STANDARD.encode(bytes);
    let append = json!({"type": "input_audio_buffer.append", "audio": audio});
    ws.send(Message::text(append.to_string()))
        .await
        .map_err(|e| format!("websocket: {e}"))
}

/// A push-to-talk release: the buffer is committed and its answer asked for.
async fn push_to_talk_release(ws: &mut Ws) -> Result<(), String> {
    for kind in ["input_audio_buffer.commit", "response.create"] {
        ws.send(Message::text(json!({ "type": kind }).to_string()))
            .await
            .map_err(|e| format!("websocket: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_url_names_a_model_once() {
        assert_eq!(
            session_url("ws://h:1/v1/realtime"),
            "ws://h:1/v1/realtime?model=callgate"
        );
        assert_eq!(
            session_url("ws://h:1/v1/realtime?access_token=x"),
            "ws://h:1/v1/realtime?access_token=x&model=callgate"
        );
        assert_eq!(
            session_url("ws://h:1/v1/realtime?model=m"),
            "ws://h:1/v1/realtime?model=m"
        );
    }

    #[test]
    fn the_session_asks_for_the_turn_detection_given() {
        let mut opts = ReplayOptions::new("u", Vec::new());
        opts.silence_ms = Some(700);
        let td = |o: &ReplayOptions| {
            session_update(o)["session"]["audio"]["input"]["turn_detection"].clone()
        };
        assert_eq!(
            td(&opts),
            json!({"type": "server_vad", "silence_duration_ms": 700})
        );
        opts.push_to_talk = true;
        assert_eq!(td(&opts), Value::Null);
        opts.push_to_talk = false;
        opts.turn_taking.mode = Some(TurnModeName::Smart);
        assert_eq!(td(&opts), json!({"type": "semantic_vad"}));
    }

    #[test]
    fn a_session_is_done_when_its_responses_are_and_the_user_is_quiet() {
        let mut s = Session::default();
        assert!(!s.done());
        s.received(r#"{"type":"input_audio_buffer.speech_started","item_id":"item_user_1"}"#);
        s.received(r#"{"type":"response.created","response":{"id":"resp_1"}}"#);
        s.received(
            r#"{"type":"response.output_audio.delta","response_id":"resp_1","delta":"AAAA"}"#,
        );
        assert!(!s.done());
        s.received(r#"{"type":"response.done","response":{"id":"resp_1","status":"completed"}}"#);
        assert!(!s.done(), "the user is still speaking");
        s.received(r#"{"type":"input_audio_buffer.speech_stopped","item_id":"item_user_1","audio_end_ms":900}"#);
        assert!(s.done());
        let t = &s.turns[&1];
        assert_eq!((t.audio_bytes, t.speech_end_ms), (3, Some(900)));
        assert_eq!(t.status, Some(TurnStatus::Completed));
    }
}
