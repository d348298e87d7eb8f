//! Running one level: `calls` calls of a batch of answers at a concurrency, either
//! staggered (at most C in flight, the first C starting 250 ms apart) or as bursts of C
//! calls that all finish speaking at the same instant; then each call scored and the level
//! summarised, one summary per group of the case.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tokio::task::JoinSet;

use super::overlap::{Overlap, OverlapKind, verdict};
use super::report::{CallRecord, Level, call_record, summarise};
use super::{BenchError, corpus};
use crate::audio::wav::Interleaved;
use crate::client::ClientError;
use crate::client::replay::{ReplayOptions, SpeechBounds, TurnReport, replay_file_with_speech};

/// Gap between the starts of the first calls of a level, so concurrent calls do not all
/// speak in lockstep (later calls start when a slot frees, which spreads them anyway).
const START_STAGGER: Duration = Duration::from_millis(250);

/// One answer ready to stream: its corpus entry, its audio, and where its speech lies.
pub struct Input {
    /// The file and what the manifest says of it.
    pub item: corpus::Item,
    /// Its audio as sent.
    pub audio: Interleaved,
    /// Its speech, in frames: from the manifest for a generated fixture (under noise the
    /// signal cannot say), else from the signal.
    pub speech: Option<SpeechBounds>,
    /// `--backchannel`: the clip spoken over this call's reply.
    pub overlap: Option<Overlap>,
}

impl Input {
    /// `item` with its audio; the speech bounds from the fixture entry or the signal.
    pub fn new(item: corpus::Item, audio: Interleaved) -> Self {
        let rate = u64::from(audio.rate);
        let speech = match &item.fixture {
            Some(f) => {
                // Rounded up, so the end read back in ms is the manifest's.
                let frame = |ms: u64| (ms * rate).div_ceil(1000) as usize;
                Some((
                    frame(f.speech_ms.0),
                    frame(f.speech_ms.1).min(audio.frames()),
                ))
            }
            None => crate::audio::level::speech_bounds(&audio.to_mono_f32(), audio.rate),
        };
        Self {
            item,
            audio,
            speech,
            overlap: None,
        }
    }

    /// The text of the interruption spoken over this call's reply, which becomes a turn of
    /// its own: the call's clip when it is one, else `--barge-in`'s.
    fn interruption<'t>(&'t self, opts: &ReplayOptions) -> Option<&'t str> {
        match &self.overlap {
            Some(o) => (o.clip.kind() == OverlapKind::Interruption).then(|| o.clip.words()),
            None => opts.barge_in.as_ref().map(|_| corpus::BARGE_IN_TEXT),
        }
    }

    /// Where the speech ends in the file, ms.
    pub fn speech_end_ms(&self) -> Option<u64> {
        self.speech
            .map(|(_, end)| end as u64 * 1000 / u64::from(self.audio.rate.max(1)))
    }
}

/// A batch of answers run as levels: a corpus folder, or one interview case.
pub struct Batch {
    /// The case's name, `None` for a plain corpus.
    pub case: Option<&'static str>,
    /// Its answers, in order.
    pub inputs: Arc<Vec<Input>>,
}

/// How a level's calls start.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Calls in flight at once (in a burst: calls per burst).
    pub concurrency: usize,
    /// Calls in all.
    pub calls: usize,
    /// Bursts of `concurrency` calls that finish speaking together, instead of staggered
    /// starts.
    pub burst: bool,
}

/// Runs one level of `batch` and scores it: one [`Level`] per group of the case (a plain
/// corpus and a case without groups give one).
pub async fn run(
    opts: &Arc<ReplayOptions>,
    batch: &Batch,
    shape: Shape,
    bar: &ProgressBar,
) -> Result<Vec<Level>, BenchError> {
    let started = Instant::now();
    let inputs = &batch.inputs;
    let results = if shape.burst {
        bursts(opts, inputs, shape, bar).await?
    } else {
        let tasks = staggered(opts, inputs, shape).await?;
        finish(tasks, bar).await?
    };
    let mut records = Vec::with_capacity(shape.calls);
    for (call, turns) in results {
        let input = &inputs[call % inputs.len()];
        let interruption = input.interruption(opts);
        let mut record = call_record(
            call,
            &input.item,
            turns?,
            interruption,
            input.speech_end_ms(),
        );
        record.overlap = input.overlap.as_ref().map(|o| verdict(o, &record.turns));
        records.push(record);
    }
    records.sort_by_key(|r| r.call);
    let wall_s = started.elapsed().as_secs_f64();
    Ok(by_group(batch, records)
        .into_iter()
        .map(|(case, calls)| {
            let mut summary = summarise(&calls);
            summary.case = case;
            summary.concurrency = shape.concurrency;
            summary.wall_s = wall_s;
            Level { summary, calls }
        })
        .collect())
}

