//! The fuzz targets' properties (`fuzz/src/lib.rs`) as proptests: a short, seeded run of the
//! same checks on every CI run, where the coverage-guided fuzzers run by hand for longer.
//!
//! Random bytes rarely get past a decoder's first check, so most strategies here build
//! well-formed input and then damage it a little, which is what reaches the deep branches.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use callgate::protocol::{
    self, ClientMessage, InputFormat, MAX_SAMPLES_PER_FRAME, OutputFormat, SessionStart, Transport,
    TurnDetection, TurnMode,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Map, Value, json};

#[allow(dead_code)] // the fuzz-input splitters are for the libFuzzer targets only
#[path = "../fuzz/src/lib.rs"]
mod checks;

/// Fixed seed and no regression files: the same cases on every run, so a red CI run is
/// reproducible and a green one means the same thing each time.
fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0xCA11_6A7E),
        failure_persistence: None,
        ..Config::default()
    }
}

/// A binary frame header with each field usually valid and sometimes not, then a payload.
fn frame_bytes() -> impl Strategy<Value = Vec<u8>> {
    let kind = prop_oneof![Just(1u8), Just(2u8), any::<u8>()];
    let flags = prop_oneof![2 => 0u8..4, 1 => any::<u8>()];
    let reserved = prop_oneof![4 => Just(0u16), 1 => any::<u16>()];
    let turn = prop_oneof![Just(0u32), any::<u32>()];
    let payload = prop::collection::vec(any::<u8>(), 0..64);
    (kind, flags, reserved, any::<u32>(), turn, payload).prop_map(
        |(kind, flags, reserved, seq, turn, payload)| {
            let mut bytes = vec![kind, flags];
            bytes.extend_from_slice(&reserved.to_le_bytes());
            bytes.extend_from_slice(&seq.to_le_bytes());
            bytes.extend_from_slice(&turn.to_le_bytes());
            bytes.extend_from_slice(&payload);
            bytes
        },
    )
}

fn small_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 .,?]{0,24}",
        any::<String>().prop_map(|s| s.chars().take(24).collect()),
    ]
}

/// Any JSON value a client might put in `ping.t` or `context`, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        small_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn session_start() -> impl Strategy<Value = ClientMessage> {
    let input = (4000u32..60000, 0u16..4).prop_map(|(sample_rate, channels)| InputFormat {
        sample_rate,
        channels,
        encoding: protocol::ENCODING_PCM_S16LE.to_owned(),
    });
    let output = (4000u32..60000, any::<bool>()).prop_map(|(sample_rate, json)| OutputFormat {
        sample_rate,
        transport: if json {
            Transport::Json
        } else {
            Transport::Binary
        },
        ..OutputFormat::default()
    });
    let silence = || prop::option::of(0u32..6000);
    let turns = (0u8..3, silence(), silence(), silence()).prop_map(
        |(mode, silence_ms, min_silence_ms, max_silence_ms)| TurnDetection {
            mode: match mode {
                0 => TurnMode::Smart,
                1 => TurnMode::ServerVad,
                _ => TurnMode::Manual,
            },
            silence_ms,
            min_silence_ms,
            max_silence_ms,
        },
    );
    let context = prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..3);
    (
        prop::option::of(small_text()),
        context,
        input,
        output,
        turns,
    )
        .prop_map(|(persona, context, input, output, turn_detection)| {
            ClientMessage::SessionStart(SessionStart {
                token: None,
                persona,
                context: context.into_iter().collect::<Map<_, _>>(),
                input,
                output,
                turn_detection,
            })
        })
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        session_start(),
        (small_text(), small_text(), prop::option::of(small_text())).prop_map(
            |(session_id, resume_token, token)| {
                ClientMessage::SessionResume {
                    session_id,
                    resume_token,
                    token,
                }
            }
        ),
        Just(ClientMessage::SessionEnd),
        (any::<u32>(), prop::collection::vec(any::<i16>(), 0..8)).prop_map(|(seq, samples)| {
            ClientMessage::AudioChunk {
                seq,
                audio: protocol::samples_to_base64(&samples),
            }
        }),
        Just(ClientMessage::InputCommit),
        Just(ClientMessage::InputClear),
        small_text().prop_map(|text| ClientMessage::InputText { text }),
        prop::option::of(any::<u32>())
            .prop_map(|turn_id| ClientMessage::ResponseCancel { turn_id }),
        (any::<u32>(), any::<u64>()).prop_map(|(turn_id, played_ms)| {
            ClientMessage::PlaybackPosition { turn_id, played_ms }
        }),
        json_value().prop_map(|t| ClientMessage::Ping { t }),
    ]
}

/// Damage to a valid text: cut it short, drop a character, or put another in its place.
#[derive(Debug, Clone)]
enum Damage {
    None,
    Truncate(prop::sample::Index),
    Remove(prop::sample::Index),
    Replace(prop::sample::Index, char),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        Just(Damage::None),
        any::<prop::sample::Index>().prop_map(Damage::Truncate),
        any::<prop::sample::Index>().prop_map(Damage::Remove),
        (
            any::<prop::sample::Index>(),
            prop_oneof![
                prop::sample::select(&b"{}[]\":,0-e.\\ntf"[..]).prop_map(char::from),
                any::<char>()
            ]
        )
            .prop_map(|(i, c)| Damage::Replace(i, c)),
    ]
}

