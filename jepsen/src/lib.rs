//! The fault-injection harness's parts, shared by its two programs:
//! - `jepsen`: concurrent clients against real nodes under faults, with linearizability
//!   and durability checkers (see `src/main.rs`);
//! - `lb-failover`: the deployment as users run it (three nodes behind haproxy, scraped by
//!   Prometheus) through a leader kill, a restart and a follower kill, beside two
//!   upstream Pushgateways behind the same load balancer (see `src/bin/lb_failover.rs`).

pub mod checker;
pub mod cluster;
pub mod failover;
pub mod history;
pub mod lazyfs;
pub mod nemesis;
pub mod netns;
pub mod poison;
pub mod services;
pub mod workload;
