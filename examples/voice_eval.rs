//! Compares the interviewer's voices without ears: 30 interviewer sentences are synthesized
//! by Piper (`models/en_US-joe-medium.onnx`) and by espeak-ng (`en-us`, 175 wpm), each
//! alone on an idle engine, then whisper (tiny.en) transcribes each voice's audio back.
//! Prints, per voice: synthesis time per sentence (p50, p90: the first-audio cost of a
//! response that opens with such a sentence), the real-time factor on one thread, and the
//! WER of whisper's transcripts against the text (lower: clearer speech).
//!
//! Run: `cargo run --release --example voice_eval -- [--list] [--threads N]`; `--list` also
//! prints every sentence's transcripts, `--threads` sets Piper's ONNX threads (default 1).
//! Timings depend on the machine's load; the WER does not.

use std::time::Instant;

use callgate::asr::whisper::WhisperEngine;
use callgate::asr::{DecodeOptions, Transcriber, WordErrors, word_errors};
use callgate::audio::resample::resample_all;
use callgate::audio::{ASR_SAMPLE_RATE, i16_to_mono_f32};
use callgate::tts::{
    EspeakConfig, EspeakSynthesizer, PiperConfig, PiperSynthesizer, Speech, Synthesizer, Urgency,
    first_piece_ends,
};
use tokio_util::sync::CancellationToken;

type Error = Box<dyn std::error::Error>;

/// What an interviewer says: the built-in personas' lines (placeholders filled) and the
/// kind of sentence a model writes in their place.
const SENTENCES: [&str; 30] = [
    "Hi there, thanks for joining. I'm Sam, and I'll be running your phone screen today.",
    "Tell me about a project you're proud of.",
    "How did you decide what to build first?",
    "Tell me about a time a production system broke and you had to fix it.",
    "What would you do differently next time?",
    "Thanks, that helps.",
    "Got it, thank you.",
    "That's useful, thank you.",
    "Thanks for your time today. We'll be in touch soon. Goodbye!",
    "Hello there, and welcome. I'm Alex from the people team at our company.",
    "Today I'd like to hear about how you work with others.",
    "Tell me about a time you worked closely with a team to hit a deadline.",
    "Describe a disagreement with a colleague. How did you resolve it?",
    "Tell me about a week when you were under a lot of pressure. What did you do?",
    "What motivates you at work?",
    "Thanks for sharing that.",
    "Take your time, there's no rush.",
    "Could you walk me through the architecture of that service?",
    "How did you measure whether the change worked?",
    "What was the hardest trade-off you had to make?",
    "Interesting. Why did you choose Postgres over a document store?",
    "How many requests per second did the system handle at its peak?",
    "If you had twice the time, what would you have improved?",
    "Let's move on to something a little different.",
    "How do you keep a code review kind but still thorough?",
    "Can you give me a concrete example of that?",
    "What did your manager say when the release slipped?",
    "That sounds like a difficult situation. How did the team react?",
    "Before we finish, do you have any questions for me?",
    "Great, that's everything from me. Have a lovely day!",
];

/// One voice's results.
#[derive(Default)]
struct Tally {
    synth_ms: Vec<f64>,
    /// The sentence's first piece as a response's first sentence is spoken (up to the
    /// first of [`first_piece_ends`], else all of it), synthesized cold (no cache).
    first_piece_ms: Vec<f64>,
    audio_s: f64,
    busy_s: f64,
    errors: WordErrors,
}

impl Tally {
    fn percentile(values: &[f64], p: f64) -> f64 {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * p).round() as usize]
    }
}

async fn measure(
    name: &str,
    tts: &dyn Synthesizer,
    whisper: &WhisperEngine,
    list: bool,
) -> Result<Tally, Error> {
    let mut tally = Tally::default();
    let cancel = CancellationToken::new();
    // One sentence first, not counted: the first run of an ONNX session allocates.
    tts.synthesize("Warm up.".into(), cancel.clone(), Urgency::Now)
        .await?;
    for text in SENTENCES {
        let started = Instant::now();
        let speech: Speech = tts
            .synthesize(text.into(), cancel.clone(), Urgency::Now)
            .await?;
        let took = started.elapsed().as_secs_f64();
        tally.synth_ms.push(took * 1000.0);
        let first_piece_ms = match first_piece_ends(text).first() {
            Some(&cut) => {
                let started = Instant::now();
                tts.synthesize(text[..cut].into(), cancel.clone(), Urgency::Now)
                    .await?;
                started.elapsed().as_secs_f64() * 1000.0
            }
            None => took * 1000.0,
        };
        tally.first_piece_ms.push(first_piece_ms);
        tally.busy_s += took;
        tally.audio_s += speech.duration().as_secs_f64();
        let audio = resample_all(
            &i16_to_mono_f32(&speech.samples, 1),
            speech.sample_rate,
            ASR_SAMPLE_RATE,
        )?;
        let heard = whisper
            .transcribe(&audio, &DecodeOptions::default(), &cancel)?
            .text;
        let errors = word_errors(text, &heard);
        tally.errors = tally.errors + errors;
        if list {
            println!("  {name:10} {:5.0} ms | {text} | {heard}", took * 1000.0);
        }
    }
    Ok(tally)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let list = std::env::args().any(|a| a == "--list");
    let whisper = WhisperEngine::load(std::path::Path::new("models/ggml-tiny.en.bin"), 2)?;
    let threads = std::env::args()
        .skip_while(|a| a != "--threads")
        .nth(1)
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let piper = PiperSynthesizer::new(PiperConfig {
        workers: 1,
        threads,
        ..PiperConfig::default()
    })
    .await?;
    let espeak = EspeakSynthesizer::new(EspeakConfig::default()).await?;
    let mut rows = Vec::new();
    for (name, tts) in [
        (piper.voice(), &piper as &dyn Synthesizer),
        (espeak.voice(), &espeak as &dyn Synthesizer),
    ] {
        rows.push((name.clone(), measure(&name, tts, &whisper, list).await?));
    }
    println!(
        "\n| voice | sentence p50 | p90 | max | first piece p50 | p90 | real-time factor | audio | whisper WER |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (name, t) in rows {
        println!(
            "| {name} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.3} | {:.0} s | {:.1}% ({} edits / {} words) |",
            Tally::percentile(&t.synth_ms, 0.5),
            Tally::percentile(&t.synth_ms, 0.9),
            Tally::percentile(&t.synth_ms, 1.0),
            Tally::percentile(&t.first_piece_ms, 0.5),
            Tally::percentile(&t.first_piece_ms, 0.9),
            t.busy_s / t.audio_s,
            t.audio_s,
            100.0 * t.errors.rate(),
            t.errors.edits,
            t.errors.reference_words,
        );
    }
    Ok(())
}
