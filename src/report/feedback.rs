//! The interviewer model's feedback on each answer of an ended call (`--llm openai`): one
//! request per answer for two strengths and one improvement, given the question, the answer
//! and the persona's rubric. It runs after `session.ended`, so it never delays the call;
//! it lands in `calls/<id>/feedback.json`, and the report is written again with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::llm::{ChatMessage, ChatModel, ChatRequest, LlmEvent, Persona};

/// The file in the call's folder.
pub const FEEDBACK_FILE: &str = "feedback.json";
/// How long one answer's feedback may take before it is given up.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest feedback kept for one answer, in characters.
const MAX_CHARS: usize = 1500;

/// What the report shows while the feedback is being written.
pub const PENDING: &str = "pending";

/// The feedback on one answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct AnswerFeedback {
    /// The answer's user turn.
    pub turn_id: u32,
    /// The model's two strengths and one improvement, as it wrote them.
    pub text: Option<String>,
    /// Why there is none for this answer (the model failed or took too long).
    pub error: Option<String>,
}

/// `feedback.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackFile {
    /// The model that wrote it (the engine's name).
    pub model: String,
    /// One entry per answer, in order.
    pub answers: Vec<AnswerFeedback>,
}

/// One answer to ask about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// The answer's user turn.
    pub turn_id: u32,
    /// What the interviewer had said before it.
    pub question: String,
    /// What the candidate said.
    pub answer: String,
}

/// The answers of a call's turns, each with the interviewer's words before it; turns with
/// nothing said are not answers.
pub fn answers_of(turns: &[crate::protocol::TurnRecord]) -> Vec<Asked> {
    turns
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.user_text.trim().is_empty())
        .map(|(i, t)| Asked {
            turn_id: t.turn_id,
            question: i
                .checked_sub(1)
                .map(|prev| turns[prev].ai_text.clone())
                .unwrap_or_default(),
            answer: t.user_text.clone(),
        })
        .collect()
}

/// The system prompt of a feedback request: a coach's brief, and the persona's rubric.
fn coach_prompt(persona: &Persona) -> String {
    let mut prompt = format!(
        "You are an interview coach reviewing one answer from a mock {} ({}). \
         Reply in plain text with exactly three lines: \"Strength: ...\", \"Strength: ...\" \
         and \"Improvement: ...\", each one short sentence about this answer.",
        persona.name, persona.description
    );
    if let Some(rubric) = persona.rubric.as_deref().filter(|r| !r.trim().is_empty()) {
        prompt.push_str(" Judge it against this rubric: ");
        prompt.push_str(rubric.trim());
    }
    prompt
}

/// Asks `llm` about one answer.
async fn ask(
    llm: &dyn ChatModel,
    persona: &Arc<Persona>,
    context: &BTreeMap<String, String>,
    asked: &Asked,
) -> Result<String, String> {
    let coach = Arc::new(Persona {
        system_prompt: coach_prompt(persona),
        ..(**persona).clone()
    });
    let request = ChatRequest {
        persona: coach,
        context: context.clone(),
        history: vec![ChatMessage::user(format!(
            "Question: {}\nAnswer: {}",
            asked.question.trim(),
            asked.answer.trim()
        ))],
    };
    let mut stream = llm.stream(request);
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        if let LlmEvent::Text(delta) = event.map_err(|e| e.to_string())? {
            text.push_str(&delta);
        }
        if text.len() > MAX_CHARS * 2 {
            break;
        }
    }
    let text: String = text.trim().chars().take(MAX_CHARS).collect();
    if text.is_empty() {
        return Err("the model said nothing".into());
    }
    Ok(text)
}

/// Asks about every answer in turn, then writes `feedback.json` into `dir` and the report
/// again (blocking I/O on a blocking thread).
pub async fn run(
    llm: Arc<dyn ChatModel>,
    persona: Arc<Persona>,
    context: BTreeMap<String, String>,
    answers: Vec<Asked>,
    dir: PathBuf,
) {
    let mut out = Vec::with_capacity(answers.len());
    for asked in &answers {
        let reply =
            tokio::time::timeout(ANSWER_TIMEOUT, ask(llm.as_ref(), &persona, &context, asked))
                .await
                .unwrap_or_else(|_| Err(format!("no reply within {} s", ANSWER_TIMEOUT.as_secs())));
        if let Err(e) = &reply {
            tracing::warn!(turn_id = asked.turn_id, error = %e, "no feedback for this answer");
        }
        let (text, error) = match reply {
            Ok(t) => (Some(t), None),
            Err(e) => (None, Some(e)),
        };
        out.push(AnswerFeedback {
            turn_id: asked.turn_id,
            text,
            error,
        });
    }
    let file = FeedbackFile {
        model: llm.name().to_owned(),
        answers: out,
    };
    let written = tokio::task::spawn_blocking(move || write(&dir, &file)).await;
    match written {
        Ok(Ok(())) => tracing::info!(answers = answers.len(), "answer feedback written"),
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot write the answer feedback"),
        Err(e) => tracing::warn!(error = %e, "writing the answer feedback failed"),
    }
}

fn write(dir: &Path, file: &FeedbackFile) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(file).map_err(std::io::Error::other)?;
    super::write_whole(&dir.join(FEEDBACK_FILE), &json)?;
    super::write_files(dir).map(|_| ())
}

/// `feedback.json` of the call in `dir`, if written.
pub fn read(dir: &Path) -> Option<FeedbackFile> {
    let bytes = std::fs::read(dir.join(FEEDBACK_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TurnRecord;

    fn turn(turn_id: u32, user: &str, ai: &str) -> TurnRecord {
        TurnRecord {
            turn_id,
            user_text: user.into(),
            ai_text: ai.into(),
        }
    }

    #[test]
    fn each_answer_is_asked_about_with_the_words_before_it() {
        let turns = [
            turn(0, "", "Tell me about yourself."),
            turn(1, "I build payment systems.", "What was hard?"),
            turn(2, "  ", "Take your time."),
            turn(3, "Keeping two systems in step.", "Thanks."),
        ];
        let asked = answers_of(&turns);
        assert_eq!(asked.len(), 2);
        assert_eq!(asked[0].question, "Tell me about yourself.");
        assert_eq!(asked[0].answer, "I build payment systems.");
        assert_eq!(
            (asked[1].turn_id, asked[1].question.as_str()),
            (3, "Take your time.")
        );
    }

    #[test]
    fn the_rubric_is_in_the_coach_prompt() {
        let mut persona = crate::llm::PersonaSet::builtin()
            .get("behavioral")
            .expect("built-in")
            .as_ref()
            .clone();
        assert!(
            coach_prompt(&persona).contains("rubric: A strong answer tells one real situation"),
            "the built-in persona's rubric"
        );
        persona.rubric = None;
        assert!(!coach_prompt(&persona).contains("rubric"));
        persona.rubric = Some("Uses the STAR structure.".into());
        assert!(coach_prompt(&persona).ends_with("rubric: Uses the STAR structure."));
    }
}
