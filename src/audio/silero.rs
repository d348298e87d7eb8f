//! Silero VAD v5 over ONNX Runtime: the probability that each 32 ms window of a 16 kHz
//! stream is speech, with the model's recurrent state carried from window to window.
//!
//! The model is stateless between runs: its recurrent state and the 64 samples of context
//! from the previous window are inputs and outputs, so they live in each stream
//! ([`SileroStream`]) and any session can serve any stream. The loaded model
//! ([`SileroModel`]) keeps a small pool of sessions for all calls: a run needs exclusive use
//! of its session, and one session per call would cost a model's worth of memory each.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ort::session::Session;
use ort::value::TensorRef;

use super::energy::FrameEnergies;
use super::level::SILENCE_DBFS;
use super::vad::{FRAME_SAMPLES, FrameScore};
use crate::onnx::OnnxError;

/// The model scripts/fetch-models installs (PyPI `silero-vad` 6.2.3,
/// `silero_vad/data/silero_vad.onnx`), relative to the working directory.
pub const DEFAULT_MODEL: &str = "models/silero_vad.onnx";

/// Samples the model judges per run at 16 kHz (32 ms).
pub const WINDOW_SAMPLES: usize = 512;

/// Samples of the previous window the model sees in front of each window. Leaving them out
/// (as some wrappers do) shifts onsets and offsets late.
pub const CONTEXT_SAMPLES: usize = 64;

/// The recurrent state: `[2, batch 1, 128]`.
const STATE_LEN: usize = 2 * 128;

/// The loaded Silero model, shared by every stream (cheap to clone).
#[derive(Clone)]
pub struct SileroModel {
    pool: Arc<Pool>,
}

struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Session>>,
}

impl std::fmt::Debug for SileroModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SileroModel")
            .field("path", &self.pool.path)
            .finish_non_exhaustive()
    }
}

impl SileroModel {
    /// Loads the model at `path` and builds `sessions` sessions up front (at least one, which
    /// also checks the file). File I/O and CPU work: call it at start, off the tokio workers.
    pub fn load(path: &Path, sessions: usize) -> Result<Self, OnnxError> {
        let idle = (0..sessions.max(1))
            .map(|_| crate::onnx::session(path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            pool: Arc::new(Pool {
                path: path.to_path_buf(),
                idle: Mutex::new(idle),
            }),
        })
    }

    /// A new stream at its start (zero state, zero context).
    pub fn stream(&self) -> SileroStream {
        SileroStream {
            model: self.clone(),
            state: [0.0; STATE_LEN],
            input: vec![0.0; CONTEXT_SAMPLES],
        }
    }

    /// Runs one window: `input` is the context followed by the window, `state` is replaced
    /// by the next one. Returns the speech probability.
    fn run(&self, input: &[f32], state: &mut [f32; STATE_LEN]) -> Result<f32, OnnxError> {
        let taken = self
            .pool
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        let mut session = match taken {
            Some(s) => s,
            // Every pooled session is busy: more threads feed audio at once than were
            // foreseen. Build one (about 50-100 ms, once) rather than wait.
            None => crate::onnx::session(&self.pool.path)?,
        };
        let result = run_session(&mut session, input, state);
        // Kept: the pool grows to the most runs ever at once (at most one per thread that
        // feeds audio), about 10 MB a session.
        self.pool
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(session);
        result
    }
}

fn run_session(
    session: &mut Session,
    input: &[f32],
    state: &mut [f32; STATE_LEN],
) -> Result<f32, OnnxError> {
    let sr = [i64::from(super::vad::SAMPLE_RATE)];
    let outputs = session
        .run(ort::inputs![
            "input" => TensorRef::from_array_view(([1usize, input.len()], input)).map_err(OnnxError::run)?,
            "state" => TensorRef::from_array_view(([2usize, 1, 128], &state[..])).map_err(OnnxError::run)?,
            "sr" => TensorRef::from_array_view(([0usize; 0], &sr[..])).map_err(OnnxError::run)?,
        ])
        .map_err(OnnxError::run)?;
    let (_, probability) = outputs["output"]
        .try_extract_tensor::<f32>()
        .map_err(OnnxError::run)?;
    let (_, next) = outputs["stateN"]
        .try_extract_tensor::<f32>()
        .map_err(OnnxError::run)?;
    if next.len() != STATE_LEN || probability.is_empty() {
        return Err(OnnxError::Run(format!(
            "unexpected output sizes: state {}, probability {}",
            next.len(),
            probability.len()
        )));
    }
    state.copy_from_slice(next);
    Ok(probability[0])
}

