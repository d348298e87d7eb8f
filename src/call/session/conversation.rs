//! What a protocol beyond callgate.v1 asks of a call's conversation: its behaviour changed
//! while it runs, responses on request (to a held commit or to the history as it stands),
//! and messages seeded into the history without an answer.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Session;
use crate::call::events::{CallConfig, SeedRole};
use crate::call::outbox::ClientGone;
use crate::call::turn::{Commit, UserInput};
use crate::eot::TurnPolicy;
use crate::llm::{ChatMessage, Persona};

/// Longest seeded message kept, in characters (as a typed turn).
pub const MAX_SEED_CHARS: usize = 4000;

/// Most messages one call may seed into its conversation: each stays in the history.
pub const MAX_SEEDS: u32 = 256;

/// Most characters of seeded system messages one call keeps: they join every prompt.
pub const MAX_SEEDED_SYSTEM_CHARS: usize = 16_000;

/// Whether one more seeded message of `role` and `chars` characters (cut to
/// [`MAX_SEED_CHARS`]) fits a conversation that holds `seeded` of them and
/// `system_chars` characters of system ones: the one rule a protocol refuses by and the
/// session keeps to.
pub fn seed_fits(seeded: u32, system_chars: usize, role: SeedRole, chars: usize) -> bool {
    let chars = chars.min(MAX_SEED_CHARS);
    seeded < MAX_SEEDS
        && (role != SeedRole::System || system_chars + chars <= MAX_SEEDED_SYSTEM_CHARS)
}

/// `persona` prompted as `config` and the seeded system messages say: `instructions`
/// replace its system prompt, the notes follow it. Unchanged (shared) when neither is set.
pub(super) fn prompted(
    persona: &Arc<Persona>,
    config: &CallConfig,
    notes: &[String],
) -> Arc<Persona> {
    prompted_with(persona, config.instructions.as_deref(), notes)
}

fn prompted_with(
    persona: &Arc<Persona>,
    instructions: Option<&str>,
    notes: &[String],
) -> Arc<Persona> {
    if instructions.is_none() && notes.is_empty() {
        return persona.clone();
    }
    let mut prompt = instructions.unwrap_or(&persona.system_prompt).to_owned();
    for note in notes {
        prompt.push_str("\n\n");
        prompt.push_str(note);
    }
    Arc::new(Persona {
        system_prompt: prompt,
        ..(**persona).clone()
    })
}

impl Session {
    /// Changes how the call behaves from now on: how turns end (`None`: as they do), the
    /// prompt, speech and commit handling.
    pub(super) fn configure(&mut self, turn: Option<TurnPolicy>, config: CallConfig) {
        let Some(s) = self.started.as_mut() else {
            return;
        };
        if let Some(policy) = turn.filter(|p| *p != s.policy) {
            tracing::debug!(?policy, "turn policy changed");
            s.policy = policy;
            s.detector = crate::eot::detector_for(policy);
            s.ingest.set_policy(policy);
            // A pause judged under the old policy is not judged under the new one.
            self.end_wait = None;
            self.clues = None;
        }
        if config.instructions != s.config.instructions {
            s.persona = prompted(&s.base_persona, &config, &s.system_notes);
        }
        s.config = config;
    }

    /// Whether a committed manual turn waits for [`Session::respond`] rather than being
    /// answered at once.
    pub(super) fn holds_commits(&self) -> bool {
        self.started
            .as_ref()
            .is_some_and(|s| !s.config.answer_commits)
    }

