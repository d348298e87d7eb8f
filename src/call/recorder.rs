//! Per-call persistence: `events.jsonl` (every server event and final transcript, flushed as
//! it happens) and, when recording, `input.wav` / `output.wav`. File I/O runs on its own
//! thread so a slow disk never stalls the call.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

enum Item {
    Event(String),
    Input(Vec<i16>),
    Output(Vec<i16>),
}

/// Handle to a call's recorder thread. Dropping it flushes and closes the files.
pub struct Recorder {
    tx: SyncSender<Item>,
    dir: PathBuf,
}

impl Recorder {
    /// Creates `dir` and starts writing; `wav_rates` = (input, output) rates when audio is
    /// recorded.
    pub fn start(dir: &Path, wav_rates: Option<(u32, u32)>) -> std::io::Result<Self> {
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
        let mut wavs = match wav_rates {
            Some((i, o)) => Some((wav("input.wav", i)?, wav("output.wav", o)?)),
            None => None,
        };
        // Bounded: at most a few seconds of audio in flight; beyond that the recording drops
        // data (logged) rather than growing memory.
        let (tx, rx) = sync_channel::<Item>(1024);
        std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || {
                let mut events = std::io::BufWriter::new(events);
                for item in rx {
                    let result = match (item, wavs.as_mut()) {
                        (Item::Event(line), _) => events
                            .write_all(line.as_bytes())
                            .and_then(|_| events.write_all(b"\n"))
                            .and_then(|_| events.flush()),
                        (Item::Input(s), Some((w, _))) | (Item::Output(s), Some((_, w))) => s
                            .iter()
                            .try_for_each(|&x| w.write_sample(x))
                            .map_err(std::io::Error::other),
                        _ => Ok(()),
                    };
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "call recording write failed");
                    }
                }
                if let Some((i, o)) = wavs {
                    let _ = i.finalize();
                    let _ = o.finalize();
                }
            })?;
        Ok(Self {
            tx,
            dir: dir.to_path_buf(),
        })
    }

    /// The call's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn send(&self, item: Item) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(item) {
            tracing::warn!(dir = %self.dir.display(), "recorder is behind; dropping data");
        }
    }

    /// Appends one JSON line to events.jsonl.
    pub fn event(&self, json: &str) {
        self.send(Item::Event(json.to_string()));
    }

    /// Appends input audio (after sequencing, at the input rate, mono).
    pub fn input(&self, samples: &[i16]) {
        self.send(Item::Input(samples.to_vec()));
    }

    /// Appends output audio (at the output rate).
    pub fn output(&self, samples: &[i16]) {
        self.send(Item::Output(samples.to_vec()));
    }
}
