//! Measures the voice activity detectors (energy, Silero) in a room, on generated fixtures:
//! interview answers with a 250-450 ms pause at each comma in three espeak-ng voices, clean, under steady fan-like
//! noise (sox pink and brown noise, low-passed, running from before the speech to after it)
//! at 20 and 15 dB SNR, under babble (five espeak voices mixed) at 20 and 15 dB, and under noise that
//! starts with the speech and runs on 2.5 s after it; then 60 s of each noise alone.
//!
//! Per detector and condition: answers split into two turns or more (with the 500 ms
//! hangover), cut before their last word (the audio whisper gets, the speech end plus the
//! 150 ms tail, stops before the middle of the last word), missed, never ended, onset and
//! offset errors, and when barge-in (200 ms of speech) fires after the speech starts.
//!
//! `cargo run --release --example vad_room` (needs espeak-ng, sox and scripts/fetch-models;
//! `-- --variants` adds Silero without the loudness gate, without hysteresis and with other
//! thresholds, `-- --verbose`
//! prints every fixture's events).

use std::path::Path;
use std::time::{Duration, Instant};

use callgate::audio::silero::{self, SileroModel};
use callgate::audio::vad::{SpeechDetector, Vad, VadConfig, VadEvent};

#[path = "../tests/util.rs"]
mod util;

const RATE: usize = 16_000;
/// Audio before the speech (noise already running in the steady conditions).
const LEAD_MS: usize = 1500;
/// Audio after the speech (or after the noise, where it runs on).
const TAIL_MS: usize = 2000;
/// How long noise that starts with the speech runs on after it (the issue saw 2.5 s).
const OVERRUN_MS: usize = 2500;
/// The lead's end-of-turn hangover.
const HANGOVER_MS: u32 = 500;
/// Input chunks as clients send them.
const CHUNK: usize = 320;
/// Audio kept after the speech end when the utterance is cut for whisper (ingest's TAIL_MS).
const WHISPER_TAIL_MS: i64 = 150;
/// Speech before barge-in fires (the `barge-in-ms` default).
const BARGE_IN_MS: u64 = 200;

const VOICES: [&str; 3] = ["en-us", "en-gb", "en-us+f3"];

/// Answers with commas and clause breaks: where a VAD that loses the voice splits them.
const ANSWERS: [&str; 8] = [
    "At my last job, I was responsible for the billing service, which handled about two million invoices a month.",
    "Well, to be honest, the hardest part was not the code, it was getting three teams to agree on one design.",
    "First, I reproduce the bug, then I write a failing test, and only then do I change the code.",
    "We started with a monolith, moved to a handful of services, and kept the database shared for a while.",
    "I like Rust, mostly because the compiler catches my mistakes, but the build times can be painful.",
    "In that role, I led a team of four engineers, and we shipped the new search platform in six months.",
    "If I disagree with a decision, I say so early, I explain why, and then I commit to what we choose.",
    "My biggest weakness, I think, is that I spend too long polishing code before I ship it.",
];

/// Short answers: barge-in must still hear these.
const SHORT: [&str; 3] = ["Yes.", "Wait.", "No, I haven't."];

struct Answer {
    speech: Vec<f32>,
    /// Where the last word starts, ms into the speech.
    last_word_ms: i64,
    short: bool,
}

/// How the noise of a condition is laid out.
#[derive(Clone, Copy)]
enum Bed {
    Clean,
    /// From the start of the audio to its end.
    Steady {
        noise: usize,
        snr_db: f32,
    },
    /// From the speech onset to OVERRUN_MS after its end.
    WithSpeech {
        noise: usize,
        snr_db: f32,
    },
    /// From 1 s before the speech (after digital silence) to the end of the audio.
    Arriving {
        noise: usize,
        snr_db: f32,
    },
}

struct Condition {
    name: &'static str,
    bed: Bed,
}

/// One detector's verdict on one fixture.
struct Outcome {
    starts: Vec<i64>,
    stops: Vec<i64>,
    barge_in_at: Option<i64>,
    cpu: Duration,
}

/// A detector under test, by name.
struct Detector {
    name: String,
    detector: SpeechDetector,
    cfg: VadConfig,
}

