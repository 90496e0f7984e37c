//! A connection's outgoing queue, bounded in bytes as well as in frames.
//!
//! A count alone bounds nothing: 256 queued frames of 1 MiB are 256 MiB for
//! one peer that never reads. Every queued frame therefore holds permits for
//! its encoded size from two budgets: its connection's ([`Outbox::new`]'s
//! `bytes`) and an [`OutputBudget`] shared by all the connections of every
//! server given it — by default one for the whole process
//! ([`OutputBudget::process`]). The permits go back when the writer has
//! flushed the frame to the socket.
//!
//! Policy when a budget is spent: replies wait for room, and so does the
//! connection's reader behind them (backpressure: a peer that does not read
//! its replies stops being read); notifications to subscribers do not wait
//! and are dropped for that subscriber only (counted by [`crate::Topics`]).

use std::sync::Arc;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::Frame;

/// The sending side of one connection's queue; cloned for its handlers and
/// its subscriptions.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    frames: mpsc::Sender<Queued>,
    own: Arc<Semaphore>,
    own_bytes: usize,
    shared: OutputBudget,
}

/// Bytes of outgoing frames queued for sending, shared by every connection
/// of the servers given it (clones share one budget). When it is spent,
/// replies wait for room and their connections are not read (backpressure);
/// notifications to subscribers are dropped.
#[derive(Clone, Debug)]
pub struct OutputBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

/// The process's budget: every server that is not given one of its own.
pub const PROCESS_OUTPUT_BYTES: usize = 256 * 1024 * 1024;

/// A frame in the queue with the bytes it holds from both budgets.
#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) frame: Frame,
    held: Held,
}

/// Permits returned when dropped: keep it until the frame is flushed.
#[derive(Debug)]
pub(crate) struct Held {
    _own: OwnedSemaphorePermit,
    _shared: OwnedSemaphorePermit,
}

/// The queue is gone: its connection closed.
#[derive(Debug)]
pub(crate) struct Closed;

impl OutputBudget {
    /// A budget of `total` bytes (at least 1), for the servers given it.
    pub fn new(total: usize) -> Self {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// The budget of the whole process ([`PROCESS_OUTPUT_BYTES`]), which
    /// servers share unless given their own: several servers in one process
    /// together queue no more than it.
    pub fn process() -> Self {
        static PROCESS: std::sync::OnceLock<OutputBudget> = std::sync::OnceLock::new();
        PROCESS
            .get_or_init(|| Self::new(PROCESS_OUTPUT_BYTES))
            .clone()
    }

    /// Its size in bytes.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes not held by queued frames now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// Whether `other` is the same budget (a clone of it).
    pub fn is_shared_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.bytes, &other.bytes)
    }
}

impl Outbox {
    /// A queue of at most `frames` frames and `bytes` bytes, drawing on
    /// `shared` too; the receiver is the connection's writer's.
    pub(crate) fn new(
        frames: usize,
        bytes: usize,
        shared: &OutputBudget,
    ) -> (Self, mpsc::Receiver<Queued>) {
        let own_bytes = bytes.clamp(1, Semaphore::MAX_PERMITS);
        let (sender, receiver) = mpsc::channel(frames.max(1));
        let outbox = Self {
            frames: sender,
            own: Arc::new(Semaphore::new(own_bytes)),
            own_bytes,
            shared: shared.clone(),
        };
        (outbox, receiver)
    }

    /// Queues `frame`, waiting for room in both budgets and the queue.
    ///
    /// # Errors
    /// [`Closed`] when the connection's writer is gone.
    pub(crate) async fn send(&self, frame: Frame) -> Result<(), Closed> {
        let (own, shared) = self.costs(&frame);
        let own = self.own.clone().acquire_many_owned(own).await;
        let shared = self.shared.bytes.clone().acquire_many_owned(shared).await;
        let (Ok(own), Ok(shared)) = (own, shared) else {
            return Err(Closed);
        };
        let held = Held {
            _own: own,
            _shared: shared,
        };
        self.frames
            .send(Queued { frame, held })
            .await
            .map_err(|_| Closed)
    }

