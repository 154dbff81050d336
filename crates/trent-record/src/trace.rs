//! Step timings for the write path, on standard error when `TRENT_TRACE` is set (the same
//! switch the PHM and Observatory engines use). Why: a transaction bundle's time is spread
//! over parsing, planning, decisions, the commit and the response, and tuning needs to see
//! which; the lines carry step names, counts and milliseconds only, never row-level data.

use std::sync::OnceLock;
use std::time::Instant;

/// Whether `TRENT_TRACE` is set (read once).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("TRENT_TRACE").is_some())
}

/// Named steps and their milliseconds, printed as one line by [`Steps::done`].
pub struct Steps {
    what: String,
    last: Instant,
    steps: Vec<(&'static str, f64)>,
}

impl Steps {
    /// Starts timing `what` (a label such as "bundle 1000 entries"; no data).
    pub fn start(what: impl FnOnce() -> String) -> Option<Steps> {
        enabled().then(|| Steps {
            what: what(),
            last: Instant::now(),
            steps: Vec::new(),
        })
    }
}

/// Ends a step on an optional timer: the time since the previous step.
pub fn step(s: &mut Option<Steps>, name: &'static str) {
    if let Some(s) = s {
        let now = Instant::now();
        s.steps
            .push((name, now.duration_since(s.last).as_secs_f64() * 1e3));
        s.last = now;
    }
}

/// Prints the line.
pub fn done(s: Option<Steps>) {
    if let Some(s) = s {
        let parts: Vec<String> = s
            .steps
            .iter()
            .map(|(n, ms)| format!("{n} {ms:.1} ms"))
            .collect();
        eprintln!("{}: {}", s.what, parts.join(", "));
    }
}
