//! What a server process spent during a scenario, from `/proc`: CPU time per thread (by
//! thread name, summed over threads of one name) and write calls; and what the machine's
//! disks wrote meanwhile. Read before and after; the difference divided by the pushes of
//! the scenario is what one push cost the machine, which the throughput figures alone
//! cannot tell (the client threads share the cores).

use std::collections::BTreeMap;

/// CPU ticks by thread name, and I/O counters, of one process at one moment.
#[derive(Clone, Debug, Default)]
pub struct Usage {
    /// CPU ticks of the whole process: its threads, those that ended included (tokio's
    /// blocking-pool threads end after ten idle seconds).
    pub process_ticks: u64,
    /// CPU ticks of the threads alive at the moment, by name (which threads were busy).
    pub ticks_by_thread: BTreeMap<String, u64>,
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
            usage.write_calls = io
                .lines()
                .find_map(|l| l.strip_prefix("syscw:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
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
            write_calls: self.write_calls.saturating_sub(before.write_calls),
        }
    }

    /// Adds another process's usage (the nodes of a cluster, as one).
    pub fn add(&mut self, other: &Usage) {
        self.process_ticks += other.process_ticks;
        for (name, t) in &other.ticks_by_thread {
            *self.ticks_by_thread.entry(name.clone()).or_default() += t;
        }
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

/// Bytes written by every disk of the machine so far (`/proc/diskstats`' sectors written,
/// 512 bytes each, of the devices in `/sys/block`: whole disks, not their partitions).
///
/// Machine-wide on purpose: during a scenario only the target's processes write, and a
/// process's own `write_bytes` (`/proc/<pid>/io`) counts a page each time it is dirtied
/// again, which for writes over an existing file (a recycled WAL) was 11 to 16 times what
/// the disk wrote (bench/results/ab-wal-primed).
pub fn disk_written_bytes() -> u64 {
    let Ok(stats) = std::fs::read_to_string("/proc/diskstats") else { return 0 };
    stats
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let device = fields.get(2)?;
            let whole_disk = std::path::Path::new("/sys/block").join(device).exists();
            let sectors: u64 = fields.get(9)?.parse().ok()?;
            whole_disk.then_some(sectors * 512)
        })
        .sum()
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

    /// A synced write of 1 MiB to a file in the current directory (the crate's, on a disk)
    /// is counted.
    #[test]
    fn a_synced_write_is_counted_by_the_disks() {
        use std::io::Write;
        let path = std::path::PathBuf::from(format!("disk-written-test-{}", std::process::id()));
        let before = disk_written_bytes();
        let mut file = std::fs::File::create(&path).expect("create");
        file.write_all(&vec![1u8; 1 << 20]).expect("write");
        file.sync_all().expect("sync");
        let written = disk_written_bytes() - before;
        std::fs::remove_file(&path).expect("remove");
        assert!(written >= 1 << 20, "the disks wrote {written} bytes");
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
