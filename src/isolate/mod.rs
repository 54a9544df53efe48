//! The executor: the only place that calls clone3, unshare, mount, pivot_root,
//! chroot, setns, capset, prctl and seccomp, all through one `Kernel` trait.
//! It interprets a `Plan`: the supervisor's steps on the host
//! ([`supervisor`]), the sandbox's own in its processes ([`child`], [`pid1`]),
//! and reports each step as an `Event`.

mod channel;
mod child;
mod command;
pub mod hints;
mod kernel;
mod observe;
mod pid1;
pub mod probe;
pub mod pty;
pub mod seccomp;
mod setup;
mod supervisor;

#[cfg(test)]
mod snapshots;

pub use channel::Event;
pub use command::{NOT_EXECUTABLE, NOT_FOUND, TOOL_FAILED};
pub use kernel::{SysError, SysResult};
pub(crate) use setup::describe;
pub use supervisor::{LaunchError, Options, Outcome, Pause, launch};

/// `sandbox stop`: a signal to a running sandbox's PID 1, through the executor's kernel
/// (PID 1 passes SIGTERM on to its command's group, or ends a background instance).
pub fn signal_sandbox(init_pid: i32, signal: nix::sys::signal::Signal) -> SysResult {
    use kernel::Kernel;
    kernel::Real::new(None).kill(nix::unistd::Pid::from_raw(init_pid), signal)
}

/// The tool's own look at a stopped instance's disk image (`diff`, lab
/// checks, moving its owners): a detached mount reached as
/// `/proc/self/fd/N/`, in no mount namespace, gone (with its loop device)
/// when the descriptor is dropped. `readonly`: nothing is written, not even
/// the journal.
pub fn open_disk(image: &std::path::Path, readonly: bool) -> SysResult<std::os::fd::OwnedFd> {
    use kernel::Kernel;
    kernel::Real::new(None).disk_mount(image, readonly)
}
