//! Speech over the interviewer: the response is held at once and the words decide. A
//! backchannel ("mm-hmm", a cough) gives the floor back to the response, which plays on
//! from where it stopped; anything else takes the floor, as a barge-in.

use std::sync::atomic::Ordering;

use tokio::time::Instant;
use tokio_util::sync::DropGuard;

use super::Session;
use super::end_of_turn::VadNow;
use crate::asr::pool::Priority;
use crate::audio::ASR_SAMPLE_RATE;
use crate::call::outbox::ClientGone;
use crate::call::turn::Floor;
use crate::eot::backchannel::is_backchannel;

/// Overlapping speech that goes on longer than this takes the floor whatever it says:
/// backchannels are short, and an interruption should not wait for its words.
pub(super) const BACKCHANNEL_MAX_MS: u64 = 1500;
/// Silence after overlapping speech at which its words decide.
pub(super) const OVERLAP_PAUSE_MS: u64 = 200;
/// Silence after overlapping speech at which its words start being decoded: the decode
/// (~170 ms) runs while the pause is waited out, so a backchannel's verdict is there about
/// when the pause is. Sound again before the pause ends discards it (a gap inside the
/// "mm-hmm"); the speech is decoded whole at its next pause.
const OVERLAP_EARLY_DECODE_MS: u64 = 100;
/// Silence after a sound too short for a barge-in at which the hushed response plays on:
/// the hush, the VAD's onset delay and the sound together stay inside the client's
/// buffered lead (the speaker's PLAYBACK_LEAD_MS, 400 ms) for a sound up to ~200 ms.
const HUSH_RELEASE_MS: u64 = 100;
/// Audio decoded before the speech's onset (the VAD finds an onset late).
const OVERLAP_PREROLL_MS: u64 = 200;
/// Most tokens decoded of speech over the response: its first words tell a backchannel
/// from an interruption, and every token of a repetition loop ("Mm-m-m-m-…", "Right.
/// Right. …", common on the short window below) is time the response stays paused (a
/// 128-token loop took 9-15 s on a busy 2-core machine).
const OVERLAP_MAX_TOKENS: u32 = 10;
/// The encoder window for speech over the response, s. The speech is at most
/// BACKCHANNEL_MAX_MS plus its pre-roll and pause; a 5 s window decodes "okay" in ~170 ms
/// instead of the default 10 s window's ~350 ms (tiny.en, 2 threads, quiet machine). On
/// some voices it loops ("Right. Right. …" to the token cap), which `is_backchannel`
/// reads as the word said once; 3 s loops on most.
const OVERLAP_WINDOW_S: f32 = 5.0;

/// Speech over a response, holding it.
#[derive(Debug)]
pub(super) struct Overlap {
    /// The response held.
    turn_id: u32,
    /// Where the speech began in the input, ms.
    onset_ms: u64,
    held_at: Instant,
    /// Its words are being decoded.
    judging: Option<Judging>,
    /// Decodes started, to tell a discarded one's words from the current one's.
    attempts: u32,
    /// The candidate spoke again after the pause, while its words were decoded: more is
    /// coming.
    spoke_again: bool,
    /// The VAD ended the speech meanwhile: `(speech_end_ms, decided_at_ms)`.
    vad_stop: Option<(u64, u64)>,
}

/// One decode of the speech over the response.
#[derive(Debug)]
struct Judging {
    attempt: u32,
    /// Stops the decode when the judging is dropped (discarded, or the floor decided).
    _cancel: DropGuard,
    /// The pause (OVERLAP_PAUSE_MS) was reached: the words decide as soon as they are in.
    settled: bool,
    /// The words, in before the pause was reached.
    heard: Option<String>,
}

impl Overlap {
    /// The VAD ended the overlapping speech; kept for the turn it may become.
    pub(super) fn vad_stopped(&mut self, speech_end_ms: u64, decided_at_ms: u64) {
        self.vad_stop = Some((speech_end_ms, decided_at_ms));
    }
}

