//! End of turn: when a candidate has finished answering. The policy a call chose, the
//! detector that judges a pause from what was said (and, when a model is loaded, how it
//! sounded), and the verdict that says how much silence ends the turn.

pub mod acoustic;
pub mod backchannel;
pub mod mel;
pub mod smart_turn;
pub mod text;

use crate::protocol::{EndRule, TurnDetection, TurnMode};

/// How a call's turns end, from its `turnDetection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnPolicy {
    /// Judge each pause; end after `min_silence_ms` when finished, never after more than
    /// `max_silence_ms`.
    Smart {
        /// Silence that ends a turn judged complete.
        min_silence_ms: u32,
        /// Silence that ends any turn.
        max_silence_ms: u32,
    },
    /// A fixed silence ends every turn.
    Fixed {
        /// The silence, ms.
        silence_ms: u32,
    },
    /// The client commits.
    Manual,
}

impl TurnPolicy {
    /// The policy a validated `turnDetection` asks for.
    pub fn from_wire(td: &TurnDetection) -> Self {
        match td.mode {
            TurnMode::Smart => {
                let (min_silence_ms, max_silence_ms) = td.smart_silences_ms();
                Self::Smart {
                    min_silence_ms,
                    max_silence_ms,
                }
            }
            TurnMode::ServerVad => Self::Fixed {
                silence_ms: td.silence_ms_or_default(),
            },
            TurnMode::Manual => Self::Manual,
        }
    }

    /// Whether the server's VAD ends turns (smart or fixed), as opposed to the client.
    pub fn server_ends_turns(&self) -> bool {
        !matches!(self, Self::Manual)
    }

    /// The silence after which the VAD itself ends a turn: the hard stop.
    pub fn vad_silence_ms(&self) -> u32 {
        match *self {
            Self::Smart { max_silence_ms, .. } => max_silence_ms,
            Self::Fixed { silence_ms } => silence_ms,
            Self::Manual => crate::protocol::DEFAULT_SILENCE_MS,
        }
    }

    /// The rule named when the VAD's hard stop ends a turn.
    pub fn vad_rule(&self) -> EndRule {
        match self {
            Self::Smart { .. } => EndRule::MaxSilence,
            _ => EndRule::Silence,
        }
    }
}

/// What is known about a pause when it is judged.
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence<'a> {
    /// The whole answer so far, as decoded at the start of the pause.
    pub transcript: &'a str,
    /// The interviewer's last question (its last sentence), if any.
    pub question: Option<&'a str>,
    /// Probability the turn is complete from an acoustic model, when one ran.
    pub acoustic: Option<f32>,
}

/// A detector's judgement of one pause.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The rule that will end the turn if the silence lasts `wait_ms`.
    pub rule: EndRule,
    /// Silence that ends the turn, ms.
    pub wait_ms: u64,
    /// How likely the answer is finished (0-1); `None` for a fixed rule.
    pub score: Option<f32>,
}

/// Decides how much silence ends a turn, given what was said. Pure and cheap: it runs on
/// the call's task.
pub trait EndOfTurnDetector: Send + Sync {
    /// The verdict for a pause.
    fn judge(&self, evidence: &Evidence<'_>) -> Verdict;
}

/// The fixed-silence rule (`server_vad`).
#[derive(Debug, Clone, Copy)]
pub struct FixedSilence {
    /// Silence that ends every turn, ms.
    pub silence_ms: u32,
}

impl EndOfTurnDetector for FixedSilence {
    fn judge(&self, _: &Evidence<'_>) -> Verdict {
        Verdict {
            rule: EndRule::Silence,
            wait_ms: u64::from(self.silence_ms),
            score: None,
        }
    }
}

/// Score at or above which an answer counts as finished.
pub const COMPLETE_SCORE: f32 = 0.7;
/// Score at or below which an answer counts as plainly unfinished.
pub const UNFINISHED_SCORE: f32 = 0.3;
/// Text scores this far from the middle decide alone: an acoustic model cannot overturn
/// "responsible for" or "Yes."
const DECISIVE_TEXT: f32 = 0.4;

/// Smart end of turn: the words (and the sound, when an acoustic score is given) set the
/// silence between `min_silence_ms` and `max_silence_ms`.
#[derive(Debug, Clone, Copy)]
pub struct SmartEnd {
    /// Silence that ends a turn judged complete.
    pub min_silence_ms: u32,
    /// Silence that ends any turn.
    pub max_silence_ms: u32,
}

impl SmartEnd {
    /// Whether the words alone leave the verdict open, so the sound is worth waiting for.
    pub fn words_leave_it_open(transcript: &str, question: Option<&str>) -> bool {
        (text::completeness(transcript, question) - 0.5).abs() < DECISIVE_TEXT
    }

