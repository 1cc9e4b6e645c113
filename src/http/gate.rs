//! Who gets a callback connection at all, decided at accept from the TCP peer alone.
//!
//! A peer that is neither in the allowlist nor a trusted proxy is closed at once: no request is
//! read and no TLS handshake is made, so an outsider costs an accept and a close. A direct peer
//! (not a trusted proxy: all traffic comes through those) may hold at most its share of the
//! connections ([`PerSource`]), so one address cannot take every slot. Refusals are counted in
//! `connections_refused_total{reason}` and logged at most once per [`LOG_EVERY`] per reason.

use std::collections::hash_map::Entry;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use prometheus::IntGauge;
use rustc_hash::FxHashMap;

use super::allowlist::{Allowlist, canonical};
use crate::metrics::{ConnRefusal, Metrics};

/// Refusals of one kind are logged at most this often (with how many there were).
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// The accept-time decision: the allowlist, the trusted proxies and the per-source limit.
pub struct Gate {
    allow: Allowlist,
    trusted: Allowlist,
    per_source: Arc<PerSource>,
    metrics: Metrics,
    outside_log: RateLog,
    per_source_log: RateLog,
}

/// What an admitted connection keeps until it ends: its place in the per-source count, and in
/// `connections_open`.
pub struct Admission {
    _source: Option<SourceGuard>,
    _open: OpenGuard,
}

struct OpenGuard(IntGauge);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Gate {
    pub fn new(
        allow: Allowlist,
        trusted: Allowlist,
        max_per_source: usize,
        metrics: Metrics,
    ) -> Self {
        Gate {
            allow,
            trusted,
            per_source: Arc::new(PerSource::new(max_per_source)),
            metrics,
            outside_log: RateLog::new(LOG_EVERY),
            per_source_log: RateLog::new(LOG_EVERY),
        }
    }

    /// Admits a connection from `peer`, or says why it is closed (counted and logged here).
    pub fn admit(&self, peer: IpAddr) -> Result<Admission, ConnRefusal> {
        let ip = canonical(peer);
        let source = if self.trusted.contains(ip) {
            None
        } else if !self.allow.contains(ip) {
            self.metrics.connections_refused.inc(ConnRefusal::Outside);
            if let Some(n) = self.outside_log.note() {
                tracing::info!(
                    source = %ip,
                    refused = n,
                    "connections from outside the allowlist closed at accept (one line per {}s at most)",
                    LOG_EVERY.as_secs()
                );
            }
            return Err(ConnRefusal::Outside);
        } else {
            match self.per_source.acquire(ip) {
                Some(guard) => Some(guard),
                None => {
                    self.metrics.connections_refused.inc(ConnRefusal::PerSource);
                    if let Some(n) = self.per_source_log.note() {
                        tracing::warn!(
                            source = %ip,
                            refused = n,
                            limit = self.per_source.limit,
                            "connections over --max-connections-per-source closed at accept (one line per {}s at most)",
                            LOG_EVERY.as_secs()
                        );
                    }
                    return Err(ConnRefusal::PerSource);
                }
            }
        };
        self.metrics.connections_open.inc();
        Ok(Admission {
            _source: source,
            _open: OpenGuard(self.metrics.connections_open.clone()),
        })
    }
}

/// The peer as the rest of the sink sees it: an IPv4 client of a dual-stack listener
/// (`::ffff:a.b.c.d`) as IPv4.
pub fn canonical_peer(peer: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical(peer.ip()), peer.port())
}

/// Open connections per source, each source at most `limit`. A source is an IPv4 address, or
/// an IPv6 /64 (what one host usually has to itself). Sharded to keep accepts on different
/// workers apart.
pub struct PerSource {
    limit: u32,
    shards: Box<[Mutex<FxHashMap<u128, u32>>]>,
}

const SHARDS: usize = 16;

/// A source's key: an IPv4 address in its IPv4-mapped form, or an IPv6 address with its last
/// 64 bits cleared (never equal to a mapped IPv4 address, whose last 64 bits are not zero).
fn source_key(ip: IpAddr) -> u128 {
    match canonical(ip) {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6) & !u128::from(u64::MAX),
    }
}

