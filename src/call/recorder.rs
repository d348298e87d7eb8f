//! Per-call persistence: `events.jsonl` (every server event and final transcript, flushed as
//! it happens, each line stamped with the wall clock and both streams' positions) and, when
//! recording, `input.wav` / `output.wav`; when the call ends, its report. All calls share
//! one writer thread with a bounded queue, so a slow disk never stalls a call and a
//! thousand calls never mean a thousand threads.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, LazyLock};

use prometheus_client::metrics::counter::Counter;

/// Writes waiting for the disk, all calls together: about 20 s of 20 ms chunks for 48
/// calls. Beyond that a write is dropped (counted, logged once per call), never waited for.
const QUEUE_WRITES: usize = 48 * 1024;

type Wav = hound::WavWriter<BufWriter<File>>;

/// One call's open files, owned by the writer thread once the call is registered.
struct CallFiles {
    dir: PathBuf,
    events: BufWriter<File>,
    wavs: Option<(Wav, Wav)>,
}

impl CallFiles {
    /// Closes the files and writes the call's report from its log.
    fn finish(self) {
        if let Some((i, o)) = self.wavs {
            let _ = i.finalize();
            let _ = o.finalize();
        }
        drop(self.events);
        if let Err(e) = crate::report::write_files(&self.dir) {
            tracing::warn!(error = %e, dir = %self.dir.display(), "cannot write the call's report");
        }
    }
}

/// What the writer thread is asked to do. Opens, closes and syncs are never refused (one
/// or two per call); the writes in between count against [`QUEUE_WRITES`].
enum Job {
    Open(u64, Box<CallFiles>),
    Event(u64, String),
    Input(u64, Vec<i16>),
    Output(u64, Vec<i16>),
    Close(u64),
    Sync(SyncSender<()>),
}

/// The writer thread and its queue.
struct Writer {
    jobs: Sender<Job>,
    /// Writes queued and not yet done.
    queued: Arc<AtomicUsize>,
    capacity: usize,
    next_call: AtomicU64,
}

/// The writer every call's [`Recorder`] uses; started by the first call that records.
static SHARED: LazyLock<Arc<Writer>> = LazyLock::new(|| Writer::spawn(QUEUE_WRITES));

impl Writer {
    fn spawn(capacity: usize) -> Arc<Self> {
        let (jobs, rx) = channel::<Job>();
        let queued = Arc::new(AtomicUsize::new(0));
        let done = queued.clone();
        // If the thread cannot start, every later send fails and recordings are dropped.
        let started = std::thread::Builder::new()
            .name("call-recorder".into())
            .spawn(move || write_jobs(rx, &done));
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start the call recorder thread");
        }
        Arc::new(Self {
            jobs,
            queued,
            capacity,
            next_call: AtomicU64::new(0),
        })
    }

    /// Queues a write unless `capacity` writes are already waiting; false when refused.
    fn try_write(&self, job: Job) -> bool {
        let admitted = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .is_ok();
        if admitted && self.jobs.send(job).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        admitted
    }

    /// Waits until everything queued before it is on disk (tests, and the drain's end).
    fn sync(&self) {
        let (tx, rx) = sync_channel(1);
        if self.jobs.send(Job::Sync(tx)).is_ok() {
            let _ = rx.recv();
        }
    }
}

/// The writer thread: runs jobs in order until every sender is gone.
fn write_jobs(rx: Receiver<Job>, queued: &AtomicUsize) {
    let mut calls: HashMap<u64, CallFiles> = HashMap::new();
    for job in rx {
        let result = match job {
            Job::Open(id, files) => {
                calls.insert(id, *files);
                Ok(())
            }
            Job::Close(id) => {
                calls.remove(&id).map(CallFiles::finish);
                Ok(())
            }
            Job::Sync(done) => {
                let _ = done.send(());
                Ok(())
            }
            Job::Event(id, line) => {
                queued.fetch_sub(1, Ordering::AcqRel);
                calls.get_mut(&id).map_or(Ok(()), |f| {
                    let e = &mut f.events;
                    e.write_all(line.as_bytes())
                        .and_then(|_| e.write_all(b"\n"))
                        .and_then(|_| e.flush())
                })
            }
            Job::Input(id, samples) => {
                queued.fetch_sub(1, Ordering::AcqRel);
                write_wav(calls.get_mut(&id), &samples, true)
            }
            Job::Output(id, samples) => {
                queued.fetch_sub(1, Ordering::AcqRel);
                write_wav(calls.get_mut(&id), &samples, false)
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "call recording write failed");
        }
    }
    calls.into_values().for_each(CallFiles::finish);
}

