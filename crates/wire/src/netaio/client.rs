//! A client for netaio servers: one request at a time, the reply matched by
//! URI and type as netaio's own client does (there is no request id);
//! notifications that arrive meanwhile are kept for [`NetaioClient::notification`].

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::{Decoded, NetaioCodec, NetaioFrame, NetaioHmac};
use crate::{Error, MessageType};

/// Notifications kept while waiting for replies, at most.
const MAX_KEPT: usize = 1024;

/// A connection to a netaio server.
#[derive(Debug)]
pub struct NetaioClient {
    framed: Framed<TcpStream, NetaioCodec>,
    hmac: Option<Arc<NetaioHmac>>,
    /// The server's address, whose nonce budget its replies count against.
    server: IpAddr,
    timeout: Duration,
    notifications: VecDeque<NetaioFrame>,
}

impl NetaioClient {
    /// Connects (plain TCP, as netaio speaks).
    ///
    /// # Errors
    /// Connection errors or the timeout.
    pub async fn connect(
        addr: SocketAddr,
        hmac: Option<Arc<NetaioHmac>>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| Error::Timeout(timeout))?
            .map_err(|error| Error::Io {
                context: "connect",
                error,
            })?;
        tessera_serve::tune(&tcp);
        Ok(Self {
            framed: Framed::new(tcp, NetaioCodec::default()),
            hmac,
            server: addr.ip(),
            timeout,
            notifications: VecDeque::new(),
        })
    }

    /// Sends `kind` on `uri` and waits for the reply with the same URI.
    ///
    /// # Errors
    /// [`Error::Timeout`], [`Error::Closed`], or [`Error::Auth`] for a reply
    /// whose MAC does not verify.
    pub async fn request(
        &mut self,
        kind: MessageType,
        uri: &[u8],
        content: &[u8],
    ) -> Result<NetaioFrame, Error> {
        let mut frame = NetaioFrame::new(
            kind.0,
            Bytes::copy_from_slice(uri),
            Bytes::copy_from_slice(content),
        );
        if let Some(hmac) = &self.hmac {
            hmac.sign(&mut frame);
        }
        self.framed.send(frame).await?;
        let deadline = self.timeout;
        tokio::time::timeout(deadline, async {
            loop {
                let frame = self.receive().await?;
                if frame.kind == MessageType::NOTIFY_URI.0 {
                    if self.notifications.len() < MAX_KEPT {
                        self.notifications.push_back(frame);
                    }
                    continue;
                }
                if frame.uri == uri {
                    return Ok(frame);
                }
            }
        })
        .await
        .map_err(|_| Error::Timeout(deadline))?
    }

    /// The next notification (NOTIFY_URI), waiting for one if none is kept.
    ///
    /// # Errors
    /// As [`NetaioClient::request`].
    pub async fn notification(&mut self) -> Result<NetaioFrame, Error> {
        if let Some(frame) = self.notifications.pop_front() {
            return Ok(frame);
        }
        let deadline = self.timeout;
        tokio::time::timeout(deadline, async {
            loop {
                let frame = self.receive().await?;
                if frame.kind == MessageType::NOTIFY_URI.0 {
                    return Ok(frame);
                }
            }
        })
        .await
        .map_err(|_| Error::Timeout(deadline))?
    }

    async fn receive(&mut self) -> Result<NetaioFrame, Error> {
        loop {
            match self.framed.next().await {
                None => return Err(Error::Closed),
                Some(Err(error)) => return Err(error),
                Some(Ok(Decoded::BadChecksum { .. })) => continue,
                Some(Ok(Decoded::Frame(frame))) => {
                    if let Some(hmac) = &self.hmac {
                        // Servers refuse unauthenticated frames with an
                        // unsigned AUTH_ERROR; it can only end a request.
                        let refusal = frame.kind == MessageType::AUTH_ERROR.0
                            && frame.auth.get("hmac").is_none();
                        if !refusal {
                            hmac.verify(&frame, self.server).map_err(Error::Auth)?;
                        }
                    }
                    return Ok(frame);
                }
            }
        }
    }
}
