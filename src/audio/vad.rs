//! Voice activity detection: where a user's speech starts and where their turn ends, on
//! 16 kHz mono `f32` audio. A frame detector scores each 10 ms frame; the state machine here
//! turns those scores into speech starts and stops.
//!
//! # Frame detectors ([`SpeechDetector`])
//! - `Energy` ([`super::energy`]): a frame is speech when it is louder than an adaptive
//!   noise floor; its score is 1 or 0. Needs nothing, hears only loudness.
//! - `Silero` ([`super::silero`]): Silero VAD v5's speech probability for each 32 ms window,
//!   given to every frame that ends in it. A frame's score is known once its window is
//!   complete, so the stream clock trails the input by up to 32 ms more than with energy.
//!
//! # How it decides
//! - Audio is cut into 10 ms frames (160 samples); a partial frame waits for the next call.
//! - Quiet, a frame is *active* when its score reaches `speech_threshold`. Speaking, an
//!   active run goes on while the score stays at or above `release_threshold` (hysteresis:
//!   a probability dipping to 0.4 inside a word does not start the silence), and speech
//!   resumes only at `speech_threshold`. The energy detector's 0/1 scores pass both alike.
//! - Silero also marks each frame *loud* or not (well above its background level; energy
//!   frames are always loud). Only loud speech starts a turn; while speaking, speech that is
//!   not loud counts only within `quiet_hold_ms` of the last loud speech frame, so talkers
//!   behind the speaker neither start a turn nor hold one open, while soft word endings
//!   still belong to it.
//! - Speech *starts* once `min_speech_ms` of active frames accumulate with no more than one
//!   inactive frame in a row between them; the event is backdated to the first active frame.
//!   A click (a few ms) never accumulates enough.
//! - Speech *stops* when `silence_ms` have passed since the last active frame. While
//!   speaking, a lone active blip (fewer than 30 ms of consecutive active frames) in the
//!   trailing silence is ignored, so a click does not prolong the turn.

use super::energy::EnergyFrames;
use super::silero::{SileroFrames, SileroModel};

/// The only sample rate the detector accepts; the resampler feeds it.
pub const SAMPLE_RATE: u32 = 16_000;

/// Length of one analysis frame.
pub const FRAME_MS: u64 = 10;

/// Samples in one analysis frame.
pub const FRAME_SAMPLES: usize = 160;

/// Consecutive active frames that count as speech again once trailing silence has begun.
const RESUME_FRAMES: u32 = 3;

/// Inactive frames in a row tolerated inside a speech onset (a brief dip in a syllable).
const ONSET_GAP_FRAMES: u32 = 1;

/// Detector settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// Silence after speech that ends a turn (the session's `silenceMs`).
    pub silence_ms: u32,
    /// Active audio needed before speech counts as started; rejects clicks and pops.
    pub min_speech_ms: u32,
    /// Energy detector: how far above the noise floor a frame must be to be active.
    pub threshold_db_above_floor: f32,
    /// Energy detector: absolute level a frame must exceed to be active, so faint hiss over
    /// digital silence is not speech.
    pub min_threshold_dbfs: f32,
    /// Score at which a frame is speech (Silero's own default, 0.5).
    pub speech_threshold: f32,
    /// Score below which a frame ends an active run while speaking (Silero's own
    /// post-processing uses the speech threshold minus 0.15).
    pub release_threshold: f32,
    /// While speaking, how long after the last loud speech frame speech that is not loud
    /// (not above the background: a soft word ending, or talkers behind the speaker) still
    /// counts. Only Silero tells loud from quiet speech.
    pub quiet_hold_ms: u32,
    /// Silero: how far above the background level a frame must be to be loud, the
    /// speaker's own voice. Babble 15 dB under the voice peaks about 9 dB under it (99th
    /// percentile of its 10 ms frames), and the background estimate sits a few dB under the
    /// babble's median: 11 dB keeps almost every babble frame out and most of the voice in
    /// (docs/vad.md). Minus infinity turns the distinction off.
    pub loud_margin_db: f32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            silence_ms: 500,
            min_speech_ms: 60,
            threshold_db_above_floor: 15.0,
            min_threshold_dbfs: -50.0,
            speech_threshold: 0.5,
            release_threshold: 0.35,
            quiet_hold_ms: 400,
            loud_margin_db: 11.0,
        }
    }
}

