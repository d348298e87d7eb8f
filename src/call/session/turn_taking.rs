//! Turn-taking: who holds the floor. Server VAD or manual commits end the user's turn,
//! speculative finals start during the end-of-turn silence, speech over the AI becomes a
//! barge-in once it lasts, and typed turns interrupt like speech.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ingest::Heard;
use super::{Active, Session, Speculation};
use crate::asr::pool::Priority;
use crate::audio::vad::VadEvent;
use crate::call::events::{CallEvent, Fault};
use crate::call::outbox::ClientGone;
use crate::call::turn::{Commit, Floor, TurnTask, UserInput};
use crate::llm::ChatRequest;
use crate::protocol::{EndOfTurn, EndRule, FrameError, InputChunk};

/// No chunk for this long means the input paused: what arrived is acknowledged (with the
/// driver's 100 ms tick, within 100 ms of the pause).
const INPUT_PAUSE: std::time::Duration = std::time::Duration::from_millis(40);

/// Longest typed turn kept, in characters.
const MAX_TYPED_CHARS: usize = 4000;

impl Session {
    /// One chunk of input audio: rate and shape checks, then ingest and the VAD's verdicts.
    pub(super) async fn on_chunk(&mut self, chunk: InputChunk) -> Result<(), ClientGone> {
        let Some(s) = self.started.as_ref() else {
            return Ok(());
        };
        let channels = s.ingest.channels() as usize;
        if !chunk.samples.len().is_multiple_of(channels) {
            let e = FrameError::OddLength(chunk.samples.len() * 2);
            return self.fault(Fault::BadAudio(e.to_string())).await;
        }
        let chunk_ms = s.ingest.chunk_ms(chunk.samples.len());
        if !self.audio_rate.accept_at(chunk_ms, Instant::now()) {
            let rate = self.settings.limits.max_audio_rate;
            return self
                .rate_limited(format!(
                    "input audio is arriving faster than {rate}x real time; chunk dropped"
                ))
                .await;
        }
        let recorder = self.recorder.clone();
        let Some(s) = self.started.as_mut() else {
            return Ok(());
        };
        for heard in s.ingest.push(chunk.seq, chunk.samples, recorder.as_deref()) {
            match heard {
                Heard::Gap { from, to } => {
                    self.engines.metrics.audio_gaps.inc();
                    self.fault(Fault::AudioGap { from, to }).await?;
                }
                Heard::Vad(event) => self.on_vad(event).await?,
                Heard::Audio => self.after_audio().await?,
            }
        }
        self.log_pauses();
        if let Some(seq) = self.started.as_mut().and_then(|s| s.ingest.ack_due()) {
            self.outbox.emit(CallEvent::AudioAck { seq }).await?;
        }
        self.last_chunk_at = Some(Instant::now());
        Ok(())
    }

    /// Acknowledges everything that arrived, if anything is unacknowledged: a client that
    /// waits for its last chunk's ack (push-to-talk release, the end of a file) gets it.
    pub(super) async fn ack_all(&mut self) -> Result<(), ClientGone> {
        if let Some(seq) = self.started.as_mut().and_then(|s| s.ingest.ack_all()) {
            self.outbox.emit(CallEvent::AudioAck { seq }).await?;
        }
        Ok(())
    }

    /// On the driver's tick: input that paused is acknowledged in full.
    pub async fn ack_paused_input(&mut self) -> Result<(), ClientGone> {
        if self
            .last_chunk_at
            .is_some_and(|t| t.elapsed() >= INPUT_PAUSE)
        {
            self.last_chunk_at = None;
            self.ack_all().await?;
        }
        Ok(())
    }

    async fn on_vad(&mut self, event: VadEvent) -> Result<(), ClientGone> {
        match event {
            VadEvent::SpeechStarted { at_ms } => {
                self.vad_onset_ms = Some(at_ms);
                self.on_speech_started(at_ms).await
            }
            VadEvent::SpeechStopped {
                speech_end_ms,
                decided_at_ms,
            } => {
                if let Some(start_ms) = self.vad_onset_ms.take() {
                    self.log_only(serde_json::json!({"type": "vad.speech",
                        "startMs": start_ms, "endMs": speech_end_ms}));
                }
                self.on_speech_stopped(speech_end_ms, decided_at_ms).await
            }
        }
    }

