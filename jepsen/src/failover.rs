//! What Prometheus saw of a failover, judged: the checks of `lb-failover`, pure, over the
//! raw samples Prometheus stored and the pushes the client made.
//!
//! The promises checked, for a value that one client pushes with ever larger values
//! through a load balancer:
//! - it never goes backwards in what Prometheus scraped;
//! - no gap between two scraped samples is longer than the disruptions it spans (each from
//!   its event until the load balancer accepted a push again) plus two scrape intervals;
//! - a series pushed once at the start is in every successful scrape.

/// One push attempt of the client: when it started and ended (Unix seconds), and whether
/// it was acknowledged (2xx).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Push {
    pub started: f64,
    pub finished: f64,
    pub ok: bool,
}

/// A fault (or a restart) and how long pushes were refused after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Disruption {
    pub what: String,
    pub at: f64,
    /// From the event until a push started after it was acknowledged; `None`: never.
    pub window: Option<f64>,
}

/// How long after `at` the first push started at or after `at` was acknowledged
/// (measured to its end); `None` if none was.
pub fn window_after(at: f64, pushes: &[Push]) -> Option<f64> {
    pushes.iter().filter(|p| p.ok && p.started >= at).map(|p| p.finished - at).reduce(f64::min)
}

/// Every step where a sample is smaller than the one before: `(time, before, after)`.
pub fn backward_steps(samples: &[(f64, f64)]) -> Vec<(f64, f64, f64)> {
    samples.windows(2).filter(|w| w[1].1 < w[0].1).map(|w| (w[1].0, w[0].1, w[1].1)).collect()
}

/// A gap between consecutive samples longer than allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    pub from: f64,
    pub to: f64,
    pub allowed: f64,
}

/// The times the test harness itself did not run: between the end of a push and the start
/// of the next one more than `tolerance` seconds passed, although the pushing client starts
/// a push as soon as the previous one ended and its short pause is over. Such a stall is the
/// whole machine's (a virtual machine paused or snapshotted by its host stops Prometheus,
/// the load balancer and the servers alike), not the servers': a gap in the scraped samples
/// during it is not theirs.
pub fn stalls(pushes: &[Push], tolerance: f64) -> Vec<(f64, f64)> {
    pushes
        .windows(2)
        .filter(|w| w[1].started - w[0].finished > tolerance)
        .map(|w| (w[0].finished, w[1].started))
        .collect()
}

/// The gaps between consecutive samples longer than two scrape intervals plus the windows
/// of the disruptions that happened within them (a disruption without a window, one the
/// cluster never recovered from, allows any gap), plus the time of the machine's `stalls`
/// within them.
pub fn excessive_gaps(
    samples: &[(f64, f64)],
    disruptions: &[Disruption],
    stalls: &[(f64, f64)],
    interval: f64,
) -> Vec<Gap> {
    let mut out = Vec::new();
    for w in samples.windows(2) {
        let (from, to) = (w[0].0, w[1].0);
        let mut allowed = 2.0 * interval;
        for d in disruptions.iter().filter(|d| d.at >= from - interval && d.at <= to) {
            allowed += d.window.unwrap_or(f64::INFINITY);
        }
        // A stall's time within the gap, less what a disruption's window already allows
        // (a window is measured on the clock, so it holds any stall inside it).
        let overlap = |(a, b): (f64, f64), (c, d): (f64, f64)| (b.min(d) - a.max(c)).max(0.0);
        for &(start, end) in stalls {
            let mut stalled = overlap((start, end), (from, to));
            for d in disruptions.iter().filter(|d| d.at >= from - interval && d.at <= to) {
                if let Some(window) = d.window {
                    stalled -= overlap((start.max(from), end.min(to)), (d.at, d.at + window));
                }
            }
            allowed += stalled.max(0.0);
        }
        if to - from > allowed {
            out.push(Gap { from, to, allowed });
        }
    }
    out
}

/// The longest gap between consecutive samples, in seconds.
pub fn longest_gap(samples: &[(f64, f64)]) -> f64 {
    samples.windows(2).map(|w| w[1].0 - w[0].0).fold(0.0, f64::max)
}

