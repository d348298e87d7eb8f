//! Measures whether whisper hears the candidate's fillers, and what keeping them costs: the
//! 20 espeak-ng interview answers (`INTERVIEW_ANSWERS`) are spoken with "um" and "uh"
//! put in (two per answer, 40 in all), decoded with the server's prompt alone and with the
//! prompt that asks whisper to keep fillers ([`InterviewPrompt::keep_fillers`]). For each:
//! the share of spoken fillers the report counts (`report::fillers::find`), and the WER of
//! the answers' own words (fillers left out of both sides). The same answers without
//! fillers, decoded with each prompt, show whether the filler prompt hurts clean speech.
//!
//! Run: `cargo run --release --example filler_wer -- [MODEL]` (default
//! models/ggml-tiny.en.bin). Decoding is deterministic, so the figures do not depend on the
//! machine's load.

use callgate::asr::prompt::InterviewPrompt;
use callgate::asr::whisper::WhisperEngine;
use callgate::asr::{DEFAULT_PROMPT, DecodeOptions, Transcriber, WordErrors, word_errors};
use callgate::audio::{ASR_SAMPLE_RATE, wav};
use callgate::report::fillers;
use tokio_util::sync::CancellationToken;

#[path = "../tests/util.rs"]
mod util;

type Error = Box<dyn std::error::Error>;

/// `text` with "um," after its third word and "uh," before its last third, as a candidate
/// thinking aloud would say them.
fn with_fillers(text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let late = (words.len() * 2 / 3).max(4);
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if i == 3 {
            out.push("um,");
        }
        if i == late {
            out.push("uh,");
        }
        out.push(w);
    }
    out.join(" ")
}

/// `text` without its fillers, for scoring the answer's own words.
fn without_fillers(text: &str) -> String {
    let mut out = String::new();
    let mut at = 0;
    for f in fillers::find(text) {
        out.push_str(&text[at..f.start]);
        at = f.end;
    }
    out.push_str(&text[at..]);
    out
}

#[derive(Default, Clone, Copy)]
struct Tally {
    /// Words of the answers with fillers put in, fillers removed before scoring.
    filled: WordErrors,
    /// The same answers spoken without fillers.
    clean: WordErrors,
    fillers_heard: usize,
    fillers_spoken: usize,
    /// Fillers in the transcripts of the answers spoken without any.
    fillers_invented: usize,
}

fn main() -> Result<(), Error> {
    let model = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "models/ggml-tiny.en.bin".into());
    let engine = WhisperEngine::load(std::path::Path::new(&model), 2)?;
    let cancel = CancellationToken::new();
    let prompts = [
        (
            "server prompt",
            InterviewPrompt {
                base: Some(DEFAULT_PROMPT),
                ..InterviewPrompt::default()
            },
        ),
        (
            "server prompt, keep fillers",
            InterviewPrompt {
                base: Some(DEFAULT_PROMPT),
                keep_fillers: true,
                ..InterviewPrompt::default()
            },
        ),
    ];
    let mut tallies = [Tally::default(); 2];
    for (voice, text) in util::INTERVIEW_ANSWERS.iter() {
        let filled_text = with_fillers(text);
        let filled = wav::read_mono_at(
            &util::espeak_wav(&filled_text, voice, 16_000, 1),
            ASR_SAMPLE_RATE,
        )?
        .samples;
        let clean =
            wav::read_mono_at(&util::espeak_wav(text, voice, 16_000, 1), ASR_SAMPLE_RATE)?.samples;
        for (k, (name, prompt)) in prompts.iter().enumerate() {
            let options = DecodeOptions {
                initial_prompt: prompt.text(),
                ..DecodeOptions::default()
            };
            let heard = engine.transcribe(&filled, &options, &cancel)?.text;
            let heard_clean = engine.transcribe(&clean, &options, &cancel)?.text;
            let t = &mut tallies[k];
            t.fillers_spoken += fillers::find(&filled_text).len();
            t.fillers_heard += fillers::find(&heard).len();
            t.filled = t.filled + word_errors(text, &without_fillers(&heard));
            t.clean = t.clean + word_errors(text, &heard_clean);
            t.fillers_invented += fillers::find(&heard_clean).len();
            println!("  {name:28} {voice:9} | {filled_text} | {heard}");
        }
    }
    println!(
        "\n| prompt | fillers counted | WER, answers with fillers | WER, the same without | fillers in those |\n|---|---|---|---|---|"
    );
    for ((name, _), t) in prompts.iter().zip(tallies) {
        println!(
            "| {name} | {} / {} ({:.0}%) | {:.1}% | {:.1}% | {} |",
            t.fillers_heard,
            t.fillers_spoken,
            100.0 * t.fillers_heard as f64 / t.fillers_spoken.max(1) as f64,
            100.0 * t.filled.rate(),
            100.0 * t.clean.rate(),
            t.fillers_invented
        );
    }
    Ok(())
}
