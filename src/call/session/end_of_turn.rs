//! When the candidate's turn ends: the pause judged from the speculative transcript, the
//! VAD's hard stop, the longest turn, and long answers cut into pieces while they go on.
//! Also the prompt each decode gets (the question asked, the persona's vocabulary).

use tokio::time::Instant;

use super::pieces::{PIECE_MAX_MS, PIECE_MIN_MS};
use super::{EndWait, Session};
use crate::asr::DecodeOptions;
use crate::asr::prompt::InterviewPrompt;
use crate::call::events::CallEvent;
use crate::call::outbox::ClientGone;
use crate::call::turn::Commit;
use crate::eot::acoustic::WINDOW_SAMPLES;
use crate::eot::{Evidence, SmartEnd, TurnPolicy};
use crate::protocol::{EndOfTurn, EndRule};

/// Evidence about a pause, back from the ASR pool or the acoustic model.
#[derive(Debug)]
pub struct PauseClue {
    /// The turn paused.
    pub turn_id: u32,
    /// What was learnt.
    pub clue: Clue,
}

/// One kind of evidence about a pause.
#[derive(Debug)]
pub enum Clue {
    /// The speculative final's words: the whole answer so far.
    Words(String),
    /// The acoustic model's probability that the turn is complete.
    Sound(f32),
}

/// What is known so far about the speculated turn's pause.
#[derive(Debug, Default)]
pub(super) struct Clues {
    turn_id: u32,
    words: Option<String>,
    sound: Option<f32>,
    /// The acoustic model is scoring this pause.
    sound_pending: bool,
}

/// Where the VAD stands, read once per run of audio.
#[derive(Debug, Clone, Copy)]
pub(super) struct VadNow {
    pub speaking: bool,
    pub speech_ms: u64,
    pub silence_ms: u64,
    pub position_ms: u64,
}

impl VadNow {
    /// How long the speech has gone on, the silence after it left out: the VAD counts that
    /// silence as speech until it ends the speech, so a 120 ms cough followed by silence
    /// would otherwise reach a barge-in, and a backchannel whose words take a while to
    /// decode would turn into 1.5 s of "speech".
    pub fn voiced_ms(&self) -> u64 {
        self.speech_ms.saturating_sub(self.silence_ms)
    }
}

impl Session {
    /// Evidence about the speculated turn's pause came back: judge the pause once the
    /// words are known and the sound is in (or not worth waiting for).
    pub async fn on_clue(&mut self, clue: PauseClue) -> Result<(), ClientGone> {
        let live = self
            .speculation
            .as_ref()
            .is_some_and(|s| s.turn_id == clue.turn_id)
            && self.speaking_turn == Some(clue.turn_id)
            && self.end_wait.is_none();
        let Some(c) = self
            .clues
            .as_mut()
            .filter(|c| live && c.turn_id == clue.turn_id)
        else {
            return Ok(());
        };
        match clue.clue {
            Clue::Words(w) => c.words = Some(w),
            Clue::Sound(p) => c.sound = Some(p),
        }
        let question = self.last_question();
        let Some(c) = self.clues.as_ref() else {
            return Ok(());
        };
        let Some(words) = c.words.as_deref() else {
            return Ok(());
        };
        let wait_for_sound = c.sound_pending
            && c.sound.is_none()
            && SmartEnd::words_leave_it_open(words, question.as_deref());
        if wait_for_sound {
            return Ok(());
        }
        let evidence = Evidence {
            transcript: words,
            question: question.as_deref(),
            acoustic: c.sound,
        };
        let Some(verdict) = self
            .started
            .as_ref()
            .and_then(|s| s.detector.as_ref())
            .map(|d| d.judge(&evidence))
        else {
            return Ok(());
        };
        tracing::debug!(turn_id = clue.turn_id, ?verdict, words, sound = ?c.sound, "pause judged");
        self.end_wait = Some(EndWait {
            turn_id: clue.turn_id,
            verdict,
        });
        match self.vad_now() {
            Some(now) if now.speaking => self.end_if_waited(now).await,
            _ => Ok(()),
        }
    }

