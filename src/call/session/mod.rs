//! The state of one call and its lifecycle: start, inputs dispatched to ingest and
//! turn-taking, resume, end, and the conversation history. It runs on the call's task and
//! owns its state outright; CPU-heavy work goes to the ASR pool and turn tasks. It speaks
//! only [`CallInput`] and [`CallEvent`]: no sockets, no wire format.

mod conversation;
mod end_of_turn;
mod idle;
mod ingest;
mod overlap;
mod partials;
mod pieces;
#[cfg(test)]
mod tests;
mod turn_taking;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::events::{CallConfig, CallEvent, CallInput, Fault, StartRequest};
use super::limits::{AudioRateGuard, TokenBucket};
use super::outbox::{ClientGone, Outbox};
use super::recorder::{Recorder, Streams};
use super::turn::{Commit, Floor, TurnFinished, UserInput};
use super::{CallSettings, Engines, random_id};
use crate::eot::{EndOfTurnDetector, TurnPolicy, Verdict};
use crate::llm::{ChatMessage, Persona};
use crate::protocol::{EndReason, TurnRecord};
pub use conversation::{MAX_SEED_CHARS, MAX_SEEDED_SYSTEM_CHARS, MAX_SEEDS, seed_fits};
pub use end_of_turn::{Clue, PauseClue};
use ingest::Ingest;
pub use overlap::OverlapHeard;
pub use partials::PartialResult;

/// How long ending a call waits for its cancelled turns to say response.done.
const TURN_GRACE: Duration = Duration::from_secs(2);
/// What the call's driver should do after an input.
#[derive(Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep reading.
    Continue,
    /// The call ended (`session.ended` went out): close the connection.
    Close,
}

/// A started call.
struct Started {
    session_id: String,
    /// Proves ownership of the call to a new socket (`session.resume`).
    resume_token: String,
    started_at: Instant,
    output_rate: u32,
    policy: TurnPolicy,
    /// Judges pauses under server-ended policies.
    detector: Option<Box<dyn EndOfTurnDetector>>,
    /// The persona the model is prompted with (its prompt replaced by `instructions`).
    persona: Arc<Persona>,
    /// The persona as configured, before `instructions` replaced its prompt.
    base_persona: Arc<Persona>,
    /// What the protocol may change while the call runs.
    config: CallConfig,
    /// Seeded system messages, added to the prompt in order.
    system_notes: Vec<String>,
    /// Messages seeded so far (see [`conversation::seed_fits`]).
    seeded: u32,
    context: BTreeMap<String, String>,
    ingest: Ingest,
}

/// A response the user may interrupt.
struct Active {
    turn_id: u32,
    cancel: CancellationToken,
    played: watch::Sender<Option<u64>>,
    floor: watch::Sender<Floor>,
    /// Its first audio went out.
    audible: Arc<AtomicBool>,
}

/// A turn started speculatively during the end-of-turn silence.
struct Speculation {
    turn_id: u32,
    cancel: CancellationToken,
    commit: oneshot::Sender<Commit>,
    played: watch::Sender<Option<u64>>,
    floor: watch::Sender<Floor>,
    audible: Arc<AtomicBool>,
}

