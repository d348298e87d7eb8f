//! `callgate bench`: the turn-latency benchmark. N calls at concurrency C (or a sweep of
//! C values) against a URL or an in-process gateway (`--spawn`), each call one answer from
//! a corpus folder streamed as [`super::replay`] streams it (real-time pace by default).
//!
//! Per turn it keeps what replay reports (client voice-to-voice from the end of speech
//! found in the signal to the first AI audio frame, the server's `response.done.latency`,
//! output stalls and `seq` holes, errors) and, per call, the transcript's word error rate
//! against the manifest's reference and whether the answer was cut into several turns.
//! With `--barge-in` it also speaks an interruption over each answer and measures how fast
//! the AI goes quiet.
//!
//! Output: a progress bar while running, a summary per concurrency level on stdout
//! (p50/p90/p99/max per figure), `--json FILE` with every call and turn, `--plot FILE`
//! (PNG), and a non-zero exit when `--max-p90-ms` or `--max-wer` is broken.

pub mod corpus;
pub mod plot;
pub mod stats;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::replay::report::ms_or_dash;
use super::replay::{
    BargeIn, ReplayOptions, StreamArgs, TurnReport, TurnStatus, load_wav, replay_file,
};
use crate::asr::score::{WordErrors, word_errors};
use crate::audio::wav::Interleaved;
use crate::protocol::{ErrorCode, Latency};
use stats::{Summary, mean};

/// Gap between the starts of the first calls of a level, so concurrent calls do not all
/// speak in lockstep (later calls start when a slot frees, which spreads them anyway).
const START_STAGGER: Duration = Duration::from_millis(250);

/// Command-line arguments of `callgate bench`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = "\
Examples:
  callgate bench --spawn --generate                 8 calls, one at a time, on this build
  callgate bench --spawn --concurrency 1,2,4,8,16 --json out/bench.json --plot out/bench.png
  callgate bench --url ws://127.0.0.1:8080/v1/call answers/ --max-p90-ms 1000 --max-wer 0.25

