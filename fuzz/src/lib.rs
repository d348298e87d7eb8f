//! Properties of callgate's decoders for untrusted input, written once and driven twice:
//! by the cargo-fuzz targets in `fuzz_targets/` (coverage-guided, minutes to hours) and by
//! `tests/props.rs` (proptest, a few seconds in CI), which includes this file by path.
//!
//! Every check panics when a property fails, which is what both drivers report. Each one
//! also stands for "never panics": a decoder that panics on its input fails the check too.

use callgate::llm::sse::SseParser;
use callgate::protocol::{
    self, ClientMessage, FrameError, InputChunk, MAX_FRAME_BYTES, MAX_SAMPLES_PER_FRAME,
    OutputChunk,
};

/// A client's binary frame: whatever `decode_input_frame` accepts re-encodes to the very
/// same bytes. The codec is strict (reserved, flags and turn must be 0, no odd byte), so
/// each chunk has exactly one accepted encoding; a second one would be a loophole.
pub fn input_frame(bytes: &[u8]) {
    match protocol::decode_input_frame(bytes) {
        Ok(chunk) => {
            assert!(!chunk.samples.is_empty(), "accepted an empty input chunk");
            assert_eq!(
                protocol::encode_input_frame(chunk.seq, &chunk.samples),
                bytes
            );
        }
        Err(err) => frame_error_is_about(&err, bytes),
    }
}

/// A server's binary frame, as a client decodes it: same strictness, same round trip.
pub fn output_frame(bytes: &[u8]) {
    match protocol::decode_output_frame(bytes) {
        Ok(c) => assert_eq!(
            protocol::encode_output_frame(c.seq, c.turn, c.first, c.last, &c.samples),
            bytes
        ),
        Err(err) => frame_error_is_about(&err, bytes),
    }
}

/// The length errors report the length of the frame they were given, and the limit is the
/// one announced in `session.started`; a wrong length in `BAD_AUDIO` misleads client authors.
fn frame_error_is_about(err: &FrameError, bytes: &[u8]) {
    match *err {
        FrameError::TooLong { len } => {
            assert_eq!(len, bytes.len());
            assert!(len > MAX_FRAME_BYTES);
        }
        FrameError::TooShort { len } => assert_eq!(len, bytes.len()),
        _ => assert!(bytes.len() <= MAX_FRAME_BYTES),
    }
}

/// Encoding then decoding gives the chunk back, in both directions, for any header values
/// and samples that fit in one frame; a longer chunk is refused as too long.
pub fn frames_encode_then_decode(seq: u32, turn: u32, first: bool, last: bool, samples: &[i16]) {
    let fits = samples.len() <= MAX_SAMPLES_PER_FRAME;

    let input = protocol::decode_input_frame(&protocol::encode_input_frame(seq, samples));
    match input {
        Ok(chunk) => {
            assert!(fits);
            assert_eq!(
                chunk,
                InputChunk {
                    seq,
                    samples: samples.to_vec()
                }
            );
        }
        Err(FrameError::TooLong { .. }) => assert!(!fits),
        Err(FrameError::Empty) => assert!(samples.is_empty()),
        Err(other) => panic!("a well-formed input frame was refused: {other}"),
    }

    let output = protocol::decode_output_frame(&protocol::encode_output_frame(
        seq, turn, first, last, samples,
    ));
    match output {
        Ok(chunk) => {
            assert!(fits);
            let expected = OutputChunk {
                seq,
                turn,
                first,
                last,
                samples: samples.to_vec(),
            };
            assert_eq!(chunk, expected);
        }
        Err(FrameError::TooLong { .. }) => assert!(!fits),
        Err(other) => panic!("a well-formed output frame was refused: {other}"),
    }
}

/// A text frame, read both as a client message (the server's view) and as a server message
/// (a client's view). Whatever parses serializes back to JSON that parses to the same
/// message, so the server and the replay client agree on every accepted message.
pub fn json_message(text: &str) {
    match protocol::parse_client_message(text) {
        Ok(msg) => {
            let json = serde_json::to_string(&msg).expect("a parsed client message serializes");
            // Re-serializing can grow the text (`1e5` becomes `100000.0`), so only a copy
            // within the frame limit must pass the size check again.
            if json.len() <= MAX_FRAME_BYTES {
                assert_eq!(protocol::parse_client_message(&json), Ok(msg.clone()));
            } else {
                let again: ClientMessage = serde_json::from_str(&json).expect("reparses");
                assert_eq!(again, msg);
            }
            match &msg {
                ClientMessage::SessionStart(start) => {
                    let _ = start.validate();
                }
                ClientMessage::AudioChunk { seq, audio } => json_audio(*seq, audio),
                _ => {}
            }
        }
        Err(err) => assert!(
            !err.message.is_empty(),
            "a BAD_MESSAGE must say what is wrong"
        ),
    }
    match protocol::parse_server_message(text) {
        Ok(msg) => {
            let json = msg.to_json();
            assert_eq!(protocol::parse_server_message(&json), Ok(msg));
        }
        Err(err) => assert!(!err.message.is_empty()),
    }
}