/// The verdict on the current pause of a speculated turn: how much silence ends it.
#[derive(Debug, Clone, Copy)]
struct EndWait {
    turn_id: u32,
    verdict: Verdict,
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
    /// The user turn being spoken (id given at speech start).
    speaking_turn: Option<u32>,
    /// Speech began while the AI was talking and has not yet lasted long enough to count.
    pending_barge_in: bool,
    /// Where the VAD's current speech began (for the log's `vad.speech`).
    vad_onset_ms: Option<u64>,
    response: Option<Active>,
    /// Speech over the response that holds it until its words are known.
    overlap: Option<overlap::Overlap>,
    /// The words of speech over a response come back here.
    overlaps_tx: mpsc::Sender<OverlapHeard>,
    speculation: Option<Speculation>,
    /// The verdict on the speculated turn's pause, once its words are known.
    end_wait: Option<EndWait>,
    /// The spoken turn's audio cut so far.
    pieces: pieces::Pieces,
    /// What is known about the speculated turn's pause.
    clues: Option<end_of_turn::Clues>,
    /// Evidence about pauses comes back here to be judged.
    clues_tx: mpsc::Sender<PauseClue>,
    /// Tasks that gather a final transcript from its pieces.
    relays: tokio_util::task::TaskTracker,
    partials: partials::Partials,
    finished_tx: mpsc::Sender<TurnFinished>,
    turns_completed: u32,
    /// When the last input chunk arrived, until it has been acknowledged.
    last_chunk_at: Option<Instant>,
    /// Turns in a row that held no answer and got a silence prompt.
    unanswered: usize,
    last_activity: Instant,
    recorder: Option<Arc<Recorder>>,
    /// Every turn task of this call, so ending the call can wait for their response.done.
    turn_tasks: tokio::task::JoinSet<()>,
    /// The conversation so far, for a resume.
    turn_log: Vec<TurnRecord>,
    /// Text messages allowed per second.
    text_rate: TokenBucket,
    /// Input audio allowed ahead of real time.
    audio_rate: AudioRateGuard,
    /// When a rate-limit error was last sent: one a second is enough.
    last_rate_error: Option<Instant>,
    /// The authenticated user (`sub`), when the server checks tokens.
    user: Option<String>,
    /// A committed turn held until the client asks for its answer (or, with
    /// `answer_when_free`, until the response in flight is done).
    held_turn: Option<u32>,
    /// How the held turn was ended, for its answer's latency report.
    held_commit: Option<Commit>,
    /// The held turn is answered as soon as the response in flight is done.
    answer_when_free: bool,
    /// Replaces the prompt of the next turn spawned (one response's `instructions`).
    next_prompt: Option<String>,
    /// The candidate's silence since the interviewer finished (`idle_timeout_ms`).
    idle: idle::IdleWatch,
}

/// Where a session's background results come back: finished turns and partial transcripts,
/// handed back to [`Session::on_turn_finished`] and [`Session::on_partial`].
pub struct SessionFeedback {
    /// Turn tasks that ended.
    pub finished: mpsc::Receiver<TurnFinished>,
    /// Partial transcripts decoded.
    pub partials: mpsc::Receiver<PartialResult>,
    /// Evidence about pauses (words, sound), for the end-of-turn decision.
    pub clues: mpsc::Receiver<PauseClue>,
    /// The words of speech over a response, to resume or cancel it.
    pub overlaps: mpsc::Receiver<OverlapHeard>,
}

impl Session {
    /// A call that has not started yet, and the channels its background work reports on.
    pub fn new(
        engines: Arc<Engines>,
        settings: CallSettings,
        outbox: Outbox,
        call_cancel: CancellationToken,
    ) -> (Self, SessionFeedback) {
        let (finished_tx, finished) = mpsc::channel(16);
        let (clues_tx, clues) = mpsc::channel(16);
        let (overlaps_tx, overlaps) = mpsc::channel(4);
        let (partials, partial_rx) = partials::Partials::new();
        let pieces = pieces::Pieces::new(call_cancel.child_token());
        let text_rate = settings.limits.text_messages_per_s.max(1.0);
        let session = Self {
            engines,
            outbox,
            call_cancel,
            started: None,
            history: Vec::new(),
            next_turn_id: 1,
            speaking_turn: None,
            pending_barge_in: false,
            vad_onset_ms: None,
            response: None,
            overlap: None,
            overlaps_tx,
            speculation: None,
            end_wait: None,
            pieces,
            clues: None,
            clues_tx,
            relays: tokio_util::task::TaskTracker::new(),
            partials,
            finished_tx,
            turns_completed: 0,
            last_chunk_at: None,
            unanswered: 0,
            last_activity: Instant::now(),
            recorder: None,
            turn_tasks: tokio::task::JoinSet::new(),
            turn_log: Vec::new(),
            text_rate: TokenBucket::new(text_rate, 2.0 * text_rate),
            audio_rate: AudioRateGuard::new(settings.limits.max_audio_rate),
            last_rate_error: None,
            user: None,
            held_turn: None,
            held_commit: None,
            answer_when_free: false,
            next_prompt: None,
            idle: idle::IdleWatch::default(),
            settings,
        };
        let feedback = SessionFeedback {
            finished,
            partials: partial_rx,
            clues,
            overlaps,
        };
        (session, feedback)
    }

