//! Login throttling: exponential back-off per account and per source address.
//!
//! Password guessing is slowed in two ways at once: per account (a targeted attack on one
//! person's account, from anywhere) and per source address (one machine trying many
//! accounts). After a number of free failures each further failure blocks the key for a
//! delay that doubles, up to a cap — a lockout window that ends by itself, so an attacker
//! cannot lock a clinician out for good, only slow down (OWASP Authentication Cheat Sheet,
//! "Account lockout"). Failures are forgotten after a quiet period.
//!
//! The throttle is pure over an injected clock: every method takes `now`, so tests run the
//! clock forward instead of sleeping, and the HTTP layer passes the real time.
//!
//! Use: call [`Throttle::check`] before verifying a password (a refused attempt is not a
//! password attempt and must not be recorded), then [`Throttle::record_failure`] or
//! [`Throttle::record_success`]. A success clears the account's failures but not the
//! address's, so an attacker cannot reset their address by signing in to an account of
//! their own between guesses.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

/// The throttle's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures per account before back-off starts.
    pub account_free_failures: u32,
    /// Failures per source address before back-off starts (higher: many people share an
    /// address behind an NHS gateway).
    pub address_free_failures: u32,
    /// The first block; each further failure doubles it.
    pub base_delay: Duration,
    /// The longest block.
    pub max_delay: Duration,
    /// Failures are forgotten after this long without a new failure.
    pub forget_after: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            account_free_failures: 5,
            address_free_failures: 20,
            base_delay: Duration::seconds(30),
            max_delay: Duration::minutes(15),
            forget_after: Duration::hours(1),
        }
    }
}

/// Which key is blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleKey {
    /// The account being signed in to.
    Account,
    /// The source address.
    Address,
}

/// An attempt refused by the throttle: which key and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// The blocked key (the account if both are blocked until the same instant).
    pub key: ThrottleKey,
    /// When attempts may resume (exclusive: at this instant they may).
    pub until: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyState {
    failures: u32,
    last_failure: DateTime<Utc>,
    blocked_until: Option<DateTime<Utc>>,
}

impl KeyState {
    fn blocked(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.blocked_until.filter(|u| now < *u)
    }
}

/// Failure counts and blocks per account and per address.
#[derive(Debug, Clone, Default)]
pub struct Throttle {
    policy: ThrottlePolicy,
    accounts: HashMap<String, KeyState>,
    addresses: HashMap<String, KeyState>,
}

fn delay(policy: &ThrottlePolicy, excess: u32) -> Duration {
    // excess ≥ 1: base · 2^(excess−1), capped; the shift is bounded so the factor fits an
    // i32, and an overflowing product is the cap.
    let factor: i32 = 1 << (excess - 1).min(30);
    policy
        .base_delay
        .checked_mul(factor)
        .filter(|d| *d <= policy.max_delay)
        .unwrap_or(policy.max_delay)
}

fn fail(
    map: &mut HashMap<String, KeyState>,
    key: String,
    free: u32,
    policy: &ThrottlePolicy,
    now: DateTime<Utc>,
) {
    let state = map.entry(key).or_insert(KeyState {
        failures: 0,
        last_failure: now,
        blocked_until: None,
    });
    if now - state.last_failure >= policy.forget_after && state.blocked(now).is_none() {
        state.failures = 0;
    }
    state.failures = state.failures.saturating_add(1);
    state.last_failure = now;
    if state.failures > free {
        let until = now + delay(policy, state.failures - free);
        state.blocked_until = Some(state.blocked_until.map_or(until, |u| u.max(until)));
    }
}

impl Throttle {
    /// A throttle with the given settings.
    pub fn new(policy: ThrottlePolicy) -> Self {
        Throttle {
            policy,
            accounts: HashMap::new(),
            addresses: HashMap::new(),
        }
    }

    /// The settings.
    pub fn policy(&self) -> &ThrottlePolicy {
        &self.policy
    }

    fn account_key(account: &str) -> String {
        account.to_lowercase()
    }

    /// Whether an attempt to sign in to `account` from `address` may proceed at `now`.
    /// Account names are compared case-insensitively.
    pub fn check(&self, account: &str, address: &str, now: DateTime<Utc>) -> Result<(), Throttled> {
        let a = self
            .accounts
            .get(&Self::account_key(account))
            .and_then(|s| s.blocked(now));
        let b = self.addresses.get(address).and_then(|s| s.blocked(now));
        match (a, b) {
            (None, None) => Ok(()),
            (Some(until), None) => Err(Throttled {
                key: ThrottleKey::Account,
                until,
            }),
            (None, Some(until)) => Err(Throttled {
                key: ThrottleKey::Address,
                until,
            }),
            (Some(ua), Some(ub)) if ua >= ub => Err(Throttled {
                key: ThrottleKey::Account,
                until: ua,
            }),
            (Some(_), Some(ub)) => Err(Throttled {
                key: ThrottleKey::Address,
                until: ub,
            }),
        }
    }

