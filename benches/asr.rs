//! Criterion bench of transcription latency with tiny.en on 2 threads, for a ~3 s and a
//! ~10 s espeak-ng clip under the default decode options, with the real-time factor.
//! `CALLGATE_BENCH_MODEL=models/ggml-tiny.en-q8_0.bin` benches another model file.

use std::hint::black_box;
use std::time::{Duration, Instant};

use callgate::asr::whisper::WhisperEngine;
use callgate::asr::{DEFAULT_PROMPT, DecodeOptions, Transcriber};
use callgate::audio::{ASR_SAMPLE_RATE, wav};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio_util::sync::CancellationToken;

#[path = "../tests/util.rs"]
mod util;

/// (label, voice, text): about 3 s and about 10 s of speech.
const CLIPS: &[(&str, &str, &str)] = &[
    ("3s", "en-us", "I have five years of experience with Rust."),
    (
        "10s",
        "en-us",
        "If I joined your team, I would first spend a few weeks reading the code and fixing small bugs, so that I understand how the system really behaves before proposing larger changes.",
    ),
];

fn bench(c: &mut Criterion) {
    let model = std::env::var_os("CALLGATE_BENCH_MODEL")
        .map_or_else(util::tiny_model, std::path::PathBuf::from);
    let engine = match WhisperEngine::load(&model, 2) {
        Ok(e) => e,
        Err(e) => panic!("{e}"),
    };
    let options = DecodeOptions {
        initial_prompt: Some(DEFAULT_PROMPT.to_string()),
        ..DecodeOptions::default()
    };
    let cancel = CancellationToken::new();
    let mut group = c.benchmark_group(format!(
        "transcribe {} 2 threads {}",
        model
            .file_name()
            .map_or("model".into(), |n| n.to_string_lossy()),
        options.audio_context
    ));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(6));
    for (label, voice, text) in CLIPS {
        let path = util::espeak_wav(text, voice, 16_000, 1);
        let clip = match wav::read_mono_at(&path, ASR_SAMPLE_RATE) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let audio_secs = clip.samples.len() as f64 / ASR_SAMPLE_RATE as f64;
        // Criterion's throughput counts "elements" per second; with one element per
        // millisecond of audio, its Kelem/s figure is audio seconds per wall second, i.e.
        // how many times faster than real time the decode runs.
        group.throughput(Throughput::Elements((audio_secs * 1000.0).round() as u64));
        group.bench_function(*label, |b| {
            b.iter(|| {
                engine
                    .transcribe(black_box(&clip.samples), &options, &cancel)
                    .map(|t| t.text.len())
            })
        });
        // Criterion keeps its estimates to itself: time a few decodes directly for a plain
        // RTF line that reads the same in any report.
        let runs = 5;
        let started = Instant::now();
        for _ in 0..runs {
            let _ = black_box(engine.transcribe(&clip.samples, &options, &cancel));
        }
        let decode_secs = started.elapsed().as_secs_f64() / runs as f64;
        println!(
            "RTF {label}: audio {audio_secs:.2} s, decode {:.0} ms, RTF (decode/audio) {:.3}, {:.1}x real time",
            decode_secs * 1000.0,
            decode_secs / audio_secs,
            audio_secs / decode_secs
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = util::criterion();
    targets = bench
}
criterion_main!(benches);
