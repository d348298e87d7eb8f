//! How a replayed call's state becomes its reports: each user turn's status, which turn
//! answers which clip (voice-to-voice), the barge-in figure (or a backchannel's verdict),
//! the pauses with their resume gaps, and the turn audio to write.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::player::Pause;
use super::report::{
    PauseReport, TurnReport, TurnStatus, failed_report, format_latency_line, map_done, status_word,
};
use super::run::{ClipMarks, FileRun, Marks, Outcome, TurnState};
use crate::client::ClientError;
use crate::protocol::Latency;

/// A turn's audio to write: the file and its mono samples at the output rate.
pub(super) struct AudioFile {
    path: PathBuf,
    samples: Vec<i16>,
    rate: u32,
}

/// What every turn's report of one call is settled against.
struct Settling<'m> {
    /// The file replayed.
    path: &'m Path,
    /// The server's id of the call.
    session_id: &'m str,
    /// Why the call broke, if it did.
    broken: Option<String>,
    /// Turns the client gave up on (their `response.done` came from `session.end`).
    unanswered: &'m [u32],
    /// Voice-to-voice per answering turn.
    answers: Vec<(u32, u64)>,
    marks: &'m Marks,
    /// The file's stem, for the turn audio's names.
    stem: String,
}

impl FileRun<'_> {
    /// The reports of the call, one per user turn (at least one), with the latency line
    /// of each printed; and the turn audio to write when an output folder was given.
    pub(super) fn finish(
        mut self,
        path: &Path,
        session_id: &str,
        outcome: Outcome,
        marks: Marks,
        unanswered: &[u32],
    ) -> (Vec<TurnReport>, Vec<AudioFile>) {
        let broken = match outcome {
            Outcome::Broken(e) => {
                self.printer
                    .line(&format!("error: {}: {e}", path.display()), true);
                Some(e)
            }
            Outcome::TimedOut if self.turns.values().any(|t| t.done.is_some()) => {
                // Speech the server heard but never ended (no input.speech_stopped) is not a
                // turn the client waits for; one it ended and never answered is (it stays,
                // timed out). Turns it dropped were settled when the next one began.
                self.turns
                    .retain(|_, t| t.done.is_some() || t.responded || t.speech_end_ms.is_some());
                None
            }
            _ => None,
        };
        let first_audio: Vec<(u32, Option<Instant>)> = self
            .turns
            .iter()
            .map(|(&id, t)| (id, t.first_audio_at))
            .collect();
        let settling = Settling {
            path,
            session_id,
            broken,
            unanswered,
            answers: voice_to_voice(&marks.clips, &first_audio),
            marks: &marks,
            stem: path
                .file_stem()
                .map_or_else(|| "replay".to_owned(), |s| s.to_string_lossy().into_owned()),
        };
        let mut reports = Vec::new();
        let mut audio_files = Vec::new();
        for (id, t) in std::mem::take(&mut self.turns) {
            let (report, audio) = self.turn_report(&settling, id, t);
            reports.push(report);
            audio_files.extend(audio);
        }
        if reports.is_empty() {
            let (status, why) = match &settling.broken {
                Some(e) => (TurnStatus::Error, e.clone()),
                None => (
                    TurnStatus::Timeout,
                    "no user turn was answered (did the server hear speech?)".to_owned(),
                ),
            };
            reports.push(failed_report(path, session_id, status, why));
        } else if let Some(e) = &settling.broken
            && let Some(last) = reports.last_mut()
        {
            last.client_errors.push(e.clone());
        }
        if let Some(last) = reports.last_mut() {
            last.resumes = self.resumes;
            last.errors.append(&mut self.loose_errors);
            last.client_errors.append(&mut self.loose_client_errors);
        }
        for r in &reports {
            self.printer.line(&format_latency_line(r), false);
        }
        (reports, audio_files)
    }

    /// One user turn's report, and its audio to write when an output folder was given.
    fn turn_report(&self, s: &Settling, id: u32, t: TurnState) -> (TurnReport, Option<AudioFile>) {
        let (status, ai_text, latency) = match t.done {
            Some((_, text, l)) if s.unanswered.contains(&id) => (TurnStatus::Timeout, text, l),
            Some((done, text, l)) => (map_done(done), text, l),
            None if s.broken.is_some() => (TurnStatus::Error, t.deltas, Latency::default()),
            None => (TurnStatus::Timeout, t.deltas, Latency::default()),
        };
        let mut client_errors = t.client_errors;
        let spoken_over = s.marks.barged_turn == Some(id);
        let verdict =
            spoken_over.then(|| self.barge_in_verdict(s.marks, id, (status, t.last_audio_at)));
        let barge_in_ms = match verdict {
            Some(Ok(ms)) => ms,
            Some(Err(e)) => {
                client_errors.push(e);
                None
            }
            None => None,
        };
        if status == TurnStatus::Timeout {
            client_errors.push(format!(
                "no response.done within {:?} of the end of the file",
                self.opts.tail_timeout
            ));
        }
        let audio_ms_received = t.audio.len() as u64 * 1000 / self.output_rate.max(1) as u64;
        let audio_file = match &self.opts.out_dir {
            Some(dir) if !t.audio.is_empty() => Some(AudioFile {
                path: dir.join(format!("{}.turn{id}.wav", s.stem)),
                samples: t.audio,
                rate: self.output_rate,
            }),
            _ => None,
        };
        let report = TurnReport {
            file: s.path.to_path_buf(),
            session_id: s.session_id.to_owned(),
            turn_id: id,
            final_transcript: t.final_transcript,
            ai_text,
            status,
            voice_to_voice_ms: s.answers.iter().find(|(t, _)| *t == id).map(|&(_, ms)| ms),
            latency,
            audio_ms_received,
            output_stall_ms: t.player.stall.as_millis() as u64,
            output_seq_gaps: t.seq_gaps,
            barge_in_ms,
            spoken_over,
            heard_text: t.heard_text,
            pauses: pause_reports(&s.marks.clips, &t.player.pauses),
            errors: t.errors,
            client_errors,
            audio_file: audio_file.as_ref().map(|f| f.path.clone()),
            resumes: self.resumes,
            speech_end_ms: t.speech_end_ms,
            end_of_turn: t.end_of_turn,
            response_started_ms: signed_ms_since(s.marks.clips.first(), t.responded_at),
            queued_eta_ms: t.queued_eta_ms,
        };
        (report, audio_file)
    }

    /// What the clip spoken over turn `id` did, given how the turn ended and its last AI
    /// frame: an interruption must cancel it (`Ok(Some(onset to last frame))`), a
    /// backchannel must not (`Ok(None)`); `Err` says what went wrong instead.
    fn barge_in_verdict(
        &self,
        marks: &Marks,
        id: u32,
        (status, last_audio_at): (TurnStatus, Option<Instant>),
    ) -> Result<Option<u64>, String> {
        let backchannel = self.opts.barge_in.as_ref().is_some_and(|b| b.backchannel);
        if backchannel {
            return match status {
                TurnStatus::Cancelled => Err(format!("the backchannel cancelled turn {id}")),
                _ => Ok(None),
            };
        }
        let onset = marks.clips.get(1).and_then(|c| c.onset_sent);
        match (status, onset, last_audio_at) {
            (TurnStatus::Cancelled, Some(onset), Some(last)) => Ok(Some(
                last.saturating_duration_since(onset).as_millis() as u64,
            )),
            _ => Err(format!(
                "the barge-in did not interrupt turn {id} (it ended {})",
                status_word(status)
            )),
        }
    }
}

