//! Silero VAD v5 over ONNX Runtime: the probability that each 32 ms window of a 16 kHz
//! stream is speech, with the model's recurrent state carried from window to window.
//!
//! The model is stateless between runs: its recurrent state and the 64 samples of context
//! from the previous window are inputs and outputs, so they live in each stream
//! ([`SileroStream`]) and any session can serve any stream. The loaded model
//! ([`SileroModel`]) keeps a small pool of sessions for all calls: a run needs exclusive use
//! of its session, and one session per call would cost a model's worth of memory each.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ort::session::Session;
use ort::value::TensorRef;

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

/// Sessions kept idle in the pool: enough for the runs that can happen at once (one per
/// thread feeding audio); more are built on demand and kept only up to this many.
const MAX_IDLE_SESSIONS: usize = 16;

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
            // foreseen. Build one (tens of ms, once) rather than wait.
            None => crate::onnx::session(&self.pool.path)?,
        };
        let result = run_session(&mut session, input, state);
        let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_SESSIONS {
            idle.push(session);
        }
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
