//! [`Frame`]s as a tokio-util codec, for `Framed` over any byte stream.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::{Error, Frame, Limits};

/// Encodes and decodes frames under [`Limits`].
#[derive(Clone, Copy, Debug, Default)]
pub struct FrameCodec {
    limits: Limits,
}

impl FrameCodec {
    /// A codec enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self { limits }
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Error> {
        Frame::decode(src, &self.limits)
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), Error> {
        frame.encode(&self.limits, dst)
    }
}