/// The turn's pauses as reported, each resume gap measured from the end of speech of the
/// clip that was streaming when the pause came (the last whose onset went out before it).
fn pause_reports(clips: &[ClipMarks], pauses: &[Pause]) -> Vec<PauseReport> {
    pauses
        .iter()
        .map(|p| {
            let clip = clips
                .iter()
                .rev()
                .find(|c| c.onset_sent.is_some_and(|o| o <= p.at));
            PauseReport {
                audio_ms: p.audio_ms,
                outcome: p.outcome,
                held_ms: p
                    .ended_at
                    .map(|e| e.saturating_duration_since(p.at).as_millis() as u64),
                paused_ms: p.server_paused_ms,
                text: p.text.clone(),
                resume_gap_ms: signed_ms_since(clip, p.ended_at),
            }
        })
        .collect()
}

/// Writes the turns' audio off the async workers.
pub(super) async fn write_turn_audio(files: Vec<AudioFile>) -> Result<(), ClientError> {
    if files.is_empty() {
        return Ok(());
    }
    tokio::task::spawn_blocking(move || {
        files.iter().try_for_each(|f| {
            crate::audio::wav::write_i16(&f.path, &f.samples, f.rate)
                .map_err(|e| ClientError::file(&f.path, e))
        })
    })
    .await
    .map_err(|e| ClientError::file(Path::new("turn audio"), e))?
}

/// `at` relative to when the clip's end of speech was sent, in ms (negative before it).
fn signed_ms_since(clip: Option<&ClipMarks>, at: Option<Instant>) -> Option<i64> {
    let (eos, at) = (clip?.eos_sent?, at?);
    Some(match at.checked_duration_since(eos) {
        Some(after) => after.as_millis() as i64,
        None => -(eos.duration_since(at).as_millis() as i64),
    })
}