Voice-to-voice is measured by the client: from the end of speech in the file (found from
the signal, at the moment the chunk holding it was sent) to the first AI audio frame.")]
pub struct BenchArgs {
    /// Corpus folder: WAV files (any rate, mono or stereo) and an optional manifest.json
    /// mapping file names to reference texts. With --generate, the corpus is written here.
    #[arg(default_value = "bench-corpus")]
    pub dir: PathBuf,
    /// Server endpoint, e.g. ws://127.0.0.1:8080/v1/call.
    #[arg(long, required_unless_present = "spawn", conflicts_with = "spawn")]
    pub url: Option<String>,
    /// Start an in-process gateway on an ephemeral port (the default engines, with
    /// --server-config and the flags below) and benchmark it.
    #[arg(long)]
    pub spawn: bool,
    /// --spawn: gateway settings file, as `serve --config` (calls are not persisted unless
    /// it sets calls-dir).
    #[arg(long, value_name = "FILE")]
    pub server_config: Option<PathBuf>,
    /// --spawn: concurrent whisper decodes.
    #[arg(long)]
    pub asr_workers: Option<usize>,
    /// --spawn: threads per whisper decode.
    #[arg(long)]
    pub asr_threads: Option<usize>,
    /// --spawn: silence (ms) after which the final decode starts speculatively.
    #[arg(long)]
    pub speculative_ms: Option<u64>,
    /// Generate the corpus with espeak-ng first (interview answers in several voices,
    /// seeded silences before each).
    #[arg(long)]
    pub generate: bool,
    /// --generate: how many files.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub files: u64,
    /// --generate: seed of the silences.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// --generate: a pause of this many ms in the middle of each answer (cut-off test).
    #[arg(long, default_value_t = 0)]
    pub pause_ms: u32,
    /// Calls per concurrency level (at least the concurrency itself); files are used in
    /// order, cycling.
    #[arg(long, short = 'n', default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub calls: u64,
    /// Calls in flight at once; a comma-separated list sweeps, e.g. 1,2,4,8,16.
    #[arg(long, value_delimiter = ',', default_value = "1", value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub concurrency: Vec<u64>,
    /// How each call is streamed (--fast measures the server's catch-up, not a caller's
    /// latency).
    #[command(flatten)]
    pub stream: StreamArgs,
    /// Interrupt each answer: speak a short clip over the AI's reply and measure speech
    /// onset to the AI's last audio frame.
    #[arg(long)]
    pub barge_in: bool,
    /// How long into the AI's reply the interruption starts, ms.
    #[arg(long, default_value_t = 300)]
    pub barge_in_after_ms: u64,
    /// Write the full report (every call and turn, and the summaries) as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw latency per stage and latency against concurrency to a PNG.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Exit non-zero when any level's voice-to-voice p90 exceeds this (ms).
    #[arg(long, value_name = "MS")]
    pub max_p90_ms: Option<u64>,
    /// Exit non-zero when any level's mean word error rate exceeds this (0.25 = 25%).
    #[arg(long, value_name = "RATE")]
    pub max_wer: Option<f64>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// What can stop the bench (a failing call is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The corpus could not be read or generated.
    #[error(transparent)]
    Corpus(#[from] corpus::CorpusError),
    /// An input file could not be read.
    #[error(transparent)]
    Client(#[from] super::ClientError),
    /// The in-process gateway's settings are invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The in-process gateway could not start.
    #[error("{0}")]
    Spawn(String),
    /// The plot could not be drawn.
    #[error(transparent)]
    Plot(#[from] plot::PlotError),
    /// The JSON report could not be written.
    #[error("{path}: {message}")]
    Report {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The arguments contradict each other.
    #[error("{0}")]
    Usage(String),
    /// A blocking task panicked.
    #[error("internal: {0}")]
    Internal(String),
}

/// One call of a level: its file, the transcript scored against the reference, its turns.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// Index of the call within its level, from 0.
    pub call: usize,
    /// The WAV file.
    pub file: PathBuf,
    /// What the manifest says is spoken (plus the interruption with `--barge-in`).
    pub reference: Option<String>,
    /// The final transcripts of the call's user turns, joined.
    pub transcript: String,
    /// Word error rate of `transcript` against `reference`.
    pub wer: Option<f64>,
    /// Word edits and reference words behind `wer`.
    #[serde(skip)]
    pub word_errors: Option<WordErrors>,
    /// The answer was split into more user turns than were spoken (a pause taken for the
    /// end of the turn).
    pub cut_off: bool,
    /// Every user turn, as replay reports it.
    pub turns: Vec<TurnReport>,
}

/// The summary of one concurrency level.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LevelSummary {
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Calls made.
    pub calls: usize,
    /// User turns reported.
    pub turns: usize,
    /// Turns whose response completed.
    pub completed: usize,
    /// Turns cancelled (a cut-off answer's first part, or the turn a barge-in interrupted).
    pub cancelled: usize,
    /// Turns that failed, timed out or broke.
    pub failed: usize,
    /// Calls whose answer was cut into several turns.
    pub cut_offs: usize,
    /// Client-measured end of speech to first AI audio.
    pub voice_to_voice_ms: Summary,
    /// Server: end of speech to end-of-turn decision.
    pub endpoint_ms: Summary,
    /// Server: final transcription.
    pub asr_ms: Summary,
    /// Server: LLM first token.
    pub llm_first_token_ms: Summary,
    /// Server: first sentence synthesised.
    pub tts_first_audio_ms: Summary,
    /// Server: end-of-turn decision to first audio frame sent.
    pub first_audio_ms: Summary,
    /// Server: whole turn.
    pub total_ms: Summary,
    /// Barge-in: interruption onset to the AI's last frame.
    pub barge_in_ms: Summary,
    /// Longest playback stall per turn.
    pub output_stall_ms: Summary,
    /// Mean of the calls' word error rates.
    pub mean_wer: Option<f64>,
    /// All word edits over all reference words.
    pub corpus_wer: Option<f64>,
    /// `AUDIO_GAP` errors: input the server never got.
    pub input_gaps: usize,
    /// Holes in the output audio's numbering.
    pub output_seq_gaps: usize,
    /// Server `error` events other than audio gaps, plus client-side problems.
    pub errors: usize,
    /// Wall-clock time of the level.
    pub wall_s: f64,
}

/// One level's result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Level {
    /// The figures.
    pub summary: LevelSummary,
    /// Every call.
    pub calls: Vec<CallRecord>,
}

/// The JSON report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Report format version.
    pub version: u32,
    /// The endpoint benchmarked.
    pub url: String,
    /// Whether the gateway ran in the bench's own process.
    pub spawned: bool,
    /// CPUs the client machine reports.
    pub cpus: usize,
    /// Streamed at real-time pace (false with `--fast`).
    pub real_time: bool,
    /// `--barge-in` was on.
    pub barge_in: bool,
    /// Files in the corpus.
    pub files: usize,
    /// One entry per concurrency level, in the order run.
    pub levels: Vec<Level>,
    /// Thresholds broken, in words; empty when all held.
    pub violations: Vec<String>,
}

