//! The typed contract for client developers, generated from the wire types in
//! [`crate::protocol`]: a JSON Schema (served at `GET /v1/schema`) and a TypeScript
//! declaration file (checked in as `docs/callgate.d.ts`, served at `GET /v1/callgate.d.ts`).
//!
//! Both are derived from the same Rust types the server parses with, so they cannot drift
//! from what the server accepts; a test fails when the checked-in `.d.ts` is stale
//! (`cargo run --release --example gen_contract` rewrites it).

use serde_json::{Value, json};
use ts_rs::TS;

use crate::report;

use crate::protocol::{
    ClientMessage, DoneStatus, EndOfTurn, EndReason, EndRule, ErrorCode, ErrorEvent, FLAG_FIRST,
    FLAG_LAST, FRAME_HEADER_LEN, InputFormat, KIND_INPUT, KIND_OUTPUT, Latency, Limits,
    MAX_FRAME_BYTES, OutputFormat, PROTOCOL_NAME, ResponseStatus, ServerMessage, SessionStart,
    TokenUsage, Transport, TurnDetection, TurnMode, TurnRecord,
};

/// Where the checked-in declaration file lives, relative to the repository root.
pub const TYPESCRIPT_PATH: &str = "docs/callgate.d.ts";

/// The JSON Schema (draft 2020-12) of every text frame: a frame is valid when it matches
/// `ClientMessage` (client to server) or `ServerMessage` (server to client).
pub fn json_schema() -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let client = generator.subschema_for::<ClientMessage>();
    let server = generator.subschema_for::<ServerMessage>();
    // Not a frame: the body of GET /v1/calls/<id>/report, in `$defs` for clients to use.
    generator.subschema_for::<crate::report::Report>();
    // The body of GET /v1/calls.
    generator.subschema_for::<crate::report::history::History>();
    let defs = generator.take_definitions(true);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": PROTOCOL_NAME,
        "description": "Text frames of the callgate.v1 protocol. Binary frames (audio) are \
            described in docs/protocol.md: a 12-byte little-endian header (kind u8, flags u8, \
            reserved u16, seq u32, turn u32) then 16-bit little-endian mono PCM.",
        "oneOf": [client, server],
        "$defs": defs,
    })
}

/// The TypeScript declarations of the wire types, plus the binary frame constants.
pub fn typescript() -> String {
    // JavaScript numbers hold every u64 value the protocol uses (milliseconds, counts).
    let cfg = ts_rs::Config::new().with_large_int("number");
    let decls = [
        ClientMessage::decl(&cfg),
        SessionStart::decl(&cfg),
        InputFormat::decl(&cfg),
        OutputFormat::decl(&cfg),
        Transport::decl(&cfg),
        TurnDetection::decl(&cfg),
        TurnMode::decl(&cfg),
        ServerMessage::decl(&cfg),
        Limits::decl(&cfg),
        TurnRecord::decl(&cfg),
        EndReason::decl(&cfg),
        ResponseStatus::decl(&cfg),
        DoneStatus::decl(&cfg),
        Latency::decl(&cfg),
        EndOfTurn::decl(&cfg),
        EndRule::decl(&cfg),
        TokenUsage::decl(&cfg),
        ErrorEvent::decl(&cfg),
        ErrorCode::decl(&cfg),
        report::Report::decl(&cfg),
        report::Answer::decl(&cfg),
        report::AnswerPause::decl(&cfg),
        report::fillers::Filler::decl(&cfg),
        report::CallFigures::decl(&cfg),
        report::Span::decl(&cfg),
        report::Speaker::decl(&cfg),
        report::Observation::decl(&cfg),
        report::history::History::decl(&cfg),
        report::history::PastCall::decl(&cfg),
        report::history::Trend::decl(&cfg),
        report::Feedback::decl(&cfg),
        report::feedback::AnswerFeedback::decl(&cfg),
    ];
    let mut out = String::from(
        "// callgate.v1 wire types, generated from src/protocol/ by src/schema.rs.\n\
         // Do not edit: `cargo run --release --example gen_contract` rewrites this file.\n\
         // Fields the server fills with a default (`input.channels`, `output`, `turnDetection`,\n\
         // ...) are declared as the server sends them; in a client message they may be\n\
         // omitted (GET /v1/schema marks exactly which).\n\n\
         /** Any JSON value (free-form fields such as `context` and `ping.t`). */\n\
         export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]?: JsonValue } | null;\n\n",
    );
    for decl in decls {
        out.push_str("export ");
        out.push_str(&decl);
        out.push_str("\n\n");
    }
    out.push_str(&format!(
        "/** Subprotocol to offer on the WebSocket. */\n\
         export const PROTOCOL_NAME: \"{PROTOCOL_NAME}\";\n\
         /** Largest text or binary frame, in bytes. */\n\
         export const MAX_FRAME_BYTES: {MAX_FRAME_BYTES};\n\
         /** Binary audio frame header: kind u8, flags u8, reserved u16, seq u32, turn u32 (little-endian). */\n\
         export const FRAME_HEADER_LEN: {FRAME_HEADER_LEN};\n\
         /** Frame kind of client input audio (flags and turn are 0). */\n\
         export const KIND_INPUT: {KIND_INPUT};\n\
         /** Frame kind of server output audio. */\n\
         export const KIND_OUTPUT: {KIND_OUTPUT};\n\
         /** Output flag: first chunk of a response. */\n\
         export const FLAG_FIRST: {FLAG_FIRST};\n\
         /** Output flag: last chunk of a response. */\n\
         export const FLAG_LAST: {FLAG_LAST};\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_every_message_type() {
        let schema = json_schema();
        let text = schema.to_string();
        for t in crate::protocol::CLIENT_MESSAGE_TYPES
            .iter()
            .chain(crate::protocol::SERVER_MESSAGE_TYPES)
        {
            assert!(text.contains(&format!("\"{t}\"")), "{t} missing");
        }
        assert!(schema["$defs"]["SessionStart"].is_object());
        assert!(schema["$defs"]["Report"].is_object(), "the report's body");
    }

    #[test]
    fn typescript_declares_both_directions() {
        let ts = typescript();
        assert!(ts.contains("export type Report"), "the report's body: {ts}");
        assert!(ts.contains("export type ClientMessage"), "{ts}");
        assert!(ts.contains("export type ServerMessage"), "{ts}");
        assert!(ts.contains("\"session.start\""), "{ts}");
        assert!(!ts.contains("bigint"), "{ts}");
    }

    #[test]
    fn checked_in_typescript_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(TYPESCRIPT_PATH);
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == typescript(),
            "{} is stale: run `cargo run --release --example gen_contract` and commit it",
            path.display()
        );
    }
}
