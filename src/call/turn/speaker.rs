//! The speaking side of a turn: sentences -> synthesis -> output frames paced to real time,
//! and what the client can have heard of them when the turn stops.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::Floor;
use crate::audio::resample::resample_all;
use crate::audio::{f32_to_i16, i16_to_mono_f32};
use crate::call::events::{CallEvent, Fault};
use crate::call::outbox::Outbox;
use crate::tts::{Speech, Synthesizer, TtsError, Urgency, first_piece_ends};

/// Output audio goes out in frames of this length: small enough to start playback early,
/// large enough to keep the frame count (and the writer queue) modest.
const FRAME_MS: u32 = 100;

/// How far output audio may run ahead of real time. The server paces audio to the clock
/// (plus this lead, to ride out network jitter) instead of dumping it: a barge-in can then
/// still stop what the user has not heard, and a client's buffer stays small.
const PLAYBACK_LEAD_MS: u64 = 400;

/// One synthesized sentence's place in the text and in the audio.
pub(super) struct Spoken {
    /// Byte offset in the full text where this sentence ends.
    pub(super) text_end: usize,
    /// Where its audio starts and ends in the turn's output, in ms.
    pub(super) audio_start_ms: u64,
    pub(super) audio_end_ms: u64,
}

#[derive(Default)]
pub(super) struct SpeakerReport {
    pub(super) spoken: Vec<Spoken>,
    pub(super) first_audio_at: Option<Instant>,
    pub(super) tts_first_ms: Option<u64>,
    pub(super) error: Option<String>,
    /// Whether `error` already went to the client as an `error` event.
    pub(super) error_reported: bool,
    /// Audio actually handed to the socket, ms: the most a client can have played.
    pub(super) sent_ms: u64,
}

/// Finds where `sentence` (trimmed by the splitter) ends in `text`, searching from `from`.
pub(super) fn locate(text: &str, sentence: &str, from: &mut usize) -> usize {
    let start = (*from).min(text.len());
    let end = text
        .get(start..)
        .and_then(|rest| rest.find(sentence))
        .map(|i| start + i + sentence.len())
        .unwrap_or(text.len());
    *from = end;
    end
}

/// The part of `text` the user heard: whole sentences played, plus the played share of the
/// sentence playing when it stopped, cut back to a word boundary. Without a playback report
/// the client is assumed to have heard nothing it was not sent.
pub(super) fn heard_prefix(text: &str, spoken: &[Spoken], played_ms: Option<u64>) -> String {
    let played = played_ms.unwrap_or_else(|| spoken.last().map_or(0, |s| s.audio_end_ms));
    let mut end = 0usize;
    let mut start_of_current = 0usize;
    for s in spoken {
        if played >= s.audio_end_ms {
            end = s.text_end;
            start_of_current = s.text_end;
            continue;
        }
        if played > s.audio_start_ms {
            let share = (played - s.audio_start_ms) as f64
                / (s.audio_end_ms - s.audio_start_ms).max(1) as f64;
            let span = s.text_end.saturating_sub(start_of_current);
            let mut cut = start_of_current + (span as f64 * share) as usize;
            while cut > start_of_current && !text.is_char_boundary(cut) {
                cut -= 1;
            }
            // Back to the last whole word.
            let partial = &text[start_of_current..cut];
            end = match partial.rfind(char::is_whitespace) {
                Some(i) => start_of_current + i,
                None => start_of_current,
            };
        }
        break;
    }
    text[..end.min(text.len())].trim_end().to_string()
}

/// What the user can have heard: the client's report, capped by what was sent; without a
/// report, what was sent.
pub(super) fn heard_ms(reported: Option<u64>, sent_ms: u64) -> Option<u64> {
    Some(reported.map_or(sent_ms, |r| r.min(sent_ms)))
}

/// Where one turn's audio goes and what may stop it.
pub(super) struct Voice {
    pub(super) turn_id: u32,
    pub(super) output_rate: u32,
    pub(super) outbox: Outbox,
    pub(super) cancel: CancellationToken,
    /// Held while the candidate speaks over the response.
    pub(super) floor: watch::Receiver<Floor>,
    /// Set when the first frame goes out.
    pub(super) audible: Arc<AtomicBool>,
    /// The call's voice.
    pub(super) tts: Arc<dyn Synthesizer>,
    /// The first piece, if it was synthesized before the turn was committed.
    pub(super) prefetch: Option<Prefetch>,
}

/// The first piece of an answer, synthesized ahead of the commit.
pub(in crate::call) struct Prefetch {
    text: String,
    job: AbortOnDropHandle<Result<Speech, TtsError>>,
}