    /// The VAD's pauses inside speech go to the call's log, for its report.
    fn log_pauses(&mut self) {
        let Some(s) = self.started.as_mut() else {
            return;
        };
        for p in s.ingest.vad.take_pauses() {
            self.log_only(serde_json::json!({"type": "vad.pause",
                "fromMs": p.from_ms, "toMs": p.to_ms}));
        }
    }

    async fn on_speech_started(&mut self, at_ms: u64) -> Result<(), ClientGone> {
        let Some(s) = self.started.as_mut() else {
            return Ok(());
        };
        s.ingest.speech_started(at_ms);
        self.idle.floor_taken();
        let interruptible = s.config.interruptible;
        if self.response.is_some() && !interruptible {
            // The response plays on; the speech is a turn of its own, answered after it.
            if s.policy.server_ends_turns() {
                self.begin_user_turn(at_ms).await?;
            }
        } else if self.response.is_some() {
            // Maybe a cough: only count it once it lasts (see after_audio), but send no
            // more of the response meanwhile.
            self.pending_barge_in = true;
            self.hush_response();
        } else if s.policy.server_ends_turns() {
            self.begin_user_turn(at_ms).await?;
        }
        Ok(())
    }

    async fn on_speech_stopped(
        &mut self,
        speech_end_ms: u64,
        decided_at_ms: u64,
    ) -> Result<(), ClientGone> {
        let Some(s) = self.started.as_mut() else {
            return Ok(());
        };
        if self.pending_barge_in {
            // Too short to be an interruption: ignore it, the AI goes on.
            self.pending_barge_in = false;
            s.ingest.utterance.clear();
            self.unhush_response();
            return Ok(());
        }
        if let Some(o) = self.overlap.as_mut() {
            // Speech over the response is judged by its words, not by the VAD.
            o.vad_stopped(speech_end_ms, decided_at_ms);
            return Ok(());
        }
        if !s.policy.server_ends_turns() {
            return Ok(());
        }
        self.on_vad_stop(speech_end_ms, decided_at_ms).await
    }

    /// Speech over the response takes the floor: the response stops, and under server
    /// turn detection the candidate's turn begins where the speech did.
    pub(super) async fn interrupt(&mut self, onset_ms: u64) -> Result<(), ClientGone> {
        tracing::debug!(onset_ms, "barge-in");
        self.cancel_response();
        let server_ends_turns = self
            .started
            .as_ref()
            .is_some_and(|s| s.policy.server_ends_turns());
        if server_ends_turns {
            self.begin_user_turn(onset_ms).await?;
        }
        Ok(())
    }

    async fn begin_user_turn(&mut self, at_ms: u64) -> Result<(), ClientGone> {
        self.file_held_turn();
        let turn_id = self.next_turn_id;
        self.speaking_turn = Some(turn_id);
        self.partials.turn_began();
        self.outbox
            .emit(CallEvent::SpeechStarted {
                turn_id,
                audio_ms: at_ms,
            })
            .await
    }

    /// Barge-in and end-of-turn checks after each run of audio.
    async fn after_audio(&mut self) -> Result<(), ClientGone> {
        let Some(now) = self.vad_now() else {
            return Ok(());
        };
        let Some(policy) = self.started.as_ref().map(|s| s.policy) else {
            return Ok(());
        };
        if self.pending_barge_in {
            self.follow_hush(now);
        }
        if self.pending_barge_in
            && now.speaking
            && now.voiced_ms() >= self.settings.barge_in_min.as_millis() as u64
        {
            self.pending_barge_in = false;
            let onset_ms = now.position_ms.saturating_sub(now.speech_ms);
            if !self.hold_response(onset_ms) {
                self.interrupt(onset_ms).await?;
            }
        }
        if self.overlap.is_some() {
            return self.follow_overlap(now).await;
        }
        self.check_idle(now.position_ms).await?;
        if policy.server_ends_turns() {
            self.follow_turn(now).await
        } else {
            self.cap_manual_turn().await
        }
    }

