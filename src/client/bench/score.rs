//! How the bench judges one answer, from what replay reported of its turns: cut off (the
//! interviewer took a turn inside the answer), truncated (the transcript lost its last
//! words), ended early (the server put the end of speech before the last word), and which
//! rule ended each turn. Pure, so each verdict is checked on known inputs.

use crate::asr::normalize_words;
use crate::client::replay::TurnReport;

/// Trailing reference words that must be missing from the transcript for an answer to
/// count as truncated (or all of a shorter answer): one lost word is as often whisper
/// dropping a soft "it" as audio that never reached it.
pub const TRUNCATED_WORDS: usize = 2;

/// How far before the answer's own end of speech the server's may lie and still count as
/// the same end: a soft final consonant under the VAD's threshold is not an early end.
pub const EARLY_END_TOLERANCE_MS: u64 = 150;

/// The label of a turn whose `input.speech_stopped` carried no `endOfTurn` (a server that
/// does not report its rule).
pub const UNREPORTED_RULE: &str = "unreported";

/// Reference words at the end of the answer that the transcript does not have: the run of
/// deletions that ends the word alignment, on the alignment (of the fewest edits) that
/// ends with the shortest such run. Words are compared after [`normalize_words`].
pub fn missing_tail_words(reference: &str, transcript: &str) -> usize {
    let r = normalize_words(reference);
    let h = normalize_words(transcript);
    // d[i][j]: edits between the first i reference words and the first j transcript words.
    let mut d = vec![vec![0usize; h.len() + 1]; r.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=r.len() {
        for j in 1..=h.len() {
            let substitute = d[i - 1][j - 1] + usize::from(r[i - 1] != h[j - 1]);
            d[i][j] = substitute.min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
        }
    }
    let (n, m) = (r.len(), h.len());
    if m == 0 {
        return n;
    }
    // The fewest k such that an optimal alignment deletes the last k words after having
    // reached (n - k, m) by a match, substitution or insertion.
    (0..n)
        .find(|&k| {
            let i = n - k;
            let on_an_optimal_path = d[i][m] + k == d[n][m];
            let reached_otherwise = d[i][m] == d[i - 1][m - 1] + usize::from(r[i - 1] != h[m - 1])
                || d[i][m] == d[i][m - 1] + 1;
            on_an_optimal_path && reached_otherwise
        })
        .unwrap_or(n)
}

/// Whether an answer of `reference_words` words lost its ending: `missing` trailing words
/// of [`missing_tail_words`] reach [`TRUNCATED_WORDS`], or the whole of a shorter answer.
pub fn is_truncated(reference_words: usize, missing: usize) -> bool {
    reference_words > 0 && missing >= TRUNCATED_WORDS.min(reference_words)
}

/// Whether the answer was cut off: its speech became more user turns than were spoken
/// (`spoken`: 1, or 2 with a barge-in), or a response started before its last word was
/// sent.
pub fn is_cut_off(turns: &[TurnReport], spoken: usize) -> bool {
    let user_turns = turns.iter().filter(|t| t.turn_id > 0).count();
    user_turns > spoken
        || turns
            .iter()
            .any(|t| t.response_started_ms.is_some_and(|ms| ms < 0))
}

/// Whether the server ended the answer before its last word: the latest end of speech it
/// announced (`input.speech_stopped.audioMs`) lies more than [`EARLY_END_TOLERANCE_MS`]
/// before the answer's own, `speech_end_ms` into the file. No announced end is not early.
pub fn ended_early(turns: &[TurnReport], speech_end_ms: u64) -> bool {
    turns
        .iter()
        .filter_map(|t| t.speech_end_ms)
        .max()
        .is_some_and(|end| end + EARLY_END_TOLERANCE_MS < speech_end_ms)
}

/// The rule that ended a turn (`endOfTurn.rule`), [`UNREPORTED_RULE`] when the server
/// announced the end without one, `None` for a turn whose end was never announced.
pub fn end_rule(t: &TurnReport) -> Option<String> {
    t.speech_end_ms?;
    let rule = t
        .end_of_turn
        .as_ref()
        .and_then(|e| e.get("rule"))
        .and_then(|r| r.as_str());
    Some(rule.unwrap_or(UNREPORTED_RULE).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::replay::TurnStatus;

    #[test]
    fn missing_tail_counts_only_the_lost_ending() {
        let r = "I fixed it by adding a cache in front of the user service.";
        assert_eq!(missing_tail_words(r, r), 0);
        // Errors inside the answer are not a lost ending.
        assert_eq!(
            missing_tail_words(r, "I fix it by adding cash in front of the user service"),
            0
        );
        assert_eq!(
            missing_tail_words(r, "I fixed it by adding a cache in front of the"),
            2
        );
        assert_eq!(missing_tail_words(r, "I fixed it by adding a"), 7);
        // A wrong last word is a substitution, not a missing one.
        assert_eq!(
            missing_tail_words(
                r,
                "I fixed it by adding a cache in front of the user servers"
            ),
            0
        );
        // A hallucinated ending ("thank you") replaces words rather than losing them.
        assert_eq!(
            missing_tail_words("Yes, I can.", "Yes, I can. Thank you."),
            0
        );
        assert_eq!(missing_tail_words("Yes, I can.", ""), 3);
        assert_eq!(missing_tail_words("Yes, I can.", "Yes."), 2);
        assert_eq!(missing_tail_words("", "anything"), 0);
        // Repeated words: the alignment that keeps the ending wins.
        assert_eq!(missing_tail_words("the the the", "the the the"), 0);
        // A repeated phrase cannot tell a lost ending from a lost beginning: no ending lost.
        assert_eq!(missing_tail_words("a b a b", "a b"), 0);
    }

    #[test]
    fn truncation_needs_two_words_or_all_of_a_short_answer() {
        assert!(!is_truncated(12, 0));
        assert!(!is_truncated(12, 1));
        assert!(is_truncated(12, 2));
        assert!(is_truncated(1, 1), "\"Yes.\" lost entirely");
        assert!(!is_truncated(3, 1));
        assert!(!is_truncated(0, 0));
    }

    fn turn(id: u32, speech_end_ms: Option<u64>, response_started_ms: Option<i64>) -> TurnReport {
        TurnReport {
            speech_end_ms,
            response_started_ms,
            ..TurnReport::blank(
                std::path::Path::new("a.wav"),
                "s",
                id,
                TurnStatus::Completed,
            )
        }
    }

    #[test]
    fn cut_off_by_a_second_turn_or_an_early_response() {
        assert!(!is_cut_off(&[turn(1, Some(3000), Some(400))], 1));
        // A thinking pause taken for the end: two turns for one answer.
        let split = [
            turn(1, Some(1500), Some(-1200)),
            turn(2, Some(3000), Some(500)),
        ];
        assert!(is_cut_off(&split, 1));
        // One turn, but the AI started talking before the last word was out.
        assert!(is_cut_off(&[turn(1, Some(3000), Some(-80))], 1));
        // With a barge-in, two turns were spoken.
        let barged = [
            turn(1, Some(3000), Some(300)),
            turn(2, Some(6000), Some(3500)),
        ];
        assert!(!is_cut_off(&barged, 2));
        // A call that never opened (turn 0) is not a cut-off.
        assert!(!is_cut_off(&[turn(0, None, None)], 1));
    }

    #[test]
    fn early_end_is_the_servers_end_before_the_last_word() {
        let end = 4000;
        assert!(!ended_early(&[turn(1, Some(4020), None)], end));
        assert!(!ended_early(
            &[turn(1, Some(end - EARLY_END_TOLERANCE_MS), None)],
            end
        ));
        assert!(ended_early(&[turn(1, Some(3500), None)], end));
        // The answer's last turn counts: a split whose second turn reaches the end is a
        // cut-off, not an early end.
        assert!(!ended_early(
            &[turn(1, Some(2000), None), turn(2, Some(4010), None)],
            end
        ));
        assert!(!ended_early(&[turn(1, None, None)], end));
    }

    #[test]
    fn end_rules_read_leniently() {
        let mut t = turn(1, Some(3000), None);
        assert_eq!(end_rule(&t).as_deref(), Some(UNREPORTED_RULE));
        t.end_of_turn = Some(serde_json::json!({"rule": "complete", "silenceMs": 260}));
        assert_eq!(end_rule(&t).as_deref(), Some("complete"));
        t.end_of_turn = Some(serde_json::json!({"silenceMs": 260}));
        assert_eq!(end_rule(&t).as_deref(), Some(UNREPORTED_RULE));
        assert_eq!(end_rule(&turn(1, None, None)), None);
    }
}