/// The times of successful scrapes (`up` samples equal to 1) at which `series` has no
/// sample. Prometheus gives every sample of one scrape the scrape's timestamp.
pub fn missing_from_scrapes(up: &[(f64, f64)], series: &[(f64, f64)]) -> Vec<f64> {
    up.iter()
        .filter(|(_, v)| *v == 1.0)
        .map(|(t, _)| *t)
        .filter(|t| !series.iter().any(|(s, _)| (s - t).abs() < 0.0005))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_ends_with_the_first_acknowledged_push_started_after_the_event() {
        let pushes = [
            Push { started: 9.0, finished: 10.5, ok: true }, // started before: not counted
            Push { started: 10.1, finished: 12.0, ok: false }, // refused
            Push { started: 12.1, finished: 13.0, ok: true },
            Push { started: 13.1, finished: 13.2, ok: true },
        ];
        assert_eq!(window_after(10.0, &pushes), Some(3.0));
        assert_eq!(window_after(20.0, &pushes), None);
    }

    #[test]
    fn backward_steps_are_found_and_equal_values_are_not_steps() {
        let samples = [(1.0, 1.0), (2.0, 5.0), (3.0, 5.0), (4.0, 3.0), (5.0, 6.0)];
        assert_eq!(backward_steps(&samples), vec![(4.0, 5.0, 3.0)]);
        assert!(backward_steps(&samples[..3]).is_empty());
    }

    #[test]
    fn a_gap_is_allowed_two_intervals_plus_the_windows_within_it() {
        let samples = [(0.0, 1.0), (1.0, 2.0), (3.0, 3.0), (10.0, 4.0), (11.0, 5.0), (20.0, 6.0)];
        let disruptions = vec![
            Disruption { what: "kill".into(), at: 4.0, window: Some(5.5) },
            Disruption { what: "kill".into(), at: 11.5, window: Some(1.0) },
        ];
        // 1 -> 3 is two intervals: allowed. 3 -> 10 spans the first window: 2 + 5.5 >= 7.
        // 11 -> 20 spans the second: 9 > 2 + 1.
        assert_eq!(excessive_gaps(&samples, &disruptions, &[], 1.0), vec![Gap { from: 11.0, to: 20.0, allowed: 3.0 }]);
        // Without disruptions, both long gaps are excessive.
        assert_eq!(excessive_gaps(&samples, &[], &[], 1.0).len(), 2);
        // A disruption never recovered from allows any gap.
        let endless = vec![Disruption { what: "kill".into(), at: 12.0, window: None }];
        assert_eq!(excessive_gaps(&samples[4..], &endless, &[], 1.0), vec![]);
        assert_eq!(longest_gap(&samples), 9.0);
    }

    #[test]
    fn a_stall_of_the_whole_machine_excuses_only_its_own_length() {
        let pushes = [
            Push { started: 10.0, finished: 10.1, ok: true },
            Push { started: 10.2, finished: 12.5, ok: false }, // a slow push is no stall
            Push { started: 12.6, finished: 12.7, ok: true },
            Push { started: 70.0, finished: 70.1, ok: true }, // the harness did not run
        ];
        let stalled = stalls(&pushes, 1.0);
        assert_eq!(stalled, vec![(12.7, 70.0)]);
        let samples = [(12.0, 1.0), (71.0, 2.0), (80.0, 3.0)];
        // 12 -> 71: 59 s, allowed 2 + 57.3. 71 -> 80 is the servers' own gap.
        assert_eq!(excessive_gaps(&samples, &[], &stalled, 1.0), vec![Gap { from: 71.0, to: 80.0, allowed: 2.0 }]);
        assert_eq!(excessive_gaps(&samples, &[], &[], 1.0).len(), 2);
        // A stall inside a disruption's window is not allowed twice.
        let kill = vec![Disruption { what: "kill".into(), at: 13.0, window: Some(58.0) }];
        let gap = excessive_gaps(&samples[..2], &kill, &stalled, 1.0);
        assert!(gap.is_empty(), "{gap:?}");
        let allowed = |samples: &[(f64, f64)]| excessive_gaps(samples, &kill, &stalled, 0.0);
        let gap = allowed(&[(12.0, 1.0), (71.8, 2.0)]);
        assert!(gap.len() == 1 && (gap[0].allowed - 58.3).abs() < 1e-9, "{gap:?}");
    }

    #[test]
    fn missing_from_scrapes_counts_successful_scrapes_without_the_series() {
        let up = [(1.0, 1.0), (2.0, 0.0), (3.0, 1.0), (4.0, 1.0)];
        let series = [(1.0, 7.0), (4.0, 7.0)];
        assert_eq!(missing_from_scrapes(&up, &series), vec![3.0]);
    }
}