    /// Answers now: the held committed turn if there is one, else the conversation as it
    /// stands. A response in flight is the answer already: nothing more is started.
    pub(super) async fn respond(&mut self, instructions: Option<String>) -> Result<(), ClientGone> {
        if self.response.is_some() {
            return Ok(());
        }
        let held = self.held_turn.take();
        let ended = self.held_commit.take();
        self.answer_when_free = false;
        if held.is_some() && held == self.speculation.as_ref().map(|s| s.turn_id) {
            // Its request was built at the commit: per-response instructions cannot reach
            // a model already answering it.
            self.commit_speculation(Commit {
                decided_at: Instant::now(),
                endpoint_ms: ended.and_then(|c| c.endpoint_ms),
                end_of_turn: ended.and_then(|c| c.end_of_turn),
                answer: true,
            });
            return Ok(());
        }
        if self.speaking_turn.is_some() {
            // The candidate is speaking: their turn's end answers it.
            return Ok(());
        }
        self.drop_speculation();
        let turn_id = self.next_turn_id;
        self.next_turn_id += 1;
        self.next_prompt = instructions;
        self.spawn_turn(turn_id, UserInput::Nothing, false);
        Ok(())
    }

    /// A response finished: a turn spoken over it without interrupting it is answered now,
    /// once the finished response's `response.done` is out (`done_sent`), so that the
    /// client hears of one response ending before the next begins.
    pub async fn answer_when_free(
        &mut self,
        done_sent: Option<oneshot::Receiver<()>>,
    ) -> Result<(), ClientGone> {
        if !self.answer_when_free || self.response.is_some() {
            return Ok(());
        }
        if let Some(done_sent) = done_sent {
            // Err: the turn task is gone, and its response.done with it.
            let _ = done_sent.await;
        }
        tracing::debug!(turn_id = ?self.held_turn, "answering the turn spoken over the response");
        self.respond(None).await
    }

    /// Whether a turn the server ended is held rather than answered now: the client asks
    /// for answers itself, or a response it was not to interrupt is still going.
    pub(super) fn holds_turn_end(&self) -> bool {
        self.started.as_ref().is_some_and(|s| {
            !s.config.answer_turns || (self.response.is_some() && !s.config.interruptible)
        })
    }

    /// The persona the next turn is prompted with: one response's instructions, once.
    pub(super) fn take_turn_persona(&mut self) -> Option<Arc<Persona>> {
        let instructions = self.next_prompt.take()?;
        let s = self.started.as_ref()?;
        Some(prompted_with(
            &s.base_persona,
            Some(&instructions),
            &s.system_notes,
        ))
    }

    /// Adds a message to the conversation without answering it. System messages join the
    /// prompt (the model's history holds only the candidate and the interviewer). Beyond
    /// [`seed_fits`] nothing is added: a protocol refuses such a message before it gets here.
    pub(super) fn seed(&mut self, role: SeedRole, text: String) {
        let Some(s) = self.started.as_mut() else {
            return;
        };
        let system_chars = s.system_notes.iter().map(|n| n.chars().count()).sum();
        if !seed_fits(s.seeded, system_chars, role, text.chars().count()) {
            tracing::debug!(
                seeded = s.seeded,
                "seeded message over the conversation's bound"
            );
            return;
        }
        s.seeded += 1;
        let text: String = text.chars().take(MAX_SEED_CHARS).collect();
        match role {
            SeedRole::User => self.history.push(ChatMessage::user(text)),
            SeedRole::Assistant => self.history.push(ChatMessage::assistant(text)),
            SeedRole::System => {
                s.system_notes.push(text);
                s.persona = prompted(&s.base_persona, &s.config, &s.system_notes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_fit_up_to_their_count_and_the_system_characters() {
        assert!(seed_fits(0, 0, SeedRole::User, 10));
        assert!(!seed_fits(MAX_SEEDS, 0, SeedRole::User, 10));
        let nearly = MAX_SEEDED_SYSTEM_CHARS - 100;
        assert!(seed_fits(1, nearly, SeedRole::System, 100));
        assert!(!seed_fits(1, nearly, SeedRole::System, 101));
        // Only system messages ride on the prompt; a long one counts as cut.
        assert!(seed_fits(
            1,
            MAX_SEEDED_SYSTEM_CHARS,
            SeedRole::Assistant,
            100
        ));
        assert!(seed_fits(1, 0, SeedRole::System, 10 * MAX_SEED_CHARS));
    }
}
