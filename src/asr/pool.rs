//! The whisper worker pool shared by every call: finals jump ahead of partials, a final
//! that finds every worker busy preempts a running partial, stale partials are skipped,
//! and the queue is bounded so a burst cannot grow memory.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{AsrError, DecodeOptions, Transcriber, Transcription};

/// Which kind of decode a job is; finals are what a waiting candidate is blocked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// The end-of-turn transcript (or its speculative twin).
    Final,
    /// A progress transcript while the user is still speaking.
    Partial,
}

/// What a finished job reports.
#[derive(Debug)]
pub struct AsrOutcome {
    /// The transcription, or why there is none.
    pub result: Result<Transcription, AsrError>,
    /// Time spent waiting for a worker.
    pub queued: Duration,
    /// Time spent decoding.
    pub decode: Duration,
}

struct Job {
    audio: Vec<f32>,
    options: DecodeOptions,
    cancel: CancellationToken,
    submitted: Instant,
    reply: oneshot::Sender<AsrOutcome>,
}

#[derive(Default)]
struct Queues {
    finals: VecDeque<Job>,
    partials: VecDeque<Job>,
    /// Partials being decoded, with the pool's own token for each: cancelling it stops
    /// that decode (and only it) so a waiting final gets the worker.
    running_partials: Vec<(u64, CancellationToken)>,
    /// When each decode now running started: a decode takes at least as long as the
    /// oldest of them has run, which bounds the wait before anything finished.
    running_since: Vec<Instant>,
    /// Workers waiting for a job.
    idle: usize,
    next_id: u64,
    closed: bool,
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
    /// Recent final decode time, ms (a moving average; 0 before the first).
    final_decode_ms: AtomicU64,
    /// Recent partial decode time, ms, the estimate before any final was decoded: a burst
    /// of calls right after start commits its finals together, after only partials ran.
    partial_decode_ms: AtomicU64,
}

/// A fixed set of decode threads over one [`Transcriber`].
pub struct AsrPool {
    shared: Arc<Shared>,
    workers: usize,
    max_queued_finals: usize,
    max_queued_partials: usize,
    /// Whether a final that finds every worker busy stops a running partial.
    preempt: bool,
}

/// A partial that waited longer than this is no longer worth showing: a newer one is due.
const PARTIAL_MAX_AGE: Duration = Duration::from_millis(600);

/// Why a job was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Too many finals are waiting: the server is saturated.
    #[error("speech recognition is saturated ({0} decodes waiting)")]
    Saturated(usize),
    /// The pool has shut down.
    #[error("speech recognition pool is shut down")]
    Closed,
}

