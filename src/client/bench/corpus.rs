//! The bench's input: a folder of WAV files with an optional `manifest.json` of reference
//! texts, or a corpus generated with the espeak-ng command-line tool (several voices,
//! seeded lead-in silences and, on request, a pause in the middle of each answer).
//!
//! The espeak-ng *command* is used rather than the server's in-process engine: espeak-ng's
//! C API holds global state, and with `--spawn` the server's synthesis thread owns it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::audio::wav;

/// Interview answers: (espeak-ng voice, text). Lengths from under a second to about 12 s;
/// three are very short answers, where whisper's trimmed window is weakest. Used by the
/// generated bench corpus, the tests and the measurement examples alike.
pub const INTERVIEW_ANSWERS: &[(&str, &str)] = &[
    ("en-us", "Yes."),
    ("en-gb", "No, I haven't."),
    ("en-us+f3", "About two years."),
    (
        "en-us",
        "I have five years of experience building backend services in Rust and Python.",
    ),
    (
        "en-gb",
        "The hardest bug I fixed was a race condition in our payment service.",
    ),
    (
        "en-us+f3",
        "We moved the monolith to microservices over about eighteen months.",
    ),
    (
        "en-us+m3",
        "I usually start by writing a failing test, then I fix the code until it passes.",
    ),
    (
        "en-gb",
        "In my last role I led a team of four engineers working on the search platform.",
    ),
    (
        "en-us",
        "We used Kafka to stream events between services, and Postgres as the main database.",
    ),
    (
        "en-us+f2",
        "When the database became the bottleneck, we added read replicas and a cache in front of it.",
    ),
    (
        "en-gb",
        "My biggest weakness is that I sometimes spend too long polishing code before I ship it.",
    ),
    (
        "en-us+m3",
        "I prefer Go for network services because the concurrency model is simple and the binaries are small.",
    ),
    (
        "en-us",
        "Our deployment pipeline runs the unit tests, builds a container image, and rolls it out to staging first.",
    ),
    (
        "en-us+f3",
        "I disagreed with my manager about the release date, so I wrote down the risks and we agreed to cut two features.",
    ),
    (
        "en-gb",
        "To find the memory leak, I took heap snapshots an hour apart and compared which objects kept growing.",
    ),
    (
        "en-us",
        "For the payment system we needed exactly once processing, so every request carried an idempotency key that we stored with the transaction.",
    ),
    (
        "en-us+f2",
        "I would design the rate limiter as a token bucket per customer, kept in Redis, so that every instance of the gateway sees the same counts.",
    ),
    (
        "en-us+m3",
        "At my previous company I was on call one week in six, and I wrote most of the runbooks that the team still uses today.",
    ),
    (
        "en-gb",
        "I learned Rust two years ago, and what I like most is that the compiler catches whole classes of bugs before the code ever runs in production.",
    ),
    (
        "en-us",
        "If I joined your team, I would first spend a few weeks reading the code and fixing small bugs, so that I understand how the system really behaves before proposing larger changes.",
    ),
];

/// The interruption spoken over the AI with `--barge-in`.
pub const BARGE_IN_TEXT: &str = "Sorry, can I stop you there for a second?";

/// The manifest's file name inside a corpus folder.
pub const MANIFEST: &str = "manifest.json";

/// What can go wrong preparing the corpus.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// A file or folder could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// espeak-ng could not be run or failed.
    #[error("espeak-ng: {0} (install it: apt-get install espeak-ng)")]
    Espeak(String),
    /// sox could not be run or failed (it makes the noise of the room cases).
    #[error("sox: {0} (install it: apt-get install sox)")]
    Sox(String),
    /// The folder holds no WAV file.
    #[error("{0}: no .wav files (use --generate to make a corpus)")]
    Empty(String),
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> CorpusError {
    CorpusError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// One input file, with its reference text when the manifest has one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Item {
    /// The WAV file.
    pub path: PathBuf,
    /// What is said in it.
    pub reference: Option<String>,
    /// What the manifest says of how it was made (generated fixtures only).
    pub fixture: Option<Fixture>,
}

