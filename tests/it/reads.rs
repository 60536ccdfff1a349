//! Reads of the whole store (the JSON API, the status page) must not hold up pushes:
//! `apply` runs on the single Raft worker and takes the store's write lock, so a page
//! rendered under the store lock would make every push wait for the render to finish.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::Server;

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// Measured, not timed by sleeps: a reader fetches `/api/v1/metrics` and `/` of a store
/// of 100k series in a loop while pushes are made one after another; each push's latency
/// is compared with the duration of the page reads it overlapped. A push that waited for
/// a render would take about half a render on average.
#[test]
fn a_large_page_read_does_not_delay_concurrent_pushes() {
    eprintln!("test: pushes made while /api/v1/metrics and / render 100k series are not held up by the render");
    let s = Arc::new(Server::start(&[]));
    for g in 0..20 {
        let mut body = String::from("# TYPE load_metric gauge\n");
        for i in 0..5000 {
            body.push_str(&format!("load_metric{{i=\"{i}\"}} {i}\n"));
        }
        assert_eq!(s.put(&format!("/metrics/job/load/group/{g}"), &body).0, 200);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let read_times = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let (s, stop, reads, read_times) = (s.clone(), stop.clone(), reads.clone(), read_times.clone());
        std::thread::spawn(move || {
            for path in ["/api/v1/metrics", "/"].iter().cycle() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let started = Instant::now();
                let (status, body) = s.get(path);
                assert_eq!(status, 200, "{path}");
                assert!(body.len() > 1_000_000, "{path} is a large page: {} bytes", body.len());
                read_times.lock().unwrap().push(started.elapsed());
                reads.fetch_add(1, Ordering::SeqCst);
            }
        })
    };

    let mut push_times = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while (reads.load(Ordering::SeqCst) < 6 || push_times.len() < 20) && Instant::now() < deadline {
        let started = Instant::now();
        let n = push_times.len();
        assert_eq!(s.put(&format!("/metrics/job/probe/n/{n}"), "probe 1\n").0, 200);
        push_times.push(started.elapsed());
    }
    stop.store(true, Ordering::SeqCst);
    reader.join().unwrap();

    let read_median = median(read_times.lock().unwrap().clone());
    let push_median = median(push_times.clone());
    let push_max = push_times.iter().max().copied().unwrap_or_default();
    eprintln!(
        "page reads: {} (median {read_median:?}); pushes: {} (median {push_median:?}, max {push_max:?})",
        read_times.lock().unwrap().len(),
        push_times.len()
    );
    assert!(read_median >= Duration::from_millis(100), "the pages are too small to show anything");
    assert!(
        push_median * 10 < read_median,
        "pushes waited for page renders: median push {push_median:?} against median page read {read_median:?}"
    );
}
