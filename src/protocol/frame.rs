//! The callgate.v1 binary audio frame: a 12-byte header (kind, flags, seq, turn) and
//! little-endian PCM, and the base64 form JSON-transport clients use. Pure; never panics on
//! input: a bad frame is a [`FrameError`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::MAX_FRAME_BYTES;

/// Size of the binary audio frame header that precedes the PCM samples.
pub const FRAME_HEADER_LEN: usize = 12;

/// Most samples one binary frame can carry; senders split longer audio into several frames.
pub const MAX_SAMPLES_PER_FRAME: usize = (MAX_FRAME_BYTES - FRAME_HEADER_LEN) / 2;

/// Frame `kind` for audio sent by the client.
pub const KIND_INPUT: u8 = 1;

/// Frame `kind` for audio sent by the server.
pub const KIND_OUTPUT: u8 = 2;

/// Output flag: this frame opens a response's audio, so a client can reset its player.
pub const FLAG_FIRST: u8 = 1;

/// Output flag: this frame closes a response's audio, so a client knows playback can drain.
pub const FLAG_LAST: u8 = 2;

// ---------------------------------------------------------------------------------------
// Binary frames
// ---------------------------------------------------------------------------------------

/// Why a binary frame (or a JSON `audio` field) was rejected. The `Display` text is meant
/// for the `message` of the `BAD_AUDIO` error sent back to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes than the header plus one sample.
    #[error(
        "audio frame is {len} bytes; it needs the {FRAME_HEADER_LEN}-byte header and at least one sample"
    )]
    TooShort {
        /// Length of the frame received.
        len: usize,
    },
    /// More than [`MAX_FRAME_BYTES`].
    #[error("audio frame is {len} bytes, over the {MAX_FRAME_BYTES}-byte limit")]
    TooLong {
        /// Length of the frame received.
        len: usize,
    },
    /// The `kind` byte does not match the direction being decoded.
    #[error("audio frame kind is {found}, expected {expected}")]
    WrongKind {
        /// Kind found in the header.
        found: u8,
        /// Kind this decoder accepts.
        expected: u8,
    },
    /// The reserved header field is not zero; rejected so it can carry meaning later.
    #[error("audio frame reserved field must be 0, got {0}")]
    Reserved(u16),
    /// An input frame set flags, which only output frames define.
    #[error("input audio frame flags must be 0, got {0:#04x}")]
    InputFlags(u8),
    /// An input frame set `turn`, which only output frames define.
    #[error("input audio frame turn must be 0, got {0}")]
    InputTurn(u32),
    /// An output frame set flag bits other than first/last.
    #[error("output audio frame has unknown flag bits {0:#04x}")]
    UnknownFlags(u8),
    /// The sample bytes cannot be 16-bit samples.
    #[error("audio payload is {0} bytes; 16-bit samples need an even number of bytes")]
    OddLength(usize),
    /// An input chunk carried no audio at all.
    #[error("audio chunk has no samples")]
    Empty,
    /// The JSON `audio` field is not valid base64.
    #[error("audio is not valid base64: {0}")]
    Base64(String),
}

/// One input audio chunk as sent by a client, before sequencing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputChunk {
    /// Sequence number; the sequencer orders and dedupes by it.
    pub seq: u32,
    /// Interleaved PCM at the session's `input.sampleRate` and `input.channels`.
    pub samples: Vec<i16>,
}

/// One output audio chunk as sent by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    /// Output sequence number, counted across the whole call.
    pub seq: u32,
    /// The turn whose response this audio belongs to, so stale audio can be discarded.
    pub turn: u32,
    /// First chunk of the response.
    pub first: bool,
    /// Last chunk of the response.
    pub last: bool,
    /// Mono PCM at the session's `output.sampleRate`.
    pub samples: Vec<i16>,
}

struct Header {
    kind: u8,
    flags: u8,
    reserved: u16,
    seq: u32,
    turn: u32,
}

/// Checks the length rules shared by both directions and splits off the header.
fn split_frame(bytes: &[u8]) -> Result<(Header, &[u8]), FrameError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLong { len: bytes.len() });
    }
    let Some((head, payload)) = bytes.split_first_chunk::<FRAME_HEADER_LEN>() else {
        return Err(FrameError::TooShort { len: bytes.len() });
    };
    let header = Header {
        kind: head[0],
        flags: head[1],
        reserved: u16::from_le_bytes([head[2], head[3]]),
        seq: u32::from_le_bytes([head[4], head[5], head[6], head[7]]),
        turn: u32::from_le_bytes([head[8], head[9], head[10], head[11]]),
    };
    if header.reserved != 0 {
        return Err(FrameError::Reserved(header.reserved));
    }
    Ok((header, payload))
}

