//! Publish/subscribe state: which connections listen on which URI.
//!
//! Slow-consumer policy: a notification goes into the subscriber's outgoing
//! queue (`Outbox`, bounded in frames and bytes) without waiting; when that
//! queue or the server's byte budget is full the notification is dropped for
//! that subscriber only and counted, so one slow reader never delays the
//! publisher or other subscribers, nor grows the server's memory. Replies
//! are never dropped.
//! A connection's subscriptions are removed when it closes.
//!
//! `Topics::handle` is the built-in SUBSCRIBE/UNSUBSCRIBE/PUBLISH of both
//! the frame server and the netaio-compat server.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

use crate::outbox::Outbox;
use crate::{Frame, MessageType, Rejection, Response};

/// A connection's id within one server.
pub(crate) type ConnectionId = u64;

/// Subscribers by URI.
#[derive(Debug, Default)]
pub struct Topics {
    inner: Mutex<Inner>,
    dropped: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    by_uri: HashMap<String, HashMap<ConnectionId, Outbox>>,
    by_connection: HashMap<ConnectionId, HashSet<String>>,
}

impl Topics {
    /// Subscribes `connection` (whose outgoing queue is `queue`) to `uri`;
    /// `false` when it already holds `max_per_connection` subscriptions.
    pub(crate) fn subscribe(
        &self,
        connection: ConnectionId,
        queue: &Outbox,
        uri: &str,
        max_per_connection: usize,
    ) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let held = inner.by_connection.entry(connection).or_default();
        if !held.contains(uri) && held.len() >= max_per_connection {
            return false;
        }
        held.insert(uri.to_owned());
        inner
            .by_uri
            .entry(uri.to_owned())
            .or_default()
            .insert(connection, queue.clone());
        true
    }

    /// Removes one subscription.
    pub(crate) fn unsubscribe(&self, connection: ConnectionId, uri: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = inner.by_connection.get_mut(&connection) {
            held.remove(uri);
        }
        remove_subscriber(&mut inner.by_uri, uri, connection);
    }

    /// Removes every subscription of a closed connection.
    pub(crate) fn remove_connection(&self, connection: ConnectionId) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for uri in inner.by_connection.remove(&connection).unwrap_or_default() {
            remove_subscriber(&mut inner.by_uri, &uri, connection);
        }
    }

    /// Queues NOTIFY_URI with `body` for every subscriber of `uri`; returns
    /// how many got it (the others' queues were full).
    pub fn publish(&self, uri: &str, body: &Bytes) -> usize {
        let queues: Vec<Outbox> = {
            let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            inner
                .by_uri
                .get(uri)
                .map(|subscribers| subscribers.values().cloned().collect())
                .unwrap_or_default()
        };
        let mut delivered = 0;
        for queue in queues {
            let notification = Frame::new(MessageType::NOTIFY_URI, 0, uri, body.clone());
            if queue.try_send(notification).is_ok() {
                delivered += 1;
            } else {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        delivered
    }

    /// Answers a SUBSCRIBE/UNSUBSCRIBE/PUBLISH frame of `connection` (whose
    /// outgoing queue is `queue`); `None` for a frame of any other type,
    /// which goes on to the router.
    pub(crate) fn handle(
        &self,
        connection: ConnectionId,
        queue: &Outbox,
        frame: &Frame,
        max_subscriptions: usize,
    ) -> Option<Result<Response, Rejection>> {
        let confirm = |kind| Ok(Response::new(kind, Bytes::new()));
        Some(match frame.kind {
            MessageType::SUBSCRIBE_URI => {
                if self.subscribe(connection, queue, &frame.uri, max_subscriptions) {
                    confirm(MessageType::CONFIRM_SUBSCRIBE)
                } else {
                    Err(Rejection::TooManySubscriptions)
                }
            }
            MessageType::UNSUBSCRIBE_URI => {
                self.unsubscribe(connection, &frame.uri);
                confirm(MessageType::CONFIRM_UNSUBSCRIBE)
            }
            MessageType::PUBLISH_URI => {
                self.publish(&frame.uri, &frame.body);
                confirm(MessageType::OK)
            }
            _ => return None,
        })
    }

    /// Subscribers of `uri` now.
    pub fn subscribers(&self, uri: &str) -> usize {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.by_uri.get(uri).map_or(0, HashMap::len)
    }

    /// URIs with at least one subscriber.
    pub fn topics(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_uri
            .len()
    }

    /// Notifications dropped for slow subscribers so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn remove_subscriber(
    by_uri: &mut HashMap<String, HashMap<ConnectionId, Outbox>>,
    uri: &str,
    connection: ConnectionId,
) {
    if let Some(subscribers) = by_uri.get_mut(uri) {
        subscribers.remove(&connection);
        if subscribers.is_empty() {
            by_uri.remove(uri);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::outbox::OutputBudget;

    #[test]
    fn fan_out_slow_consumers_and_cleanup() {
        let topics = Topics::default();
        let budget = OutputBudget::new(1 << 20);
        let (fast, mut fast_rx) = Outbox::new(8, 1 << 16, &budget);
        let (slow, _slow_rx) = Outbox::new(1, 1 << 16, &budget);
        assert!(topics.subscribe(1, &fast, "news", 4));
        assert!(topics.subscribe(2, &slow, "news", 4));
        assert_eq!(topics.publish("news", &"a".into()), 2);
        // The slow subscriber's queue is full: it misses the second one, the fast one does not.
        assert_eq!(topics.publish("news", &"b".into()), 1);
        assert_eq!(topics.dropped(), 1);
        assert_eq!(&fast_rx.try_recv().unwrap().frame.body[..], b"a");
        assert_eq!(&fast_rx.try_recv().unwrap().frame.body[..], b"b");
        topics.unsubscribe(1, "news");
        assert_eq!(topics.subscribers("news"), 1);
        topics.remove_connection(2);
        assert_eq!((topics.subscribers("news"), topics.topics()), (0, 0));
    }

    #[test]
    fn a_subscriber_without_room_in_bytes_loses_notifications_not_memory() {
        let topics = Topics::default();
        let budget = OutputBudget::new(1 << 20);
        let (reader, _reader_rx) = Outbox::new(1_000, 1 << 20, &budget);
        let (never_reads, _kept) = Outbox::new(1_000, 100_000, &budget);
        assert!(topics.subscribe(1, &reader, "big", 4));
        assert!(topics.subscribe(2, &never_reads, "big", 4));
        let body = Bytes::from(vec![0u8; 40_000]);
        let delivered: usize = (0..5).map(|_| topics.publish("big", &body)).sum();
        // The one that never reads holds two (80 KB of its 100 KB); the rest are dropped.
        assert_eq!(delivered, 5 + 2);
        assert_eq!(topics.dropped(), 3);
    }

    #[test]
    fn subscriptions_per_connection_are_capped() {
        let topics = Topics::default();
        let (queue, _rx) = Outbox::new(1, 1 << 16, &OutputBudget::new(1 << 20));
        assert!(topics.subscribe(1, &queue, "a", 2));
        assert!(topics.subscribe(1, &queue, "b", 2));
        assert!(topics.subscribe(1, &queue, "a", 2));
        assert!(!topics.subscribe(1, &queue, "c", 2));
    }
}
