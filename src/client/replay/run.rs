//! One file = one call: opens the call, streams the file (then, with a barge-in, the
//! interruption over the AI's answer) on the [`Pacer`]'s schedule, takes the call over on
//! a new connection when the link drops, ends the call and settles the reports.
//!
//! The per-call state lives in [`FileRun`]; what each server frame does to it is in
//! `events.rs`, and how it becomes reports in `settle.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::input::barge_audio;
use super::pacing::{MAX_UNACKED_CHUNKS, Pacer, Phase, unacked};
use super::player::Player;
use super::printer::Printer;
use super::report::{TurnReport, TurnStatus, failed_report};
use super::{END_TIMEOUT, RESUME_WINDOW, ReplayOptions};
use crate::audio::wav::Interleaved;
use crate::client::{
    CallClient, CallSender, ClientError, DEFAULT_CONNECT_TIMEOUT, Received, Resumed,
    server_vad_start,
};
use crate::protocol::{DoneStatus, ErrorEvent, Latency};

/// What the client knows of one user turn.
#[derive(Default)]
pub(super) struct TurnState {
    pub(super) final_transcript: String,
    /// Deltas received, used when no `response.done` came.
    pub(super) deltas: String,
    /// Some delta was not printed live (progress bar up, quiet): `response.done` prints
    /// the whole text.
    pub(super) buffered: bool,
    /// Speech started (server VAD) or a response started: the turn expects a `response.done`.
    pub(super) open: bool,
    /// A `response.started` came for it.
    pub(super) responded: bool,
    /// When the first `response.started` came.
    pub(super) responded_at: Option<Instant>,
    /// `response.started` `queued`: the wait the server announced.
    pub(super) queued_eta_ms: Option<u64>,
    /// `input.speech_stopped.audioMs`: where the server put the end of the speech.
    pub(super) speech_end_ms: Option<u64>,
    /// `input.speech_stopped.endOfTurn`, as sent.
    pub(super) end_of_turn: Option<crate::protocol::EndOfTurn>,
    /// What `response.done` said (or what the client settled for it after a resume).
    pub(super) done: Option<(DoneStatus, String, Latency)>,
    /// `response.done.heardText`.
    pub(super) heard_text: Option<String>,
    pub(super) first_audio_at: Option<Instant>,
    pub(super) last_audio_at: Option<Instant>,
    /// The modelled player: stalls against running playback, and the pauses.
    pub(super) player: Player,
    pub(super) seq_gaps: u32,
    pub(super) audio: Vec<i16>,
    pub(super) errors: Vec<ErrorEvent>,
    pub(super) client_errors: Vec<String>,
}

/// How the stream of one call ended.
pub(super) enum Outcome {
    /// Every user turn was answered.
    Finished,
    /// No progress within the tail timeout.
    TimedOut,
    /// The connection failed for good, or the server ended the call.
    Broken(String),
}

/// When the client sent the moments the measurements count from.
#[derive(Default)]
pub(super) struct Marks {
    /// Per clip streamed (the file, then the barge-in clip): when the chunk holding its
    /// end of speech was sent, and when the chunk holding its onset was.
    pub(super) clips: Vec<ClipMarks>,
    /// The user turn whose AI audio the barge-in clip was spoken over.
    pub(super) barged_turn: Option<u32>,
}

/// When one clip's speech bounds went out.
#[derive(Default, Clone, Copy)]
pub(super) struct ClipMarks {
    pub(super) onset_sent: Option<Instant>,
    pub(super) eos_sent: Option<Instant>,
}

/// One call's state while a file is replayed.
pub(super) struct FileRun<'a> {
    pub(super) opts: &'a ReplayOptions,
    pub(super) printer: Printer,
    pub(super) turns: BTreeMap<u32, TurnState>,
    /// The greeting (turn 0): printed, never reported.
    pub(super) greeting: TurnState,
    pub(super) loose_errors: Vec<ErrorEvent>,
    pub(super) loose_client_errors: Vec<String>,
    pub(super) acked: Option<u32>,
    pub(super) speaking: bool,
    pub(super) server_ended: bool,
    pub(super) output_rate: u32,
    /// The last output audio `seq` seen, to spot holes.
    pub(super) last_out_seq: Option<u32>,
    /// Times the call was taken over on a new connection.
    pub(super) resumes: u32,
}

/// Longest wait for the greeting before the file is streamed anyway.
const GREETING_MAX: Duration = Duration::from_secs(60);
/// What a player still has to play after the greeting's `response.done`: the server sends
/// audio up to 400 ms ahead of real time.
const GREETING_PLAYOUT: Duration = Duration::from_millis(400);

