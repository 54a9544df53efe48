//! `sandbox`: build identical lab environments and run students inside them.
//!
//! The data flow (see DESIGN.md): profile -> manifest -> rootfs in the store ->
//! plan -> executor. Each stage is a module with one job.

pub mod cgroup;
pub mod cli;
pub mod disk;
pub mod doctor;
pub mod escape;
pub mod explain;
pub mod export;
pub mod instance;
pub mod isolate;
pub mod lab;
pub mod lease;
pub mod names;
pub mod plan;
pub mod profile;
pub mod resolve;
pub mod rootfs;
pub mod serve;
pub mod session;
pub mod state;
