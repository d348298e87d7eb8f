//! Measures the encoder-window policies (`AudioContext`) and the weight types (f16, q8_0,
//! q5_*) on espeak-ng interview answers: corpus WER and decode time per model and policy.
//!
//! Run: `cargo run --release --example asr_context -- [--repeats N] [--threads N] [--policy P]...
//! [MODEL...]`
//! (models default to models/ggml-tiny.en.bin and models/ggml-base.bin if present; policies
//! to all four). All models are loaded at once and take turns decode by decode (clip 1 on
//! model A, then on B, then clip 1 again on A...), so on a shared machine each model sees
//! the same load and the comparison between them stays fair. `cpu s` is the process's CPU
//! time over all of a model's decodes: with `--threads 1` it is the compute a decode costs,
//! whatever else the machine runs (with more threads ggml's spinning workers add to it).

use std::path::PathBuf;
use std::time::Instant;

use callgate::asr::whisper::WhisperEngine;
use callgate::asr::{AudioContext, DEFAULT_PROMPT, DecodeOptions, Transcriber, WordErrors};
use callgate::audio::{ASR_SAMPLE_RATE, wav};
use tokio_util::sync::CancellationToken;

#[path = "../tests/util.rs"]
mod util;

const POLICIES: &[&str] = &["full", "trimmed", "floor:5", "floor:10"];

type Error = Box<dyn std::error::Error>;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    // Nearest-rank: the smallest value with at least p of the samples at or below it.
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// One clip of the fixture set: voice, reference text, 16 kHz samples, length in seconds.
struct Clip {
    voice: &'static str,
    text: &'static str,
    samples: Vec<f32>,
    secs: f64,
}

/// What one model did under one policy.
#[derive(Default)]
struct Tally {
    /// Word errors over every decode (all repeats).
    errors: WordErrors,
    /// The same, for clips under 2 s.
    short_errors: WordErrors,
    /// Per clip: the fastest and the median of its repeats, in ms.
    min_ms: Vec<f64>,
    median_ms: Vec<f64>,
    /// CPU seconds (user + system) spent in all its decodes.
    cpu_secs: f64,
}

/// This process's CPU time so far (user + system), from /proc/self/stat, in seconds.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

struct Row {
    model: String,
    policy: String,
    tally: Tally,
}

fn main() -> Result<(), Error> {
    let mut repeats = 2usize;
    let mut threads = 2usize;
    let mut models = Vec::new();
    let mut policies: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--repeats" => repeats = args.next().ok_or("--repeats needs a value")?.parse()?,
            "--policy" => policies.push(args.next().ok_or("--policy needs a value")?),
            "--threads" => threads = args.next().ok_or("--threads needs a value")?.parse()?,
            _ => models.push(PathBuf::from(arg)),
        }
    }
    if policies.is_empty() {
        policies = POLICIES.iter().map(|p| p.to_string()).collect();
    }
    if models.is_empty() {
        models.push(util::tiny_model());
        models.extend(util::base_model());
    }
    let repeats = repeats.max(1);
    let clips = load_clips()?;
    let secs: Vec<f64> = clips.iter().map(|c| c.secs).collect();
    println!(
        "{} clips, {:.1}-{:.1} s (total {:.0} s); {threads} threads; {repeats} runs per clip \
         and model, models alternating",
        clips.len(),
        secs.iter().cloned().fold(f64::MAX, f64::min),
        secs.iter().cloned().fold(0.0, f64::max),
        secs.iter().sum::<f64>()
    );
    let mut engines = Vec::new();
    for model in &models {
        let engine = WhisperEngine::load(model, threads)?;
        let name = model.file_name().map_or_else(
            || model.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        println!("{name}: loaded in {} ms", engine.load_ms);
        // One warm-up decode so the first policy does not pay for first-touch allocations.
        engine.transcribe(
            &clips[3].samples,
            &DecodeOptions::default(),
            &CancellationToken::new(),
        )?;
        engines.push((name, engine));
    }
    let mut table = Vec::new();
    for policy in &policies {
        let options = DecodeOptions {
            initial_prompt: Some(DEFAULT_PROMPT.to_string()),
            audio_context: AudioContext::parse(policy).ok_or("bad policy")?,
            ..DecodeOptions::default()
        };
        let tallies = measure(&engines, &clips, &options, policy, repeats)?;
        for ((name, _), tally) in engines.iter().zip(tallies) {
            table.push(Row {
                model: name.clone(),
                policy: policy.clone(),
                tally,
            });
        }
    }
    print_table(&table);
    Ok(())
}

