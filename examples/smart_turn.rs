//! Measures Smart Turn v3.2 (src/eot/smart_turn.rs) on espeak-ng fixtures: time per call
//! on 1 and 2 intra-op threads, and how often it says "complete" (> 0.5) for complete
//! answers, answers cut at a mid-clause thinking pause, and answers cut at a comma pause,
//! all with 200 ms of trailing silence (also 500 ms, for comparison).
//!
//! `cargo run --release --example smart_turn` (after scripts/fetch-models)
//!
//! `--timing` stops after the timing table; `--each` adds every fixture's score.
//! `--dump DIR` writes each fixture's audio, the Rust features and probability instead, for
//! scripts/smart-turn-check to compare with Pipecat's own Python pipeline.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use callgate::eot::mel::LogMel;
use callgate::eot::smart_turn::{DEFAULT_MODEL, SmartTurn};

#[path = "../tests/util.rs"]
mod util;

const VOICES: [&str; 3] = ["en-us", "en-gb", "en-us+f3"];
const PAUSE: &str = r#"<break time="1000ms"/>"#;

/// Complete answers, as spoken.
const COMPLETE: [&str; 10] = [
    "At my last job I was responsible for the billing service.",
    "I chose Rust because the team already knew it.",
    "The main problem was a race condition in the cache.",
    "I worked on the search platform and the payments team.",
    "We moved the whole team to a new deployment pipeline.",
    "I usually start by writing a failing test.",
    "My biggest weakness is that I polish code for too long.",
    "We shipped it two weeks early.",
    "Yes, I can.",
    "About two years.",
];

/// Answers with a thinking pause after "for", "the", "and", "um", "was a" (two each): the
/// fixture is the speech up to the pause.
const MID_CLAUSE: [&str; 10] = [
    "At my last job I was responsible for | the billing service.",
    "We used Kafka for | streaming events between services.",
    "We moved the | whole team to a new deployment pipeline.",
    "The hardest part was convincing the | product managers.",
    "I worked on the search platform and | the payments team.",
    "We added read replicas and | a cache in front of the database.",
    "I think um | it took about six months.",
    "The first thing I did was um | write a test that reproduced the bug.",
    "The main problem was a | race condition in the cache.",
    "My first project was a | rewrite of the billing service.",
];

/// Complete answers with a pause at a comma: the fixture is the speech up to the comma,
/// where ending the turn cuts the answer early.
const COMMA: [&str; 8] = [
    "Hi, my name is Priya Raman, | and I have been a backend engineer for six years.",
    "I led the migration to Kubernetes, | which took about a year.",
    "We had a lot of downtime, | so I set up better alerts.",
    "I like working in small teams, | because decisions are quick.",
    "In my last role, | I led a team of four engineers.",
    "When the database became slow, | we added a cache.",
    "Honestly, | I had never used Go before.",
    "I wrote the design document, | and the team reviewed it.",
];

struct Fixture {
    kind: &'static str,
    voice: &'static str,
    text: &'static str,
    audio: Vec<f32>,
}

fn fixtures(trailing_ms: u32) -> Vec<Fixture> {
    let sets: [(&str, &[&str]); 3] = [
        ("complete", &COMPLETE),
        ("mid-clause pause", &MID_CLAUSE),
        ("comma pause", &COMMA),
    ];
    let mut out = Vec::new();
    for (kind, texts) in sets {
        for &text in texts {
            for voice in VOICES {
                let until_pause = text.contains('|');
                let ssml = text.replace('|', PAUSE);
                let audio = util::turn_audio(&ssml, voice, until_pause, trailing_ms);
                out.push(Fixture {
                    kind,
                    voice,
                    text,
                    audio,
                });
            }
        }
    }
    out
}

