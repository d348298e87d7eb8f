//! `callgate mic URL`: a live call from the terminal with this machine's microphone and
//! speaker (cpal). It streams the input device at its own rate (the server resamples),
//! plays the interviewer's audio on the output device, and prints transcripts, the
//! interviewer's words and each turn's latency as they come.
//!
//! Half-duplex by default: while the interviewer's audio plays (and a short tail after it,
//! for the room's echo) the microphone sends silence, because a laptop speaker feeds back
//! into its own mic and the server would take that for the candidate barging in.
//! `--barge-in` sends the mic throughout, for headphones. Speaking over the interviewer
//! then pauses it (`response.paused`: the speaker stops and keeps what it has queued); a
//! backchannel resumes it from there (`response.resumed`), anything else cancels it.
//!
//! Devices are opened before anything is sent to the server, so a machine without audio
//! (a server, CI) gets one sentence saying so and no half-made call.

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{Device, FromSample, SampleFormat, SizedSample, Stream, StreamConfig};
use tokio::sync::mpsc;

use super::{CallClient, ClientError, Incoming, server_vad_start};
use crate::protocol::{ClientMessage, DoneStatus, SAMPLE_RATE_RANGE, ServerMessage};

/// Input chunk length sent to the server.
const CHUNK_MS: u32 = 20;
/// After the interviewer's audio ends, the mic stays muted this long (half-duplex), so the
/// room's echo of the last word is not heard as the candidate.
const ECHO_TAIL: Duration = Duration::from_millis(300);
/// How often `playback.position` is reported while the interviewer speaks.
const POSITION_EVERY: Duration = Duration::from_millis(250);

/// Command-line arguments of `callgate mic`.
#[derive(Debug, Clone, clap::Args)]
pub struct MicArgs {
    /// Server endpoint, e.g. ws://127.0.0.1:8080/v1/call
    #[arg(required_unless_present = "list_devices")]
    pub url: Option<String>,
    /// List the audio devices and exit.
    #[arg(long)]
    pub list_devices: bool,
    /// Input device: a (part of a) name from --list-devices [default: the system default].
    #[arg(long, value_name = "NAME")]
    pub input: Option<String>,
    /// Output device: a (part of a) name from --list-devices [default: the system default].
    #[arg(long, value_name = "NAME")]
    pub output: Option<String>,
    /// Keep the mic open while the interviewer speaks, so speaking over it pauses it: an
    /// "mm-hmm" or "okay" lets it go on, anything else interrupts it (use headphones: a
    /// speaker's sound reaching the mic counts as speaking too).
    #[arg(long)]
    pub barge_in: bool,
    /// AI persona (session.start `persona`).
    #[arg(long)]
    pub persona: Option<String>,
    /// The role applied for, given to the interviewer (session.start `context.role`).
    #[arg(long)]
    pub role: Option<String>,
    /// Silence that ends a turn (turnDetection.silenceMs).
    #[arg(long, default_value_t = 700, value_parser = clap::value_parser!(u32).range(100..=5000))]
    pub silence_ms: u32,
}

/// What can stop `callgate mic`. Each message is one sentence a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum MicError {
    /// No device of that direction at all (a server, a container, CI).
    #[error(
        "no audio {0} device found: `callgate mic` needs a microphone and a speaker (`callgate mic --list-devices` shows what this machine has)"
    )]
    NoDevice(&'static str),
    /// `--input`/`--output` named nothing that exists.
    #[error("no audio {direction} device matches {name:?} (see `callgate mic --list-devices`)")]
    NoMatch {
        /// `input` or `output`.
        direction: &'static str,
        /// The name asked for.
        name: String,
    },
    /// The device exists but would not open or start.
    #[error(
        "the audio {direction} device {device:?} could not be used ({}); `callgate mic --list-devices` shows the others",
        reason.trim_end_matches('.')
    )]
    Device {
        /// `input` or `output`.
        direction: &'static str,
        /// The device's name.
        device: String,
        /// What cpal said.
        reason: String,
    },
    /// The device runs at a rate callgate.v1 does not carry.
    #[error(
        "the audio {direction} device {device:?} runs at {rate} Hz; callgate.v1 carries 8000-48000 Hz: set the device to 48 kHz or pick another with --{direction}"
    )]
    Rate {
        /// `input` or `output`.
        direction: &'static str,
        /// The device's name.
        device: String,
        /// Its rate.
        rate: u32,
    },
    /// The call itself failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// The audio host's devices, one line each, defaults marked.