/// One stream's Silero state: the model's recurrent state, the context, and the samples of
/// the window being filled.
#[derive(Clone)]
pub struct SileroStream {
    model: SileroModel,
    state: [f32; STATE_LEN],
    /// The context (the previous window's last 64 samples) followed by the samples of the
    /// current window so far.
    input: Vec<f32>,
}

impl std::fmt::Debug for SileroStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SileroStream")
            .field("buffered", &(self.input.len() - CONTEXT_SAMPLES))
            .finish_non_exhaustive()
    }
}

impl SileroStream {
    /// Takes 16 kHz samples in -1..1 and appends the speech probability of every window they
    /// complete. A failed run (not expected once the model loaded) is reported and the
    /// stream starts over. Non-finite samples count as silence.
    pub fn push(&mut self, samples: &[f32], probabilities: &mut Vec<f32>) {
        for &s in samples {
            self.input.push(if s.is_finite() { s } else { 0.0 });
            if self.input.len() == CONTEXT_SAMPLES + WINDOW_SAMPLES {
                probabilities.push(self.run_window());
            }
        }
    }

    fn run_window(&mut self) -> f32 {
        let probability = match self.model.run(&self.input, &mut self.state) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "Silero VAD run failed; its state restarts");
                self.state = [0.0; STATE_LEN];
                0.0
            }
        };
        self.input.drain(..WINDOW_SAMPLES);
        probability
    }

    /// Back to the start of a stream: zero state and context, nothing buffered.
    pub fn reset(&mut self) {
        self.state = [0.0; STATE_LEN];
        self.input.clear();
        self.input.resize(CONTEXT_SAMPLES, 0.0);
    }
}

/// Fraction of the distance to a quieter frame the background moves per frame (fast: a
/// quieter frame is proof the background is at most that loud).
const BACKGROUND_FALL: f32 = 0.1;

/// Fraction of the distance to a louder background frame (not loud, or not speech) the
/// background moves per frame: a time constant of about 0.5 s.
const BACKGROUND_RISE: f32 = 0.02;

/// Most the background rises per frame on loud speech frames (5 dB/s), so talkers who start
/// behind the speaker after a quiet spell stop counting as loud within seconds, while the
/// speaker's own pauses keep pulling the background back down.
const BACKGROUND_CREEP_DB: f32 = 0.05;

/// Lowest background level: about a quiet microphone's own noise. Digital silence would
/// otherwise teach a background 30 dB below any real one, and talkers who start after it
/// would stay loud until the creep had covered the whole distance.
const BACKGROUND_MIN_DBFS: f32 = -70.0;

/// One stream's Silero frame scores for [`super::vad::Vad`]: each 10 ms frame gets the
/// probability of the window it ends in, and is *loud* when its energy is
/// `loud_margin_db` above the background level. Silero hears babble as speech, whatever
/// its level; loudness is what tells the speaker from the room.
#[derive(Debug, Clone)]
pub struct SileroFrames {
    stream: SileroStream,
    framer: FrameEnergies,
    /// Frame energies (dBFS) waiting for the window that scores them.
    energies: VecDeque<f32>,
    /// Scratch for the energies and probabilities of one `push`.
    scratch: (Vec<f32>, Vec<f32>),
    /// Windows scored so far.
    windows: u64,
    /// Frames scored so far.
    frames: u64,
    /// Background level in dBFS; `None` until the first frame.
    background: Option<f32>,
    /// Below this probability a frame is not speech, and may teach the background.
    not_speech: f32,
    /// How far above the background a loud frame is.
    loud_margin_db: f32,
}

impl SileroFrames {
    /// Scores for a new stream of `model`: frames under `not_speech` count as background,
    /// frames `loud_margin_db` over the background are loud.
    pub fn new(model: &SileroModel, not_speech: f32, loud_margin_db: f32) -> Self {
        Self {
            stream: model.stream(),
            framer: FrameEnergies::default(),
            energies: VecDeque::new(),
            scratch: (Vec::new(), Vec::new()),
            windows: 0,
            frames: 0,
            background: None,
            not_speech,
            loud_margin_db,
        }
    }

    /// Takes 16 kHz samples and appends the score of every frame whose window they
    /// complete.
    pub fn push(&mut self, samples: &[f32], scores: &mut Vec<FrameScore>) {
        let (mut energies, mut probabilities) = std::mem::take(&mut self.scratch);
        energies.clear();
        probabilities.clear();
        self.framer.push(samples, &mut energies);
        self.energies.extend(energies.iter().copied());
        self.stream.push(samples, &mut probabilities);
        for &p in &probabilities {
            self.windows += 1;
            let due = frames_within(self.windows);
            while self.frames < due {
                self.frames += 1;
                // A window ends after every frame it scores, so their energies are here.
                let energy = self.energies.pop_front().unwrap_or(SILENCE_DBFS);
                let loud = self.is_loud(energy, p);
                scores.push(FrameScore { speech: p, loud });
            }
        }
        self.scratch = (energies, probabilities);
    }

