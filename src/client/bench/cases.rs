//! `callgate bench --case`: interview fixtures that measure turn-taking the way an
//! interviewer hears it (issue 13). Each case is a folder of generated answers under the
//! corpus folder, `DIR/<case>/`, with a manifest that records how each file was made:
//!
//! - `short`: complete short answers, from "Yes." to sentences whose speaker pauses
//!   300-600 ms at a comma.
//! - `pauses`: answers with a 0.7-1.5 s thinking pause mid-clause, after a function word
//!   or a filler ("I was responsible for ... the billing service").
//! - `long`: 60-90 s answers of sentences with 0.3-0.8 s between them, and (group
//!   `sentences`) each of their sentences spoken alone, so the WER of the long answer can
//!   be set against that of the same sentences spoken short.
//! - `noise20`, `noise15`: the short answers in a room: steady low-passed pink or brown
//!   noise (sox) at 20 or 15 dB SNR, from 1.5-2.5 s before the speech to 4 s after it.
//!
//! The speech is espeak-ng's (voices en-us, en-gb, en-us+f3, en-us+m3), each spoken part
//! trimmed of espeak's own silence and joined with silences of seeded, exact lengths. A
//! case is generated once and reused while its fingerprint (the recipe, the seed and
//! [`FIXTURE_VERSION`]) is unchanged.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::corpus::{self, CorpusError, Fixture, Item, SplitMix};
use crate::audio::level::{SPEECH_FRAME_MS, SPEECH_MIN_DBFS, rms_dbfs, speech_bounds};
use crate::audio::wav;

mod scripts;
pub use scripts::{LONG_ANSWERS, PAUSE_ANSWERS, SHORT_ANSWERS};

/// Bump when the way fixtures are rendered changes, so cached cases are made again.
pub const FIXTURE_VERSION: u32 = 1;

/// Where a speaker pauses within an answer's text.
pub const PAUSE_MARK: char = '|';

/// The name of the file holding a generated case's fingerprint.
const FINGERPRINT_FILE: &str = ".fixtures";

/// An interview case, as `--case` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Case {
    /// Complete short answers, commas with 300-600 ms pauses.
    Short,
    /// Mid-clause thinking pauses of 0.7-1.5 s.
    Pauses,
    /// 60-90 s answers, and their sentences spoken alone.
    Long,
    /// The short answers in steady room noise at 20 dB SNR.
    Noise20,
    /// The short answers in steady room noise at 15 dB SNR.
    Noise15,
    /// Every case above.
    All,
}

impl Case {
    /// The cases run for `--case` values, `all` expanded, each once, in order.
    pub fn expand(list: &[Case]) -> Vec<Case> {
        let every = [
            Case::Short,
            Case::Pauses,
            Case::Long,
            Case::Noise20,
            Case::Noise15,
        ];
        let mut out: Vec<Case> = Vec::new();
        for &c in list {
            let add: &[Case] = if c == Case::All {
                &every
            } else {
                std::slice::from_ref(&c)
            };
            for &a in add {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
        out
    }

    /// The case's name (its folder, and its label in the report).
    pub fn name(self) -> &'static str {
        match self {
            Case::Short => "short",
            Case::Pauses => "pauses",
            Case::Long => "long",
            Case::Noise20 => "noise20",
            Case::Noise15 => "noise15",
            Case::All => "all",
        }
    }
}

/// Steady noise of a room's fan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoiseKind {
    /// Pink noise low-passed at 2 kHz.
    Pink,
    /// Brown noise low-passed at 1 kHz.
    Brown,
}

impl NoiseKind {
    /// The sox `synth` type and low-pass corner.
    fn sox(self) -> (&'static str, &'static str) {
        match self {
            NoiseKind::Pink => ("pinknoise", "2000"),
            NoiseKind::Brown => ("brownnoise", "1000"),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            NoiseKind::Pink => "pink noise low-passed at 2 kHz",
            NoiseKind::Brown => "brown noise low-passed at 1 kHz",
        }
    }
}

/// Room noise under one fixture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Noise {
    /// Which noise.
    pub kind: NoiseKind,
    /// Active speech level over the noise's RMS, dB.
    pub snr_db: f64,
    /// Where in the noise bed this fixture's stretch starts, ms.
    pub offset_ms: u64,
}