    /// Records a failed password attempt.
    pub fn record_failure(&mut self, account: &str, address: &str, now: DateTime<Utc>) {
        let policy = self.policy;
        fail(
            &mut self.accounts,
            Self::account_key(account),
            policy.account_free_failures,
            &policy,
            now,
        );
        fail(
            &mut self.addresses,
            address.to_string(),
            policy.address_free_failures,
            &policy,
            now,
        );
    }

    /// Records a successful sign-in: the account's failures are cleared; the address's are
    /// kept (see the module docs).
    pub fn record_success(&mut self, account: &str, _address: &str, _now: DateTime<Utc>) {
        self.accounts.remove(&Self::account_key(account));
    }

    /// Drops keys with no block in force and no failure within `forget_after`, bounding
    /// memory; call it periodically.
    pub fn prune(&mut self, now: DateTime<Utc>) {
        let forget = self.policy.forget_after;
        let keep = |s: &KeyState| s.blocked(now).is_some() || now - s.last_failure < forget;
        self.accounts.retain(|_, s| keep(s));
        self.addresses.retain(|_, s| keep(s));
    }

    /// How many keys (accounts + addresses) are tracked.
    pub fn tracked(&self) -> usize {
        self.accounts.len() + self.addresses.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-03-01T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn account_back_off_doubles_then_caps() {
        let mut th = Throttle::new(ThrottlePolicy::default());
        let now = t0();
        for _ in 0..5 {
            assert_eq!(th.check("amy", "10.0.0.1", now), Ok(()));
            th.record_failure("amy", "10.0.0.1", now);
        }
        // Five free failures; the sixth blocks 30 s.
        assert_eq!(th.check("amy", "10.0.0.1", now), Ok(()));
        th.record_failure("amy", "10.0.0.1", now);
        let blocked = th.check("AMY", "10.0.0.2", now).unwrap_err();
        assert_eq!(
            blocked,
            Throttled {
                key: ThrottleKey::Account,
                until: now + Duration::seconds(30)
            }
        );
        // Other accounts from the same address are not blocked.
        assert_eq!(th.check("bob", "10.0.0.1", now), Ok(()));
        // Each later failure doubles the block: 60, 120, 240, 480, then the 900 s cap.
        let mut now = now + Duration::seconds(30);
        for expected in [60, 120, 240, 480, 900, 900] {
            assert_eq!(th.check("amy", "10.0.0.1", now), Ok(()));
            th.record_failure("amy", "10.0.0.1", now);
            let b = th.check("amy", "10.0.0.1", now).unwrap_err();
            assert_eq!(b.until - now, Duration::seconds(expected));
            // Blocked one second before the end, free at the end.
            assert!(
                th.check("amy", "10.0.0.1", b.until - Duration::seconds(1))
                    .is_err()
            );
            now = b.until;
        }
        assert_eq!(th.check("amy", "10.0.0.1", now), Ok(()));
    }

    #[test]
    fn success_clears_the_account_and_quiet_time_forgets() {
        let mut th = Throttle::new(ThrottlePolicy::default());
        let now = t0();
        for _ in 0..5 {
            th.record_failure("amy", "a", now);
        }
        th.record_success("amy", "a", now);
        th.record_failure("amy", "a", now);
        assert_eq!(
            th.check("amy", "a", now),
            Ok(()),
            "count restarted after success"
        );
        for _ in 0..4 {
            th.record_failure("amy", "a", now);
        }
        // Five failures, then an hour of quiet: forgotten, so the next is free again.
        let later = now + Duration::hours(1);
        th.record_failure("amy", "a", later);
        assert_eq!(th.check("amy", "a", later), Ok(()));
        th.prune(later + Duration::hours(1));
        assert_eq!(th.tracked(), 0);
    }

    #[test]
    fn address_spraying_many_accounts_is_blocked() {
        let mut th = Throttle::new(ThrottlePolicy::default());
        let now = t0();
        for i in 0..20 {
            let account = format!("user{i}");
            assert_eq!(th.check(&account, "203.0.113.9", now), Ok(()));
            th.record_failure(&account, "203.0.113.9", now);
        }
        assert_eq!(th.check("user20", "203.0.113.9", now), Ok(()));
        th.record_failure("user20", "203.0.113.9", now);
        let b = th.check("user21", "203.0.113.9", now).unwrap_err();
        assert_eq!(b.key, ThrottleKey::Address);
        assert_eq!(b.until, now + Duration::seconds(30));
        // A success on an attacker's own account does not reset the address.
        th.record_success("mallory", "203.0.113.9", now);
        assert!(th.check("user22", "203.0.113.9", now).is_err());
        // The same accounts from another address are fine (one failure each).
        assert_eq!(th.check("user0", "198.51.100.1", now), Ok(()));
        // Pruning keeps keys still blocked.
        th.prune(now);
        assert!(th.tracked() > 0);
    }
}
