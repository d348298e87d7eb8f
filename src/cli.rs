//! Command-line interface: parses arguments and runs the chosen subcommand.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use callgate::asr::quantize::WeightType;
use callgate::asr::whisper::WhisperEngine;
use callgate::asr::{AudioContext, DEFAULT_PROMPT, DecodeOptions, Transcriber, convert, ggml};
use callgate::audio::{ASR_SAMPLE_RATE, wav};
use callgate::config::{DEFAULT_MODEL, ServeArgs};

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
    /// Run the gateway: HTTP and the /v1/call WebSocket on one port, on the embedded
    /// engines (whisper, scripted interviewer, espeak-ng) unless configured otherwise.
    ///
    /// Settings come from --config FILE (TOML, keys as the flags without dashes' prefix,
    /// e.g. `listen = "0.0.0.0:8080"`), then CALLGATE_* environment variables, then flags;
    /// each later source wins. docs/configuration.md lists them all.
    Serve(Box<ServeArgs>),
    /// Replay WAV files against a running server, as a caller would, and report each
    /// turn's transcript, reply and latency.
    Replay(callgate::client::replay::ReplayArgs),
    /// A live call from this machine's microphone and speaker: prints transcripts, the
    /// interviewer's words and each turn's latency as they come.
    Mic(callgate::client::mic::MicArgs),
    /// Benchmark turn latency: N calls at concurrency C (or a sweep) against a URL or an
    /// in-process gateway; p50/p90/p99/max per stage, JSON report, PNG plot, thresholds.
    Bench(Box<callgate::client::bench::BenchArgs>),
    /// Transcribe WAV files (any rate, mono or stereo) with the whisper model.
    Transcribe(TranscribeArgs),
    /// Convert a CTranslate2 (faster-whisper) Whisper model folder to a ggml file, or
    /// quantize an f16 ggml file, as whisper.cpp's `quantize` tool does.
    ConvertModel {
        /// Folder holding model.bin and vocabulary.txt.
        #[arg(long, required_unless_present = "ggml", conflicts_with = "ggml")]
        ct2_dir: Option<PathBuf>,
        /// An f16 ggml file to quantize instead (e.g. models/ggml-tiny.en.bin).
        #[arg(long)]
        ggml: Option<PathBuf>,
        /// Output ggml file.
        #[arg(long)]
        out: PathBuf,
        /// Store the weight matrices as q8_0, q5_0 or q5_1 instead of f16.
        #[arg(long, value_parser = parse_weight_type)]
        quantize: Option<WeightType>,
    },
    /// Rebuild a call's report offline from its folder (calls/<sessionId>): the figures,
    /// observations and per-answer lines on stdout, or JSON; the HTML page and PNG charts
    /// on request.
    Report(ReportArgs),
    /// Mint a call token (HS256 JWT) for local use and print it alone on stdout. The secret
    /// comes from --jwt-secret, CALLGATE_JWT_SECRET or the serve config file, as for serve.
    Token(TokenArgs),
    /// Print a ggml Whisper model's header and tensor count.
    ModelInfo {
        /// The ggml file.
        #[arg(default_value = DEFAULT_MODEL)]
        model: PathBuf,
    },
    /// Print docs/configuration.md (every serve setting) as the code defines it.
    #[command(hide = true)]
    ConfigDocs,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// The call's folder (holding events.jsonl), e.g. calls/0123abcd...
    dir: PathBuf,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the self-contained HTML page (timeline and charts) to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Also write the charts as PNG into DIR (timeline.png, answers.png).
    #[arg(long, value_name = "DIR")]
    png: Option<PathBuf>,
}

#[derive(clap::Args)]
struct TokenArgs {
    /// The user id (`sub` claim); per-user call limits and resume checks use it.
    #[arg(long)]
    sub: String,
    /// How long the token is valid: e.g. 90s, 30m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    ttl: Duration,
    /// The server's secret (prefer the environment variable).
    #[arg(long, env = "CALLGATE_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// A serve config file to read `jwt-secret` from.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Parses `90s`, `30m`, `1h`, `7d` (a bare number is seconds).
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |i| text.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number with s, m, h or d, e.g. 1h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?}; use s, m, h or d"
            ));
        }
    };
    if secs == 0 {
        return Err("the token must be valid for at least a second".into());
    }
    Ok(Duration::from_secs(secs))
}