/// Where the speech of a file lies, in frames (start inclusive, end exclusive).
pub type SpeechBounds = (usize, usize);

/// Replays one file as one call (what [`super::replay`] does per file, and what
/// `callgate bench` runs concurrently): returns one report per user turn. Per-call
/// problems become reports; `Err` only when the output folder cannot be written.
pub async fn replay_file(
    opts: &ReplayOptions,
    path: &Path,
    audio: &Interleaved,
) -> Result<Vec<TurnReport>, ClientError> {
    replay_file_with_speech(opts, path, audio, None).await
}

/// [`replay_file`] with the speech's bounds given rather than found in the signal: for a
/// file whose speech is mixed with noise, where the generator knows better.
pub async fn replay_file_with_speech(
    opts: &ReplayOptions,
    path: &Path,
    audio: &Interleaved,
    speech: Option<SpeechBounds>,
) -> Result<Vec<TurnReport>, ClientError> {
    if opts.protocol == super::Protocol::Realtime {
        return super::realtime::replay_file(opts, path, audio, speech).await;
    }
    let mut run = FileRun::new(opts);
    run.announce(path, audio);
    let barge = match &opts.barge_in {
        Some(b) => Some(barge_audio(b, audio).map_err(|e| ClientError::file(path, e))?),
        None => None,
    };
    let start = server_vad_start(
        (audio.rate, audio.channels),
        opts.output_rate,
        opts.persona.clone(),
        opts.silence_ms,
    );
    let start = crate::protocol::SessionStart {
        turn_detection: opts.turn_detection().apply(start.turn_detection),
        ..start
    };
    let mut call =
        match CallClient::connect_with_timeout(&opts.url, &start, DEFAULT_CONNECT_TIMEOUT).await {
            Ok(c) => c,
            Err(e) => {
                let name = path.display();
                run.printer.line(&format!("error: {name}: {e}"), true);
                let report = failed_report(path, "", TurnStatus::Error, e.to_string());
                return Ok(vec![report]);
            }
        };
    run.output_rate = call.session.output.sample_rate;
    let session_id = call.session.session_id.clone();
    let opened = format!(
        "{}: call {session_id}, interviewer voice {}",
        path.display(),
        call.session.voice
    );
    run.printer.line(&opened, false);
    let (outcome, marks) = run
        .stream(&mut call, path, (audio, speech), barge.as_ref())
        .await;
    run.printer.end_bar();
    let unanswered = run.unanswered(&outcome);
    let end_note = run.end_call(call, &outcome).await;
    run.printer.close_open();
    let (reports, audio_files) = run.finish(path, &session_id, outcome, marks, &unanswered);
    super::settle::write_turn_audio(audio_files).await?;
    Ok(with_end_note(reports, end_note))
}

/// A failed `session.end` is the last report's client error.
fn with_end_note(mut reports: Vec<TurnReport>, note: Option<String>) -> Vec<TurnReport> {
    if let Some(last) = reports.last_mut() {
        last.client_errors.extend(note);
    }
    reports
}

impl<'a> FileRun<'a> {
    pub(super) fn new(opts: &'a ReplayOptions) -> Self {
        Self {
            opts,
            printer: Printer::new(opts.quiet),
            turns: BTreeMap::new(),
            greeting: TurnState::default(),
            loose_errors: Vec::new(),
            loose_client_errors: Vec::new(),
            acked: None,
            speaking: false,
            server_ended: false,
            output_rate: opts.output_rate,
            last_out_seq: None,
            resumes: 0,
        }
    }

    /// The file's first line: its format and where its speech ends.
    fn announce(&mut self, path: &Path, audio: &Interleaved) {
        let eos = crate::audio::level::end_of_speech(&audio.to_mono_f32(), audio.rate);
        let seconds = |frames: usize| frames as f64 / audio.rate as f64;
        self.printer.line(
            &format!(
                "> {}: {} Hz, {} ch, {:.2} s, speech ends at {}",
                path.display(),
                audio.rate,
                audio.channels,
                seconds(audio.frames()),
                eos.map_or_else(
                    || "- (no speech found)".to_owned(),
                    |e| format!("{:.2} s", seconds(e))
                )
            ),
            false,
        );
    }