pub fn list_devices() -> Result<String, MicError> {
    let _quiet = quiet_alsa();
    let host = cpal::default_host();
    let default_in = host.default_input_device().map(|d| d.to_string());
    let default_out = host.default_output_device().map(|d| d.to_string());
    let mut out = String::new();
    let devices: Vec<Device> = host.devices().map(|d| d.collect()).unwrap_or_default();
    for d in &devices {
        let name = d.to_string();
        let mut roles = Vec::new();
        if let Ok(c) = d.default_input_config() {
            let mark = if default_in.as_deref() == Some(&name) {
                " (default)"
            } else {
                ""
            };
            roles.push(format!(
                "input {} Hz {} ch{mark}",
                c.sample_rate(),
                c.channels()
            ));
        }
        if let Ok(c) = d.default_output_config() {
            let mark = if default_out.as_deref() == Some(&name) {
                " (default)"
            } else {
                ""
            };
            roles.push(format!(
                "output {} Hz {} ch{mark}",
                c.sample_rate(),
                c.channels()
            ));
        }
        if !roles.is_empty() {
            out.push_str(&format!("{name}: {}\n", roles.join(", ")));
        }
    }
    if out.is_empty() {
        return Err(MicError::NoDevice("input or output"));
    }
    Ok(out)
}

/// alsa-lib prints its own complaints (no card, no config) on stderr; the errors callgate
/// returns already say what matters, in one sentence. Silences them on this thread while
/// the guard lives.
#[cfg(target_os = "linux")]
fn quiet_alsa() -> Option<impl Sized> {
    alsa::Output::local_error_handler().ok()
}

#[cfg(not(target_os = "linux"))]
fn quiet_alsa() -> Option<()> {
    None
}

fn pick(
    host: &cpal::Host,
    direction: &'static str,
    name: Option<&str>,
) -> Result<Device, MicError> {
    let is_input = direction == "input";
    let Some(name) = name else {
        let default = if is_input {
            host.default_input_device()
        } else {
            host.default_output_device()
        };
        return default.ok_or(MicError::NoDevice(direction));
    };
    let wanted = name.to_lowercase();
    host.devices()
        .ok()
        .into_iter()
        .flatten()
        .filter(|d| {
            if is_input {
                d.supports_input()
            } else {
                d.supports_output()
            }
        })
        .find(|d| d.to_string().to_lowercase().contains(&wanted))
        .ok_or_else(|| MicError::NoMatch {
            direction,
            name: name.to_owned(),
        })
}

/// The interviewer's audio waiting to be played, shared with the output callback.
#[derive(Default)]
struct Playback {
    queue: VecDeque<i16>,
    /// Turn whose audio is queued and being played.
    turn: u32,
    /// Samples of `turn` played so far.
    played: u64,
    /// When the queue last ran dry, for the half-duplex echo tail.
    drained_at: Option<Instant>,
    /// `response.paused`: the candidate spoke over the interviewer. Nothing plays, and the
    /// queue is kept for the `response.resumed` that may follow.
    paused: bool,
}

impl Playback {
    /// The next sample for the speaker: silence while paused or dry.
    fn next_sample(&mut self) -> i16 {
        if self.paused {
            return 0;
        }
        match self.queue.pop_front() {
            Some(s) => {
                self.played += 1;
                s
            }
            None => 0,
        }
    }

    /// Whether the interviewer is heard now: audio queued and not paused.
    fn is_playing(&self) -> bool {
        !self.paused && !self.queue.is_empty()
    }

    /// Queues a frame of `turn`; a new turn's audio starts its count afresh (and is not
    /// paused: a pause belongs to the response it was sent for).
    fn push(&mut self, turn: u32, samples: Vec<i16>) {
        if self.turn != turn {
            self.turn = turn;
            self.played = 0;
            self.paused = false;
        }
        self.queue.extend(samples);
    }

    /// The server paused (or resumed, `false`) `turn`'s response.
    fn set_paused(&mut self, turn: u32, paused: bool) {
        if self.turn == turn {
            self.paused = paused;
        }
    }

