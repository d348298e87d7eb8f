//! When each chunk leaves: the chunk arithmetic (fractional chunk lengths never drift),
//! the ack window of `fast`, and the schedule of one call's stream (the clip at microphone
//! pace, then silence until the turns are answered).

use std::time::Duration;

use tokio::time::Instant;

use super::run::SpeechBounds;
use crate::audio::wav::Interleaved;

/// With `fast`, how many input chunks may be sent and not yet acknowledged.
pub const MAX_UNACKED_CHUNKS: u32 = 64;

/// Frame (per-channel sample) where chunk `i` ends, exclusive, for chunks of `chunk_ms` at
/// `rate`. Computed from the start of the stream so fractional chunk lengths (e.g. 20 ms at
/// 11,025 Hz = 220.5 frames) never drift.
pub fn chunk_end(i: u64, rate: u32, chunk_ms: u32) -> u64 {
    (i + 1) * rate as u64 * chunk_ms as u64 / 1000
}

/// Number of chunks needed for `frames` frames.
pub fn chunk_count(frames: u64, rate: u32, chunk_ms: u32) -> u64 {
    if frames == 0 {
        return 0;
    }
    chunk_index_of(frames - 1, rate, chunk_ms) + 1
}

/// The chunk containing frame `frame`: the `i` with `chunk_end(i - 1) <= frame < chunk_end(i)`.
pub fn chunk_index_of(frame: u64, rate: u32, chunk_ms: u32) -> u64 {
    let per = rate as u64 * chunk_ms as u64; // frames per chunk, times 1000
    ((frame + 1) * 1000).div_ceil(per) - 1
}

/// Time from the start of the stream at which `frames` frames have been captured: a
/// chunk is sent at the offset of its end, like a microphone delivers it.
pub fn frames_to_duration(frames: u64, rate: u32) -> Duration {
    Duration::from_nanos((frames as u128 * 1_000_000_000 / rate as u128) as u64)
}

/// Chunks sent and not acknowledged: `next_seq` is the seq of the next chunk, `acked` the
/// highest acknowledged.
pub fn unacked(next_seq: u32, acked: Option<u32>) -> u32 {
    next_seq.saturating_sub(acked.map_or(0, |a| a + 1))
}

/// One clip being streamed, cut into chunks, with the chunks holding its speech bounds.
pub(super) struct Clip<'a> {
    audio: &'a Interleaved,
    chunk_ms: u32,
    frames: u64,
    n_chunks: u64,
    /// The chunk holding the first frame of speech.
    pub(super) onset_chunk: Option<u64>,
    /// The chunk holding the last frame of speech.
    pub(super) eos_chunk: Option<u64>,
}

impl<'a> Clip<'a> {
    /// The clip in chunks, its speech where `speech` says or, without it, where the
    /// signal shows it.
    pub(super) fn new(audio: &'a Interleaved, chunk_ms: u32, speech: Option<SpeechBounds>) -> Self {
        let bounds =
            speech.or_else(|| crate::audio::level::speech_bounds(&audio.to_mono_f32(), audio.rate));
        let frames = audio.frames() as u64;
        let chunk_of = |f: usize| chunk_index_of(f as u64, audio.rate, chunk_ms);
        Self {
            audio,
            chunk_ms,
            frames,
            n_chunks: chunk_count(frames, audio.rate, chunk_ms),
            onset_chunk: bounds.map(|(start, _)| chunk_of(start)),
            eos_chunk: bounds
                .filter(|&(_, end)| end > 0)
                .map(|(_, end)| chunk_of(end - 1)),
        }
    }

    /// Frame where chunk `i` ends, within the clip.
    fn end_of(&self, i: u64) -> u64 {
        chunk_end(i, self.audio.rate, self.chunk_ms).min(self.frames)
    }

    /// The interleaved samples of chunk `i`.
    pub(super) fn chunk(&self, i: u64) -> &'a [i16] {
        let ch = self.audio.channels as usize;
        let start = if i == 0 { 0 } else { self.end_of(i - 1) } as usize;
        let end = self.end_of(i) as usize;
        &self.audio.samples[start * ch..end * ch]
    }
}

