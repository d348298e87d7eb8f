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
use super::vad::{FRAME_SAMPLES, FrameScore};

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

/// Cuts a stream into 10 ms frames and measures each one's energy in dBFS; a partial frame
/// waits for the next call.
#[derive(Debug, Clone, Default)]
pub struct FrameEnergies {
    remainder: Vec<f32>,
}

impl FrameEnergies {
    /// Appends the energy of every frame `samples` complete.
    pub fn push(&mut self, samples: &[f32], energies: &mut Vec<f32>) {
        let mut input = samples;
        if !self.remainder.is_empty() {
            let take = (FRAME_SAMPLES - self.remainder.len()).min(input.len());
            self.remainder.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.remainder.len() < FRAME_SAMPLES {
                return;
            }
            energies.push(rms_dbfs(&self.remainder));
            self.remainder.clear();
        }
        let mut chunks = input.chunks_exact(FRAME_SAMPLES);
        energies.extend((&mut chunks).map(rms_dbfs));
        self.remainder.extend_from_slice(chunks.remainder());
    }
}

/// One stream's energy detector: the frame being filled and the noise floor.
#[derive(Debug, Clone)]
pub struct EnergyFrames {
    /// How far above the noise floor a frame must be to be active.
    threshold_db_above_floor: f32,
    /// Absolute level a frame must exceed to be active.
    min_threshold_dbfs: f32,
    framer: FrameEnergies,
    /// Scratch for the energies of one `push`.
    energies: Vec<f32>,
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
            framer: FrameEnergies::default(),
            energies: Vec::new(),
            floor: None,
            recent: VecDeque::with_capacity(STATIONARY_FRAMES),
        }
    }

    /// Takes 16 kHz samples and appends a score for every frame they complete: speech 1.0
    /// when the frame is active, 0.0 when not, and always loud (loudness is all this
    /// detector hears).
    pub fn push(&mut self, samples: &[f32], frames: &mut Vec<FrameScore>) {
        let mut energies = std::mem::take(&mut self.energies);
        energies.clear();
        self.framer.push(samples, &mut energies);
        for &energy in &energies {
            let speech = if self.classify(energy) { 1.0 } else { 0.0 };
            frames.push(FrameScore { speech, loud: true });
        }
        self.energies = energies;
    }

    /// The current noise floor estimate in dBFS, for diagnostics.
    pub fn noise_floor_dbfs(&self) -> Option<f32> {
        self.floor
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