fn load_clips() -> Result<Vec<Clip>, Error> {
    let mut clips = Vec::new();
    for (voice, text) in util::INTERVIEW_ANSWERS {
        let path = util::espeak_wav(text, voice, 16_000, 1);
        let samples = wav::read_mono_at(&path, ASR_SAMPLE_RATE)?.samples;
        let secs = samples.len() as f64 / ASR_SAMPLE_RATE as f64;
        clips.push(Clip {
            voice,
            text,
            samples,
            secs,
        });
    }
    Ok(clips)
}

/// Decodes every clip `repeats` times on every engine, the engines taking turns.
fn measure(
    engines: &[(String, WhisperEngine)],
    clips: &[Clip],
    options: &DecodeOptions,
    policy: &str,
    repeats: usize,
) -> Result<Vec<Tally>, Error> {
    let cancel = CancellationToken::new();
    let mut tallies: Vec<Tally> = engines.iter().map(|_| Tally::default()).collect();
    for clip in clips {
        let mut runs: Vec<Vec<f64>> = vec![Vec::new(); engines.len()];
        for _ in 0..repeats {
            for (i, (name, engine)) in engines.iter().enumerate() {
                let (started, cpu_before) = (Instant::now(), cpu_secs());
                let hyp = engine.transcribe(&clip.samples, options, &cancel)?.text;
                runs[i].push(started.elapsed().as_secs_f64() * 1000.0);
                tallies[i].cpu_secs += cpu_secs() - cpu_before;
                let e = callgate::asr::word_errors(clip.text, &hyp);
                let tally = &mut tallies[i];
                tally.errors = tally.errors + e;
                if clip.secs < 2.0 {
                    tally.short_errors = tally.short_errors + e;
                }
                if e.edits > 0 {
                    println!(
                        "  {name} {policy:9} {:9} {:5.1}s {:>2} err | {} | {hyp}",
                        clip.voice, clip.secs, e.edits, clip.text
                    );
                }
            }
        }
        for (tally, mut ms) in tallies.iter_mut().zip(runs) {
            ms.sort_by(f64::total_cmp);
            tally.min_ms.push(ms[0]);
            tally.median_ms.push(ms[ms.len() / 2]);
        }
    }
    Ok(tallies)
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The table docs/asr.md carries; `vs first` is the median over clips of this model's
/// fastest decode divided by the first model's, so a shared machine's slow spells cancel.
fn print_table(table: &[Row]) {
    println!(
        "\n| model | policy | WER | WER, clips < 2 s | mean ms | p90 ms | mean of medians ms | vs first | cpu s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for row in table {
        let t = &row.tally;
        let first = table
            .iter()
            .find(|r| r.policy == row.policy)
            .map(|r| &r.tally);
        let mut ratios: Vec<f64> = first.map_or_else(Vec::new, |f| {
            t.min_ms.iter().zip(&f.min_ms).map(|(a, b)| a / b).collect()
        });
        ratios.sort_by(f64::total_cmp);
        let mut sorted = t.min_ms.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "| {} | `{}` | {:.1}% ({}/{}) | {:.1}% ({}/{}) | {:.0} | {:.0} | {:.0} | {:.3} | {:.1} |",
            row.model,
            row.policy,
            t.errors.rate() * 100.0,
            t.errors.edits,
            t.errors.reference_words,
            t.short_errors.rate() * 100.0,
            t.short_errors.edits,
            t.short_errors.reference_words,
            mean(&t.min_ms),
            percentile(&sorted, 0.9),
            mean(&t.median_ms),
            ratios.get(ratios.len() / 2).copied().unwrap_or(1.0),
            t.cpu_secs
        );
    }
}
