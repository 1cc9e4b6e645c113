//! What callback connections hold before their request is decided, under one budget.
//!
//! A request is decided once its head is complete: the handler then knows the client and either
//! answers (and closes, for anyone not allowed) or reads a body only an allowed client may send.
//! Until then, what has arrived of the head is held: in actix's read buffer, and in
//! [`super::longuri`]'s buffer while a long target is scanned. Each connection may hold one head
//! (128 KiB, up to 256 KiB while a long target is scanned); [`HeldBudget`] bounds the sum over
//! all connections. When a read takes the sum past the budget, the connections whose heads have
//! been unfinished longest are closed until it fits again, and a callback arriving now (whose
//! head is complete within milliseconds) is the last to go. A closed connection's bytes count
//! until it is gone (its buffers are freed when its task next runs), and while the sum is over
//! the budget no connection reads on: memory stays flat however many connections wait.
//!
//! A head that arrives whole in one read is parsed at once and never counted: the budget costs
//! nothing on the usual path. [`Held`] wraps a connection and keeps its charge up to date after
//! every read, from what the inner stream reports as [`Undecided`].

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use rustc_hash::FxHashMap;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::gate::{LOG_EVERY, RateLog};
use crate::metrics::{ConnRefusal, Metrics};

/// A stream that knows how many bytes of a request not yet decided it has taken in (0 when no
/// request is in progress, or the current one is decided).
pub trait Undecided {
    fn undecided(&self) -> usize;
}

/// The budget shared by every callback connection (all workers).
pub struct HeldBudget {
    limit: usize,
    /// Charged by connections still reading their head.
    live: AtomicUsize,
    /// Charged by connections closed for the budget that have not let go of their buffers yet.
    doomed: AtomicUsize,
    next_seq: AtomicU64,
    /// Connections holding an unfinished head, oldest first.
    undecided: Mutex<BTreeMap<u64, Arc<Slot>>>,
    /// Connections waiting for room before they read on.
    waiting: Mutex<FxHashMap<u64, Waker>>,
    metrics: Metrics,
    log: RateLog,
}

/// One connection's entry while it holds an unfinished head.
#[derive(Default)]
struct Slot {
    /// Charged to `live`.
    bytes: AtomicUsize,
    /// Moved to `doomed` when evicted.
    doomed: AtomicUsize,
    evicted: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl HeldBudget {
    pub fn new(limit: usize, metrics: Metrics) -> Arc<Self> {
        metrics.held_budget_bytes.set(limit as i64);
        metrics.held_bytes.set(0);
        Arc::new(HeldBudget {
            limit,
            live: AtomicUsize::new(0),
            doomed: AtomicUsize::new(0),
            next_seq: AtomicU64::new(0),
            undecided: Mutex::default(),
            waiting: Mutex::default(),
            metrics,
            log: RateLog::new(LOG_EVERY),
        })
    }

    /// Bytes held now (including those of connections closed but not yet gone).
    pub fn used(&self) -> usize {
        self.live.load(Ordering::Acquire) + self.doomed.load(Ordering::Acquire)
    }

    fn over(&self) -> bool {
        self.used() > self.limit
    }

    fn show(&self) {
        self.metrics.held_bytes.set(self.used() as i64);
    }

    /// Gives back `n` bytes of `counter`; wakes the connections waiting for room when there is.
    fn give_back(&self, counter: &AtomicUsize, n: usize) {
        if n == 0 {
            return;
        }
        counter.fetch_sub(n, Ordering::AcqRel);
        self.show();
        if !self.over() {
            let waiting: Vec<Waker> = {
                let mut w = self.waiting.lock().expect("waiting lock");
                if w.is_empty() {
                    return;
                }
                w.drain().map(|(_, w)| w).collect()
            };
            waiting.into_iter().for_each(Waker::wake);
        }
    }

    /// Closes the connections whose heads have been unfinished longest until the live bytes fit
    /// the budget. Their bytes count as `doomed` until they are gone, and until then no
    /// connection reads on ([`Hold::may_read`]).
    fn evict_oldest(&self) {
        if self.live.load(Ordering::Acquire) <= self.limit {
            return;
        }
        let mut evicted = 0u64;
        {
            let mut undecided = self.undecided.lock().expect("held lock");
            while self.live.load(Ordering::Acquire) > self.limit {
                let Some((_, slot)) = undecided.pop_first() else {
                    break;
                };
                slot.evicted.store(true, Ordering::Release);
                let b = slot.bytes.swap(0, Ordering::AcqRel);
                slot.doomed.fetch_add(b, Ordering::AcqRel);
                // Doomed first: the total never looks smaller than it is.
                self.doomed.fetch_add(b, Ordering::AcqRel);
                self.live.fetch_sub(b, Ordering::AcqRel);
                if let Some(w) = slot.waker.lock().expect("waker lock").take() {
                    w.wake();
                }
                evicted += 1;
            }
        }
        if evicted > 0 {
            self.metrics
                .connections_refused
                .inc_by(ConnRefusal::HeldBytes, evicted);
            if let Some(n) = self.log.note() {
                tracing::warn!(
                    closed = n,
                    budget = self.limit,
                    "unfinished request heads held more than --max-held-bytes: the connections \
                     waiting longest were closed (one line per {}s at most)",
                    LOG_EVERY.as_secs()
                );
            }
        }
    }
}

/// One connection's charge against the [`HeldBudget`].
pub struct Hold {
    budget: Arc<HeldBudget>,
    id: u64,
    /// Registered while the connection holds an unfinished head.
    slot: Option<(u64, Arc<Slot>)>,
    charged: usize,
    waits: bool,
}

impl Hold {
    pub fn new(budget: Arc<HeldBudget>) -> Self {
        let id = budget.next_seq.fetch_add(1, Ordering::Relaxed);
        Hold {
            budget,
            id,
            slot: None,
            charged: 0,
            waits: false,
        }
    }