impl AsrPool {
    /// Starts `workers` decode threads over `engine`.
    pub fn new(engine: Arc<dyn Transcriber>, workers: usize) -> Self {
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
            ready: Condvar::new(),
            final_decode_ms: AtomicU64::new(0),
            partial_decode_ms: AtomicU64::new(0),
        });
        let workers = workers.max(1);
        for i in 0..workers {
            let shared = shared.clone();
            let engine = engine.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("asr-{i}"))
                .spawn(move || worker_loop(&shared, engine.as_ref()));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start an ASR worker thread");
            }
        }
        Self {
            shared,
            workers,
            max_queued_finals: 64,
            max_queued_partials: 16,
            preempt: true,
        }
    }

    /// Turns preemption of running partials on (the default) or off.
    pub fn preempting(mut self, preempt: bool) -> Self {
        self.preempt = preempt;
        self
    }

    /// Number of decode threads.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Finals and partials waiting for a worker.
    pub fn queued(&self) -> (usize, usize) {
        self.shared
            .queues
            .lock()
            .map(|q| (q.finals.len(), q.partials.len()))
            .unwrap_or((0, 0))
    }

    /// About how long a final queued now waits for its transcript: the finals ahead of it
    /// spread over the workers, and its own decode, at the recent final decode time (the
    /// partials' until a final has been decoded), and never less than the oldest running
    /// decode has taken so far (a burst right after start, or a machine that just slowed
    /// down). Zero while nothing has been decoded or is decoding.
    pub fn final_wait(&self) -> Duration {
        let average = match self.shared.final_decode_ms.load(Ordering::Relaxed) {
            0 => self.shared.partial_decode_ms.load(Ordering::Relaxed),
            ms => ms,
        };
        let Ok(q) = self.shared.queues.lock() else {
            return Duration::ZERO;
        };
        let running = q.running_since.iter().map(|t| t.elapsed()).max();
        let per_decode = Duration::from_millis(average).max(running.unwrap_or_default());
        let rounds = q.finals.len() as u32 / self.workers as u32 + 1;
        per_decode * rounds
    }

    /// Queues a decode; the receiver gets the outcome (or is dropped if a partial was shed).
    pub fn submit(
        &self,
        priority: Priority,
        audio: Vec<f32>,
        options: DecodeOptions,
        cancel: CancellationToken,
    ) -> Result<oneshot::Receiver<AsrOutcome>, SubmitError> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            audio,
            options,
            cancel,
            submitted: Instant::now(),
            reply,
        };
        let mut q = self.shared.queues.lock().map_err(|_| SubmitError::Closed)?;
        if q.closed {
            return Err(SubmitError::Closed);
        }
        match priority {
            Priority::Final => {
                if q.finals.len() >= self.max_queued_finals {
                    return Err(SubmitError::Saturated(q.finals.len()));
                }
                q.finals.push_back(job);
                // A candidate is waiting on this one; a progress transcript is not worth
                // making them wait for. whisper polls the abort hook after the encoder and
                // between tokens, so this saves the partial's decoder steps.
                if self.preempt
                    && q.idle < q.finals.len()
                    && let Some((_, token)) = q.running_partials.first()
                {
                    token.cancel();
                }
            }
            Priority::Partial => {
                // Shed the oldest partial: a newer one supersedes it anyway.
                if q.partials.len() >= self.max_queued_partials {
                    q.partials.pop_front();
                }
                q.partials.push_back(job);
            }
        }
        q.partials
            .retain(|j| j.submitted.elapsed() < PARTIAL_MAX_AGE && !j.cancel.is_cancelled());
        drop(q);
        self.shared.ready.notify_one();
        Ok(rx)
    }

    /// Stops the workers once the queued jobs are done.
    pub fn close(&self) {
        if let Ok(mut q) = self.shared.queues.lock() {
            q.closed = true;
        }
        self.shared.ready.notify_all();
    }
}

impl Drop for AsrPool {
    fn drop(&mut self) {
        self.close();
    }
}

/// A job taken by a worker; `token` is what the decode watches (for a partial, a child of
/// the job's own token that the pool can cancel alone).
struct Taken {
    job: Job,
    token: CancellationToken,
    partial_id: Option<u64>,
}

fn next_job(shared: &Shared) -> Option<Taken> {
    let mut q = shared.queues.lock().ok()?;
    loop {
        while let Some(job) = q.finals.pop_front() {
            if !job.cancel.is_cancelled() {
                let token = job.cancel.clone();
                return Some(Taken {
                    job,
                    token,
                    partial_id: None,
                });
            }
        }
        while let Some(job) = q.partials.pop_front() {
            // A partial is stale when it waited too long or its turn moved on.
            if !job.cancel.is_cancelled() && job.submitted.elapsed() < PARTIAL_MAX_AGE {
                let token = job.cancel.child_token();
                let id = q.next_id;
                q.next_id += 1;
                q.running_partials.push((id, token.clone()));
                return Some(Taken {
                    job,
                    token,
                    partial_id: Some(id),
                });
            }
        }
        if q.closed {
            return None;
        }
        q.idle += 1;
        q = shared.ready.wait(q).ok()?;
        q.idle -= 1;
    }
}

/// Folds one decode's time into `average` (a quarter weight: recent load matters, one slow
/// decode does not swing it).
fn record_decode(average: &AtomicU64, took: Duration) {
    let took_ms = took.as_millis() as u64;
    let _ = average.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
        Some(if avg == 0 {
            took_ms
        } else {
            (3 * avg + took_ms) / 4
        })
    });
}

