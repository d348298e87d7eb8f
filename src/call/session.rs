//! The state machine of one call: session lifecycle, input audio (sequencer -> resampler ->
//! VAD -> utterance), turn-taking (server VAD or manual commit, speculative finals,
//! partials, barge-in) and the conversation history. It runs on the connection's task and
//! owns its state outright; CPU-heavy work goes to the ASR pool and turn tasks.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::outbox::{ClientGone, Outbox};
use super::recorder::Recorder;
use super::turn::{Commit, TurnFinished, TurnTask, UserInput};
use super::{CallSettings, Engines, random_id};
use crate::asr::pool::Priority;
use crate::audio::resample::StreamResampler;
use crate::audio::sequencer::{Sequencer, SequencerEvent};
use crate::audio::vad::{Vad, VadConfig, VadEvent};
use crate::audio::{ASR_SAMPLE_RATE, i16_to_mono_f32};
use crate::call::limits::{AudioRateGuard, TokenBucket};
use crate::llm::{ChatMessage, ChatRequest, Persona};
use crate::protocol::{
    BadMessage, ClientMessage, EndReason, ErrorCode, ErrorEvent, FrameError, InputChunk, Limits,
    MAX_FRAME_BYTES, PROTOCOL_NAME, ServerMessage, SessionStart, TurnMode, TurnRecord,
    decode_input_frame, decode_json_input_audio, parse_client_message,
};

/// Input audio kept from before the detected onset, so the first syllable is not clipped.
const PREROLL_MS: u64 = 300;
/// Audio kept after the last active frame when cutting an utterance for decoding.
const TAIL_MS: u64 = 150;
/// Longest utterance kept: whisper's window is 30 s.
const MAX_UTTERANCE_MS: u64 = 30_000;
/// Acknowledge input at least this often (in ms of audio).
const ACK_EVERY_MS: u64 = 200;

/// What the connection loop should do after a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep reading.
    Continue,
    /// Close the socket with 1000 (the session has sent `session.ended`).
    Close,
    /// Close the socket with 1008, policy (e.g. a resume that cannot be honoured).
    ClosePolicy,
}

/// A partial transcript coming back from the pool.
#[derive(Debug)]
pub struct PartialResult {
    turn_id: u32,
    text: String,
}

struct Started {
    session_id: String,
    /// Proves ownership of the call to a new socket (`session.resume`).
    resume_token: String,
    started_at: Instant,
    input_rate: u32,
    channels: u16,
    output_rate: u32,
    mode: TurnMode,
    persona: Arc<Persona>,
    context: BTreeMap<String, String>,
    sequencer: Sequencer,
    resampler: StreamResampler,
    vad: Vad,
    /// The last couple of seconds of 16 kHz input, for the pre-roll.
    recent: VecDeque<f32>,
    /// Stream position (ms) of `recent[0]`.
    recent_start_ms: u64,
    /// The current user turn's audio (16 kHz), once speech started (or since the last
    /// commit in manual mode).
    utterance: Vec<f32>,
    utterance_start_ms: u64,
}

/// A response the user may interrupt.
struct Active {
    turn_id: u32,
    cancel: CancellationToken,
    played: watch::Sender<Option<u64>>,
}

/// A turn started speculatively during the end-of-turn silence.
struct Speculation {
    turn_id: u32,
    cancel: CancellationToken,
    commit: oneshot::Sender<Commit>,
    played: watch::Sender<Option<u64>>,
}

/// One call.
pub struct Session {
    engines: Arc<Engines>,
    settings: CallSettings,
    outbox: Outbox,
    call_cancel: CancellationToken,
    started: Option<Started>,
    history: Vec<ChatMessage>,
    next_turn_id: u32,
    /// The user turn being spoken (id given at `input.speech_started`).
    speaking_turn: Option<u32>,
    /// Speech began while the AI was talking and has not yet lasted long enough to count.
    pending_barge_in: bool,
    response: Option<Active>,
    speculation: Option<Speculation>,
    partial_cancel: CancellationToken,
    partial_in_flight: bool,
    last_partial_at: Instant,
    finished_tx: mpsc::Sender<TurnFinished>,
    partial_tx: mpsc::Sender<PartialResult>,
    last_ack: Option<u32>,
    audio_since_ack_ms: u64,
    turns_completed: u32,
    last_activity: Instant,
    recorder: Option<Arc<Recorder>>,
    /// Every turn task of this call, so ending the call can wait for their response.done.
    turn_tasks: tokio_util::task::TaskTracker,
    /// The conversation so far, for `session.resumed`.
    turn_log: Vec<TurnRecord>,
    /// Text messages allowed per second.
    text_rate: TokenBucket,
    /// Input audio allowed ahead of real time.
    audio_rate: AudioRateGuard,
    /// When a `RATE_LIMITED` error was last sent: one a second is enough.
    last_rate_error: Option<Instant>,
    /// The authenticated user (`sub`), when the server checks tokens.
    user: Option<String>,
}

