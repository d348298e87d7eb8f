//! The Realtime codec on its own: client events in, server events out, no socket.

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::*;
use crate::call::events::CallEvent;
use crate::protocol::{DoneStatus, EndOfTurn, EndRule, Latency, ResponseStatus};

fn codec() -> RealtimeCodec {
    let c = RealtimeCodec::new("gpt-realtime", None);
    let started = CallEvent::Started {
        session_id: "abc".into(),
        resume_token: "secret".into(),
        voice: "espeak:en-us".into(),
    };
    assert_eq!(kinds(&c.encode(started)), ["session.created"]);
    c
}

fn json_of(msgs: &[Message]) -> Vec<Value> {
    msgs.iter()
        .map(|m| match m {
            Message::Text(t) => serde_json::from_str(t.as_str()).expect("json"),
            other => panic!("not text: {other:?}"),
        })
        .collect()
}

fn kinds(msgs: &[Message]) -> Vec<String> {
    json_of(msgs)
        .iter()
        .map(|v| v["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn decode(c: &RealtimeCodec, event: Value) -> Result<Decoded, Fault> {
    c.decode_text(&event.to_string())
}

fn done(turn_id: u32, status: DoneStatus) -> CallEvent {
    CallEvent::ResponseDone {
        turn_id,
        status,
        text: "Hello there. How are you?".into(),
        heard_text: "Hello there.".into(),
        latency: Latency::default(),
        usage: None,
    }
}

#[test]
fn the_session_starts_at_the_upgrade_without_a_greeting() {
    let c = RealtimeCodec::new("m", None);
    match c.opening() {
        Some(CallInput::Start(s)) => {
            assert_eq!((s.input_rate, s.output_rate), (24_000, 24_000));
            assert!(!s.greet && !s.config.answer_commits && s.config.speak);
        }
        other => panic!("{other:?}"),
    }
    assert!(!c.resumable());
}

#[test]
fn session_update_configures_the_call_and_answers_updated() {
    let c = codec();
    let update = json!({"type":"session.update","event_id":"e1","session":{"type":"realtime",
        "instructions":"Be brief.","audio":{"input":{"turn_detection":null}}}});
    let d = decode(&c, update).expect("valid");
    match d.input {
        Some(CallInput::Configure { turn, config }) => {
            assert_eq!(turn, Some(crate::eot::TurnPolicy::Manual));
            assert_eq!(config.instructions.as_deref(), Some("Be brief."));
        }
        other => panic!("{other:?}"),
    }
    let updated = json_of(&d.replies);
    assert_eq!(updated[0]["type"], "session.updated");
    assert_eq!(updated[0]["session"]["id"], "sess_abc");
    assert!(updated[0]["session"]["audio"]["input"]["turn_detection"].is_null());
}

#[test]
fn appended_pcm_becomes_sequenced_chunks() {
    let c = codec();
    let audio = base64::engine::general_purpose::STANDARD.encode([1u8, 0, 255, 255]);
    for seq in 0..2 {
        let d = decode(
            &c,
            json!({"type":"input_audio_buffer.append","audio":audio}),
        );
        match d.expect("valid").input {
            Some(CallInput::Audio(chunk)) => {
                assert_eq!((chunk.seq, chunk.samples), (seq, vec![1, -1]));
            }
            other => panic!("{other:?}"),
        }
    }
    let odd = base64::engine::general_purpose::STANDARD.encode([1u8]);
    let e = decode(&c, json!({"type":"input_audio_buffer.append","audio":odd})).expect_err("odd");
    let error = json_of(&c.encode(CallEvent::fault(e)));
    assert_eq!(error[0]["error"]["param"], "audio");
}

#[test]
fn a_spoken_turn_and_its_response_say_every_event_in_order() {
    let c = codec();
    let said = |e| kinds(&c.encode(e));
    assert_eq!(
        said(CallEvent::SpeechStarted {
            turn_id: 1,
            audio_ms: 40
        }),
        ["input_audio_buffer.speech_started"]
    );
    let stop = CallEvent::SpeechStopped {
        turn_id: 1,
        audio_ms: 900,
        end_of_turn: EndOfTurn {
            rule: EndRule::Silence,
            silence_ms: 500,
            score: None,
        },
    };
    assert_eq!(
        said(stop),
        [
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.added"
        ]
    );
    let transcript = CallEvent::Transcript {
        turn_id: 1,
        text: "hello".into(),
        is_final: true,
        span_ms: Some((40, 900)),
    };
    assert_eq!(said(transcript), ["conversation.item.done"]);
    let started = CallEvent::ResponseStarted {
        turn_id: 1,
        status: ResponseStatus::Thinking,
        eta_ms: None,
    };
    assert_eq!(
        said(started),
        [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.content_part.added"
        ]
    );
    let text = CallEvent::ResponseText {
        turn_id: 1,
        index: 0,
        delta: "Hello".into(),
    };
    assert_eq!(said(text), ["response.output_audio_transcript.delta"]);
    let audio = CallEvent::ResponseAudio {
        turn_id: 1,
        seq: 0,
        first: true,
        last: false,
        samples: vec![0i16; 480].into(),
    };
    let delta = json_of(&c.encode(audio));
    assert_eq!(delta[0]["type"], "response.output_audio.delta");
    assert_eq!(delta[0]["item_id"], "item_asst_1");
    assert_eq!(delta[0]["delta"].as_str().map(str::len), Some(1280));
    let closed = json_of(&c.encode(done(1, DoneStatus::Completed)));
    let order: Vec<_> = closed
        .iter()
        .map(|v| v["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        order,
        [
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done"
        ]
    );
    let response = &closed[5]["response"];
    assert_eq!(response["status"], "completed");
    assert_eq!(
        response["output"][0]["content"][0]["transcript"],
        "Hello there. How are you?"
    );
}

#[test]
fn a_barge_in_is_turn_detected_and_keeps_what_was_heard() {
    let c = codec();
    let _ = c.encode(CallEvent::ResponseStarted {
        turn_id: 2,
        status: ResponseStatus::Thinking,
        eta_ms: None,
    });
    let closed = json_of(&c.encode(done(2, DoneStatus::Cancelled)));
    let response = &closed.last().expect("done")["response"];
    assert_eq!(response["status"], "cancelled");
    assert_eq!(response["status_details"]["reason"], "turn_detected");
    assert_eq!(
        response["output"][0]["content"][0]["transcript"],
        "Hello there."
    );
}

#[test]
fn a_backchannel_closes_its_speech_and_the_response_plays_on() {
    let c = codec();
    let _ = c.encode(CallEvent::ResponseStarted {
        turn_id: 2,
        status: ResponseStatus::Thinking,
        eta_ms: None,
    });
    let paused = json_of(&c.encode(CallEvent::ResponsePaused {
        turn_id: 2,
        audio_ms: 1000,
    }));
    assert_eq!(paused[0]["type"], "input_audio_buffer.speech_started");
    assert_eq!(
        (&paused[0]["audio_start_ms"], &paused[0]["item_id"]),
        (&json!(1000), &json!("item_user_3"))
    );
    let resumed = json_of(&c.encode(CallEvent::ResponseResumed {
        turn_id: 2,
        paused_ms: 600,
        text: "Mm-hmm.".into(),
        speech_end_ms: 1400,
    }));
    // Closed, and nothing committed: a backchannel is not a turn.
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    assert_eq!(resumed[0]["type"], "input_audio_buffer.speech_stopped");
    assert_eq!(
        (&resumed[0]["audio_end_ms"], &resumed[0]["item_id"]),
        (&json!(1400), &json!("item_user_3"))
    );
    let audio = CallEvent::ResponseAudio {
        turn_id: 2,
        seq: 7,
        first: false,
        last: false,
        samples: vec![1i16; 480].into(),
    };
    let delta = json_of(&c.encode(audio));
    assert_eq!(delta[0]["type"], "response.output_audio.delta");
    assert_eq!(delta[0]["response_id"], "resp_2");
    // The next speech over it is new speech, announced again.
    let again = c.encode(CallEvent::ResponsePaused {
        turn_id: 2,
        audio_ms: 3000,
    });
    assert_eq!(kinds(&again), ["input_audio_buffer.speech_started"]);
}

#[test]
fn a_client_cancel_is_client_cancelled() {
    let c = codec();
    let none = decode(&c, json!({"type":"response.cancel"})).expect_err("nothing to cancel");
    let e = json_of(&c.encode(CallEvent::fault(none)));
    assert_eq!(e[0]["error"]["code"], "response_cancel_not_active");
    let _ = c.encode(CallEvent::ResponseStarted {
        turn_id: 3,
        status: ResponseStatus::Thinking,
        eta_ms: None,
    });
    let d = decode(&c, json!({"type":"response.cancel"})).expect("in flight");
    assert!(matches!(
        d.input,
        Some(CallInput::Cancel { turn_id: Some(3) })
    ));
    let closed = json_of(&c.encode(done(3, DoneStatus::Cancelled)));
    let response = &closed.last().expect("done")["response"];
    assert_eq!(response["status_details"]["reason"], "client_cancelled");
}

#[test]
fn text_only_responses_send_text_events_and_no_audio() {
    let c = codec();
    let update = json!({"type":"session.update","session":{"output_modalities":["text"]}});
    decode(&c, update).expect("valid");
    let started = kinds(&c.encode(CallEvent::ResponseStarted {
        turn_id: 1,
        status: ResponseStatus::Thinking,
        eta_ms: None,
    }));
    assert_eq!(started.len(), 4);
    let text = kinds(&c.encode(CallEvent::ResponseText {
        turn_id: 1,
        index: 0,
        delta: "Hi".into(),
    }));
    assert_eq!(text, ["response.output_text.delta"]);
    let audio = c.encode(CallEvent::ResponseAudio {
        turn_id: 1,
        seq: 0,
        first: true,
        last: true,
        samples: vec![0i16; 10].into(),
    });
    assert!(audio.is_empty());
    let closed = kinds(&c.encode(done(1, DoneStatus::Completed)));
    assert_eq!(closed[0], "response.output_text.done");
}

#[test]
fn bad_events_get_realtime_errors_naming_the_event() {
    let c = codec();
    let cases = [
        (
            json!({"type":"nope","event_id":"c1"}),
            "invalid_value",
            "type",
        ),
        (
            json!({"type":"session.update","event_id":"c2",
                "session":{"audio":{"input":{"format":{"type":"audio/pcm","rate":16000}}}}}),
            "invalid_value",
            "session.audio.input.format.rate",
        ),
        (
            json!({"type":"input_audio_buffer.append","event_id":"c3"}),
            "missing_required_parameter",
            "audio",
        ),
        (
            json!({"type":"conversation.item.truncate","event_id":"c4","item_id":"x",
                "content_index":0,"audio_end_ms":10}),
            "item_not_found",
            "item_id",
        ),
        (
            // The default session's server VAD commits each turn itself.
            json!({"type":"input_audio_buffer.commit","event_id":"c5"}),
            "invalid_value",
            "session.audio.input.turn_detection",
        ),
    ];
    for (event, code, param) in cases {
        let id = event["event_id"].clone();
        let fault = decode(&c, event).expect_err("refused");
        let e = json_of(&c.encode(CallEvent::fault(fault)));
        assert_eq!(e[0]["type"], "error");
        let error = &e[0]["error"];
        assert_eq!(
            (&error["code"], &error["param"], &error["event_id"]),
            (&json!(code), &json!(param), &id)
        );
        assert_eq!(error["type"], "invalid_request_error");
    }
    let garbage = c.decode_text("{not json").expect_err("refused");
    let e = json_of(&c.encode(CallEvent::fault(garbage)));
    assert_eq!(e[0]["error"]["code"], "invalid_json");
}

#[test]
fn items_are_seeded_retrieved_truncated_and_deleted() {
    let c = codec();
    let create = json!({"type":"conversation.item.create","item":{"id":"seed1","type":"message",
        "role":"assistant","content":[{"type":"output_text","text":"Tell me about yourself."}]}});
    let d = decode(&c, create).expect("valid");
    assert!(matches!(
        d.input,
        Some(CallInput::Seed {
            role: SeedRole::Assistant,
            ..
        })
    ));
    assert_eq!(
        kinds(&d.replies),
        ["conversation.item.added", "conversation.item.done"]
    );
    let got = decode(
        &c,
        json!({"type":"conversation.item.retrieve","item_id":"seed1"}),
    );
    let got = json_of(&got.expect("known").replies);
    assert_eq!(
        got[0]["item"]["content"][0]["text"],
        "Tell me about yourself."
    );
    // Two seconds of turn 4's answer went out.
    let _ = c.encode(CallEvent::ResponseStarted {
        turn_id: 4,
        status: ResponseStatus::Thinking,
        eta_ms: None,
    });
    let _ = c.encode(CallEvent::ResponseAudio {
        turn_id: 4,
        seq: 0,
        first: true,
        last: false,
        samples: vec![0i16; 48_000].into(),
    });
    let truncate = |item_id: &str, ms: u64| {
        json!({"type":"conversation.item.truncate","item_id":item_id,
            "content_index":0,"audio_end_ms":ms})
    };
    // OpenAI's errors: past the audio sent, and an item that is not model audio.
    for (item_id, ms, code, message) in [
        (
            "item_asst_4",
            2001,
            "invalid_value",
            "Audio content of 2000ms is already shorter than 2001ms",
        ),
        (
            "seed1",
            0,
            "invalid_value",
            "Only model output audio messages can be truncated",
        ),
        (
            "item_asst_9",
            0,
            "item_not_found",
            "no item \"item_asst_9\" in the conversation",
        ),
    ] {
        let fault = decode(&c, truncate(item_id, ms)).expect_err("refused");
        let e = json_of(&c.encode(CallEvent::fault(fault)));
        let error = &e[0]["error"];
        assert_eq!(
            (&error["code"], &error["message"]),
            (&json!(code), &json!(message))
        );
    }
    let d = decode(&c, truncate("item_asst_4", 1500)).expect("valid");
    assert!(matches!(
        d.input,
        Some(CallInput::PlaybackPosition {
            turn_id: 4,
            played_ms: 1500
        })
    ));
    assert_eq!(kinds(&d.replies), ["conversation.item.truncated"]);
    let gone = decode(
        &c,
        json!({"type":"conversation.item.delete","item_id":"seed1"}),
    );
    assert_eq!(
        kinds(&gone.expect("known").replies),
        ["conversation.item.deleted"]
    );
    let again = decode(
        &c,
        json!({"type":"conversation.item.retrieve","item_id":"seed1"}),
    );
    assert!(again.is_err());
}

fn seed(role: &str, text: &str) -> Value {
    json!({"type":"conversation.item.create","item":{"type":"message","role":role,
        "content":[{"type":"input_text","text":text}]}})
}

#[test]
fn seeded_messages_are_refused_beyond_the_conversations_bound() {
    let c = codec();
    let note = "n".repeat(session::MAX_SEED_CHARS);
    let notes = session::MAX_SEEDED_SYSTEM_CHARS / session::MAX_SEED_CHARS;
    for _ in 0..notes {
        decode(&c, seed("system", &note)).expect("within the system characters");
    }
    let e = decode(&c, seed("system", &note)).expect_err("over the system characters");
    let error = json_of(&c.encode(CallEvent::fault(e)));
    assert_eq!(error[0]["error"]["param"], "item", "{}", error[0]);
    for _ in (notes as u32)..session::MAX_SEEDS {
        decode(&c, seed("user", "More about me.")).expect("within the count");
    }
    decode(&c, seed("user", "One too many.")).expect_err("over the count");
}

#[test]
fn remembered_items_are_bounded_in_bytes() {
    let c = codec();
    let big = "b".repeat(MAX_MESSAGE_BYTES / 2);
    for _ in 0..8 {
        decode(&c, seed("user", &big)).expect("valid");
    }
    let st = c.lock();
    assert!(st.item_bytes <= MAX_ITEM_BYTES, "{}", st.item_bytes);
    assert_eq!(
        st.item_bytes,
        st.items.iter().map(json_bytes).sum::<usize>()
    );
    assert!(st.items.len() < 8);
}

#[test]
fn g711_input_is_widened_to_24_khz() {
    let c = codec();
    let update = json!({"type":"session.update","session":{"audio":{"input":{"format":{"type":"audio/pcmu"}},
        "output":{"format":{"type":"audio/pcmu"}}}}});
    decode(&c, update).expect("valid");
    let audio = base64::engine::general_purpose::STANDARD.encode([0xffu8; 160]);
    match decode(
        &c,
        json!({"type":"input_audio_buffer.append","audio":audio}),
    )
    .map(|d| d.input)
    {
        Ok(Some(CallInput::Audio(chunk))) => assert_eq!(chunk.samples.len(), 480),
        other => panic!("{other:?}"),
    }
    let _ = c.encode(CallEvent::ResponseStarted {
        turn_id: 1,
        status: ResponseStatus::Thinking,
        eta_ms: None,
    });
    let out = json_of(&c.encode(CallEvent::ResponseAudio {
        turn_id: 1,
        seq: 0,
        first: true,
        last: false,
        samples: vec![0i16; 480].into(),
    }));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(out[0]["delta"].as_str().unwrap_or_default())
        .expect("base64");
    assert_eq!(bytes.len(), 160);
}
