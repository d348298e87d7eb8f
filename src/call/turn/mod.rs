//! One AI response: (speculative) final transcript -> LLM tokens -> sentences -> synthesis ->
//! output frames, owned by one task with one cancellation token. The task is the only
//! sender of its turn's frames and of its `response.done`, so no frame of a turn can follow
//! that turn's `response.done`.

mod attempt;
mod speaker;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::Engines;
use super::events::{CallEvent, Fault};
use super::outbox::Outbox;
use crate::asr::pool::AsrOutcome;
use crate::eot::backchannel::is_backchannel;
use crate::llm::persona::QUESTION;
use crate::llm::{ChatMessage, ChatRequest, SentenceSplitter};
use crate::protocol::{DoneStatus, Latency, ResponseStatus};
use attempt::{LlmAttempt, Next};
pub(in crate::call) use speaker::Prefetch;
use speaker::{SpeakerReport, Voice, heard_ms, heard_prefix, locate, speak};

/// A committed turn whose transcript is further off than this is told it is queued.
const QUEUED_NOTICE: std::time::Duration = std::time::Duration::from_millis(500);

/// Where the user's words come from.
pub enum UserInput {
    /// No user words: the greeting.
    Greeting,
    /// No new user words: an answer to the conversation as it stands (asked for by the
    /// client).
    Nothing,
    /// Typed (`input.text`).
    Text(String),
    /// A decode queued on the ASR pool; `start_ms`/`end_ms` locate the speech in the input.
    Audio {
        /// The pool's reply.
        asr: oneshot::Receiver<AsrOutcome>,
        /// Speech start in the input stream.
        start_ms: u64,
        /// Speech end in the input stream.
        end_ms: u64,
    },
}

/// The end-of-turn decision, sent when the turn is committed.
#[derive(Debug, Clone, Copy)]
pub struct Commit {
    /// When the server decided the turn had ended.
    pub decided_at: Instant,
    /// End of speech to that decision, on the audio clock.
    pub endpoint_ms: Option<u64>,
    /// The rule that ended the user's turn.
    pub end_of_turn: Option<crate::protocol::EndOfTurn>,
    /// `false`: the turn only joins the conversation (its transcript is sent and kept),
    /// with no response: a held turn the candidate spoke on from.
    pub answer: bool,
}

/// Whether a response may speak. The session holds the floor while the candidate talks
/// over the interviewer, and gives it back after a backchannel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Floor {
    /// The response speaks.
    #[default]
    Open,
    /// Hushed: the VAD heard the candidate start; no frame goes out until the sound is
    /// either short (a click: open again, the client's buffered lead covered the gap) or
    /// lasts as long as a barge-in (held). The client is told nothing.
    Hushed,
    /// Held: the candidate began speaking at `audio_ms` of the input.
    Held {
        /// Where the candidate's speech began in the input, ms.
        audio_ms: u64,
    },
    /// Given back after a backchannel.
    Reopened {
        /// How long it was held, ms.
        paused_ms: u64,
        /// What the candidate said.
        text: String,
        /// Where the candidate's speech ended in the input, ms.
        speech_end_ms: u64,
    },
}

impl Floor {
    /// Whether the response must stay silent.
    pub fn is_held(&self) -> bool {
        matches!(self, Floor::Hushed | Floor::Held { .. })
    }

    /// Whether the client was told to pause its player (`response.paused`).
    pub fn is_paused(&self) -> bool {
        matches!(self, Floor::Held { .. })
    }
}

/// What a finished turn tells the session (to update history and counters).
#[derive(Debug)]
pub struct TurnFinished {
    /// The turn.
    pub turn_id: u32,
    /// The user's final transcript ("" for the greeting or an empty decode).
    pub user_text: String,
    /// The AI's full text.
    pub text: String,
    /// What the user heard of it (the history keeps this).
    pub heard_text: String,
    /// How it ended; `None` when no response was started (speculation dropped, empty input).
    pub status: Option<DoneStatus>,
    /// The user's turn held no answer and the response was a silence prompt ("Take your
    /// time."): not part of the interview's history.
    pub prompted: bool,
    /// Audio of a completed response the client still had to play when it ended, ms.
    pub playout_ms: u64,
    /// The `response.done` to send once the session has this: a client that ends the call
    /// at `response.done` then finds the turn counted in `session.ended`.
    done: Option<CallEvent>,
    /// Resolves once that `response.done` went out: what the session does next for the
    /// client (the next response) must not overtake it.
    pub done_sent: Option<oneshot::Receiver<()>>,
}