/// Which part of the stream is going out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// A clip (the file, or the barge-in), chunk by chunk.
    Streaming,
    /// Silence after it, while the server answers.
    Tail,
}

/// The schedule of one call's stream: where it is in the clip, when the next chunk is due,
/// and since when the call has made no progress.
pub(super) struct Pacer<'a> {
    pub(super) clip: Clip<'a>,
    pub(super) phase: Phase,
    /// The next chunk of the clip to send.
    pub(super) next_chunk: u64,
    /// When chunk 0 of the clip was captured, shifted by any time the call was away.
    t0: Instant,
    tail_start: Instant,
    tail_chunks: u32,
    /// The last chunk sent or ack received while streaming.
    last_progress: Instant,
    /// One chunk of silence in the clip's format.
    pub(super) silence: Vec<i16>,
    rate: u32,
    chunk_ms: u32,
}

impl<'a> Pacer<'a> {
    /// Starts streaming `audio` now; a clip with no chunks goes straight to the tail.
    pub(super) fn new(audio: &'a Interleaved, chunk_ms: u32, speech: Option<SpeechBounds>) -> Self {
        let now = Instant::now();
        let frames_per_chunk = (audio.rate as usize * chunk_ms as usize / 1000).max(1);
        let clip = Clip::new(audio, chunk_ms, speech);
        let phase = if clip.n_chunks == 0 {
            Phase::Tail
        } else {
            Phase::Streaming
        };
        Self {
            clip,
            phase,
            next_chunk: 0,
            t0: now,
            tail_start: now,
            tail_chunks: 0,
            last_progress: now,
            silence: vec![0; frames_per_chunk * audio.channels as usize],
            rate: audio.rate,
            chunk_ms,
        }
    }

    /// When the next chunk may leave: at its capture time (real-time pace), now while the
    /// ack window has room (`fast`), never while it is full.
    pub(super) fn send_at(&self, fast: bool, window_open: bool) -> Option<Instant> {
        match self.phase {
            Phase::Streaming if fast => window_open.then(Instant::now),
            Phase::Streaming => {
                let end = self.clip.end_of(self.next_chunk);
                Some(self.t0 + frames_to_duration(end, self.rate))
            }
            Phase::Tail => Some(
                self.tail_start
                    + Duration::from_millis(self.chunk_ms as u64) * (self.tail_chunks + 1),
            ),
        }
    }

    /// When the call is given up: `limit` without progress while streaming, `limit` after
    /// the clip in the tail.
    pub(super) fn give_up(&self, limit: Duration) -> Instant {
        match self.phase {
            Phase::Streaming => self.last_progress + limit,
            Phase::Tail => self.tail_start + limit,
        }
    }

    /// Something moved (an ack, a resumed link): the streaming limit counts from now.
    pub(super) fn progressed(&mut self) {
        self.last_progress = Instant::now();
    }

    /// The clip's chunk `next_chunk` went out; returns true when it was the clip's last and
    /// the tail began.
    pub(super) fn chunk_sent(&mut self) -> bool {
        self.next_chunk += 1;
        self.last_progress = Instant::now();
        if self.next_chunk < self.clip.n_chunks {
            return false;
        }
        self.phase = Phase::Tail;
        self.tail_start = Instant::now();
        self.tail_chunks = 0;
        true
    }

    /// A tail chunk of silence went out.
    pub(super) fn silence_sent(&mut self) {
        self.tail_chunks += 1;
    }

    /// The call was away (resuming) for `away`: the outage is not the clip's time, so the
    /// pace goes on from here.
    pub(super) fn shift(&mut self, away: Duration) {
        self.t0 += away;
        self.tail_start += away;
        self.progressed();
    }