    /// The session id once started.
    pub fn session_id(&self) -> Option<&str> {
        self.started.as_ref().map(|s| s.session_id.as_str())
    }

    /// The resume token once started.
    pub fn resume_token(&self) -> Option<&str> {
        self.started.as_ref().map(|s| s.resume_token.as_str())
    }

    /// Records the authenticated user of this call (before it starts).
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

    /// True when the client has been silent (no message at all) past the idle timeout.
    pub fn is_idle(&self) -> bool {
        self.last_activity.elapsed() >= self.settings.idle_timeout
    }

    /// The socket dropped: the response in flight is cancelled (nobody is there to hear
    /// it; what was played stays in the history as heard) and the call waits for a resume.
    /// The input state (sequencer, VAD, the utterance so far) is kept, so resent audio
    /// continues the turn where it broke off.
    pub async fn on_detached(&mut self) {
        if self.overlap.is_some() {
            // The speech that held the response is the candidate's turn: nobody is there
            // to hear the response go on.
            let _ = self.take_floor().await;
        }
        self.cancel_response();
        self.drop_speculation();
        self.stop_partials();
        self.partials.detached();
    }

    /// A new socket took over: tells it where to resend from and what was said so far.
    pub async fn on_resumed(&mut self) -> Result<(), ClientGone> {
        self.last_activity = Instant::now();
        let Some(s) = self.started.as_ref() else {
            return Ok(());
        };
        let event = CallEvent::Resumed {
            session_id: s.session_id.clone(),
            next_seq: s.ingest.next_seq(),
            turns: self.turn_log.clone(),
        };
        tracing::info!(session_id = s.session_id, "call resumed");
        self.outbox.emit(event).await
    }

    /// Counts one text message against the text rate; `false` (after telling the client,
    /// at most once a second) when it is over and the message must be dropped.
    pub async fn admit_text(&mut self) -> Result<bool, ClientGone> {
        self.last_activity = Instant::now();
        if self.text_rate.take_at(Instant::now()) {
            return Ok(true);
        }
        let limit = self.settings.limits.text_messages_per_s;
        self.rate_limited(format!(
            "more than {limit} text messages a second; message dropped"
        ))
        .await?;
        Ok(false)
    }

