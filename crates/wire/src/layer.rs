//! Layers in the manner of tower: a layer wraps a handler in another that
//! runs before and after it. [`Router::layer`](crate::Router::layer) wraps
//! every route registered so far, as axum's `route_layer` does, so a router
//! can give its admin routes a policy and its public ones none.
//!
//! Route layers run after the server-wide auth layer accepted the frame:
//! they can only refuse more, never let through what it refused.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::{Handler, HandlerFuture, IntoReply, Rejection, Request, Response};

/// Wraps a handler in another.
pub trait Layer<S>: Send + Sync + 'static {
    /// The wrapped handler.
    fn layer(&self, inner: Arc<dyn Handler<S>>) -> Arc<dyn Handler<S>>;
}

/// A handler from a closure over the request and state, for layers.
struct FnHandler<F>(F);

impl<S, F> Handler<S> for FnHandler<F>
where
    F: Fn(Request, Arc<S>) -> HandlerFuture + Send + Sync + 'static,
{
    fn call(&self, request: Request, state: Arc<S>) -> HandlerFuture {
        (self.0)(request, state)
    }
}

fn handler<S, F>(f: F) -> Arc<dyn Handler<S>>
where
    S: 'static,
    F: Fn(Request, Arc<S>) -> HandlerFuture + Send + Sync + 'static,
{
    Arc::new(FnHandler(f))
}

/// Answers ERROR `handler timed out` when the handler takes longer than the
/// duration (a route-specific deadline under the server-wide one).
#[derive(Clone, Copy, Debug)]
pub struct TimeoutLayer(pub Duration);

impl<S: Send + Sync + 'static> Layer<S> for TimeoutLayer {
    fn layer(&self, inner: Arc<dyn Handler<S>>) -> Arc<dyn Handler<S>> {
        let limit = self.0;
        handler(move |request, state| {
            let call = inner.call(request, state);
            Box::pin(async move {
                tokio::time::timeout(limit, call)
                    .await
                    .unwrap_or_else(|_| Rejection::HandlerTimedOut.into_reply())
            })
        })
    }
}

/// At most this many calls of the wrapped handler run at once; more wait
/// their turn (under the server's handler deadline). Each route wrapped gets
/// its own limit, as with tower's `ConcurrencyLimitLayer`.
#[derive(Clone, Copy, Debug)]
pub struct ConcurrencyLimitLayer(pub usize);

impl<S: Send + Sync + 'static> Layer<S> for ConcurrencyLimitLayer {
    fn layer(&self, inner: Arc<dyn Handler<S>>) -> Arc<dyn Handler<S>> {
        let permits = Arc::new(Semaphore::new(self.0.clamp(1, Semaphore::MAX_PERMITS)));
        handler(move |request, state| {
            let permits = permits.clone();
            let inner = inner.clone();
            Box::pin(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return Rejection::Stopping.into_reply();
                };
                inner.call(request, state).await
            })
        })
    }
}

/// A check's verdict on a request: go on, or this reply instead.
type Check = dyn Fn(&Request) -> Result<(), Response> + Send + Sync;

/// Runs a check before the handler; a refusal is answered in its place.
#[derive(Clone)]
pub struct CheckLayer(Arc<Check>);

impl CheckLayer {
    /// A layer running `check`, whose refusal is anything [`IntoReply`].
    pub fn new<E: IntoReply>(
        check: impl Fn(&Request) -> Result<(), E> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(move |request| {
            check(request).map_err(IntoReply::into_reply)
        }))
    }
}

impl std::fmt::Debug for CheckLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckLayer")
    }
}

impl<S: Send + Sync + 'static> Layer<S> for CheckLayer {
    fn layer(&self, inner: Arc<dyn Handler<S>>) -> Arc<dyn Handler<S>> {
        let check = self.0.clone();
        handler(move |request, state| match check(&request) {
            Ok(()) => inner.call(request, state),
            Err(refusal) => Box::pin(std::future::ready(refusal)),
        })
    }
}

/// A Datalog policy the caller's capability token must satisfy, with the
/// request's facts `operation(<type name>)` and `resource(<URI>)` added, e.g.
/// `allow if right($r, "write"), resource($r)`. A frame without a
/// capability (the server-wide layer is not, or does not include,
/// [`CapabilityAuth`](crate::CapabilityAuth)) is refused: a policy never
/// passes by default.
#[derive(Clone, Debug)]
pub struct PolicyLayer {
    allow: Arc<str>,
}

impl PolicyLayer {
    /// A layer requiring `allow`.
    pub fn new(allow: &str) -> Self {
        Self {
            allow: Arc::from(allow),
        }
    }