/// Everything a turn task needs.
pub struct TurnTask {
    /// Turn id (0 = greeting).
    pub turn_id: u32,
    /// Engines.
    pub engines: Arc<Engines>,
    /// The request minus the user's words (added once transcribed).
    pub request: ChatRequest,
    /// Output audio rate.
    pub output_rate: u32,
    /// Where events and audio go.
    pub outbox: Outbox,
    /// Fires on barge-in, response.cancel, hang-up, or a dropped speculation.
    pub cancel: CancellationToken,
    /// Resolves when the turn is committed (immediately unless speculative).
    pub commit: Option<oneshot::Receiver<Commit>>,
    /// Latest `playback.position` for this turn, in ms.
    pub played_ms: watch::Receiver<Option<u64>>,
    /// Turns in a row before this one that held no answer (which silence prompt is next).
    pub unanswered_before: usize,
    /// Whether the response may speak now.
    pub floor: watch::Receiver<Floor>,
    /// Set once the response's first audio went out: from then the candidate hears it.
    pub audible: Arc<AtomicBool>,
    /// Report back to the session.
    pub finished: mpsc::Sender<TurnFinished>,
    /// The answer is spoken; `false`: text only, nothing synthesised.
    pub speak: bool,
    /// A `response.started` went out (set by the task; start with `false`): the turn then
    /// ends with a `response.done` whatever stops it.
    pub(in crate::call) announced: bool,
    /// The answer's first piece, synthesized while the turn waits for its commit (set by
    /// the task; start with `None`).
    pub(in crate::call) prefetch: Option<Prefetch>,
}

/// How a committed response ended.
enum Outcome {
    Completed,
    Cancelled,
    Failed(Fault),
}

/// The user's words, once known.
struct Heard {
    text: String,
    /// Where the speech lies in the input (spoken turns).
    span_ms: Option<(u64, u64)>,
    /// The final decode's own time.
    decode_ms: Option<u64>,
}

impl TurnTask {
    /// Runs the turn to its end. Never panics on engine output.
    pub async fn run(mut self, input: UserInput) {
        let mut finished = match self.hear(input).await {
            Ok(heard) => self.respond(heard).await,
            Err(finished) => finished,
        };
        if self.announced && finished.status.is_none() {
            // Told it was queued, then stopped before it could answer.
            finished.done = Some(CallEvent::ResponseDone {
                turn_id: self.turn_id,
                status: DoneStatus::Cancelled,
                text: String::new(),
                heard_text: String::new(),
                latency: Latency::default(),
                usage: None,
            });
            finished.status = Some(DoneStatus::Cancelled);
        }
        let done = finished.done.take();
        let (sent, done_sent) = oneshot::channel();
        finished.done_sent = Some(done_sent);
        // The session reads its feedback before the client's next message, so sending this
        // first orders the turn's record before anything the client does at its end.
        let _ = self.finished.send(finished).await;
        if let Some(done) = done {
            self.emit(done).await;
        }
        let _ = sent.send(());
    }

    /// Phase 1: the user's words. `Err` ends the turn early (dropped, or ASR failed).
    async fn hear(&mut self, input: UserInput) -> Result<Heard, TurnFinished> {
        let (asr, span) = match input {
            UserInput::Greeting | UserInput::Nothing => return Ok(Heard::typed(String::new())),
            UserInput::Text(t) => return Ok(Heard::typed(t)),
            UserInput::Audio {
                asr,
                start_ms,
                end_ms,
            } => (asr, (start_ms, end_ms)),
        };
        let outcome = self.await_transcript(asr).await;
        let outcome = outcome.ok_or_else(|| TurnFinished::dropped(self.turn_id))?;
        match outcome.result {
            Ok(t) => Ok(Heard {
                text: t.text,
                span_ms: Some(span),
                decode_ms: Some(outcome.decode.as_millis() as u64),
            }),
            Err(crate::asr::AsrError::Cancelled) => Err(TurnFinished::dropped(self.turn_id)),
            Err(e) => Err(self.asr_failed(span, e.to_string()).await),
        }
    }