    /// A rate-limit error, at most one a second.
    async fn rate_limited(&mut self, what: String) -> Result<(), ClientGone> {
        if self
            .last_rate_error
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return Ok(());
        }
        self.last_rate_error = Some(Instant::now());
        self.fault(Fault::RateLimited {
            what,
            retry_after_ms: 1000,
            user_message: None,
        })
        .await
    }

    /// Tells the client about `fault` (not tied to a turn).
    pub async fn fault(&mut self, fault: Fault) -> Result<(), ClientGone> {
        self.last_activity = Instant::now();
        self.outbox.emit(CallEvent::fault(fault)).await
    }

    fn bad_message(msg: &str) -> Fault {
        Fault::BadMessage(msg.to_owned())
    }

    /// Handles one input from the client.
    pub async fn on_input(&mut self, input: CallInput) -> Result<Control, ClientGone> {
        self.last_activity = Instant::now();
        if self.started.is_none() {
            return self.before_start(input).await;
        }
        match input {
            CallInput::Start(_) | CallInput::Resume { .. } => {
                self.fault(Self::bad_message(
                    "a session is already open on this connection",
                ))
                .await?;
            }
            CallInput::End => {
                self.end(EndReason::Client).await?;
                return Ok(Control::Close);
            }
            CallInput::Audio(chunk) => self.on_chunk(chunk).await?,
            CallInput::Commit => self.commit_manual().await?,
            CallInput::Clear => self.clear_input(),
            CallInput::Text(text) => self.typed_turn(text).await?,
            CallInput::Cancel { turn_id } => self.cancel_on_request(turn_id).await?,
            CallInput::PlaybackPosition { turn_id, played_ms } => {
                if let Some(r) = self.response.as_ref().filter(|r| r.turn_id == turn_id) {
                    r.played.send_replace(Some(played_ms));
                }
            }
            CallInput::Ping { t } => self.pong(t).await?,
            CallInput::Configure { turn, config } => self.configure(turn, config),
            CallInput::Respond { instructions } => self.respond(instructions).await?,
            CallInput::Seed { role, text } => self.seed(role, text),
        }
        Ok(Control::Continue)
    }

    async fn before_start(&mut self, input: CallInput) -> Result<Control, ClientGone> {
        match input {
            CallInput::Start(start) => self.start(start).await?,
            CallInput::Ping { t } => self.pong(t).await?,
            _ => {
                self.fault(Self::bad_message(
                    "session.start first: no session is open on this connection",
                ))
                .await?
            }
        }
        Ok(Control::Continue)
    }

    async fn pong(&self, t: serde_json::Value) -> Result<(), ClientGone> {
        let server_time = crate::call::recorder::unix_ms();
        self.outbox.emit(CallEvent::Pong { t, server_time }).await
    }

    async fn start(&mut self, start: StartRequest) -> Result<(), ClientGone> {
        let persona_id = start
            .persona
            .clone()
            .unwrap_or_else(|| self.settings.default_persona.clone());
        let Some(persona) = self.engines.personas.get(&persona_id) else {
            let known: Vec<_> = self.engines.personas.iter().map(|p| p.id.clone()).collect();
            let msg = format!(
                "persona: unknown persona {persona_id:?}; known: {}",
                known.join(", ")
            );
            return self.fault(Fault::BadMessage(msg)).await;
        };
        let ingest = match Ingest::new(
            start.input_rate,
            start.channels,
            start.turn,
            &self.engines.vad,
        ) {
            Ok(i) => i,
            Err(e) => {
                return self
                    .fault(Fault::BadMessage(format!("input.sampleRate: {e}")))
                    .await;
            }
        };
        let session_id = random_id();
        self.recorder = self.open_recorder(&session_id, &start).await;
        let resume_token = random_id();
        let prompted = conversation::prompted(&persona, &start.config, &[]);
        self.started = Some(Started {
            session_id: session_id.clone(),
            resume_token: resume_token.clone(),
            started_at: Instant::now(),
            output_rate: start.output_rate,
            policy: start.turn,
            detector: crate::eot::detector_for(start.turn),
            persona: prompted,
            base_persona: persona,
            config: start.config,
            system_notes: Vec::new(),
            seeded: 0,
            context: start.context,
            ingest,
        });
        self.engines.metrics.calls_total.inc();
        let user = self.user.as_deref().unwrap_or("-");
        tracing::info!(session_id, persona = persona_id, user, "call started");
        if let Some(r) = &self.recorder {
            // Who the call belongs to, first in its event log.
            r.event(
                &serde_json::json!({"type":"call.meta","sessionId":session_id,
                    "user":self.user,"persona":persona_id,
                    "feedback": if self.engines.llm.writes_feedback() { "model" } else { "rules" }})
                .to_string(),
            );
        }
        // The greeting and the audio rate are measured from here.
        self.audio_rate = AudioRateGuard::new(self.settings.limits.max_audio_rate);
        self.outbox
            .emit(CallEvent::Started {
                session_id,
                resume_token,
                voice: self.engines.voice_for(&persona_id).voice(),
            })
            .await?;
        if start.greet {
            // The interviewer speaks first.
            self.spawn_turn(0, UserInput::Greeting, false);
        }
        Ok(())
    }

    /// Writes `event` to the call's log only (what the report needs and the client does
    /// not: the VAD's segments and pauses).
    fn log_only(&self, event: serde_json::Value) {
        if let Some(r) = &self.recorder {
            r.event(&event.to_string());
        }
    }

    /// The call's folder (and recordings), when persistence is on. Creating it is file
    /// I/O, so it runs on a blocking thread.
    async fn open_recorder(
        &mut self,
        session_id: &str,
        start: &StartRequest,
    ) -> Option<Arc<Recorder>> {
        let dir = self.settings.calls_dir.as_ref()?.join(session_id);
        let streams = Streams {
            rates: (start.input_rate, start.output_rate),
            record_audio: self.settings.record_audio,
        };
        let dropped = self.engines.metrics.recording_writes_dropped.clone();
        let opened =
            tokio::task::spawn_blocking(move || Recorder::start(&dir, streams, dropped)).await;
        match opened {
            Ok(Ok(r)) => {
                let r = Arc::new(r);
                self.outbox.set_recorder(r.clone());
                Some(r)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot write the call's folder; not persisting");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "opening the call's folder failed; not persisting");
                None
            }
        }
    }

    /// Ends the call: cancels the turn in flight and says the call ended.
    pub async fn end(&mut self, reason: EndReason) -> Result<(), ClientGone> {
        self.cancel_response();
        self.drop_speculation();
        self.stop_partials();
        self.forget_input();
        self.stop_turn_tasks().await;
        let Some(s) = self.started.take() else {
            return Ok(());
        };
        let duration_ms = s.started_at.elapsed().as_millis() as u64;
        let turns = self.turns_completed;
        tracing::info!(
            session_id = s.session_id,
            ?reason,
            duration_ms,
            turns,
            "call ended"
        );
        let ended = self
            .outbox
            .emit(CallEvent::Ended {
                session_id: s.session_id.clone(),
                reason,
                turns,
                duration_ms,
            })
            .await;
        self.leave_feedback(&s);
        ended
    }

    /// After the call, the model's feedback on each answer, when a model interviewed and
    /// the call has a folder to write it to.
    fn leave_feedback(&self, s: &Started) {
        let (Some(recorder), true) = (&self.recorder, self.engines.llm.writes_feedback()) else {
            return;
        };
        let answers = crate::report::feedback::answers_of(&self.turn_log);
        tracing::info!(
            session_id = s.session_id,
            answers = answers.len(),
            "writing answer feedback"
        );
        self.engines.after_call.spawn(crate::report::feedback::run(
            self.engines.llm.clone(),
            s.base_persona.clone(),
            s.context.clone(),
            answers,
            recorder.dir().to_owned(),
        ));
    }

    /// Lets cancelled turns send their response.done before the call's end (a grace of
    /// [`TURN_GRACE`]), then aborts any still running: no turn outlives its call.
    async fn stop_turn_tasks(&mut self) {
        let tasks = &mut self.turn_tasks;
        let finished = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(TURN_GRACE, finished).await.is_err() {
            tracing::warn!(
                left = tasks.len(),
                "turn tasks outlived the grace; aborting them"
            );
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
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
        if f.status.is_none() {
            return;
        }
        if self.response.is_none()
            && self.speaking_turn.is_none()
            && let Some(s) = self.started.as_ref()
        {
            // The floor is free once the client has played what it was sent.
            self.idle
                .floor_free(s.ingest.vad.position_ms() + f.playout_ms);
        }
        self.turn_log.push(TurnRecord {
            turn_id: f.turn_id,
            user_text: f.user_text.clone(),
            ai_text: f.heard_text.clone(),
        });
        if f.prompted {
            // A prompt after a turn with no answer is not part of the interview: the
            // model's history and the question the next answer is heard against stay.
            self.unanswered += 1;
            return;
        }
        self.unanswered = 0;
        if !f.user_text.is_empty() {
            self.history.push(ChatMessage::user(f.user_text));
        }
        if !f.heard_text.is_empty() {
            self.history.push(ChatMessage::assistant(f.heard_text));
        }
        self.turns_completed += 1;
    }
}