/// Runs the bench; returns whether every threshold held (the CLI's exit code).
pub async fn run(args: BenchArgs) -> Result<bool, BenchError> {
    check_args(&args)?;
    let inputs = Arc::new(load_inputs(&args).await?);
    let shutdown = CancellationToken::new();
    // Dropped on every return: the in-process gateway stops with the bench.
    let _stop = shutdown.clone().drop_guard();
    let url = match &args.url {
        Some(url) => url.clone(),
        None => {
            // The one entry into `server`: the gateway `--spawn` benchmarks.
            let addr = crate::server::spawn(&spawn_config(&args)?, shutdown.clone())
                .await
                .map_err(|e| BenchError::Spawn(e.to_string()))?;
            format!("ws://{addr}/v1/call")
        }
    };
    let opts = Arc::new(ReplayOptions {
        // Live transcripts of concurrent calls would interleave into noise: the bench
        // reports at the end.
        quiet: true,
        barge_in: barge_in(&args).await?,
        ..args.stream.options(url.clone())
    });
    let plan: Vec<(usize, usize)> = args
        .concurrency
        .iter()
        .map(|&c| (c as usize, (args.calls as usize).max(c as usize)))
        .collect();
    let bar = progress_bar(plan.iter().map(|(_, n)| *n as u64).sum(), args.quiet);
    let mut levels = Vec::new();
    for (concurrency, calls) in plan {
        bar.set_message(format!("concurrency {concurrency}"));
        let level = run_level(&opts, &inputs, concurrency, calls, &bar).await?;
        bar.println(format_level(&level.summary));
        levels.push(level);
    }
    bar.finish_and_clear();
    let violations = check_thresholds(
        &levels.iter().map(|l| l.summary.clone()).collect::<Vec<_>>(),
        args.max_p90_ms,
        args.max_wer,
    );
    print_levels(&levels, &violations, bar.is_hidden());
    let report = Report {
        version: 1,
        url,
        spawned: args.spawn,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        real_time: !args.stream.fast,
        barge_in: args.barge_in,
        files: inputs.len(),
        levels,
        violations,
    };
    write_outputs(&args, &report).await?;
    Ok(report.violations.is_empty())
}

/// The corpus (read or generated) with each file's audio, read off the async workers.
async fn load_inputs(args: &BenchArgs) -> Result<Vec<(corpus::Item, Interleaved)>, BenchError> {
    let items = prepare_corpus(args).await?;
    let inputs = blocking(move || {
        items
            .into_iter()
            .map(|item| load_wav(&item.path).map(|audio| (item, audio)))
            .collect::<Result<Vec<_>, _>>()
    })
    .await??;
    Ok(inputs)
}

