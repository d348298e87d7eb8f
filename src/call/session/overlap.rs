//! Speech over the interviewer: the response is held at once and the words decide. A
//! backchannel ("mm-hmm", a cough) gives the floor back to the response, which plays on
//! from where it stopped; anything else takes the floor, as a barge-in.

use std::sync::atomic::Ordering;

use tokio::time::Instant;

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
/// Silence after overlapping speech at which its words are decoded.
pub(super) const OVERLAP_PAUSE_MS: u64 = 250;
/// Audio decoded before the speech's onset (the VAD finds an onset late).
const OVERLAP_PREROLL_MS: u64 = 200;
/// Most tokens decoded of speech over the response: a backchannel is a few words, and
/// whisper's repetition loop on a hum ("Mm-m-m-m-…" to the 128-token limit) took 9-15 s on
/// a busy 2-core machine, all of it with the response paused.
const OVERLAP_MAX_TOKENS: u32 = 24;

/// Speech over a response, holding it.
#[derive(Debug)]
pub(super) struct Overlap {
    /// The response held.
    turn_id: u32,
    /// Where the speech began in the input, ms.
    onset_ms: u64,
    held_at: Instant,
    /// Its words are being decoded.
    judging: bool,
    /// The candidate spoke again while its words were decoded: more is coming.
    spoke_again: bool,
    /// The VAD ended the speech meanwhile: `(speech_end_ms, decided_at_ms)`.
    vad_stop: Option<(u64, u64)>,
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
    /// Whisper's transcript.
    pub text: Option<String>,
}

/// How long the speech over the response has gone on, the silence after it left out: the
/// VAD counts that silence as part of the speech until it ends it, and a backchannel whose
/// words take a while to decode must not turn into 1.5 s of "speech" meanwhile.
fn speech_so_far_ms(now: &VadNow) -> u64 {
    now.speech_ms.saturating_sub(now.silence_ms)
}

impl Session {
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
            judging: false,
            spoke_again: false,
            vad_stop: None,
        });
        true
    }

    /// After each run of audio while a response is held: long speech takes the floor, a
    /// pause gets its words decoded.
    pub(super) async fn follow_overlap(&mut self, now: VadNow) -> Result<(), ClientGone> {
        let Some(o) = self.overlap.as_mut() else {
            return Ok(());
        };
        if now.speaking && speech_so_far_ms(&now) >= BACKCHANNEL_MAX_MS {
            return self.take_floor().await;
        }
        let paused = !now.speaking || now.silence_ms >= OVERLAP_PAUSE_MS;
        if o.judging {
            o.spoke_again |= !paused;
            return Ok(());
        }
        if paused {
            o.judging = true;
            let ms = now.position_ms.saturating_sub(o.onset_ms) + OVERLAP_PREROLL_MS;
            self.judge_overlap(ms);
        }
        Ok(())
    }

    /// Decodes the last `ms` of input (the overlapping speech) and sends its words back.
    fn judge_overlap(&mut self, ms: u64) {
        let Some((turn_id, s)) = self.overlap.as_ref().zip(self.started.as_ref()) else {
            return;
        };
        let turn_id = turn_id.turn_id;
        let audio = s
            .ingest
            .recent_audio((ms * ASR_SAMPLE_RATE as u64 / 1000) as usize);
        let cancel = self.call_cancel.child_token();
        let options = crate::asr::DecodeOptions {
            max_tokens: OVERLAP_MAX_TOKENS,
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
            let _ = tx.send(OverlapHeard { turn_id, text }).await;
        });
    }

    /// The words of the speech over the response are known: a backchannel resumes the
    /// response, anything else takes the floor.
    pub async fn on_overlap_heard(&mut self, heard: OverlapHeard) -> Result<(), ClientGone> {
        let Some(o) = self
            .overlap
            .as_ref()
            .filter(|o| o.turn_id == heard.turn_id && o.judging)
        else {
            return Ok(());
        };
        // A decode that failed says nothing: the interviewer goes on, as for a cough.
        let text = heard.text.unwrap_or_default();
        let backchannel = !o.spoke_again && is_backchannel(&text);
        tracing::debug!(
            turn_id = o.turn_id,
            text,
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
        if let Some(r) = self.response.as_ref().filter(|r| r.turn_id == o.turn_id) {
            r.floor.send_replace(Floor::Reopened { paused_ms, text });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_silence_after_speech_over_the_response_is_not_more_speech() {
        let now = |speech_ms, silence_ms| VadNow {
            speaking: true,
            speech_ms,
            silence_ms,
            position_ms: 10_000,
        };
        // "Okay." (500 ms), then 1.2 s of silence while its words are decoded.
        assert_eq!(speech_so_far_ms(&now(1700, 1200)), 500);
        assert_eq!(speech_so_far_ms(&now(1600, 40)), 1560);
        assert_eq!(speech_so_far_ms(&now(0, 0)), 0);
    }
}
