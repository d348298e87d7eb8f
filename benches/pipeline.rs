//! Criterion micro-benchmarks of the per-chunk work a call does outside whisper: the frame
//! codec, the sequencer, rubato resampling (input 48k -> 16k, output 22.05k -> 24k) at
//! 10/20/100 ms chunks, the VAD, the whole ingest path, and the sentence splitter.
//!
//! Throughput is in multiples of real time. Criterion's throughput is set to one element
//! per millisecond of audio, so its "Kelem/s" reads directly as "x real time" (1 Kelem/s =
//! 1000 ms of audio per second); after each group a plain line repeats the figure, timed
//! directly, so it reads the same in any report. Everything here is single-threaded, so the
//! figures are per core.
//!
//! Input is real speech (an espeak-ng answer converted by sox), not a synthetic tone: the
//! VAD and the resampler do the work they do on a call.

use std::hint::black_box;
use std::time::{Duration, Instant};

use callgate::audio::resample::StreamResampler;
use callgate::audio::sequencer::Sequencer;
use callgate::audio::vad::{Vad, VadConfig};
use callgate::audio::{f32_to_i16, i16_to_mono_f32, wav};
use callgate::llm::sentences::SentenceSplitter;
use callgate::protocol::{
    decode_input_frame, decode_output_frame, encode_input_frame, encode_output_frame,
};
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};

#[path = "../tests/util.rs"]
mod util;

const ANSWER: &str =
    "I have five years of experience building backend services in Rust and Python.";

/// The answer as mono f32 at `rate`, repeated to at least 4 s.
fn speech(rate: u32) -> Vec<f32> {
    let path = util::espeak_wav(ANSWER, "en-us", rate, 1);
    let clip = match wav::read_mono(&path) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let mut out = Vec::new();
    while out.len() < rate as usize * 4 {
        out.extend_from_slice(&clip.samples);
    }
    out
}

fn chunks(samples: &[f32], rate: u32, ms: u32) -> Vec<Vec<f32>> {
    samples
        .chunks(rate as usize * ms as usize / 1000)
        .map(<[f32]>::to_vec)
        .collect()
}

/// Times `f` (which processes `audio_ms` of audio per call) directly for about 300 ms and
/// prints the multiple of real time.
fn real_time_line(label: &str, audio_ms: f64, mut f: impl FnMut()) {
    let budget = Duration::from_millis(300);
    let started = Instant::now();
    let mut runs = 0u64;
    while started.elapsed() < budget {
        f();
        runs += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{label}: {:.0}x real time ({:.2} us per {audio_ms:.0} ms of audio)",
        audio_ms * runs as f64 / 1000.0 / secs,
        secs / runs as f64 * 1e6
    );
}

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g
}

fn codec(c: &mut Criterion) {
    // A 20 ms chunk at 48 kHz, the largest common client format.
    let samples = f32_to_i16(&speech(48_000)[..960]);
    let input = encode_input_frame(7, &samples);
    let output = encode_output_frame(7, 3, false, false, &samples);
    let mut g = group(c, "frame codec 20 ms @ 48 kHz");
    g.throughput(Throughput::Elements(20));
    g.bench_function("encode input", |b| {
        b.iter(|| encode_input_frame(black_box(7), black_box(&samples)))
    });
    g.bench_function("decode input", |b| {
        b.iter(|| decode_input_frame(black_box(&input)))
    });
    g.bench_function("encode output", |b| {
        b.iter(|| encode_output_frame(black_box(7), 3, false, false, black_box(&samples)))
    });
    g.bench_function("decode output", |b| {
        b.iter(|| decode_output_frame(black_box(&output)))
    });
    g.finish();
    real_time_line("codec decode input 20 ms @ 48 kHz", 20.0, || {
        let _ = black_box(decode_input_frame(black_box(&input)));
    });
}

fn sequencer(c: &mut Criterion) {
    let chunk = f32_to_i16(&speech(48_000)[..960]);
    let mut g = group(c, "sequencer 20 ms chunks @ 48 kHz");
    g.throughput(Throughput::Elements(20 * 64));
    // 64 chunks in order, then 64 with every pair swapped (what a reordering network does).
    g.bench_function("in order x64", |b| {
        b.iter(|| {
            let mut s = Sequencer::default();
            for seq in 0..64 {
                black_box(s.push(seq, chunk.clone()));
            }
        })
    });
    g.bench_function("pairs swapped x64", |b| {
        b.iter(|| {
            let mut s = Sequencer::default();
            for seq in 0..64u32 {
                black_box(s.push(seq ^ 1, chunk.clone()));
            }
        })
    });
    g.finish();
    real_time_line("sequencer in order, 64 x 20 ms", 1280.0, || {
        let mut s = Sequencer::default();
        for seq in 0..64 {
            black_box(s.push(seq, chunk.clone()));
        }
    });
}