/// The words of speech over a response, decoded (`None` when the decode failed).
#[derive(Debug)]
pub struct OverlapHeard {
    /// The response that was held.
    pub turn_id: u32,
    /// Which decode of it (a discarded one's words are dropped).
    pub attempt: u32,
    /// Whisper's transcript.
    pub text: Option<String>,
}

impl Session {
    /// The VAD heard speech begin over an audible response: no frame goes out until it is
    /// known to be a click or a barge-in, so an interruption's audio stops at its onset.
    pub(super) fn hush_response(&mut self) {
        if let Some(r) = self.response.as_ref()
            && r.audible.load(Ordering::Acquire)
        {
            r.floor.send_if_modified(|floor| {
                let open = !floor.is_held();
                if open {
                    *floor = Floor::Hushed;
                }
                open
            });
        }
    }

    /// While a sound over the response is too short for a barge-in: hushed while it
    /// sounds, open again once it has been quiet for HUSH_RELEASE_MS (the VAD may take
    /// seconds to end the speech, and the client's lead would run out long before).
    pub(super) fn follow_hush(&mut self, now: VadNow) {
        if now.silence_ms >= HUSH_RELEASE_MS {
            self.unhush_response();
        } else if now.speaking && now.silence_ms == 0 {
            self.hush_response();
        }
    }

    /// The sound that hushed the response was too short for a barge-in: it plays on.
    pub(super) fn unhush_response(&mut self) {
        if let Some(r) = self.response.as_ref() {
            r.floor.send_if_modified(|floor| {
                let hushed = *floor == Floor::Hushed;
                if hushed {
                    *floor = Floor::Open;
                }
                hushed
            });
        }
    }

    /// Speech over the response has lasted: hold the response if the candidate can hear
    /// it. `false` when there is nothing to hold (it has not spoken yet: the candidate is
    /// going on with their answer).
    pub(super) fn hold_response(&mut self, onset_ms: u64) -> bool {
        let Some(r) = self.response.as_ref() else {
            return false;
        };
        if !r.audible.load(Ordering::Acquire) {
            return false;
        }
        tracing::debug!(turn_id = r.turn_id, onset_ms, "response held");
        r.floor.send_replace(Floor::Held { audio_ms: onset_ms });
        self.engines.metrics.responses_paused.inc();
        self.overlap = Some(Overlap {
            turn_id: r.turn_id,
            onset_ms,
            held_at: Instant::now(),
            judging: None,
            attempts: 0,
            spoke_again: false,
            vad_stop: None,
        });
        true
    }

    /// After each run of audio while a response is held: long speech takes the floor, a
    /// pause gets its words decoded, and they decide once the pause is long enough.
    pub(super) async fn follow_overlap(&mut self, now: VadNow) -> Result<(), ClientGone> {
        let Some(o) = self.overlap.as_mut() else {
            return Ok(());
        };
        if now.speaking && now.voiced_ms() >= BACKCHANNEL_MAX_MS {
            return self.take_floor().await;
        }
        let silence_ms = if now.speaking {
            now.silence_ms
        } else {
            u64::MAX
        };
        let sounding = now.speaking && now.silence_ms == 0;
        match o.judging.as_mut() {
            Some(j) if sounding => {
                if j.settled {
                    o.spoke_again = true;
                } else {
                    o.judging = None;
                }
            }
            Some(j) if silence_ms >= OVERLAP_PAUSE_MS => {
                j.settled = true;
                if let Some(text) = j.heard.take() {
                    return self.overlap_verdict(text).await;
                }
            }
            Some(_) => {}
            None if silence_ms >= OVERLAP_EARLY_DECODE_MS => {
                let ms = now.position_ms.saturating_sub(o.onset_ms) + OVERLAP_PREROLL_MS;
                self.judge_overlap(ms);
            }
            None => {}
        }
        Ok(())
    }