/// With `--barge-in`, the interruption, spoken by espeak-ng.
async fn barge_in(args: &BenchArgs) -> Result<Option<BargeIn>, BenchError> {
    if !args.barge_in {
        return Ok(None);
    }
    let scratch = std::env::temp_dir().join(format!("callgate-barge-{}.wav", std::process::id()));
    let clip = blocking(move || corpus::speak(corpus::BARGE_IN_TEXT, "en-us", &scratch)).await??;
    Ok(Some(BargeIn {
        samples: clip.samples,
        rate: clip.sample_rate,
        after: Duration::from_millis(args.barge_in_after_ms),
    }))
}

/// The levels' summaries (when no progress bar printed them), the sweep table and the
/// broken thresholds, on stdout.
fn print_levels(levels: &[Level], violations: &[String], bar_hidden: bool) {
    let mut out = std::io::stdout().lock();
    if bar_hidden {
        for l in levels {
            let _ = writeln!(out, "{}", format_level(&l.summary));
        }
    }
    if levels.len() > 1 {
        let _ = writeln!(out, "{}", format_sweep(levels));
    }
    for v in violations {
        let _ = writeln!(out, "THRESHOLD BROKEN: {v}");
    }
}

/// `--json` and `--plot`, each written off the async workers.
async fn write_outputs(args: &BenchArgs, report: &Report) -> Result<(), BenchError> {
    if let Some(path) = args.json.clone() {
        let report_error = |e: &dyn std::fmt::Display| BenchError::Report {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let json = serde_json::to_vec_pretty(report).map_err(|e| report_error(&e))?;
        let file = path.clone();
        blocking(move || std::fs::write(file, json))
            .await?
            .map_err(|e| report_error(&e))?;
        let _ = writeln!(std::io::stdout(), "report: {}", path.display());
    }
    if let Some(path) = args.plot.clone() {
        let (file, levels) = (path.clone(), report.levels.clone());
        blocking(move || plot::draw(&file, &levels)).await??;
        let _ = writeln!(std::io::stdout(), "plot: {}", path.display());
    }
    Ok(())
}

/// What clap cannot say: the gateway flags only mean something with `--spawn` (a bool
/// flag always counts as present for clap's `requires`).
pub fn check_args(args: &BenchArgs) -> Result<(), BenchError> {
    let gateway_flags = args.server_config.is_some()
        || args.asr_workers.is_some()
        || args.asr_threads.is_some()
        || args.speculative_ms.is_some();
    if gateway_flags && !args.spawn {
        return Err(BenchError::Usage(
            "--server-config, --asr-workers, --asr-threads and --speculative-ms configure \
             the in-process gateway: add --spawn, or set them on the server"
                .into(),
        ));
    }
    Ok(())
}

/// Runs `f` off the async workers (file and process work, drawing).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, BenchError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BenchError::Internal(e.to_string()))
}

async fn prepare_corpus(args: &BenchArgs) -> Result<Vec<corpus::Item>, BenchError> {
    let dir = args.dir.clone();
    let generate = args.generate.then_some(corpus::Generate {
        count: args.files as usize,
        seed: args.seed,
        pause_ms: args.pause_ms,
    });
    let items = blocking(move || match generate {
        Some(g) => corpus::generate(&dir, &g),
        None => corpus::load(&dir),
    })
    .await??;
    Ok(items)
}