/// A generated file's entry in `manifest.json`, beyond its text: what the bench needs to
/// score it when the signal cannot say (speech under noise) and what it groups by.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fixture {
    /// What is said.
    pub text: String,
    /// The answer it belongs to within its case (a long answer and its sentences share one).
    #[serde(default)]
    pub answer: usize,
    /// A sub-set of the case reported apart (e.g. `sentences`: a long answer's sentences
    /// spoken one by one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The espeak-ng voice.
    #[serde(default)]
    pub voice: String,
    /// Where the speech starts and ends in the file, ms.
    pub speech_ms: (u64, u64),
    /// The silences put between its spoken parts, ms.
    #[serde(default)]
    pub pauses_ms: Vec<u64>,
    /// The room noise mixed in, e.g. `pink noise at 20 dB SNR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<String>,
}

/// A manifest value: the text alone, or a generated fixture's full entry.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ManifestEntry {
    Text(String),
    Fixture(Fixture),
}

/// Reads a corpus folder: its `.wav` files in name order, each with its reference from
/// `manifest.json` (a JSON object mapping file names to texts, or to [`Fixture`] entries)
/// when there is one.
pub fn load(dir: &Path) -> Result<Vec<Item>, CorpusError> {
    let manifest_path = dir.join(MANIFEST);
    let manifest: BTreeMap<String, ManifestEntry> = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| io_error(&manifest_path, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(io_error(&manifest_path, e)),
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_error(dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(CorpusError::Empty(dir.display().to_string()));
    }
    Ok(paths
        .into_iter()
        .map(|path| {
            let entry = path
                .file_name()
                .and_then(|n| manifest.get(n.to_string_lossy().as_ref()));
            let (reference, fixture) = match entry {
                Some(ManifestEntry::Text(t)) => (Some(t.clone()), None),
                Some(ManifestEntry::Fixture(f)) => (Some(f.text.clone()), Some(f.clone())),
                None => (None, None),
            };
            Item {
                path,
                reference,
                fixture,
            }
        })
        .collect())
}

/// How to generate a corpus.
#[derive(Debug, Clone)]
pub struct Generate {
    /// Files to make; the answers are used in order, cycling.
    pub count: usize,
    /// Seed of the lead-in silences.
    pub seed: u64,
    /// A pause of this length in the middle of each answer of four words or more (to
    /// measure cut-offs); 0 for none.
    pub pause_ms: u32,
}

/// A small deterministic generator (SplitMix64): the same seed gives the same corpus on
/// any machine, without a dependency.
pub struct SplitMix(u64);

impl SplitMix {
    /// Starts at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// Splits an answer near its middle word for a mid-sentence pause; `None` below four words.
pub fn split_for_pause(text: &str) -> Option<(String, String)> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() < 4 {
        return None;
    }
    let mid = words.len() / 2;
    Some((words[..mid].join(" "), words[mid..].join(" ")))
}

/// Speaks `text` with the espeak-ng command into the WAV file `out` (espeak-ng's own rate,
/// mono): the one place speech is synthesised for corpora and test fixtures.
pub fn espeak_to_file(text: &str, voice: &str, out: &Path) -> Result<(), CorpusError> {
    run_espeak(&[], text, voice, out)
}

/// As [`espeak_to_file`], with SSML markup interpreted: `<break time="1000ms"/>` is a pause
/// that does not end the clause (plain text can only pause at punctuation, which changes
/// the intonation before it).
pub fn espeak_ssml_to_file(ssml: &str, voice: &str, out: &Path) -> Result<(), CorpusError> {
    run_espeak(&["-m"], ssml, voice, out)
}

fn run_espeak(flags: &[&str], text: &str, voice: &str, out: &Path) -> Result<(), CorpusError> {
    let run = Command::new("espeak-ng")
        .args(flags)
        .args(["-v", voice, "-w"])
        .arg(out)
        .arg(text)
        .output()
        .map_err(|e| CorpusError::Espeak(e.to_string()))?;
    if !run.status.success() {
        return Err(CorpusError::Espeak(
            String::from_utf8_lossy(&run.stderr).trim().to_owned(),
        ));
    }
    Ok(())
}

/// Speaks `text` with espeak-ng: mono samples at espeak-ng's own rate (`scratch` is the
/// file it goes through).
pub fn speak(text: &str, voice: &str, scratch: &Path) -> Result<wav::Clip, CorpusError> {
    espeak_to_file(text, voice, scratch)?;
    let clip = wav::read_mono(scratch).map_err(|e| io_error(scratch, e))?;
    let _ = std::fs::remove_file(scratch);
    Ok(clip)
}

/// Writes a generated corpus into `dir` (created if missing): `NN-voice.wav` files, a
/// seeded 0.3-1.0 s of silence before each answer, and `manifest.json`. Returns its items.
pub fn generate(dir: &Path, g: &Generate) -> Result<Vec<Item>, CorpusError> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let scratch = dir.join(".espeak.tmp.wav");
    let mut rng = SplitMix::new(g.seed);
    let mut manifest = BTreeMap::new();
    let mut items = Vec::new();
    for i in 0..g.count {
        let (voice, text) = INTERVIEW_ANSWERS[i % INTERVIEW_ANSWERS.len()];
        let pieces = match split_for_pause(text).filter(|_| g.pause_ms > 0) {
            Some((a, b)) => vec![a, b],
            None => vec![text.to_owned()],
        };
        let mut rate = 0;
        let mut samples: Vec<f32> = Vec::new();
        for (k, piece) in pieces.iter().enumerate() {
            let clip = speak(piece, voice, &scratch)?;
            rate = clip.sample_rate;
            let silence_ms = if k == 0 {
                rng.range(300, 1000)
            } else {
                g.pause_ms as u64
            };
            samples.extend(std::iter::repeat_n(
                0.0,
                (silence_ms * rate as u64 / 1000) as usize,
            ));
            samples.extend(clip.samples);
        }
        let name = format!("{i:02}-{}.wav", voice.replace('+', "-"));
        let path = dir.join(&name);
        wav::write_i16(&path, &crate::audio::f32_to_i16(&samples), rate)
            .map_err(|e| io_error(&path, e))?;
        manifest.insert(name, text.to_owned());
        items.push(Item {
            path,
            reference: Some(text.to_owned()),
            fixture: None,
        });
    }
    // Files of an earlier, larger corpus would otherwise be read with this one.
    for entry in std::fs::read_dir(dir)
        .map_err(|e| io_error(dir, e))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".wav") && !manifest.contains_key(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let manifest_path = dir.join(MANIFEST);
    let json = serde_json::to_string_pretty(&manifest).map_err(|e| io_error(&manifest_path, e))?;
    std::fs::write(&manifest_path, json).map_err(|e| io_error(&manifest_path, e))?;
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_deterministic_and_in_range() {
        let a: Vec<u64> = (0..5)
            .scan(SplitMix::new(7), |r, _| Some(r.range(300, 1000)))
            .collect();
        let b: Vec<u64> = (0..5)
            .scan(SplitMix::new(7), |r, _| Some(r.range(300, 1000)))
            .collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|v| (300..=1000).contains(v)), "{a:?}");
        assert_ne!(
            a,
            (0..5)
                .scan(SplitMix::new(8), |r, _| Some(r.range(300, 1000)))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn pause_split_in_the_middle() {
        assert_eq!(split_for_pause("Yes."), None);
        assert_eq!(split_for_pause("About two years."), None);
        assert_eq!(
            split_for_pause("I like Rust a lot."),
            Some(("I like".into(), "Rust a lot.".into()))
        );
    }

    #[test]
    fn load_reads_wavs_in_order_with_manifest() {
        let dir = std::env::temp_dir().join(format!("callgate-corpus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(matches!(load(&dir), Err(CorpusError::Empty(_))));
        for name in ["b.wav", "a.WAV", "notes.txt"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        std::fs::write(dir.join(MANIFEST), r#"{"b.wav": "Hello there."}"#).unwrap();
        let items = load(&dir).unwrap();
        assert_eq!(items.len(), 2);
        assert!(items[0].path.ends_with("a.WAV") && items[0].reference.is_none());
        assert!(items[1].path.ends_with("b.wav"));
        assert_eq!(items[1].reference.as_deref(), Some("Hello there."));
        std::fs::write(
            dir.join(MANIFEST),
            r#"{"a.WAV": {"text": "Yes.", "speechMs": [300, 800], "group": "g"}, "b.wav": "Hi."}"#,
        )
        .unwrap();
        let items = load(&dir).unwrap();
        let f = items[0].fixture.as_ref().expect("a fixture entry");
        assert_eq!((f.speech_ms, f.group.as_deref()), ((300, 800), Some("g")));
        assert_eq!(items[0].reference.as_deref(), Some("Yes."));
        assert_eq!(items[1].reference.as_deref(), Some("Hi."));
        assert!(items[1].fixture.is_none());
        std::fs::write(dir.join(MANIFEST), "not json").unwrap();
        assert!(matches!(load(&dir), Err(CorpusError::Io { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