/// A call's index and what replay reported of it.
type CallResult = (usize, Result<Vec<TurnReport>, ClientError>);
type CallTasks = JoinSet<CallResult>;

/// Waits for every call of `tasks`, counting each on the bar.
async fn finish(mut tasks: CallTasks, bar: &ProgressBar) -> Result<Vec<CallResult>, BenchError> {
    let mut results = Vec::with_capacity(tasks.len());
    while let Some(joined) = tasks.join_next().await {
        results.push(joined.map_err(|e| BenchError::Internal(e.to_string()))?);
        bar.inc(1);
    }
    Ok(results)
}

/// Starts one call of `inputs` (cycling) after `delay`; `done` is held until it ends.
fn spawn_call<T: Send + 'static>(
    tasks: &mut CallTasks,
    (opts, inputs): (&Arc<ReplayOptions>, &Arc<Vec<Input>>),
    call: usize,
    delay: Duration,
    done: T,
) {
    let (opts, inputs) = (opts.clone(), inputs.clone());
    tasks.spawn(async move {
        tokio::time::sleep(delay).await;
        let input = &inputs[call % inputs.len()];
        // A call with its own clip speaks it over the reply instead of `--barge-in`'s.
        let opts = match &input.overlap {
            Some(o) => Arc::new(ReplayOptions {
                barge_in: Some(o.barge.clone()),
                ..(*opts).clone()
            }),
            None => opts,
        };
        let turns =
            replay_file_with_speech(&opts, &input.item.path, &input.audio, input.speech).await;
        drop(done);
        (call, turns)
    });
}

/// At most `concurrency` calls in flight; the first ones start [`START_STAGGER`] apart.
async fn staggered(
    opts: &Arc<ReplayOptions>,
    inputs: &Arc<Vec<Input>>,
    shape: Shape,
) -> Result<CallTasks, BenchError> {
    let slots = Arc::new(tokio::sync::Semaphore::new(shape.concurrency));
    let mut tasks = JoinSet::new();
    for call in 0..shape.calls {
        if call > 0 && call < shape.concurrency {
            tokio::time::sleep(START_STAGGER).await;
        }
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| BenchError::Internal(e.to_string()))?;
        spawn_call(&mut tasks, (opts, inputs), call, Duration::ZERO, permit);
    }
    Ok(tasks)
}

/// Bursts of `concurrency` calls, one after another: the calls of a burst start so that
/// their speech ends at the same instant (each waits for the longest's end less its own).
async fn bursts(
    opts: &Arc<ReplayOptions>,
    inputs: &Arc<Vec<Input>>,
    shape: Shape,
    bar: &ProgressBar,
) -> Result<Vec<CallResult>, BenchError> {
    let mut results = Vec::with_capacity(shape.calls);
    let mut calls = (0..shape.calls).peekable();
    while calls.peek().is_some() {
        let burst: Vec<usize> = calls.by_ref().take(shape.concurrency).collect();
        let end_of = |call: usize| inputs[call % inputs.len()].speech_end_ms().unwrap_or(0);
        let last_end = burst.iter().map(|&c| end_of(c)).max().unwrap_or(0);
        let mut tasks = JoinSet::new();
        for &call in &burst {
            let delay = Duration::from_millis(last_end - end_of(call));
            spawn_call(&mut tasks, (opts, inputs), call, delay, ());
        }
        // One burst at a time: the next starts when this one's calls are over.
        results.extend(finish(tasks, bar).await?);
    }
    Ok(results)
}

/// The level's calls split by their fixture's group: the case's own calls first (labelled
/// with the case), then each group's (labelled `case/group`).
fn by_group(batch: &Batch, records: Vec<CallRecord>) -> Vec<(Option<String>, Vec<CallRecord>)> {
    let group_of = |r: &CallRecord| {
        let input = &batch.inputs[r.call % batch.inputs.len()];
        input.item.fixture.as_ref().and_then(|f| f.group.clone())
    };
    let mut groups: Vec<(Option<String>, Vec<CallRecord>)> = Vec::new();
    for r in records {
        let group = group_of(&r);
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, calls)) => calls.push(r),
            None => groups.push((group, vec![r])),
        }
    }
    groups.sort_by_key(|(g, _)| g.is_some());
    groups
        .into_iter()
        .map(|(group, calls)| {
            let label = match (batch.case, group) {
                (Some(case), Some(g)) => Some(format!("{case}/{g}")),
                (Some(case), None) => Some(case.to_owned()),
                (None, g) => g,
            };
            (label, calls)
        })
        .collect()
}