    /// The candidate stayed silent for the idle timeout once the interviewer finished: the
    /// silent span becomes an empty turn (the client is told) and the conversation as it
    /// stands is answered.
    async fn check_idle(&mut self, position_ms: u64) -> Result<(), ClientGone> {
        let floor_free = self.response.is_none()
            && self.speaking_turn.is_none()
            && self.speculation.is_none()
            && !self.pending_barge_in;
        let timeout_ms = self.started.as_ref().and_then(|s| s.config.idle_timeout_ms);
        if !floor_free {
            return Ok(());
        }
        let Some((start_ms, end_ms)) = self.idle.due(position_ms, timeout_ms) else {
            return Ok(());
        };
        tracing::debug!(start_ms, end_ms, "idle timeout");
        // The silence is the committed span: nothing of it is left for the next turn.
        self.forget_input();
        self.drop_speculation();
        let turn_id = self.next_turn_id;
        self.next_turn_id += 1;
        self.outbox
            .emit(CallEvent::IdleTimeout {
                turn_id,
                start_ms,
                end_ms,
            })
            .await?;
        self.spawn_turn(turn_id, UserInput::Nothing, false);
        Ok(())
    }

    pub(super) async fn typed_turn(&mut self, text: String) -> Result<(), ClientGone> {
        let text: String = text.chars().take(MAX_TYPED_CHARS).collect();
        if text.trim().is_empty() {
            return self
                .fault(Self::bad_message("input.text: text must not be empty"))
                .await;
        }
        // Typing over the AI interrupts it, as speaking would.
        self.cancel_response();
        self.file_held_turn();
        self.drop_speculation();
        let turn_id = self.speaking_turn.take().unwrap_or(self.next_turn_id);
        self.next_turn_id = turn_id + 1;
        self.forget_input();
        if let Some(s) = self.started.as_mut() {
            s.ingest.vad.reset_turn();
        }
        self.outbox
            .emit(CallEvent::Transcript {
                turn_id,
                text: text.clone(),
                is_final: true,
                span_ms: None,
            })
            .await?;
        self.spawn_turn(turn_id, UserInput::Text(text), false);
        Ok(())
    }

    pub(super) async fn commit_manual(&mut self) -> Result<(), ClientGone> {
        let Some(s) = self.started.as_ref() else {
            return Ok(());
        };
        if s.policy.server_ends_turns() {
            return self
                .fault(Self::bad_message(
                    "input.commit is for turnDetection mode \"manual\"; this call's server ends turns",
                ))
                .await;
        }
        if !self.commit_input().await? {
            return self
                .fault(Self::bad_message(
                    "input.commit: no audio since the last commit",
                ))
                .await;
        }
        Ok(())
    }

    /// Manual turns: everything since the last commit becomes a turn. `false` when
    /// nothing was sent since.
    async fn commit_input(&mut self) -> Result<bool, ClientGone> {
        let recorder = self.recorder.clone();
        let Some(s) = self.started.as_mut() else {
            return Ok(false);
        };
        let Some((audio, start_ms, end_ms)) = s.ingest.commit(recorder.as_deref()) else {
            return Ok(false);
        };
        // Everything committed is acknowledged before the turn's response starts.
        self.ack_all().await?;
        self.cancel_response();
        let turn_id = self.next_turn_id;
        self.next_turn_id += 1;
        self.speaking_turn = None;
        self.stop_partials();
        self.outbox
            .emit(CallEvent::Committed {
                turn_id,
                audio_ms: end_ms,
            })
            .await?;
        // A client that asks for answers itself gets this turn held, decoded and its
        // answer buffered, until it does.
        let hold = self.holds_commits();
        let mut parts = super::pieces::split_long(audio);
        let tail = parts.pop().unwrap_or_default();
        for part in parts {
            let options = self.decode_options();
            self.pieces.submit(&self.engines.asr, part, options);
        }
        self.submit_final(turn_id, tail, (start_ms, end_ms), hold)
            .await?;
        self.held_turn = hold.then_some(turn_id);
        let next = self.call_cancel.child_token();
        self.pieces.hand_over(next);
        Ok(true)
    }