    /// A pause may be the end: under `smart`, gather its evidence (the words come with the
    /// speculative final; the sound from the acoustic model, when there is one).
    fn gather_clues(&mut self, turn_id: u32) {
        let smart = self
            .started
            .as_ref()
            .is_some_and(|s| matches!(s.policy, TurnPolicy::Smart { .. }));
        if !smart {
            self.clues = None;
            return;
        }
        let scored = self.engines.turn_model.as_ref().and_then(|m| {
            let audio = self.started.as_ref()?.ingest.recent_audio(WINDOW_SAMPLES);
            m.score(audio, self.call_cancel.child_token())
        });
        let sound_pending = scored.is_some();
        if let Some(rx) = scored {
            let tx = self.clues_tx.clone();
            self.relays.spawn(async move {
                if let Ok(p) = rx.await {
                    let clue = Clue::Sound(p);
                    let _ = tx.send(PauseClue { turn_id, clue }).await;
                }
            });
        }
        self.clues = Some(Clues {
            turn_id,
            sound_pending,
            ..Clues::default()
        });
    }

    /// The VAD's state, if the call has started.
    pub(super) fn vad_now(&self) -> Option<VadNow> {
        let vad = &self.started.as_ref()?.ingest.vad;
        Some(VadNow {
            speaking: vad.is_speaking(),
            speech_ms: vad.speech_ms(),
            silence_ms: vad.trailing_silence_ms(),
            position_ms: vad.position_ms(),
        })
    }

    /// Ends the speaking turn if the silence has reached what its verdict asked for.
    pub(super) async fn end_if_waited(&mut self, now: VadNow) -> Result<(), ClientGone> {
        let Some(wait) = self.end_wait else {
            return Ok(());
        };
        if self.speaking_turn != Some(wait.turn_id) || now.silence_ms < wait.verdict.wait_ms {
            return Ok(());
        }
        if let Some(s) = self.started.as_mut() {
            // The turn is over: the VAD's own stop must not end it a second time.
            s.ingest.vad.reset_turn();
        }
        let end = EndOfTurn {
            rule: wait.verdict.rule,
            silence_ms: now.silence_ms,
            score: wait.verdict.score,
        };
        let speech_end_ms = now.position_ms.saturating_sub(now.silence_ms);
        self.end_user_turn(speech_end_ms, now.position_ms, end)
            .await
    }

    /// The VAD's own stop: `silenceMs` (fixed) or `maxSilenceMs` (smart) of silence.
    pub(super) async fn on_vad_stop(
        &mut self,
        speech_end_ms: u64,
        decided_at_ms: u64,
    ) -> Result<(), ClientGone> {
        let Some(s) = self.started.as_ref() else {
            return Ok(());
        };
        let end = EndOfTurn {
            rule: s.policy.vad_rule(),
            silence_ms: decided_at_ms.saturating_sub(speech_end_ms),
            score: self.end_wait.and_then(|w| w.verdict.score),
        };
        self.end_user_turn(speech_end_ms, decided_at_ms, end).await
    }

    /// Speech went on past the longest turn: that turn ends where it is.
    pub(super) async fn on_longest_turn(&mut self, now: VadNow) -> Result<(), ClientGone> {
        if let Some(s) = self.started.as_mut() {
            s.ingest.vad.reset_turn();
        }
        let end = EndOfTurn {
            rule: EndRule::LongestTurn,
            silence_ms: now.silence_ms,
            score: None,
        };
        let speech_end_ms = now.position_ms.saturating_sub(now.silence_ms);
        self.end_user_turn(speech_end_ms, now.position_ms, end)
            .await
    }

    /// The speaking turn is over: tell the client, and let its (speculative) final speak.
    async fn end_user_turn(
        &mut self,
        speech_end_ms: u64,
        decided_at_ms: u64,
        end: EndOfTurn,
    ) -> Result<(), ClientGone> {
        let Some(turn_id) = self.speaking_turn.take() else {
            return Ok(());
        };
        self.end_wait = None;
        self.clues = None;
        self.ack_all().await?;
        self.outbox
            .emit(CallEvent::SpeechStopped {
                turn_id,
                audio_ms: speech_end_ms,
                end_of_turn: end,
            })
            .await?;
        self.next_turn_id = turn_id + 1;
        self.stop_partials();
        let commit = Commit {
            decided_at: Instant::now(),
            endpoint_ms: Some(decided_at_ms.saturating_sub(speech_end_ms)),
            end_of_turn: Some(end),
            answer: true,
        };
        // Keep the speculative turn if it is this one; otherwise decode now.
        let speculated = self
            .speculation
            .as_ref()
            .is_some_and(|spec| spec.turn_id == turn_id);
        if !speculated {
            self.drop_speculation();
            // Held like a speculation, so the commit below (with the endpoint and the rule)
            // is the one the turn gets, not an empty one sent at once.
            self.submit_tail(turn_id, speech_end_ms, true).await?;
        }
        let next = self.call_cancel.child_token();
        self.pieces.hand_over(next);
        if let Some(s) = self.started.as_mut() {
            s.ingest.utterance.clear();
        }
        if self.holds_turn_end() {
            // Decoded and its answer buffered, like a held commit.
            self.answer_when_free = self.response.is_some()
                && self.started.as_ref().is_some_and(|s| s.config.answer_turns);
            self.held_turn = Some(turn_id);
            self.held_commit = Some(commit);
            return Ok(());
        }
        self.commit_speculation(commit);
        Ok(())
    }