fn resampling(c: &mut Criterion) {
    for (from, to) in [(48_000, 16_000), (22_050, 24_000)] {
        let audio = speech(from);
        let mut g = group(c, &format!("resample {from} -> {to}"));
        for ms in [10, 20, 100] {
            let parts = chunks(&audio[..from as usize * 2], from, ms);
            // Two seconds of audio per iteration, in chunks of `ms`.
            g.throughput(Throughput::Elements(2000));
            let mut r = match StreamResampler::new(from, to) {
                Ok(r) => r,
                Err(e) => panic!("{e}"),
            };
            let mut out = Vec::with_capacity(to as usize * 3);
            g.bench_function(format!("{ms} ms chunks"), |b| {
                b.iter(|| {
                    out.clear();
                    for p in &parts {
                        let _ = r.push(black_box(p), &mut out);
                    }
                })
            });
            real_time_line(
                &format!("resample {from} -> {to}, {ms} ms chunks"),
                2000.0,
                || {
                    out.clear();
                    for p in &parts {
                        let _ = r.push(black_box(p), &mut out);
                    }
                },
            );
        }
        g.finish();
    }
}

fn vad(c: &mut Criterion) {
    let audio = speech(16_000);
    let mut g = group(c, "vad 16 kHz");
    for ms in [10, 20, 100] {
        let parts = chunks(&audio[..32_000], 16_000, ms);
        g.throughput(Throughput::Elements(2000));
        let mut v = Vad::new(VadConfig::default());
        g.bench_function(format!("{ms} ms chunks"), |b| {
            b.iter(|| {
                for p in &parts {
                    black_box(v.process(black_box(p)));
                }
            })
        });
        real_time_line(&format!("vad, {ms} ms chunks"), 2000.0, || {
            for p in &parts {
                black_box(v.process(black_box(p)));
            }
        });
    }
    g.finish();
}

/// What the server does with each input frame before whisper: decode, sequence, down-mix
/// to f32, resample to 16 kHz, and (the last variant) run the VAD.
fn ingest(c: &mut Criterion) {
    let audio = speech(48_000);
    let frames: Vec<Vec<u8>> = chunks(&audio[..96_000], 48_000, 20)
        .iter()
        .enumerate()
        .map(|(i, p)| encode_input_frame(i as u32, &f32_to_i16(p)))
        .collect();
    // The resampler and the VAD live as long as the call, as in the session; the sequencer
    // starts afresh each pass because the frames' seqs start again at 0.
    let mut resampler = match StreamResampler::new(48_000, 16_000) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let mut vad = Vad::new(VadConfig::default());
    let mut out = Vec::with_capacity(40_000);
    let mut run = |with_vad: bool| {
        let mut seq = Sequencer::default();
        out.clear();
        for f in &frames {
            let Ok(chunk) = decode_input_frame(f) else {
                continue;
            };
            for event in seq.push(chunk.seq, chunk.samples) {
                if let callgate::audio::sequencer::SequencerEvent::Audio { samples, .. } = event {
                    let mono = i16_to_mono_f32(&samples, 1);
                    let start = out.len();
                    let _ = resampler.push(&mono, &mut out);
                    if with_vad {
                        black_box(vad.process(&out[start..]));
                    }
                }
            }
        }
        black_box(out.len())
    };
    let mut g = group(c, "ingest path 48 kHz, 20 ms frames");
    g.throughput(Throughput::Elements(2000));
    g.bench_function("codec + sequencer + resampler", |b| b.iter(|| run(false)));
    g.bench_function("+ vad", |b| b.iter(|| run(true)));
    g.finish();
    real_time_line(
        "ingest: codec + sequencer + resampler, 48 kHz 20 ms",
        2000.0,
        || {
            run(false);
        },
    );
    real_time_line("ingest + vad", 2000.0, || {
        run(true);
    });
}

fn sentences(c: &mut Criterion) {
    // An interviewer's reply streamed in 4-character deltas, as an LLM sends tokens.
    let reply = "That's great to hear. Can you tell me about a time you had to debug a \
                 production issue under pressure? What was the root cause, e.g. a race or a \
                 leak, and how did you find it? Take your time: 2.5 minutes is fine.";
    let deltas: Vec<String> = reply
        .chars()
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| c.iter().collect())
        .collect();
    // Spoken at espeak-ng's 175 words per minute, the reply lasts this long.
    let spoken_ms = reply.split_whitespace().count() as f64 / 175.0 * 60_000.0;
    let mut g = group(c, "sentence splitter, 4-char deltas");
    g.throughput(Throughput::Elements(spoken_ms as u64));
    let split = || {
        let mut s = SentenceSplitter::new();
        let mut n = 0;
        for d in &deltas {
            n += s.push(black_box(d)).len();
        }
        n + usize::from(s.finish().is_some())
    };
    g.bench_function("reply", |b| b.iter(split));
    g.finish();
    real_time_line("sentence splitter (speech at 175 wpm)", spoken_ms, || {
        black_box(split());
    });
}

criterion_group! {
    name = benches;
    config = util::criterion();
    targets = codec, sequencer, resampling, vad, ingest, sentences
}
criterion_main!(benches);
