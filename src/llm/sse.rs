//! Server-sent events: an incremental, pure parser for `text/event-stream` bodies that
//! yields the `data` payload of each completed event. No I/O, so every fault is unit-tested.

use super::LlmError;

/// Longest line we buffer. A chat-completion chunk is a few hundred bytes; anything far
/// larger means a broken or hostile server, and buffering it would grow memory without bound.
const MAX_LINE_BYTES: usize = 1 << 20;

/// Incremental SSE parser: feed it body chunks split anywhere (inside a line, inside a
/// `\r\n`, inside a UTF-8 character) and it returns the `data` of every event completed.
///
/// Follows the WHATWG rules that matter for LLM streams: lines end with `\n`, `\r\n` or `\r`;
/// a blank line ends an event; `:` starts a comment; several `data` lines are joined with
/// `\n`; one space after the colon is dropped; other fields (`event`, `id`, `retry`) are
/// ignored; an event with no `data` line is not dispatched.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the current, unfinished line; kept as bytes because a chunk may end inside
    /// a multi-byte UTF-8 character.
    line: Vec<u8>,
    /// `data` lines of the current event, joined with `\n`.
    data: String,
    /// Whether the current event has had a `data` line (an empty `data:` still counts).
    has_data: bool,
    /// The previous chunk ended with `\r`, so a leading `\n` in the next one is the same
    /// line break, not an extra blank line.
    after_cr: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next body chunk; returns the `data` of each event it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<String>, LlmError> {
        let mut events = Vec::new();
        for &byte in chunk {
            if self.after_cr {
                self.after_cr = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\n' => self.end_line(&mut events)?,
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut events)?;
                }
                _ => {
                    if self.line.len() >= MAX_LINE_BYTES {
                        return Err(LlmError::Protocol(format!(
                            "event-stream line longer than {MAX_LINE_BYTES} bytes"
                        )));
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(events)
    }

    /// Ends the stream. Strictly, an unterminated last event should be discarded; we
    /// dispatch it instead, because some servers close right after the last `data:` line
    /// and losing the end of an answer is worse than the rare half-written event (which
    /// then fails JSON parsing loudly).
    pub fn finish(&mut self) -> Result<Option<String>, LlmError> {
        let mut events = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut events)?;
        }
        self.end_line(&mut events)?;
        Ok(events.pop())
    }

    fn end_line(&mut self, events: &mut Vec<String>) -> Result<(), LlmError> {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if self.has_data {
                self.has_data = false;
                events.push(std::mem::take(&mut self.data));
            }
            return Ok(());
        }
        let line = String::from_utf8(line)
            .map_err(|_| LlmError::Protocol("event-stream line is not UTF-8".into()))?;
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        if field == "data" {
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(value);
            self.has_data = true;
            if self.data.len() > MAX_LINE_BYTES {
                return Err(LlmError::Protocol(format!(
                    "event-stream event longer than {MAX_LINE_BYTES} bytes"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(chunks: &[&[u8]]) -> Vec<String> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(parser.push(chunk).expect("valid stream"));
        }
        out.extend(parser.finish().expect("valid stream"));
        out
    }

    #[test]
    fn parses_events_separated_by_blank_lines() {
        let body = b"data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n";
        assert_eq!(feed_all(&[body]), ["{\"a\":1}", "{\"a\":2}", "[DONE]"]);
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let body = "data: h\u{e9}llo\r\n\r\n: keep-alive\r\nevent: x\r\ndata: w\u{f6}rld\r\n\r\n"
            .as_bytes();
        let expected = ["h\u{e9}llo", "w\u{f6}rld"];
        for i in 0..=body.len() {
            for j in i..=body.len() {
                let got = feed_all(&[&body[..i], &body[i..j], &body[j..]]);
                assert_eq!(got, expected, "split at {i}/{j}");
            }
        }
    }

    #[test]
    fn byte_by_byte_feeding_works() {
        let body = b"data: one\n\ndata: two\n\n";
        let chunks: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(feed_all(&chunks), ["one", "two"]);
    }

    #[test]
    fn ignores_comments_other_fields_and_dataless_events() {
        let body = b": comment\nid: 7\nretry: 100\n\nevent: ping\n\ndata:x\n\n";
        assert_eq!(feed_all(&[body]), ["x"]);
    }

    #[test]
    fn joins_multiline_data_and_keeps_empty_data() {
        let body = b"data: a\ndata: b\n\ndata:\n\n";
        assert_eq!(feed_all(&[body]), ["a\nb", ""]);
    }

    #[test]
    fn bare_cr_ends_lines() {
        assert_eq!(feed_all(&[b"data: a\r\rdata: b\r\r"]), ["a", "b"]);
    }

    #[test]
    fn unterminated_last_event_is_dispatched_on_finish() {
        assert_eq!(feed_all(&[b"data: a\n\ndata: [DONE]"]), ["a", "[DONE]"]);
    }

    #[test]
    fn rejects_invalid_utf8_and_oversized_lines() {
        let mut parser = SseParser::new();
        assert!(matches!(
            parser.push(b"data: \xff\xfe\n"),
            Err(LlmError::Protocol(_))
        ));
        let mut parser = SseParser::new();
        let huge = vec![b'a'; MAX_LINE_BYTES + 1];
        assert!(matches!(parser.push(&huge), Err(LlmError::Protocol(_))));
    }
}