    fn check(&self, request: &Request) -> Result<(), Rejection> {
        let Some(capability) = request.principal.as_ref().and_then(|p| p.capability()) else {
            return Err(Rejection::CapabilityRequired);
        };
        let operation = request
            .frame
            .kind
            .name()
            .map_or_else(|| request.frame.kind.0.to_string(), str::to_owned);
        let facts = [
            ("operation".to_owned(), operation),
            ("resource".to_owned(), request.frame.uri.clone()),
        ];
        match capability.check(&self.allow, &facts) {
            Ok(()) => Ok(()),
            Err(tessera_trust::Error::Policy) => Err(Rejection::Policy),
            Err(error) => {
                tracing::warn!(%error, "route policy could not run");
                Err(Rejection::PolicyError)
            }
        }
    }
}

impl<S: Send + Sync + 'static> Layer<S> for PolicyLayer {
    fn layer(&self, inner: Arc<dyn Handler<S>>) -> Arc<dyn Handler<S>> {
        let policy = self.clone();
        CheckLayer::new(move |request: &Request| policy.check(request)).layer(inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;

    use super::*;
    use crate::{Frame, MessageType, Router};

    fn request(uri: &str) -> Request {
        Request {
            frame: Frame::new(MessageType::REQUEST_URI, 9, uri, Bytes::new()),
            peer: "127.0.0.1:1".parse().unwrap(),
            peer_certificate: None,
            principal: None,
        }
    }

    #[tokio::test]
    async fn a_route_deadline_answers_error_in_time() {
        let router = Router::new(())
            .route(
                MessageType::REQUEST_URI,
                "stuck",
                |_: Request, _: Arc<()>| std::future::pending::<Response>(),
            )
            .layer(TimeoutLayer(Duration::from_millis(10)));
        let reply = router.dispatch(request("stuck")).await.unwrap();
        assert_eq!(
            (reply.kind, &reply.body[..], reply.request_id),
            (MessageType::ERROR, &b"handler timed out"[..], 9)
        );
    }

    #[tokio::test]
    async fn a_concurrency_limit_holds_and_layers_cover_earlier_routes_only() {
        #[derive(Default)]
        struct Gauge {
            running: AtomicUsize,
            most: AtomicUsize,
        }
        let busy = |_: Request, gauge: Arc<Gauge>| async move {
            let now = gauge.running.fetch_add(1, Ordering::SeqCst) + 1;
            gauge.most.fetch_max(now, Ordering::SeqCst);
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            gauge.running.fetch_sub(1, Ordering::SeqCst);
            Response::new(MessageType::OK, Bytes::new())
        };
        let router = Arc::new(
            Router::new(Gauge::default())
                .route(MessageType::REQUEST_URI, "limited", busy)
                .layer(ConcurrencyLimitLayer(1))
                .route(MessageType::REQUEST_URI, "free", busy),
        );
        let run = |uri: &'static str| {
            let calls = (0..8).map(|_| {
                let router = router.clone();
                async move { router.dispatch(request(uri)).await }
            });
            futures_util::future::join_all(calls)
        };
        assert!(run("limited").await.iter().all(Option::is_some));
        assert_eq!(router.state().most.swap(0, Ordering::SeqCst), 1);
        run("free").await;
        assert!(
            router.state().most.load(Ordering::SeqCst) > 1,
            "the later route is not limited"
        );
    }

    #[tokio::test]
    async fn policies_need_a_capability_that_satisfies_them() {
        use tessera_trust::{mint, MintRequest, SecretKey, Verifier};

        use crate::{CapabilityAuth, FrameAuth};

        let issuer = SecretKey::generate();
        let holder = SecretKey::generate();
        let token = mint(
            &issuer,
            &MintRequest {
                worker_public: holder.public().to_hex(),
                holder_id: "w".into(),
                facts: vec![("right".into(), vec!["jobs".into()])],
                revocation_id: "r".into(),
                expires_at: 4_000_000_000.0,
            },
        )
        .unwrap();
        let client = CapabilityAuth::client(holder, token);
        let server = CapabilityAuth::server(Verifier::new(&issuer.public()).unwrap());
        let policy = PolicyLayer::new("allow if right($r), resource($r)");
        let signed = |uri: &str| {
            let mut request = request(uri);
            client.sign(&mut request.frame);
            request.principal = server.authenticate(&request.frame).unwrap();
            request
        };
        assert!(policy.check(&signed("jobs")).is_ok());
        assert!(matches!(
            policy.check(&signed("admin")),
            Err(Rejection::Policy)
        ));
        assert!(matches!(
            policy.check(&request("jobs")),
            Err(Rejection::CapabilityRequired)
        ));
    }
}
