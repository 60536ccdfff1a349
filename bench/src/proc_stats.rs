//! What a server process spent during a scenario, from `/proc`: CPU time per thread (by
//! thread name, summed over threads of one name), bytes written to storage and write
//! calls. Read before and after; the difference divided by the pushes of the scenario is
//! what one push cost the machine, which the throughput figures alone cannot tell (the
//! client threads share the cores).

use std::collections::BTreeMap;

/// CPU ticks by thread name, and I/O counters, of one process at one moment.
#[derive(Clone, Debug, Default)]
pub struct Usage {
    /// CPU ticks of the whole process: its threads, those that ended included (tokio's
    /// blocking-pool threads end after ten idle seconds).
    pub process_ticks: u64,
    /// CPU ticks of the threads alive at the moment, by name (which threads were busy).
    pub ticks_by_thread: BTreeMap<String, u64>,
    /// Bytes the process caused to be written to storage (`write_bytes` of `/proc/<pid>/io`).
    pub write_bytes: u64,
    /// Write system calls (`syscw`).
    pub write_calls: u64,
}

/// Clock ticks per second of `/proc`'s CPU times (`getconf CLK_TCK`: 100 on Linux).
pub const TICKS_PER_SECOND: f64 = 100.0;

impl Usage {
    /// The process `pid` now.
    pub fn of(pid: u32) -> Usage {
        let mut usage = Usage::default();
        if let Some((_, ticks)) =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| thread_ticks(&s))
        {
            usage.process_ticks = ticks;
        }
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
                if let Some((name, ticks)) = thread_ticks(&stat) {
                    *usage.ticks_by_thread.entry(name).or_default() += ticks;
                }
            }
        }
        if let Ok(io) = std::fs::read_to_string(format!("/proc/{pid}/io")) {
            let field = |key: &str| {
                io.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0)
            };
            usage.write_bytes = field("write_bytes:");
            usage.write_calls = field("syscw:");
        }
        usage
    }

    /// What was spent from `before` to `self`.
    pub fn since(&self, before: &Usage) -> Usage {
        let ticks_by_thread = self
            .ticks_by_thread
            .iter()
            .map(|(name, t)| (name.clone(), t.saturating_sub(before.ticks_by_thread.get(name).copied().unwrap_or(0))))
            .collect();
        Usage {
            process_ticks: self.process_ticks.saturating_sub(before.process_ticks),
            ticks_by_thread,
            write_bytes: self.write_bytes.saturating_sub(before.write_bytes),
            write_calls: self.write_calls.saturating_sub(before.write_calls),
        }
    }

    /// Adds another process's usage (the nodes of a cluster, as one).
    pub fn add(&mut self, other: &Usage) {
        self.process_ticks += other.process_ticks;
        for (name, t) in &other.ticks_by_thread {
            *self.ticks_by_thread.entry(name.clone()).or_default() += t;
        }
        self.write_bytes += other.write_bytes;
        self.write_calls += other.write_calls;
    }

    /// CPU seconds in all threads, those that ended included.
    pub fn cpu_seconds(&self) -> f64 {
        self.process_ticks as f64 / TICKS_PER_SECOND
    }

    /// Thread names by CPU seconds, most first.
    pub fn busiest_threads(&self) -> Vec<(String, f64)> {
        let mut threads: Vec<(String, f64)> =
            self.ticks_by_thread.iter().map(|(n, t)| (n.clone(), *t as f64 / TICKS_PER_SECOND)).collect();
        threads.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        threads
    }
}

/// The name (as the kernel keeps it, at most 15 bytes, digits at the end dropped so that
/// `worker-3` and `worker-7` count together) and the user plus system ticks of a
/// `/proc/<pid>/task/<tid>/stat` line.
fn thread_ticks(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '#');
    // After ") ": state is field 3; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((if name.is_empty() { "(unnamed)".to_string() } else { name.to_string() }, utime + stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_the_name_and_the_ticks() {
        let line = "4242 (tokio-runtime-w) S 1 4242 4242 0 -1 4194560 100 0 0 0 37 5 0 0 20 0 9 0 100 0 0";
        assert_eq!(thread_ticks(line), Some(("tokio-runtime-w".to_string(), 42)));
        let odd = "7 (a (b) c-12) R 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 0 0 0";
        assert_eq!(thread_ticks(odd), Some(("a (b) c".to_string(), 3)), "a name with parentheses and a number");
        assert_eq!(thread_ticks("garbage"), None);
    }

    #[test]
    fn this_process_has_threads_that_spend_cpu() {
        let before = Usage::of(std::process::id());
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let spent = Usage::of(std::process::id()).since(&before);
        assert!(spent.cpu_seconds() > 0.0, "{spent:?}");
        assert!(!spent.busiest_threads().is_empty());
    }

    #[test]
    fn threads_that_ended_still_count() {
        let before = Usage::of(std::process::id());
        // Spins until it has spent 0.3 s of CPU itself (not of wall time: on a loaded
        // machine, with other tests of this process running beside it, that is less).
        let spinner = std::thread::Builder::new().name("spinner".into()).spawn(|| {
            let own_ticks = || {
                let line = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
                thread_ticks(&line).map_or(0, |(_, ticks)| ticks)
            };
            let started = std::time::Instant::now();
            let mut x = 0u64;
            while own_ticks() < 30 && started.elapsed() < std::time::Duration::from_secs(20) {
                for _ in 0..100_000 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
                }
            }
        });
        spinner.unwrap().join().unwrap();
        let spent = Usage::of(std::process::id()).since(&before);
        assert!(!spent.ticks_by_thread.contains_key("spinner"), "{spent:?}");
        let live: f64 = spent.busiest_threads().iter().map(|(_, seconds)| seconds).sum();
        assert!(spent.cpu_seconds() - live >= 0.2, "the ended thread's CPU is counted: {spent:?}");
    }
}