fn write_wav(files: Option<&mut CallFiles>, samples: &[i16], input: bool) -> std::io::Result<()> {
    let Some((i, o)) = files.and_then(|f| f.wavs.as_mut()) else {
        return Ok(());
    };
    let wav = if input { i } else { o };
    samples
        .iter()
        .try_for_each(|&x| wav.write_sample(x))
        .map_err(std::io::Error::other)
}

/// The call's two audio streams as the recorder sees them.
#[derive(Clone, Copy, Debug)]
pub struct Streams {
    /// Input rate (Hz, after downmixing to mono) and output rate (Hz).
    pub rates: (u32, u32),
    /// Also write input.wav and output.wav.
    pub record_audio: bool,
}

/// Handle to a call's recording. Dropping it flushes and closes the files (on the writer
/// thread).
pub struct Recorder {
    writer: Arc<Writer>,
    id: u64,
    dir: PathBuf,
    streams: Streams,
    /// Samples taken in and sent so far: the stream positions each event is stamped with.
    input_samples: AtomicU64,
    output_samples: AtomicU64,
    /// Writes refused because the queue was full (`callgate_recording_writes_dropped`).
    dropped: Counter,
    warned: AtomicBool,
}

impl Recorder {
    /// Creates `dir` and opens its files (blocking file I/O: call it off the tokio
    /// workers). Writes go to the shared writer thread; refused ones count in `dropped`.
    pub fn start(dir: &Path, streams: Streams, dropped: Counter) -> std::io::Result<Self> {
        Self::start_on(SHARED.clone(), dir, streams, dropped)
    }

    fn start_on(
        writer: Arc<Writer>,
        dir: &Path,
        streams: Streams,
        dropped: Counter,
    ) -> std::io::Result<Self> {
        let files = open_files(dir, streams.record_audio.then_some(streams.rates))?;
        let id = writer.next_call.fetch_add(1, Ordering::Relaxed);
        writer
            .jobs
            .send(Job::Open(id, Box::new(files)))
            .map_err(|_| std::io::Error::other("the call recorder thread is gone"))?;
        Ok(Self {
            writer,
            id,
            dir: dir.to_path_buf(),
            streams,
            input_samples: AtomicU64::new(0),
            output_samples: AtomicU64::new(0),
            dropped,
            warned: AtomicBool::new(false),
        })
    }

    /// The call's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn send(&self, job: Job) {
        if self.writer.try_write(job) {
            return;
        }
        self.dropped.inc();
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(dir = %self.dir.display(), "recorder is behind; dropping data (counted in callgate_recording_writes_dropped_total)");
        }
    }

    /// Appends one JSON object to events.jsonl, stamped with when it was written.
    pub fn event(&self, json: &str) {
        let stamp = Stamp {
            at_ms: unix_ms(),
            input_ms: position_ms(&self.input_samples, self.streams.rates.0),
            output_ms: position_ms(&self.output_samples, self.streams.rates.1),
        };
        self.send(Job::Event(self.id, stamp.apply(json)));
    }

    /// Takes in input audio (after sequencing, at the input rate, mono).
    pub fn input(&self, samples: &[i16]) {
        self.input_samples
            .fetch_add(samples.len() as u64, Ordering::Relaxed);
        if self.streams.record_audio {
            self.send(Job::Input(self.id, samples.to_vec()));
        }
    }

    /// Takes in output audio (at the output rate).
    pub fn output(&self, samples: &[i16]) {
        self.output_samples
            .fetch_add(samples.len() as u64, Ordering::Relaxed);
        if self.streams.record_audio {
            self.send(Job::Output(self.id, samples.to_vec()));
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.writer.jobs.send(Job::Close(self.id));
    }
}

/// When an event line was written: the wall clock (Unix ms) and how far each audio stream
/// had got (ms of input taken in, ms of output sent), so a report can be rebuilt from the
/// log alone.
struct Stamp {
    at_ms: u64,
    input_ms: u64,
    output_ms: u64,
}

impl Stamp {
    /// `json` (one object) with the stamp as its first fields and without the resume
    /// token: the log is served to the call's user, and the token would let anyone holding
    /// a copy take over a live call.
    fn apply(&self, json: &str) -> String {
        let body = if json.contains("\"resumeToken\"") {
            without_resume_token(json)
        } else {
            json.to_string()
        };
        let Some(fields) = body.trim_start().strip_prefix('{') else {
            return body;
        };
        let comma = if fields.trim_start().starts_with('}') {
            ""
        } else {
            ","
        };
        format!(
            "{{\"at\":{},\"inputMs\":{},\"outputMs\":{}{comma}{fields}",
            self.at_ms, self.input_ms, self.output_ms
        )
    }
}

