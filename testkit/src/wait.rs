//! Waiting for a condition by polling it, within a bound.
//!
//! A harness waits for what it needs (a node ready, a line logged, a process gone), never
//! for a fixed time in its place: a fixed sleep is too short on a loaded machine and
//! wasted on an idle one. The bound only catches hangs; it is not a timing measurement.

use std::fmt;
use std::time::{Duration, Instant};

/// How often a condition is polled: short against the waits it ends (elections, process
/// starts), long enough that polling costs nothing measurable on two cores.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A condition that did not hold within its bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOut {
    /// What was waited for, as the caller named it.
    pub what: String,
    pub within: Duration,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:.1?} waiting for {}", self.within, self.what)
    }
}

impl std::error::Error for TimedOut {}

/// Polls `condition` every [`POLL_INTERVAL`] until it holds, for at most `within`.
///
/// Contract: `condition` is called at least once (also with a zero bound), and once more
/// at or after the deadline before giving up, so a condition that holds at the deadline
/// counts. A slow condition (an HTTP request with its own timeout) can take the wait past
/// the deadline by its own duration.
pub fn wait_until(within: Duration, what: &str, mut condition: impl FnMut() -> bool) -> Result<(), TimedOut> {
    wait_for_some(within, what, || condition().then_some(()))
}

/// Like [`wait_until`], for a probe that yields a value once it is there (the leader's
/// index, a process's exit status, a logged address).
pub fn wait_for_some<T>(within: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> Result<T, TimedOut> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe() {
            return Ok(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(TimedOut { what: what.to_string(), within });
        }
        std::thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_that_comes_true_ends_the_wait() {
        let mut polls = 0;
        let started = Instant::now();
        wait_until(Duration::from_secs(30), "the third poll", || {
            polls += 1;
            polls == 3
        })
        .unwrap();
        assert_eq!(polls, 3);
        assert!(started.elapsed() < Duration::from_secs(5), "it did not wait out the bound");
        assert_eq!(wait_for_some(Duration::ZERO, "a value", || Some(7)), Ok(7), "checked once even with no time");
    }

    #[test]
    fn a_condition_that_never_holds_times_out_after_the_bound_naming_it() {
        let started = Instant::now();
        let err = wait_until(Duration::from_millis(100), "the impossible", || false).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(err.to_string(), "timed out after 100.0ms waiting for the impossible");
    }
}