/// The in-process gateway's settings: the file, then the flags; an ephemeral port, and no
/// call folders unless the file asks for them (a bench run is not a call to keep).
fn spawn_config(args: &BenchArgs) -> Result<crate::config::ServeConfig, BenchError> {
    use crate::config::ServeSettings;
    let file = match &args.server_config {
        Some(path) => ServeSettings::from_file(path)?,
        None => ServeSettings::default(),
    };
    let flags = ServeSettings {
        listen: Some("127.0.0.1:0".into()),
        asr_workers: args.asr_workers,
        asr_threads: args.asr_threads,
        speculative_ms: args.speculative_ms,
        // --fast streams far ahead of real time on purpose: the flood guard would refuse it.
        max_audio_rate: args.stream.fast.then_some(0.0),
        ..ServeSettings::default()
    };
    let mut settings = file.overlay(flags);
    settings.calls_dir.get_or_insert_with(PathBuf::new);
    Ok(settings.resolve()?)
}

fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("calls [{bar:30}] {pos}/{len} {elapsed} eta {eta} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Runs `calls` calls with at most `concurrency` in flight.
async fn run_level(
    opts: &Arc<ReplayOptions>,
    inputs: &Arc<Vec<(corpus::Item, Interleaved)>>,
    concurrency: usize,
    calls: usize,
    bar: &ProgressBar,
) -> Result<Level, BenchError> {
    let started = Instant::now();
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    for call in 0..calls {
        if call > 0 && call < concurrency {
            tokio::time::sleep(START_STAGGER).await;
        }
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| BenchError::Internal(e.to_string()))?;
        let (opts, inputs) = (opts.clone(), inputs.clone());
        tasks.spawn(async move {
            let (item, audio) = &inputs[call % inputs.len()];
            let turns = replay_file(&opts, &item.path, audio).await;
            drop(permit);
            (call, turns)
        });
    }
    let mut records = Vec::with_capacity(calls);
    while let Some(joined) = tasks.join_next().await {
        let (call, turns) = joined.map_err(|e| BenchError::Internal(e.to_string()))?;
        let (item, _) = &inputs[call % inputs.len()];
        records.push(call_record(call, item, turns?, opts.barge_in.is_some()));
        bar.inc(1);
    }
    records.sort_by_key(|r| r.call);
    let mut summary = summarise(&records);
    summary.concurrency = concurrency;
    summary.wall_s = started.elapsed().as_secs_f64();
    Ok(Level {
        summary,
        calls: records,
    })
}

/// Scores a call: its joined transcript against the reference (plus the interruption's
/// text when one was spoken), and whether the answer was split.
pub fn call_record(
    call: usize,
    item: &corpus::Item,
    turns: Vec<TurnReport>,
    barge_in: bool,
) -> CallRecord {
    let transcript = turns
        .iter()
        .map(|t| t.final_transcript.trim())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let reference = item.reference.as_ref().map(|r| {
        if barge_in {
            format!("{r} {}", corpus::BARGE_IN_TEXT)
        } else {
            r.clone()
        }
    });
    let errors = reference.as_ref().map(|r| word_errors(r, &transcript));
    let spoken = if barge_in { 2 } else { 1 };
    CallRecord {
        call,
        file: item.path.clone(),
        reference,
        transcript,
        wer: errors.map(|e| e.rate()),
        word_errors: errors,
        cut_off: turns.iter().filter(|t| t.turn_id > 0).count() > spoken,
        turns,
    }
}