/// Which frame detector a [`Vad`] uses: chosen once at start (the `vad` setting) and shared
/// by every call; cheap to clone.
#[derive(Debug, Clone, Default)]
pub enum SpeechDetector {
    /// The adaptive energy detector ([`super::energy`]).
    #[default]
    Energy,
    /// Silero VAD v5 on this loaded model ([`super::silero`]).
    Silero(SileroModel),
}

/// A change in the speech state, with positions in ms from the start of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// The user started speaking.
    SpeechStarted {
        /// Onset, backdated to the first active frame of the speech.
        at_ms: u64,
    },
    /// The user's turn ended.
    SpeechStopped {
        /// End of the last active frame: where the speech itself ended.
        speech_end_ms: u64,
        /// When the decision was made (`speech_end_ms` + about `silence_ms`); the gap
        /// between the two is the endpointing latency.
        decided_at_ms: u64,
    },
}

/// The shortest silence inside speech that is kept as a pause for the call's report (the
/// usual floor for a silent pause in speech research: shorter gaps are the stops and
/// breaths between words).
pub const PAUSE_MIN_MS: u64 = 250;

/// A silence inside speech that did not end it, in ms from the start of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// End of the speech before it.
    pub from_ms: u64,
    /// Where the speech resumed.
    pub to_ms: u64,
}

/// A possible speech onset being confirmed.
#[derive(Debug, Clone, Copy)]
struct Onset {
    /// Frame index of the first active frame.
    start: u64,
    /// Active frames counted so far.
    active: u32,
    /// Inactive frames since the last active one.
    gap: u32,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Quiet {
        onset: Option<Onset>,
    },
    Speaking {
        /// Frame index of the speech onset.
        start: u64,
        /// Frame index just past the last frame that counted as speech.
        last_active_end: u64,
        /// Frame index of the last loud speech frame.
        last_loud: u64,
        /// Consecutive active frames seen during trailing silence, not yet enough to count.
        resume_run: u32,
    },
}

/// What a frame detector says about one 10 ms frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameScore {
    /// How likely the frame is speech, 0..1 (the energy detector says 0 or 1).
    pub speech: f32,
    /// Whether the frame stands above the background: the speaker's own voice rather than
    /// talkers behind them (always true from the energy detector).
    pub loud: bool,
}

/// One stream's frame detector.
#[derive(Debug, Clone)]
enum Frames {
    Energy(EnergyFrames),
    /// Boxed: Silero's recurrent state is 1 KB.
    Silero(Box<SileroFrames>),
}

impl Frames {
    fn new(detector: &SpeechDetector, cfg: &VadConfig) -> Self {
        match detector {
            SpeechDetector::Energy => Frames::Energy(EnergyFrames::new(
                cfg.threshold_db_above_floor,
                cfg.min_threshold_dbfs,
            )),
            SpeechDetector::Silero(model) => Frames::Silero(Box::new(SileroFrames::new(
                model,
                cfg.release_threshold,
                cfg.loud_margin_db,
            ))),
        }
    }

    /// Appends the score of every frame `samples` complete.
    fn push(&mut self, samples: &[f32], scores: &mut Vec<FrameScore>) {
        match self {
            Frames::Energy(energy) => energy.push(samples, scores),
            Frames::Silero(silero) => silero.push(samples, scores),
        }
    }
}