fn ms(n: usize) -> usize {
    n * RATE / 1000
}

/// Each answer clause by clause, with a 250-450 ms pause at every comma as people make
/// (espeak-ng's own comma pause is 140 ms), in every voice; short answers in one piece.
fn answers() -> Vec<Answer> {
    let mut out = Vec::new();
    for (i, text) in ANSWERS.iter().chain(SHORT.iter()).enumerate() {
        let short = i >= ANSWERS.len();
        for (v, voice) in VOICES.iter().enumerate() {
            let speech = if short {
                util::espeak_speech(text, voice)
            } else {
                util::spoken_clauses(text, voice, |k| 250 + (i * 53 + v * 31 + k * 97) % 201)
            };
            // The last word starts about its own length (the same voice saying it alone, as
            // the end of a sentence) before the end.
            let last_word = text.rsplit(' ').next().unwrap_or(text);
            let last_word_len = util::espeak_speech(last_word, voice).len();
            out.push(Answer {
                last_word_ms: (speech.len().saturating_sub(last_word_len) * 1000 / RATE) as i64,
                speech,
                short,
            });
        }
    }
    out
}

/// The fixture: audio, speech onset and end (ms).
fn scene(answer: &Answer, bed: Bed, noises: &[Vec<f32>], seed: usize) -> (Vec<f32>, i64, i64) {
    let speech_len = answer.speech.len();
    let run_on = if matches!(bed, Bed::WithSpeech { .. }) {
        ms(OVERRUN_MS)
    } else {
        0
    };
    let mut audio = vec![0.0f32; ms(LEAD_MS) + speech_len + run_on + ms(TAIL_MS)];
    audio[ms(LEAD_MS)..ms(LEAD_MS) + speech_len].copy_from_slice(&answer.speech);
    let level = util::active_rms(&answer.speech);
    match bed {
        Bed::Clean => {}
        Bed::Steady { noise, snr_db } => {
            let n = &noises[noise][(seed * 7919) % ms(10_000)..];
            let len = audio.len();
            util::add_noise(&mut audio, n, 0, len, level, snr_db);
        }
        Bed::Arriving { noise, snr_db } => {
            let n = &noises[noise][(seed * 7919) % ms(10_000)..];
            let from = ms(LEAD_MS - 1000);
            let len = audio.len() - from;
            util::add_noise(&mut audio, n, from, len, level, snr_db);
        }
        Bed::WithSpeech { noise, snr_db } => {
            let n = &noises[noise][(seed * 7919) % ms(10_000)..];
            util::add_noise(
                &mut audio,
                n,
                ms(LEAD_MS),
                speech_len + run_on,
                level,
                snr_db,
            );
        }
    }
    let onset = LEAD_MS as i64;
    (audio, onset, onset + (speech_len * 1000 / RATE) as i64)
}

