//! Tunnels: byte streams to named services over a tessera-wire link, what
//! `tessera proxy` runs on. The entry accepts plain connections from local
//! apps (on loopback only) and, for each, opens a connection to the exit
//! (mutual TLS, through the same entrance as the frame server: guard,
//! connection caps, handshake deadline). It sends one REQUEST_URI frame on
//! `tunnel/<service>`, signed by the auth layer if there is one; the exit
//! checks it (AUTH_ERROR), the guard's certificate rules (NOT_PERMITTED) and
//! its list of services (NOT_FOUND), connects, and answers RESPOND_URI. From
//! then on both relay raw bytes inside the TLS session.
//!
//! The exit reaches only the services it was configured with: it is never an
//! open proxy.

mod entry;
mod exit;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

pub use entry::{TunnelEntry, TunnelEntryOptions};
pub use exit::{TunnelExit, TunnelExitOptions, TunnelStats};

use crate::{Error, Frame, FrameAuth, FrameCodec, Limits, MessageType};

/// The URI prefix of tunnel requests: `tunnel/<service>`.
pub const TUNNEL_PREFIX: &str = "tunnel/";

/// The open exchange is a frame each way; nothing bigger is needed.
pub(crate) fn open_limits() -> Limits {
    Limits {
        max_frame: 16 * 1024,
        ..Limits::default()
    }
}

/// Sends the open request for `service` on `stream` and waits for the
/// answer. Returns the stream, now a raw byte pipe to the service, and any
/// bytes the service already sent (a greeting banner) that arrived with the
/// answer.
///
/// # Errors
/// [`Error::Refused`] with the exit's answer (NOT_FOUND, AUTH_ERROR, …),
/// [`Error::Auth`] when the answer's MAC does not verify, [`Error::Timeout`],
/// or I/O errors.
pub async fn open_tunnel<T: AsyncRead + AsyncWrite + Unpin>(
    stream: T,
    service: &str,
    auth: Option<&dyn FrameAuth>,
    deadline: Duration,
) -> Result<(T, BytesMut), Error> {
    let mut framed = Framed::new(stream, FrameCodec::new(open_limits()));
    let mut request = Frame::new(
        MessageType::REQUEST_URI,
        1,
        format!("{TUNNEL_PREFIX}{service}"),
        Bytes::new(),
    );
    if let Some(auth) = auth {
        auth.sign(&mut request);
    }
    let exchange = async {
        framed.send(request).await?;
        framed.next().await.ok_or(Error::Closed)?
    };
    let reply = tokio::time::timeout(deadline, exchange)
        .await
        .map_err(|_| Error::Timeout(deadline))??;
    // A refusal is reported even when its MAC does not verify (with a wrong
    // secret nothing from the exit verifies): believing a forged one only
    // stops a tunnel. Success must verify.
    if reply.kind != MessageType::RESPOND_URI {
        return Err(Error::Refused {
            kind: reply.kind,
            body: String::from_utf8_lossy(&reply.body).into_owned(),
        });
    }
    if let Some(auth) = auth {
        auth.verify(&reply).map_err(Error::Auth)?;
    }
    let parts = framed.into_parts();
    Ok((parts.io, parts.read_buf))
}