/// Voice activity detector for one call's input stream.
#[derive(Debug, Clone)]
pub struct Vad {
    cfg: VadConfig,
    detector: Frames,
    /// Scratch for the frame scores of one `process` call.
    scores: Vec<FrameScore>,
    /// Frames analysed so far: the stream clock.
    frames: u64,
    state: State,
    /// Pauses of [`PAUSE_MIN_MS`] or more inside speech, not yet taken.
    pauses: Vec<Pause>,
}

impl Vad {
    /// An energy detector at stream position 0.
    pub fn new(cfg: VadConfig) -> Self {
        Self::with_detector(cfg, &SpeechDetector::Energy)
    }

    /// A detector at stream position 0 that scores frames with `detector`.
    pub fn with_detector(cfg: VadConfig, detector: &SpeechDetector) -> Self {
        Self {
            detector: Frames::new(detector, &cfg),
            cfg,
            scores: Vec::new(),
            frames: 0,
            state: State::Quiet { onset: None },
            pauses: Vec::new(),
        }
    }

    /// The pauses inside speech found since the last call, oldest first.
    pub fn take_pauses(&mut self) -> Vec<Pause> {
        std::mem::take(&mut self.pauses)
    }

    /// Changes the end-of-turn silence; applies to the trailing silence already counted.
    pub fn set_silence_ms(&mut self, ms: u32) {
        self.cfg.silence_ms = ms;
    }

    /// Analyses 16 kHz mono samples in -1..1 and returns the state changes they caused, in
    /// order. Non-finite samples count as silence.
    pub fn process(&mut self, samples: &[f32]) -> Vec<VadEvent> {
        let mut events = Vec::new();
        let mut scores = std::mem::take(&mut self.scores);
        scores.clear();
        self.detector.push(samples, &mut scores);
        for &frame in &scores {
            self.on_frame(frame, &mut events);
        }
        self.scores = scores;
        events
    }

    /// Whether the user is speaking (a turn is open).
    pub fn is_speaking(&self) -> bool {
        matches!(self.state, State::Speaking { .. })
    }

    /// Length of the current speech segment so far, trailing silence included; 0 when not
    /// speaking. Lets the caller cap very long turns.
    pub fn speech_ms(&self) -> u64 {
        match self.state {
            State::Speaking { start, .. } => (self.frames - start) * FRAME_MS,
            State::Quiet { .. } => 0,
        }
    }

    /// Silence since the last speech while speaking; 0 otherwise. Lets the caller start
    /// work (e.g. a speculative transcription) before the turn is decided.
    pub fn trailing_silence_ms(&self) -> u64 {
        match self.state {
            State::Speaking {
                last_active_end, ..
            } => (self.frames - last_active_end) * FRAME_MS,
            State::Quiet { .. } => 0,
        }
    }

    /// Audio analysed so far. The latest input not yet scored (up to 10 ms with the energy
    /// detector, up to 42 ms with Silero) is not counted.
    pub fn position_ms(&self) -> u64 {
        self.frames * FRAME_MS
    }

    /// Forgets the current speech (no stop event), keeping the detector's state (the noise
    /// floor, Silero's recurrent state) and the clock. For `input.clear`, a manual commit,
    /// or a turn cut off by the caller.
    pub fn reset_turn(&mut self) {
        self.state = State::Quiet { onset: None };
    }

    /// The energy detector's noise floor estimate in dBFS, for diagnostics (`None` before
    /// the first frame and with Silero).
    pub fn noise_floor_dbfs(&self) -> Option<f32> {
        match &self.detector {
            Frames::Energy(energy) => energy.noise_floor_dbfs(),
            Frames::Silero(_) => None,
        }
    }

