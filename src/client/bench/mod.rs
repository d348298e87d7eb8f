//! `callgate bench`: the turn-latency benchmark. N calls at concurrency C (or a sweep of
//! C values) against a URL or an in-process gateway (`--spawn`), each call one answer from
//! a corpus folder streamed as [`super::replay`] streams it (real-time pace by default).
//!
//! Per turn it keeps what replay reports (client voice-to-voice from the end of speech
//! found in the signal to the first AI audio frame, the server's `response.done.latency`,
//! output stalls and `seq` holes, errors) and, per call, the transcript's word error rate
//! against the manifest's reference and whether the answer was cut into several turns.
//! With `--barge-in` it also speaks an interruption over each answer and measures how fast
//! the AI goes quiet. `--backchannel` ([`overlap`]) speaks backchannels and interruptions
//! over the interviewer's replies and checks that the first pause and resume the reply (no
//! false cancel, the resume gap, the reply heard whole) and the second stop it.
//!
//! `--case` runs the interview fixtures of [`cases`] instead of a corpus folder, and
//! reports per case cut-offs, truncations, early ends, WER, voice-to-voice and the rules
//! that ended the turns ([`score`]); `--burst` makes each level's calls finish speaking at
//! the same instant ([`level`]).
//!
//! Output: a progress bar while running, a summary per concurrency level on stdout
//! (p50/p90/p99/max per figure), a table per case, `--json FILE` with every call and
//! turn, `--plot FILE` (PNG), and a non-zero exit when `--max-p90-ms` or `--max-wer` is
//! broken.

pub mod cases;
pub mod corpus;
pub mod level;
pub mod overlap;
pub mod plot;
pub mod report;
pub mod score;
pub mod stats;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::replay::{BargeIn, ReplayOptions, StreamArgs, load_wav};
use cases::Case;
use level::{Batch, Input, Shape};
use overlap::OverlapClip;
pub use report::{
    CallRecord, Level, LevelSummary, Report, call_record, check_thresholds, figures, format_cases,
    format_level, format_sweep, summarise,
};

/// Command-line arguments of `callgate bench`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = "\
Examples:
  callgate bench --spawn --generate                 8 calls, one at a time, on this build
  callgate bench --spawn --concurrency 1,2,4,8,16 --json out/bench.json --plot out/bench.png
  callgate bench --url ws://127.0.0.1:8080/v1/call answers/ --max-p90-ms 1000 --max-wer 0.25
  callgate bench --spawn --case all --json out/cases.json   every interview case, one call at a time
  callgate bench --spawn --case short --burst --concurrency 8,16   simultaneous turns
  callgate bench --spawn --backchannel --json out/backchannel.json   nods and interruptions

Voice-to-voice is measured by the client: from the end of speech in the file (found from
the signal, at the moment the chunk holding it was sent) to the first AI audio frame.

--backchannel runs three sets of calls. Each call gives an answer (generated into
DIR/backchannel/), then speaks one clip over the interviewer's reply, --barge-in-after-ms
into it. backchannel: \"mm-hmm\" (spoken \"mm\": espeak-ng's \"mm-hmm\" is not heard as one),
\"okay\", \"right\", \"yeah\", 3 takes each in three voices; the reply must pause and resume:
counted are false cancels (target 0), resumes, the resume gap from the end of the
backchannel to response.resumed (target 600 ms), and whether the reply was heard whole
(heardText = text, no seq hole, and the same audio as the reference set's uninterrupted
reply: nothing skipped or doubled). interruption: \"Sorry, can I stop you there?\" and
\"Wait, let me add something.\", 5 takes each; the reply must be cancelled, its audio stop
within 250 ms of the onset, and the interruption be answered as its own turn. reference:
each answer once, nothing spoken over it. --clips and --takes pick fewer.")]
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
    /// Run interview cases instead of a corpus folder, generated (once, then reused) into
    /// DIR/<case>/: short, pauses, long, noise20, noise15, or all; comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', conflicts_with = "generate")]
    pub case: Vec<Case>,
    /// --case: only the first N answers of each case (a long answer with its sentences).
    #[arg(long, value_name = "N", requires = "case", value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub answers: Option<u64>,
    /// Each level's calls start so that they all finish speaking at the same instant, in
    /// bursts of --concurrency calls.
    #[arg(long)]
    pub burst: bool,
    /// --generate: how many files.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub files: u64,
    /// --generate and --case: seed of the silences.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// --generate: a pause of this many ms in the middle of each answer (cut-off test).
    #[arg(long, default_value_t = 0)]
    pub pause_ms: u32,
    /// Calls per concurrency level (at least the concurrency itself); files are used in
    /// order, cycling. With --case, each answer once (at least the concurrency); with
    /// --burst, rounded up to whole bursts.
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
    /// How long into the AI's reply the interruption (or --backchannel's clip) starts, ms.
    #[arg(long, default_value_t = 300)]
    pub barge_in_after_ms: u64,
    /// Speak backchannels and interruptions over the interviewer's replies (generated
    /// answers and clips; see below) and check how each reply pauses, resumes or stops.
    #[arg(long, conflicts_with_all = ["barge_in", "generate", "case"])]
    pub backchannel: bool,
    /// --backchannel: only these clips, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "CLIP")]
    pub clips: Vec<OverlapClip>,
    /// --backchannel: takes of each clip [default: 3 per backchannel, 5 per interruption].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100))]
    pub takes: Option<u64>,
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

