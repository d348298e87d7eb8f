//! What each server frame does to a replayed call's state: acks, speech and transcript
//! events, the AI's text and audio (timed for stalls and `seq` holes), `response.done`,
//! errors, and the server ending the call.

use std::time::Instant;

use super::pacing::frames_to_duration;
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
            Incoming::Event(ev) => self.event(ev, r.at, r.end_of_turn),
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
        // Playback from the first frame would reach this frame at `due`; arriving later is
        // a stall the listener hears.
        let due = first + frames_to_duration(t.audio.len() as u64, rate);
        t.stall = t.stall.max(at.saturating_duration_since(due));
        t.last_audio_at = Some(at);
        t.audio.extend_from_slice(samples);
    }

    /// What one server message does to the call's state (`end_of_turn`: what the raw
    /// frame of an `input.speech_stopped` said of why the turn ended).
    fn event(&mut self, ev: ServerMessage, at: Instant, end_of_turn: Option<serde_json::Value>) {
        match ev {
            ServerMessage::AudioAck { seq } => {
                self.acked = Some(self.acked.map_or(seq, |a| a.max(seq)));
            }
            ServerMessage::InputSpeechStarted { turn_id, .. } => {
                self.speaking = true;
                if turn_id > 0 {
                    self.turn(turn_id).open = true;
                }
            }
            ServerMessage::InputSpeechStopped {
                turn_id, audio_ms, ..
            } => {
                self.speaking = false;
                if turn_id > 0 {
                    let t = self.turn(turn_id);
                    t.speech_end_ms = Some(audio_ms);
                    t.end_of_turn = end_of_turn;
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
                latency,
                ..
            } => self.done(turn_id, status, text, latency),
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

    /// `response.done`: the turn's outcome (the greeting's only prints).
    fn done(&mut self, turn_id: u32, status: DoneStatus, text: String, latency: Latency) {
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
        // The latency line is printed by `finish`, once voice-to-voice is known.
    }
}
