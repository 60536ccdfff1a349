//! The process mechanics every harness of this repository needs, in one place: the
//! black-box tests (`tests/it`), the fault-injection harness (`jepsen`) and the benchmark
//! (`bench`) all start real programs, keep their output, signal them, restart them with
//! the same arguments and wait for conditions.
//!
//! - [`Process`] (from a [`Spec`]): a child whose stdout and stderr are captured line by
//!   line into a [`Log`] (in memory, optionally also appended to a file), shown when a
//!   panic drops it; signals by name, kill-and-reap, `wait_exit`, restart.
//! - [`wait_until`] / [`wait_for_some`]: polling for a condition within a bound, never a
//!   fixed sleep in its place; [`Process::wait_until_or_panic`] is the form for tests.
//! - [`free_port`] / [`free_addr`]: loopback ports for the addresses a harness chooses.
//! - [`cluster_timing`]: the Raft timing flags for nodes on a loaded two-core machine.
//! - [`web_address`]: the address a node started on port 0 reports it listens on.
//!
//! HTTP stays with each harness (each has its own client); this crate only knows
//! processes.

mod address;
pub mod hostile;
mod log;
mod net;
mod process;
mod signal;
mod timing;
mod wait;

pub use address::web_address;
pub use log::Log;
pub use net::{free_addr, free_port};
pub use process::{Process, Spec};
pub use signal::signal;
pub use timing::{cluster_timing, flag_name};
pub use wait::{wait_for_some, wait_until, TimedOut, POLL_INTERVAL};