/// Runs the bench; returns whether every threshold held (the CLI's exit code).
pub async fn run(args: BenchArgs) -> Result<bool, BenchError> {
    check_args(&args)?;
    let batches = load_batches(&args).await?;
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
            format!("ws://{addr}{}", args.stream.protocol.path())
        }
    };
    let opts = Arc::new(ReplayOptions {
        // Live transcripts of concurrent calls would interleave into noise: the bench
        // reports at the end.
        quiet: true,
        barge_in: barge_in(&args).await?,
        ..args.stream.options(url.clone())
    });
    let plan = plan_levels(&args, &batches);
    let bar = progress_bar(plan.iter().map(|(_, s)| s.calls as u64).sum(), args.quiet);
    let mut levels = Vec::new();
    for (batch, shape) in plan {
        let case = batch.case.map_or_else(String::new, |c| format!("{c}, "));
        bar.set_message(format!("{case}concurrency {}", shape.concurrency));
        for level in level::run(&opts, batch, shape, &bar).await? {
            bar.println(format_level(&level.summary));
            levels.push(level);
        }
    }
    bar.finish_and_clear();
    overlap::complete(&mut levels);
    let violations = check_thresholds(
        &levels.iter().map(|l| l.summary.clone()).collect::<Vec<_>>(),
        args.max_p90_ms,
        args.max_wer,
    );
    let report = Report {
        version: 1,
        protocol: args.stream.protocol,
        url,
        spawned: args.spawn,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        real_time: !args.stream.fast,
        barge_in: args.barge_in,
        backchannel: args.backchannel,
        files: batches.iter().map(|b| b.inputs.len()).sum(),
        turn_detection: opts.turn_detection(),
        burst: args.burst,
        levels,
        violations,
    };
    print_levels(&report, !args.case.is_empty(), bar.is_hidden());
    write_outputs(&args, &report).await?;
    Ok(report.violations.is_empty())
}

/// Each batch's levels: one per concurrency value, each answer of a case once (at least
/// the concurrency), `--calls` of a corpus; bursts take whole multiples of the concurrency.
fn plan_levels<'b>(args: &BenchArgs, batches: &'b [Batch]) -> Vec<(&'b Batch, Shape)> {
    let mut plan = Vec::new();
    for batch in batches {
        for &c in &args.concurrency {
            let concurrency = c as usize;
            let wanted = match batch.case {
                Some(_) => batch.inputs.len(),
                None => args.calls as usize,
            };
            let mut calls = wanted.max(concurrency);
            if args.burst {
                calls = calls.div_ceil(concurrency) * concurrency;
            }
            let shape = Shape {
                concurrency,
                calls,
                burst: args.burst,
            };
            plan.push((batch, shape));
        }
    }
    plan
}