    /// The response was cancelled: what is queued is never heard.
    fn clear(&mut self) {
        self.queue.clear();
        self.paused = false;
        self.drained_at = Some(Instant::now());
    }
}

fn device_error(direction: &'static str, device: &Device, reason: String) -> MicError {
    MicError::Device {
        direction,
        device: device.to_string(),
        reason,
    }
}

/// The device's default stream config, refused when callgate.v1 cannot carry its rate.
fn default_config(
    device: &Device,
    direction: &'static str,
) -> Result<(StreamConfig, SampleFormat), MicError> {
    let supported = if direction == "input" {
        device.default_input_config()
    } else {
        device.default_output_config()
    }
    .map_err(|e| device_error(direction, device, e.to_string()))?;
    let rate = supported.sample_rate();
    if !SAMPLE_RATE_RANGE.contains(&rate) {
        return Err(MicError::Rate {
            direction,
            device: device.to_string(),
            rate,
        });
    }
    let format = supported.sample_format();
    Ok((supported.into(), format))
}

fn unsupported_format(direction: &'static str, device: &Device, f: SampleFormat) -> MicError {
    device_error(
        direction,
        device,
        format!("its sample format {f} is not supported"),
    )
}

/// Opens the input device; its callback sends mono i16 blocks on `tx`.
fn open_input(device: &Device, tx: mpsc::Sender<Vec<i16>>) -> Result<(Stream, u32), MicError> {
    let (config, format) = default_config(device, "input")?;
    let stream = match format {
        SampleFormat::F32 => build_input::<f32>(device, &config, tx),
        SampleFormat::I16 => build_input::<i16>(device, &config, tx),
        SampleFormat::I32 => build_input::<i32>(device, &config, tx),
        SampleFormat::U16 => build_input::<u16>(device, &config, tx),
        other => return Err(unsupported_format("input", device, other)),
    }
    .map_err(|e| device_error("input", device, e.to_string()))?;
    Ok((stream, config.sample_rate))
}

fn build_input<T>(
    device: &Device,
    config: &StreamConfig,
    tx: mpsc::Sender<Vec<i16>>,
) -> Result<Stream, cpal::Error>
where
    T: SizedSample,
    i16: FromSample<T>,
{
    let channels = config.channels.max(1) as usize;
    device.build_input_stream::<T, _, _>(
        *config,
        move |data: &[T], _| {
            let mono = data
                .chunks(channels)
                .map(|frame| {
                    let sum: i32 = frame.iter().map(|s| s.to_sample::<i16>() as i32).sum();
                    (sum / frame.len() as i32) as i16
                })
                .collect();
            // A full queue means the network side is stuck; dropping audio beats growing.
            let _ = tx.try_send(mono);
        },
        |e| tracing::warn!(error = %e, "audio input error"),
        None,
    )
}

/// Opens the output device; its callback plays from `playback`.
fn open_output(device: &Device, playback: Arc<Mutex<Playback>>) -> Result<(Stream, u32), MicError> {
    let (config, format) = default_config(device, "output")?;
    let stream = match format {
        SampleFormat::F32 => build_output::<f32>(device, &config, playback),
        SampleFormat::I16 => build_output::<i16>(device, &config, playback),
        SampleFormat::I32 => build_output::<i32>(device, &config, playback),
        SampleFormat::U16 => build_output::<u16>(device, &config, playback),
        other => return Err(unsupported_format("output", device, other)),
    }
    .map_err(|e| device_error("output", device, e.to_string()))?;
    Ok((stream, config.sample_rate))
}

fn build_output<T>(
    device: &Device,
    config: &StreamConfig,
    playback: Arc<Mutex<Playback>>,
) -> Result<Stream, cpal::Error>
where
    T: SizedSample + FromSample<i16>,
{
    let channels = config.channels.max(1) as usize;
    device.build_output_stream::<T, _, _>(
        *config,
        move |data: &mut [T], _| {
            let mut p = playback.lock().unwrap_or_else(|e| e.into_inner());
            let had_audio = !p.queue.is_empty();
            for frame in data.chunks_mut(channels) {
                let s = p.next_sample();
                frame.fill(T::from_sample(s));
            }
            if had_audio && p.queue.is_empty() {
                p.drained_at = Some(Instant::now());
            }
        },
        |e| tracing::warn!(error = %e, "audio output error"),
        None,
    )
}