/// Which user turn answers each streamed clip, with its voice-to-voice in ms: for clip `k`,
/// the first turn (by id) whose first AI audio arrived after the clip's end of speech was
/// sent and, when another clip followed, before that clip's speech began. Earlier turns of
/// a clip are its pieces cut off at a pause, not answers to it.
fn voice_to_voice(clips: &[ClipMarks], first_audio: &[(u32, Option<Instant>)]) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    for (k, clip) in clips.iter().enumerate() {
        let Some(eos) = clip.eos_sent else { continue };
        let next_onset = clips.get(k + 1).and_then(|c| c.onset_sent);
        let answer = first_audio.iter().find_map(|&(id, first)| {
            let first = first?;
            let in_window = first >= eos && next_onset.is_none_or(|n| first < n);
            in_window.then(|| (id, first.duration_since(eos).as_millis() as u64))
        });
        out.extend(answer);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_clip_is_answered_by_the_first_turn_after_its_end_of_speech() {
        let t0 = Instant::now();
        let at = |ms| Some(t0 + Duration::from_millis(ms));
        let clips = [
            ClipMarks {
                onset_sent: at(0),
                eos_sent: at(1000),
            },
            ClipMarks {
                onset_sent: at(3000),
                eos_sent: at(4000),
            },
        ];
        // Turn 1 is a piece of the first answer cut at a pause (its audio came before the
        // end of speech), turn 2 answers it, turn 3 answers the barge-in.
        let first_audio = [(1, at(500)), (2, at(1800)), (3, at(4600)), (4, None)];
        assert_eq!(voice_to_voice(&clips, &first_audio), [(2, 800), (3, 600)]);
    }

    #[test]
    fn a_resume_gap_counts_from_the_end_of_the_clip_that_paused_the_response() {
        use crate::client::replay::PauseOutcome;
        let t0 = Instant::now();
        let at = |ms| Some(t0 + Duration::from_millis(ms));
        let clips = [
            ClipMarks {
                onset_sent: at(0),
                eos_sent: at(2000),
            },
            ClipMarks {
                onset_sent: at(5000),
                eos_sent: at(5600),
            },
        ];
        let pause = |from: u64, to: Option<u64>, outcome| Pause {
            at: t0 + Duration::from_millis(from),
            audio_ms: from,
            ended_at: to.and_then(at),
            outcome,
            server_paused_ms: to.map(|t| t - from),
            text: None,
        };
        let reports = pause_reports(
            &clips,
            &[
                pause(5250, Some(6050), PauseOutcome::Resumed),
                pause(7000, None, PauseOutcome::Open),
                pause(1000, Some(1500), PauseOutcome::Cancelled),
            ],
        );
        assert_eq!(reports[0].resume_gap_ms, Some(450));
        assert_eq!(reports[0].held_ms, Some(800));
        assert_eq!(reports[0].paused_ms, Some(800));
        assert_eq!((reports[1].resume_gap_ms, reports[1].held_ms), (None, None));
        // Ended while the first clip was still being spoken.
        assert_eq!(reports[2].resume_gap_ms, Some(-500));
    }

    #[test]
    fn response_start_is_signed_against_the_end_of_speech() {
        let t0 = Instant::now();
        let at = |ms| Some(t0 + Duration::from_millis(ms));
        let clip = ClipMarks {
            onset_sent: at(0),
            eos_sent: at(1000),
        };
        assert_eq!(signed_ms_since(Some(&clip), at(1250)), Some(250));
        assert_eq!(signed_ms_since(Some(&clip), at(400)), Some(-600));
        assert_eq!(signed_ms_since(Some(&clip), None), None);
        assert_eq!(signed_ms_since(None, at(400)), None);
    }

    #[test]
    fn a_timed_out_call_keeps_the_turns_the_server_ended() {
        use crate::client::replay::ReplayOptions;
        use crate::client::{Incoming, Received};
        let mut opts = ReplayOptions::new("ws://unused", Vec::new());
        opts.quiet = true;
        let mut run = FileRun::new(&opts);
        for json in [
            r#"{"type":"input.speech_started","turnId":1,"audioMs":300}"#,
            r#"{"type":"input.speech_stopped","turnId":1,"audioMs":1100,"endOfTurn":{"rule":"silence","silenceMs":500}}"#,
            r#"{"type":"input.speech_started","turnId":2,"audioMs":1400}"#,
            r#"{"type":"input.speech_stopped","turnId":2,"audioMs":3000,"endOfTurn":{"rule":"silence","silenceMs":500}}"#,
            r#"{"type":"input.speech_started","turnId":3,"audioMs":3500}"#,
        ] {
            let msg = crate::protocol::parse_server_message(json).expect("a server message");
            run.handle(Received {
                at: Instant::now(),
                msg: Incoming::Event(msg),
            });
        }
        let (reports, _) = run.finish(
            Path::new("a.wav"),
            "s",
            Outcome::TimedOut,
            Marks::default(),
            &[2, 3],
        );
        let seen: Vec<(u32, TurnStatus)> = reports.iter().map(|r| (r.turn_id, r.status)).collect();
        // Turn 1 was dropped when turn 2 began; turn 2 was ended and never answered; turn 3
        // never ended (speech the server still heard when the client gave up).
        assert_eq!(seen, [(1, TurnStatus::Cancelled), (2, TurnStatus::Timeout)]);
        assert_eq!(reports[1].speech_end_ms, Some(3000));
    }
}
