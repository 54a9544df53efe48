//! The few kernel operations whose effect is more than writing a file: making
//! and removing cgroup directories, signalling processes, asking whether a pid
//! lives. They sit behind [`Kernel`] so the tests run the manager against a
//! fake cgroupfs and never signal a real process.

use std::fs;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::files::read_pids;

/// What the manager asks of the kernel besides reading and writing control files.
pub trait Kernel: Send + Sync {
    /// Creates a cgroup directory; fails if it exists (never reuse another run's).
    fn mkdir(&self, dir: &Path) -> io::Result<()>;
    /// Removes an empty cgroup directory (`EBUSY` while processes are still leaving).
    fn rmdir(&self, dir: &Path) -> io::Result<()>;
    /// Moves process `pid` into the cgroup of `procs_file` (its `cgroup.procs`):
    /// the kernel takes it out of the cgroup it was in.
    fn move_process(&self, pid: i32, procs_file: &Path) -> io::Result<()>;
    /// Sends SIGKILL to `pid` if, and only if, it is still listed in `procs_file`.
    fn kill_member(&self, pid: i32, procs_file: &Path) -> io::Result<()>;
    /// Whether a process with this pid exists (in this pid namespace).
    fn is_alive(&self, pid: i32) -> bool;
    /// Waits a little for processes to exit.
    fn pause(&self, duration: Duration);
}

/// The real kernel.
pub struct RealKernel;

impl Kernel for RealKernel {
    fn mkdir(&self, dir: &Path) -> io::Result<()> {
        // create_dir, not create_dir_all: the parent is the tool's own cgroup and
        // must already exist; nothing above it is ever created.
        fs::create_dir(dir)
    }

    fn rmdir(&self, dir: &Path) -> io::Result<()> {
        // remove_dir is rmdir(2): on cgroupfs it removes the control files with the
        // directory, and it never recurses into anything.
        fs::remove_dir(dir)
    }

    fn move_process(&self, pid: i32, procs_file: &Path) -> io::Result<()> {
        super::files::write_value(procs_file, &pid.to_string())
    }

    fn kill_member(&self, pid: i32, procs_file: &Path) -> io::Result<()> {
        refuse_unsafe_pid(pid)?;
        match pidfd_open(pid) {
            Ok(pidfd) => kill_through_pidfd(&pidfd, pid, procs_file),
            Err(Errno::ESRCH) => Ok(()),
            // Kernels before 5.3: check membership, then kill by pid.
            Err(Errno::ENOSYS) => kill_by_pid(pid, procs_file),
            Err(errno) => Err(errno.into()),
        }
    }

    fn is_alive(&self, pid: i32) -> bool {
        // Signal 0 only checks. EPERM means it exists but belongs to someone else.
        // A zombie (exited, never reaped by a careless parent) is not alive.
        pid > 0 && !matches!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH)) && !is_zombie(pid)
    }

    fn pause(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next().map(|s| s == "Z")))
        .unwrap_or(false)
}

/// pid 0 and negative pids address process groups or every process, and the
/// tool must never kill itself or init: none of them can be a sandbox member.
fn refuse_unsafe_pid(pid: i32) -> io::Result<()> {
    if pid <= 1 || pid == std::process::id() as i32 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("refusing to signal pid {pid}")));
    }
    Ok(())
}

/// A pidfd pins one process: once it is open, a pid that was reused by an
/// unrelated process in the meantime can no longer be signalled by mistake.
/// So: open, confirm the pid is (still) in our cgroup, then signal the pidfd.
fn kill_through_pidfd(pidfd: &OwnedFd, pid: i32, procs_file: &Path) -> io::Result<()> {
    if !is_listed(pid, procs_file)? {
        return Ok(());
    }
    match pidfd_send_sigkill(pidfd) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}

fn kill_by_pid(pid: i32, procs_file: &Path) -> io::Result<()> {
    if !is_listed(pid, procs_file)? {
        return Ok(());
    }
    match kill(Pid::from_raw(pid), Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}

fn is_listed(pid: i32, procs_file: &Path) -> io::Result<bool> {
    match read_pids(procs_file) {
        Ok(pids) => Ok(pids.contains(&pid)),
        // The cgroup is gone, so the pid is no longer ours.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn pidfd_send_sigkill(pidfd: &OwnedFd) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    let info: *const libc::siginfo_t = std::ptr::null();
    // SAFETY: a valid pidfd, a signal number, a null siginfo (the default) and no flags.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), libc::SIGKILL, info, 0) };
    if rc < 0 { Err(Errno::last()) } else { Ok(()) }
}
