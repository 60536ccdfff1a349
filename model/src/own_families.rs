//! The families the server exposes about itself (`process_*`, `pushgateway_*`), as data.
//!
//! Pushes are judged against this list inside `apply`: a pushed family of one of these
//! names must have the listed type, and for the HTTP families the listed help. So the
//! list is an input of the replicated verdict, exactly as the log is: two builds with
//! different lists could judge the same entry differently and diverge. It is therefore
//! fixed here, pinned by a test (a hash of every name and type, and of the help that is
//! judged), and changing that is a change of the replicated format (docs/decisions/0007):
//! it may only take effect once every voter runs a build that knows the new list (the
//! cluster version).
//!
//! The help of a family whose help is not judged (`help_must_match` false) is no input of
//! the verdict: it is what the server shows as that family's help, its own series and any
//! pushed ones together, as its own series are this node's. It is left out of the pin and
//! may change with a build (docs/decisions/0028).
//!
//! Versions 2, 4 and 6 add [`ADDED_IN_V2`], [`ADDED_IN_V4`] and [`ADDED_IN_V6`]:
//! [`OwnFamilies::at`] gives the lists in force at a version, and the store judges by the
//! lists of the version in force.
//!
//! The server's own-metrics code takes names, types and help from here, never the other
//! way round.

use crate::metric::MetricType;
use crate::version::FormatVersion;

/// One family the server exposes about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnFamily {
    pub name: &'static str,
    pub metric_type: MetricType,
    pub help: &'static str,
    /// Whether a pushed family of this name must carry exactly this help. Upstream
    /// demands it for the families it does not know at start-up (its HTTP metrics); for
    /// the others the server's help replaces a pushed one when exposed.
    pub help_must_match: bool,
}

const fn own(name: &'static str, metric_type: MetricType, help: &'static str) -> OwnFamily {
    OwnFamily { name, metric_type, help, help_must_match: false }
}

const fn http(name: &'static str, metric_type: MetricType, help: &'static str) -> OwnFamily {
    OwnFamily { name, metric_type, help, help_must_match: true }
}

use MetricType::{Counter, Gauge, Histogram, Summary};

/// Every own family, sorted by name (looked up by binary search).
pub const OWN_FAMILIES: &[OwnFamily] = &[
    own("process_cpu_seconds_total", Counter, "Total user and system CPU time spent in seconds."),
    own("process_max_fds", Gauge, "Maximum number of open file descriptors."),
    own("process_open_fds", Gauge, "Number of open file descriptors."),
    own("process_resident_memory_bytes", Gauge, "Resident memory size in bytes."),
    own("process_start_time_seconds", Gauge, "Start time of the process since unix epoch in seconds."),
    own("process_threads", Gauge, "Number of OS threads in the process."),
    own("process_virtual_memory_bytes", Gauge, "Virtual memory size in bytes."),
    own(
        "pushgateway_build_info",
        Gauge,
        // Upstream's words (prometheus/common's version collector): a pushed family of
        // this name is shown with them, as upstream shows it.
        "A metric with a constant '1' value labeled by version, revision, branch, goversion from which pushgateway was built, and the goos and goarch for the build.",
    ),
    own("pushgateway_cluster_applied_index", Gauge, "Index of the last entry this node has applied."),
    own("pushgateway_cluster_apply_lag_entries", Gauge, "Entries in this node's log not yet applied."),
    own(
        "pushgateway_cluster_failed_proposals_total",
        Counter,
        "Commands proposed through this node that failed: unavailable (no leader took them, 503), timeout (not confirmed in time, 504), storage.",
    ),
    own(
        "pushgateway_cluster_forwarded_batches_total",
        Counter,
        "Batches of commands this node forwarded to the leader, including failed attempts.",
    ),
    own("pushgateway_cluster_has_leader", Gauge, "1 if this node knows a leader, else 0."),
    own("pushgateway_cluster_last_log_index", Gauge, "Index of the last entry in this node's Raft log."),
    own("pushgateway_cluster_leader_id", Gauge, "Node id of the leader this node knows, -1 if none."),
    own("pushgateway_cluster_learners", Gauge, "Non-voting members in this node's view of the membership."),
    own("pushgateway_cluster_log_entries", Gauge, "Entries in this node's Raft log (not yet compacted)."),
    own(
        "pushgateway_cluster_proposal_duration_seconds",
        Histogram,
        "Time from proposing a command through this node to its outcome (committed and applied, or failed).",
    ),
    own("pushgateway_cluster_role", Gauge, "1 for this node's current Raft role, 0 for the others."),
    own(
        "pushgateway_cluster_snapshot_bytes",
        Gauge,
        "Bytes of the last snapshot this node serialized for a peer behind its log; 0 if none yet.",
    ),
    own(
        "pushgateway_cluster_storage_bytes",
        Gauge,
        "Bytes the log and the state take in this node's database (live SST files and memtables).",
    ),
    own("pushgateway_cluster_term", Gauge, "This node's current Raft term."),
    own("pushgateway_cluster_voters", Gauge, "Voting members in this node's view of the membership."),
    http("pushgateway_http_push_duration_seconds", Summary, "HTTP request duration for pushes to the Pushgateway."),
    http("pushgateway_http_push_size_bytes", Summary, "HTTP request size for pushes to the Pushgateway."),
    http(
        "pushgateway_http_requests_total",
        Counter,
        "Total HTTP requests processed by the Pushgateway, excluding scrapes.",
    ),
];