/// The figures of a level from its calls.
pub fn summarise(calls: &[CallRecord]) -> LevelSummary {
    let turns: Vec<&TurnReport> = calls.iter().flat_map(|c| &c.turns).collect();
    let field =
        |f: fn(&Latency) -> Option<u64>| Summary::of(turns.iter().filter_map(|t| f(&t.latency)));
    let count = |s: TurnStatus| turns.iter().filter(|t| t.status == s).count();
    let wers: Vec<f64> = calls.iter().filter_map(|c| c.wer).collect();
    let corpus: Option<WordErrors> = calls
        .iter()
        .filter_map(|c| c.word_errors)
        .reduce(|a, b| a + b);
    let server_errors = turns.iter().flat_map(|t| &t.errors);
    let input_gaps = server_errors
        .clone()
        .filter(|e| e.code == ErrorCode::AudioGap)
        .count();
    LevelSummary {
        concurrency: 0,
        calls: calls.len(),
        turns: turns.len(),
        completed: count(TurnStatus::Completed),
        cancelled: count(TurnStatus::Cancelled),
        failed: turns.len() - count(TurnStatus::Completed) - count(TurnStatus::Cancelled),
        cut_offs: calls.iter().filter(|c| c.cut_off).count(),
        voice_to_voice_ms: Summary::of(turns.iter().filter_map(|t| t.voice_to_voice_ms)),
        endpoint_ms: field(|l| l.endpoint_ms),
        asr_ms: field(|l| l.asr_ms),
        llm_first_token_ms: field(|l| l.llm_first_token_ms),
        tts_first_audio_ms: field(|l| l.tts_first_audio_ms),
        first_audio_ms: field(|l| l.first_audio_ms),
        total_ms: field(|l| l.total_ms),
        barge_in_ms: Summary::of(turns.iter().filter_map(|t| t.barge_in_ms)),
        output_stall_ms: Summary::of(
            turns
                .iter()
                .filter(|t| t.audio_ms_received > 0)
                .map(|t| t.output_stall_ms),
        ),
        mean_wer: mean(&wers),
        corpus_wer: corpus.map(|c| c.rate()),
        input_gaps,
        output_seq_gaps: turns.iter().map(|t| t.output_seq_gaps as usize).sum(),
        errors: server_errors.count() - input_gaps
            + turns.iter().map(|t| t.client_errors.len()).sum::<usize>(),
        wall_s: 0.0,
    }
}