fn without_resume_token(json: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(mut v) => {
            if let Some(o) = v.as_object_mut() {
                o.remove("resumeToken");
            }
            v.to_string()
        }
        Err(_) => json.to_string(),
    }
}

/// Unix time in ms by this machine's clock.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn position_ms(samples: &AtomicU64, rate: u32) -> u64 {
    samples.load(Ordering::Relaxed) * 1000 / u64::from(rate.max(1))
}

/// Creates `dir` and opens the call's files.
fn open_files(dir: &Path, wav_rates: Option<(u32, u32)>) -> std::io::Result<CallFiles> {
    std::fs::create_dir_all(dir)?;
    let events = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("events.jsonl"))?;
    let wav = |name: &str, rate: u32| {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        hound::WavWriter::create(dir.join(name), spec).map_err(std::io::Error::other)
    };
    let wavs = match wav_rates {
        Some((i, o)) => Some((wav("input.wav", i)?, wav("output.wav", o)?)),
        None => None,
    };
    Ok(CallFiles {
        dir: dir.to_path_buf(),
        events: BufWriter::new(events),
        wavs,
    })
}

/// Waits until every write queued so far by any call is on disk.
pub fn sync() {
    SHARED.sync();
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDING: Streams = Streams {
        rates: (16_000, 24_000),
        record_audio: true,
    };

    #[test]
    fn each_line_is_stamped_with_the_clock_and_both_stream_positions() {
        let root = temp_dir("stamps");
        let r = Recorder::start(&root, RECORDING, Counter::default()).expect("start");
        r.event(r#"{"type":"a"}"#);
        r.input(&[0; 8000]);
        r.output(&[0; 12_000]);
        r.event(r#"{"type":"session.started","sessionId":"s","resumeToken":"secret"}"#);
        r.event("{}");
        drop(r);
        sync();
        let log = std::fs::read_to_string(root.join("events.jsonl")).expect("log");
        let lines: Vec<serde_json::Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .collect();
        assert_eq!(
            (&lines[0]["inputMs"], &lines[0]["outputMs"]),
            (&0.into(), &0.into())
        );
        assert_eq!(
            (&lines[1]["inputMs"], &lines[1]["outputMs"]),
            (&500.into(), &500.into())
        );
        assert!(
            lines[1]["at"]
                .as_u64()
                .is_some_and(|t| t > 1_700_000_000_000)
        );
        assert_eq!(lines[1]["sessionId"], "s");
        assert!(
            !log.contains("secret"),
            "the resume token is not logged: {log}"
        );
        assert!(lines[2]["at"].is_u64(), "an empty object is stamped too");
        let _ = std::fs::remove_dir_all(&root);
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("callgate-rec-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn recorder_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.trim() == "call-recorder")
            })
            .count()
    }

    #[test]
    fn many_calls_share_one_writer_thread() {
        let root = temp_dir("many");
        let recorders: Vec<_> = (0..40)
            .map(|i| {
                Recorder::start(&root.join(i.to_string()), RECORDING, Counter::default())
                    .expect("start")
            })
            .collect();
        for r in &recorders {
            r.event(r#"{"type":"call.meta"}"#);
            r.input(&[1; 320]);
            r.output(&[2; 480]);
        }
        // Other tests in this process start and end the shared writer too: wait out a
        // handover rather than read the count mid-way.
        let mut threads = recorder_threads();
        for _ in 0..200 {
            if threads == 1 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            threads = recorder_threads();
        }
        assert_eq!(threads, 1, "one writer thread for every call");
        drop(recorders);
        sync();
        let input = hound::WavReader::open(root.join("7").join("input.wav")).expect("finalized");
        assert_eq!(input.len(), 320);
        let events = std::fs::read_to_string(root.join("7").join("events.jsonl")).expect("log");
        let line: serde_json::Value = serde_json::from_str(&events).expect("one JSON line");
        assert_eq!(line["type"], "call.meta");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let root = temp_dir("full");
        let dropped = Counter::default();
        // A queue with no room: every write is refused at once, none waits for the disk.
        let writer = Writer::spawn(0);
        let streams = Streams {
            record_audio: false,
            ..RECORDING
        };
        let r = Recorder::start_on(writer.clone(), &root, streams, dropped.clone()).expect("start");
        let started = std::time::Instant::now();
        for _ in 0..1000 {
            r.event("{}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(dropped.get(), 1000, "every refused write is counted");
        drop(r);
        writer.sync();
        assert_eq!(
            std::fs::read_to_string(root.join("events.jsonl")).expect("log"),
            ""
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