fn token(args: TokenArgs) -> Result<ExitCode> {
    let from_file = match &args.config {
        Some(path) => callgate::config::ServeSettings::from_file(path)?.jwt_secret,
        None => None,
    };
    let Some(secret) = args.jwt_secret.or(from_file).filter(|s| !s.is_empty()) else {
        anyhow::bail!(
            "no secret: pass --jwt-secret, set CALLGATE_JWT_SECRET, or --config a file with jwt-secret"
        );
    };
    let token = callgate::server::auth::mint(&secret, &args.sub, args.ttl)?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
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
        Command::Serve(args) => serve(*args),
        Command::Replay(args) => replay(args),
        Command::Token(args) => token(args),
        Command::Report(args) => report(&args),
        Command::Mic(args) => mic(args),
        Command::Bench(args) => bench(*args),
        Command::Transcribe(args) => transcribe(args),
        Command::ConvertModel {
            ct2_dir,
            ggml,
            out,
            quantize,
        } => convert_model(ct2_dir, ggml, &out, quantize.unwrap_or(WeightType::F16)),
        Command::ModelInfo { model } => model_info(&model),
        Command::ConfigDocs => {
            print!("{}", callgate::config::docs::configuration_markdown());
            Ok(ExitCode::SUCCESS)
        }
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
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn transcribe(args: TranscribeArgs) -> Result<ExitCode> {
    let engine = WhisperEngine::load(
        &args.model,
        args.threads
            .unwrap_or_else(callgate::config::default_asr_threads),
    )?;
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

fn serve(args: ServeArgs) -> Result<ExitCode> {
    let cfg = args.resolve()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let engines = callgate::call::Engines::from_config(&cfg).await?;
        let settings = callgate::call::CallSettings::from_config(&cfg);
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cfg.listen))?;
        tracing::info!(
            addr = %listener.local_addr()?,
            llm = engines.llm.name(),
            tts = engines.tts.name(),
            "callgate serving: ws://{}/v1/call",
            listener.local_addr()?
        );
        let cluster = callgate::server::ClusterNode::from_config(&cfg).await?;
        let server = callgate::server::Server::in_cluster(
            std::sync::Arc::new(engines),
            settings,
            callgate::server::Access::from_config(&cfg),
            cluster,
        );
        callgate::server::run(listener, server, shutdown_signal(), cfg.drain).await;
        tracing::info!("stopped");
        Ok::<_, anyhow::Error>(ExitCode::SUCCESS)
    })
}

/// Resolves on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn replay(args: callgate::client::replay::ReplayArgs) -> Result<ExitCode> {
    run_client(callgate::client::replay::run(args))
}

fn bench(args: callgate::client::bench::BenchArgs) -> Result<ExitCode> {
    run_client(callgate::client::bench::run(args))
}

/// Runs a client command on a fresh runtime; its `Ok(false)` (a turn failed, a threshold
/// broke) is exit code 1, like an error, so scripts and CI can tell.
fn run_client<E>(command: impl std::future::Future<Output = Result<bool, E>>) -> Result<ExitCode>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    Ok(if runtime.block_on(command)? {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn mic(args: callgate::client::mic::MicArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(callgate::client::mic::run(args))?;
    Ok(ExitCode::SUCCESS)
}

/// Parses `--quantize`: one of the quantized types, by whisper.cpp's name.
fn parse_weight_type(name: &str) -> Result<WeightType, String> {
    WeightType::parse(name)
        .filter(|t| t.is_quantized())
        .ok_or_else(|| {
            let names: Vec<_> = WeightType::QUANTIZED.iter().map(|t| t.name()).collect();
            format!("{name:?}: expected one of {}", names.join(", "))
        })
}

fn convert_model(
    ct2_dir: Option<PathBuf>,
    ggml: Option<PathBuf>,
    out: &std::path::Path,
    weights: WeightType,
) -> Result<ExitCode> {
    let started = Instant::now();
    let summary = match (ct2_dir, ggml) {
        (Some(dir), _) => convert::convert_dir(&dir, out, weights)
            .with_context(|| format!("converting {}", dir.display()))?,
        (None, Some(file)) => ggml::requantize_file(&file, out, weights)
            .with_context(|| format!("quantizing {}", file.display()))?,
        (None, None) => anyhow::bail!("give --ct2-dir or --ggml"),
    };
    println!(
        "wrote {} ({}, {} bytes, {} tensors, {} tokens, {:?}) in {} ms",
        out.display(),
        weights.name(),
        summary.bytes,
        summary.tensors,
        summary.vocab_tokens,
        summary.hparams,
        started.elapsed().as_millis()
    );
    Ok(ExitCode::SUCCESS)
}

fn report(args: &ReportArgs) -> Result<ExitCode> {
    let report = callgate::report::read(&args.dir)
        .with_context(|| format!("reading {}", args.dir.join("events.jsonl").display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", callgate::report::text::render(&report));
    }
    if let Some(file) = &args.html {
        std::fs::write(file, callgate::report::html::render(&report))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    if let Some(dir) = &args.png {
        callgate::report::png::write(&report, dir)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn model_info(model: &std::path::Path) -> Result<ExitCode> {
    let bytes = std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
    let header = ggml::read_ggml(&bytes)?;
    println!("{:?}", header.hparams);
    let weights = WeightType::from_header_ftype(header.hparams.ftype);
    println!(
        "weights {}",
        weights.map_or("of an unknown type", WeightType::name)
    );
    println!(
        "filters {}x{}, {} tokens, {} tensors",
        header.filter_mels,
        header.filter_bins,
        header.vocab_tokens,
        header.tensors.len()
    );
    Ok(ExitCode::SUCCESS)
}