/// CPU time this thread has run (Linux's /proc/thread-self/schedstat, in ns): on a shared
/// machine, wall time would count the time other processes held the core.
fn thread_cpu() -> Duration {
    let ns = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

fn run(d: &Detector, audio: &[f32]) -> Outcome {
    let mut vad = Vad::with_detector(d.cfg, &d.detector);
    let (mut starts, mut stops, mut barge_in_at) = (Vec::new(), Vec::new(), None);
    let started = thread_cpu();
    for chunk in audio.chunks(CHUNK) {
        let events = vad.process(chunk);
        for e in events {
            match e {
                VadEvent::SpeechStarted { at_ms } => starts.push(at_ms as i64),
                VadEvent::SpeechStopped { speech_end_ms, .. } => stops.push(speech_end_ms as i64),
            }
        }
        // The session's barge-in check, after each chunk.
        if barge_in_at.is_none() && vad.is_speaking() && vad.speech_ms() >= BARGE_IN_MS {
            barge_in_at = Some(vad.position_ms() as i64);
        }
    }
    Outcome {
        starts,
        stops,
        barge_in_at,
        cpu: thread_cpu().saturating_sub(started),
    }
}

/// Tallies of one detector over one condition.
#[derive(Default)]
struct Tally {
    answers: usize,
    split: usize,
    cut: usize,
    missed: usize,
    never_ended: usize,
    false_starts: usize,
    onset: Vec<i64>,
    offset: Vec<i64>,
    barge_in: Vec<i64>,
    short: usize,
    short_heard: usize,
    cpu: Duration,
    audio_ms: u64,
}

impl Tally {
    fn add(&mut self, answer: &Answer, out: &Outcome, onset: i64, end: i64) {
        self.cpu += out.cpu;
        // Segments as (start, end), an open one ending at infinity.
        let segments: Vec<(i64, i64)> = out
            .starts
            .iter()
            .enumerate()
            .map(|(i, &s)| (s, out.stops.get(i).copied().unwrap_or(i64::MAX)))
            .collect();
        let over: Vec<_> = segments
            .iter()
            .filter(|(s, e)| *s < end && *e > onset)
            .collect();
        self.false_starts += segments
            .iter()
            .filter(|(s, e)| *e <= onset || *s >= end)
            .count();
        if answer.short {
            self.short += 1;
            self.short_heard += usize::from(!over.is_empty() && out.barge_in_at.is_some());
            return;
        }
        self.answers += 1;
        let (Some(first), Some(last)) = (over.first(), over.last()) else {
            self.missed += 1;
            return;
        };
        self.split += usize::from(over.len() > 1);
        self.onset.push(first.0 - onset);
        if let Some(at) = out.barge_in_at {
            self.barge_in.push(at - onset);
        }
        if last.1 == i64::MAX {
            self.never_ended += 1;
            return;
        }
        self.offset.push(last.1 - end);
        let last_word_mid = onset + answer.last_word_ms + (end - onset - answer.last_word_ms) / 2;
        self.cut += usize::from(last.1 + WHISPER_TAIL_MS < last_word_mid);
    }
}

/// Nearest-rank percentile of signed values.
fn percentile(values: &[i64], p: f64) -> String {
    if values.is_empty() {
        return "-".into();
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    format!("{:+}", v[rank - 1])
}

fn spread(values: &[i64]) -> String {
    format!("{} / {}", percentile(values, 0.5), percentile(values, 0.9))
}

fn conditions() -> Vec<Condition> {
    vec![
        Condition {
            name: "clean",
            bed: Bed::Clean,
        },
        Condition {
            name: "pink fan, 20 dB",
            bed: Bed::Steady {
                noise: 0,
                snr_db: 20.0,
            },
        },
        Condition {
            name: "pink fan, 15 dB",
            bed: Bed::Steady {
                noise: 0,
                snr_db: 15.0,
            },
        },
        Condition {
            name: "brown fan, 20 dB",
            bed: Bed::Steady {
                noise: 1,
                snr_db: 20.0,
            },
        },
        Condition {
            name: "brown fan, 15 dB",
            bed: Bed::Steady {
                noise: 1,
                snr_db: 15.0,
            },
        },
        Condition {
            name: "babble, 20 dB",
            bed: Bed::Steady {
                noise: 2,
                snr_db: 20.0,
            },
        },
        Condition {
            name: "babble, 15 dB",
            bed: Bed::Steady {
                noise: 2,
                snr_db: 15.0,
            },
        },
        Condition {
            name: "babble from 1 s before, 15 dB",
            bed: Bed::Arriving {
                noise: 2,
                snr_db: 15.0,
            },
        },
        Condition {
            name: "pink fan with the speech, 20 dB",
            bed: Bed::WithSpeech {
                noise: 0,
                snr_db: 20.0,
            },
        },
    ]
}

fn detectors(variants: bool) -> Vec<Detector> {
    let t = Instant::now();
    let model =
        SileroModel::load(Path::new(silero::DEFAULT_MODEL), 1).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "Silero model loaded, one session: {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let cfg = VadConfig {
        silence_ms: HANGOVER_MS,
        ..VadConfig::default()
    };
    let silero = |name: &str, speech_threshold: f32, release_threshold: f32| Detector {
        name: name.into(),
        detector: SpeechDetector::Silero(model.clone()),
        cfg: VadConfig {
            speech_threshold,
            release_threshold,
            ..cfg
        },
    };
    let mut list = vec![
        Detector {
            name: "energy".into(),
            detector: SpeechDetector::Energy,
            cfg,
        },
        silero("silero", cfg.speech_threshold, cfg.release_threshold),
    ];
    if variants {
        list.push(Detector {
            name: "silero, no loudness gate".into(),
            detector: SpeechDetector::Silero(model.clone()),
            cfg: VadConfig {
                loud_margin_db: f32::NEG_INFINITY,
                ..cfg
            },
        });
        list.push(silero("silero 0.5, no hysteresis", 0.5, 0.5));
        list.push(silero("silero 0.6 / 0.45", 0.6, 0.45));
        list.push(silero("silero 0.4 / 0.25", 0.4, 0.25));
    }
    list
}

fn print_answers(detectors: &[Detector], answers: &[Answer], noises: &[Vec<f32>], verbose: bool) {
    let long = answers.iter().filter(|a| !a.short).count();
    let short = answers.len() - long;
    println!(
        "\n{long} answers with commas ({} voices) and {short} short answers, hangover {HANGOVER_MS} ms; \
         errors in ms, median / p90 (+ = late)\n",
        VOICES.len()
    );
    println!(
        "| detector | condition | split | cut before last word | missed | never ended | false starts outside it | onset error | offset error | barge-in after onset | short answers heard |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut cpu = Vec::new();
    for d in detectors {
        let mut windows = Duration::ZERO;
        let mut audio_ms = 0u64;
        for c in conditions() {
            let mut t = Tally::default();
            for (i, a) in answers.iter().enumerate() {
                let (audio, onset, end) = scene(a, c.bed, noises, i);
                t.audio_ms += (audio.len() * 1000 / RATE) as u64;
                let out = run(d, &audio);
                if verbose {
                    eprintln!(
                        "{} | {} | answer {i} | speech {onset}..{end}, last word from {} | starts {:?} | stops {:?}",
                        d.name,
                        c.name,
                        onset + a.last_word_ms,
                        out.starts,
                        out.stops
                    );
                }
                t.add(a, &out, onset, end);
            }
            windows += t.cpu;
            audio_ms += t.audio_ms;
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}/{} |",
                d.name,
                c.name,
                t.split,
                t.cut,
                t.missed,
                t.never_ended,
                t.false_starts,
                spread(&t.onset),
                spread(&t.offset),
                spread(&t.barge_in),
                t.short_heard,
                t.short
            );
        }
        let per_window_us = windows.as_secs_f64() * 1e6 / (audio_ms as f64 / 32.0);
        cpu.push(format!("{}: {per_window_us:.1} us", d.name));
    }
    println!(
        "\nCPU per 32 ms of audio (this thread's CPU time): {}",
        cpu.join(", ")
    );
}

