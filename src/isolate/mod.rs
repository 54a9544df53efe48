//! The executor: the only place that calls unshare, mount, pivot_root,
//! chroot, setns, capset, prctl and seccomp. It carries out a `Plan` and
//! reports each step as an `Event`.

pub mod event;
pub mod hints;
pub mod kernel;
pub mod observe;
pub mod process;
pub mod pty;
pub mod seccomp;
pub mod setup;

pub use event::Event;
pub use process::{Options, Outcome, launch};