/// What the levels run: the corpus folder (read or generated), each `--case`, or the
/// sets of `--backchannel`.
async fn load_batches(args: &BenchArgs) -> Result<Vec<Batch>, BenchError> {
    if args.backchannel {
        return overlap_batches(args).await;
    }
    if args.case.is_empty() {
        let items = prepare_corpus(args).await?;
        return Ok(vec![Batch {
            case: None,
            inputs: Arc::new(load_inputs(items).await?),
        }]);
    }
    let mut batches = Vec::new();
    for case in Case::expand(&args.case) {
        let items = prepare_case(args, case).await?;
        batches.push(Batch {
            case: Some(case.name()),
            inputs: Arc::new(load_inputs(items).await?),
        });
    }
    Ok(batches)
}

/// `--backchannel`'s sets: each call's answer with the clip spoken over its reply.
async fn overlap_batches(args: &BenchArgs) -> Result<Vec<Batch>, BenchError> {
    let root = args.dir.clone();
    let plan = overlap::OverlapPlan {
        clips: args.clips.clone(),
        takes: args.takes.map(|n| n as usize),
        after: Duration::from_millis(args.barge_in_after_ms),
    };
    let sets = blocking(move || overlap::prepare(&root, &plan)).await??;
    let mut batches = Vec::new();
    for set in sets {
        let (items, overlaps): (Vec<_>, Vec<_>) = set.calls.into_iter().unzip();
        let mut inputs = load_inputs(items).await?;
        for (input, overlap) in inputs.iter_mut().zip(overlaps) {
            input.overlap = overlap;
        }
        batches.push(Batch {
            case: Some(set.name),
            inputs: Arc::new(inputs),
        });
    }
    Ok(batches)
}

/// One case's fixtures, generated unless cached, with a progress bar while they are made.
async fn prepare_case(args: &BenchArgs, case: Case) -> Result<Vec<corpus::Item>, BenchError> {
    let (root, seed, quiet) = (args.dir.clone(), args.seed, args.quiet);
    let answers = args.answers.map(|n| n as usize);
    let (items, cached) = blocking(move || {
        let bar = ProgressBar::hidden();
        if !quiet {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_style(styled(&format!(
                "fixtures {} [{{bar:30}}] {{pos}}/{{len}}",
                case.name()
            )));
        }
        let progress = |done: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        };
        let prepared = cases::prepare(&root, case, seed, answers, &progress);
        bar.finish_and_clear();
        prepared
    })
    .await??;
    if !quiet {
        let how = if cached { "reused" } else { "generated" };
        eprintln!(
            "{}: {} files {how} in {}",
            case.name(),
            items.len(),
            args.dir.join(case.name()).display()
        );
    }
    Ok(items)
}

/// Each item with its audio, read off the async workers.
async fn load_inputs(items: Vec<corpus::Item>) -> Result<Vec<Input>, BenchError> {
    let inputs = blocking(move || {
        items
            .into_iter()
            .map(|item| load_wav(&item.path).map(|audio| Input::new(item, audio)))
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
        backchannel: false,
    }))
}

