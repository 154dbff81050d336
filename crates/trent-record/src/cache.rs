//! A small in-process cache for what every request looks up and almost never changes: the
//! session behind a bearer token, and the relationship facts an access decision needs
//! about a person.
//!
//! Why: on SQLite every statement is a hand-off to sqlx's connection thread and back
//! (two context switches and a futex wake each way); profiling 1,000 reads/s showed a
//! quarter of the server's CPU in those hand-offs, and the session, account and
//! relationship lookups were three of the seven statements of a read. A clinician opening
//! a record sends several requests about one person within a second; they now share one
//! lookup.
//!
//! Why it stays correct:
//! - every write path of this process that changes what is cached (sign-out, account
//!   changes, caseloads, opt-outs, carer grants, any resource commit, which may move a
//!   registration or care episode) calls [`Cache::invalidate_all`] or
//!   [`Cache::invalidate`] after its commit;
//! - a lookup that started before such a change cannot put its (older) answer in the cache
//!   afterwards: entries are stored only if the cache's generation is unchanged since the
//!   lookup began ([`Cache::generation`], [`Cache::put`]);
//! - entries expire after [`TTL`], which bounds how long a change made by *another*
//!   process on the same database (a `trent` command beside a running server) can go
//!   unseen. Nothing absent is cached: an unknown token is looked up every time.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an entry is trusted.
pub const TTL: Duration = Duration::from_secs(1);

/// Entries kept at most (the whole cache is dropped beyond it; it refills in a second).
const MAX_ENTRIES: usize = 100_000;

/// A map of values valid for [`TTL`], with a generation that every invalidation bumps.
#[derive(Debug)]
pub struct Cache<K, V> {
    inner: Mutex<Inner<K, V>>,
}

#[derive(Debug)]
struct Inner<K, V> {
    generation: u64,
    entries: HashMap<K, (Instant, V)>,
}

impl<K: Eq + Hash, V: Clone> Default for Cache<K, V> {
    fn default() -> Self {
        Cache {
            inner: Mutex::new(Inner {
                generation: 0,
                entries: HashMap::new(),
            }),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        // Nothing here can panic while the lock is held; a poisoned lock still holds a
        // consistent map.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value stored for `key` less than [`TTL`] ago.
    pub fn get(&self, key: &K) -> Option<V> {
        let g = self.lock();
        g.entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, v)| v.clone())
    }

    /// The generation to pass to [`Cache::put`]: read it *before* looking the value up.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Stores a value looked up since `generation` was read, unless something was
    /// invalidated meanwhile (then the value may predate the change, and is dropped).
    pub fn put(&self, generation: u64, key: K, value: V) {
        let mut g = self.lock();
        if g.generation != generation {
            return;
        }
        if g.entries.len() >= MAX_ENTRIES {
            g.entries.clear();
        }
        g.entries.insert(key, (Instant::now(), value));
    }

    /// Forgets one key (and fences off lookups in flight).
    pub fn invalidate(&self, key: &K) {
        let mut g = self.lock();
        g.generation += 1;
        g.entries.remove(key);
    }

    /// Forgets everything (and fences off lookups in flight).
    pub fn invalidate_all(&self) {
        let mut g = self.lock();
        g.generation += 1;
        g.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_that_raced_an_invalidation_is_not_stored() {
        let c: Cache<&str, i32> = Cache::default();
        let g = c.generation();
        c.put(g, "a", 1);
        assert_eq!(c.get(&"a"), Some(1));
        let g = c.generation();
        c.invalidate(&"a"); // a change committed while "a" was being looked up again
        c.put(g, "a", 2);
        assert_eq!(c.get(&"a"), None);
        let g = c.generation();
        c.put(g, "b", 3);
        c.invalidate_all();
        assert_eq!(c.get(&"b"), None);
    }

    #[test]
    fn entries_expire() {
        let c: Cache<&str, i32> = Cache::default();
        let g = c.generation();
        c.put(g, "a", 1);
        {
            let mut g = c.lock();
            let at = &mut g.entries.get_mut(&"a").expect("stored").0;
            *at = at
                .checked_sub(TTL)
                .expect("the clock is past its first second");
        }
        assert_eq!(c.get(&"a"), None);
    }
}