    /// Streams the file (then, with a barge-in, the interruption over the AI's answer),
    /// then silence until the user turns are done; returns how it ended and when the
    /// moments measured from were sent.
    async fn stream<'c>(
        &mut self,
        call: &mut CallClient,
        path: &Path,
        (audio, speech): (&'c Interleaved, Option<SpeechBounds>),
        mut barge: Option<&'c Interleaved>,
    ) -> (Outcome, Marks) {
        self.hear_greeting(call).await;
        let mut pacer = Pacer::new(audio, self.opts.chunk_ms, speech);
        let name = path
            .file_name()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        self.printer
            .start_bar(audio.samples.len() as u64 * 2, &name);
        let mut marks = Marks {
            clips: vec![ClipMarks::default()],
            barged_turn: None,
        };
        loop {
            let window_open = unacked(call.tx.next_seq(), self.acked) < MAX_UNACKED_CHUNKS;
            let send_at = pacer.send_at(self.opts.fast, window_open);
            let give_up = pacer.give_up(self.opts.tail_timeout);
            // A connection failure from either side of the socket, handled once below.
            let failed = tokio::select! {
                biased;
                r = call.rx.recv() => self.received(r, &mut call.tx, &mut pacer).err(),
                _ = tokio::time::sleep_until(send_at.unwrap_or(give_up)), if send_at.is_some() => {
                    // A frame whose send failed is kept for a resend: resuming sends it again.
                    self.send_next(&mut call.tx, &mut pacer, &mut marks).await.err()
                }
                _ = tokio::time::sleep_until(give_up) => return (Outcome::TimedOut, marks),
            };
            if self.server_ended {
                return (Outcome::Broken("the server ended the call".into()), marks);
            }
            if let Some(e) = failed {
                match self.resume(call, &e).await {
                    Ok(away) => pacer.shift(away),
                    Err(why) => return (Outcome::Broken(why), marks),
                }
            }
            if pacer.phase != Phase::Tail {
                continue;
            }
            if let Some(b) = barge
                && let Some(turn) = self.barge_due()
            {
                // Cut in over the answer: the interruption streams like the file did.
                barge = None;
                marks.barged_turn = Some(turn);
                marks.clips.push(ClipMarks::default());
                pacer.start_clip(b);
                continue;
            }
            if self.user_turns_done() {
                return (Outcome::Finished, marks);
            }
        }
    }

    /// Takes in what the receiver gave: a frame (an ack moves the window and the progress
    /// clock), a protocol slip (noted, the call goes on), or the connection's failure.
    /// Waits until the greeting has been heard (its `response.done`, then the audio a
    /// player still had buffered): a candidate answers the question it asks, not over it.
    /// Gives up after [`GREETING_MAX`]; a failed connection is left to the stream loop,
    /// which resumes it.
    async fn hear_greeting(&mut self, call: &mut CallClient) {
        let deadline = tokio::time::Instant::now() + GREETING_MAX;
        let mut played_out: Option<tokio::time::Instant> = None;
        loop {
            let until = played_out.unwrap_or(deadline);
            let r = tokio::select! {
                r = call.rx.recv() => r,
                _ = tokio::time::sleep_until(until) => return,
            };
            match r {
                Ok(r) => self.handle(r),
                Err(e) if !e.is_fatal() => self.loose_client_errors.push(e.to_string()),
                Err(_) => return,
            }
            if self.greeting.done.is_some() && played_out.is_none() {
                played_out = Some(tokio::time::Instant::now() + GREETING_PLAYOUT);
            }
        }
    }