    /// Manual turns reach the longest turn: the audio so far is committed as if the
    /// client had, and the client is told.
    async fn cap_manual_turn(&mut self) -> Result<(), ClientGone> {
        let longest_ms = self.settings.longest_turn.as_millis() as u64;
        let Some(s) = self
            .started
            .as_ref()
            .filter(|s| s.ingest.uncut_ms() >= longest_ms)
        else {
            return Ok(());
        };
        let audio_ms = s.ingest.vad.position_ms();
        let turn_id = self.next_turn_id;
        if self.commit_input().await? {
            let end_of_turn = EndOfTurn {
                rule: EndRule::LongestTurn,
                silence_ms: 0,
                score: None,
            };
            self.outbox
                .emit(CallEvent::SpeechStopped {
                    turn_id,
                    audio_ms,
                    end_of_turn,
                })
                .await?;
        }
        Ok(())
    }

    /// The speaking turn's final: the pieces cut so far and the audio after them up to
    /// `end_ms`.
    pub(super) async fn submit_tail(
        &mut self,
        turn_id: u32,
        end_ms: u64,
        speculative: bool,
    ) -> Result<(), ClientGone> {
        let Some(s) = self.started.as_ref() else {
            return Ok(());
        };
        let (audio, start_ms) = (s.ingest.cut(end_ms), s.ingest.turn_start_ms);
        self.submit_final(turn_id, audio, (start_ms, end_ms), speculative)
            .await
    }

    /// Queues the final decode of turn `turn_id` (after its pieces) and starts its turn
    /// task on it.
    async fn submit_final(
        &mut self,
        turn_id: u32,
        audio: Vec<f32>,
        (start_ms, end_ms): (u64, u64),
        speculative: bool,
    ) -> Result<(), ClientGone> {
        let cancel = self.call_cancel.child_token();
        let pieces = self.pieces.snapshot();
        let tail = if audio.is_empty() && !pieces.is_empty() {
            None
        } else {
            let options = self.decode_options();
            match self
                .engines
                .asr
                .submit(Priority::Final, audio, options, cancel.clone())
            {
                Ok(rx) => Some(rx),
                Err(e) => {
                    let fault = Fault::Overloaded {
                        what: e.to_string(),
                        retry_after_ms: 1000,
                    };
                    return self
                        .outbox
                        .emit(CallEvent::turn_fault(turn_id, fault))
                        .await;
                }
            }
        };
        let (reply, asr) = oneshot::channel();
        let heard = speculative.then(|| self.clues_tx.clone());
        self.relays.spawn(async move {
            let Some(outcome) = super::pieces::assemble(pieces, tail).await else {
                return;
            };
            if let (Some(tx), Ok(t)) = (heard, outcome.result.as_ref()) {
                let clue = super::Clue::Words(t.text.clone());
                let _ = tx.send(super::PauseClue { turn_id, clue }).await;
            }
            let _ = reply.send(outcome);
        });
        let input = UserInput::Audio {
            asr,
            start_ms,
            end_ms,
        };
        self.spawn_turn_with(turn_id, input, speculative, cancel);
        Ok(())
    }

    fn turn_request(&self) -> Option<ChatRequest> {
        let s = self.started.as_ref()?;
        Some(ChatRequest {
            persona: s.persona.clone(),
            context: s.context.clone(),
            history: self.history.clone(),
        })
    }

