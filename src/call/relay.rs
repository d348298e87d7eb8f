//! A `session.resume` that reached a node other than the call's: the connection is relayed,
//! frame for frame, to the node that holds the call, which resumes it as if the client had
//! come back to it directly (the load balancer needs no affinity for reconnects).

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};

use super::driver::Link;
use crate::protocol::PROTOCOL_NAME;

/// Why the owner node could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The directory's address is not one a WebSocket URL can hold.
    #[error("bad node address {0:?}")]
    Address(String),
    /// The owner refused or did not answer the upgrade.
    #[error("owner node: {0}")]
    Connect(#[from] tokio_tungstenite::tungstenite::Error),
}

/// Where a call lives and how to ask it back.
pub struct RelayTarget {
    /// The owner node's address (host:port) from the directory.
    pub address: String,
    /// The client's resume, sent on as the first frame.
    pub session_id: String,
    /// The call's resume token (already checked against the directory's hash).
    pub resume_token: String,
    /// A token the owner accepts for the client's user, when calls need one.
    pub vouched: Option<String>,
}

/// Connects to the owner and sends it the resume; `link` is then relayed by [`pump`].
pub async fn connect(
    target: &RelayTarget,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    RelayError,
> {
    let url = format!("ws://{}/v1/call", target.address);
    let bad = || RelayError::Address(target.address.clone());
    let mut request = url.into_client_request().map_err(|_| bad())?;
    let headers = request.headers_mut();
    headers.insert(
        SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(PROTOCOL_NAME),
    );
    if let Some(token) = &target.vouched {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| bad())?;
        headers.insert(AUTHORIZATION, value);
    }
    let (mut owner, _) = tokio_tungstenite::connect_async(request).await?;
    let resume = serde_json::json!({
        "type": "session.resume",
        "sessionId": target.session_id,
        "resumeToken": target.resume_token,
    });
    owner.send(Message::text(resume.to_string())).await?;
    Ok(owner)
}

/// Relays frames both ways until either side closes; each side answers its own pings.
pub async fn pump<S>(mut link: Link, owner: S)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + futures_util::Sink<Message>
        + Unpin,
{
    let (mut to_owner, mut from_owner) = owner.split();
    let closing = loop {
        tokio::select! {
            frame = link.stream.next() => match frame {
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                    if to_owner.send(m).await.is_err() {
                        break None;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(close @ Message::Close(_))) => {
                    let _ = to_owner.send(close).await;
                    break None;
                }
                Some(Err(_)) | None => {
                    // The client vanished: the owner sees a drop and waits for a resume.
                    let _ = to_owner.close().await;
                    break None;
                }
            },
            frame = from_owner.next() => match frame {
                Some(Ok(close @ Message::Close(_))) => break Some(close),
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                    if link.writer_tx.send(m).await.is_err() {
                        break None;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break Some(Message::Close(None)),
            },
        }
    };
    if let Some(close) = closing {
        // The owner ended the call (or died): the client hears the same close.
        link.close_with(Vec::new(), close).await;
    }
}
