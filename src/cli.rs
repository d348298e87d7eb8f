//! Command-line interface: parses arguments and runs the chosen subcommand.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use callgate::asr::whisper::WhisperEngine;
use callgate::asr::{AudioContext, DEFAULT_PROMPT, DecodeOptions, Transcriber, convert};
use callgate::audio::{ASR_SAMPLE_RATE, wav};

/// The default model, relative to the repository root (made by scripts/fetch-models).
pub const DEFAULT_MODEL: &str = "models/ggml-tiny.en.bin";

/// callgate: a voice mock-call gateway. A candidate speaks, an AI interviewer answers out
/// loud, and can be interrupted.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Transcribe WAV files (any rate, mono or stereo) with the whisper model.
    Transcribe(TranscribeArgs),
    /// Convert a CTranslate2 (faster-whisper) Whisper model folder to a ggml file.
    ConvertModel {
        /// Folder holding model.bin and vocabulary.txt.
        #[arg(long)]
        ct2_dir: PathBuf,
        /// Output ggml file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a ggml Whisper model's header and tensor count.
    ModelInfo {
        /// The ggml file.
        #[arg(default_value = DEFAULT_MODEL)]
        model: PathBuf,
    },
}

#[derive(clap::Args)]
struct TranscribeArgs {
    /// ggml Whisper model file.
    #[arg(long, default_value = DEFAULT_MODEL, env = "CALLGATE_MODEL")]
    model: PathBuf,
    /// Print one JSON object per file: {"file","text","ms","audioMs","segments"}.
    #[arg(long)]
    json: bool,
    /// Decoder threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Encoder window: `full` (30 s), `trimmed` (clip length) or `floor:SECONDS`.
    #[arg(long, default_value_t = DecodeOptions::default().audio_context, value_parser = parse_audio_context)]
    audio_context: AudioContext,
    /// Initial prompt that primes the decoder; pass '' for none.
    #[arg(long, default_value = DEFAULT_PROMPT)]
    prompt: String,
    /// Maximum tokens per decode.
    #[arg(long, default_value_t = DecodeOptions::default().max_tokens)]
    max_tokens: u32,
    /// WAV files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn parse_audio_context(s: &str) -> Result<AudioContext, String> {
    AudioContext::parse(s)
        .ok_or_else(|| format!("expected full, trimmed or floor:SECONDS, got {s:?}"))
}

/// Runs the CLI; the exit code says whether everything succeeded.
pub fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Transcribe(args) => transcribe(args),
        Command::ConvertModel { ct2_dir, out } => convert_model(&ct2_dir, &out),
        Command::ModelInfo { model } => model_info(&model),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CALLGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn transcribe(args: TranscribeArgs) -> Result<ExitCode> {
    let engine = WhisperEngine::load(&args.model, args.threads.unwrap_or_else(default_threads))?;
    tracing::info!(model = %args.model.display(), load_ms = engine.load_ms, "model loaded");
    let options = DecodeOptions {
        initial_prompt: Some(args.prompt.clone()).filter(|p| !p.is_empty()),
        max_tokens: args.max_tokens,
        audio_context: args.audio_context,
    };
    let cancel = CancellationToken::new();
    let mut failed = false;
    for file in &args.files {
        let clip = match wav::read_mono_at(file, ASR_SAMPLE_RATE) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
                continue;
            }
        };
        let started = Instant::now();
        let result = engine.transcribe(&clip.samples, &options, &cancel);
        let ms = started.elapsed().as_millis() as u64;
        let audio_ms = clip.samples.len() as u64 * 1000 / ASR_SAMPLE_RATE as u64;
        match result {
            Ok(t) if args.json => {
                let segments: Vec<_> = t
                    .segments
                    .iter()
                    .map(|s| serde_json::json!({"startMs": s.start_ms, "endMs": s.end_ms, "text": s.text}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"file": file.display().to_string(), "text": t.text, "ms": ms, "audioMs": audio_ms, "segments": segments})
                );
            }
            Ok(t) => println!("{}\t{ms} ms\t{}", file.display(), t.text),
            Err(e) => {
                eprintln!("error: {}: {e}", file.display());
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn convert_model(ct2_dir: &std::path::Path, out: &std::path::Path) -> Result<ExitCode> {
    let started = Instant::now();
    let summary = convert::convert_dir(ct2_dir, out)
        .with_context(|| format!("converting {}", ct2_dir.display()))?;
    println!(
        "wrote {} ({} bytes, {} tensors, {} tokens, {:?}) in {} ms",
        out.display(),
        summary.bytes,
        summary.tensors,
        summary.vocab_tokens,
        summary.hparams,
        started.elapsed().as_millis()
    );
    Ok(ExitCode::SUCCESS)
}

fn model_info(model: &std::path::Path) -> Result<ExitCode> {
    let bytes = std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
    let header = convert::read_ggml(&bytes)?;
    println!("{:?}", header.hparams);
    println!(
        "filters {}x{}, {} tokens, {} tensors",
        header.filter_mels,
        header.filter_bins,
        header.vocab_tokens,
        header.tensors.len()
    );
    Ok(ExitCode::SUCCESS)
}
