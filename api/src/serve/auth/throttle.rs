//! Throttling of failed authentication: wrong passwords (per user name and per client address)
//! and unknown or expired API tokens (per client address).
//!
//! The first few failures are free (typos). After that each failure makes the next attempt wait,
//! 1 s, 2 s, 4 s, ... up to [`MAX_DELAY`]; after [`Policy::lock_after`] failures the user or the
//! address is locked for [`LOCK`]. An attempt that comes too early is refused before any password
//! is checked (`429` with `Retry-After`), so guessing runs at a few tries a minute at best, and
//! the argon2 work cannot be used to load the daemon. Failures are forgotten [`FORGET_AFTER`]
//! after the last one, and a user's count is cleared by a successful login.
//!
//! The state is in memory: a daemon restart clears it (an attacker who can restart the daemon
//! has root already). Addresses are the TCP peer's: a proxy in front of berth would make every
//! client one address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The delay after the first failure beyond the free ones; it doubles with each further one.
const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest delay between attempts before the lock.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// How long a locked user or address is refused.
pub const LOCK: Duration = Duration::from_secs(15 * 60);
/// Failures older than this (counted from the last one) are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Records kept at most; beyond it the forgotten ones are swept out, and if that is not enough
/// the oldest go (an attacker with many addresses must not grow the daemon without bound).
const MAX_RECORDS: usize = 100_000;

/// Who failed: a user name (whether or not it exists: an unknown name is throttled like a known
/// one, so the answers tell nothing), or a client address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    User(String),
    /// An IPv4 address, or the /64 network of an IPv6 one (one host usually has a whole /64).
    Address(IpAddr),
}

impl Subject {
    pub fn address(ip: IpAddr) -> Subject {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 => v4,
        };
        Subject::Address(ip)
    }

    fn policy(&self) -> Policy {
        match self {
            Subject::User(_) => Policy { free: 3, lock_after: 10 },
            // Many people may share an address (NAT, an office): more slack before the delays.
            Subject::Address(_) => Policy { free: 10, lock_after: 30 },
        }
    }
}

/// How many failures are free, and after how many the subject is locked.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub free: u32,
    pub lock_after: u32,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: Instant,
    /// No attempt is taken before this.
    wait_until: Option<Instant>,
}

/// Why an attempt is refused before it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// When to try again, rounded up to whole seconds (at least 1).
    pub retry_after: Duration,
    /// Locked (not just slowed down).
    pub locked: bool,
}

impl Refusal {
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)
    }
}

/// What a recorded failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Still within the free failures.
    Free,
    /// The next attempt must wait this long.
    Delayed(Duration),
    /// This failure locked the subject for [`LOCK`].
    Locked,
}

/// The failure counts, shared by every request of the daemon.
#[derive(Debug, Default)]
pub struct Throttle {
    records: Mutex<HashMap<Subject, Record>>,
}

impl Throttle {
    /// `Err` if `subject` must not try now.
    pub fn check(&self, subject: &Subject, now: Instant) -> Result<(), Refusal> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let Some(record) = records.get(subject) else { return Ok(()) };
        match record.wait_until {
            Some(until) if until > now => Err(Refusal {
                retry_after: until - now,
                locked: record.failures >= subject.policy().lock_after,
            }),
            _ => Ok(()),
        }
    }

    /// Counts a failure of `subject`.
    pub fn failed(&self, subject: &Subject, now: Instant) -> AfterFailure {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() >= MAX_RECORDS && !records.contains_key(subject) {
            sweep(&mut records, now);
        }
        let record = records.entry(subject.clone()).or_insert(Record {
            failures: 0,
            last_failure: now,
            wait_until: None,
        });
        let locked_out = record.wait_until.is_some_and(|u| u > now);
        if !locked_out && now.duration_since(record.last_failure) > FORGET_AFTER {
            record.failures = 0;
        }
        record.failures += 1;
        record.last_failure = now;
        let policy = subject.policy();
        let after = if record.failures >= policy.lock_after {
            AfterFailure::Locked
        } else if record.failures > policy.free {
            let doublings = (record.failures - policy.free - 1).min(16);
            AfterFailure::Delayed((FIRST_DELAY * 2u32.pow(doublings)).min(MAX_DELAY))
        } else {
            AfterFailure::Free
        };
        record.wait_until = match after {
            AfterFailure::Free => None,
            AfterFailure::Delayed(d) => Some(now + d),
            AfterFailure::Locked => Some(now + LOCK),
        };
        after
    }

    /// A successful login of a user clears its failures (not its address's: one good account
    /// must not reset the count of guesses at others).
    pub fn succeeded(&self, subject: &Subject) {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).remove(subject);
    }
}