    /// After each run of audio while a turn is spoken: cut long answers, start the
    /// speculative final at a pause, end the turn when its pause is long enough.
    pub(super) async fn follow_turn(&mut self, now: VadNow) -> Result<(), ClientGone> {
        let Some(turn_id) = self.speaking_turn else {
            return Ok(());
        };
        if now.speaking && now.speech_ms >= self.settings.longest_turn.as_millis() as u64 {
            return self.on_longest_turn(now).await;
        }
        let spec_ms = self.settings.speculative_silence.as_millis() as u64;
        let uncut_ms = self.started.as_ref().map_or(0, |s| s.ingest.uncut_ms());
        if now.speaking && now.silence_ms >= spec_ms && self.speculation.is_none() {
            // A pause long enough to maybe be the end: decode now, keep it if the pause
            // lasts, drop it if speech resumes. A long stretch becomes a piece first, so
            // only what follows it is decoded again.
            self.stop_partials();
            let end_ms = now.position_ms.saturating_sub(now.silence_ms);
            if uncut_ms >= PIECE_MIN_MS {
                self.cut_piece(Some(end_ms));
            }
            self.gather_clues(turn_id);
            self.submit_tail(turn_id, end_ms, true).await?;
        } else if now.silence_ms < spec_ms && self.speculation.is_some() {
            self.drop_speculation();
        } else if uncut_ms >= PIECE_MAX_MS && now.silence_ms < spec_ms {
            self.cut_piece(None);
        }
        self.end_if_waited(now).await
    }

    /// Cuts the uncut audio into a piece (at `end_ms`, or its quietest moment) and queues
    /// its decode.
    fn cut_piece(&mut self, end_ms: Option<u64>) {
        let prompt = self.decode_options();
        let Some(s) = self.started.as_mut() else {
            return;
        };
        let audio = match end_ms {
            Some(end_ms) => s.ingest.take_piece(end_ms),
            None => s.ingest.take_quiet_piece(),
        };
        if !audio.is_empty() {
            self.pieces.submit(&self.engines.asr, audio, prompt);
        }
    }

    /// The decode settings for this call's next decode: the server's prompt, the persona's
    /// vocabulary, the question just asked and the answer so far, newest last.
    pub(super) fn decode_options(&self) -> DecodeOptions {
        let mut options = self.engines.decode.clone();
        let base = options.initial_prompt.take();
        let question = self.last_question();
        let so_far = self.pieces.ready_text();
        let started = self.started.as_ref();
        options.initial_prompt = InterviewPrompt {
            base: base.as_deref(),
            role: started
                .and_then(|s| s.context.get("role"))
                .map(String::as_str),
            vocabulary: started.map_or(&[], |s| s.persona.vocabulary.as_slice()),
            question: question.as_deref(),
            so_far: &so_far,
            // Already in the server's prompt (`--asr-keep-fillers`).
            keep_fillers: false,
        }
        .text();
        options
    }

    /// The interviewer's last question: the last sentence it said.
    fn last_question(&self) -> Option<String> {
        crate::llm::last_question(&self.history)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_silence_after_speech_is_not_more_speech() {
        let now = |speech_ms, silence_ms| VadNow {
            speaking: true,
            speech_ms,
            silence_ms,
            position_ms: 10_000,
        };
        // "Okay." (500 ms), then 1.2 s of silence while its words are decoded.
        assert_eq!(now(1700, 1200).voiced_ms(), 500);
        assert_eq!(now(1600, 40).voiced_ms(), 1560);
        assert_eq!(now(0, 0).voiced_ms(), 0);
    }
}