    /// Decodes the last `ms` of input (the overlapping speech) and sends its words back.
    fn judge_overlap(&mut self, ms: u64) {
        let Some((o, s)) = self.overlap.as_mut().zip(self.started.as_ref()) else {
            return;
        };
        o.attempts += 1;
        let (turn_id, attempt) = (o.turn_id, o.attempts);
        let audio = s
            .ingest
            .recent_audio((ms * ASR_SAMPLE_RATE as u64 / 1000) as usize);
        let cancel = self.call_cancel.child_token();
        o.judging = Some(Judging {
            attempt,
            _cancel: cancel.clone().drop_guard(),
            settled: false,
            heard: None,
        });
        let options = crate::asr::DecodeOptions {
            max_tokens: OVERLAP_MAX_TOKENS,
            audio_context: crate::asr::AudioContext::TrimmedWithFloor(OVERLAP_WINDOW_S),
            ..self.engines.decode.clone()
        };
        let decode = self
            .engines
            .asr
            .submit(Priority::Final, audio, options, cancel);
        let tx = self.overlaps_tx.clone();
        self.relays.spawn(async move {
            let text = match decode {
                Ok(rx) => rx.await.ok().and_then(|o| o.result.ok()).map(|t| t.text),
                Err(_) => None,
            };
            let _ = tx
                .send(OverlapHeard {
                    turn_id,
                    attempt,
                    text,
                })
                .await;
        });
    }

    /// The words of the speech over the response are known: they decide now if the pause
    /// was long enough, else when it is (see follow_overlap).
    pub async fn on_overlap_heard(&mut self, heard: OverlapHeard) -> Result<(), ClientGone> {
        let Some(j) = self
            .overlap
            .as_mut()
            .filter(|o| o.turn_id == heard.turn_id)
            .and_then(|o| o.judging.as_mut())
            .filter(|j| j.attempt == heard.attempt)
        else {
            return Ok(());
        };
        // A decode that failed says nothing: the interviewer goes on, as for a cough.
        let text = heard.text.unwrap_or_default();
        if j.settled {
            self.overlap_verdict(text).await
        } else {
            j.heard = Some(text);
            Ok(())
        }
    }

    /// A backchannel resumes the response, anything else takes the floor.
    async fn overlap_verdict(&mut self, text: String) -> Result<(), ClientGone> {
        let Some(o) = self.overlap.as_ref() else {
            return Ok(());
        };
        let backchannel = !o.spoke_again && is_backchannel(&text);
        tracing::info!(
            turn_id = o.turn_id,
            text,
            spoke_again = o.spoke_again,
            backchannel,
            "speech over the response"
        );
        if backchannel {
            self.give_floor_back(text);
            Ok(())
        } else {
            self.take_floor().await
        }
    }

    /// A backchannel: the response plays on and the speech is forgotten.
    fn give_floor_back(&mut self, text: String) {
        let Some(o) = self.overlap.take() else {
            return;
        };
        let paused_ms = o.held_at.elapsed().as_millis() as u64;
        // The VAD's end of the speech, or the start of the silence it is in now.
        let speech_end_ms = o.vad_stop.map_or_else(
            || {
                self.vad_now().map_or(o.onset_ms, |now| {
                    now.position_ms
                        .saturating_sub(now.silence_ms)
                        .max(o.onset_ms)
                })
            },
            |(end_ms, _)| end_ms,
        );
        if let Some(r) = self.response.as_ref().filter(|r| r.turn_id == o.turn_id) {
            r.floor.send_replace(Floor::Reopened {
                paused_ms,
                text,
                speech_end_ms,
            });
            self.engines.metrics.responses_resumed.inc();
        }
        if let Some(s) = self.started.as_mut() {
            s.ingest.utterance.clear();
            // The backchannel is not a turn: the VAD must not end it, and the next speech
            // must start afresh.
            s.ingest.vad.reset_turn();
        }
    }

    /// An interruption: the held response is cancelled and the candidate's turn begins
    /// where the speech did (and ends at once if the VAD already ended it).
    pub(super) async fn take_floor(&mut self) -> Result<(), ClientGone> {
        let Some(o) = self.overlap.take() else {
            return Ok(());
        };
        self.interrupt(o.onset_ms).await?;
        match o.vad_stop {
            Some((speech_end_ms, decided_at_ms)) => {
                self.on_vad_stop(speech_end_ms, decided_at_ms).await
            }
            None => Ok(()),
        }
    }
}