impl Session {
    /// A call that has not started yet; the receivers deliver turn and partial results to
    /// the connection loop, which hands them back to [`Session::on_turn_finished`] and
    /// [`Session::on_partial`].
    pub fn new(
        engines: Arc<Engines>,
        settings: CallSettings,
        outbox: Outbox,
        call_cancel: CancellationToken,
    ) -> (
        Self,
        mpsc::Receiver<TurnFinished>,
        mpsc::Receiver<PartialResult>,
    ) {
        let (finished_tx, finished_rx) = mpsc::channel(16);
        let text_rate = settings.limits.text_messages_per_s.max(1.0);
        let (partial_tx, partial_rx) = mpsc::channel(16);
        let session = Self {
            engines,
            outbox,
            call_cancel,
            started: None,
            history: Vec::new(),
            next_turn_id: 1,
            speaking_turn: None,
            pending_barge_in: false,
            response: None,
            speculation: None,
            partial_cancel: CancellationToken::new(),
            partial_in_flight: false,
            last_partial_at: Instant::now(),
            finished_tx,
            partial_tx,
            last_ack: None,
            audio_since_ack_ms: 0,
            turns_completed: 0,
            last_activity: Instant::now(),
            recorder: None,
            turn_tasks: tokio_util::task::TaskTracker::new(),
            turn_log: Vec::new(),
            text_rate: TokenBucket::new(text_rate, 2.0 * text_rate),
            audio_rate: AudioRateGuard::new(settings.limits.max_audio_rate),
            last_rate_error: None,
            user: None,
            settings,
        };
        (session, finished_rx, partial_rx)
    }

    /// The session id once started.
    pub fn session_id(&self) -> Option<&str> {
        self.started.as_ref().map(|s| s.session_id.as_str())
    }

    /// The resume token once started.
    pub fn resume_token(&self) -> Option<&str> {
        self.started.as_ref().map(|s| s.resume_token.as_str())
    }

    /// Records the authenticated user of this call (before `session.start`).
    pub fn set_user(&mut self, user: Option<String>) {
        self.user = user;
    }

    /// The authenticated user, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// How long the call has been going, once started.
    pub fn elapsed(&self) -> Option<Duration> {
        self.started.as_ref().map(|s| s.started_at.elapsed())
    }

    /// Whether a response is being prepared or spoken.
    pub fn busy(&self) -> bool {
        self.response.is_some() || self.speculation.is_some()
    }

    /// The socket dropped: the response in flight is cancelled (nobody is there to hear
    /// it; what was played stays in the history as heard) and the call waits for a resume.
    /// The input state (sequencer, VAD, the utterance so far) is kept, so resent audio
    /// continues the turn where it broke off.
    pub fn on_detached(&mut self) {
        self.cancel_response();
        self.drop_speculation();
        self.stop_partials();
        self.partial_in_flight = false;
    }

    /// A new socket took over: tells it where to resend from and what was said so far.
    pub async fn on_resumed(&mut self) -> Result<(), ClientGone> {
        self.last_activity = Instant::now();
        let Some(s) = self.started.as_ref() else {
            return Ok(());
        };
        let msg = ServerMessage::SessionResumed {
            session_id: s.session_id.clone(),
            next_seq: s.sequencer.next_seq(),
            turns: self.turn_log.clone(),
        };
        tracing::info!(session_id = s.session_id, "call resumed");
        self.outbox.event(msg).await
    }