/// The base64 audio transport: accepted audio is exactly the canonical base64 of the
/// samples it decodes to (padding required, no stray bits), and only an empty string is
/// refused as an empty chunk.
pub fn json_audio(seq: u32, audio: &str) {
    match protocol::decode_json_input_audio(seq, audio) {
        Ok(chunk) => {
            assert_eq!(chunk.seq, seq);
            assert!(!chunk.samples.is_empty());
            assert_eq!(protocol::samples_to_base64(&chunk.samples), audio);
        }
        Err(FrameError::Empty) => assert!(audio.is_empty(), "{audio:?} refused as empty"),
        Err(FrameError::Base64(_) | FrameError::OddLength(_)) => assert!(!audio.is_empty()),
        Err(other) => panic!("unexpected error for JSON audio: {other:?}"),
    }
}

/// The SSE parser's events for `body`, fed in `pieces` and then finished; `None` if it
/// failed (an error ends the stream, so what came before it in the same push is moot).
fn sse_events<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<String>> {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    for piece in pieces {
        events.extend(parser.push(piece).ok()?);
    }
    events.extend(parser.finish().ok()?);
    Some(events)
}

/// Bodies at least this long may hit the parser's line and event caps, which the
/// reference model below does not have.
const SSE_REFERENCE_MAX_BYTES: usize = 1 << 20;

/// The SSE parser gives the same events (or the same failure) however the body is split:
/// in one piece, byte by byte, and at `cuts` (piece lengths, used in turn until the body
/// runs out). Below the parser's size caps, it also agrees with a whole-body model of the
/// WHATWG rules it implements.
pub fn sse_split_invariant(body: &[u8], cuts: &[usize]) {
    let whole = sse_events([body]);
    assert_eq!(sse_events(body.chunks(1)), whole, "byte by byte");
    assert_eq!(
        sse_events(split_at_lengths(body, cuts)),
        whole,
        "cut at {cuts:?}"
    );
    if body.len() < SSE_REFERENCE_MAX_BYTES {
        assert_eq!(sse_reference(body), whole, "against the model");
    }
}

fn split_at_lengths<'a>(mut body: &'a [u8], lengths: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    for &len in lengths {
        let (piece, rest) = body.split_at(len.min(body.len()));
        pieces.push(piece);
        body = rest;
    }
    pieces.push(body);
    pieces
}

/// The event-stream rules applied to a whole body at once: split into lines at `\r\n`,
/// `\r` or `\n`; a blank line (or the end) dispatches an event that had a `data` line;
/// every non-blank line must be UTF-8.
fn sse_reference(body: &[u8]) -> Option<Vec<String>> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\n' => {
                lines.push(&body[start..i]);
                i += 1;
            }
            b'\r' => {
                lines.push(&body[start..i]);
                i += if body.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
            }
            _ => {
                i += 1;
                continue;
            }
        }
        start = i;
    }
    lines.push(&body[start..]);
    lines.push(b"");

    let mut events = Vec::new();
    let mut data: Option<String> = None;
    for line in lines {
        if line.is_empty() {
            events.extend(data.take());
            continue;
        }
        let line = std::str::from_utf8(line).ok()?;
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        // A comment line has an empty field name, so it is never `data`.
        if field == "data" {
            match &mut data {
                Some(joined) => {
                    joined.push('\n');
                    joined.push_str(value);
                }
                None => data = Some(value.to_owned()),
            }
        }
    }
    Some(events)
}

/// Splits a raw fuzz input for [`sse_split_invariant`]: the first byte says how many of the
/// following bytes are piece lengths (at most 15), the rest is the body. Hand-written seeds
/// can then start with `\0` and be a plain event stream.
pub fn sse_fuzz_input(data: &[u8]) -> (&[u8], Vec<usize>) {
    let Some((&n, rest)) = data.split_first() else {
        return (data, Vec::new());
    };
    let n = usize::from(n % 16).min(rest.len());
    let (cuts, body) = rest.split_at(n);
    (body, cuts.iter().map(|&c| usize::from(c)).collect())
}

/// Splits a raw fuzz input for [`frames_encode_then_decode`]: 4 bytes of seq, 4 of turn, one
/// of flags, then the samples' little-endian bytes (an odd last byte is dropped).
pub fn frame_fields_fuzz_input(data: &[u8]) -> Option<(u32, u32, bool, bool, Vec<i16>)> {
    let (seq, rest) = data.split_first_chunk::<4>()?;
    let (turn, rest) = rest.split_first_chunk::<4>()?;
    let (&flags, rest) = rest.split_first()?;
    let samples = rest
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    Some((
        u32::from_le_bytes(*seq),
        u32::from_le_bytes(*turn),
        flags & 1 != 0,
        flags & 2 != 0,
        samples,
    ))
}

/// Reads raw fuzz input as text the way a WebSocket text frame would arrive: only valid
/// UTF-8 ever reaches the decoders, because tungstenite rejects the rest first.
pub fn fuzz_text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// The `seq` for a raw `json_audio` fuzz input: its first 4 bytes (the rest is the text).
pub fn json_audio_fuzz_input(data: &[u8]) -> Option<(u32, &str)> {
    let (seq, rest) = data.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*seq), fuzz_text(rest)?))
}
