//! Reading lines from a stream with a deadline per line (not per read: a peer
//! trickling bytes cannot stretch a step, defect D16), through the codec; and
//! writing them, flushed, under a deadline.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::codec::{decode, encode, Decoded, MAX_LINE};
use crate::Error;

/// Bytes asked of the stream per read.
const READ_CHUNK: usize = 1024;

/// Buffers at most one line (plus what arrived with it) from `R`.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buffer: Vec<u8>,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// Wraps a stream.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buffer: Vec::with_capacity(256),
        }
    }

    /// The stream, for writing.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The stream.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Encodes `line` and writes it, flushed, within `timeout`. A TLS stream
    /// buffers like a BufWriter: without the flush, a line the socket did not
    /// take at once waits for the next write, and the peer for an answer.
    ///
    /// # Errors
    /// Codec errors, [`Error::Timeout`], [`Error::Io`].
    pub async fn send_line(&mut self, line: &str, timeout: Duration) -> Result<(), Error>
    where
        R: AsyncWrite,
    {
        let bytes = encode(line)?;
        let sent = async {
            self.inner.write_all(&bytes).await?;
            self.inner.flush().await
        };
        tokio::time::timeout(timeout, sent)
            .await
            .map_err(|_| Error::Timeout("sending"))?
            .map_err(Error::from)
    }

    /// The next line, which must be complete by `deadline`.
    ///
    /// # Errors
    /// [`Error::Timeout`], [`Error::Eof`], framing errors, [`Error::Io`].
    pub async fn next_line(
        &mut self,
        deadline: Instant,
        what: &'static str,
    ) -> Result<String, Error> {
        loop {
            if let Decoded::Line(line, used) = decode(&self.buffer)? {
                self.buffer.drain(..used);
                return Ok(line);
            }
            // Read straight into the buffer's spare room (a chunk on the
            // stack would sit in every waiting session's future). Reading
            // into spare capacity only is cancel-safe, and the capacity stays
            // under MAX_LINE + 1 + READ_CHUNK bytes.
            let room = (MAX_LINE + 1).saturating_sub(self.buffer.len()).max(1);
            self.buffer.reserve_exact(room.min(READ_CHUNK));
            let read = tokio::time::timeout_at(deadline, self.inner.read_buf(&mut self.buffer))
                .await
                .map_err(|_| Error::Timeout(what))?
                .map_err(|e| match e.kind() {
                    // rustls reports a close without close_notify this way.
                    std::io::ErrorKind::UnexpectedEof => Error::Eof,
                    _ => Error::Io(e),
                })?;
            if read == 0 {
                return Err(Error::Eof);
            }
        }
    }
}