    fn on_frame(&mut self, frame: FrameScore, events: &mut Vec<VadEvent>) {
        let index = self.frames;
        self.frames += 1;
        let speech = frame.speech >= self.cfg.speech_threshold;
        let min_frames = self.cfg.min_speech_ms.div_ceil(FRAME_MS as u32).max(1);
        let silence_frames = u64::from(self.cfg.silence_ms.div_ceil(FRAME_MS as u32));
        let hold_frames = u64::from(self.cfg.quiet_hold_ms.div_ceil(FRAME_MS as u32));

        match &mut self.state {
            State::Quiet { onset } => {
                // Only the speaker's own (loud) voice starts a turn.
                if speech && frame.loud {
                    let o = onset.get_or_insert(Onset {
                        start: index,
                        active: 0,
                        gap: 0,
                    });
                    o.active += 1;
                    o.gap = 0;
                    if o.active >= min_frames {
                        events.push(VadEvent::SpeechStarted {
                            at_ms: o.start * FRAME_MS,
                        });
                        self.state = State::Speaking {
                            start: o.start,
                            last_active_end: index + 1,
                            last_loud: index,
                            resume_run: 0,
                        };
                    }
                } else if let Some(o) = onset {
                    o.gap += 1;
                    if o.gap > ONSET_GAP_FRAMES {
                        *onset = None;
                    }
                }
            }
            State::Speaking {
                last_active_end,
                last_loud,
                resume_run,
                ..
            } => {
                if speech && frame.loud {
                    *last_loud = index;
                }
                // Quiet speech counts only close to the speaker's loud speech: a soft word
                // ending does, talkers behind the speaker after they stopped do not.
                let heard = frame.loud || index - *last_loud < hold_frames;
                let continues = *last_active_end == index;
                if heard && continues && frame.speech >= self.cfg.release_threshold {
                    *last_active_end = index + 1;
                } else if heard && speech {
                    *resume_run += 1;
                    if *resume_run >= RESUME_FRAMES {
                        let resumed = index + 1 - u64::from(*resume_run);
                        if (resumed.saturating_sub(*last_active_end)) * FRAME_MS >= PAUSE_MIN_MS {
                            self.pauses.push(Pause {
                                from_ms: *last_active_end * FRAME_MS,
                                to_ms: resumed * FRAME_MS,
                            });
                        }
                        *last_active_end = index + 1;
                        *resume_run = 0;
                    }
                } else {
                    *resume_run = 0;
                }
                if self.frames - *last_active_end >= silence_frames {
                    events.push(VadEvent::SpeechStopped {
                        speech_end_ms: *last_active_end * FRAME_MS,
                        decided_at_ms: self.frames * FRAME_MS,
                    });
                    // Active frames already seen after the silence are the start of what
                    // comes next, so they seed the next onset rather than being lost.
                    let run = *resume_run;
                    let onset = (run > 0).then(|| Onset {
                        start: self.frames - u64::from(run),
                        active: run,
                        gap: 0,
                    });
                    self.state = State::Quiet { onset };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: usize = SAMPLE_RATE as usize;

    fn ms(n: usize) -> usize {
        n * RATE / 1000
    }

    fn silence(len_ms: usize) -> Vec<f32> {
        vec![0.0; ms(len_ms)]
    }

    fn scale_to_dbfs(mut v: Vec<f32>, dbfs: f32) -> Vec<f32> {
        let rms = (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt();
        let gain = 10f32.powf(dbfs / 20.0) / rms;
        v.iter_mut().for_each(|x| *x *= gain);
        v
    }

    /// A voiced-like signal: 200 Hz fundamental with decaying harmonics.
    fn voiced(len_ms: usize, dbfs: f32) -> Vec<f32> {
        let v = (0..ms(len_ms))
            .map(|i| {
                let t = i as f32 / RATE as f32;
                (1..=5)
                    .map(|k| (2.0 * std::f32::consts::PI * 200.0 * k as f32 * t).sin() / k as f32)
                    .sum()
            })
            .collect();
        scale_to_dbfs(v, dbfs)
    }

    /// Deterministic white noise (xorshift), uniform, at the given RMS level.
    fn noise(len_ms: usize, dbfs: f32, seed: u64) -> Vec<f32> {
        let mut s = seed.max(1);
        let v = (0..ms(len_ms))
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
        scale_to_dbfs(v, dbfs)
    }

    fn mix(a: &[f32], b: &[f32]) -> Vec<f32> {
        a.iter().zip(b).map(|(x, y)| x + y).collect()
    }

    fn concat(parts: &[Vec<f32>]) -> Vec<f32> {
        parts.concat()
    }

    fn run(cfg: VadConfig, audio: &[f32]) -> Vec<VadEvent> {
        Vad::new(cfg).process(audio)
    }

    fn started(events: &[VadEvent]) -> Vec<u64> {
        events
            .iter()
            .filter_map(|e| match e {
                VadEvent::SpeechStarted { at_ms } => Some(*at_ms),
                _ => None,
            })
            .collect()
    }

    fn stopped(events: &[VadEvent]) -> Vec<(u64, u64)> {
        events
            .iter()
            .filter_map(|e| match e {
                VadEvent::SpeechStopped {
                    speech_end_ms,
                    decided_at_ms,
                } => Some((*speech_end_ms, *decided_at_ms)),
                _ => None,
            })
            .collect()
    }

    fn near(actual: u64, expected: u64, tolerance: u64) -> bool {
        actual.abs_diff(expected) <= tolerance
    }

    #[test]
    fn digital_silence_has_no_events() {
        let mut vad = Vad::new(VadConfig::default());
        assert!(vad.process(&silence(3000)).is_empty());
        assert!(!vad.is_speaking());
        assert_eq!(vad.position_ms(), 3000);
        assert_eq!(vad.speech_ms(), 0);
        assert_eq!(vad.trailing_silence_ms(), 0);
    }

    #[test]
    fn tone_between_silences_starts_at_onset_and_stops_after_silence() {
        let audio = concat(&[silence(500), voiced(1000, -20.0), silence(1000)]);
        let events = run(VadConfig::default(), &audio);
        assert_eq!(events.len(), 2, "{events:?}");
        let VadEvent::SpeechStarted { at_ms } = events[0] else {
            panic!("{events:?}")
        };
        assert!(near(at_ms, 500, 30), "{at_ms}");
        let VadEvent::SpeechStopped {
            speech_end_ms,
            decided_at_ms,
        } = events[1]
        else {
            panic!("{events:?}")
        };
        assert!(near(speech_end_ms, 1500, 30), "{speech_end_ms}");
        assert!(near(decided_at_ms, 2000, 30), "{decided_at_ms}");
    }

    #[test]
    fn silences_inside_speech_are_kept_as_pauses_from_a_quarter_second() {
        let cfg = VadConfig {
            silence_ms: 2000,
            ..VadConfig::default()
        };
        let mut vad = Vad::new(cfg);
        let audio = concat(&[
            silence(500),
            voiced(1000, -20.0),
            silence(700),
            voiced(800, -20.0),
            silence(150),
            voiced(500, -20.0),
            silence(2500),
        ]);
        let events = vad.process(&audio);
        assert_eq!(started(&events).len(), 1, "one speech: {events:?}");
        let pauses = vad.take_pauses();
        assert_eq!(pauses.len(), 1, "the 150 ms gap is not a pause: {pauses:?}");
        assert!(near(pauses[0].from_ms, 1500, 30), "{pauses:?}");
        assert!(near(pauses[0].to_ms, 2200, 30), "{pauses:?}");
        assert!(vad.take_pauses().is_empty(), "taken once");
    }

    #[test]
    fn unaligned_onset_is_backdated_to_its_frame() {
        let audio = concat(&[silence(503), voiced(700, -20.0), silence(700)]);
        let events = run(VadConfig::default(), &audio);
        assert_eq!(started(&events), [500]);
        assert_eq!(stopped(&events), [(1210, 1710)]);
    }

    #[test]
    fn chunking_does_not_change_the_result() {
        let audio = concat(&[silence(400), voiced(800, -25.0), silence(900)]);
        let whole = run(VadConfig::default(), &audio);
        let mut vad = Vad::new(VadConfig::default());
        let mut pieces = Vec::new();
        for chunk in audio.chunks(37) {
            pieces.extend(vad.process(chunk));
        }
        assert_eq!(pieces, whole);
        assert_eq!(whole.len(), 2);
    }

    #[test]
    fn steady_noise_is_not_speech() {
        let mut vad = Vad::new(VadConfig::default());
        assert!(vad.process(&noise(5000, -40.0, 1)).is_empty());
        let floor = vad.noise_floor_dbfs().unwrap();
        assert!((floor + 40.0).abs() < 2.0, "floor {floor}");
    }

    #[test]
    fn speech_over_noise_is_detected() {
        let bed = noise(4000, -40.0, 7);
        let speech = concat(&[
            vec![0.0; ms(2000)],
            voiced(1000, -20.0),
            vec![0.0; ms(1000)],
        ]);
        let events = run(VadConfig::default(), &mix(&bed, &speech));
        assert_eq!(started(&events).len(), 1, "{events:?}");
        assert!(near(started(&events)[0], 2000, 30), "{events:?}");
        let stops = stopped(&events);
        assert_eq!(stops.len(), 1, "{events:?}");
        assert!(
            near(stops[0].0, 3000, 30) && near(stops[0].1, 3500, 30),
            "{events:?}"
        );
    }

    #[test]
    fn a_click_is_not_speech() {
        let click = |at_ms: usize| {
            let mut v = silence(1000);
            let start = ms(at_ms);
            // A 5 ms decaying pop, loud enough to be active in every frame it touches.
            for i in 0..ms(5) {
                let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
                v[start + i] = 0.8 * sign * (1.0 - i as f32 / ms(5) as f32);
            }
            v
        };
        // Inside one frame, and straddling a frame boundary.
        for at in [500, 507] {
            assert!(
                run(VadConfig::default(), &click(at)).is_empty(),
                "click at {at}"
            );
        }
        let mut noisy = noise(1000, -45.0, 3);
        for (n, c) in noisy.iter_mut().zip(click(600)) {
            *n += c;
        }
        assert!(run(VadConfig::default(), &noisy).is_empty());
    }

    #[test]
    fn a_click_in_trailing_silence_does_not_extend_the_turn() {
        let mut audio = concat(&[silence(300), voiced(500, -20.0), silence(1000)]);
        // A 5 ms pop 200 ms into the trailing silence.
        let at = ms(1000);
        for s in &mut audio[at..at + ms(5)] {
            *s = 0.8;
        }
        let events = run(VadConfig::default(), &audio);
        assert_eq!(stopped(&events), [(800, 1300)]);
    }

    fn with_pause(silence_ms: u32) -> Vec<VadEvent> {
        let audio = concat(&[
            silence(500),
            voiced(1000, -20.0),
            silence(600),
            voiced(1000, -20.0),
            silence(1000),
        ]);
        run(
            VadConfig {
                silence_ms,
                ..VadConfig::default()
            },
            &audio,
        )
    }

    #[test]
    fn pause_longer_than_silence_ms_ends_the_turn() {
        let events = with_pause(500);
        assert_eq!(started(&events), [500, 2100]);
        assert_eq!(stopped(&events), [(1500, 2000), (3100, 3600)]);
    }

    #[test]
    fn pause_shorter_than_silence_ms_does_not() {
        let events = with_pause(800);
        assert_eq!(started(&events), [500]);
        assert_eq!(stopped(&events), [(3100, 3900)]);
    }

    #[test]
    fn trailing_silence_and_speech_length_are_tracked() {
        let mut vad = Vad::new(VadConfig::default());
        vad.process(&silence(500));
        vad.process(&voiced(1000, -20.0));
        assert!(vad.is_speaking());
        assert_eq!(vad.trailing_silence_ms(), 0);
        assert_eq!(vad.speech_ms(), 1000);
        vad.process(&silence(300));
        assert!(vad.is_speaking());
        assert_eq!(vad.trailing_silence_ms(), 300);
        assert_eq!(vad.speech_ms(), 1300);
        assert_eq!(vad.position_ms(), 1800);
        // 190 ms more: still 10 ms short of the 500 ms silence.
        assert!(vad.process(&silence(190)).is_empty());
        assert_eq!(vad.trailing_silence_ms(), 490);
        let events = vad.process(&silence(10));
        assert_eq!(
            events,
            [VadEvent::SpeechStopped {
                speech_end_ms: 1500,
                decided_at_ms: 2000
            }]
        );
        assert_eq!(vad.trailing_silence_ms(), 0);
        assert_eq!(vad.speech_ms(), 0);
    }

    #[test]
    fn set_silence_ms_applies_to_the_current_silence() {
        let mut vad = Vad::new(VadConfig::default());
        vad.process(&concat(&[silence(200), voiced(500, -20.0), silence(300)]));
        assert!(vad.is_speaking());
        vad.set_silence_ms(200);
        assert_eq!(
            vad.process(&silence(10)),
            [VadEvent::SpeechStopped {
                speech_end_ms: 700,
                decided_at_ms: 1010
            }]
        );
    }

    #[test]
    fn reset_turn_forgets_speech_but_keeps_the_floor() {
        let mut vad = Vad::new(VadConfig::default());
        vad.process(&noise(1000, -40.0, 5));
        let speech = mix(&voiced(500, -20.0), &noise(500, -40.0, 6));
        assert_eq!(vad.process(&speech).len(), 1);
        assert!(vad.is_speaking());
        vad.reset_turn();
        assert!(!vad.is_speaking());
        assert_eq!(vad.position_ms(), 1500);
        // The floor is still the noise's, so more noise does not start speech, and the
        // speech that was cut off produces no stop event.
        assert!(vad.process(&noise(2000, -40.0, 8)).is_empty());
    }

    #[test]
    fn noisy_mic_after_digital_silence_recovers() {
        // The floor is learnt on zeros, then a noisy microphone opens: a false start is
        // unavoidable, but the stationary-noise check must end it and no other follows.
        let audio = concat(&[silence(500), noise(6000, -40.0, 11)]);
        let mut vad = Vad::new(VadConfig::default());
        let events = vad.process(&audio);
        assert_eq!(started(&events).len(), 1, "{events:?}");
        let stops = stopped(&events);
        assert_eq!(stops.len(), 1, "{events:?}");
        assert!(stops[0].1 <= 3500, "{events:?}");
        assert!(!vad.is_speaking());
        // Afterwards speech over that noise is still detected.
        let speech = mix(&voiced(800, -20.0), &noise(800, -40.0, 12));
        let events = vad.process(&concat(&[speech, noise(1000, -40.0, 13)]));
        assert_eq!(started(&events), [6500]);
        assert_eq!(stopped(&events).len(), 1);
    }

    #[test]
    fn stream_starting_mid_speech_detects_from_the_next_word() {
        // The floor is learnt on speech, so the first word is missed; the pause teaches the
        // real floor and the next word is caught.
        let audio = concat(&[
            voiced(1000, -20.0),
            silence(500),
            voiced(800, -20.0),
            silence(700),
        ]);
        let events = run(VadConfig::default(), &audio);
        assert_eq!(started(&events), [1500]);
        assert_eq!(stopped(&events), [(2300, 2800)]);
    }

    #[test]
    fn quiet_hiss_over_digital_silence_is_not_speech() {
        let audio = concat(&[silence(500), noise(3000, -55.0, 21)]);
        assert!(run(VadConfig::default(), &audio).is_empty());
    }

    #[test]
    fn non_finite_samples_count_as_silence() {
        let mut audio = silence(500);
        audio[10] = f32::NAN;
        audio[20] = f32::INFINITY;
        let mut vad = Vad::new(VadConfig::default());
        assert!(vad.process(&audio).is_empty());
        assert!(vad.noise_floor_dbfs().is_some_and(f32::is_finite));
        let events = vad.process(&concat(&[voiced(500, -20.0), silence(600)]));
        assert_eq!(started(&events), [500]);
    }

    /// Feeds frame scores straight to the state machine, as a detector would.
    fn scored(vad: &mut Vad, scores: &[f32]) -> Vec<VadEvent> {
        let mut events = Vec::new();
        for &speech in scores {
            vad.on_frame(FrameScore { speech, loud: true }, &mut events);
        }
        events
    }

    #[test]
    fn a_score_between_the_thresholds_keeps_speech_going_but_does_not_start_it() {
        let mut vad = Vad::new(VadConfig::default());
        // 0.4 is below the speech threshold: no onset however long it lasts.
        assert!(scored(&mut vad, &[0.4; 100]).is_empty());
        assert_eq!(
            scored(&mut vad, &[0.9; 10]),
            [VadEvent::SpeechStarted { at_ms: 1000 }]
        );
        // Dipping to 0.4 inside speech is still speech: the silence has not begun.
        scored(&mut vad, &[0.4; 80]);
        assert!(vad.is_speaking());
        assert_eq!(vad.trailing_silence_ms(), 0);
        // Below the release threshold the silence counts, and a run of 0.4 after it does
        // not resume speech (that takes the speech threshold again).
        scored(&mut vad, &[0.1; 10]);
        assert_eq!(vad.trailing_silence_ms(), 100);
        scored(&mut vad, &[0.4; 10]);
        assert_eq!(vad.trailing_silence_ms(), 200);
        scored(&mut vad, &[0.6; 3]);
        assert_eq!(vad.trailing_silence_ms(), 0);
        let events = scored(&mut vad, &[0.0; 50]);
        assert_eq!(
            events,
            [VadEvent::SpeechStopped {
                speech_end_ms: 2130,
                decided_at_ms: 2630
            }]
        );
    }

    #[test]
    fn quiet_speech_neither_starts_a_turn_nor_holds_one_open_for_long() {
        let quiet = FrameScore {
            speech: 0.99,
            loud: false,
        };
        let loud = FrameScore {
            speech: 0.99,
            loud: true,
        };
        let mut vad = Vad::new(VadConfig::default());
        let mut events = Vec::new();
        // Talkers in the background: speech, but never loud.
        for _ in 0..200 {
            vad.on_frame(quiet, &mut events);
        }
        assert!(events.is_empty(), "{events:?}");
        // The speaker for 1 s, then the background talkers again: their speech counts for
        // the 400 ms hold (to the end of frame 338), then the 500 ms silence ends the turn.
        for _ in 0..100 {
            vad.on_frame(loud, &mut events);
        }
        for _ in 0..100 {
            vad.on_frame(quiet, &mut events);
        }
        assert_eq!(
            events,
            [
                VadEvent::SpeechStarted { at_ms: 2000 },
                VadEvent::SpeechStopped {
                    speech_end_ms: 3390,
                    decided_at_ms: 3890
                }
            ]
        );
    }

    #[test]
    fn min_speech_ms_zero_starts_on_the_first_active_frame() {
        let cfg = VadConfig {
            min_speech_ms: 0,
            ..VadConfig::default()
        };
        let mut vad = Vad::new(cfg);
        vad.process(&silence(100));
        assert_eq!(
            vad.process(&voiced(10, -20.0)),
            [VadEvent::SpeechStarted { at_ms: 100 }]
        );
    }
}