fn print_false_triggers(detectors: &[Detector], answers: &[Answer], noises: &[Vec<f32>]) {
    // Each noise at the level it has at 15 dB SNR under a typical answer.
    let level = answers
        .iter()
        .map(|a| util::active_rms(&a.speech))
        .sum::<f32>()
        / answers.len() as f32;
    let names = ["digital silence", "pink fan", "brown fan", "babble"];
    println!("\nSpeech starts in 60 s of noise alone (noise at the 15 dB SNR level)\n");
    println!("| detector | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    for d in detectors {
        let counts: Vec<String> = std::iter::once(vec![0.0; ms(60_000)])
            .chain(noises.iter().map(|n| {
                let mut audio = vec![0.0; ms(60_000)];
                util::add_noise(&mut audio, n, 0, ms(60_000), level, 15.0);
                audio
            }))
            .map(|audio| run(d, &audio).starts.len().to_string())
            .collect();
        println!("| {} | {} |", d.name, counts.join(" | "));
    }
}

fn main() {
    let variants = std::env::args().any(|a| a == "--variants");
    let verbose = std::env::args().any(|a| a == "--verbose");
    let detectors = detectors(variants);
    eprintln!(
        "generating fixtures (espeak-ng, sox; cached under {})",
        util::fixture_dir().display()
    );
    let answers = answers();
    let noises = vec![
        util::room_noise("pinknoise", 1500, 70),
        util::room_noise("brownnoise", 1000, 70),
        util::babble(70),
    ];
    print_answers(&detectors, &answers, &noises, verbose);
    print_false_triggers(&detectors, &answers, &noises);
}
