//! The candidate's silence after the interviewer has finished speaking (Realtime's
//! `idle_timeout_ms`), counted on the input audio's own clock: from where the response's
//! audio ends in the client's playback to the latest input, so the rule needs no wall
//! clock and a client that streams faster than real time is timed by its audio.

/// Where the floor fell free, in the input, and nobody has spoken since.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IdleWatch {
    since_ms: Option<u64>,
}

impl IdleWatch {
    /// The interviewer's audio ends at `at_ms` of the input (its `response.done`, plus what
    /// the client still had to play): the silence counts from there.
    pub fn floor_free(&mut self, at_ms: u64) {
        self.since_ms = Some(at_ms);
    }

    /// Someone took the floor (speech, a response): nothing counts until it is free again.
    pub fn floor_taken(&mut self) {
        self.since_ms = None;
    }

    /// At input position `now_ms`, with `timeout_ms` set: the silent span `(start, end)`
    /// once it has lasted that long, once (the floor is then taken by the answer).
    pub fn due(&mut self, now_ms: u64, timeout_ms: Option<u64>) -> Option<(u64, u64)> {
        let (since, timeout) = (self.since_ms?, timeout_ms?);
        if now_ms < since.saturating_add(timeout) {
            return None;
        }
        self.since_ms = None;
        Some((since, now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_counts_from_the_end_of_the_interviewers_audio_once() {
        let mut w = IdleWatch::default();
        // Nothing counts before the interviewer has spoken, or with no timeout.
        assert_eq!(w.due(60_000, Some(5000)), None);
        w.floor_free(10_000);
        assert_eq!(w.due(60_000, None), None);
        assert_eq!(w.due(14_999, Some(5000)), None);
        assert_eq!(w.due(15_020, Some(5000)), Some((10_000, 15_020)));
        // Once: the answer to the silence takes the floor.
        assert_eq!(w.due(30_000, Some(5000)), None);
    }

    #[test]
    fn speech_stops_the_count_until_the_next_response_ends() {
        let mut w = IdleWatch::default();
        w.floor_free(1000);
        w.floor_taken();
        assert_eq!(w.due(20_000, Some(2000)), None);
        w.floor_free(21_000);
        assert_eq!(w.due(22_999, Some(2000)), None);
        assert_eq!(w.due(23_000, Some(2000)), Some((21_000, 23_000)));
    }
}