    /// Queues `frame` only if both budgets and the queue have room now.
    ///
    /// # Errors
    /// Gives the frame back when there is no room or the writer is gone.
    pub(crate) fn try_send(&self, frame: Frame) -> Result<(), Frame> {
        let (own, shared) = self.costs(&frame);
        let Ok(own) = self.own.clone().try_acquire_many_owned(own) else {
            return Err(frame);
        };
        let Ok(shared) = self.shared.bytes.clone().try_acquire_many_owned(shared) else {
            return Err(frame);
        };
        let held = Held {
            _own: own,
            _shared: shared,
        };
        self.frames
            .try_send(Queued { frame, held })
            .map_err(|error| error.into_inner().frame)
    }

    /// What `frame` takes from each budget: its encoded size, cut to the
    /// budget's total so that a frame larger than a budget still goes out
    /// alone rather than never.
    fn costs(&self, frame: &Frame) -> (u32, u32) {
        let size = frame.encoded_len().max(1);
        let cut = |total: usize| u32::try_from(size.min(total)).unwrap_or(u32::MAX);
        (cut(self.own_bytes), cut(self.shared.total))
    }
}

impl Queued {
    /// The frame, and the permits to drop once it is flushed.
    pub(crate) fn into_parts(self) -> (Frame, Held) {
        (self.frame, self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MessageType;

    fn frame(body: usize) -> Frame {
        Frame::new(MessageType::RESPOND_URI, 1, "x", vec![0u8; body])
    }

    #[tokio::test]
    async fn a_full_byte_budget_refuses_until_the_writer_flushes() {
        let shared = OutputBudget::new(1 << 20);
        let (outbox, mut receiver) = Outbox::new(100, 10_000, &shared);
        outbox.send(frame(6_000)).await.unwrap();
        // 100 frames would fit by count, but not by bytes.
        assert!(outbox.try_send(frame(6_000)).is_err());
        let (_, held) = receiver.recv().await.unwrap().into_parts();
        assert!(outbox.try_send(frame(6_000)).is_err(), "held until flushed");
        drop(held);
        outbox.try_send(frame(6_000)).unwrap();
    }

    #[tokio::test]
    async fn the_shared_budget_bounds_all_connections_together() {
        let shared = OutputBudget::new(10_000);
        let (first, _first_rx) = Outbox::new(100, 1 << 20, &shared);
        let (second, _second_rx) = Outbox::new(100, 1 << 20, &shared);
        first.send(frame(6_000)).await.unwrap();
        assert!(second.try_send(frame(6_000)).is_err());
        second.try_send(frame(3_000)).unwrap();
    }

    /// Servers that keep the default share one budget for the process, so
    /// several servers in one process queue no more than it together.
    #[test]
    fn servers_share_the_process_budget_unless_given_their_own() {
        let (one, other) = (
            crate::ServerOptions::default(),
            crate::ServerOptions::default(),
        );
        assert!(one.output_budget.is_shared_with(&other.output_budget));
        #[cfg(feature = "netaio-compat")]
        assert!(one
            .output_budget
            .is_shared_with(&crate::netaio::NetaioOptions::default().output_budget));
        assert_eq!(one.output_budget.total(), PROCESS_OUTPUT_BYTES);
        assert!(!OutputBudget::new(1 << 20).is_shared_with(&one.output_budget));
    }

    #[tokio::test]
    async fn a_frame_larger_than_the_budget_still_goes_out_alone() {
        let shared = OutputBudget::new(1 << 20);
        let (outbox, mut receiver) = Outbox::new(4, 1_000, &shared);
        outbox.send(frame(50_000)).await.unwrap();
        assert!(outbox.try_send(frame(10)).is_err());
        drop(receiver.recv().await.unwrap());
        outbox.try_send(frame(10)).unwrap();
    }

    #[tokio::test]
    async fn a_closed_writer_is_an_error_not_a_wait() {
        let shared = OutputBudget::new(1 << 20);
        let (outbox, receiver) = Outbox::new(4, 1_000, &shared);
        drop(receiver);
        assert!(outbox.send(frame(10)).await.is_err());
    }
}