impl PerSource {
    pub fn new(limit: usize) -> Self {
        PerSource {
            limit: u32::try_from(limit).unwrap_or(u32::MAX).max(1),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    fn shard(&self, key: u128) -> &Mutex<FxHashMap<u128, u32>> {
        let h = ((key >> 64) as u64 ^ key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        &self.shards[(h >> 60) as usize % SHARDS]
    }

    /// A place for a connection from `ip`, or `None` when the source holds `limit` already.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<SourceGuard> {
        let key = source_key(ip);
        let mut shard = self.shard(key).lock().expect("per-source lock");
        let open = shard.entry(key).or_insert(0);
        if *open >= self.limit {
            return None;
        }
        *open += 1;
        Some(SourceGuard {
            table: self.clone(),
            key,
        })
    }

    /// Open connections of the source of `ip`.
    pub fn open(&self, ip: IpAddr) -> u32 {
        let key = source_key(ip);
        let shard = self.shard(key).lock().expect("per-source lock");
        shard.get(&key).copied().unwrap_or(0)
    }

    /// Sources with open connections.
    pub fn sources(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().expect("per-source lock").len())
            .sum()
    }
}

/// One connection's place in [`PerSource`], given back when dropped.
pub struct SourceGuard {
    table: Arc<PerSource>,
    key: u128,
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        let mut shard = self.table.shard(self.key).lock().expect("per-source lock");
        if let Entry::Occupied(mut e) = shard.entry(self.key) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// A log line at most once per period: [`RateLog::note`] counts an event and says, at most once
/// per period, how many there were since the last line.
pub struct RateLog {
    every_ms: u64,
    /// Milliseconds since [`EPOCH`] when the next line may be written.
    next_ms: AtomicU64,
    count: AtomicU64,
}

impl RateLog {
    pub fn new(every: Duration) -> Self {
        RateLog {
            every_ms: every.as_millis() as u64,
            next_ms: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Counts one event; `Some(events since the last line)` when a line is due.
    pub fn note(&self) -> Option<u64> {
        self.count.fetch_add(1, Ordering::Relaxed);
        let now = EPOCH.elapsed().as_millis() as u64;
        let next = self.next_ms.load(Ordering::Relaxed);
        if now < next {
            return None;
        }
        self.next_ms
            .compare_exchange(
                next,
                now + self.every_ms,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .ok()?;
        Some(self.count.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_source_holds_at_most_its_limit_and_gets_places_back() {
        let t = Arc::new(PerSource::new(2));
        let a1 = t.acquire(ip("203.0.113.1")).unwrap();
        let _a2 = t.acquire(ip("203.0.113.1")).unwrap();
        assert!(t.acquire(ip("203.0.113.1")).is_none());
        // Another address is counted apart.
        let b = t.acquire(ip("203.0.113.2")).unwrap();
        assert_eq!(t.open(ip("203.0.113.1")), 2);
        drop(a1);
        assert_eq!(t.open(ip("203.0.113.1")), 1);
        let _a3 = t.acquire(ip("203.0.113.1")).unwrap();
        drop(b);
        assert_eq!(t.open(ip("203.0.113.2")), 0);
        assert_eq!(t.sources(), 1, "a source without connections is forgotten");
    }

    #[test]
    fn ipv4_mapped_peers_count_as_ipv4_and_ipv6_by_64() {
        let t = Arc::new(PerSource::new(2));
        let _a = t.acquire(ip("198.51.100.7")).unwrap();
        let _b = t.acquire(ip("::ffff:198.51.100.7")).unwrap();
        assert!(t.acquire(ip("198.51.100.7")).is_none());
        // One /64 is one source; the next /64 is another.
        let _c = t.acquire(ip("2001:db8:0:1::1")).unwrap();
        let _d = t.acquire(ip("2001:db8:0:1:ffff::2")).unwrap();
        assert!(t.acquire(ip("2001:db8:0:1::3")).is_none());
        assert!(t.acquire(ip("2001:db8:0:2::1")).is_some());
        // The IPv6 /64 the mapped addresses live in (`::/64`) is not confused with them.
        let _e = t.acquire(ip("::1")).unwrap();
        let _f = t.acquire(ip("::2")).unwrap();
        assert!(t.acquire(ip("::3")).is_none());
    }

    #[test]
    fn places_are_given_back_across_threads() {
        let t = Arc::new(PerSource::new(1_000));
        std::thread::scope(|s| {
            for n in 0..8u8 {
                let t = t.clone();
                s.spawn(move || {
                    for i in 0..2_000u32 {
                        let addr = IpAddr::from([10, n, (i % 7) as u8, 1]);
                        let g = t.acquire(addr).expect("under the limit");
                        drop(g);
                    }
                });
            }
        });
        assert_eq!(t.sources(), 0);
    }

    #[test]
    fn the_gate_closes_outsiders_and_exempts_trusted_proxies() {
        let nets = |v: &[&str]| Allowlist::new(v.iter().map(|n| n.parse().unwrap()).collect());
        let m = Metrics::new();
        let gate = Gate::new(nets(&["127.0.0.1/32"]), nets(&["10.0.0.0/8"]), 1, m.clone());
        assert_eq!(
            gate.admit(ip("127.0.0.2")).err(),
            Some(ConnRefusal::Outside)
        );
        let first = gate.admit(ip("::ffff:127.0.0.1")).unwrap();
        assert_eq!(
            gate.admit(ip("127.0.0.1")).err(),
            Some(ConnRefusal::PerSource)
        );
        // Proxies are not limited per source.
        let proxied: Vec<_> = (0..5)
            .map(|_| gate.admit(ip("10.1.2.3")).unwrap())
            .collect();
        assert_eq!(m.connections_open.get(), 6);
        drop(first);
        drop(proxied);
        assert_eq!(m.connections_open.get(), 0);
        assert!(gate.admit(ip("127.0.0.1")).is_ok());
        assert_eq!(m.connections_refused.get(ConnRefusal::Outside), 1);
        assert_eq!(m.connections_refused.get(ConnRefusal::PerSource), 1);
    }

    #[test]
    fn a_rate_log_speaks_once_per_period_with_the_count() {
        let log = RateLog::new(Duration::from_millis(200));
        assert_eq!(log.note(), Some(1));
        assert_eq!(log.note(), None);
        assert_eq!(log.note(), None);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(log.note(), Some(3));
    }
}
