//! `sandbox`: build identical lab environments and run students inside them.
//!
//! The data flow (see DESIGN.md): profile -> manifest -> rootfs in the store ->
//! plan -> executor. Each stage is a module with one job.

pub mod profile;
pub mod resolve;
pub mod rootfs;
pub mod state;
pub mod cli;
pub mod cgroup;
pub mod doctor;
pub mod isolate;
pub mod plan;
pub mod session;
pub mod explain;
pub mod instance;
pub mod export;
pub mod lab;