    fn received(
        &mut self,
        r: Result<Received, ClientError>,
        tx: &mut CallSender,
        pacer: &mut Pacer<'_>,
    ) -> Result<(), ClientError> {
        match r {
            Ok(r) => {
                let before = self.acked;
                self.handle(r);
                if self.acked != before {
                    pacer.progressed();
                    if let Some(a) = self.acked {
                        tx.acknowledged(a);
                    }
                }
                Ok(())
            }
            Err(e) if !e.is_fatal() => {
                self.printer.line(&format!("warning: {e}"), true);
                self.loose_client_errors.push(e.to_string());
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Sends what is due: the clip's next chunk (noting when its speech bounds went out),
    /// or a chunk of the silence tail.
    async fn send_next(
        &mut self,
        tx: &mut CallSender,
        pacer: &mut Pacer<'_>,
        marks: &mut Marks,
    ) -> Result<(), ClientError> {
        if pacer.phase == Phase::Tail {
            pacer.silence_sent();
            return tx.send_audio(&pacer.silence).await.map(drop);
        }
        let i = pacer.next_chunk;
        let chunk = pacer.clip.chunk(i);
        let sent = tx.send_audio(chunk).await;
        if let Some(m) = marks.clips.last_mut() {
            if Some(i) == pacer.clip.onset_chunk {
                m.onset_sent = Some(Instant::now());
            }
            if Some(i) == pacer.clip.eos_chunk {
                m.eos_sent = Some(Instant::now());
            }
        }
        self.printer.advance(chunk.len() as u64 * 2);
        if pacer.chunk_sent() {
            self.printer.end_bar();
        }
        sent.map(drop)
    }

    /// After the connection failed with `why`: when it merely dropped (no close frame),
    /// takes the call over on a new connection, retrying with backoff for up to
    /// [`RESUME_WINDOW`]; returns how long the call was away. Otherwise (or when resuming
    /// is off, or refused) says why the call is over.
    async fn resume(
        &mut self,
        call: &mut CallClient,
        why: &ClientError,
    ) -> Result<Duration, String> {
        let dropped = matches!(
            why,
            ClientError::WebSocket(_) | ClientError::Closed { code: None, .. }
        );
        if !self.opts.resume || !dropped || self.server_ended {
            return Err(why.to_string());
        }
        self.printer.end_bar();
        self.printer
            .line(&format!("connection lost ({why}); resuming the call"), true);
        let down = Instant::now();
        let mut backoff = Duration::from_millis(100);
        let mut last = why.to_string();
        while down.elapsed() < RESUME_WINDOW {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            match call.resume(&self.opts.url, DEFAULT_CONNECT_TIMEOUT).await {
                Ok(r) => {
                    let away = down.elapsed();
                    self.printer.line(
                        &format!(
                            "resumed after {} ms: resent {} chunks from seq {}",
                            away.as_millis(),
                            r.resent,
                            r.next_seq
                        ),
                        true,
                    );
                    self.on_resumed(r);
                    return Ok(away);
                }
                Err(ClientError::Rejected(e)) => {
                    return Err(format!("resume refused: {} {}", e.code, e.message));
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!(
            "connection lost and not resumed within {} s: {last}",
            RESUME_WINDOW.as_secs()
        ))
    }

    /// The server kept the call; what was in flight when the link dropped is settled here.
    /// A response being spoken was cancelled by the server (nobody heard the rest), and a
    /// turn the server finished while nobody listened can never get its `response.done`.
    fn on_resumed(&mut self, r: Resumed) {
        self.resumes += 1;
        self.acked = r.next_seq.checked_sub(1);
        // Output frames sent to the dead link are gone; that is not a hole in this link.
        self.last_out_seq = None;
        for (&id, t) in self.turns.iter_mut() {
            if t.done.is_some() {
                continue;
            }
            let record = r.turns.iter().find(|rec| rec.turn_id == id);
            if !t.responded && record.is_none() {
                continue; // still being spoken or transcribed: it goes on
            }
            let heard = record.map_or_else(|| t.deltas.clone(), |rec| rec.ai_text.clone());
            if let Some(rec) = record
                && t.final_transcript.is_empty()
            {
                t.final_transcript = rec.user_text.clone();
            }
            let status = if t.responded {
                t.client_errors.push(
                    "the connection dropped during the response; the server cancelled it".into(),
                );
                DoneStatus::Cancelled
            } else {
                t.client_errors
                    .push("the turn was answered while the connection was down".into());
                DoneStatus::Failed
            };
            t.open = false;
            t.done = Some((status, heard, Latency::default()));
        }
    }

    /// The user turn to interrupt, once its AI audio has played for the barge-in delay.
    fn barge_due(&self) -> Option<u32> {
        let after = self.opts.barge_in.as_ref()?.after;
        self.turns.iter().find_map(|(&id, t)| {
            let first = t.first_audio_at?;
            (t.done.is_none() && first.elapsed() >= after).then_some(id)
        })
    }

    /// At least one user turn got its `response.done`, none is still open, and the user
    /// is not mid-speech according to the server.
    fn user_turns_done(&self) -> bool {
        !self.speaking
            && self.turns.values().any(|t| t.done.is_some())
            && self.turns.values().all(|t| !t.open)
    }

    /// Turns still unanswered when the client gave up: a `response.done` that only comes
    /// because `session.end` cancelled them must not pass for a cancel by the server.
    fn unanswered(&self, outcome: &Outcome) -> Vec<u32> {
        match outcome {
            Outcome::TimedOut => self
                .turns
                .iter()
                .filter(|(_, t)| t.done.is_none())
                .map(|(&id, _)| id)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Ends the call unless it is over already, taking in what arrives meanwhile; returns
    /// a note when `session.end` went wrong.
    async fn end_call(&mut self, call: CallClient, outcome: &Outcome) -> Option<String> {
        if matches!(outcome, Outcome::Broken(_)) || self.server_ended {
            return None;
        }
        let (ended, late) = call.end(END_TIMEOUT).await;
        for r in late {
            self.handle(r);
        }
        ended.err().map(|e| format!("session.end: {e}"))
    }
}
