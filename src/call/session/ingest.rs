//! Input audio of one call: sequencer -> resampler -> VAD, the pre-roll, the utterance being
//! spoken, and when to acknowledge. Pure state, no I/O: the session feeds it chunks and acts
//! on what it reports.

use std::collections::VecDeque;

use crate::audio::resample::{ResampleError, StreamResampler};
use crate::audio::sequencer::{Sequencer, SequencerEvent};
use crate::audio::vad::{SpeechDetector, Vad, VadConfig, VadEvent};
use crate::audio::{ASR_SAMPLE_RATE, downmix_i16, i16_to_mono_f32};
use crate::call::recorder::Recorder;
use crate::eot::TurnPolicy;

/// Input audio kept from before the detected onset, so the first syllable is not clipped.
const PREROLL_MS: u64 = 300;
/// Audio kept after the last active frame when cutting an utterance for decoding.
const TAIL_MS: u64 = 150;
/// Acknowledge input at least this often (in ms of audio).
const ACK_EVERY_MS: u64 = 200;
/// 16 kHz input kept for the pre-roll and the acoustic end-of-turn model (8 s).
const RECENT_SAMPLES: usize = ASR_SAMPLE_RATE as usize * 8;

/// What a chunk of input did.
#[derive(Debug, PartialEq)]
pub enum Heard {
    /// Input seqs `from..=to` were lost and filled with silence.
    Gap {
        /// First lost seq.
        from: u32,
        /// Last lost seq.
        to: u32,
    },
    /// The VAD's verdict on the audio.
    Vad(VadEvent),
    /// A run of audio was taken in (after its VAD events): turn-taking looks again.
    Audio,
}

/// The input side of a started call.
pub struct Ingest {
    input_rate: u32,
    channels: u16,
    /// The client commits turns: audio is kept from the last commit, not from an onset.
    manual: bool,
    sequencer: Sequencer,
    resampler: StreamResampler,
    /// The VAD over the 16 kHz stream.
    pub vad: Vad,
    /// The last couple of seconds of 16 kHz input, for the pre-roll.
    recent: VecDeque<f32>,
    /// Stream position (ms) of `recent[0]`.
    recent_start_ms: u64,
    /// The current user turn's audio (16 kHz) not yet cut into a piece, once speech
    /// started (or since the last commit in manual mode).
    pub utterance: Vec<f32>,
    /// Where `utterance` starts in the input stream, ms.
    pub utterance_start_ms: u64,
    /// Where the current turn's audio starts, ms: `utterance_start_ms` before any piece
    /// was cut from it (the final transcript spans the whole turn).
    pub turn_start_ms: u64,
    last_ack: Option<u32>,
    audio_since_ack_ms: u64,
}

impl Ingest {
    /// Input at `input_rate` with `channels` interleaved, judged by `detector`, its turns
    /// ending by `policy`.
    pub fn new(
        input_rate: u32,
        channels: u16,
        policy: TurnPolicy,
        detector: &SpeechDetector,
    ) -> Result<Self, ResampleError> {
        // Silero runs inline, on the worker that feeds the call's audio: 0.11-0.15 ms of CPU
        // per 32 ms window, at most one window per 20 ms chunk (0.5% of a core per call,
        // docs/vad.md). A hop to a blocking thread would cost about as much as the run and
        // make this pure state asynchronous.
        let mut vad = Vad::with_detector(VadConfig::default(), detector);
        vad.set_silence_ms(policy.vad_silence_ms());
        Ok(Self {
            input_rate,
            channels,
            manual: !policy.server_ends_turns(),
            sequencer: Sequencer::default()
                .with_max_gap_silence(input_rate as usize * channels as usize),
            resampler: StreamResampler::new(input_rate, ASR_SAMPLE_RATE)?,
            vad,
            recent: VecDeque::new(),
            recent_start_ms: 0,
            utterance: Vec::new(),
            utterance_start_ms: 0,
            turn_start_ms: 0,
            last_ack: None,
            audio_since_ack_ms: 0,
        })
    }

    /// Ends turns by `policy` from now on.
    pub fn set_policy(&mut self, policy: TurnPolicy) {
        self.vad.set_silence_ms(policy.vad_silence_ms());
        self.manual = !policy.server_ends_turns();
    }

    /// Interleaved channels of the input.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Milliseconds of audio in `samples` interleaved values.
    pub fn chunk_ms(&self, samples: usize) -> f64 {
        samples as f64 * 1000.0 / (self.input_rate as f64 * self.channels as f64)
    }

    /// The first seq a resuming client must send.
    pub fn next_seq(&self) -> u32 {
        self.sequencer.next_seq()
    }