/// The thresholds each level broke, in words.
pub fn check_thresholds(
    levels: &[LevelSummary],
    max_p90_ms: Option<u64>,
    max_wer: Option<f64>,
) -> Vec<String> {
    let mut out = Vec::new();
    for l in levels {
        let c = l.concurrency;
        if let Some(max) = max_p90_ms {
            match l.voice_to_voice_ms.p90 {
                Some(p90) if p90 > max => out.push(format!(
                    "concurrency {c}: voice-to-voice p90 {p90} ms > {max} ms"
                )),
                None => out.push(format!(
                    "concurrency {c}: no voice-to-voice measured (limit {max} ms)"
                )),
                Some(_) => {}
            }
        }
        if let Some(max) = max_wer {
            match l.mean_wer {
                Some(w) if w > max => out.push(format!(
                    "concurrency {c}: mean WER {:.1}% > {:.1}%",
                    w * 100.0,
                    max * 100.0
                )),
                None => out.push(format!(
                    "concurrency {c}: no WER measured (no references; limit {:.1}%)",
                    max * 100.0
                )),
                Some(_) => {}
            }
        }
    }
    out
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

/// The terminal summary of one level: a header line, then p50/p90/p99/max per figure.
pub fn format_level(s: &LevelSummary) -> String {
    let mut out = format!(
        "concurrency {}: {} calls, {} turns ({} completed, {} cancelled, {} failed), {} cut off, \
         mean WER {} (corpus {}), {} input gaps, {} output seq gaps, {} errors, {:.1} s\n",
        s.concurrency,
        s.calls,
        s.turns,
        s.completed,
        s.cancelled,
        s.failed,
        s.cut_offs,
        pct(s.mean_wer),
        pct(s.corpus_wer),
        s.input_gaps,
        s.output_seq_gaps,
        s.errors,
        s.wall_s
    );
    out.push_str(&format!(
        "  {:<26}{:>6}{:>8}{:>8}{:>8}{:>8}\n",
        "ms", "n", "p50", "p90", "p99", "max"
    ));
    for (name, f) in figures(s) {
        if f.count == 0 {
            continue;
        }
        out.push_str(&format!(
            "  {:<26}{:>6}{:>8}{:>8}{:>8}{:>8}\n",
            name,
            f.count,
            ms_or_dash(f.p50),
            ms_or_dash(f.p90),
            ms_or_dash(f.p99),
            ms_or_dash(f.max)
        ));
    }
    out.pop();
    out
}

/// The figures in display order, with their names.
pub fn figures(s: &LevelSummary) -> [(&'static str, Summary); 9] {
    [
        ("voice-to-voice (client)", s.voice_to_voice_ms),
        ("endpointMs", s.endpoint_ms),
        ("asrMs", s.asr_ms),
        ("llmFirstTokenMs", s.llm_first_token_ms),
        ("ttsFirstAudioMs", s.tts_first_audio_ms),
        ("firstAudioMs", s.first_audio_ms),
        ("totalMs", s.total_ms),
        ("barge-in", s.barge_in_ms),
        ("output stall", s.output_stall_ms),
    ]
}

/// The sweep in one table: a row per concurrency level.
pub fn format_sweep(levels: &[Level]) -> String {
    let mut out = String::from(
        "concurrency | v2v p50 | v2v p90 | v2v p99 | firstAudio p90 | asr p90 | stall max | failed | gaps\n",
    );
    for l in levels {
        let s = &l.summary;
        out.push_str(&format!(
            "{:>11} | {:>7} | {:>7} | {:>7} | {:>14} | {:>7} | {:>9} | {:>6} | {:>4}\n",
            s.concurrency,
            ms_or_dash(s.voice_to_voice_ms.p50),
            ms_or_dash(s.voice_to_voice_ms.p90),
            ms_or_dash(s.voice_to_voice_ms.p99),
            ms_or_dash(s.first_audio_ms.p90),
            ms_or_dash(s.asr_ms.p90),
            ms_or_dash(s.output_stall_ms.max),
            s.failed,
            s.input_gaps + s.output_seq_gaps
        ));
    }
    out.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorEvent;

    /// A turn report for tests (the plot's too).
    pub(crate) fn turn(
        id: u32,
        status: TurnStatus,
        v2v: Option<u64>,
        transcript: &str,
    ) -> TurnReport {
        TurnReport {
            final_transcript: transcript.into(),
            voice_to_voice_ms: v2v,
            latency: Latency {
                first_audio_ms: v2v.map(|v| v / 4),
                ..Latency::default()
            },
            audio_ms_received: 1000,
            ..TurnReport::blank(std::path::Path::new("a.wav"), "s", id, status)
        }
    }

    fn item(reference: Option<&str>) -> corpus::Item {
        corpus::Item {
            path: PathBuf::from("a.wav"),
            reference: reference.map(str::to_owned),
        }
    }

    #[test]
    fn call_record_scores_the_joined_transcript() {
        // An answer cut at a pause: two turns, the first cancelled by the second.
        let turns = vec![
            turn(1, TurnStatus::Cancelled, None, "I like"),
            turn(2, TurnStatus::Completed, Some(600), "Rust a lot."),
        ];
        let r = call_record(3, &item(Some("I like Rust a lot.")), turns, false);
        assert_eq!(r.transcript, "I like Rust a lot.");
        assert_eq!(r.wer, Some(0.0));
        assert!(r.cut_off);
        // With a barge-in, two turns are expected and the interruption is in the reference.
        let turns = vec![
            turn(1, TurnStatus::Cancelled, Some(500), "I like Rust."),
            turn(2, TurnStatus::Completed, Some(600), corpus::BARGE_IN_TEXT),
        ];
        let r = call_record(0, &item(Some("I like Rust")), turns, true);
        assert!(!r.cut_off);
        assert_eq!(r.wer, Some(0.0));
        // No reference, no WER.
        let r = call_record(
            0,
            &item(None),
            vec![turn(1, TurnStatus::Completed, None, "x")],
            false,
        );
        assert_eq!(r.wer, None);
    }

    #[test]
    fn summary_counts_and_percentiles() {
        let mut gap = turn(1, TurnStatus::Completed, Some(700), "a b c d");
        gap.errors.push(ErrorEvent::audio_gap(3, 4));
        gap.output_seq_gaps = 1;
        let calls = vec![
            call_record(0, &item(Some("a b c d")), vec![gap], false),
            call_record(
                1,
                &item(Some("a b")),
                vec![turn(1, TurnStatus::Completed, Some(500), "a x")],
                false,
            ),
            call_record(
                2,
                &item(None),
                vec![turn(1, TurnStatus::Timeout, None, "")],
                false,
            ),
        ];
        let s = summarise(&calls);
        assert_eq!((s.calls, s.turns, s.completed, s.failed), (3, 3, 2, 1));
        assert_eq!(s.voice_to_voice_ms.count, 2);
        assert_eq!(s.voice_to_voice_ms.p50, Some(500));
        assert_eq!(s.voice_to_voice_ms.max, Some(700));
        assert_eq!(s.first_audio_ms.p90, Some(175));
        assert_eq!(s.mean_wer, Some(0.25));
        // 1 edit over 6 reference words.
        assert!((s.corpus_wer.unwrap() - 1.0 / 6.0).abs() < 1e-9);
        assert_eq!((s.input_gaps, s.output_seq_gaps, s.errors), (1, 1, 0));
        let table = format_level(&s);
        assert!(table.contains("voice-to-voice (client)"), "{table}");
        assert!(
            !table.contains("barge-in"),
            "empty figures are left out: {table}"
        );
    }

    #[test]
    fn thresholds() {
        let mut s = LevelSummary {
            concurrency: 4,
            voice_to_voice_ms: Summary::of([500, 900, 1200]),
            mean_wer: Some(0.1),
            ..LevelSummary::default()
        };
        assert!(check_thresholds(std::slice::from_ref(&s), None, None).is_empty());
        assert!(check_thresholds(std::slice::from_ref(&s), Some(1200), Some(0.1)).is_empty());
        let v = check_thresholds(std::slice::from_ref(&s), Some(1000), Some(0.05));
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].contains("p90 1200 ms > 1000 ms"), "{v:?}");
        assert!(v[1].contains("mean WER 10.0% > 5.0%"), "{v:?}");
        // Nothing measured breaks a threshold rather than passing it silently.
        s.voice_to_voice_ms = Summary::default();
        s.mean_wer = None;
        assert_eq!(check_thresholds(&[s], Some(1000), Some(0.5)).len(), 2);
    }

    #[derive(clap::Parser)]
    struct TestCli {
        #[command(flatten)]
        args: BenchArgs,
    }

    #[test]
    fn args() {
        use clap::Parser;
        let a = TestCli::try_parse_from(["bench", "--spawn"]).unwrap().args;
        assert_eq!(a.concurrency, [1]);
        assert_eq!((a.calls, a.dir.clone()), (8, PathBuf::from("bench-corpus")));
        let a = TestCli::try_parse_from([
            "bench",
            "d",
            "--url",
            "ws://h/v1/call",
            "--concurrency",
            "1,2,4",
            "--max-p90-ms",
            "900",
        ])
        .unwrap()
        .args;
        assert_eq!(a.concurrency, [1, 2, 4]);
        assert_eq!(a.max_p90_ms, Some(900));
        // A target is required, and only one.
        assert!(TestCli::try_parse_from(["bench"]).is_err());
        assert!(TestCli::try_parse_from(["bench", "--spawn", "--url", "ws://h"]).is_err());
        // Gateway flags only make sense with --spawn.
        let a = TestCli::try_parse_from(["bench", "--url", "u", "--asr-workers", "2"]).unwrap();
        assert!(matches!(check_args(&a.args), Err(BenchError::Usage(_))));
        let a = TestCli::try_parse_from(["bench", "--spawn", "--asr-workers", "2"]).unwrap();
        assert!(check_args(&a.args).is_ok());
        assert!(TestCli::try_parse_from(["bench", "--spawn", "--concurrency", "0"]).is_err());
    }
}