    /// Whether the budget closed this connection.
    pub fn evicted(&self) -> bool {
        self.slot
            .as_ref()
            .is_some_and(|(_, s)| s.evicted.load(Ordering::Acquire))
    }

    /// Whether the connection may read now. Over the budget it may not: the oldest unfinished
    /// heads are closed (unless closed ones still hold their buffers) and the connection waits
    /// until their bytes are given back, so memory stays within the budget even before closed
    /// connections are gone.
    pub fn may_read(&mut self, waker: &Waker) -> bool {
        if !self.budget.over() {
            return true;
        }
        self.budget.evict_oldest();
        let mut waiting = self.budget.waiting.lock().expect("waiting lock");
        // Room may have come between the check and the lock: then read on.
        if !self.budget.over() {
            return true;
        }
        waiting.insert(self.id, waker.clone());
        self.waits = true;
        false
    }

    /// Records that the connection now holds `bytes` of an unfinished head (0: none). Returns
    /// `false` when the connection is to be closed (it was, or has just been, evicted).
    pub fn set(&mut self, bytes: usize, waker: &Waker) -> bool {
        if self.evicted() {
            return false;
        }
        if bytes == 0 {
            self.release();
            return true;
        }
        let slot = match &self.slot {
            Some((_, slot)) => slot.clone(),
            None => {
                let seq = self.budget.next_seq.fetch_add(1, Ordering::Relaxed);
                let slot = Arc::new(Slot::default());
                self.budget
                    .undecided
                    .lock()
                    .expect("held lock")
                    .insert(seq, slot.clone());
                self.slot = Some((seq, slot.clone()));
                slot
            }
        };
        // A head only grows until it is decided; a smaller figure (a buffer given back) keeps
        // the charge as it is.
        if bytes > self.charged {
            // The total first: an eviction that takes the slot's bytes finds them counted there.
            let more = bytes - self.charged;
            self.budget.live.fetch_add(more, Ordering::AcqRel);
            slot.bytes.fetch_add(more, Ordering::AcqRel);
            self.charged = bytes;
            self.budget.show();
        }
        {
            let mut w = slot.waker.lock().expect("waker lock");
            if !w.as_ref().is_some_and(|w| w.will_wake(waker)) {
                *w = Some(waker.clone());
            }
        }
        self.budget.evict_oldest();
        !slot.evicted.load(Ordering::Acquire)
    }

