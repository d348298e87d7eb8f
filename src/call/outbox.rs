//! The one way out of a call: its events, in order, encoded by the call's protocol codec
//! for the socket's writer task (bounded), the call's event log, and the recording.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::events::CallEvent;
use super::recorder::Recorder;
use super::v1::Codec;
use crate::metrics::Metrics;

/// How long a send may wait for room in the writer's queue before the client is judged
/// to have stopped reading.
const SLOW_CLIENT_TIMEOUT: Duration = Duration::from_secs(3);

/// A cloneable handle that serialises everything the server says on one call.
#[derive(Clone)]
pub struct Outbox {
    /// The attached socket's writer queue; `None` while the call waits for a resume, when
    /// output is logged but not sent.
    tx: Arc<std::sync::Mutex<Option<mpsc::Sender<Message>>>>,
    /// The call's wire protocol.
    codec: Arc<dyn Codec>,
    /// The protocol events.jsonl is written in: callgate.v1 whatever the call speaks, so
    /// every call's record reads the same.
    log: Arc<dyn Codec>,
    /// Output audio `seq` counts across the whole call, whichever turn sends.
    out_seq: Arc<AtomicU32>,
    recorder: Option<Arc<Recorder>>,
    metrics: Arc<Metrics>,
    /// Fired when the client stops reading: the call ends.
    call_cancel: CancellationToken,
}

/// The client stopped reading or the socket closed; the call is over.
#[derive(Debug, thiserror::Error)]
#[error("client is gone or not reading")]
pub struct ClientGone;

impl Outbox {
    /// A new outbox feeding `tx` (the writer task's queue).
    pub fn new(
        tx: mpsc::Sender<Message>,
        codec: Arc<dyn Codec>,
        recorder: Option<Arc<Recorder>>,
        metrics: Arc<Metrics>,
        call_cancel: CancellationToken,
    ) -> Self {
        Self {
            tx: Arc::new(std::sync::Mutex::new(Some(tx))),
            log: codec.clone(),
            codec,
            out_seq: Arc::new(AtomicU32::new(0)),
            recorder,
            metrics,
            call_cancel,
        }
    }

    /// Writes the call's record with `log` instead of the wire codec (a call that speaks
    /// another protocol than callgate.v1).
    pub fn logging_with(mut self, log: Arc<dyn Codec>) -> Self {
        self.log = log;
        self
    }

    /// Attaches the call's recorder once the session exists.
    pub fn set_recorder(&mut self, recorder: Arc<Recorder>) {
        self.recorder = Some(recorder);
    }

    /// Sends to a new socket from now on (a resumed call).
    pub fn attach(&self, tx: mpsc::Sender<Message>) {
        *self.tx.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    }

    /// Stops sending (the socket dropped); output is still logged.
    pub fn detach(&self) {
        *self.tx.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn push(&self, msg: Message) -> Result<(), ClientGone> {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(tx) = tx else {
            return Ok(());
        };
        match tokio::time::timeout(SLOW_CLIENT_TIMEOUT, tx.send(msg)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ClientGone),
            Err(_) => {
                if !self.call_cancel.is_cancelled() {
                    self.metrics.slow_clients.inc();
                    tracing::warn!(
                        "client stopped reading: output queue full for 3 s; ending call"
                    );
                    self.call_cancel.cancel();
                }
                Err(ClientGone)
            }
        }
    }

    /// Says `event` to the client (and logs it to the call's events.jsonl).
    pub async fn emit(&self, event: CallEvent) -> Result<(), ClientGone> {
        if let CallEvent::Error { .. } = &event {
            self.metrics.errors_sent.inc();
        }
        if let Some(r) = &self.recorder {
            let logged = if Arc::ptr_eq(&self.log, &self.codec) {
                None
            } else {
                Some(self.log.encode(event.clone()))
            };
            let wire = self.codec.encode(event);
            for msg in logged.as_ref().unwrap_or(&wire) {
                if let Message::Text(text) = msg {
                    r.event(text.as_str());
                }
            }
            return self.push_all(wire).await;
        }
        self.push_all(self.codec.encode(event)).await
    }

    async fn push_all(&self, msgs: Vec<Message>) -> Result<(), ClientGone> {
        for msg in msgs {
            self.push(msg).await?;
        }
        Ok(())
    }

    /// Sends one frame of output audio for `turn_id` (numbered across the call).
    pub async fn audio(
        &self,
        turn_id: u32,
        first: bool,
        last: bool,
        samples: &[i16],
    ) -> Result<(), ClientGone> {
        let seq = self.out_seq.fetch_add(1, Ordering::Relaxed);
        if let Some(r) = &self.recorder {
            if first {
                // Where the response's audio begins, for the call's report.
                r.event(
                    &serde_json::json!({"type": "response.audio", "turnId": turn_id}).to_string(),
                );
            }
            r.output(samples);
        }
        let event = CallEvent::ResponseAudio {
            turn_id,
            seq,
            first,
            last,
            samples: samples.into(),
        };
        self.push_all(self.codec.encode(event)).await
    }

    /// Sends a raw WebSocket message (pong, close).
    pub async fn raw(&self, msg: Message) -> Result<(), ClientGone> {
        self.push(msg).await
    }
}
