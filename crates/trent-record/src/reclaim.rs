//! Freeing large values off the request path.
//!
//! Why: a transaction bundle's response holds a thousand resources as `serde_json`
//! trees, and freeing them — every map, key and string one by one — was about a tenth
//! of the server's time for a bundle (docs/benchmarks.md, issue 7), spent after the
//! response was made but before the handler's task was done with it. One background
//! thread frees them instead, on the core the request is not using; a bounded queue
//! keeps a burst from piling up memory (when it is full, the caller frees its own).

use std::sync::OnceLock;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

type Garbage = Box<dyn Send>;

/// Frees `value` on the background thread (or here, if its queue is full or the thread
/// could not be started).
pub fn later<T: Send + 'static>(value: T) {
    static QUEUE: OnceLock<Option<SyncSender<Garbage>>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = sync_channel::<Garbage>(64);
        std::thread::Builder::new()
            .name("trent-reclaim".into())
            .spawn(move || rx.into_iter().for_each(drop))
            .ok()
            .map(|_| tx)
    });
    match queue {
        Some(q) => match q.try_send(Box::new(value)) {
            Ok(()) => {}
            Err(TrySendError::Full(v) | TrySendError::Disconnected(v)) => drop(v),
        },
        None => drop(value),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn values_sent_away_are_freed() {
        // the last reference to each value goes to the background thread, which frees it
        let tracked: Vec<Arc<Vec<u8>>> = (0..200).map(|i| Arc::new(vec![i as u8; 1000])).collect();
        for t in &tracked {
            super::later(Arc::clone(t));
        }
        let t0 = Instant::now();
        while tracked.iter().any(|t| Arc::strong_count(t) > 1) {
            assert!(t0.elapsed() < Duration::from_secs(10), "not freed");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
