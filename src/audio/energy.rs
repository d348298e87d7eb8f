//! The adaptive energy detector: whether each 10 ms frame of a 16 kHz stream is louder than
//! its background, for [`super::vad::Vad`].
//!
//! # How it decides
//! - Each frame's energy is its RMS level in dBFS (0 dBFS = full-scale square wave, digital
//!   silence = -100 dBFS).
//! - A frame is *active* when its energy exceeds
//!   `max(noise_floor + threshold_db_above_floor, min_threshold_dbfs)`.
//! - The noise floor starts at the first frame's energy (a call's input starts with
//!   background, not speech; if it does start mid-speech the floor falls to the real
//!   background at the first pause and detection starts with the next word). Inactive frames
//!   pull it down quickly and up slowly, so a door slam does not deafen the detector.
//! - Recovery from a wrong floor: when every frame of the last 2 s was active and their
//!   energies stayed within 8 dB of each other, that is stationary noise (speech always has
//!   dips), so the floor jumps to it. This is what stops a false detection that began when
//!   the floor was learnt on digital silence and a noisy microphone then opened; the cost is
//!   that a perfectly steady sound over 2 s (a long hum) ends the turn.

use std::collections::VecDeque;

use super::level::rms_dbfs;
use super::vad::FRAME_SAMPLES;

/// Fraction of the distance to a quieter frame the floor moves per frame: fast, because a
/// quieter frame is proof the background is at most that loud.
const FLOOR_FALL: f32 = 0.5;

/// Fraction of the distance to a louder inactive frame the floor moves per frame: a time
/// constant of about 2 s, so speech tails below the threshold barely move it.
const FLOOR_RISE: f32 = 0.005;

/// Frames of history for the stationary-noise check (2 s).
const STATIONARY_FRAMES: usize = 200;

/// Largest energy range over the history that still counts as stationary noise.
const STATIONARY_RANGE_DB: f32 = 8.0;

/// One stream's energy detector: the frame being filled and the noise floor.
#[derive(Debug, Clone)]
pub struct EnergyFrames {
    /// How far above the noise floor a frame must be to be active.
    threshold_db_above_floor: f32,
    /// Absolute level a frame must exceed to be active.
    min_threshold_dbfs: f32,
    /// Samples of an incomplete frame, waiting for the next `push`.
    remainder: Vec<f32>,
    /// Background level in dBFS; `None` until the first frame.
    floor: Option<f32>,
    /// Recent frame energies, for the stationary-noise check.
    recent: VecDeque<f32>,
}

impl EnergyFrames {
    /// A detector at the start of a stream with these thresholds (see the module docs).
    pub fn new(threshold_db_above_floor: f32, min_threshold_dbfs: f32) -> Self {
        Self {
            threshold_db_above_floor,
            min_threshold_dbfs,
            remainder: Vec::with_capacity(FRAME_SAMPLES),
            floor: None,
            recent: VecDeque::with_capacity(STATIONARY_FRAMES),
        }
    }

    /// Takes 16 kHz samples and appends, for every frame they complete, 1.0 when the frame
    /// is active and 0.0 when not; a partial frame waits for the next call.
    pub fn push(&mut self, samples: &[f32], frames: &mut Vec<f32>) {
        let mut input = samples;
        if !self.remainder.is_empty() {
            let take = (FRAME_SAMPLES - self.remainder.len()).min(input.len());
            self.remainder.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.remainder.len() < FRAME_SAMPLES {
                return;
            }
            let energy = rms_dbfs(&self.remainder);
            self.remainder.clear();
            frames.push(self.score(energy));
        }
        let mut chunks = input.chunks_exact(FRAME_SAMPLES);
        for frame in &mut chunks {
            frames.push(self.score(rms_dbfs(frame)));
        }
        self.remainder.extend_from_slice(chunks.remainder());
    }

    /// The current noise floor estimate in dBFS, for diagnostics.
    pub fn noise_floor_dbfs(&self) -> Option<f32> {
        self.floor
    }

    fn score(&mut self, energy: f32) -> f32 {
        if self.classify(energy) { 1.0 } else { 0.0 }
    }

    /// Decides whether a frame is active, adapting the noise floor on the way.
    fn classify(&mut self, energy: f32) -> bool {
        let floor = *self.floor.get_or_insert(energy);
        let above = self.threshold_db_above_floor;

        if self.recent.len() == STATIONARY_FRAMES {
            self.recent.pop_front();
        }
        self.recent.push_back(energy);
        let floor = if self.recent.len() == STATIONARY_FRAMES {
            let (min, max) = self
                .recent
                .iter()
                .fold((f32::MAX, f32::MIN), |(lo, hi), &e| (lo.min(e), hi.max(e)));
            if min > floor + above && max - min < STATIONARY_RANGE_DB {
                min
            } else {
                floor
            }
        } else {
            floor
        };

        let threshold = (floor + above).max(self.min_threshold_dbfs);
        let active = energy > threshold;
        let floor = if active {
            floor
        } else if energy < floor {
            floor + FLOOR_FALL * (energy - floor)
        } else {
            floor + FLOOR_RISE * (energy - floor)
        };
        self.floor = Some(floor);
        active
    }
}