/// Own families added by replicated-format version 2 ([`crate::version::V2`]): the store's
/// usage and quotas. Before the switch they are exposed but not judged: a pushed family of
/// one of these names is judged as any other, and takes their place in scrapes.
pub const ADDED_IN_V2: &[OwnFamily] = &[
    own(
        "pushgateway_store_quota",
        Gauge,
        "Quota of the store per resource (groups, series, bytes), from the --store.max-* flags of this node.",
    ),
    own(
        "pushgateway_store_usage",
        Gauge,
        "What the store holds per resource (groups, series, bytes), as counted against the quotas; the same on every node at the same applied index.",
    ),
];

/// Own families added by replicated-format version 4 ([`crate::version::V4`]): how up to
/// date this node's reads are (`--cluster.stale-reads-after`). Before the switch they are
/// exposed but not judged, as [`ADDED_IN_V2`] was before version 2.
pub const ADDED_IN_V4: &[OwnFamily] = &[
    own(
        "pushgateway_cluster_read_staleness_seconds",
        Gauge,
        "Seconds since a read on this node last confirmed it was up to date with the leader; reads served stale lag by at most this.",
    ),
    own(
        "pushgateway_cluster_stale_reads_total",
        Counter,
        "Reads (scrapes, API, status page) this node served from what it had applied because it could not confirm it was up to date in time (--cluster.stale-reads-after).",
    ),
];

/// Own families added by replicated-format version 6 ([`crate::version::V6`]): the families
/// upstream's Go runtime and process collectors register that this server does not have
/// (`go_*`, `process_virtual_memory_max_bytes`), as upstream 1.5.1 (Go 1.19) exposes them.
/// Upstream judges pushes against them as against any family it exposes (a pushed
/// `go_goroutines` must be a gauge; `go_gc_duration_seconds_sum` collides with its summary)
/// and shows its own help for them; so does this server from version 6 on, though it
/// exposes none of them itself. Before the switch they are names like any other.
pub const ADDED_IN_V6: &[OwnFamily] = &[
    own("go_gc_duration_seconds", Summary, "A summary of the pause duration of garbage collection cycles."),
    own("go_goroutines", Gauge, "Number of goroutines that currently exist."),
    own("go_info", Gauge, "Information about the Go environment."),
    own("go_memstats_alloc_bytes", Gauge, "Number of bytes allocated and still in use."),
    own("go_memstats_alloc_bytes_total", Counter, "Total number of bytes allocated, even if freed."),
    own("go_memstats_buck_hash_sys_bytes", Gauge, "Number of bytes used by the profiling bucket hash table."),
    own("go_memstats_frees_total", Counter, "Total number of frees."),
    own("go_memstats_gc_sys_bytes", Gauge, "Number of bytes used for garbage collection system metadata."),
    own("go_memstats_heap_alloc_bytes", Gauge, "Number of heap bytes allocated and still in use."),
    own("go_memstats_heap_idle_bytes", Gauge, "Number of heap bytes waiting to be used."),
    own("go_memstats_heap_inuse_bytes", Gauge, "Number of heap bytes that are in use."),
    own("go_memstats_heap_objects", Gauge, "Number of allocated objects."),
    own("go_memstats_heap_released_bytes", Gauge, "Number of heap bytes released to OS."),
    own("go_memstats_heap_sys_bytes", Gauge, "Number of heap bytes obtained from system."),
    own("go_memstats_last_gc_time_seconds", Gauge, "Number of seconds since 1970 of last garbage collection."),
    own("go_memstats_lookups_total", Counter, "Total number of pointer lookups."),
    own("go_memstats_mallocs_total", Counter, "Total number of mallocs."),
    own("go_memstats_mcache_inuse_bytes", Gauge, "Number of bytes in use by mcache structures."),
    own("go_memstats_mcache_sys_bytes", Gauge, "Number of bytes used for mcache structures obtained from system."),
    own("go_memstats_mspan_inuse_bytes", Gauge, "Number of bytes in use by mspan structures."),
    own("go_memstats_mspan_sys_bytes", Gauge, "Number of bytes used for mspan structures obtained from system."),
    own("go_memstats_next_gc_bytes", Gauge, "Number of heap bytes when next garbage collection will take place."),
    own("go_memstats_other_sys_bytes", Gauge, "Number of bytes used for other system allocations."),
    own("go_memstats_stack_inuse_bytes", Gauge, "Number of bytes in use by the stack allocator."),
    own("go_memstats_stack_sys_bytes", Gauge, "Number of bytes obtained from system for stack allocator."),
    own("go_memstats_sys_bytes", Gauge, "Number of bytes obtained from system."),
    own("go_threads", Gauge, "Number of OS threads created."),
    own("process_virtual_memory_max_bytes", Gauge, "Maximum amount of virtual memory available in bytes."),
];

