//! Measures the encoder-window policies (`AudioContext`) on espeak-ng interview answers:
//! corpus WER and decode time per policy, for tiny.en and (when present) base.
//!
//! Run: `cargo run --release --example asr_context -- [--repeats N] [MODEL...]`
//! (models default to models/ggml-tiny.en.bin and models/ggml-base.bin if present).

use std::path::PathBuf;
use std::time::Instant;

use callgate::asr::whisper::WhisperEngine;
use callgate::asr::{AudioContext, DEFAULT_PROMPT, DecodeOptions, Transcriber, WordErrors};
use callgate::audio::{ASR_SAMPLE_RATE, wav};
use tokio_util::sync::CancellationToken;

#[path = "../tests/util.rs"]
mod util;

const POLICIES: &[&str] = &["full", "trimmed", "floor:5", "floor:10"];

fn percentile(sorted: &[f64], p: f64) -> f64 {
    // Nearest-rank: the smallest value with at least p of the samples at or below it.
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut repeats = 2usize;
    let mut models = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--repeats" => repeats = args.next().ok_or("--repeats needs a value")?.parse()?,
            _ => models.push(PathBuf::from(arg)),
        }
    }
    if models.is_empty() {
        models.push(util::tiny_model());
        models.extend(util::base_model());
    }
    let threads = 2;
    let cancel = CancellationToken::new();

    let mut clips = Vec::new();
    for (voice, text) in util::INTERVIEW_ANSWERS {
        let path = util::espeak_wav(text, voice, 16_000, 1);
        let clip = wav::read_mono_at(&path, ASR_SAMPLE_RATE)?;
        clips.push((*voice, *text, clip.samples));
    }
    let secs: Vec<f64> = clips
        .iter()
        .map(|c| c.2.len() as f64 / ASR_SAMPLE_RATE as f64)
        .collect();
    println!(
        "{} clips, {:.1}-{:.1} s (total {:.0} s); {threads} threads; time = min of {repeats} runs per clip",
        clips.len(),
        secs.iter().cloned().fold(f64::MAX, f64::min),
        secs.iter().cloned().fold(0.0, f64::max),
        secs.iter().sum::<f64>()
    );

    let mut table = Vec::new();
    for model in &models {
        let engine = WhisperEngine::load(model, threads)?;
        let name = model.file_name().map_or_else(
            || model.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        println!("\n{name}: loaded in {} ms", engine.load_ms);
        // One warm-up decode so the first policy does not pay for first-touch allocations.
        let warm = DecodeOptions::default();
        engine.transcribe(&clips[3].2, &warm, &cancel)?;
        for policy in POLICIES {
            let options = DecodeOptions {
                initial_prompt: Some(DEFAULT_PROMPT.to_string()),
                audio_context: AudioContext::parse(policy).ok_or("bad policy")?,
                ..DecodeOptions::default()
            };
            let mut errors = WordErrors::default();
            let mut short_errors = WordErrors::default();
            let mut ms = Vec::new();
            for (i, (voice, text, samples)) in clips.iter().enumerate() {
                let mut best = f64::MAX;
                let mut hyp = String::new();
                for _ in 0..repeats.max(1) {
                    let started = Instant::now();
                    hyp = engine.transcribe(samples, &options, &cancel)?.text;
                    best = best.min(started.elapsed().as_secs_f64() * 1000.0);
                }
                let e = callgate::asr::word_errors(text, &hyp);
                errors = errors + e;
                if secs[i] < 2.0 {
                    short_errors = short_errors + e;
                }
                ms.push(best);
                if e.edits > 0 {
                    println!(
                        "  {policy:9} {voice:9} {:5.1}s {:>2} err | {text} | {hyp}",
                        secs[i], e.edits
                    );
                }
            }
            let mean = ms.iter().sum::<f64>() / ms.len() as f64;
            ms.sort_by(f64::total_cmp);
            let p90 = percentile(&ms, 0.9);
            println!(
                "{name} {policy}: WER {:.1}% ({}/{}), short-clip WER {:.1}%, mean {mean:.0} ms, p90 {p90:.0} ms",
                errors.rate() * 100.0,
                errors.edits,
                errors.reference_words,
                short_errors.rate() * 100.0
            );
            table.push((name.clone(), *policy, errors, short_errors, mean, p90));
        }
    }

    println!("\n| model | policy | WER | WER, clips < 2 s | mean ms | p90 ms |");
    println!("|---|---|---|---|---|---|");
    for (name, policy, errors, short, mean, p90) in &table {
        println!(
            "| {name} | `{policy}` | {:.1}% ({}/{}) | {:.1}% ({}/{}) | {mean:.0} | {p90:.0} |",
            errors.rate() * 100.0,
            errors.edits,
            errors.reference_words,
            short.rate() * 100.0,
            short.edits,
            short.reference_words
        );
    }
    Ok(())
}