    fn release(&mut self) {
        if let Some((seq, slot)) = self.slot.take() {
            self.budget
                .undecided
                .lock()
                .expect("held lock")
                .remove(&seq);
            self.budget
                .give_back(&self.budget.live, slot.bytes.swap(0, Ordering::AcqRel));
            self.budget
                .give_back(&self.budget.doomed, slot.doomed.swap(0, Ordering::AcqRel));
        }
        self.charged = 0;
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.release();
        if self.waits {
            self.budget
                .waiting
                .lock()
                .expect("waiting lock")
                .remove(&self.id);
        }
    }
}

fn evicted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "closed: unfinished request heads over --max-held-bytes",
    )
}

/// A connection under the [`HeldBudget`]; `K` is kept for as long as the connection lives (its
/// admission).
pub struct Held<IO, K> {
    io: IO,
    hold: Hold,
    _keep: K,
}

impl<IO, K> Held<IO, K> {
    pub fn new(io: IO, budget: Arc<HeldBudget>, keep: K) -> Self {
        Held {
            io,
            hold: Hold::new(budget),
            _keep: keep,
        }
    }
}

impl<IO: AsyncRead + Undecided + Unpin, K: Unpin> AsyncRead for Held<IO, K> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.hold.evicted() {
            return Poll::Ready(Err(evicted()));
        }
        if !this.hold.may_read(cx.waker()) {
            return if this.hold.evicted() {
                Poll::Ready(Err(evicted()))
            } else {
                Poll::Pending
            };
        }
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        // The inner stream may have taken bytes in even when it has nothing to give yet.
        if !this.hold.set(this.io.undecided(), cx.waker()) {
            return Poll::Ready(Err(evicted()));
        }
        read
    }
}