impl Prefetch {
    /// Starts synthesizing the piece of `first_sentence` that is spoken first.
    pub(super) fn start(
        tts: Arc<dyn Synthesizer>,
        first_sentence: &str,
        cancel: &CancellationToken,
    ) -> Self {
        let text = first_piece(first_sentence).to_owned();
        let job = tts.synthesize(text.clone(), cancel.clone(), Urgency::Now);
        Self {
            text,
            job: AbortOnDropHandle::new(tokio::spawn(job)),
        }
    }
}

/// What of a response's first sentence is synthesized first (the candidate is waiting).
fn first_piece(sentence: &str) -> &str {
    first_piece_ends(sentence)
        .first()
        .map_or(sentence, |&cut| &sentence[..cut])
}

/// A response's first sentence as the pieces it is spoken in, each with where it ends in
/// the full text (`text_end` is where the sentence ends).
fn split_first(sentence: &str, text_end: usize) -> Vec<(String, usize)> {
    let mut start = 0;
    let mut pieces = Vec::new();
    for end in first_piece_ends(sentence)
        .into_iter()
        .chain([sentence.len()])
    {
        let piece = sentence[start..end].trim();
        pieces.push((
            piece.to_owned(),
            text_end.saturating_sub(sentence.len() - end),
        ));
        start = end;
    }
    pieces
}

/// Synthesizes sentences in order and sends their audio; returns where each sentence lies.
/// Synthesis runs a sentence ahead of playback, so a slower voice's next sentence is ready
/// when the one playing ends.
pub(super) async fn speak(
    mut voice: Voice,
    mut sentences: mpsc::Receiver<(String, usize)>,
) -> SpeakerReport {
    let (rendered_tx, mut rendered) = mpsc::channel(1);
    let renderer = Renderer {
        tts: voice.tts.clone(),
        cancel: voice.cancel.clone(),
        output_rate: voice.output_rate,
        prefetch: voice.prefetch.take(),
    };
    // Aborted with the speaker: nothing is synthesized for a turn that stopped.
    let _rendering = AbortOnDropHandle::new(tokio::spawn(async move {
        renderer.run(&mut sentences, rendered_tx).await
    }));
    let mut speaker = Speaker {
        voice,
        report: SpeakerReport::default(),
        held: None,
        first: true,
        synthesized_ms: 0,
        clock_start: None,
    };
    let mut last_tts_error = None;
    loop {
        let next = tokio::select! {
            biased;
            _ = speaker.voice.cancel.cancelled() => return speaker.report,
            r = rendered.recv() => r,
        };
        let Some(Rendered {
            text_end,
            audio,
            tts_ms,
        }) = next
        else {
            break;
        };
        match audio {
            Ok(audio) => {
                speaker.report.tts_first_ms.get_or_insert(tts_ms);
                if speaker.send(audio, text_end).await.is_err() {
                    return speaker.report;
                }
            }
            Err(Synthesis::Skipped(e)) => {
                speaker.skipped(&e).await;
                last_tts_error = Some(e);
            }
            Err(Synthesis::Broken(e)) => {
                speaker.report.error = Some(e);
                break;
            }
        }
    }
    speaker.finish(last_tts_error).await
}

/// Why a sentence produced no audio.
enum Synthesis {
    /// The engine refused this sentence; the rest of the answer goes on.
    Skipped(String),
    /// The audio path itself failed; the turn fails.
    Broken(String),
}

/// One sentence, synthesized and at the output rate (or why not).
struct Rendered {
    text_end: usize,
    audio: Result<Vec<i16>, Synthesis>,
    /// How long synthesis took, ms.
    tts_ms: u64,
}

/// Turns a turn's sentences into output-rate audio, in order.
struct Renderer {
    tts: Arc<dyn Synthesizer>,
    cancel: CancellationToken,
    output_rate: u32,
    prefetch: Option<Prefetch>,
}

impl Renderer {
    /// Until the sentences end, the turn is cancelled or the speaker is gone. The first
    /// sentence is the one the candidate waits for; the rest are synthesized ahead.
    async fn run(
        mut self,
        sentences: &mut mpsc::Receiver<(String, usize)>,
        out: mpsc::Sender<Rendered>,
    ) {
        let mut urgency = Urgency::Now;
        let mut first_sentence = true;
        let mut pending = VecDeque::new();
        loop {
            let next = match pending.pop_front() {
                Some(piece) => Some(piece),
                None => tokio::select! {
                    biased;
                    _ = self.cancel.cancelled() => return,
                    s = sentences.recv() => s,
                },
            };
            let Some((sentence, text_end)) = next else {
                return;
            };
            let (sentence, text_end) = if std::mem::take(&mut first_sentence) {
                // The rest follows while the first piece plays.
                pending.extend(split_first(&sentence, text_end));
                match pending.pop_front() {
                    Some(first) => first,
                    None => return,
                }
            } else {
                (sentence, text_end)
            };
            let started = Instant::now();
            let audio = match self.synthesize(sentence, urgency).await {
                Ok(speech) => self.resample(speech).await,
                Err(TtsError::Cancelled) => return,
                Err(e) => Err(Synthesis::Skipped(e.to_string())),
            };
            if pending.is_empty() {
                // The first sentence is out: what follows is synthesized ahead of need.
                urgency = Urgency::Ahead;
            }
            let rendered = Rendered {
                text_end,
                audio,
                tts_ms: started.elapsed().as_millis() as u64,
            };
            if out.send(rendered).await.is_err() {
                return;
            }
        }
    }