    /// Waits for the final transcript. A turn committed while its decode still waits for
    /// the whisper pool tells the client so (`response.started` `queued` with `etaMs`) when
    /// the wait will be noticeable.
    async fn await_transcript(
        &mut self,
        mut asr: oneshot::Receiver<AsrOutcome>,
    ) -> Option<AsrOutcome> {
        let Some(mut commit) = self.commit.take() else {
            return tokio::select! {
                _ = self.cancel.cancelled() => None,
                o = asr => o.ok(),
            };
        };
        let first = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => return None,
            o = &mut asr => Ok(o.ok()),
            c = &mut commit => Err(c),
        };
        let committed = match first {
            Ok(outcome) => {
                self.commit = Some(commit);
                return outcome;
            }
            // The speculation was dropped.
            Err(Err(_)) => return None,
            Err(Ok(c)) => c,
        };
        // Handed on to the later phases, which wait for the commit as usual.
        let answer = committed.answer;
        let (tx, again) = oneshot::channel();
        let _ = tx.send(committed);
        self.commit = Some(again);
        if answer {
            // A turn filed unanswered has no response to queue.
            self.announce_queue().await;
        }
        tokio::select! {
            _ = self.cancel.cancelled() => None,
            o = asr => o.ok(),
        }
    }

    /// The turn is committed and its transcript is not in: says how long it will be if
    /// that is worth saying.
    async fn announce_queue(&mut self) {
        let eta = self.engines.asr.final_wait();
        if eta < QUEUED_NOTICE || self.cancel.is_cancelled() {
            return;
        }
        self.announced = true;
        self.emit(CallEvent::ResponseStarted {
            turn_id: self.turn_id,
            status: ResponseStatus::Queued,
            eta_ms: Some(eta.as_millis() as u64),
        })
        .await;
    }

    /// The final decode failed: once committed, the turn fails with `ASR_ERROR`.
    async fn asr_failed(&mut self, span: (u64, u64), message: String) -> TurnFinished {
        // Wait for the commit so the failure belongs to a real turn.
        let Some(c) = self.wait_commit().await else {
            return TurnFinished::dropped(self.turn_id);
        };
        self.transcript("", Some(span)).await;
        let latency = Latency {
            endpoint_ms: c.endpoint_ms,
            end_of_turn: c.end_of_turn,
            ..Latency::default()
        };
        self.emit(CallEvent::ResponseStarted {
            turn_id: self.turn_id,
            status: ResponseStatus::Thinking,
            eta_ms: None,
        })
        .await;
        let failed = Outcome::Failed(Fault::Asr(message));
        self.settle(&c, latency, (String::new(), failed), None, None)
            .await
    }

    /// Phases 2-4 for words that are known.
    async fn respond(&mut self, heard: Heard) -> TurnFinished {
        let is_greeting = self.turn_id == 0;
        // Typed words are meant, however short; spoken ones may be a cough or a nod.
        let spoken = heard.span_ms.is_some();
        if !is_greeting && spoken && is_backchannel(&heard.text) {
            // Nothing that answers (silence, a cough, only "okay"): close the user turn
            // and give the candidate time before a prompt.
            let Some(c) = self.wait_commit().await else {
                return TurnFinished::dropped(self.turn_id);
            };
            self.transcript(heard.text.trim(), heard.span_ms).await;
            if !c.answer {
                return TurnFinished::filed(self.turn_id, heard.text);
            }
            return self.prompt_after_silence(c, heard.text).await;
        }
        let mut request = self.request.clone();
        if !heard.text.is_empty() {
            request.history.push(ChatMessage::user(heard.text.clone()));
        }
        let engines = self.engines.clone();
        let mut llm = LlmAttempt::start(engines.llm.as_ref(), request, engines.llm_timeouts);
        let Some(c) = self.hold(&mut llm).await else {
            return TurnFinished::dropped(self.turn_id);
        };
        if !c.answer {
            self.transcript(&heard.text, heard.span_ms).await;
            return TurnFinished::filed(self.turn_id, heard.text);
        }
        self.speak_response(c, heard, &mut llm).await
    }

    /// A turn with no answer in it: after the persona's quiet time, the next of its silence
    /// prompts. Speech meanwhile cancels the turn before anything is said.
    async fn prompt_after_silence(&mut self, committed: Commit, user_text: String) -> TurnFinished {
        let persona = self.request.persona.clone();
        let template = persona
            .silence_prompts
            .get(self.unanswered_before)
            .or(persona.silence_prompts.last());
        let Some(template) = template else {
            return TurnFinished::dropped(self.turn_id);
        };
        let quiet = std::time::Duration::from_secs(u64::from(persona.silence_prompt_after_s));
        tokio::select! {
            _ = self.cancel.cancelled() => return TurnFinished::dropped(self.turn_id),
            _ = tokio::time::sleep(quiet) => {}
        }
        let mut context = self.request.context.clone();
        let question = crate::llm::last_question(&self.request.history).unwrap_or_default();
        context.insert(QUESTION.to_owned(), question);
        let prompt = persona.fill(template, &context);
        let engines = self.engines.clone();
        let request = self.request.clone();
        let mut llm =
            LlmAttempt::saying(engines.llm.as_ref(), request, prompt, engines.llm_timeouts);
        let c = Commit {
            decided_at: Instant::now(),
            ..committed
        };
        let heard = Heard {
            text: String::new(),
            span_ms: None,
            decode_ms: None,
        };
        let mut finished = self.speak_response(c, heard, &mut llm).await;
        finished.user_text = user_text.trim().to_owned();
        finished.prompted = true;
        finished
    }

    /// Phases 3-4 once the turn is committed: the response, start to done.
    async fn speak_response(
        &mut self,
        c: Commit,
        heard: Heard,
        llm: &mut LlmAttempt<'_>,
    ) -> TurnFinished {
        let mut latency = Latency {
            endpoint_ms: c.endpoint_ms,
            end_of_turn: c.end_of_turn,
            // When the final ran inside the end-of-turn silence, firstAudioMs shows how
            // much of it the user never waited for.
            asr_ms: heard.decode_ms,
            ..Latency::default()
        };
        if heard.span_ms.is_some() {
            self.transcript(&heard.text, heard.span_ms).await;
        }
        let started = CallEvent::ResponseStarted {
            turn_id: self.turn_id,
            status: ResponseStatus::Thinking,
            eta_ms: None,
        };
        if self.outbox.emit(started).await.is_err() {
            return TurnFinished::dropped(self.turn_id);
        }
        let (streamed, report) = self.stream(llm).await;
        latency.llm_first_token_ms = llm.first_token_ms(c.decided_at);
        let mut finished = self
            .settle(&c, latency, streamed, Some(report), llm.usage.take())
            .await;
        finished.user_text = heard.text;
        finished
    }

    /// Phase 2: hold the model's tokens until the turn is committed. A committed turn
    /// always gets a response.started and a response.done, even when cancelled at once, so
    /// the commit is looked at before the cancellation.
    ///
    /// Meanwhile the first words of the answer are synthesized, so a slow voice's first
    /// audio is ready when the turn is committed.
    async fn hold(&mut self, llm: &mut LlmAttempt<'_>) -> Option<Commit> {
        let mut commit = self.commit.take()?;
        loop {
            tokio::select! {
                biased;
                c = &mut commit => return c.ok(),
                _ = self.cancel.cancelled() => return None,
                _ = llm.buffer_next() => self.prefetch_first_piece(llm),
            }
        }
    }

    /// Starts synthesizing the answer's first piece once the buffered text holds it.
    fn prefetch_first_piece(&mut self, llm: &LlmAttempt<'_>) {
        if self.prefetch.is_some() || !self.speak {
            return;
        }
        let (text, done) = llm.buffered_text();
        let mut splitter = SentenceSplitter::new();
        let first = splitter.push(&text).into_iter().next();
        let Some(sentence) = first.or_else(|| done.then(|| splitter.finish()).flatten()) else {
            return;
        };
        let tts = self.engines.voice_for(&self.request.persona.id);
        tracing::debug!(
            turn_id = self.turn_id,
            sentence,
            "synthesizing the first piece before the commit"
        );
        self.prefetch = Some(Prefetch::start(tts, &sentence, &self.cancel));
    }

    /// Phase 3: stream the answer into sentences for the speaker, with the attempt's
    /// retries and stall limits. Returns the text and how it ended, and the speaker's
    /// report once it has stopped (so nothing of this turn follows its response.done).
    async fn stream(&mut self, llm: &mut LlmAttempt<'_>) -> ((String, Outcome), SpeakerReport) {
        let (sentence_tx, sentence_rx) = mpsc::channel::<(String, usize)>(32);
        let voice = Voice {
            turn_id: self.turn_id,
            output_rate: self.output_rate,
            outbox: self.outbox.clone(),
            cancel: self.cancel.clone(),
            floor: self.floor.clone(),
            audible: self.audible.clone(),
            tts: self.engines.voice_for(&self.request.persona.id),
            prefetch: self.prefetch.take(),
        };
        // Aborted with the turn: an aborted turn leaves no speaker or announcer behind.
        let speaker = AbortOnDropHandle::new(tokio::spawn(speak(voice, sentence_rx)));
        let announcing = self.cancel.child_token();
        let announcer = AbortOnDropHandle::new(tokio::spawn(announce_floor(
            self.turn_id,
            self.outbox.clone(),
            self.floor.clone(),
            announcing.clone(),
        )));
        let mut text = String::new();
        let mut splitter = SentenceSplitter::new();
        let mut sent_up_to = 0usize;
        let mut index = 0u32;
        let mut sentences_left = self.max_sentences();
        let outcome = 'stream: loop {
            let mut delta = match llm.next(self.turn_id, &self.outbox, &self.cancel).await {
                Next::Text(d) => d,
                Next::Done => break Outcome::Completed,
                Next::Cancelled => break Outcome::Cancelled,
                Next::Failed(f) => break Outcome::Failed(f),
            };
            let delta_start = text.len();
            text.push_str(&delta);
            let mut sentences = splitter.push(&delta);
            if sentences.len() >= sentences_left {
                // The longest answer is reached: it ends with this sentence, and nothing
                // after it is shown, said or kept.
                sentences.truncate(sentences_left);
                let mut from = sent_up_to;
                let end = sentences
                    .iter()
                    .fold(from, |_, s| locate(&text, s, &mut from));
                text.truncate(end);
                delta = text.get(delta_start..).unwrap_or_default().to_owned();
            }
            sentences_left -= sentences.len();
            if !delta.is_empty() {
                let piece = CallEvent::ResponseText {
                    turn_id: self.turn_id,
                    index,
                    delta,
                };
                self.emit(piece).await;
                index += 1;
            }
            for sentence in sentences.into_iter().filter(|_| self.speak) {
                let end = locate(&text, &sentence, &mut sent_up_to);
                if sentence_tx.send((sentence, end)).await.is_err() {
                    // The speaker stopped (cancelled, client gone, audio broken): stop the
                    // model too rather than stream into nothing.
                    break 'stream Outcome::Cancelled;
                }
            }
            if sentences_left == 0 {
                break Outcome::Completed;
            }
        };
        let outcome = match outcome {
            Outcome::Completed if text.trim().is_empty() => Outcome::Failed(Fault::Llm(
                "the language model returned an empty answer".into(),
            )),
            // Stopped at the sentence limit: the text after its last sentence was dropped.
            Outcome::Completed if sentences_left == 0 => Outcome::Completed,
            Outcome::Completed => {
                if let Some(rest) = splitter.finish().filter(|_| self.speak) {
                    let end = locate(&text, &rest, &mut sent_up_to);
                    let _ = sentence_tx.send((rest, end)).await;
                }
                Outcome::Completed
            }
            other => other,
        };
        drop(sentence_tx);
        let report = speaker.await.unwrap_or_else(|_| SpeakerReport {
            error: Some("speaker task ended abnormally".into()),
            ..SpeakerReport::default()
        });
        // No pause or resume of this turn may follow its response.done.
        announcing.cancel();
        let _ = announcer.await;
        ((text, outcome), report)
    }

    /// Phase 4: settle the turn: what was heard, its error (once), metrics, response.done.
    async fn settle(
        &mut self,
        c: &Commit,
        mut latency: Latency,
        (text, outcome): (String, Outcome),
        report: Option<SpeakerReport>,
        usage: Option<crate::llm::TokenUsage>,
    ) -> TurnFinished {
        let report = report.unwrap_or_default();
        // A speaker that broke turns an answer that was (or stopped for it) into a TTS failure.
        let outcome = match (outcome, &report.error) {
            _ if self.cancel.is_cancelled() => Outcome::Cancelled,
            (Outcome::Cancelled | Outcome::Completed, Some(message)) => {
                Outcome::Failed(Fault::Tts {
                    message: message.clone(),
                    partial: false,
                })
            }
            (other, _) => other,
        };
        latency.tts_first_audio_ms = report.tts_first_ms;
        latency.first_audio_ms = report
            .first_audio_at
            .map(|t| t.saturating_duration_since(c.decided_at).as_millis() as u64);
        latency.total_ms = Some(c.decided_at.elapsed().as_millis() as u64);
        let heard_text = match &outcome {
            // Text-only answers are read as they arrive.
            Outcome::Completed => text.clone(),
            _ if !self.speak => text.clone(),
            _ => heard_prefix(
                &text,
                &report.spoken,
                heard_ms(*self.played_ms.borrow(), report.sent_ms),
            ),
        };
        let status = match &outcome {
            Outcome::Completed => DoneStatus::Completed,
            Outcome::Cancelled => DoneStatus::Cancelled,
            Outcome::Failed(fault) => {
                self.report_failure(fault, report.error_reported).await;
                DoneStatus::Failed
            }
        };
        self.count(status, &latency);
        // Audio is sent ahead of playback: a completed answer is still being heard.
        let playout_ms = match (status, report.first_audio_at) {
            (DoneStatus::Completed, Some(first)) => report
                .sent_ms
                .saturating_sub(first.elapsed().as_millis() as u64),
            _ => 0,
        };
        let done = CallEvent::ResponseDone {
            turn_id: self.turn_id,
            status,
            text: text.clone(),
            heard_text: heard_text.clone(),
            latency,
            usage,
        };
        TurnFinished {
            turn_id: self.turn_id,
            user_text: String::new(),
            text,
            heard_text,
            status: Some(status),
            prompted: false,
            playout_ms,
            done: Some(done),
            done_sent: None,
        }
    }

    /// The failure's error event, unless the speaker already told the client.
    async fn report_failure(&self, fault: &Fault, speaker_reported: bool) {
        tracing::warn!(turn_id = self.turn_id, %fault, "turn failed");
        if matches!(fault, Fault::Tts { .. }) && speaker_reported {
            return;
        }
        self.emit(CallEvent::turn_fault(self.turn_id, fault.clone()))
            .await;
    }

    fn count(&self, status: DoneStatus, latency: &Latency) {
        let metrics = &self.engines.metrics;
        let counter = match status {
            DoneStatus::Completed => &metrics.turns_completed,
            DoneStatus::Cancelled => &metrics.turns_cancelled,
            DoneStatus::Failed => &metrics.turns_failed,
        };
        counter.inc();
        if status == DoneStatus::Completed {
            metrics.observe_latency(latency);
        }
    }

    /// The longest answer of this turn, in sentences: the greeting may take twice the
    /// persona's limit (it introduces the call, then asks the first question).
    fn max_sentences(&self) -> usize {
        let limit = self.request.persona.max_sentences.max(1);
        if self.turn_id == 0 { 2 * limit } else { limit }
    }

    async fn wait_commit(&mut self) -> Option<Commit> {
        let rx = self.commit.take()?;
        tokio::select! {
            _ = self.cancel.cancelled() => None,
            c = rx => c.ok(),
        }
    }

    async fn transcript(&self, text: &str, span_ms: Option<(u64, u64)>) {
        self.emit(CallEvent::Transcript {
            turn_id: self.turn_id,
            text: text.to_owned(),
            is_final: true,
            span_ms,
        })
        .await;
    }

    /// Sends `event`; a client that is gone is noticed by the call, not the turn.
    async fn emit(&self, event: CallEvent) {
        let _ = self.outbox.emit(event).await;
    }
}