    /// Spawns a turn task with a fresh token under the call's.
    pub(super) fn spawn_turn(&mut self, turn_id: u32, input: UserInput, speculative: bool) {
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
        let Some(mut request) = self.turn_request() else {
            return;
        };
        if let Some(persona) = self.take_turn_persona() {
            request.persona = persona;
        }
        let Some((output_rate, speak)) = self
            .started
            .as_ref()
            .map(|s| (s.output_rate, s.config.speak))
        else {
            return;
        };
        let (commit_tx, commit_rx) = oneshot::channel();
        let (played_tx, played_rx) = watch::channel(None);
        let (floor_tx, floor_rx) = watch::channel(Floor::Open);
        let audible = Arc::new(AtomicBool::new(false));
        let task = TurnTask {
            turn_id,
            engines: self.engines.clone(),
            request,
            output_rate,
            outbox: self.outbox.clone(),
            cancel: cancel.clone(),
            commit: Some(commit_rx),
            played_ms: played_rx,
            unanswered_before: self.unanswered,
            floor: floor_rx,
            audible: audible.clone(),
            finished: self.finished_tx.clone(),
            speak,
            announced: false,
            prefetch: None,
        };
        // Reap finished turns so a long call's set holds only live ones.
        while self.turn_tasks.try_join_next().is_some() {}
        self.turn_tasks.spawn(task.run(input));
        self.idle.floor_taken();
        self.speculation = Some(Speculation {
            turn_id,
            cancel,
            commit: commit_tx,
            played: played_tx,
            floor: floor_tx,
            audible,
        });
        if !speculative {
            self.commit_speculation(Commit {
                decided_at: Instant::now(),
                endpoint_ms: None,
                end_of_turn: None,
                answer: true,
            });
        }
    }

    /// The held turn becomes the response in flight: it may now speak.
    pub(super) fn commit_speculation(&mut self, commit: Commit) {
        if let Some(spec) = self.speculation.take() {
            let _ = spec.commit.send(commit);
            self.response = Some(Active {
                turn_id: spec.turn_id,
                cancel: spec.cancel,
                played: spec.played,
                floor: spec.floor,
                audible: spec.audible,
            });
        }
    }

    /// `response.cancel`: stops the response in flight if it is `turn_id` (or any).
    pub(super) async fn cancel_on_request(
        &mut self,
        turn_id: Option<u32>,
    ) -> Result<(), ClientGone> {
        let matches = self
            .response
            .as_ref()
            .is_some_and(|r| turn_id.is_none_or(|t| t == r.turn_id));
        if !matches {
            return Ok(());
        }
        if self.overlap.is_some() {
            // The client gave up on the held response: the speech over it is a turn.
            return self.take_floor().await;
        }
        self.cancel_response();
        Ok(())
    }

    pub(super) fn cancel_response(&mut self) {
        self.overlap = None;
        if let Some(r) = self.response.take() {
            tracing::debug!(turn_id = r.turn_id, "cancelling response");
            r.cancel.cancel();
        }
    }

    /// The candidate speaks on while a turn the server ended waits for its answer: that
    /// turn joins the conversation unanswered (its transcript goes out), so the new speech
    /// cannot drop it, and the next answer answers both.
    fn file_held_turn(&mut self) {
        let Some(held) = self.held_turn.take() else {
            return;
        };
        self.held_commit = None;
        self.answer_when_free = false;
        if self.speculation.as_ref().is_some_and(|s| s.turn_id == held)
            && let Some(spec) = self.speculation.take()
        {
            tracing::debug!(turn_id = held, "held turn filed unanswered");
            let _ = spec.commit.send(Commit {
                decided_at: Instant::now(),
                endpoint_ms: None,
                end_of_turn: None,
                answer: false,
            });
        }
    }

    pub(super) fn drop_speculation(&mut self) {
        self.end_wait = None;
        self.clues = None;
        if let Some(s) = self.speculation.take() {
            s.cancel.cancel();
        }
    }

    /// `input.clear`: the audio of the turn so far is forgotten.
    pub(super) fn clear_input(&mut self) {
        self.forget_input();
    }

    /// Forgets the spoken turn's audio and stops its piece decodes.
    pub(super) fn forget_input(&mut self) {
        let next = self.call_cancel.child_token();
        self.pieces.abandon(next);
        if let Some(s) = self.started.as_mut() {
            s.ingest.utterance.clear();
        }
    }
}