/// The levels' summaries (when no progress bar printed them), the sweep table (with
/// `--case` the case table, with `--backchannel` the overlap table) and the broken
/// thresholds, on stdout.
fn print_levels(report: &Report, by_case: bool, bar_hidden: bool) {
    let mut out = std::io::stdout().lock();
    let levels = &report.levels;
    if bar_hidden {
        for l in levels {
            let _ = writeln!(out, "{}", format_level(&l.summary));
        }
    }
    if by_case {
        let _ = writeln!(out, "{}", format_cases(report));
    } else if report.backchannel {
        let _ = writeln!(out, "{}", overlap::format_overlaps(levels));
    } else if levels.len() > 1 {
        let _ = writeln!(out, "{}", format_sweep(levels));
    }
    for v in &report.violations {
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
    if let Some(why) = args.stream.unsupported() {
        return Err(BenchError::Usage(why.into()));
    }
    if args.stream.protocol == super::replay::Protocol::Realtime
        && (args.barge_in || args.backchannel)
    {
        return Err(BenchError::Usage(
            "--barge-in and --backchannel measure callgate.v1's pause and resume events: \
             drop --protocol realtime"
                .into(),
        ));
    }
    if (!args.clips.is_empty() || args.takes.is_some()) && !args.backchannel {
        return Err(BenchError::Usage(
            "--clips and --takes pick --backchannel's clips: add --backchannel".into(),
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
    bar.set_style(styled(
        "calls [{bar:30}] {pos}/{len} {elapsed} eta {eta} {msg}",
    ));
    bar
}

/// The bench's progress bar style with this template (the default style if it is bad).
fn styled(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).map_or_else(
        |_| ProgressStyle::default_bar(),
        |s| s.progress_chars("=> "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn case_and_burst_args() {
        use clap::Parser;
        let a =
            TestCli::try_parse_from(["bench", "--spawn", "--case", "pauses,noise20", "--burst"])
                .unwrap()
                .args;
        assert_eq!(a.case, [Case::Pauses, Case::Noise20]);
        assert!(a.burst && a.answers.is_none());
        let a = TestCli::try_parse_from(["bench", "--spawn", "--case", "all", "--answers", "2"])
            .unwrap()
            .args;
        assert_eq!(Case::expand(&a.case).len(), 5);
        assert_eq!(a.answers, Some(2));
        // --answers picks from cases; --generate makes a plain corpus, not a case.
        assert!(TestCli::try_parse_from(["bench", "--spawn", "--answers", "2"]).is_err());
        assert!(
            TestCli::try_parse_from(["bench", "--spawn", "--case", "short", "--generate"]).is_err()
        );
        assert!(TestCli::try_parse_from(["bench", "--spawn", "--case", "loud"]).is_err());
    }

    #[test]
    fn backchannel_args() {
        use clap::Parser;
        let parse = |extra: &[&str]| {
            let mut argv = vec!["bench", "--spawn"];
            argv.extend_from_slice(extra);
            TestCli::try_parse_from(argv).map(|c| c.args)
        };
        let a = parse(&["--backchannel"]).unwrap();
        assert!(a.backchannel && a.clips.is_empty() && a.takes.is_none());
        assert!(check_args(&a).is_ok());
        let a = parse(&["--backchannel", "--clips", "mm-hmm,wait", "--takes", "2"]).unwrap();
        assert_eq!(a.clips, [OverlapClip::MmHmm, OverlapClip::Wait]);
        assert_eq!(a.takes, Some(2));
        // Clips belong to --backchannel, which brings its own answers and interruptions.
        let a = parse(&["--clips", "okay"]).unwrap();
        assert!(matches!(check_args(&a), Err(BenchError::Usage(_))));
        for other in [&["--barge-in"][..], &["--generate"], &["--case", "short"]] {
            let mut argv = vec!["--backchannel"];
            argv.extend_from_slice(other);
            assert!(parse(&argv).is_err(), "{other:?}");
        }
        assert!(parse(&["--backchannel", "--clips", "nod"]).is_err());
        assert!(parse(&["--backchannel", "--takes", "0"]).is_err());
    }

    #[test]
    fn levels_take_each_answer_once_and_whole_bursts() {
        use clap::Parser;
        let batch = |case, n| Batch {
            case,
            inputs: Arc::new(
                (0..n)
                    .map(|_| {
                        let audio = crate::audio::wav::Interleaved {
                            samples: vec![0; 160],
                            rate: 16000,
                            channels: 1,
                        };
                        Input::new(corpus::Item::default(), audio)
                    })
                    .collect(),
            ),
        };
        let batches = [batch(None, 3), batch(Some("pauses"), 18)];
        let args = |extra: &[&str]| {
            let mut argv = vec!["bench", "--spawn", "--concurrency", "1,8"];
            argv.extend_from_slice(extra);
            TestCli::try_parse_from(argv).unwrap().args
        };
        let calls = |a: &BenchArgs| -> Vec<usize> {
            plan_levels(a, &batches)
                .iter()
                .map(|(_, s)| s.calls)
                .collect()
        };
        // A corpus takes --calls (8); a case each of its answers once.
        assert_eq!(calls(&args(&[])), [8, 8, 18, 18]);
        // Bursts of 8 round up to whole bursts.
        assert_eq!(calls(&args(&["--burst", "-n", "3"])), [3, 8, 18, 24]);
        assert!(
            plan_levels(&args(&["--burst"]), &batches)
                .iter()
                .all(|(_, s)| s.burst)
        );
    }
}