impl<IO: AsyncWrite + Unpin, K: Unpin> AsyncWrite for Held<IO, K> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count::default());
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn heads_are_charged_while_unfinished_and_released_when_decided() {
        let m = Metrics::new();
        let budget = HeldBudget::new(1_000, m.clone());
        let (_, w) = waker();
        let mut a = Hold::new(budget.clone());
        assert!(a.set(0, &w), "nothing held: nothing charged");
        assert_eq!(budget.used(), 0);
        assert!(budget.undecided.lock().unwrap().is_empty());
        assert!(a.set(300, &w));
        assert!(a.set(500, &w));
        assert!(a.set(400, &w), "a smaller figure keeps the charge");
        assert_eq!(budget.used(), 500);
        assert_eq!(m.held_bytes.get(), 500);
        assert_eq!(m.held_budget_bytes.get(), 1_000);
        assert!(a.set(0, &w));
        assert_eq!(budget.used(), 0);
        assert!(budget.undecided.lock().unwrap().is_empty());
        // Dropped while holding: given back.
        let mut b = Hold::new(budget.clone());
        assert!(b.set(700, &w));
        drop(b);
        assert_eq!(budget.used(), 0);
        assert_eq!(m.held_bytes.get(), 0);
    }

    #[test]
    fn past_the_budget_the_oldest_unfinished_heads_are_closed() {
        let m = Metrics::new();
        let budget = HeldBudget::new(1_000, m.clone());
        let (old_wakes, old_w) = waker();
        let (_, w) = waker();
        let mut old = Hold::new(budget.clone());
        let mut middle = Hold::new(budget.clone());
        let mut decided = Hold::new(budget.clone());
        let mut new = Hold::new(budget.clone());
        assert!(old.set(400, &old_w));
        assert!(middle.set(400, &w));
        // A head that was decided gave its bytes back and is not in the running.
        assert!(decided.set(100, &w));
        assert!(decided.set(0, &w));
        assert!(new.set(100, &w));
        assert_eq!(budget.used(), 900);
        // The newest connection grows past the budget: the oldest goes, woken to notice.
        assert!(new.set(300, &w));
        assert!(old.evicted());
        assert_eq!(old_wakes.0.load(Ordering::Relaxed), 1);
        assert!(!middle.evicted() && !new.evicted());
        // Its bytes count until it is gone.
        assert_eq!(budget.used(), 1_100);
        assert!(!old.set(450, &old_w), "an evicted connection stays closed");
        assert_eq!(m.connections_refused.get(ConnRefusal::HeldBytes), 1);
        drop(old);
        assert_eq!(budget.used(), 700);
        // Growing alone past the budget: the older ones go first, then itself.
        assert!(!new.set(1_200, &w));
        assert!(middle.evicted());
        assert_eq!(m.connections_refused.get(ConnRefusal::HeldBytes), 3);
        drop((middle, new, decided));
        assert_eq!(budget.used(), 0);
        assert_eq!(m.held_bytes.get(), 0);
    }

    #[test]
    fn the_budget_holds_under_threads() {
        let m = Metrics::new();
        let budget = HeldBudget::new(64 << 10, m.clone());
        std::thread::scope(|s| {
            for _ in 0..8 {
                let budget = budget.clone();
                s.spawn(move || {
                    let (_, w) = waker();
                    for i in 0..2_000usize {
                        let mut h = Hold::new(budget.clone());
                        for step in 1..=(i % 5 + 1) {
                            if !h.set(step * 4096, &w) {
                                break;
                            }
                        }
                        if i % 3 == 0 {
                            h.set(0, &w);
                        }
                        drop(h);
                    }
                });
            }
        });
        assert_eq!(budget.used(), 0);
        assert!(budget.undecided.lock().unwrap().is_empty());
        assert_eq!(m.held_bytes.get(), 0);
    }

    /// A stream that reports a fixed number of undecided bytes and never has data.
    struct Waiting(usize);

    impl AsyncRead for Waiting {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            _buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    impl Undecided for Waiting {
        fn undecided(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn an_evicted_connection_reads_an_error() {
        let budget = HeldBudget::new(1_000, Metrics::new());
        let (wakes, w) = waker();
        let mut cx = Context::from_waker(&w);
        let mut mem = [0u8; 16];
        let mut a = Held::new(Waiting(800), budget.clone(), ());
        let mut buf = ReadBuf::new(&mut mem);
        assert!(Pin::new(&mut a).poll_read(&mut cx, &mut buf).is_pending());
        let mut b = Held::new(Waiting(800), budget.clone(), ());
        let mut buf = ReadBuf::new(&mut mem);
        assert!(Pin::new(&mut b).poll_read(&mut cx, &mut buf).is_pending());
        assert_eq!(wakes.0.load(Ordering::Relaxed), 1, "the older one is woken");
        let mut buf = ReadBuf::new(&mut mem);
        match Pin::new(&mut a).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted),
            other => panic!("{other:?}"),
        }
        // Until the evicted one is gone, nobody reads on: a third connection waits for room.
        let (c_wakes, c_w) = waker();
        let mut c = Held::new(Waiting(100), budget.clone(), ());
        let mut buf = ReadBuf::new(&mut mem);
        let mut c_cx = Context::from_waker(&c_w);
        assert!(Pin::new(&mut c).poll_read(&mut c_cx, &mut buf).is_pending());
        assert_eq!(budget.used(), 1_600, "it has not read");
        drop(a);
        assert_eq!(budget.used(), 800);
        assert_eq!(
            c_wakes.0.load(Ordering::Relaxed),
            1,
            "room: the waiting one is woken"
        );
        let mut buf = ReadBuf::new(&mut mem);
        assert!(Pin::new(&mut c).poll_read(&mut c_cx, &mut buf).is_pending());
        assert_eq!(budget.used(), 900);
        drop((b, c));
        assert_eq!(budget.used(), 0);
        assert!(budget.waiting.lock().unwrap().is_empty());
    }
}