/// The own families pushes are judged against at one replicated-format version: pinned
/// lists, each sorted by name.
#[derive(Clone, Copy, Debug)]
pub struct OwnFamilies {
    lists: [&'static [OwnFamily]; 4],
}

impl OwnFamilies {
    /// The lists of `version`: [`OWN_FAMILIES`], plus [`ADDED_IN_V2`] from version 2,
    /// [`ADDED_IN_V4`] from version 4 and [`ADDED_IN_V6`] from version 6.
    pub const fn at(version: FormatVersion) -> Self {
        use crate::version::{V2, V4, V6};
        let v2: &[OwnFamily] = if version >= V2 { ADDED_IN_V2 } else { &[] };
        let v4: &[OwnFamily] = if version >= V4 { ADDED_IN_V4 } else { &[] };
        let v6: &[OwnFamily] = if version >= V6 { ADDED_IN_V6 } else { &[] };
        OwnFamilies { lists: [OWN_FAMILIES, v2, v4, v6] }
    }

    /// One list of its own (tests of the judgement).
    pub const fn only(list: &'static [OwnFamily]) -> Self {
        OwnFamilies { lists: [list, &[], &[], &[]] }
    }

    /// The own family of this name, if any.
    pub fn find(&self, name: &str) -> Option<&'static OwnFamily> {
        self.lists.iter().find_map(|list| find(list, name))
    }
}

/// The own family of this name at the highest version this build knows, if any: where the
/// server takes the names, types and help of what it exposes. Not every one is exposed:
/// [`ADDED_IN_V6`]'s are judged only.
pub fn own_family(name: &str) -> Option<&'static OwnFamily> {
    OwnFamilies::at(crate::version::SUPPORTED).find(name)
}

/// The family of this name in a list sorted by name.
pub(crate) fn find<'a>(list: &'a [OwnFamily], name: &str) -> Option<&'a OwnFamily> {
    list.binary_search_by(|f| f.name.cmp(name)).ok().map(|i| &list[i])
}