    /// The prefetched audio when `text` is what was prefetched, else a new synthesis.
    async fn synthesize(&mut self, text: String, urgency: Urgency) -> Result<Speech, TtsError> {
        if let Some(prefetch) = self.prefetch.take() {
            if prefetch.text == text {
                return prefetch.job.await.unwrap_or(Err(TtsError::WorkerGone));
            }
            tracing::debug!(
                prefetched = prefetch.text,
                text,
                "the answer began otherwise than prefetched"
            );
        }
        self.tts
            .synthesize(text, self.cancel.clone(), urgency)
            .await
    }

    /// Resampling a whole sentence is a block of CPU work: kept off the async workers.
    async fn resample(&self, speech: Speech) -> Result<Vec<i16>, Synthesis> {
        let (rate, samples, output_rate) = (speech.sample_rate, speech.samples, self.output_rate);
        let job = tokio::task::spawn_blocking(move || {
            resample_all(&i16_to_mono_f32(&samples, 1), rate, output_rate).map(|o| f32_to_i16(&o))
        })
        .await;
        match job {
            Ok(Ok(audio)) => Ok(audio),
            Ok(Err(e)) => Err(Synthesis::Broken(e.to_string())),
            Err(e) => Err(Synthesis::Broken(e.to_string())),
        }
    }
}

/// The state of one turn's audio output.
struct Speaker {
    voice: Voice,
    report: SpeakerReport,
    /// The last frame is held back until we know whether more audio follows, so it can
    /// carry the `last` flag.
    held: Option<Vec<i16>>,
    first: bool,
    /// Audio synthesized so far, ms (where the next sentence starts).
    synthesized_ms: u64,
    /// When the first frame went out: the pacing clock's zero.
    clock_start: Option<Instant>,
}

impl Speaker {
    /// One unspeakable sentence should not silence the rest of the answer: skip it, and
    /// tell the client once.
    async fn skipped(&mut self, error: &str) {
        tracing::warn!(
            turn_id = self.voice.turn_id,
            error,
            "synthesis failed; skipping a sentence"
        );
        if self.report.error_reported {
            return;
        }
        self.report.error_reported = true;
        let fault = Fault::Tts {
            message: error.to_owned(),
            partial: true,
        };
        let _ = self
            .voice
            .outbox
            .emit(CallEvent::turn_fault(self.voice.turn_id, fault))
            .await;
    }

    fn ms(&self, samples: usize) -> u64 {
        samples as u64 * 1000 / self.voice.output_rate as u64
    }

    /// Sends a sentence's audio frame by frame, paced to real time; `Err` when the turn
    /// stopped (cancelled, or the client is gone).
    async fn send(&mut self, audio: Vec<i16>, text_end: usize) -> Result<(), ()> {
        let audio_start_ms = self.synthesized_ms;
        self.synthesized_ms += self.ms(audio.len());
        self.report.spoken.push(Spoken {
            text_end,
            audio_start_ms,
            audio_end_ms: self.synthesized_ms,
        });
        let frame_len = (self.voice.output_rate * FRAME_MS / 1000).max(1) as usize;
        for frame in audio.chunks(frame_len) {
            if let Some(prev) = self.held.replace(frame.to_vec()) {
                self.send_frame(prev).await?;
            }
        }
        Ok(())
    }

    async fn send_frame(&mut self, frame: Vec<i16>) -> Result<(), ()> {
        self.wait_until_due().await?;
        if self.voice.cancel.is_cancelled() {
            return Err(());
        }
        self.clock_start.get_or_insert_with(Instant::now);
        self.voice
            .outbox
            .audio(self.voice.turn_id, self.first, false, &frame)
            .await
            .map_err(|_| ())?;
        self.report.sent_ms += self.ms(frame.len());
        if self.first {
            self.report.first_audio_at = Some(Instant::now());
            self.voice.audible.store(true, Ordering::Release);
            self.first = false;
        }
        Ok(())
    }

