//! Black-box tests: real `pushgateway` processes on loopback port 0, and the router
//! driven without a socket. Node logs are printed when a test fails.

mod access;
mod cluster;
mod groups;
mod handlers;
mod harness;
mod hostile;
mod identity;
mod import;
mod lossless;
mod nginx;
mod reads;
mod security;
mod single_node;
mod version;
