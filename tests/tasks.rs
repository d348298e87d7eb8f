//! Work left running: a call's tasks end with the call, and a drain leaves none behind
//! (counted by tokio's runtime metrics against the count before the call).

use std::time::Duration;

use serde_json::json;

use callgate::config::ServeSettings;

use crate::util::{TestCall, spawn_gateway_until};

fn alive() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Waits (up to 10 s) for the runtime's live tasks to fall to `baseline`; the count seen.
async fn settles_to(baseline: usize) -> usize {
    for _ in 0..200 {
        if alive() <= baseline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    alive()
}

/// Starts a call and waits for the greeting's first audio: a response is in flight.
async fn call_speaking(addr: std::net::SocketAddr) -> TestCall {
    let mut call = TestCall::open(addr).await;
    call.send_json(json!({"type":"session.start","input":{"sampleRate":16000}}))
        .await;
    call.until_audio(0).await;
    call
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_task_of_a_call_outlives_it_or_the_drain() {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        let _ = stop_rx.await;
    };
    let (addr, serving) = spawn_gateway_until(ServeSettings::default(), |_| {}, stop).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let baseline = alive();
    // Hung up while the greeting is being spoken: its turn, speaker and writer all stop.
    let mut call = call_speaking(addr).await;
    call.send_json(json!({"type":"session.end"})).await;
    let ended = call
        .next_json(&["response.done", "audio.ack", "response.text.delta"])
        .await;
    assert_eq!(ended["type"], "session.ended", "{ended}");
    drop(call);
    assert_eq!(
        settles_to(baseline).await,
        baseline,
        "tasks left after the call ended"
    );
    // Two calls speaking when the drain begins: it ends once they have, and nothing stays.
    let calls = [call_speaking(addr).await, call_speaking(addr).await];
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("the drain ended")
        .expect("the server task");
    drop(calls);
    assert!(
        settles_to(baseline - 1).await < baseline,
        "tasks left after the drain"
    );
}