    /// Waits until the next frame is due: paced to real time plus the lead, and never
    /// while the floor is held. The pacing clock stops while it is held, so the audio the
    /// client kept buffered is still its lead when the response resumes.
    async fn wait_until_due(&mut self) -> Result<(), ()> {
        loop {
            self.wait_for_floor().await?;
            let Some(start) = self.clock_start else {
                return Ok(());
            };
            let lead = self.report.sent_ms.saturating_sub(PLAYBACK_LEAD_MS);
            let due = start + Duration::from_millis(lead);
            tokio::select! {
                biased;
                _ = self.voice.cancel.cancelled() => return Err(()),
                changed = self.voice.floor.changed() => changed.map_err(|_| ())?,
                _ = tokio::time::sleep_until(due) => return Ok(()),
            }
        }
    }

    /// Returns once the floor is not held (at once when it is not). The pacing clock stops
    /// only for the time the client's player was paused: while the floor was merely hushed
    /// the client played on from its lead, which the frames after it refill.
    async fn wait_for_floor(&mut self) -> Result<(), ()> {
        if !self.voice.floor.borrow_and_update().is_held() {
            return Ok(());
        }
        let held_at = Instant::now();
        let mut paused_at = None;
        loop {
            let (held, paused, reopened) = {
                let floor = self.voice.floor.borrow_and_update();
                let reopened = matches!(*floor, Floor::Reopened { .. });
                (floor.is_held(), floor.is_paused(), reopened)
            };
            if paused || reopened {
                // A resume seen without its pause (the watch keeps only the latest value)
                // was paused since the hush began.
                paused_at.get_or_insert(if paused { Instant::now() } else { held_at });
            }
            if !held {
                break;
            }
            tokio::select! {
                biased;
                _ = self.voice.cancel.cancelled() => return Err(()),
                changed = self.voice.floor.changed() => changed.map_err(|_| ())?,
            }
        }
        if let (Some(start), Some(paused_at)) = (self.clock_start.as_mut(), paused_at) {
            *start += paused_at.elapsed();
        }
        Ok(())
    }

    /// Sends the held frame as the last one, unless the turn stopped or said nothing.
    async fn finish(mut self, last_tts_error: Option<String>) -> SpeakerReport {
        if self.voice.cancel.is_cancelled() || self.wait_for_floor().await.is_err() {
            return self.report;
        }
        if self.report.spoken.is_empty()
            && let Some(e) = last_tts_error
        {
            // Not one sentence could be spoken: the engine is broken, not one sentence.
            self.report.error = Some(format!("no sentence of the answer could be spoken: {e}"));
            return self.report;
        }
        let last = self.held.take().unwrap_or_default();
        if self
            .voice
            .outbox
            .audio(self.voice.turn_id, self.first, true, &last)
            .await
            .is_ok()
        {
            self.report.sent_ms += self.ms(last.len());
            if self.first {
                self.report.first_audio_at = Some(Instant::now());
                self.voice.audible.store(true, Ordering::Release);
            }
        }
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spoken() -> (String, Vec<Spoken>) {
        let text = "Thanks for that. Tell me about a bug you fixed.".to_string();
        let s = vec![
            Spoken {
                text_end: 16,
                audio_start_ms: 0,
                audio_end_ms: 1000,
            },
            Spoken {
                text_end: text.len(),
                audio_start_ms: 1000,
                audio_end_ms: 3000,
            },
        ];
        (text, s)
    }

    #[test]
    fn heard_prefix_cuts_at_played_word() {
        let (text, s) = spoken();
        assert_eq!(heard_prefix(&text, &s, Some(0)), "");
        assert_eq!(heard_prefix(&text, &s, Some(1000)), "Thanks for that.");
        let mid = heard_prefix(&text, &s, Some(2000));
        assert!(
            text.starts_with(&mid) && mid.len() > 16 && mid.len() < text.len(),
            "{mid}"
        );
        assert_eq!(heard_prefix(&text, &s, Some(5000)), text);
        // No report: everything sent counts as heard.
        assert_eq!(heard_prefix(&text, &s, None), text);
    }

    #[test]
    fn locate_finds_sentence_ends_in_order() {
        let text = "Yes. Yes. No.";
        let mut from = 0;
        assert_eq!(locate(text, "Yes.", &mut from), 4);
        assert_eq!(locate(text, "Yes.", &mut from), 9);
        assert_eq!(locate(text, "No.", &mut from), 13);
    }

    #[test]
    fn a_first_sentence_splits_into_pieces_that_end_where_the_text_does() {
        let text = "Hello. Okay, five years with Rust, got it. Next?";
        let sentence = "Okay, five years with Rust, got it.";
        let end = text.find(" Next").unwrap();
        let pieces = split_first(sentence, end);
        assert_eq!(
            pieces,
            [
                ("Okay,".to_owned(), text.find(',').unwrap() + 1),
                ("five years with Rust, got it.".to_owned(), end),
            ]
        );
        assert_eq!(split_first("Thanks.", 7), [("Thanks.".to_owned(), 7)]);
    }
}