    /// Takes in one sequenced chunk; returns what happened, in order.
    pub fn push(&mut self, seq: u32, samples: Vec<i16>, recorder: Option<&Recorder>) -> Vec<Heard> {
        let mut heard = Vec::new();
        for event in self.sequencer.push(seq, samples) {
            match event {
                SequencerEvent::Gap { from, to, .. } => heard.push(Heard::Gap { from, to }),
                SequencerEvent::Audio { samples, .. } => {
                    let frames = samples.len() / self.channels as usize;
                    self.audio_since_ack_ms += frames as u64 * 1000 / self.input_rate as u64;
                    let audio16 = self.take_in(&samples, recorder);
                    heard.extend(self.vad.process(&audio16).into_iter().map(Heard::Vad));
                    heard.push(Heard::Audio);
                }
            }
        }
        heard
    }

    /// The seq to acknowledge now whatever the audio since the last ack: everything that
    /// arrived, when input pauses or before the server speaks of the turn. `None` when it
    /// was acknowledged already.
    pub fn ack_all(&mut self) -> Option<u32> {
        let ack = self.sequencer.ack();
        if ack == self.last_ack {
            return None;
        }
        self.last_ack = ack;
        self.audio_since_ack_ms = 0;
        ack
    }

    /// The seq to acknowledge now, if an ack is due (at least every 200 ms of audio).
    pub fn ack_due(&mut self) -> Option<u32> {
        let ack = self.sequencer.ack();
        if ack == self.last_ack
            || (self.audio_since_ack_ms < ACK_EVERY_MS && self.last_ack.is_some())
        {
            return None;
        }
        self.last_ack = ack;
        self.audio_since_ack_ms = 0;
        ack
    }

    /// Appends sequenced input to the 16 kHz stream, the pre-roll and the utterance.
    fn take_in(&mut self, samples: &[i16], recorder: Option<&Recorder>) -> Vec<f32> {
        let channels = self.channels as usize;
        if let Some(r) = recorder {
            r.input(&downmix_i16(samples, channels));
        }
        let mono = i16_to_mono_f32(samples, channels);
        let mut out = Vec::with_capacity(mono.len() * 16_000 / self.input_rate as usize + 16);
        if let Err(e) = self.resampler.push(&mono, &mut out) {
            tracing::warn!(error = %e, "input resampling failed; chunk dropped");
            return Vec::new();
        }
        self.recent.extend(out.iter().copied());
        if self.recent.len() > RECENT_SAMPLES {
            let drop = self.recent.len() - RECENT_SAMPLES;
            self.recent.drain(..drop);
            self.recent_start_ms += drop as u64 * 1000 / ASR_SAMPLE_RATE as u64;
        }
        if self.manual || !self.utterance.is_empty() {
            self.utterance.extend_from_slice(&out);
        }
        out
    }

    /// The last `n` samples of 16 kHz input (fewer early in the call).
    pub fn recent_audio(&self, n: usize) -> Vec<f32> {
        let skip = self.recent.len().saturating_sub(n);
        self.recent.iter().skip(skip).copied().collect()
    }

    /// Speech began at `at_ms`: under server VAD the utterance restarts from the pre-roll.
    pub fn speech_started(&mut self, at_ms: u64) {
        if self.manual {
            return;
        }
        let from_ms = at_ms.saturating_sub(PREROLL_MS).max(self.recent_start_ms);
        let skip = ((from_ms - self.recent_start_ms) * ASR_SAMPLE_RATE as u64 / 1000) as usize;
        self.utterance = self.recent.iter().skip(skip).copied().collect();
        self.utterance_start_ms = from_ms;
        self.turn_start_ms = from_ms;
    }

    /// The utterance up to `end_ms` (+ a short tail), as whisper should hear it.
    pub fn cut(&self, end_ms: u64) -> Vec<f32> {
        self.utterance[..self.cut_len(end_ms)].to_vec()
    }

    fn cut_len(&self, end_ms: u64) -> usize {
        let keep_ms = (end_ms + TAIL_MS).saturating_sub(self.utterance_start_ms);
        let keep = (keep_ms * ASR_SAMPLE_RATE as u64 / 1000) as usize;
        keep.min(self.utterance.len())
    }

    /// Length of the utterance not yet cut into a piece, ms.
    pub fn uncut_ms(&self) -> u64 {
        self.utterance.len() as u64 * 1000 / ASR_SAMPLE_RATE as u64
    }

    /// Removes the utterance up to `end_ms` (+ the short tail) as a piece of the turn; the
    /// utterance goes on from there.
    pub fn take_piece(&mut self, end_ms: u64) -> Vec<f32> {
        let len = self.cut_len(end_ms);
        self.take_first(len)
    }