fn worker_loop(shared: &Shared, engine: &dyn Transcriber) {
    while let Some(Taken {
        job,
        token,
        partial_id,
    }) = next_job(shared)
    {
        let queued = job.submitted.elapsed();
        let started = Instant::now();
        if let Ok(mut q) = shared.queues.lock() {
            q.running_since.push(started);
        }
        let result = engine.transcribe(&job.audio, &job.options, &token);
        if let Ok(mut q) = shared.queues.lock()
            && let Some(i) = q.running_since.iter().position(|t| *t == started)
        {
            q.running_since.swap_remove(i);
        }
        if result.is_ok() {
            let average = match partial_id {
                None => &shared.final_decode_ms,
                Some(_) => &shared.partial_decode_ms,
            };
            record_decode(average, started.elapsed());
        }
        if let Some(id) = partial_id
            && let Ok(mut q) = shared.queues.lock()
        {
            q.running_partials.retain(|(i, _)| *i != id);
        }
        let _ = job.reply.send(AsrOutcome {
            result,
            queued,
            decode: started.elapsed(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Records the order of decodes; a fake engine is needed to observe scheduling.
    struct Recorder {
        order: Mutex<Vec<usize>>,
        busy: AtomicUsize,
    }

    impl Transcriber for Recorder {
        fn transcribe(
            &self,
            audio: &[f32],
            _: &DecodeOptions,
            cancel: &CancellationToken,
        ) -> Result<Transcription, AsrError> {
            self.busy.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(30));
            if let Ok(mut o) = self.order.lock() {
                o.push(audio.len());
            }
            if cancel.is_cancelled() {
                return Err(AsrError::Cancelled);
            }
            Ok(Transcription::default())
        }
        fn name(&self) -> &'static str {
            "recorder"
        }
    }

    fn recorder() -> Arc<Recorder> {
        Arc::new(Recorder {
            order: Mutex::new(Vec::new()),
            busy: AtomicUsize::new(0),
        })
    }

    #[tokio::test]
    async fn the_wait_for_a_final_grows_with_the_finals_ahead() {
        let pool = AsrPool::new(recorder(), 1);
        let (opts, t) = (DecodeOptions::default(), CancellationToken::new());
        assert_eq!(pool.final_wait(), Duration::ZERO, "nothing measured yet");
        let first = pool.submit(Priority::Final, vec![0.0; 1], opts.clone(), t.clone());
        let _ = first.expect("submit").await;
        let alone = pool.final_wait();
        assert!(alone >= Duration::from_millis(25), "{alone:?}");
        // One decoding, two waiting: a new final waits for both of them and its own.
        let queued: Vec<_> = (0..3)
            .map(|_| pool.submit(Priority::Final, vec![0.0; 1], opts.clone(), t.clone()))
            .collect();
        let behind = pool.final_wait();
        assert!(behind >= 2 * alone, "{behind:?} vs {alone:?}");
        for rx in queued {
            let _ = rx.expect("submit").await;
        }
    }

    #[tokio::test]
    async fn before_any_final_the_wait_is_estimated_from_the_partials() {
        let pool = AsrPool::new(recorder(), 1);
        let (opts, t) = (DecodeOptions::default(), CancellationToken::new());
        let partial = pool.submit(Priority::Partial, vec![0.0; 1], opts, t);
        let _ = partial.expect("submit").await;
        let wait = pool.final_wait();
        assert!(wait >= Duration::from_millis(25), "{wait:?}");
    }

    #[tokio::test]
    async fn while_the_first_decode_runs_the_wait_is_at_least_its_time_so_far() {
        let engine = recorder();
        let pool = AsrPool::new(engine.clone(), 1);
        let (opts, t) = (DecodeOptions::default(), CancellationToken::new());
        let first = pool.submit(Priority::Final, vec![0.0; 1], opts, t);
        while engine.busy.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20));
        let wait = pool.final_wait();
        assert!(wait >= Duration::from_millis(15), "{wait:?}");
        let _ = first.expect("submit").await;
    }

    #[tokio::test]
    async fn finals_jump_ahead_of_partials() {
        let engine = recorder();
        let pool = AsrPool::new(engine.clone(), 1);
        let opts = DecodeOptions::default();
        let t = CancellationToken::new();
        // The first partial occupies the worker; then two partials and a final queue up.
        let first = pool.submit(Priority::Partial, vec![0.0; 1], opts.clone(), t.clone());
        tokio::time::sleep(Duration::from_millis(5)).await;
        let p2 = pool.submit(Priority::Partial, vec![0.0; 2], opts.clone(), t.clone());
        let f = pool.submit(Priority::Final, vec![0.0; 3], opts.clone(), t.clone());
        for rx in [first, p2, f] {
            let _ = rx.expect("submit").await;
        }
        let order = engine.order.lock().expect("lock").clone();
        assert_eq!(order, vec![1, 3, 2]);
    }

    /// On a one-worker pool: a partial the worker has started, then a final that finds no
    /// worker free; the outcomes of both.
    async fn partial_then_final(
        pool: &AsrPool,
        engine: &Recorder,
        t: &CancellationToken,
    ) -> (AsrOutcome, AsrOutcome) {
        let opts = DecodeOptions::default();
        let partial = pool.submit(Priority::Partial, vec![0.0; 1], opts.clone(), t.clone());
        while engine.busy.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let f = pool.submit(Priority::Final, vec![0.0; 2], opts, t.clone());
        let p = partial.expect("submit").await.expect("reply");
        (p, f.expect("submit").await.expect("reply"))
    }

    #[tokio::test]
    async fn a_final_preempts_a_running_partial() {
        let engine = recorder();
        let pool = AsrPool::new(engine.clone(), 1);
        let opts = DecodeOptions::default();
        let t = CancellationToken::new();
        let (p, done) = partial_then_final(&pool, &engine, &t).await;
        assert!(matches!(p.result, Err(AsrError::Cancelled)), "{p:?}");
        assert!(done.result.is_ok());
        // Only the partial's decode was stopped: the job's own token is untouched.
        assert!(!t.is_cancelled());
        // A final with a worker idle leaves partials alone.
        let pool = AsrPool::new(engine.clone(), 2);
        let partial = pool.submit(Priority::Partial, vec![0.0; 3], opts.clone(), t.clone());
        tokio::time::sleep(Duration::from_millis(5)).await;
        let f = pool.submit(Priority::Final, vec![0.0; 4], opts.clone(), t.clone());
        assert!(
            partial
                .expect("submit")
                .await
                .expect("reply")
                .result
                .is_ok()
        );
        assert!(f.expect("submit").await.expect("reply").result.is_ok());
    }

    #[tokio::test]
    async fn without_preemption_a_final_waits_for_the_partial() {
        let engine = recorder();
        let pool = AsrPool::new(engine.clone(), 1).preempting(false);
        let (p, done) = partial_then_final(&pool, &engine, &CancellationToken::new()).await;
        assert!(p.result.is_ok(), "{p:?}");
        assert!(done.result.is_ok());
    }

    #[tokio::test]
    async fn cancelled_jobs_are_skipped() {
        let engine = recorder();
        let pool = AsrPool::new(engine.clone(), 1);
        let opts = DecodeOptions::default();
        let live = CancellationToken::new();
        let dead = CancellationToken::new();
        let a = pool.submit(Priority::Final, vec![0.0; 1], opts.clone(), live.clone());
        tokio::time::sleep(Duration::from_millis(5)).await;
        let b = pool.submit(Priority::Final, vec![0.0; 2], opts.clone(), dead.clone());
        dead.cancel();
        let c = pool.submit(Priority::Final, vec![0.0; 3], opts.clone(), live.clone());
        let _ = a.expect("a").await;
        assert!(
            b.expect("b").await.is_err(),
            "a skipped job's reply is dropped"
        );
        let _ = c.expect("c").await;
        assert_eq!(engine.order.lock().expect("lock").clone(), vec![1, 3]);
    }
}