    /// A `RATE_LIMITED` error, at most one a second.
    async fn rate_limited(&mut self, what: &str, retry_after_ms: u64) -> Result<(), ClientGone> {
        if self
            .last_rate_error
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return Ok(());
        }
        self.last_rate_error = Some(Instant::now());
        self.error(
            ErrorEvent::new(ErrorCode::RateLimited, what.to_owned(), true)
                .retry_after(retry_after_ms),
        )
        .await
    }

    async fn error(&self, e: ErrorEvent) -> Result<(), ClientGone> {
        self.outbox.event(e.into()).await
    }

    /// Handles one text frame.
    pub async fn on_text(&mut self, text: &str) -> Result<Control, ClientGone> {
        self.last_activity = Instant::now();
        if !self.text_rate.take_at(Instant::now()) {
            let limit = self.settings.limits.text_messages_per_s;
            self.rate_limited(
                &format!("more than {limit} text messages a second; message dropped"),
                1000,
            )
            .await?;
            return Ok(Control::Continue);
        }
        let msg = match parse_client_message(text) {
            Ok(m) => m,
            Err(e) => {
                self.error(ErrorEvent::bad_message(&e)).await?;
                return Ok(Control::Continue);
            }
        };
        if self.started.is_none() {
            return match msg {
                ClientMessage::SessionStart(start) => self.start(start).await,
                ClientMessage::SessionResume { .. } => {
                    // Resume arrives with the connection-resilience work; until then no
                    // session can be found to resume.
                    self.error(ErrorEvent::new(
                        ErrorCode::SessionNotFound,
                        "session.resume is not supported by this server yet",
                        false,
                    ))
                    .await?;
                    Ok(Control::ClosePolicy)
                }
                ClientMessage::Ping { t } => {
                    self.pong(t).await?;
                    Ok(Control::Continue)
                }
                _ => {
                    self.error(ErrorEvent::bad_message(&BadMessage::new(
                        "session.start first: no session is open on this connection",
                    )))
                    .await?;
                    Ok(Control::Continue)
                }
            };
        }
        match msg {
            ClientMessage::SessionStart(_) | ClientMessage::SessionResume { .. } => {
                self.error(ErrorEvent::bad_message(&BadMessage::new(
                    "a session is already open on this connection",
                )))
                .await?;
            }
            ClientMessage::SessionEnd => {
                self.end(EndReason::Client).await?;
                return Ok(Control::Close);
            }
            ClientMessage::AudioChunk { seq, audio } => {
                match decode_json_input_audio(seq, &audio) {
                    Ok(chunk) => self.on_chunk(chunk).await?,
                    Err(e) => self.error(ErrorEvent::bad_audio(&e)).await?,
                }
            }
            ClientMessage::InputCommit => self.commit_manual().await?,
            ClientMessage::InputClear => {
                if let Some(s) = self.started.as_mut() {
                    s.utterance.clear();
                }
            }
            ClientMessage::InputText { text } => self.typed_turn(text).await?,
            ClientMessage::ResponseCancel { turn_id } => {
                let matches = self
                    .response
                    .as_ref()
                    .is_some_and(|r| turn_id.is_none_or(|t| t == r.turn_id));
                if matches {
                    self.cancel_response();
                }
            }
            ClientMessage::PlaybackPosition { turn_id, played_ms } => {
                if let Some(r) = self.response.as_ref().filter(|r| r.turn_id == turn_id) {
                    r.played.send_replace(Some(played_ms));
                }
            }
            ClientMessage::Ping { t } => self.pong(t).await?,
        }
        Ok(Control::Continue)
    }

    /// Handles one binary frame.
    pub async fn on_binary(&mut self, bytes: &[u8]) -> Result<Control, ClientGone> {
        self.last_activity = Instant::now();
        if self.started.is_none() {
            self.error(ErrorEvent::bad_message(&BadMessage::new(
                "session.start first: audio arrived before a session was open",
            )))
            .await?;
            return Ok(Control::Continue);
        }
        match decode_input_frame(bytes) {
            Ok(chunk) => self.on_chunk(chunk).await?,
            Err(e) => self.error(ErrorEvent::bad_audio(&e)).await?,
        }
        Ok(Control::Continue)
    }

    async fn pong(&self, t: serde_json::Value) -> Result<(), ClientGone> {
        let server_time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.outbox
            .event(ServerMessage::Pong { t, server_time })
            .await
    }

    async fn start(&mut self, start: SessionStart) -> Result<Control, ClientGone> {
        if let Err(e) = start.validate() {
            self.error(ErrorEvent::bad_message(&e)).await?;
            return Ok(Control::Continue);
        }
        let persona_id = start
            .persona
            .clone()
            .unwrap_or_else(|| self.settings.default_persona.clone());
        let Some(persona) = self.engines.personas.get(&persona_id) else {
            let known: Vec<_> = self.engines.personas.iter().map(|p| p.id.clone()).collect();
            self.error(ErrorEvent::bad_message(&BadMessage::new(format!(
                "persona: unknown persona {persona_id:?}; known: {}",
                known.join(", ")
            ))))
            .await?;
            return Ok(Control::Continue);
        };
        let resampler = match StreamResampler::new(start.input.sample_rate, ASR_SAMPLE_RATE) {
            Ok(r) => r,
            Err(e) => {
                self.error(ErrorEvent::bad_message(&BadMessage::new(format!(
                    "input.sampleRate: {e}"
                ))))
                .await?;
                return Ok(Control::Continue);
            }
        };
        // Context values end up in prompts and speech: keep them short strings.
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
        let session_id = random_id();
        let channels = start.input.channels.max(1);
        let mut vad = Vad::new(VadConfig::default());
        vad.set_silence_ms(start.turn_detection.silence_ms_or_default());
        self.outbox.set_transport(start.output.transport);
        if let Some(dir) = &self.settings.calls_dir {
            let rates = self
                .settings
                .record_audio
                .then_some((start.input.sample_rate, start.output.sample_rate));
            match Recorder::start(&dir.join(&session_id), rates) {
                Ok(r) => {
                    let r = Arc::new(r);
                    self.outbox.set_recorder(r.clone());
                    self.recorder = Some(r);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot write the call's folder; not persisting")
                }
            }
        }
        let resume_token = random_id();
        self.started = Some(Started {
            session_id: session_id.clone(),
            resume_token: resume_token.clone(),
            started_at: Instant::now(),
            input_rate: start.input.sample_rate,
            channels,
            output_rate: start.output.sample_rate,
            mode: start.turn_detection.mode,
            persona,
            context,
            sequencer: Sequencer::default()
                .with_max_gap_silence(start.input.sample_rate as usize * channels as usize),
            resampler,
            vad,
            recent: VecDeque::new(),
            recent_start_ms: 0,
            utterance: Vec::new(),
            utterance_start_ms: 0,
        });
        self.engines
            .metrics
            .calls_total
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            session_id,
            persona = persona_id,
            user = self.user.as_deref().unwrap_or("-"),
            "call started"
        );
        if let Some(r) = &self.recorder {
            // Who the call belongs to, first in its event log.
            r.event(
                &serde_json::json!({"type":"call.meta","sessionId":session_id,
                    "user":self.user,"persona":persona_id})
                .to_string(),
            );
        }
        // The greeting and the audio rate are measured from here.
        self.audio_rate = AudioRateGuard::new(self.settings.limits.max_audio_rate);
        self.outbox
            .event(ServerMessage::SessionStarted {
                session_id,
                resume_token,
                protocol: PROTOCOL_NAME.to_string(),
                input: start.input,
                output: start.output,
                limits: Limits {
                    max_frame_bytes: MAX_FRAME_BYTES,
                },
            })
            .await?;
        // The interviewer speaks first.
        self.spawn_turn(0, UserInput::Greeting, false);
        Ok(Control::Continue)
    }

    /// Ends the call: cancels the turn in flight and says `session.ended`.
    pub async fn end(&mut self, reason: EndReason) -> Result<(), ClientGone> {
        self.cancel_response();
        self.drop_speculation();
        self.partial_cancel.cancel();
        // Let cancelled turns send their response.done before the call's session.ended.
        self.turn_tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.turn_tasks.wait()).await;
        let Some(s) = self.started.as_ref() else {
            return Ok(());
        };
        let duration_ms = s.started_at.elapsed().as_millis() as u64;
        tracing::info!(
            session_id = s.session_id,
            ?reason,
            duration_ms,
            turns = self.turns_completed,
            "call ended"
        );
        let msg = ServerMessage::SessionEnded {
            session_id: s.session_id.clone(),
            reason,
            turns: self.turns_completed,
            duration_ms,
        };
        self.started = None;
        self.outbox.event(msg).await
    }

    /// True when the client has been silent (no message at all) past the idle timeout.
    pub fn is_idle(&self) -> bool {
        self.last_activity.elapsed() >= self.settings.idle_timeout
    }

    fn turn_request(&self) -> Option<ChatRequest> {
        let s = self.started.as_ref()?;
        Some(ChatRequest {
            persona: s.persona.clone(),
            context: s.context.clone(),
            history: self.history.clone(),
        })
    }

    /// Spawns a turn task; returns its cancel token, commit sender and playback channel.
    fn spawn_turn(&mut self, turn_id: u32, input: UserInput, speculative: bool) {
        let cancel = self.call_cancel.child_token();
        self.spawn_turn_with(turn_id, input, speculative, cancel);
    }

    /// As [`Self::spawn_turn`], with the turn's token made by the caller (so the turn's ASR
    /// job can share it: dropping a speculation then also aborts its whisper decode).
    fn spawn_turn_with(
        &mut self,
        turn_id: u32,
        input: UserInput,
        speculative: bool,
        cancel: CancellationToken,
    ) {
        let Some(request) = self.turn_request() else {
            return;
        };
        let Some(output_rate) = self.started.as_ref().map(|s| s.output_rate) else {
            return;
        };
        let (commit_tx, commit_rx) = oneshot::channel();
        let (played_tx, played_rx) = watch::channel(None);
        let task = TurnTask {
            turn_id,
            engines: self.engines.clone(),
            request,
            output_rate,
            outbox: self.outbox.clone(),
            cancel: cancel.clone(),
            commit: commit_rx,
            played_ms: played_rx,
            finished: self.finished_tx.clone(),
        };
        self.turn_tasks.spawn(task.run(input));
        self.speculation = Some(Speculation {
            turn_id,
            cancel,
            commit: commit_tx,
            played: played_tx,
        });
        if !speculative {
            self.commit_speculation(Commit {
                decided_at: Instant::now(),
                endpoint_ms: None,
            });
        }
    }

    /// The held turn becomes the response in flight: it may now speak.
    fn commit_speculation(&mut self, commit: Commit) {
        if let Some(spec) = self.speculation.take() {
            let _ = spec.commit.send(commit);
            self.response = Some(Active {
                turn_id: spec.turn_id,
                cancel: spec.cancel,
                played: spec.played,
            });
        }
    }

    fn cancel_response(&mut self) {
        if let Some(r) = self.response.take() {
            tracing::debug!(turn_id = r.turn_id, "cancelling response");
            r.cancel.cancel();
        }
    }

    /// Aborts the partial decode in flight (if any); later partials get a fresh token.
    fn stop_partials(&mut self) {
        self.partial_cancel.cancel();
        self.partial_cancel = CancellationToken::new();
    }

    fn drop_speculation(&mut self) {
        if let Some(s) = self.speculation.take() {
            s.cancel.cancel();
        }
    }

    /// A turn task finished: record what was said and heard.
    pub fn on_turn_finished(&mut self, f: TurnFinished) {
        if self
            .response
            .as_ref()
            .is_some_and(|r| r.turn_id == f.turn_id)
        {
            self.response = None;
        }
        let Some(_status) = f.status else { return };
        self.turn_log.push(TurnRecord {
            turn_id: f.turn_id,
            user_text: f.user_text.clone(),
            ai_text: f.heard_text.clone(),
        });
        if !f.user_text.is_empty() {
            self.history.push(ChatMessage::user(f.user_text));
        }
        if !f.heard_text.is_empty() {
            self.history.push(ChatMessage::assistant(f.heard_text));
        }
        self.turns_completed += 1;
    }

    /// A partial transcript came back.
    pub async fn on_partial(&mut self, p: PartialResult) -> Result<(), ClientGone> {
        self.partial_in_flight = false;
        // Finals before partials: a partial for a turn that has ended is stale.
        if self.speaking_turn != Some(p.turn_id) || self.speculation.is_some() || p.text.is_empty()
        {
            return Ok(());
        }
        self.outbox
            .event(ServerMessage::Transcript {
                turn_id: p.turn_id,
                text: p.text,
                is_final: false,
                start_ms: None,
                end_ms: None,
            })
            .await
    }

    /// Periodic work (every ~100 ms): partial transcripts.
    pub fn on_tick(&mut self) {
        let Some(turn_id) = self.speaking_turn else {
            return;
        };
        if self.partial_in_flight
            || self.speculation.is_some()
            || self.last_partial_at.elapsed() < self.settings.partial_interval
        {
            return;
        }
        let Some(s) = self.started.as_ref() else {
            return;
        };
        if s.utterance.len() < ASR_SAMPLE_RATE as usize / 2 {
            return;
        }
        let audio = s.utterance.clone();
        let cancel = self.partial_cancel.clone();
        let Ok(rx) = self.engines.asr.submit(
            Priority::Partial,
            audio,
            self.engines.decode.clone(),
            cancel,
        ) else {
            return;
        };
        self.partial_in_flight = true;
        self.last_partial_at = Instant::now();
        let tx = self.partial_tx.clone();
        tokio::spawn(async move {
            let text = match rx.await {
                Ok(o) => o.result.map(|t| t.text).unwrap_or_default(),
                Err(_) => String::new(),
            };
            let _ = tx.send(PartialResult { turn_id, text }).await;
        });
    }

    async fn typed_turn(&mut self, text: String) -> Result<(), ClientGone> {
        let text: String = text.chars().take(4000).collect();
        if text.trim().is_empty() {
            return self
                .error(ErrorEvent::bad_message(&BadMessage::new(
                    "input.text: text must not be empty",
                )))
                .await;
        }
        // Typing over the AI interrupts it, as speaking would.
        self.cancel_response();
        self.drop_speculation();
        let turn_id = self.speaking_turn.take().unwrap_or(self.next_turn_id);
        self.next_turn_id = turn_id + 1;
        if let Some(s) = self.started.as_mut() {
            s.utterance.clear();
            s.vad.reset_turn();
        }
        self.outbox
            .event(ServerMessage::Transcript {
                turn_id,
                text: text.clone(),
                is_final: true,
                start_ms: None,
                end_ms: None,
            })
            .await?;
        self.spawn_turn(turn_id, UserInput::Text(text), false);
        Ok(())
    }

    async fn commit_manual(&mut self) -> Result<(), ClientGone> {
        let Some(s) = self.started.as_mut() else {
            return Ok(());
        };
        if s.mode != TurnMode::Manual {
            return self
                .error(ErrorEvent::bad_message(&BadMessage::new(
                    "input.commit is for turnDetection mode \"manual\"; this call uses server_vad",
                )))
                .await;
        }
        // Release anything the sequencer holds back.
        let events = s.sequencer.flush();
        for e in events {
            if let SequencerEvent::Audio { samples, .. } = e {
                Self::ingest(s, &samples, self.recorder.as_deref());
            }
        }
        let mut tail = Vec::new();
        let _ = s.resampler.flush(&mut tail);
        s.utterance.extend_from_slice(&tail);
        if s.utterance.is_empty() {
            return self
                .error(ErrorEvent::bad_message(&BadMessage::new(
                    "input.commit: no audio since the last commit",
                )))
                .await;
        }
        let audio = std::mem::take(&mut s.utterance);
        let start_ms = s.utterance_start_ms;
        let end_ms = s.vad.position_ms();
        s.utterance_start_ms = end_ms;
        self.cancel_response();
        let turn_id = self.next_turn_id;
        self.next_turn_id += 1;
        self.speaking_turn = None;
        self.stop_partials();
        self.submit_final(turn_id, audio, start_ms, end_ms, false)
            .await
    }

    async fn submit_final(
        &mut self,
        turn_id: u32,
        audio: Vec<f32>,
        start_ms: u64,
        end_ms: u64,
        speculative: bool,
    ) -> Result<(), ClientGone> {
        let cancel = self.call_cancel.child_token();
        match self.engines.asr.submit(
            Priority::Final,
            audio,
            self.engines.decode.clone(),
            cancel.clone(),
        ) {
            Ok(rx) => {
                self.spawn_turn_with(
                    turn_id,
                    UserInput::Audio {
                        asr: rx,
                        start_ms,
                        end_ms,
                    },
                    speculative,
                    cancel,
                );
                Ok(())
            }
            Err(e) => {
                self.error(
                    ErrorEvent::new(ErrorCode::Overloaded, e.to_string(), true)
                        .turn(turn_id)
                        .retry_after(1000),
                )
                .await
            }
        }
    }

    /// Appends sequenced input to the 16 kHz stream, the pre-roll and the utterance.
    fn ingest(s: &mut Started, samples: &[i16], recorder: Option<&Recorder>) -> Vec<f32> {
        let mono = i16_to_mono_f32(samples, s.channels as usize);
        if let Some(r) = recorder {
            r.input(&crate::audio::downmix_i16(samples, s.channels as usize));
        }
        let mut out = Vec::with_capacity(mono.len() * 16_000 / s.input_rate as usize + 16);
        if let Err(e) = s.resampler.push(&mono, &mut out) {
            tracing::warn!(error = %e, "input resampling failed; chunk dropped");
            return Vec::new();
        }
        s.recent.extend(out.iter().copied());
        let keep = (ASR_SAMPLE_RATE as u64 * 2) as usize;
        if s.recent.len() > keep {
            let drop = s.recent.len() - keep;
            s.recent.drain(..drop);
            s.recent_start_ms += drop as u64 * 1000 / ASR_SAMPLE_RATE as u64;
        }
        let max = (MAX_UTTERANCE_MS * ASR_SAMPLE_RATE as u64 / 1000) as usize;
        if s.mode == TurnMode::Manual || !s.utterance.is_empty() {
            let room = max.saturating_sub(s.utterance.len());
            s.utterance.extend_from_slice(&out[..out.len().min(room)]);
        }
        out
    }

    async fn on_chunk(&mut self, chunk: InputChunk) -> Result<(), ClientGone> {
        let Some(s) = self.started.as_mut() else {
            return Ok(());
        };
        if !chunk.samples.len().is_multiple_of(s.channels as usize) {
            return self
                .error(ErrorEvent::bad_audio(&FrameError::OddLength(
                    chunk.samples.len() * 2,
                )))
                .await;
        }
        let chunk_ms =
            chunk.samples.len() as f64 * 1000.0 / (s.input_rate as f64 * s.channels as f64);
        if !self.audio_rate.accept_at(chunk_ms, Instant::now()) {
            let rate = self.settings.limits.max_audio_rate;
            return self
                .rate_limited(
                    &format!(
                        "input audio is arriving faster than {rate}x real time; chunk dropped"
                    ),
                    1000,
                )
                .await;
        }
        let events = s.sequencer.push(chunk.seq, chunk.samples);
        for event in events {
            match event {
                SequencerEvent::Gap { from, to, .. } => {
                    self.engines
                        .metrics
                        .audio_gaps
                        .fetch_add(1, Ordering::Relaxed);
                    self.error(ErrorEvent::audio_gap(from, to)).await?;
                }
                SequencerEvent::Audio { samples, .. } => {
                    let Some(s) = self.started.as_mut() else {
                        return Ok(());
                    };
                    let frames = samples.len() / s.channels as usize;
                    self.audio_since_ack_ms += frames as u64 * 1000 / s.input_rate as u64;
                    let audio16 = Self::ingest(s, &samples, self.recorder.as_deref());
                    let vad_events = s.vad.process(&audio16);
                    for e in vad_events {
                        self.on_vad(e).await?;
                    }
                    self.after_audio().await?;
                }
            }
        }
        let ack = self.started.as_ref().and_then(|s| s.sequencer.ack());
        if ack != self.last_ack
            && (self.audio_since_ack_ms >= ACK_EVERY_MS || self.last_ack.is_none())
        {
            if let Some(seq) = ack {
                self.outbox.event(ServerMessage::AudioAck { seq }).await?;
            }
            self.last_ack = ack;
            self.audio_since_ack_ms = 0;
        }
        Ok(())
    }

    async fn on_vad(&mut self, event: VadEvent) -> Result<(), ClientGone> {
        let Some(s) = self.started.as_mut() else {
            return Ok(());
        };
        match event {
            VadEvent::SpeechStarted { at_ms } => {
                let from_ms = at_ms.saturating_sub(PREROLL_MS).max(s.recent_start_ms);
                let skip = ((from_ms - s.recent_start_ms) * ASR_SAMPLE_RATE as u64 / 1000) as usize;
                if s.mode == TurnMode::ServerVad {
                    s.utterance = s.recent.iter().skip(skip).copied().collect();
                    s.utterance_start_ms = from_ms;
                }
                if self.response.is_some() {
                    // Maybe a cough: only count it once it lasts (see after_audio).
                    self.pending_barge_in = true;
                } else if s.mode == TurnMode::ServerVad {
                    self.begin_user_turn(at_ms).await?;
                }
            }
            VadEvent::SpeechStopped {
                speech_end_ms,
                decided_at_ms,
            } => {
                if self.pending_barge_in {
                    // Too short to be an interruption: ignore it, the AI goes on.
                    self.pending_barge_in = false;
                    s.utterance.clear();
                    return Ok(());
                }
                if s.mode != TurnMode::ServerVad {
                    return Ok(());
                }
                let Some(turn_id) = self.speaking_turn.take() else {
                    return Ok(());
                };
                self.outbox
                    .event(ServerMessage::InputSpeechStopped {
                        turn_id,
                        audio_ms: speech_end_ms,
                    })
                    .await?;
                self.next_turn_id = turn_id + 1;
                self.stop_partials();
                let commit = Commit {
                    decided_at: Instant::now(),
                    endpoint_ms: Some(decided_at_ms.saturating_sub(speech_end_ms)),
                };
                let Some(s) = self.started.as_mut() else {
                    return Ok(());
                };
                let start_ms = s.utterance_start_ms;
                // Keep the speculative turn if it is this one; otherwise decode now.
                if self
                    .speculation
                    .as_ref()
                    .is_none_or(|spec| spec.turn_id != turn_id)
                {
                    let audio = cut_utterance(s, speech_end_ms);
                    s.utterance.clear();
                    self.drop_speculation();
                    self.submit_final(turn_id, audio, start_ms, speech_end_ms, true)
                        .await?;
                } else {
                    s.utterance.clear();
                }
                self.commit_speculation(commit);
            }
        }
        Ok(())
    }

    async fn begin_user_turn(&mut self, at_ms: u64) -> Result<(), ClientGone> {
        let turn_id = self.next_turn_id;
        self.speaking_turn = Some(turn_id);
        self.last_partial_at = Instant::now();
        self.outbox
            .event(ServerMessage::InputSpeechStarted {
                turn_id,
                audio_ms: at_ms,
            })
            .await
    }

    /// Barge-in and speculation checks after each chunk of audio.
    async fn after_audio(&mut self) -> Result<(), ClientGone> {
        let Some(s) = self.started.as_ref() else {
            return Ok(());
        };
        let speaking = s.vad.is_speaking();
        let speech_ms = s.vad.speech_ms();
        let silence_ms = s.vad.trailing_silence_ms();
        let mode = s.mode;
        let position_ms = s.vad.position_ms();
        if self.pending_barge_in
            && speaking
            && speech_ms >= self.settings.barge_in_min.as_millis() as u64
        {
            self.pending_barge_in = false;
            tracing::debug!(speech_ms, "barge-in");
            self.cancel_response();
            if mode == TurnMode::ServerVad {
                let at_ms = position_ms.saturating_sub(speech_ms);
                self.begin_user_turn(at_ms).await?;
            }
        }
        if mode != TurnMode::ServerVad {
            return Ok(());
        }
        let Some(turn_id) = self.speaking_turn else {
            return Ok(());
        };
        let spec_ms = self.settings.speculative_silence.as_millis() as u64;
        if speaking && silence_ms >= spec_ms && self.speculation.is_none() {
            // A pause long enough to maybe be the end: decode now, keep it if the pause
            // reaches silenceMs, drop it if speech resumes.
            self.stop_partials();
            let Some(s) = self.started.as_ref() else {
                return Ok(());
            };
            let end_ms = s.vad.position_ms().saturating_sub(silence_ms);
            let audio = cut_utterance(s, end_ms);
            let start_ms = s.utterance_start_ms;
            self.submit_final(turn_id, audio, start_ms, end_ms, true)
                .await?;
        } else if silence_ms < spec_ms && self.speculation.is_some() {
            self.drop_speculation();
        }
        Ok(())
    }
}

/// The utterance up to `end_ms` (+ a short tail), as whisper should hear it.
fn cut_utterance(s: &Started, end_ms: u64) -> Vec<f32> {
    let keep_ms = (end_ms + TAIL_MS).saturating_sub(s.utterance_start_ms);
    let keep = (keep_ms * ASR_SAMPLE_RATE as u64 / 1000) as usize;
    s.utterance[..keep.min(s.utterance.len())].to_vec()
}

/// How long the writer waits between partial checks.
pub const TICK: Duration = Duration::from_millis(100);