/// How one fixture is made: who says what, with which silences, in which room.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The WAV file's name.
    pub name: String,
    /// The answer it belongs to (a long answer's sentences share its index).
    pub answer: usize,
    /// The group it is reported in, `None` for the case's own.
    pub group: Option<&'static str>,
    /// The espeak-ng voice.
    pub voice: &'static str,
    /// The parts spoken, in order.
    pub parts: Vec<String>,
    /// The silence after each part but the last, ms.
    pub pauses_ms: Vec<u64>,
    /// Silence (or noise alone) before the speech, ms.
    pub lead_in_ms: u64,
    /// Silence (or noise alone) after the speech, ms.
    pub tail_ms: u64,
    /// The room, `None` for digital silence.
    pub noise: Option<Noise>,
}

impl Plan {
    /// What is said: the parts joined.
    pub fn text(&self) -> String {
        self.parts.join(" ")
    }
}

/// An answer's parts: its text split at [`PAUSE_MARK`], trimmed.
pub fn parts(text: &str) -> Vec<String> {
    text.split(PAUSE_MARK)
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect()
}

fn file_name(prefix: &str, i: usize, voice: &str) -> String {
    format!("{prefix}{i:02}-{}.wav", voice.replace('+', "-"))
}

/// Seeded per case, so adding a case never changes another's fixtures.
fn rng(seed: u64, salt: &str) -> SplitMix {
    SplitMix::new(seed ^ fnv1a(salt.as_bytes()))
}