    /// Removes the utterance up to its quietest recent moment as a piece of the turn.
    pub fn take_quiet_piece(&mut self) -> Vec<f32> {
        let len = super::pieces::quiet_cut(&self.utterance);
        self.take_first(len)
    }

    fn take_first(&mut self, len: usize) -> Vec<f32> {
        let rest = self.utterance.split_off(len);
        self.utterance_start_ms += len as u64 * 1000 / ASR_SAMPLE_RATE as u64;
        std::mem::replace(&mut self.utterance, rest)
    }

    /// Manual commit: releases what the sequencer and resampler hold back, and takes the
    /// utterance with its span in the input (`None` when nothing was said since the last).
    pub fn commit(&mut self, recorder: Option<&Recorder>) -> Option<(Vec<f32>, u64, u64)> {
        for e in self.sequencer.flush() {
            if let SequencerEvent::Audio { samples, .. } = e {
                self.take_in(&samples, recorder);
            }
        }
        let mut tail = Vec::new();
        let _ = self.resampler.flush(&mut tail);
        self.utterance.extend_from_slice(&tail);
        if self.utterance.is_empty() {
            return None;
        }
        let audio = std::mem::take(&mut self.utterance);
        let start_ms = self.turn_start_ms;
        let end_ms = self.vad.position_ms();
        self.utterance_start_ms = end_ms;
        self.turn_start_ms = end_ms;
        Some((audio, start_ms, end_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXED: TurnPolicy = TurnPolicy::Fixed { silence_ms: 500 };

    fn chunk(ms: usize, value: i16) -> Vec<i16> {
        vec![value; 16 * ms]
    }

    #[test]
    fn acks_come_at_the_first_chunk_then_every_200_ms_of_audio() {
        let mut ingest = Ingest::new(16_000, 1, FIXED, &SpeechDetector::Energy).unwrap();
        let mut acked = Vec::new();
        for seq in 0..25 {
            ingest.push(seq, chunk(20, 0), None);
            acked.extend(ingest.ack_due());
        }
        assert_eq!(acked, vec![0, 10, 20]);
    }

    #[test]
    fn a_lost_chunk_is_reported_and_not_acknowledged_past() {
        let mut ingest = Ingest::new(16_000, 1, FIXED, &SpeechDetector::Energy).unwrap();
        ingest.push(0, chunk(20, 0), None);
        assert_eq!(ingest.ack_due(), Some(0));
        let heard = ingest.push(2, chunk(20, 0), None);
        assert!(
            !heard.iter().any(|h| matches!(h, Heard::Gap { .. })),
            "{heard:?}"
        );
        assert_eq!(ingest.next_seq(), 1);
    }

    #[test]
    fn manual_mode_keeps_everything_until_commit() {
        let mut ingest =
            Ingest::new(16_000, 1, TurnPolicy::Manual, &SpeechDetector::Energy).unwrap();
        assert!(ingest.commit(None).is_none());
        for seq in 0..10 {
            ingest.push(seq, chunk(20, 100), None);
        }
        let (audio, start_ms, _end_ms) = ingest.commit(None).expect("audio");
        assert!(audio.len() >= 16 * 150, "{}", audio.len());
        assert_eq!(start_ms, 0);
        assert!(ingest.commit(None).is_none());
    }

    #[test]
    fn the_cut_keeps_a_short_tail_and_no_more() {
        let mut ingest = Ingest::new(16_000, 1, FIXED, &SpeechDetector::Energy).unwrap();
        ingest.utterance = vec![0.0; 16 * 2000];
        ingest.utterance_start_ms = 1000;
        assert_eq!(ingest.cut(2000).len(), 16 * (1000 + TAIL_MS as usize));
        assert_eq!(ingest.cut(9000).len(), 16 * 2000);
    }

    #[test]
    fn a_piece_leaves_the_rest_of_the_utterance_in_place() {
        let mut ingest = Ingest::new(16_000, 1, FIXED, &SpeechDetector::Energy).unwrap();
        ingest.utterance = (0..16 * 3000).map(|i| i as f32).collect();
        ingest.utterance_start_ms = 1000;
        ingest.turn_start_ms = 1000;
        let piece = ingest.take_piece(2000);
        assert_eq!(piece.len(), 16 * (1000 + TAIL_MS as usize));
        assert_eq!(ingest.utterance_start_ms, 2000 + TAIL_MS);
        assert_eq!(
            ingest.turn_start_ms, 1000,
            "the turn still starts where it did"
        );
        assert_eq!(ingest.utterance[0], piece.len() as f32);
        assert_eq!(ingest.uncut_ms(), 3000 - 1000 - TAIL_MS);
    }
}
