//! Ending a connection with its last bytes: the reply, close_notify and the
//! FIN leave together.
//!
//! tokio-rustls writes each `write` to the socket at once, and
//! `shutdown` writes close_notify on its own, so a reply followed by a
//! shutdown costs two writes and two TCP segments, each of which the kernel
//! carries through both ends of its stack. For a one-reply protocol such as
//! Gemini that is a fifth of the server's system calls, so the reply is
//! handed to rustls without I/O (it encrypts into its send queue) and the
//! shutdown flushes the records and the alert in one write.

use tokio::io::AsyncWriteExt;
use tokio_util::either::Either;

use crate::Stream;

/// Writes `last`, then ends the stream: close_notify for TLS, then FIN.
///
/// # Errors
/// The socket's, as `write_all` and `shutdown` report them.
pub async fn finish(stream: &mut Stream, last: &[u8]) -> std::io::Result<()> {
    match stream {
        Either::Left(plain) => {
            plain.write_all(last).await?;
            plain.shutdown().await
        }
        Either::Right(tls) => {
            let mut rest = last;
            while !rest.is_empty() {
                // Queued up to rustls's buffer limit; past it, written out.
                let queued = std::io::Write::write(&mut tls.get_mut().1.writer(), rest)?;
                if queued == 0 {
                    tls.write_all(rest).await?;
                    break;
                }
                rest = &rest[queued..];
            }
            tls.shutdown().await
        }
    }
}
