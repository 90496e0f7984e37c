//! The router, in the style of axum: `route(type, uri, handler)` with plain
//! async handlers and shared state. A handler answers with anything
//! [`IntoReply`] (usually `Result<Response, E>`), so a request that expects
//! an answer always gets one. An unknown route gets an immediate NOT_FOUND
//! carrying the request id (netaio leaves the client waiting); one-shot
//! routes answer once and then are gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::metrics::{RouteCounts, UNMATCHED};
use crate::{
    CheckLayer, Frame, Handler, IntoReply, Layer, MessageType, Rejection, Request, FLAG_ONE_WAY,
};

enum Route<S> {
    Always(Arc<dyn Handler<S>>),
    Once(Mutex<Option<Arc<dyn Handler<S>>>>),
}

/// Handlers by `(message type, URI)`, with shared state `S`.
pub struct Router<S> {
    routes: HashMap<(MessageType, String), Route<S>>,
    state: Arc<S>,
    counts: Option<RouteCounts>,
}

impl<S> std::fmt::Debug for Router<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut routes: Vec<_> = self.routes.keys().collect();
        routes.sort();
        f.debug_struct("Router")
            .field("routes", &routes)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync + 'static> Router<S> {
    /// A router with no routes over `state`.
    pub fn new(state: S) -> Self {
        Self {
            routes: HashMap::new(),
            state: Arc::new(state),
            counts: None,
        }
    }

    /// Routes frames of `kind` on `uri` to `handler` (replacing an earlier route).
    #[must_use]
    pub fn route(mut self, kind: MessageType, uri: &str, handler: impl Handler<S>) -> Self {
        self.routes
            .insert((kind, uri.to_owned()), Route::Always(Arc::new(handler)));
        self
    }

    /// Routes frames of `kind` on `uri` to `handler` after `check`, which can
    /// refuse with its own response (a [`CheckLayer`] on one route). A
    /// route's check only adds to the server-wide auth layer: frames reach
    /// routing only after that layer accepted them, so no route can loosen it.
    #[must_use]
    pub fn route_checked<E: IntoReply>(
        mut self,
        kind: MessageType,
        uri: &str,
        check: impl Fn(&Request) -> Result<(), E> + Send + Sync + 'static,
        handler: impl Handler<S>,
    ) -> Self {
        let checked = CheckLayer::new(check).layer(Arc::new(handler));
        self.routes
            .insert((kind, uri.to_owned()), Route::Always(checked));
        self
    }

    /// Wraps every route registered so far in `layer` (later routes are not
    /// wrapped, as with axum's `route_layer`). Layers added later run first.
    #[must_use]
    #[allow(clippy::needless_pass_by_value)] // Builders take their parts, as axum's does.
    pub fn layer(mut self, layer: impl Layer<S>) -> Self {
        for route in self.routes.values_mut() {
            match route {
                Route::Always(handler) => *handler = layer.layer(handler.clone()),
                Route::Once(slot) => {
                    let slot = slot.get_mut().unwrap_or_else(PoisonError::into_inner);
                    if let Some(handler) = slot.take() {
                        *slot = Some(layer.layer(handler));
                    }
                }
            }
        }
        self
    }

    /// Routes the first such frame to `handler`; later ones get NOT_FOUND.
    #[must_use]
    pub fn route_once(mut self, kind: MessageType, uri: &str, handler: impl Handler<S>) -> Self {
        self.routes.insert(
            (kind, uri.to_owned()),
            Route::Once(Mutex::new(Some(Arc::new(handler)))),
        );
        self
    }

    /// Counts each answered request in `counts` (a server with metrics).
    pub(crate) fn count_into(&mut self, counts: RouteCounts) {
        self.counts = Some(counts);
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<S> {
        &self.state
    }

    /// Runs the handler for `request` and builds the reply frame: the
    /// handler's answer, NOT_FOUND for no route, nothing for a one-way frame.
    pub async fn dispatch(&self, request: Request) -> Option<Frame> {
        let key = (request.frame.kind, request.frame.uri.clone());
        let handler = match self.routes.get(&key) {
            Some(Route::Always(handler)) => Some(handler.clone()),
            Some(Route::Once(slot)) => slot.lock().unwrap_or_else(PoisonError::into_inner).take(),
            None => None,
        };
        let one_way = request.frame.flags & FLAG_ONE_WAY != 0;
        let frame = request.frame.clone();
        let routed = handler.is_some();
        let response = match handler {
            Some(handler) => handler.call(request, self.state.clone()).await,
            None => Rejection::NotFound.into_reply(),
        };
        if let Some(counts) = &self.counts {
            let (kind, uri) = key;
            let uri = if routed { uri } else { UNMATCHED.to_owned() };
            crate::metrics::count(counts, kind, uri, response.kind);
        }
        (!one_way).then(|| frame.reply(response.kind, response.body))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::Response;

    fn request(kind: MessageType, uri: &str) -> Request {
        Request {
            frame: Frame::new(kind, 42, uri, &b"ping"[..]),
            peer: "127.0.0.1:1".parse().unwrap(),
            peer_certificate: None,
            principal: None,
        }
    }

    #[tokio::test]
    async fn routes_by_type_and_uri_with_state() {
        let router = Router::new(String::from("state says hi"))
            .route(
                MessageType::REQUEST_URI,
                "echo",
                |r: Request, _s: Arc<String>| async move {
                    Response::new(MessageType::RESPOND_URI, r.frame.body)
                },
            )
            .route(
                MessageType::REQUEST_URI,
                "hello",
                |_r: Request, s: Arc<String>| async move {
                    Response::new(MessageType::RESPOND_URI, s.as_bytes().to_vec())
                },
            )
            .route(
                MessageType::DELETE_URI,
                "fails",
                |_r: Request, _s: Arc<String>| async {
                    Err::<Response, _>((MessageType::ERROR, "disk full"))
                },
            );
        let echo = router
            .dispatch(request(MessageType::REQUEST_URI, "echo"))
            .await
            .unwrap();
        assert_eq!(
            echo,
            Frame::new(MessageType::RESPOND_URI, 42, "echo", &b"ping"[..])
        );
        let hello = router
            .dispatch(request(MessageType::REQUEST_URI, "hello"))
            .await
            .unwrap();
        assert_eq!(&hello.body[..], b"state says hi");
        let missing = router
            .dispatch(request(MessageType::CREATE_URI, "echo"))
            .await
            .unwrap();
        assert_eq!(
            (missing.kind, missing.request_id, missing.uri.as_str()),
            (MessageType::NOT_FOUND, 42, "echo")
        );
        // A handler's error is answered too, never left unanswered.
        let failed = router
            .dispatch(request(MessageType::DELETE_URI, "fails"))
            .await
            .unwrap();
        assert_eq!(
            (failed.kind, &failed.body[..], failed.request_id),
            (MessageType::ERROR, &b"disk full"[..], 42)
        );
    }

    #[tokio::test]
    async fn checked_routes_refuse_before_the_handler_runs() {
        let router = Router::new(()).route_checked(
            MessageType::DELETE_URI,
            "records",
            |r: &Request| match r.peer_certificate {
                Some(_) => Ok(()),
                None => Err((MessageType::NOT_PERMITTED, "certificate required")),
            },
            |_r: Request, _s: Arc<()>| async { Response::new(MessageType::OK, "deleted") },
        );
        let refused = router
            .dispatch(request(MessageType::DELETE_URI, "records"))
            .await
            .unwrap();
        assert_eq!(
            (refused.kind, &refused.body[..]),
            (MessageType::NOT_PERMITTED, &b"certificate required"[..])
        );
        let mut with_cert = request(MessageType::DELETE_URI, "records");
        with_cert.peer_certificate = Some([7; 32]);
        let done = router.dispatch(with_cert).await.unwrap();
        assert_eq!((done.kind, done.request_id), (MessageType::OK, 42));
    }

    #[tokio::test]
    async fn one_shot_routes_answer_once_and_one_way_frames_get_nothing() {
        let router = Router::new(()).route_once(
            MessageType::REQUEST_URI,
            "ticket",
            |_r: Request, _s: Arc<()>| async { Response::new(MessageType::OK, Bytes::new()) },
        );
        let first = router
            .dispatch(request(MessageType::REQUEST_URI, "ticket"))
            .await
            .unwrap();
        assert_eq!(first.kind, MessageType::OK);
        let second = router
            .dispatch(request(MessageType::REQUEST_URI, "ticket"))
            .await
            .unwrap();
        assert_eq!(second.kind, MessageType::NOT_FOUND);
        let mut one_way = request(MessageType::REQUEST_URI, "nowhere");
        one_way.frame.flags = FLAG_ONE_WAY;
        assert_eq!(router.dispatch(one_way).await, None);
    }
}
