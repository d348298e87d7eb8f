//! Measures what the question-aware prompt buys: whisper tiny.en's corpus WER on the 20
//! espeak-ng interview answers (`INTERVIEW_ANSWERS`) decoded with the server's prompt
//! alone (before issue 13), with the question that each answer answers added, and with the
//! role and an interview vocabulary added as well (what a persona with `vocabulary` and a
//! call with `context.role` give), built by the server's own [`InterviewPrompt`].
//!
//! Run: `cargo run --release --example prompt_wer -- [MODEL]` (default
//! models/ggml-tiny.en.bin). Decoding is deterministic, so the figures do not depend on the
//! machine's load.

use callgate::asr::prompt::InterviewPrompt;
use callgate::asr::whisper::WhisperEngine;
use callgate::asr::{DEFAULT_PROMPT, DecodeOptions, Transcriber, WordErrors, word_errors};
use callgate::audio::{ASR_SAMPLE_RATE, wav};
use tokio_util::sync::CancellationToken;

#[path = "../tests/util.rs"]
mod util;

type Error = Box<dyn std::error::Error>;

/// The question an interviewer would have asked before each of `INTERVIEW_ANSWERS`, in its
/// order.
const QUESTIONS: [&str; 20] = [
    "Have you worked with Rust in production before?",
    "Have you ever managed a team?",
    "How long have you been working with Kubernetes?",
    "Tell me about your experience so far.",
    "What is the hardest bug you have fixed?",
    "How did your team move away from the monolith?",
    "How do you usually approach a bug fix?",
    "What did you do in your last role?",
    "How did your services talk to each other, and where did the data live?",
    "What did you do when the database could not keep up?",
    "What is your biggest weakness?",
    "Which language do you prefer for network services, and why?",
    "Walk me through your deployment pipeline.",
    "Tell me about a time you disagreed with your manager.",
    "How did you track down the memory leak?",
    "How did you make sure a payment was never processed twice?",
    "How would you design a rate limiter for the API gateway?",
    "Have you been on call?",
    "How did you learn Rust, and what do you like about it?",
    "What would you do in your first month on our team?",
];

/// Words a backend-interview persona would list as its `vocabulary`.
const VOCABULARY: [&str; 10] = [
    "Rust",
    "Kafka",
    "Postgres",
    "Redis",
    "Kubernetes",
    "microservices",
    "idempotency",
    "runbooks",
    "token bucket",
    "heap snapshots",
];

const ROLE: &str = "backend engineer";

fn main() -> Result<(), Error> {
    let model = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "models/ggml-tiny.en.bin".into());
    let engine = WhisperEngine::load(std::path::Path::new(&model), 2)?;
    let vocabulary: Vec<String> = VOCABULARY.iter().map(|w| w.to_string()).collect();
    let cancel = CancellationToken::new();
    let names = [
        "server prompt",
        "+ question",
        "+ question, role, vocabulary",
    ];
    let mut totals = [WordErrors::default(); 3];
    for (i, (voice, text)) in util::INTERVIEW_ANSWERS.iter().enumerate() {
        let path = util::espeak_wav(text, voice, 16_000, 1);
        let samples = wav::read_mono_at(&path, ASR_SAMPLE_RATE)?.samples;
        let prompts = [
            InterviewPrompt {
                base: Some(DEFAULT_PROMPT),
                ..InterviewPrompt::default()
            },
            InterviewPrompt {
                base: Some(DEFAULT_PROMPT),
                question: Some(QUESTIONS[i]),
                ..InterviewPrompt::default()
            },
            InterviewPrompt {
                base: Some(DEFAULT_PROMPT),
                role: Some(ROLE),
                vocabulary: &vocabulary,
                question: Some(QUESTIONS[i]),
                so_far: "",
                keep_fillers: false,
            },
        ];
        for (k, prompt) in prompts.iter().enumerate() {
            let options = DecodeOptions {
                initial_prompt: prompt.text(),
                ..DecodeOptions::default()
            };
            let heard = engine.transcribe(&samples, &options, &cancel)?.text;
            let e = word_errors(text, &heard);
            totals[k] = totals[k] + e;
            if e.edits > 0 {
                println!(
                    "  {:29} {voice:9} {:>2} err | {text} | {heard}",
                    names[k], e.edits
                );
            }
        }
    }
    println!("\n| prompt | word errors | WER |\n|---|---|---|");
    for (name, t) in names.iter().zip(totals) {
        println!(
            "| {name} | {} / {} | {:.1}% |",
            t.edits,
            t.reference_words,
            100.0 * t.rate()
        );
    }
    Ok(())
}