/// Tells the client when the floor is held and given back, until `stop` fires.
async fn announce_floor(
    turn_id: u32,
    outbox: Outbox,
    mut floor: watch::Receiver<Floor>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            changed = floor.changed() => if changed.is_err() { return },
        }
        let event = match floor.borrow_and_update().clone() {
            Floor::Open | Floor::Hushed => continue,
            Floor::Held { audio_ms } => CallEvent::ResponsePaused { turn_id, audio_ms },
            Floor::Reopened {
                paused_ms,
                text,
                speech_end_ms,
            } => CallEvent::ResponseResumed {
                turn_id,
                paused_ms,
                text,
                speech_end_ms,
            },
        };
        let _ = outbox.emit(event).await;
    }
}

impl Heard {
    fn typed(text: String) -> Self {
        Self {
            text,
            span_ms: None,
            decode_ms: None,
        }
    }
}

impl TurnFinished {
    /// A turn kept in the conversation without a response (see [`Commit::answer`]).
    fn filed(turn_id: u32, user_text: String) -> Self {
        Self {
            user_text: user_text.trim().to_owned(),
            status: Some(DoneStatus::Completed),
            ..Self::dropped(turn_id)
        }
    }

    fn dropped(turn_id: u32) -> Self {
        Self {
            turn_id,
            user_text: String::new(),
            text: String::new(),
            heard_text: String::new(),
            status: None,
            prompted: false,
            playout_ms: 0,
            done: None,
            done_sent: None,
        }
    }
}