fn apply(text: &str, damage: &Damage) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    match damage {
        Damage::None => {}
        Damage::Truncate(i) => chars.truncate(i.index(chars.len() + 1)),
        Damage::Remove(i) if !chars.is_empty() => {
            chars.remove(i.index(chars.len()));
        }
        Damage::Replace(i, c) if !chars.is_empty() => {
            let at = i.index(chars.len());
            chars[at] = *c;
        }
        Damage::Remove(_) | Damage::Replace(..) => {}
    }
    chars.into_iter().collect()
}

/// SSE bodies made of the lines LLM servers send and the ones they should not, ended by any
/// of the three line breaks, sometimes with a bad UTF-8 byte.
fn sse_body() -> impl Strategy<Value = Vec<u8>> {
    let field = prop::sample::select(vec![
        "data:", "data: ", "data", ":", "event: ", "id:", "retry: ", "", "dat",
    ]);
    let value = prop_oneof![
        small_text(),
        Just("[DONE]".to_owned()),
        Just("{\"a\":1}".to_owned())
    ];
    let end = prop::sample::select(vec!["\n", "\r", "\r\n", "\n\n", "\r\n\r\n", ""]);
    let line = (field, value, end, prop::option::weighted(0.05, any::<u8>()));
    prop::collection::vec(line, 0..8).prop_map(|lines| {
        let mut body = Vec::new();
        for (field, value, end, stray) in lines {
            body.extend_from_slice(field.as_bytes());
            body.extend_from_slice(value.as_bytes());
            body.extend(stray);
            body.extend_from_slice(end.as_bytes());
        }
        body
    })
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn any_bytes_decode_as_frames_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..48)) {
        checks::input_frame(&bytes);
        checks::output_frame(&bytes);
    }

    #[test]
    fn nearly_valid_frames_round_trip_exactly(bytes in frame_bytes()) {
        checks::input_frame(&bytes);
        checks::output_frame(&bytes);
    }

    #[test]
    fn encoded_frames_decode_to_themselves(
        seq in any::<u32>(),
        turn in any::<u32>(),
        first in any::<bool>(),
        last in any::<bool>(),
        samples in prop::collection::vec(any::<i16>(), 0..32),
    ) {
        checks::frames_encode_then_decode(seq, turn, first, last, &samples);
    }

    #[test]
    fn client_messages_round_trip_even_when_damaged(msg in client_message(), damage in damage()) {
        let text = serde_json::to_string(&msg).expect("serializes");
        if matches!(damage, Damage::None) {
            prop_assert_eq!(protocol::parse_client_message(&text), Ok(msg));
        }
        checks::json_message(&apply(&text, &damage));
    }

    #[test]
    fn any_text_parses_as_a_message_or_fails_cleanly(text in any::<String>()) {
        checks::json_message(&text);
    }

    #[test]
    fn json_audio_is_canonical_base64(
        seq in any::<u32>(),
        bytes in prop::collection::vec(any::<u8>(), 0..16),
        damage in damage(),
    ) {
        checks::json_audio(seq, &apply(&BASE64.encode(&bytes), &damage));
    }

    #[test]
    fn sse_events_do_not_depend_on_how_the_body_is_split(
        body in sse_body(),
        cuts in prop::collection::vec(0usize..12, 0..6),
    ) {
        checks::sse_split_invariant(&body, &cuts);
    }
}

proptest! {
    #![proptest_config(config(8))]

    /// The frame-size limit, exactly at the edge: the longest chunk fits, one more sample
    /// does not, in both directions.
    #[test]
    fn frames_at_the_size_limit(extra in 0usize..3, seq in any::<u32>()) {
        let samples = vec![-1i16; MAX_SAMPLES_PER_FRAME - 1 + extra];
        checks::frames_encode_then_decode(seq, 1, true, false, &samples);
    }
}

/// Found by `client_messages_round_trip_even_when_damaged`: serde_json's default float
/// parser can be one ulp off, so a 17-digit `ping.t` came back changed in `pong`; the
/// `float_roundtrip` feature makes the echo exact.
#[test]
fn ping_t_with_17_digits_is_echoed_exactly() {
    let sent = -9.119202287374765e-165_f64;
    let text = format!(r#"{{"type":"ping","t":{sent:e}}}"#);
    let Ok(ClientMessage::Ping { t }) = protocol::parse_client_message(&text) else {
        panic!("{text} is a valid ping");
    };
    assert_eq!(t.as_f64(), Some(sent));
    let pong = protocol::ServerMessage::Pong { t, server_time: 0 }.to_json();
    let Ok(protocol::ServerMessage::Pong { t: echoed, .. }) = protocol::parse_server_message(&pong)
    else {
        panic!("{pong} is a valid pong");
    };
    assert_eq!(echoed.as_f64(), Some(sent));
}