    /// Whether a frame stands above the background, updating the background on the way.
    fn is_loud(&mut self, energy: f32, probability: f32) -> bool {
        let background = *self
            .background
            .get_or_insert(energy.max(BACKGROUND_MIN_DBFS));
        let loud = energy >= background + self.loud_margin_db;
        let step = if energy < background {
            BACKGROUND_FALL * (energy - background)
        } else if !loud || probability < self.not_speech {
            BACKGROUND_RISE * (energy - background)
        } else {
            (BACKGROUND_RISE * (energy - background)).min(BACKGROUND_CREEP_DB)
        };
        self.background = Some((background + step).max(BACKGROUND_MIN_DBFS));
        loud
    }
}

/// Frames that end within the first `windows` windows (3 or 4 per window: 16 frames in 5
/// windows).
fn frames_within(windows: u64) -> u64 {
    windows * WINDOW_SAMPLES as u64 / FRAME_SAMPLES as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::test_signals::noise;

    /// The real model, or a failure that says how to get it (never a skip).
    pub(crate) fn model() -> SileroModel {
        SileroModel::load(Path::new(DEFAULT_MODEL), 1)
            .unwrap_or_else(|e| panic!("the Silero tests need the model: {e}"))
    }

    fn probabilities(stream: &mut SileroStream, audio: &[f32], chunk: usize) -> Vec<f32> {
        let mut out = Vec::new();
        for c in audio.chunks(chunk) {
            stream.push(c, &mut out);
        }
        out
    }

    #[test]
    fn silence_is_not_speech() {
        let mut stream = model().stream();
        let p = probabilities(&mut stream, &vec![0.0; 16_000], 320);
        assert_eq!(p.len(), 16_000 / WINDOW_SAMPLES);
        assert!(p.iter().all(|&p| p < 0.1), "{p:?}");
    }

    #[test]
    fn chunking_does_not_change_the_probabilities() {
        let audio: Vec<f32> = noise(16_000, 3).iter().map(|x| x * 0.05).collect();
        let model = model();
        let whole = probabilities(&mut model.stream(), &audio, audio.len());
        let pieces = probabilities(&mut model.stream(), &audio, 37);
        assert_eq!(whole, pieces);
    }

    #[test]
    fn windows_score_the_frames_that_end_in_them() {
        let per_window: Vec<u64> = (1..=5)
            .map(|w| frames_within(w) - frames_within(w - 1))
            .collect();
        assert_eq!(per_window, [3, 3, 3, 3, 4]);
        assert_eq!(
            frames_within(5) * FRAME_SAMPLES as u64,
            5 * WINDOW_SAMPLES as u64
        );
    }

    #[test]
    fn every_frame_is_scored_once_its_window_is_complete() {
        let mut frames = SileroFrames::new(&model(), 0.35, 11.0);
        let mut scores = Vec::new();
        frames.push(&vec![0.0; WINDOW_SAMPLES - 1], &mut scores);
        assert!(scores.is_empty());
        frames.push(&vec![0.0; 1 + 4 * WINDOW_SAMPLES], &mut scores);
        assert_eq!(scores.len(), 16);
    }

    #[test]
    fn the_background_follows_quiet_frames_and_loudness_is_measured_from_it() {
        let mut frames = SileroFrames::new(&model(), 0.35, 11.0);
        // Speech-like (probability 1) frames at -40 dBFS: the background settles there, so
        // they are not loud; a frame 12 dB over them is.
        for _ in 0..300 {
            frames.is_loud(-40.0, 1.0);
        }
        assert!(!frames.is_loud(-38.0, 1.0));
        assert!(frames.is_loud(-28.0, 1.0));
        // Loud speech raises the background at most 5 dB a second.
        let before = frames.background.expect("learnt");
        for _ in 0..100 {
            frames.is_loud(-10.0, 1.0);
        }
        let rise = frames.background.expect("learnt") - before;
        assert!(rise <= 5.0 + 1e-3, "{rise}");
        // One quiet frame pulls it down fast.
        frames.is_loud(-60.0, 0.0);
        assert!(frames.background.expect("learnt") < before + rise - 2.0);
    }

    #[test]
    fn reset_starts_the_stream_over() {
        let audio: Vec<f32> = noise(8_000, 5).iter().map(|x| x * 0.1).collect();
        let model = model();
        let mut stream = model.stream();
        let first = probabilities(&mut stream, &audio, 512);
        stream.push(&audio[..100], &mut Vec::new());
        stream.reset();
        assert_eq!(probabilities(&mut stream, &audio, 512), first);
    }
}
