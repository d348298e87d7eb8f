//! What each server frame does to a replayed call's state: acks, speech and transcript
//! events, the AI's text and audio (timed for stalls and `seq` holes), the response's
//! pauses and resumes, `response.done`, errors, and the server ending the call.

use std::time::Instant;

use super::report::ms_or_dash;
use super::run::{FileRun, TurnState};
use crate::client::{Incoming, Received};
use crate::protocol::{
    DoneStatus, ErrorEvent, Latency, ResponseStatus, ServerMessage, base64_to_samples,
};

impl FileRun<'_> {
    fn turn(&mut self, id: u32) -> &mut TurnState {
        self.turns.entry(id).or_default()
    }

    /// Takes in one frame from the server.
    pub(super) fn handle(&mut self, r: Received) {
        match r.msg {
            Incoming::Audio(chunk) => {
                self.audio_seq(chunk.turn, chunk.seq);
                self.audio(chunk.turn, &chunk.samples, r.at)
            }
            Incoming::Event(ev) => self.event(ev, r.at),
        }
    }

    /// Output `seq` counts across the call: a hole means frames the client never got.
    fn audio_seq(&mut self, turn_id: u32, seq: u32) {
        let hole = self
            .last_out_seq
            .is_some_and(|last| seq != last.wrapping_add(1));
        self.last_out_seq = Some(seq);
        if hole && turn_id > 0 {
            self.turn(turn_id).seq_gaps += 1;
        }
    }

    /// A turn's output audio: collected, timed against real-time playback.
    fn audio(&mut self, turn_id: u32, samples: &[i16], at: Instant) {
        if turn_id == 0 {
            return; // greeting audio: not part of the replayed turn
        }
        let rate = self.output_rate.max(1);
        let t = self.turn(turn_id);
        if t.done.is_some() {
            if t.client_errors.is_empty() {
                t.client_errors.push(format!(
                    "output audio for turn {turn_id} after its response.done"
                ));
            }
            return;
        }
        let first = *t.first_audio_at.get_or_insert(at);
        // Playback from the first frame (stopped while paused) would reach this frame at
        // its due time; arriving later is a stall the listener hears.
        t.player.frame(first, t.audio.len() as u64, rate, at);
        t.last_audio_at = Some(at);
        t.audio.extend_from_slice(samples);
    }

    /// What one server message does to the call's state.
    fn event(&mut self, ev: ServerMessage, at: Instant) {
        match ev {
            ServerMessage::AudioAck { seq } => {
                self.acked = Some(self.acked.map_or(seq, |a| a.max(seq)));
            }
            ServerMessage::InputSpeechStarted { turn_id, .. } => {
                self.speaking = true;
                if turn_id > 0 {
                    self.abandon_unanswered_before(turn_id);
                    self.turn(turn_id).open = true;
                }
            }
            ServerMessage::InputSpeechStopped {
                turn_id,
                audio_ms,
                end_of_turn,
            } => {
                self.speaking = false;
                if turn_id > 0 {
                    let t = self.turn(turn_id);
                    t.speech_end_ms = Some(audio_ms);
                    t.end_of_turn = Some(end_of_turn);
                }
            }
            ServerMessage::Transcript {
                turn_id,
                text,
                is_final,
                ..
            } => self.transcript(turn_id, text, is_final),
            ServerMessage::ResponseStarted {
                turn_id,
                status,
                eta_ms,
            } => self.response_started(turn_id, status, eta_ms, at),
            ServerMessage::ResponseTextDelta { turn_id, delta, .. } => {
                let live = self.printer.ai_delta(turn_id, &delta);
                let t = self.text_of(turn_id);
                t.deltas.push_str(&delta);
                t.buffered |= !live;
            }
            ServerMessage::ResponseAudioChunk {
                turn_id,
                seq,
                audio,
                ..
            } => {
                self.audio_seq(turn_id, seq);
                match base64_to_samples(&audio) {
                    Ok(s) => self.audio(turn_id, &s, at),
                    Err(e) => self
                        .loose_client_errors
                        .push(format!("bad response.audio.chunk: {e}")),
                }
            }
            ServerMessage::ResponseDone {
                turn_id,
                status,
                text,
                heard_text,
                latency,
                ..
            } => {
                self.text_of(turn_id).player.stopped(at);
                self.done(turn_id, status, (text, heard_text), latency)
            }
            ServerMessage::ResponsePaused { turn_id, audio_ms } => {
                self.text_of(turn_id).player.pause(audio_ms, at);
                self.printer.line(
                    &format!("turn {turn_id}: paused (speech over it from {audio_ms} ms)"),
                    false,
                );
            }
            ServerMessage::ResponseResumed {
                turn_id,
                paused_ms,
                text,
            } => {
                self.printer.line(
                    &format!("turn {turn_id}: resumed after {paused_ms} ms (heard {text:?})"),
                    false,
                );
                self.text_of(turn_id).player.resume(paused_ms, text, at);
            }
            ServerMessage::Error(e) => self.error(e),
            ServerMessage::SessionEnded { reason, .. } => {
                self.server_ended = true;
                self.printer
                    .line(&format!("the server ended the call ({reason:?})"), true);
            }
            ServerMessage::SessionStarted { .. } | ServerMessage::SessionResumed { .. } => {
                self.loose_client_errors
                    .push("unexpected session.started/resumed mid-call".into());
            }
            ServerMessage::Pong { .. } => {}
        }
    }

    /// A new turn began: an earlier one with no `response.started` was dropped by the
    /// server (speech that resumed while it was still being transcribed cuts it off, and
    /// it gets neither a final transcript nor a `response.done`), so it is settled as
    /// cancelled rather than waited for.
    fn abandon_unanswered_before(&mut self, turn_id: u32) {
        for t in self.turns.range_mut(..turn_id).map(|(_, t)| t) {
            if t.open && !t.responded && t.done.is_none() {
                t.open = false;
                t.done = Some((DoneStatus::Cancelled, t.deltas.clone(), Latency::default()));
            }
        }
    }

    fn transcript(&mut self, turn_id: u32, text: String, is_final: bool) {
        if !is_final {
            self.printer.partial(&text);
            return;
        }
        self.printer
            .line(&format!("you [turn {turn_id}]: {text}"), false);
        let t = self.turn(turn_id);
        t.final_transcript = text;
        t.open = true;
    }

    fn response_started(
        &mut self,
        turn_id: u32,
        status: ResponseStatus,
        eta_ms: Option<u64>,
        at: Instant,
    ) {
        if turn_id > 0 {
            let t = self.turn(turn_id);
            t.open = true;
            t.responded = true;
            t.responded_at.get_or_insert(at);
            if status == ResponseStatus::Queued {
                t.queued_eta_ms = eta_ms.or(t.queued_eta_ms);
            }
        }
        if status != ResponseStatus::Thinking {
            self.printer.line(
                &format!(
                    "turn {turn_id}: response {status:?} (eta {} ms)",
                    ms_or_dash(eta_ms)
                ),
                false,
            );
        }
    }

    /// A server `error`: printed even when quiet, kept with its turn (or the call's).
    fn error(&mut self, e: ErrorEvent) {
        let turn = e
            .turn_id
            .map_or_else(String::new, |t| format!(" [turn {t}]"));
        let kind = if e.recoverable {
            "recoverable"
        } else {
            "fatal"
        };
        self.printer.line(
            &format!("server error {}{turn}: {} ({kind})", e.code, e.message),
            true,
        );
        match e.turn_id {
            Some(t) if t > 0 => self.turn(t).errors.push(e),
            _ => self.loose_errors.push(e),
        }
    }

    /// Where a turn's text goes: the greeting's own state for turn 0.
    fn text_of(&mut self, turn_id: u32) -> &mut TurnState {
        if turn_id == 0 {
            &mut self.greeting
        } else {
            self.turn(turn_id)
        }
    }

    /// `response.done`: the turn's outcome, its text and the part heard (the greeting's
    /// only prints).
    fn done(
        &mut self,
        turn_id: u32,
        status: DoneStatus,
        (text, heard_text): (String, String),
        latency: Latency,
    ) {
        let t = self.text_of(turn_id);
        let reprint = t.buffered || t.deltas.is_empty();
        if self.printer.is_open_ai(turn_id) {
            self.printer.close_open();
        }
        if reprint {
            let who = if turn_id == 0 {
                "greeting".to_owned()
            } else {
                format!("turn {turn_id}")
            };
            self.printer.line(&format!("AI [{who}]: {text}"), false);
        }
        if turn_id == 0 {
            self.greeting.done = Some((status, text, latency));
            return;
        }
        let t = self.turn(turn_id);
        if t.done.is_some() {
            t.client_errors
                .push(format!("second response.done for turn {turn_id}"));
            return;
        }
        t.open = false;
        t.done = Some((status, text, latency));
        t.heard_text = Some(heard_text);
        // The latency line is printed by `finish`, once voice-to-voice is known.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::replay::ReplayOptions;
    use crate::protocol::parse_server_message;

    /// A server message from its JSON (so the test builds whatever fields the protocol
    /// types grow).
    fn msg(json: &str) -> ServerMessage {
        parse_server_message(json).expect("a server message")
    }

    #[test]
    fn a_paused_response_is_not_a_stall_and_its_pauses_are_kept() {
        use crate::client::replay::PauseOutcome;
        use crate::protocol::OutputChunk;
        let mut opts = ReplayOptions::new("ws://unused", Vec::new());
        opts.quiet = true;
        let mut run = FileRun::new(&opts);
        run.output_rate = 1000;
        let t0 = Instant::now();
        let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
        let mut seq = 0;
        let mut frame = |run: &mut FileRun, ms: u64| {
            let chunk = OutputChunk {
                seq,
                turn: 1,
                first: seq == 0,
                last: false,
                samples: vec![0; 100],
            };
            seq += 1;
            run.handle(Received {
                at: at(ms),
                msg: Incoming::Audio(chunk),
            });
        };
        run.event(
            msg(r#"{"type":"input.speech_started","turnId":1,"audioMs":0}"#),
            at(0),
        );
        // 100 ms frames sent 400 ms ahead, then held for 1.5 s by a backchannel.
        for ms in [0, 0, 0, 0, 100] {
            frame(&mut run, ms);
        }
        run.event(
            msg(r#"{"type":"response.paused","turnId":1,"audioMs":2300}"#),
            at(200),
        );
        run.event(
            msg(r#"{"type":"response.resumed","turnId":1,"pausedMs":1480,"text":"okay"}"#),
            at(1700),
        );
        for ms in [1700, 1800, 1900] {
            frame(&mut run, ms);
        }
        let done = r#"{"type":"response.done","turnId":1,"status":"completed","text":"Go on.","heardText":"Go on.","latency":{}}"#;
        run.event(msg(done), at(2000));
        let t = &run.turns[&1];
        assert_eq!(
            t.player.stall,
            std::time::Duration::ZERO,
            "the pause is no stall"
        );
        assert_eq!(t.seq_gaps, 0);
        assert_eq!(t.heard_text.as_deref(), Some("Go on."));
        let p = &t.player.pauses[0];
        assert_eq!((p.audio_ms, p.outcome), (2300, PauseOutcome::Resumed));
        assert_eq!(
            (p.server_paused_ms, p.text.as_deref()),
            (Some(1480), Some("okay"))
        );
    }

    #[test]
    fn a_turn_dropped_before_its_response_is_settled_when_the_next_begins() {
        let mut opts = ReplayOptions::new("ws://unused", Vec::new());
        opts.quiet = true;
        let mut run = FileRun::new(&opts);
        let at = Instant::now();
        let started = |id: u32| {
            msg(&format!(
                r#"{{"type":"input.speech_started","turnId":{id},"audioMs":0}}"#
            ))
        };
        run.event(started(1), at);
        let stopped = msg(
            r#"{"type":"input.speech_stopped","turnId":1,"audioMs":1500,"endOfTurn":{"rule":"silence","silenceMs":500}}"#,
        );
        let eot = crate::protocol::EndOfTurn {
            rule: crate::protocol::EndRule::Silence,
            silence_ms: 500,
            score: None,
        };
        run.event(stopped, at);
        assert!(run.turns[&1].open && run.turns[&1].done.is_none());
        assert_eq!(run.turns[&1].speech_end_ms, Some(1500));
        assert_eq!(run.turns[&1].end_of_turn, Some(eot));
        // The candidate goes on talking before turn 1 was answered: the server drops it.
        run.event(started(2), at);
        let t1 = &run.turns[&1];
        assert!(!t1.open);
        assert!(matches!(t1.done, Some((DoneStatus::Cancelled, _, _))));
        assert!(run.turns[&2].open);
        // A turn that got its response.started waits for its own response.done.
        let thinking = r#"{"type":"response.started","turnId":2,"status":"thinking"}"#;
        run.event(msg(thinking), at);
        run.event(started(3), at);
        assert!(run.turns[&2].open && run.turns[&2].done.is_none());
        assert_eq!(run.turns[&2].responded_at, Some(at));
    }
}