fn bytes_to_samples(payload: &[u8]) -> Result<Vec<i16>, FrameError> {
    if !payload.len().is_multiple_of(2) {
        return Err(FrameError::OddLength(payload.len()));
    }
    Ok(payload
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect())
}

fn encode_frame(kind: u8, flags: u8, seq: u32, turn: u32, samples: &[i16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + samples.len() * 2);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&turn.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Decodes a client's binary audio frame.
///
/// Strict on purpose: `flags` and `turn` must be 0 on input (the contract says so, and a
/// client that sets them is probably echoing output frames back), and an empty chunk is
/// rejected because it can only be a client bug and would still consume a sequence number.
pub fn decode_input_frame(bytes: &[u8]) -> Result<InputChunk, FrameError> {
    let (h, payload) = split_frame(bytes)?;
    if h.kind != KIND_INPUT {
        return Err(FrameError::WrongKind {
            found: h.kind,
            expected: KIND_INPUT,
        });
    }
    if h.flags != 0 {
        return Err(FrameError::InputFlags(h.flags));
    }
    if h.turn != 0 {
        return Err(FrameError::InputTurn(h.turn));
    }
    let samples = bytes_to_samples(payload)?;
    if samples.is_empty() {
        return Err(FrameError::Empty);
    }
    Ok(InputChunk {
        seq: h.seq,
        samples,
    })
}

/// Encodes a binary input audio frame (for clients). The caller keeps `samples` at most
/// [`MAX_SAMPLES_PER_FRAME`] long; longer frames are rejected by the server.
pub fn encode_input_frame(seq: u32, samples: &[i16]) -> Vec<u8> {
    encode_frame(KIND_INPUT, 0, seq, 0, samples)
}

/// Encodes a binary output audio frame. The caller keeps `samples` at most
/// [`MAX_SAMPLES_PER_FRAME`] long.
pub fn encode_output_frame(
    seq: u32,
    turn: u32,
    first: bool,
    last: bool,
    samples: &[i16],
) -> Vec<u8> {
    let mut flags = 0;
    if first {
        flags |= FLAG_FIRST;
    }
    if last {
        flags |= FLAG_LAST;
    }
    encode_frame(KIND_OUTPUT, flags, seq, turn, samples)
}

/// Decodes a server's binary audio frame (for clients).
///
/// An output frame may carry no samples: a bare `last` marker is how a response's audio
/// can end when its final sentence synthesized to nothing.
pub fn decode_output_frame(bytes: &[u8]) -> Result<OutputChunk, FrameError> {
    let (h, payload) = split_frame(bytes)?;
    if h.kind != KIND_OUTPUT {
        return Err(FrameError::WrongKind {
            found: h.kind,
            expected: KIND_OUTPUT,
        });
    }
    if h.flags & !(FLAG_FIRST | FLAG_LAST) != 0 {
        return Err(FrameError::UnknownFlags(h.flags));
    }
    Ok(OutputChunk {
        seq: h.seq,
        turn: h.turn,
        first: h.flags & FLAG_FIRST != 0,
        last: h.flags & FLAG_LAST != 0,
        samples: bytes_to_samples(payload)?,
    })
}

/// Encodes samples as base64 of their little-endian bytes, the JSON audio transport.
pub fn samples_to_base64(samples: &[i16]) -> String {
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    BASE64.encode(bytes)
}

/// Decodes the JSON audio transport. Empty input gives no samples; use
/// [`decode_json_input_audio`] for the stricter input-chunk rules.
pub fn base64_to_samples(audio: &str) -> Result<Vec<i16>, FrameError> {
    let bytes = BASE64
        .decode(audio)
        .map_err(|e| FrameError::Base64(e.to_string()))?;
    bytes_to_samples(&bytes)
}

/// Turns an `audio.chunk` message into the same [`InputChunk`] a binary frame gives, with
/// the same rules (no empty chunks), so the server has one ingest path.
pub fn decode_json_input_audio(seq: u32, audio: &str) -> Result<InputChunk, FrameError> {
    let samples = base64_to_samples(audio)?;
    if samples.is_empty() {
        return Err(FrameError::Empty);
    }
    Ok(InputChunk { seq, samples })
}
