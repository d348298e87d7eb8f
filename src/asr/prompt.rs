//! The whisper prompt of an interview decode: the server's prompt, the role, the persona's
//! vocabulary, the question just asked and the answer so far, newest last.

/// Longest whisper prompt kept, in characters: whisper keeps about 220 tokens of it, and
/// the newest words (the end) matter most.
pub const MAX_PROMPT_CHARS: usize = 600;
/// Longest question kept in the prompt, in characters.
pub const MAX_QUESTION_CHARS: usize = 240;

/// What one decode's prompt is made of.
#[derive(Debug, Default, Clone, Copy)]
pub struct InterviewPrompt<'a> {
    /// The server's prompt (`--asr-prompt`).
    pub base: Option<&'a str>,
    /// The role, from the call's context.
    pub role: Option<&'a str>,
    /// The persona's vocabulary.
    pub vocabulary: &'a [String],
    /// The interviewer's last question.
    pub question: Option<&'a str>,
    /// The answer's text already transcribed (earlier pieces of a long answer).
    pub so_far: &'a str,
    /// Ask whisper to write the candidate's fillers: it drops "um" and "uh" unless its
    /// prompt shows them (it copies the prompt's style).
    pub keep_fillers: bool,
}

/// Prompt text in the style of speech with its fillers written out.
pub const FILLER_STYLE: &str = "Um, so, uh, I think, like, we, uh, hmm, shipped it.";

impl InterviewPrompt<'_> {
    /// The prompt, cut to [`MAX_PROMPT_CHARS`] from its end; `None` when empty.
    pub fn text(&self) -> Option<String> {
        let mut parts: Vec<String> = self.base.map(str::to_owned).into_iter().collect();
        if let Some(role) = self.role {
            parts.push(format!("The role is {role}."));
        }
        if self.keep_fillers {
            parts.push(FILLER_STYLE.to_owned());
        }
        if !self.vocabulary.is_empty() {
            parts.push(format!("{}.", self.vocabulary.join(", ")));
        }
        if let Some(q) = self.question {
            parts.push(q.chars().take(MAX_QUESTION_CHARS).collect());
        }
        if !self.so_far.is_empty() {
            parts.push(self.so_far.to_owned());
        }
        let prompt = parts.join(" ");
        let skip = prompt.chars().count().saturating_sub(MAX_PROMPT_CHARS);
        Some(prompt.chars().skip(skip).collect()).filter(|p: &String| !p.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_come_in_order_and_the_newest_words_are_kept() {
        let vocabulary = vec!["Kafka".to_owned(), "Postgres".to_owned()];
        let prompt = InterviewPrompt {
            base: Some("An interview."),
            role: Some("backend engineer"),
            vocabulary: &vocabulary,
            question: Some("Which database did you use?"),
            so_far: "We used",
            keep_fillers: false,
        };
        assert_eq!(
            prompt.text().as_deref(),
            Some(
                "An interview. The role is backend engineer. Kafka, Postgres. \
                 Which database did you use? We used"
            )
        );
        let long = "word ".repeat(200);
        let cut = InterviewPrompt {
            so_far: &long,
            ..prompt
        }
        .text()
        .unwrap_or_default();
        assert_eq!(cut.chars().count(), MAX_PROMPT_CHARS);
        assert!(cut.ends_with("word "), "{cut:?}");
    }

    #[test]
    fn the_filler_style_follows_the_servers_prompt() {
        let prompt = InterviewPrompt {
            base: Some("An interview."),
            keep_fillers: true,
            ..InterviewPrompt::default()
        };
        assert_eq!(prompt.text(), Some(format!("An interview. {FILLER_STYLE}")));
    }

    #[test]
    fn nothing_to_say_is_no_prompt() {
        assert_eq!(InterviewPrompt::default().text(), None);
    }
}