fn load(threads: usize) -> SmartTurn {
    SmartTurn::load_with_threads(util::repo_root().join(DEFAULT_MODEL), threads)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Minimum, median and p90 of `f`'s wall time in ms over `runs` runs, after 3 warm-ups (the
/// minimum is the cost on an idle machine; 5 engineers share these 2 cores).
fn time_ms(runs: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    for _ in 0..3 {
        f();
    }
    let mut ms: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (ms[0], percentile(&ms, 0.5), percentile(&ms, 0.9))
}

fn timing() {
    // 8 s of speech: the model always sees a full window, so this is every call's cost.
    let mut clip = Vec::new();
    for (voice, text) in util::INTERVIEW_ANSWERS.iter().rev() {
        if clip.len() >= 8 * 16_000 {
            break;
        }
        clip.extend(util::turn_audio(text, voice, false, 200));
    }
    let mel = LogMel::new();
    let (min, p50, p90) = time_ms(30, || {
        std::hint::black_box(mel.features(&clip));
    });
    println!("| log-mel features only | - | {min:.1} | {p50:.1} | {p90:.1} |");
    for threads in [1, 2] {
        let model = load(threads);
        let features = mel.features(&clip);
        let (min, p50, p90) = time_ms(30, || {
            std::hint::black_box(model.probability_of_features(&features).expect("run"));
        });
        println!("| model only | {threads} | {min:.1} | {p50:.1} | {p90:.1} |");
        let (min, p50, p90) = time_ms(30, || {
            std::hint::black_box(model.probability_complete(&clip).expect("run"));
        });
        println!(
            "| `probability_complete` (features + model) | {threads} | {min:.1} | {p50:.1} | {p90:.1} |"
        );
    }
}

fn accuracy(model: &SmartTurn, trailing_ms: u32) {
    let fixtures = fixtures(trailing_ms);
    let kinds = ["complete", "mid-clause pause", "comma pause"];
    for kind in kinds {
        let mut probs: Vec<f64> = fixtures
            .iter()
            .filter(|f| f.kind == kind)
            .map(|f| model.probability_complete(&f.audio).expect("run") as f64)
            .collect();
        let complete = probs.iter().filter(|&&p| p > 0.5).count();
        probs.sort_by(f64::total_cmp);
        println!(
            "| {trailing_ms} ms | {kind} | {} | {complete}/{} | {:.2} | {:.2} | {:.2} |",
            probs.len(),
            probs.len(),
            percentile(&probs, 0.1),
            percentile(&probs, 0.5),
            percentile(&probs, 0.9),
        );
    }
}

/// How far the score moves when inaudible noise is added: TPDF dither of 1 LSB of 16-bit
/// audio (-96 dBFS, what any 16-bit conversion adds), five seeds per fixture.
fn dither_sensitivity(model: &SmartTurn) {
    let mut shifts = Vec::new();
    let mut flips = 0;
    let fixtures = fixtures(200);
    for (i, f) in fixtures.iter().enumerate() {
        let clean = model.probability_complete(&f.audio).expect("run");
        let mut worst = 0.0f32;
        let mut flipped = false;
        for seed in 0..5u64 {
            let mut state = 0x9e37_79b9_7f4a_7c15 ^ ((i as u64) << 8 | seed);
            let mut uniform = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32
            };
            let dithered: Vec<f32> = f
                .audio
                .iter()
                .map(|&x| x + (uniform() - uniform()) / 32_768.0)
                .collect();
            let p = model.probability_complete(&dithered).expect("run");
            worst = worst.max((p - clean).abs());
            flipped |= (p > 0.5) != (clean > 0.5);
        }
        shifts.push(worst as f64);
        flips += usize::from(flipped);
    }
    shifts.sort_by(f64::total_cmp);
    println!(
        "\n1 LSB dither, 5 seeds on each of {} fixtures at 200 ms: largest score change per \
         fixture median {:.3}, p90 {:.3}, max {:.3}; label flipped on {flips}",
        shifts.len(),
        percentile(&shifts, 0.5),
        percentile(&shifts, 0.9),
        shifts[shifts.len() - 1],
    );
    let silence = model.probability_complete(&[0.0; 16_000]).expect("run");
    println!("1 s of digital silence alone: {silence:.3}");
}

fn per_fixture(model: &SmartTurn) {
    println!("\nper fixture at 200 ms (probability complete):");
    for f in fixtures(200) {
        let p = model.probability_complete(&f.audio).expect("run");
        println!("{p:.3}  {:16} {:9} {}", f.kind, f.voice, f.text);
    }
}

/// For each fixture at 200 ms: `NAME.f32` (the audio, f32 little-endian), `NAME.mel.f32`
/// (Rust features), and a line `NAME<TAB>probability<TAB>kind<TAB>voice<TAB>text` in
/// `index.tsv`.
fn dump(dir: &Path) {
    std::fs::create_dir_all(dir).expect("create dump dir");
    let (model, mel) = (load(1), LogMel::new());
    let mut index = std::fs::File::create(dir.join("index.tsv")).expect("index");
    let le = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    for (i, f) in fixtures(200).iter().enumerate() {
        let name = format!("clip{i:02}");
        let p = model.probability_complete(&f.audio).expect("run");
        std::fs::write(dir.join(format!("{name}.f32")), le(&f.audio)).expect("write");
        std::fs::write(
            dir.join(format!("{name}.mel.f32")),
            le(&mel.features(&f.audio)),
        )
        .expect("write");
        writeln!(index, "{name}\t{p}\t{}\t{}\t{}", f.kind, f.voice, f.text).expect("write");
    }
    println!("wrote {}", dir.display());
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, dir] = args.as_slice()
        && flag == "--dump"
    {
        return dump(Path::new(dir));
    }
    println!("time per call, ms (8 s window):\n");
    println!("| what | intra-op threads | min | median | p90 |\n|---|---|---|---|---|");
    timing();
    if args.iter().any(|a| a == "--timing") {
        return;
    }
    println!("\nsays complete (> 0.5), {} voices:\n", VOICES.len());
    println!("| trailing silence | fixture | n | says complete | p10 | median | p90 |");
    println!("|---|---|---|---|---|---|---|");
    let model = load(1);
    accuracy(&model, 200);
    accuracy(&model, 500);
    dither_sensitivity(&model);
    if args.iter().any(|a| a == "--each") {
        per_fixture(&model);
    }
}