/// A speaker's answer with a seeded lead-in and a seeded silence at each pause mark.
fn spoken(
    rng: &mut SplitMix,
    (i, voice, text): (usize, &'static str, &str),
    pause_ms: (u64, u64),
) -> Plan {
    let parts = parts(text);
    let lead_in_ms = rng.range(300, 1000);
    let pauses_ms = (1..parts.len())
        .map(|_| rng.range(pause_ms.0, pause_ms.1))
        .collect();
    Plan {
        name: file_name("", i, voice),
        answer: i,
        group: None,
        voice,
        parts,
        pauses_ms,
        lead_in_ms,
        tail_ms: 0,
        noise: None,
    }
}

fn short_plans(seed: u64) -> Vec<Plan> {
    let mut r = rng(seed, "short");
    SHORT_ANSWERS
        .iter()
        .enumerate()
        .map(|(i, &(voice, text))| spoken(&mut r, (i, voice, text), (300, 600)))
        .collect()
}

fn pause_plans(seed: u64) -> Vec<Plan> {
    let mut r = rng(seed, "pauses");
    PAUSE_ANSWERS
        .iter()
        .enumerate()
        .map(|(i, &(voice, text))| spoken(&mut r, (i, voice, text), (700, 1500)))
        .collect()
}

/// Each long answer (sentences joined by 0.3-0.8 s), then each of its sentences alone.
fn long_plans(seed: u64) -> Vec<Plan> {
    let mut r = rng(seed, "long");
    let mut plans = Vec::new();
    for (i, &(voice, sentences)) in LONG_ANSWERS.iter().enumerate() {
        let text = sentences.join(&format!(" {PAUSE_MARK} "));
        let mut long = spoken(&mut r, (i, voice, &text), (300, 800));
        long.name = file_name("long-", i, voice);
        plans.push(long);
    }
    for (i, &(voice, sentences)) in LONG_ANSWERS.iter().enumerate() {
        for (k, sentence) in sentences.iter().enumerate() {
            let mut short = spoken(&mut r, (i, voice, sentence), (0, 0));
            short.name = file_name(&format!("sentence-{i:02}-"), k, voice);
            short.group = Some("sentences");
            plans.push(short);
        }
    }
    plans
}

/// The short answers, each in 1.5-2.5 s of noise alone, then 4 s more after its speech.
fn noise_plans(seed: u64, snr_db: f64) -> Vec<Plan> {
    let mut r = rng(seed, &format!("noise{snr_db}"));
    short_plans(seed)
        .into_iter()
        .enumerate()
        .map(|(i, mut p)| {
            p.lead_in_ms = r.range(1500, 2500);
            p.tail_ms = 4000;
            p.noise = Some(Noise {
                kind: if i % 2 == 0 {
                    NoiseKind::Pink
                } else {
                    NoiseKind::Brown
                },
                snr_db,
                offset_ms: r.range(0, NOISE_BED_MS - NOISE_STRETCH_MS),
            });
            p
        })
        .collect()
}

/// How long each generated noise bed is, ms.
const NOISE_BED_MS: u64 = 60_000;
/// The longest stretch of a bed one fixture takes, ms.
const NOISE_STRETCH_MS: u64 = 30_000;

/// Every fixture of `case`, in order (`all` has none of its own).
pub fn plans(case: Case, seed: u64) -> Vec<Plan> {
    match case {
        Case::Short => short_plans(seed),
        Case::Pauses => pause_plans(seed),
        Case::Long => long_plans(seed),
        Case::Noise20 => noise_plans(seed, 20.0),
        Case::Noise15 => noise_plans(seed, 15.0),
        Case::All => Vec::new(),
    }
}

/// FNV-1a, 64-bit: a stable fingerprint without a dependency.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What a generated case must match to be reused.
pub fn fingerprint(plans: &[Plan]) -> String {
    format!(
        "{:016x}",
        fnv1a(format!("{FIXTURE_VERSION} {plans:?}").as_bytes())
    )
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> CorpusError {
    CorpusError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The case's answers, generated into `root/<case>/` unless a matching generation is
/// there already; `answers` keeps the first N answers (a long answer with its
/// sentences). `progress(done, total)` is told of each file made. Returns the items and
/// whether they were reused.
pub fn prepare(
    root: &Path,
    case: Case,
    seed: u64,
    answers: Option<usize>,
    progress: &dyn Fn(usize, usize),
) -> Result<(Vec<Item>, bool), CorpusError> {
    let dir = root.join(case.name());
    let plans = plans(case, seed);
    let print = fingerprint(&plans);
    let stamp = dir.join(FINGERPRINT_FILE);
    let cached = std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == print)
        && plans.iter().all(|p| dir.join(&p.name).is_file());
    if !cached {
        generate(&dir, &plans, progress)?;
        std::fs::write(&stamp, &print).map_err(|e| io_error(&stamp, e))?;
    }
    let keep = |item: &Item| {
        let answer = item.fixture.as_ref().map_or(0, |f| f.answer);
        answers.is_none_or(|n| answer < n)
    };
    let items = corpus::load(&dir)?.into_iter().filter(keep).collect();
    Ok((items, cached))
}

/// Renders every plan into `dir` (emptied of other WAV files) with its manifest.
pub(super) fn generate(
    dir: &Path,
    plans: &[Plan],
    progress: &dyn Fn(usize, usize),
) -> Result<(), CorpusError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| io_error(dir, e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let mut studio = Studio::new(dir);
    let mut manifest = BTreeMap::new();
    for (done, plan) in plans.iter().enumerate() {
        let take = studio.render(plan)?;
        let path = dir.join(&plan.name);
        wav::write_i16(&path, &crate::audio::f32_to_i16(&take.samples), take.rate)
            .map_err(|e| io_error(&path, e))?;
        manifest.insert(plan.name.clone(), take.fixture);
        progress(done + 1, plans.len());
    }
    let _ = std::fs::remove_dir_all(&studio.scratch);
    let path = dir.join(corpus::MANIFEST);
    let json = serde_json::to_string_pretty(&manifest).map_err(|e| io_error(&path, e))?;
    std::fs::write(&path, json).map_err(|e| io_error(&path, e))
}

/// One rendered fixture: its samples and its manifest entry.
struct Take {
    samples: Vec<f32>,
    rate: u32,
    fixture: Fixture,
}

/// Where fixtures are rendered: a scratch folder for espeak-ng and sox, and the noise
/// beds made so far (one per kind and rate).
struct Studio {
    scratch: PathBuf,
    beds: HashMap<(u32, u32), Vec<f32>>,
}

impl Studio {
    fn new(dir: &Path) -> Self {
        Self {
            scratch: dir.join(".scratch"),
            beds: HashMap::new(),
        }
    }

    /// One spoken part: espeak-ng's samples without its leading and trailing silence.
    fn speak(&self, text: &str, voice: &str) -> Result<wav::Clip, CorpusError> {
        std::fs::create_dir_all(&self.scratch).map_err(|e| io_error(&self.scratch, e))?;
        let mut clip = corpus::speak(text, voice, &self.scratch.join("part.wav"))?;
        let audible = |s: &f32| s.abs() > 1e-4;
        let start = clip.samples.iter().position(audible).unwrap_or(0);
        let end = clip
            .samples
            .iter()
            .rposition(audible)
            .map_or(start, |e| e + 1);
        clip.samples = clip.samples[start..end].to_vec();
        Ok(clip)
    }

    /// The plan's audio: lead-in, the parts with their pauses, tail, and the noise.
    fn render(&mut self, plan: &Plan) -> Result<Take, CorpusError> {
        let mut rate = 0;
        let mut samples = Vec::new();
        let silence = |ms: u64, rate: u32| vec![0.0f32; (ms * u64::from(rate) / 1000) as usize];
        for (k, part) in plan.parts.iter().enumerate() {
            let clip = self.speak(part, plan.voice)?;
            if k == 0 {
                rate = clip.sample_rate;
                samples = silence(plan.lead_in_ms, rate);
            } else {
                samples.extend(silence(plan.pauses_ms[k - 1], rate));
            }
            samples.extend(clip.samples);
        }
        let (start, end) = speech_bounds(&samples, rate).unwrap_or((0, samples.len()));
        let level = active_rms(&samples, rate);
        samples.extend(silence(plan.tail_ms, rate));
        if let Some(noise) = plan.noise {
            self.mix(&mut samples, rate, level, noise)?;
        }
        // Rounded down: read back as frames (rounding up), the bounds stay inside the file.
        let ms = |frames: usize| frames as u64 * 1000 / u64::from(rate.max(1));
        let fixture = Fixture {
            text: plan.text(),
            answer: plan.answer,
            group: plan.group.map(str::to_owned),
            voice: plan.voice.to_owned(),
            speech_ms: (ms(start), ms(end)),
            pauses_ms: plan.pauses_ms.clone(),
            noise: plan
                .noise
                .map(|n| format!("{} at {} dB SNR", n.kind.describe(), n.snr_db)),
        };
        Ok(Take {
            samples,
            rate,
            fixture,
        })
    }

    /// Adds `noise` from its bed under `samples` (speech of active level `speech_rms`).
    fn mix(
        &mut self,
        samples: &mut [f32],
        rate: u32,
        speech_rms: f64,
        noise: Noise,
    ) -> Result<(), CorpusError> {
        let bed = self.bed(noise.kind, rate)?;
        let from = (noise.offset_ms * u64::from(rate) / 1000) as usize;
        let stretch = bed
            .get(from..from + samples.len())
            .ok_or_else(|| CorpusError::Sox("the noise bed is shorter than a fixture".into()))?;
        add_noise(samples, stretch, speech_rms, noise.snr_db);
        Ok(())
    }

    /// A minute of `kind` noise at `rate` from sox (repeatable: `-R`), made once.
    fn bed(&mut self, kind: NoiseKind, rate: u32) -> Result<&[f32], CorpusError> {
        let key = (kind as u32, rate);
        if !self.beds.contains_key(&key) {
            std::fs::create_dir_all(&self.scratch).map_err(|e| io_error(&self.scratch, e))?;
            let path = self.scratch.join(format!("bed-{}-{rate}.wav", kind as u32));
            let (synth, corner) = kind.sox();
            let seconds = (NOISE_BED_MS / 1000).to_string();
            let out = Command::new("sox")
                .args(["-R", "-n", "-r", &rate.to_string(), "-c", "1"])
                .args(["-e", "floating-point", "-b", "32"])
                .arg(&path)
                .args(["synth", &seconds, synth, "lowpass", corner])
                .output()
                .map_err(|e| CorpusError::Sox(e.to_string()))?;
            if !out.status.success() {
                let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
                return Err(CorpusError::Sox(why));
            }
            let clip = wav::read_mono(&path).map_err(|e| io_error(&path, e))?;
            self.beds.insert(key, clip.samples);
        }
        Ok(self.beds.get(&key).map_or(&[][..], Vec::as_slice))
    }
}

/// Adds `noise` (its DC removed) under `samples` at `snr_db` below `speech_rms`, then
/// scales the mix down if it would clip (the SNR stays).
pub fn add_noise(samples: &mut [f32], noise: &[f32], speech_rms: f64, snr_db: f64) {
    let n = noise.len().min(samples.len()).max(1) as f64;
    let dc = noise.iter().map(|&s| f64::from(s)).sum::<f64>() / n;
    let rms = (noise
        .iter()
        .map(|&s| (f64::from(s) - dc).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    let gain = speech_rms / rms.max(1e-12) / 10f64.powf(snr_db / 20.0);
    for (s, &v) in samples.iter_mut().zip(noise) {
        *s += ((f64::from(v) - dc) * gain) as f32;
    }
    let peak = samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    if peak > 0.95 {
        let scale = 0.95 / peak;
        samples.iter_mut().for_each(|s| *s *= scale);
    }
}

/// The speech's active level: the RMS of its 10 ms frames above the speech threshold of
/// [`speech_bounds`] (pauses and silence left out).
pub fn active_rms(samples: &[f32], rate: u32) -> f64 {
    let frame = (rate as usize * SPEECH_FRAME_MS as usize / 1000).max(1);
    let (sum, n) = samples
        .chunks(frame)
        .filter(|c| rms_dbfs(c) > SPEECH_MIN_DBFS)
        .flatten()
        .fold((0.0f64, 0usize), |(sum, n), &s| {
            (sum + f64::from(s).powi(2), n + 1)
        });
    (sum / n.max(1) as f64).sqrt()
}

#[cfg(test)]
mod tests;
