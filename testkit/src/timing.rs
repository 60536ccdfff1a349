//! Raft timing for nodes that the black-box tests and the fault-injection harness start.
//!
//! Those nodes share two cores with each other, with their clients and often with a build.
//! With the server's defaults (250 ms heartbeat, 600 ms election timeout) a node that is
//! not scheduled for a few hundred milliseconds starts an election no fault caused, and a
//! test or a run then judges a failover it did not ask for. A 300 ms heartbeat and a 2 s
//! election timeout tolerate that; faults still end in a new leader within seconds.
//!
//! Not for harnesses that measure what users get: `bench` (failover time, time to ready)
//! and `lb-failover` (the deployment as users run it) start nodes with the defaults.

/// The heartbeat and election timeout for a loaded machine; see the module documentation.
const LOADED_MACHINE: [&str; 2] = ["--cluster.heartbeat-interval=300ms", "--cluster.election-timeout=2s"];

/// The timing flags for a node: the heartbeat and election timeout above and
/// `--cluster.propose-timeout=<propose_timeout>` (a duration as the server reads it, `5s`),
/// without any flag that `overrides` names, so that a caller's own value, appended after
/// these, is the only one.
///
/// The propose timeout is the caller's: the tests wait out a slow election rather than see
/// a 504 (`30s`), the fault-injection harness counts a timed-out push as indeterminate
/// (`5s`, the server's default).
pub fn cluster_timing(propose_timeout: &str, overrides: &[String]) -> Vec<String> {
    let propose = format!("--cluster.propose-timeout={propose_timeout}");
    LOADED_MACHINE
        .iter()
        .map(|flag| flag.to_string())
        .chain([propose])
        .filter(|flag| !overrides.iter().any(|o| flag_name(o) == flag_name(flag)))
        .collect()
}

/// A flag's name: `--a.b` of `--a.b=value` (the whole flag when it has no value).
pub fn flag_name(flag: &str) -> &str {
    flag.split('=').next().unwrap_or(flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_the_caller_sets_replaces_the_default() {
        assert_eq!(
            cluster_timing("30s", &[]),
            ["--cluster.heartbeat-interval=300ms", "--cluster.election-timeout=2s", "--cluster.propose-timeout=30s"]
        );
        let overrides = ["--cluster.propose-timeout=1s".to_string(), "--cluster.read-consistency=local".to_string()];
        assert_eq!(
            cluster_timing("5s", &overrides),
            ["--cluster.heartbeat-interval=300ms", "--cluster.election-timeout=2s"]
        );
        assert_eq!(flag_name("--web.enable-admin-api"), "--web.enable-admin-api");
    }
}
