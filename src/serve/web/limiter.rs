//! Guessing logins is limited per client address. After [`FAILURES`] failed
//! attempts (a wrong login token, or a cookie that is no session) within
//! [`WINDOW`], the address is answered 429 for every credential it shows,
//! right ones included, until [`WINDOW`] after the failure that blocked it:
//! otherwise the answer to a right guess would still tell it apart.
//! A successful login neither counts nor clears the count (a student with a
//! valid link could otherwise guess other people's between two of their own).
//!
//! The same wrong credential again is no new guess and counts once: a tab
//! left open on a session that was rotated away polls with its dead cookie
//! every few seconds, and a classroom behind one NAT address must not be
//! locked out by it. Only a keyed 64-bit hash of a failed credential is kept
//! (the key is random per process), never the credential.
//!
//! IPv6 addresses count per /64 (one machine commonly holds a whole /64);
//! an IPv4-mapped address counts as its IPv4 address.
//!
//! Memory is bounded: at most [`MAX_ADDRESSES`] addresses, each with at most
//! [`FAILURES`] entries. When the table is full, addresses with nothing
//! live are dropped first, then the least recently seen unblocked one, and
//! only then a blocked one.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins one address may make within [`WINDOW`].
pub const FAILURES: usize = 20;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at once.
pub const MAX_ADDRESSES: usize = 4096;

struct Entry {
    /// (when, keyed hash of the credential), oldest first; never longer than the limit.
    failures: VecDeque<(Instant, u64)>,
    blocked_until: Option<Instant>,
    last_seen: Instant,
}

impl Entry {
    fn blocked(&self, now: Instant) -> Option<Duration> {
        self.blocked_until.filter(|until| *until > now).map(|until| until - now)
    }

    /// Forgets what the window no longer covers; true if nothing is left.
    fn expire(&mut self, now: Instant, window: Duration) -> bool {
        if self.blocked_until.is_some_and(|until| until <= now) {
            self.blocked_until = None;
        }
        while self.failures.front().is_some_and(|(at, _)| now.saturating_duration_since(*at) >= window) {
            self.failures.pop_front();
        }
        self.blocked_until.is_none() && self.failures.is_empty()
    }
}

pub struct Limiter {
    table: Mutex<HashMap<IpAddr, Entry>>,
    key: RandomState,
    failures: usize,
    window: Duration,
    max_addresses: usize,
}

/// What [`Limiter::failed`] made of a failure.
#[derive(Debug, PartialEq, Eq)]
pub enum Counted {
    /// The same credential failed before, within the window: no new guess.
    Again,
    /// One more failure, the address may go on.
    Once,
    /// This failure blocked the address (reported once, for the log).
    Blocked,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new(FAILURES, WINDOW, MAX_ADDRESSES)
    }
}

impl Limiter {
    pub fn new(failures: usize, window: Duration, max_addresses: usize) -> Limiter {
        Limiter { table: Mutex::default(), key: RandomState::new(), failures: failures.max(1), window, max_addresses: max_addresses.max(1) }
    }

    /// `Err(retry_after)` while `ip` is blocked.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.check_at(ip, Instant::now())
    }

    pub fn failed(&self, ip: IpAddr, credential: &str) -> Counted {
        self.failed_at(ip, credential, Instant::now())
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        // A panic elsewhere while the lock was held leaves plain data behind.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        match self.table().get(&address_key(ip)).and_then(|entry| entry.blocked(now)) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    fn failed_at(&self, ip: IpAddr, credential: &str, now: Instant) -> Counted {
        let key = address_key(ip);
        let hash = self.key.hash_one(credential);
        let mut table = self.table();
        if !table.contains_key(&key) && table.len() >= self.max_addresses {
            self.make_room(&mut table, now);
        }
        let entry = table.entry(key).or_insert_with(|| Entry { failures: VecDeque::new(), blocked_until: None, last_seen: now });
        entry.last_seen = now;
        entry.expire(now, self.window);
        // A request already past `check` when the block began.
        if entry.blocked(now).is_some() {
            return Counted::Again;
        }
        if entry.failures.iter().any(|(_, h)| *h == hash) {
            return Counted::Again;
        }
        entry.failures.push_back((now, hash));
        if entry.failures.len() < self.failures {
            return Counted::Once;
        }
        entry.failures.clear();
        entry.blocked_until = Some(now + self.window);
        Counted::Blocked
    }

    fn make_room(&self, table: &mut HashMap<IpAddr, Entry>, now: Instant) {
        table.retain(|_, entry| !entry.expire(now, self.window));
        if table.len() < self.max_addresses {
            return;
        }
        let victim = table.iter().min_by_key(|(_, entry)| (entry.blocked(now).is_some(), entry.last_seen)).map(|(ip, _)| *ip);
        if let Some(ip) = victim {
            table.remove(&ip);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table().len()
    }
}