    /// Streams another clip from now (the barge-in), like the first.
    pub(super) fn start_clip(&mut self, audio: &'a Interleaved) {
        self.clip = Clip::new(audio, self.chunk_ms, None);
        self.t0 = Instant::now();
        self.next_chunk = 0;
        self.last_progress = self.t0;
        self.phase = Phase::Streaming;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_math_is_consistent_and_does_not_drift() {
        for rate in [8000, 11025, 16000, 22050, 44100, 48000] {
            for chunk_ms in [10, 20, 30, 1000] {
                let mut prev = 0;
                for i in 0..300u64 {
                    let end = chunk_end(i, rate, chunk_ms);
                    assert!(end > prev || (i == 0 && end > 0));
                    for f in prev..end {
                        assert_eq!(
                            chunk_index_of(f, rate, chunk_ms),
                            i,
                            "rate {rate} {chunk_ms} ms frame {f}"
                        );
                    }
                    prev = end;
                }
                // After N chunks exactly N * chunk_ms of audio, to the frame.
                assert_eq!(
                    chunk_end(999, rate, chunk_ms),
                    1000 * rate as u64 * chunk_ms as u64 / 1000
                );
            }
        }
        assert_eq!(chunk_end(0, 11025, 20), 220);
        assert_eq!(chunk_end(1, 11025, 20), 441);
        assert_eq!(chunk_count(0, 16000, 20), 0);
        assert_eq!(chunk_count(1, 16000, 20), 1);
        assert_eq!(chunk_count(320, 16000, 20), 1);
        assert_eq!(chunk_count(321, 16000, 20), 2);
        assert_eq!(chunk_count(44100, 44100, 20), 50);
        assert_eq!(frames_to_duration(44100, 44100), Duration::from_secs(1));
        assert_eq!(frames_to_duration(441, 44100), Duration::from_millis(10));
        assert_eq!(
            frames_to_duration(220, 11025),
            Duration::from_nanos(19_954_648)
        );
    }

    #[test]
    fn unacked_window() {
        assert_eq!(unacked(0, None), 0);
        assert_eq!(unacked(64, None), 64);
        assert_eq!(unacked(64, Some(63)), 0);
        assert_eq!(unacked(100, Some(40)), 59);
        // A stale ack beyond what was sent never underflows.
        assert_eq!(unacked(5, Some(9)), 0);
    }

    #[test]
    fn clip_chunks_cover_the_file_once() {
        // 0.1 s of stereo at 11,025 Hz in 20 ms chunks: 5 chunks of 220 or 221 frames.
        let audio = Interleaved {
            samples: (0..1102 * 2).map(|i| i as i16).collect(),
            rate: 11025,
            channels: 2,
        };
        let clip = Clip::new(&audio, 20, None);
        assert_eq!(clip.n_chunks, 5);
        let joined: Vec<i16> = (0..clip.n_chunks)
            .flat_map(|i| clip.chunk(i).to_vec())
            .collect();
        assert_eq!(joined, audio.samples);
        assert_eq!(clip.chunk(1).len(), 221 * 2);
    }

    #[test]
    fn pacer_keeps_microphone_time_across_an_outage() {
        let audio = Interleaved {
            samples: vec![0; 1600],
            rate: 16000,
            channels: 1,
        };
        let ms = Duration::from_millis;
        let mut p = Pacer::new(&audio, 20, None);
        let start = p.t0;
        assert_eq!(p.send_at(false, true), Some(start + ms(20)));
        assert!(!p.chunk_sent());
        p.shift(ms(500));
        // Chunk 1 is due 40 ms of file time after the (shifted) start.
        assert_eq!(p.send_at(false, true), Some(start + ms(540)));
        assert_eq!(
            p.send_at(true, false),
            None,
            "a full window holds fast sends"
        );
        assert_eq!(p.give_up(ms(100)), p.last_progress + ms(100));
        for _ in 1..4 {
            assert!(!p.chunk_sent());
        }
        assert!(p.chunk_sent(), "5 chunks of 20 ms in 0.1 s");
        assert_eq!(p.phase, Phase::Tail);
        let tail = p.tail_start;
        assert_eq!(p.send_at(false, true), Some(tail + ms(20)));
        p.silence_sent();
        assert_eq!(p.send_at(false, true), Some(tail + ms(40)));
        assert_eq!(
            p.give_up(Duration::from_secs(15)),
            tail + Duration::from_secs(15)
        );
        assert_eq!(p.silence.len(), 320);
        // The barge-in clip starts over at chunk 0, streaming.
        p.start_clip(&audio);
        assert_eq!((p.phase, p.next_chunk), (Phase::Streaming, 0));
        assert_eq!(p.send_at(false, true), Some(p.t0 + ms(20)));
    }
}
