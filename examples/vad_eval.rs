//! Measures the voice activity detector on generated fixtures: false speech starts on 60 s
//! of each noise type, and cut-offs (a turn ended inside the answer) on answers with a
//! 600 ms mid-sentence pause, for several `silenceMs` values.
//!
//! `cargo run --release --example vad_eval`

use callgate::audio::vad::{Vad, VadConfig, VadEvent};

#[path = "../tests/util.rs"]
mod util;

const RATE: u32 = 16_000;

fn espeak(text: &str, voice: &str) -> Vec<f32> {
    let s = callgate::audio::wav::read_mono(&util::espeak_wav(text, voice, RATE, 1))
        .expect("wav")
        .samples;
    // espeak pads its output with silence; trim it so the inserted pause is the real pause.
    let first = s.iter().position(|x| x.abs() > 0.01).unwrap_or(0);
    let last = s
        .iter()
        .rposition(|x| x.abs() > 0.01)
        .map_or(s.len(), |i| i + 1);
    s[first..last.max(first)].to_vec()
}

fn rng(seed: u32) -> impl FnMut() -> f32 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as f32 / u32::MAX as f32 * 2.0 - 1.0
    }
}

fn noises() -> Vec<(&'static str, Vec<f32>)> {
    let n = RATE as usize * 60;
    let mut r = rng(7);
    let white = |db: f32, r: &mut dyn FnMut() -> f32| -> Vec<f32> {
        let a = 10f32.powf(db / 20.0) * 1.7;
        (0..n).map(|_| r() * a).collect()
    };
    let w40 = white(-40.0, &mut r);
    let w30 = white(-30.0, &mut r);
    // Pink-ish: white through a one-pole low-pass.
    let mut y = 0.0f32;
    let pink: Vec<f32> = (0..n)
        .map(|_| {
            y = 0.97 * y + 0.03 * r();
            y * 0.2
        })
        .collect();
    let hum: Vec<f32> = (0..n)
        .map(|i| (i as f32 * 50.0 * std::f32::consts::TAU / RATE as f32).sin() * 0.03)
        .collect();
    let mut clicks = vec![0.0f32; n];
    for k in 0..(n / 8000) {
        for s in clicks.iter_mut().skip(k * 8000 + 100).take(80) {
            *s = 0.5;
        }
    }
    vec![
        ("digital silence", vec![0.0; n]),
        ("white -40 dBFS", w40),
        ("white -30 dBFS", w30),
        ("pink-ish -35 dBFS", pink),
        ("50 Hz hum -30 dBFS", hum),
        ("clicks every 0.5 s", clicks),
    ]
}

fn starts(audio: &[f32], silence_ms: u32) -> usize {
    let mut vad = Vad::new(VadConfig {
        silence_ms,
        ..VadConfig::default()
    });
    audio
        .chunks(320)
        .flat_map(|c| vad.process(c))
        .filter(|e| matches!(e, VadEvent::SpeechStarted { .. }))
        .count()
}

fn main() {
    println!("false speech starts in 60 s:");
    for (name, audio) in noises() {
        println!("  {name:<20} {}", starts(&audio, 500));
    }
    let halves = [
        (
            "I have worked mostly on backend services,",
            "and recently on data pipelines.",
        ),
        (
            "The hardest part of that project",
            "was getting the team to agree on the design.",
        ),
        (
            "I think the main thing I learned",
            "is to ask for help earlier.",
        ),
        (
            "We moved from a monolith",
            "to a handful of services over two years.",
        ),
        ("In my last role", "I led a team of four engineers."),
        (
            "My favourite language is Rust",
            "because the compiler catches my mistakes.",
        ),
    ];
    let pause = vec![0.0f32; RATE as usize * 6 / 10];
    let lead = vec![0.0f32; RATE as usize / 2];
    println!("answers with a 600 ms mid-sentence pause, cut-offs (turn ended inside the answer):");
    for silence_ms in [500u32, 700, 800, 1000] {
        let mut cut = 0;
        for (i, (a, b)) in halves.iter().enumerate() {
            let voice = if i % 2 == 0 { "en-us" } else { "en-gb" };
            let audio: Vec<f32> = [
                lead.clone(),
                espeak(a, voice),
                pause.clone(),
                espeak(b, voice),
                lead.clone(),
                lead.clone(),
                lead.clone(),
            ]
            .concat();
            let mut vad = Vad::new(VadConfig {
                silence_ms,
                ..VadConfig::default()
            });
            let stops = audio
                .chunks(320)
                .flat_map(|c| vad.process(c))
                .filter(|e| matches!(e, VadEvent::SpeechStopped { .. }))
                .count();
            if stops > 1 {
                cut += 1;
            }
        }
        println!(
            "  silenceMs {silence_ms:>4}: {cut}/{} cut off",
            halves.len()
        );
    }
}