/// The opened audio devices (not started until the call is open).
struct Devices {
    input: Stream,
    input_rate: u32,
    input_name: String,
    output: Stream,
    output_rate: u32,
    output_name: String,
}

impl Devices {
    /// Opens both devices: the input's blocks go to `mic_tx`, the output plays `playback`.
    fn open(
        args: &MicArgs,
        mic_tx: mpsc::Sender<Vec<i16>>,
        playback: Arc<Mutex<Playback>>,
    ) -> Result<Self, MicError> {
        let _quiet = quiet_alsa();
        let host = cpal::default_host();
        let input_device = pick(&host, "input", args.input.as_deref())?;
        let output_device = pick(&host, "output", args.output.as_deref())?;
        let (input, input_rate) = open_input(&input_device, mic_tx)?;
        let (output, output_rate) = open_output(&output_device, playback)?;
        Ok(Self {
            input,
            input_rate,
            input_name: input_device.to_string(),
            output,
            output_rate,
            output_name: output_device.to_string(),
        })
    }

    /// Starts both streams.
    fn play(&self) -> Result<(), MicError> {
        for (stream, direction, name) in [
            (&self.input, "input", &self.input_name),
            (&self.output, "output", &self.output_name),
        ] {
            stream.play().map_err(|e| MicError::Device {
                direction,
                device: name.clone(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }
}

/// Runs one live call until ctrl-c or the server ends it.
pub async fn run(args: MicArgs) -> Result<(), MicError> {
    let Some(url) = args.url.clone() else {
        print!("{}", list_devices()?);
        return Ok(());
    };
    let (mic_tx, mic_rx) = mpsc::channel::<Vec<i16>>(64);
    let playback = Arc::new(Mutex::new(Playback::default()));
    let devices = Devices::open(&args, mic_tx, playback.clone())?;
    let mut start = server_vad_start(
        (devices.input_rate, 1),
        devices.output_rate,
        args.persona.clone(),
        Some(args.silence_ms),
    );
    start.context = args
        .role
        .iter()
        .map(|r| ("role".to_owned(), serde_json::Value::from(r.clone())))
        .collect();
    let call = CallClient::connect(&url, &start).await?;
    devices.play()?;
    eprintln!(
        "in call (mic: {}, {} Hz; speaker: {}, {} Hz){}. Ctrl-C ends it.",
        devices.input_name,
        devices.input_rate,
        devices.output_name,
        devices.output_rate,
        if args.barge_in {
            ""
        } else {
            "; the mic is muted while the interviewer speaks (--barge-in to interrupt)"
        }
    );
    let chunk = (devices.input_rate * CHUNK_MS / 1000) as usize;
    let mut live = LiveCall {
        call,
        playback,
        barge_in: args.barge_in,
        output_rate: devices.output_rate,
        chunk,
        pending: Vec::with_capacity(chunk * 2),
        cancelled: HashSet::new(),
        last_position: Instant::now(),
        ai_line_open: false,
    };
    if live.run(mic_rx).await? {
        let (ended, _) = live.call.end(Duration::from_secs(5)).await;
        if let Ok(e) = ended {
            eprintln!("\ncall ended after {} s", e.duration_ms / 1000);
        }
    }
    Ok(())
}

/// A live call in progress: the connection, the playback queue, and what the loop keeps.
struct LiveCall {
    call: CallClient,
    playback: Arc<Mutex<Playback>>,
    barge_in: bool,
    output_rate: u32,
    /// Samples per input chunk.
    chunk: usize,
    /// Microphone samples not yet a whole chunk.
    pending: Vec<i16>,
    /// Turns cancelled: their late audio is not played.
    cancelled: HashSet<u32>,
    last_position: Instant,
    ai_line_open: bool,
}

impl LiveCall {
    /// Streams the microphone, reports the playback position and takes in the server's
    /// frames until ctrl-c (returns true: the caller ends the call) or the server ends it
    /// (false).
    async fn run(&mut self, mut mic_rx: mpsc::Receiver<Vec<i16>>) -> Result<bool, MicError> {
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let mut ticker = tokio::time::interval(POSITION_EVERY);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => return Ok(true),
                Some(block) = mic_rx.recv() => self.send_mic(&block).await?,
                _ = ticker.tick() => self.report_position().await?,
                r = self.call.rx.recv() => {
                    let r = match r {
                        Ok(r) => r,
                        Err(e) if !e.is_fatal() => { tracing::warn!("{e}"); continue; }
                        Err(ClientError::Closed { .. }) => {
                            eprintln!("\nthe server ended the call");
                            return Ok(false);
                        }
                        Err(e) => return Err(e.into()),
                    };
                    if !self.received(r.msg) {
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// Sends the microphone's whole chunks (silence while the interviewer is audible,
    /// unless barge-in is on).
    async fn send_mic(&mut self, block: &[i16]) -> Result<(), MicError> {
        self.pending.extend_from_slice(block);
        while self.pending.len() >= self.chunk {
            let mut frame: Vec<i16> = self.pending.drain(..self.chunk).collect();
            if !self.barge_in && interviewer_audible(&self.playback) {
                frame.fill(0);
            }
            self.call.tx.send_audio(&frame).await?;
        }
        Ok(())
    }

    /// `playback.position` while the interviewer speaks, at most every [`POSITION_EVERY`].
    async fn report_position(&mut self) -> Result<(), MicError> {
        let (turn, played, playing) = {
            let p = self.playback.lock().unwrap_or_else(|e| e.into_inner());
            (p.turn, p.played, !p.queue.is_empty())
        };
        if playing && self.last_position.elapsed() >= POSITION_EVERY {
            self.last_position = Instant::now();
            let played_ms = played * 1000 / self.output_rate as u64;
            let msg = ClientMessage::PlaybackPosition {
                turn_id: turn,
                played_ms,
            };
            self.call.tx.send(&msg).await?;
        }
        Ok(())
    }

    /// One frame from the server: audio is queued for playback, events printed; returns
    /// false once the server ended the call.
    fn received(&mut self, msg: Incoming) -> bool {
        match msg {
            Incoming::Audio(chunk) => {
                if self.cancelled.contains(&chunk.turn) {
                    return true;
                }
                let mut p = self.playback.lock().unwrap_or_else(|e| e.into_inner());
                p.push(chunk.turn, chunk.samples);
            }
            Incoming::Event(ev) => {
                self.steer_playback(&ev);
                if let ServerMessage::SessionEnded { reason, .. } = &ev {
                    eprintln!("\ncall ended ({reason:?})");
                    return false;
                }
                print_event(&ev, &mut self.ai_line_open);
            }
        }
        true
    }
}

impl LiveCall {
    /// What an event does to the speaker: a pause stops it (keeping the queue), a resume
    /// goes on from there, a cancel drops the rest of the turn.
    fn steer_playback(&mut self, ev: &ServerMessage) {
        let mut p = self.playback.lock().unwrap_or_else(|e| e.into_inner());
        match ev {
            ServerMessage::ResponsePaused { turn_id, .. } => p.set_paused(*turn_id, true),
            ServerMessage::ResponseResumed { turn_id, .. } => p.set_paused(*turn_id, false),
            ServerMessage::ResponseDone {
                turn_id,
                status: DoneStatus::Cancelled,
                ..
            } => {
                // Barge-in or cancel: nothing more of this turn may be heard.
                self.cancelled.insert(*turn_id);
                p.clear();
            }
            _ => {}
        }
    }
}

/// True while the interviewer's audio plays, or just stopped (its echo may still ring).
/// A paused interviewer is silent: the candidate, who is speaking, is heard.
fn interviewer_audible(playback: &Mutex<Playback>) -> bool {
    let p = playback.lock().unwrap_or_else(|e| e.into_inner());
    p.is_playing() || p.drained_at.is_some_and(|t| t.elapsed() < ECHO_TAIL)
}

/// Ends the interviewer's streaming line, if one is open.
fn end_ai_line(out: &mut impl Write, open: &mut bool) {
    if std::mem::take(open) {
        let _ = writeln!(out);
    }
}

fn print_event(ev: &ServerMessage, ai_line_open: &mut bool) {
    let mut out = std::io::stdout().lock();
    match ev {
        ServerMessage::Transcript {
            text,
            is_final: true,
            ..
        } => {
            end_ai_line(&mut out, ai_line_open);
            let _ = writeln!(out, "you: {text}");
        }
        ServerMessage::ResponseTextDelta { index, delta, .. } => {
            if *index == 0 {
                end_ai_line(&mut out, ai_line_open);
                let _ = write!(out, "interviewer: {}", delta.trim_start());
            } else {
                let _ = write!(out, "{delta}");
            }
            *ai_line_open = true;
        }
        ServerMessage::ResponseDone {
            turn_id,
            status,
            latency,
            ..
        } => {
            end_ai_line(&mut out, ai_line_open);
            if *turn_id == 0 {
                // The greeting answers nothing: no latency to report.
                return;
            }
            let wait = latency
                .first_audio_ms
                .map(|f| f + latency.endpoint_ms.unwrap_or(0));
            let note = match (status, wait) {
                (DoneStatus::Completed, Some(ms)) => format!(
                    "answered {ms} ms after you stopped (speech recognition {} ms)",
                    latency.asr_ms.unwrap_or(0)
                ),
                (DoneStatus::Completed, None) => String::new(),
                (DoneStatus::Cancelled, _) => "interrupted".to_owned(),
                (DoneStatus::Failed, _) => "no answer this time".to_owned(),
            };
            if !note.is_empty() {
                let _ = writeln!(out, "  ({note})");
            }
        }
        ServerMessage::Error(e) => {
            end_ai_line(&mut out, ai_line_open);
            let _ = writeln!(out, "! {}", e.user_message);
        }
        ServerMessage::ResponsePaused { .. } | ServerMessage::ResponseResumed { .. } => {
            end_ai_line(&mut out, ai_line_open);
            let _ = writeln!(out, "  ({})", pause_note(ev));
        }
        _ => {}
    }
    let _ = out.flush();
}

/// What a pause or resume means to the candidate, in words.
fn pause_note(ev: &ServerMessage) -> String {
    match ev {
        ServerMessage::ResponsePaused { .. } => "paused: you spoke over the interviewer".to_owned(),
        ServerMessage::ResponseResumed {
            paused_ms, text, ..
        } => {
            let heard = if text.trim().is_empty() {
                "a sound".to_owned()
            } else {
                format!("{:?}", text.trim())
            };
            format!("resumed after {paused_ms} ms: {heard} was only a backchannel")
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(p: &mut Playback, n: usize) -> Vec<i16> {
        (0..n).map(|_| p.next_sample()).collect()
    }

    #[test]
    fn a_pause_keeps_the_buffer_and_a_resume_plays_on_from_there() {
        let mut p = Playback::default();
        p.push(1, vec![1, 2, 3, 4, 5]);
        assert_eq!(drain(&mut p, 2), [1, 2]);
        assert!(p.is_playing());
        p.set_paused(0, true);
        assert!(p.is_playing(), "a pause of another turn changes nothing");
        p.set_paused(1, true);
        assert!(!p.is_playing());
        assert_eq!(drain(&mut p, 3), [0, 0, 0], "silence while paused");
        p.push(1, vec![6]);
        assert_eq!((p.queue.len(), p.played), (4, 2), "kept, not played");
        p.set_paused(1, false);
        assert_eq!(drain(&mut p, 5), [3, 4, 5, 6, 0]);
        assert_eq!(p.played, 6);
        // A cancel while paused drops the buffer; the next turn plays unpaused.
        p.push(1, vec![7, 8]);
        p.set_paused(1, true);
        p.clear();
        assert!(p.queue.is_empty() && !p.paused);
        p.set_paused(1, true);
        p.push(2, vec![9]);
        assert_eq!(drain(&mut p, 1), [9]);
    }

    #[test]
    fn pause_notes_say_what_happened() {
        let paused = ServerMessage::ResponsePaused {
            turn_id: 1,
            audio_ms: 100,
        };
        assert_eq!(
            pause_note(&paused),
            "paused: you spoke over the interviewer"
        );
        let resumed = |text: &str| ServerMessage::ResponseResumed {
            turn_id: 1,
            paused_ms: 640,
            text: text.into(),
        };
        assert_eq!(
            pause_note(&resumed(" okay")),
            "resumed after 640 ms: \"okay\" was only a backchannel"
        );
        assert_eq!(
            pause_note(&resumed("")),
            "resumed after 640 ms: a sound was only a backchannel"
        );
    }
}