/// FNV-1a (64 bits) over every name, type and help flag of `list`, and the help of each
/// family whose help is judged (`help_must_match`), each field followed by a 0 byte: the
/// pin of the list (see the module docs); a help not judged is an empty field.
pub fn fingerprint(list: &[OwnFamily]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes.iter().chain([0u8].iter()) {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for f in list {
        eat(f.name.as_bytes());
        eat(f.metric_type.upper_name().as_bytes());
        eat(&[u8::from(f.help_must_match)]);
        eat(if f.help_must_match { f.help.as_bytes() } else { &[] });
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pin. If this fails, the list changed: that is a change of the replicated
    /// format (nodes of the old and the new list judge pushes differently). Do not just
    /// update the number: follow docs/decisions/0007 (a new list takes effect only once
    /// every voter knows it).
    #[test]
    fn the_own_family_list_is_pinned() {
        assert_eq!(OWN_FAMILIES.len(), 26);
        assert_eq!(fingerprint(OWN_FAMILIES), PINNED, "fingerprint {:#018x}", fingerprint(OWN_FAMILIES));
    }

    const PINNED: u64 = 0x7eab_7af0_3b05_6b74;

    /// The pin of version 2's additions: the same rule as above.
    #[test]
    fn the_families_added_in_version_2_are_pinned() {
        assert_eq!(ADDED_IN_V2.len(), 2);
        assert_eq!(fingerprint(ADDED_IN_V2), PINNED_V2, "fingerprint {:#018x}", fingerprint(ADDED_IN_V2));
        assert!(ADDED_IN_V2.windows(2).all(|w| w[0].name < w[1].name), "sorted by name");
        assert!(ADDED_IN_V2.iter().all(|f| find(OWN_FAMILIES, f.name).is_none()), "new names only");
        assert!(OwnFamilies::at(crate::version::V1).find("pushgateway_store_usage").is_none());
        assert!(OwnFamilies::at(crate::version::V2).find("pushgateway_store_usage").is_some());
        assert!(OwnFamilies::at(crate::version::V2).find("process_open_fds").is_some());
    }

    const PINNED_V2: u64 = 0x7279_e148_5fec_bdea;

    /// The pin of [`ADDED_IN_V4`] (see `the_pins_hold`).
    #[test]
    fn the_version_4_list_is_pinned() {
        assert_eq!(fingerprint(ADDED_IN_V4), PINNED_V4, "fingerprint {:#018x}", fingerprint(ADDED_IN_V4));
        assert!(ADDED_IN_V4.windows(2).all(|w| w[0].name < w[1].name), "sorted by name");
        let earlier = [OWN_FAMILIES, ADDED_IN_V2];
        assert!(ADDED_IN_V4.iter().all(|f| earlier.iter().all(|l| find(l, f.name).is_none())), "new names only");
        assert!(OwnFamilies::at(crate::version::V3).find("pushgateway_cluster_stale_reads_total").is_none());
        assert!(OwnFamilies::at(crate::version::V4).find("pushgateway_cluster_stale_reads_total").is_some());
        assert!(OwnFamilies::at(crate::version::V4).find("pushgateway_store_usage").is_some());
    }

    const PINNED_V4: u64 = 0x3d88_d685_4f68_4c51;

    /// The pin of [`ADDED_IN_V6`] (see `the_own_family_list_is_pinned`).
    #[test]
    fn the_version_6_list_is_pinned() {
        assert_eq!(ADDED_IN_V6.len(), 28);
        assert_eq!(fingerprint(ADDED_IN_V6), PINNED_V6, "fingerprint {:#018x}", fingerprint(ADDED_IN_V6));
        assert!(ADDED_IN_V6.windows(2).all(|w| w[0].name < w[1].name), "sorted by name");
        let earlier = [OWN_FAMILIES, ADDED_IN_V2, ADDED_IN_V4];
        assert!(ADDED_IN_V6.iter().all(|f| earlier.iter().all(|l| find(l, f.name).is_none())), "new names only");
        assert!(ADDED_IN_V6.iter().all(|f| !f.help_must_match), "upstream shows its own help, as for process_*");
        assert!(OwnFamilies::at(crate::version::V5).find("go_goroutines").is_none());
        let v6 = OwnFamilies::at(crate::version::V6);
        assert_eq!(v6.find("go_gc_duration_seconds").map(|f| f.metric_type), Some(MetricType::Summary));
        assert!(v6.find("pushgateway_cluster_stale_reads_total").is_some());
        assert!(v6.find("pushgateway_store_usage").is_some());
    }

    const PINNED_V6: u64 = 0x8320_d68a_c9c0_51c8;

    #[test]
    fn the_fingerprint_sees_every_field() {
        let base = fingerprint(OWN_FAMILIES);
        let judged = OWN_FAMILIES.iter().position(|f| f.help_must_match).expect("a family whose help is judged");
        let mut changed = OWN_FAMILIES.to_vec();
        changed[judged].help = "other";
        assert_ne!(fingerprint(&changed), base, "a help that is judged");
        let mut changed = OWN_FAMILIES.to_vec();
        assert!(!changed[3].help_must_match);
        changed[3].help = "other";
        assert_eq!(fingerprint(&changed), base, "a help that is not judged is not pinned");
        let mut changed = OWN_FAMILIES.to_vec();
        changed[3].metric_type = MetricType::Counter;
        assert_ne!(fingerprint(&changed), base, "type");
        let mut changed = OWN_FAMILIES.to_vec();
        changed[3].help_must_match = true;
        assert_ne!(fingerprint(&changed), base, "help must match");
        let mut changed = OWN_FAMILIES.to_vec();
        changed[3].name = "process_open_fdz";
        assert_ne!(fingerprint(&changed), base, "name");
        assert_ne!(fingerprint(&OWN_FAMILIES[1..]), base, "one family fewer");
    }

    #[test]
    fn sorted_and_found() {
        assert!(OWN_FAMILIES.windows(2).all(|w| w[0].name < w[1].name), "sorted by name, no duplicates");
        for f in OWN_FAMILIES {
            assert_eq!(own_family(f.name), Some(f));
        }
        assert_eq!(own_family("some_pushed_metric"), None);
    }
}