/// The address a client is counted by.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

/// Retry-After's value: whole seconds, rounded up, at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn twenty_failures_block_the_address_for_the_window() {
        let limiter = Limiter::new(20, WINDOW, 100);
        let start = Instant::now();
        let client = ip("192.0.2.7");
        for n in 0..19 {
            assert_eq!(limiter.failed_at(client, &format!("guess-{n}"), start), Counted::Once);
            assert!(limiter.check_at(client, start).is_ok());
        }
        assert_eq!(limiter.failed_at(client, "guess-19", start + SECOND), Counted::Blocked);
        assert_eq!(limiter.check_at(client, start + SECOND), Err(WINDOW));
        assert_eq!(limiter.check_at(client, start + 31 * SECOND), Err(30 * SECOND));
        // Another address is not touched.
        assert!(limiter.check_at(ip("192.0.2.8"), start + SECOND).is_ok());
        // Failures that were in flight when the block began do not extend it, nor log again.
        assert_eq!(limiter.failed_at(client, "guess-20", start + 2 * SECOND), Counted::Again);
        assert_eq!(limiter.check_at(client, start + 2 * SECOND), Err(WINDOW - SECOND));
        // When the window has passed, the address starts from nothing.
        assert!(limiter.check_at(client, start + WINDOW + SECOND).is_ok());
        assert_eq!(limiter.failed_at(client, "guess-21", start + WINDOW + SECOND), Counted::Once);
        assert!(limiter.check_at(client, start + WINDOW + SECOND).is_ok());
    }

    #[test]
    fn failures_older_than_the_window_no_longer_count() {
        let limiter = Limiter::new(20, WINDOW, 100);
        let start = Instant::now();
        let client = ip("192.0.2.7");
        for n in 0..19 {
            limiter.failed_at(client, &format!("early-{n}"), start);
        }
        let later = start + WINDOW;
        for n in 0..19 {
            assert_eq!(limiter.failed_at(client, &format!("late-{n}"), later), Counted::Once);
        }
        assert!(limiter.check_at(client, later).is_ok());
        assert_eq!(limiter.failed_at(client, "late-19", later), Counted::Blocked);
    }

    #[test]
    fn the_same_wrong_credential_counts_once() {
        let limiter = Limiter::new(3, WINDOW, 100);
        let now = Instant::now();
        let client = ip("192.0.2.7");
        assert_eq!(limiter.failed_at(client, "stale-cookie", now), Counted::Once);
        for _ in 0..100 {
            assert_eq!(limiter.failed_at(client, "stale-cookie", now), Counted::Again);
        }
        assert!(limiter.check_at(client, now).is_ok());
        assert_eq!(limiter.failed_at(client, "b", now), Counted::Once);
        assert_eq!(limiter.failed_at(client, "c", now), Counted::Blocked);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let limiter = Limiter::new(2, WINDOW, 100);
        let now = Instant::now();
        limiter.failed_at(ip("2001:db8:1:2::1"), "a", now);
        assert_eq!(limiter.failed_at(ip("2001:db8:1:2:ffff::9"), "b", now), Counted::Blocked);
        assert!(limiter.check_at(ip("2001:db8:1:2::abcd"), now).is_err());
        assert!(limiter.check_at(ip("2001:db8:1:3::1"), now).is_ok());
        limiter.failed_at(ip("::ffff:198.51.100.1"), "a", now);
        assert_eq!(limiter.failed_at(ip("198.51.100.1"), "b", now), Counted::Blocked);
    }

    #[test]
    fn the_table_is_bounded_and_keeps_blocked_addresses_longest() {
        let limiter = Limiter::new(2, WINDOW, 10);
        let start = Instant::now();
        let blocked = ip("192.0.2.1");
        limiter.failed_at(blocked, "a", start);
        limiter.failed_at(blocked, "b", start);
        for n in 0..1000u32 {
            let other = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            limiter.failed_at(other, "x", start + Duration::from_millis(u64::from(n)));
            assert!(limiter.len() <= 10);
        }
        assert!(limiter.check_at(blocked, start + 2 * SECOND).is_err(), "the blocked address was kept");
        // Once the window has passed, stale addresses make room first.
        limiter.failed_at(ip("192.0.2.99"), "x", start + 3 * WINDOW);
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_seconds(Duration::from_millis(59_001)), 60);
        assert_eq!(retry_after_seconds(Duration::from_secs(60)), 60);
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }
}