    /// The fused probability that the answer is finished.
    pub fn score(evidence: &Evidence<'_>) -> f32 {
        let words = text::completeness(evidence.transcript, evidence.question);
        match evidence.acoustic {
            Some(a) if (words - 0.5).abs() < DECISIVE_TEXT => 0.5 * words + 0.5 * a,
            _ => words,
        }
    }
}

impl EndOfTurnDetector for SmartEnd {
    fn judge(&self, evidence: &Evidence<'_>) -> Verdict {
        let score = Self::score(evidence);
        let (min, max) = (
            u64::from(self.min_silence_ms),
            u64::from(self.max_silence_ms),
        );
        // Linear between the two thresholds: a surer answer ends sooner.
        let doubt =
            ((COMPLETE_SCORE - score) / (COMPLETE_SCORE - UNFINISHED_SCORE)).clamp(0.0, 1.0);
        let wait_ms = min + ((max - min) as f32 * doubt).round() as u64;
        let rule = if score >= COMPLETE_SCORE {
            EndRule::Complete
        } else if score <= UNFINISHED_SCORE {
            EndRule::MaxSilence
        } else {
            EndRule::Unsure
        };
        Verdict {
            rule,
            wait_ms,
            score: Some(score),
        }
    }
}

/// The detector for a server-ended policy; `None` for manual turns.
pub fn detector_for(policy: TurnPolicy) -> Option<Box<dyn EndOfTurnDetector>> {
    match policy {
        TurnPolicy::Smart {
            min_silence_ms,
            max_silence_ms,
        } => Some(Box::new(SmartEnd {
            min_silence_ms,
            max_silence_ms,
        })),
        TurnPolicy::Fixed { silence_ms } => Some(Box::new(FixedSilence { silence_ms })),
        TurnPolicy::Manual => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(text: &str, acoustic: Option<f32>) -> Verdict {
        let smart = SmartEnd {
            min_silence_ms: 250,
            max_silence_ms: 2500,
        };
        smart.judge(&Evidence {
            transcript: text,
            question: Some("What did you work on at your last job?"),
            acoustic,
        })
    }

    #[test]
    fn a_finished_sentence_ends_at_the_shortest_silence() {
        let v = judge(
            "I built the billing service in Rust and ran it for two years.",
            None,
        );
        assert_eq!((v.rule, v.wait_ms), (EndRule::Complete, 250));
    }

    #[test]
    fn a_dangling_clause_waits_the_longest_even_if_it_sounds_finished() {
        let v = judge("At my last job I was responsible for.", Some(0.95));
        assert_eq!((v.rule, v.wait_ms), (EndRule::MaxSilence, 2500));
    }

    #[test]
    fn an_unsure_text_lets_the_sound_decide_between_the_bounds() {
        let ending_comma = judge("I moved to the platform team,", None);
        assert!(ending_comma.wait_ms > 1000, "{ending_comma:?}");
        let finished_sound = judge("I built the billing service", Some(1.0));
        let unfinished_sound = judge("I built the billing service", Some(0.0));
        assert!(finished_sound.wait_ms < unfinished_sound.wait_ms);
        assert!(finished_sound.wait_ms >= 250 && unfinished_sound.wait_ms <= 2500);
    }

    #[test]
    fn fixed_silence_ignores_the_words() {
        let v = FixedSilence { silence_ms: 500 }.judge(&Evidence::default());
        assert_eq!((v.rule, v.wait_ms, v.score), (EndRule::Silence, 500, None));
    }

    #[test]
    fn policies_come_from_the_wire() {
        let td = TurnDetection::default();
        assert_eq!(
            TurnPolicy::from_wire(&td),
            TurnPolicy::Smart {
                min_silence_ms: 250,
                max_silence_ms: 2500
            }
        );
        let fixed = TurnDetection {
            mode: TurnMode::ServerVad,
            ..TurnDetection::default()
        };
        assert_eq!(TurnPolicy::from_wire(&fixed).vad_silence_ms(), 500);
    }
}
