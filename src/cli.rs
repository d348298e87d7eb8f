//! Command-line interface: parses arguments and runs the chosen subcommand.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

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
    /// Run the gateway: HTTP and the /v1/call WebSocket on one port, on the embedded
    /// engines (whisper, scripted interviewer, espeak-ng) unless configured otherwise.
    ///
    /// Settings come from --config FILE (TOML, keys as the flags without dashes' prefix,
    /// e.g. `listen = "0.0.0.0:8080"`), then CALLGATE_* environment variables, then flags;
    /// each later source wins.
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
    /// Convert a CTranslate2 (faster-whisper) Whisper model folder to a ggml file.
    ConvertModel {
        /// Folder holding model.bin and vocabulary.txt.
        #[arg(long)]
        ct2_dir: PathBuf,
        /// Output ggml file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Mint a call token (HS256 JWT) for local use and print it alone on stdout. The secret
    /// comes from --jwt-secret, CALLGATE_JWT_SECRET or the serve config file, as for serve.
    Token(TokenArgs),
    /// Print a ggml Whisper model's header and tensor count.
    ModelInfo {
        /// The ggml file.
        #[arg(default_value = DEFAULT_MODEL)]
        model: PathBuf,
    },
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
struct ServeArgs {
    /// TOML file with any of the settings below (kebab-case keys, e.g. `asr-workers = 2`).
    #[arg(long, env = "CALLGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "CALLGATE_LISTEN")]
    listen: Option<String>,
    /// ggml Whisper model [default: models/ggml-tiny.en.bin].
    #[arg(long, env = "CALLGATE_MODEL")]
    model: Option<PathBuf>,
    /// Concurrent whisper decodes shared by all calls [default: 1].
    #[arg(long, env = "CALLGATE_ASR_WORKERS")]
    asr_workers: Option<usize>,
    /// Threads per whisper decode [default: all cores].
    #[arg(long, env = "CALLGATE_ASR_THREADS")]
    asr_threads: Option<usize>,
    /// Let a final transcription stop a running partial when every whisper worker is busy
    /// (false: it waits; for before/after measurements) [default: true].
    #[arg(long, env = "CALLGATE_ASR_PREEMPT")]
    asr_preempt: Option<bool>,
    /// Encoder window: full, trimmed or floor:SECONDS [default: floor:10].
    #[arg(long, env = "CALLGATE_AUDIO_CONTEXT")]
    audio_context: Option<String>,
    /// Whisper initial prompt ('' for none) [default: a software-interview prompt].
    #[arg(long, env = "CALLGATE_ASR_PROMPT")]
    asr_prompt: Option<String>,
    /// LLM backend: `script` (built-in interviewer) or `openai` (any OpenAI-compatible
    /// /chat/completions server) [default: script].
    #[arg(long, env = "CALLGATE_LLM")]
    llm: Option<String>,
    /// Base URL of the OpenAI-compatible server, e.g. http://127.0.0.1:8081/v1.
    #[arg(long, env = "CALLGATE_LLM_URL")]
    llm_url: Option<String>,
    /// Model name sent to the OpenAI-compatible server [default: default].
    #[arg(long, env = "CALLGATE_LLM_MODEL")]
    llm_model: Option<String>,
    /// API key for the OpenAI-compatible server (prefer the environment variable).
    #[arg(long, env = "CALLGATE_LLM_API_KEY", hide_env_values = true)]
    llm_api_key: Option<String>,
    /// espeak-ng voice [default: en-us].
    #[arg(long, env = "CALLGATE_VOICE")]
    voice: Option<String>,
    /// Speech rate in words per minute, 80-450 [default: 175].
    #[arg(long, env = "CALLGATE_TTS_RATE")]
    tts_rate: Option<u32>,
    /// Folder of extra persona TOML files (added to / overriding the built-in ones).
    #[arg(long, env = "CALLGATE_PERSONAS_DIR")]
    personas_dir: Option<PathBuf>,
    /// Persona used when session.start names none [default: interviewer].
    #[arg(long, env = "CALLGATE_PERSONA")]
    persona: Option<String>,
    /// Folder for calls/<sessionId>/events.jsonl (and WAVs with --record); '' disables
    /// [default: calls].
    #[arg(long, env = "CALLGATE_CALLS_DIR")]
    calls_dir: Option<PathBuf>,
    /// Also record each call's input.wav and output.wav.
    #[arg(long, env = "CALLGATE_RECORD")]
    record: Option<Option<bool>>,
    /// Speech needed before the user's voice interrupts the AI, ms [default: 200].
    #[arg(long, env = "CALLGATE_BARGE_IN_MS")]
    barge_in_ms: Option<u64>,
    /// Silence after which the final transcript and the LLM start speculatively, ms
    /// [default: 200].
    #[arg(long, env = "CALLGATE_SPECULATIVE_MS")]
    speculative_ms: Option<u64>,
    /// End a call after this many seconds without any client message [default: 300].
    #[arg(long, env = "CALLGATE_IDLE_TIMEOUT_S")]
    idle_timeout_s: Option<u64>,
    /// Seconds calls get to finish on shutdown [default: 10].
    #[arg(long, env = "CALLGATE_DRAIN_S")]
    drain_s: Option<u64>,
    /// Seconds the LLM may take to its first token before the turn fails [default: 20].
    #[arg(long, env = "CALLGATE_LLM_FIRST_TOKEN_TIMEOUT_S")]
    llm_first_token_timeout_s: Option<f64>,
    /// Seconds the LLM may pause between tokens before the turn fails [default: 10].
    #[arg(long, env = "CALLGATE_LLM_TOKEN_TIMEOUT_S")]
    llm_token_timeout_s: Option<f64>,
    /// Seconds to wait for a TCP connection to the LLM server [default: 5].
    #[arg(long, env = "CALLGATE_LLM_CONNECT_TIMEOUT_S")]
    llm_connect_timeout_s: Option<f64>,
    /// Most conversation messages sent to the LLM with each request; the persona's system
    /// prompt always goes first on top of them [default: 24].
    #[arg(long, env = "CALLGATE_LLM_HISTORY_MESSAGES")]
    llm_history_messages: Option<usize>,
    /// Most conversation characters sent to the LLM with each request (newest kept)
    /// [default: 6000].
    #[arg(long, env = "CALLGATE_LLM_HISTORY_CHARS")]
    llm_history_chars: Option<usize>,
    /// Most tokens the LLM may generate for one answer [default: 256].
    #[arg(long, env = "CALLGATE_LLM_MAX_TOKENS")]
    llm_max_tokens: Option<u32>,
    /// HS256 secret (at least 16 bytes) that call tokens must be signed with; without it
    /// calls need no token, so the server refuses a non-loopback --listen (prefer the
    /// environment variable).
    #[arg(long, env = "CALLGATE_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Listen on a non-loopback address without a JWT secret (anyone who can reach the
    /// port can open calls).
    #[arg(long, env = "CALLGATE_INSECURE")]
    insecure: bool,
    /// Browser origins allowed to open calls, comma-separated, e.g.
    /// https://app.example.com (default: any). Requests without Origin are not affected.
    #[arg(long, env = "CALLGATE_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Option<Vec<String>>,
    /// Calls at once; the next gets close code 1013 [default: 256].
    #[arg(long, env = "CALLGATE_MAX_CALLS")]
    max_calls: Option<usize>,
    /// Calls at once per user (token `sub`) [default: 3].
    #[arg(long, env = "CALLGATE_MAX_CALLS_PER_USER")]
    max_calls_per_user: Option<usize>,
    /// Longest call, in minutes; then it ends with reason `timeout` [default: 60].
    #[arg(long, env = "CALLGATE_MAX_CALL_MINUTES")]
    max_call_minutes: Option<f64>,
    /// Text messages per second per call (bursts of twice that pass) [default: 50].
    #[arg(long, env = "CALLGATE_MAX_TEXT_RATE")]
    max_text_rate: Option<f64>,
    /// Input audio faster than this multiple of real time (after a 10 s burst) is refused
    /// with RATE_LIMITED; 0 turns the guard off [default: 4].
    #[arg(long, env = "CALLGATE_MAX_AUDIO_RATE")]
    max_audio_rate: Option<f64>,
    /// Seconds a call whose connection dropped waits for session.resume [default: 30].
    #[arg(long, env = "CALLGATE_RESUME_GRACE_S")]
    resume_grace_s: Option<f64>,
}

impl ServeArgs {
    fn settings(&self) -> callgate::config::ServeSettings {
        callgate::config::ServeSettings {
            listen: self.listen.clone(),
            model: self.model.clone(),
            asr_workers: self.asr_workers,
            asr_threads: self.asr_threads,
            asr_preempt: self.asr_preempt,
            audio_context: self.audio_context.clone(),
            asr_prompt: self.asr_prompt.clone(),
            llm: self.llm.clone(),
            llm_url: self.llm_url.clone(),
            llm_model: self.llm_model.clone(),
            llm_api_key: self.llm_api_key.clone(),
            voice: self.voice.clone(),
            tts_rate: self.tts_rate,
            personas_dir: self.personas_dir.clone(),
            persona: self.persona.clone(),
            calls_dir: self.calls_dir.clone(),
            record: self.record.map(|v| v.unwrap_or(true)),
            barge_in_ms: self.barge_in_ms,
            speculative_ms: self.speculative_ms,
            idle_timeout_s: self.idle_timeout_s,
            drain_s: self.drain_s,
            llm_first_token_timeout_s: self.llm_first_token_timeout_s,
            llm_token_timeout_s: self.llm_token_timeout_s,
            llm_connect_timeout_s: self.llm_connect_timeout_s,
            llm_history_messages: self.llm_history_messages,
            llm_history_chars: self.llm_history_chars,
            llm_max_tokens: self.llm_max_tokens,
            jwt_secret: self.jwt_secret.clone(),
            insecure: self.insecure.then_some(true),
            allowed_origins: self.allowed_origins.clone(),
            max_calls: self.max_calls,
            max_calls_per_user: self.max_calls_per_user,
            max_call_minutes: self.max_call_minutes,
            max_text_rate: self.max_text_rate,
            max_audio_rate: self.max_audio_rate,
            resume_grace_s: self.resume_grace_s,
        }
    }
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
        Command::Mic(args) => mic(args),
        Command::Bench(args) => bench(*args),
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
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
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

fn serve(args: ServeArgs) -> Result<ExitCode> {
    use callgate::config::ServeSettings;
    let file = match &args.config {
        Some(path) => ServeSettings::from_file(path)?,
        None => ServeSettings::default(),
    };
    let cfg = file.overlay(args.settings()).resolve()?;
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
        let server = callgate::server::Server::with_access(
            std::sync::Arc::new(engines),
            settings,
            callgate::server::Access::from_config(&cfg),
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