/// Drops forgotten records; if none was, the oldest tenth.
fn sweep(records: &mut HashMap<Subject, Record>, now: Instant) {
    records.retain(|_, r| {
        r.wait_until.is_some_and(|u| u > now) || now.duration_since(r.last_failure) <= FORGET_AFTER
    });
    if records.len() >= MAX_RECORDS {
        let mut times: Vec<Instant> = records.values().map(|r| r.last_failure).collect();
        times.sort();
        let cut = times[times.len() / 10];
        records.retain(|_, r| r.last_failure > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_lock_then_expire() {
        let t = Throttle::default();
        let user = Subject::User("alice".into());
        let mut now = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.check(&user, now), Ok(()));
            assert_eq!(t.failed(&user, now), AfterFailure::Free);
        }
        let mut expected = Duration::from_secs(1);
        for failure in 4..10 {
            assert_eq!(t.check(&user, now), Ok(()), "failure {failure}");
            assert_eq!(t.failed(&user, now), AfterFailure::Delayed(expected));
            let refusal = t.check(&user, now + expected / 2).unwrap_err();
            assert!(!refusal.locked);
            assert_eq!(refusal.retry_after, expected / 2);
            now += expected;
            expected *= 2;
        }
        assert_eq!(t.failed(&user, now), AfterFailure::Locked);
        let refusal = t.check(&user, now + Duration::from_secs(60)).unwrap_err();
        assert!(refusal.locked);
        assert_eq!(refusal.retry_after_secs(), LOCK.as_secs() - 60);
        // The lock ends; the count goes on (one more failure locks again) until forgotten.
        now += LOCK;
        assert_eq!(t.check(&user, now), Ok(()));
        assert_eq!(t.failed(&user, now), AfterFailure::Locked);
        now += LOCK + FORGET_AFTER + Duration::from_secs(1);
        assert_eq!(t.failed(&user, now), AfterFailure::Free);
    }

    #[test]
    fn success_clears_the_user_and_subjects_are_apart() {
        let t = Throttle::default();
        let now = Instant::now();
        let alice = Subject::User("alice".into());
        let bob = Subject::User("bob".into());
        for _ in 0..4 {
            t.failed(&alice, now);
        }
        assert!(t.check(&alice, now).is_err());
        assert_eq!(t.check(&bob, now), Ok(()));
        t.succeeded(&alice);
        assert_eq!(t.check(&alice, now), Ok(()));
        assert_eq!(t.failed(&alice, now), AfterFailure::Free);
    }

    #[test]
    fn addresses_have_more_slack_and_ipv6_counts_by_64() {
        let t = Throttle::default();
        let now = Instant::now();
        let a: IpAddr = "2001:db8:1:2::5".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(Subject::address(a), Subject::address(b));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(Subject::address(mapped), Subject::Address("192.0.2.7".parse().unwrap()));
        let subject = Subject::address(a);
        for _ in 0..10 {
            assert_eq!(t.failed(&subject, now), AfterFailure::Free);
        }
        assert_eq!(t.failed(&subject, now), AfterFailure::Delayed(FIRST_DELAY));
        assert_eq!(t.check(&Subject::address(b), now).unwrap_err().retry_after_secs(), 1);
    }
}
