//! The handler contract, in the style of axum: what a handler sees (a
//! [`Request`]) and the async functions that answer it with anything
//! [`IntoReply`].

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use crate::{Frame, IntoReply, Principal, Response};

/// What a handler sees.
#[derive(Clone, Debug)]
pub struct Request {
    /// The frame, already authenticated by the server-wide layer.
    pub frame: Frame,
    /// The peer's address.
    pub peer: SocketAddr,
    /// SHA-256 of the peer's TLS certificate, when it presented one.
    pub peer_certificate: Option<[u8; 32]>,
    /// Who the server-wide auth layer says sent the frame, if it says.
    pub principal: Option<Principal>,
}

/// A boxed handler future.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

/// An async handler: `async fn(Request, Arc<S>) -> impl IntoReply`, e.g.
/// `Result<Response, E>` where `E: IntoReply`.
pub trait Handler<S>: Send + Sync + 'static {
    /// Runs the handler.
    fn call(&self, request: Request, state: Arc<S>) -> HandlerFuture;
}

impl<S, F, Fut> Handler<S> for F
where
    F: Fn(Request, Arc<S>) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoReply,
{
    fn call(&self, request: Request, state: Arc<S>) -> HandlerFuture {
        let answer = self(request, state);
        Box::pin(async move { answer.await.into_reply() })
    }
}
