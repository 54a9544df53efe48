//! Every privileged call of a launch goes through [`Kernel`], the supervisor's
//! included: the real kernel in a run ([`Real`]), a [`Recorder`] in unit tests
//! and for the step texts (as youki's `Syscall` trait). The recorder logs each
//! call as a typed [`Call`], so a whole launch is a list that a snapshot test
//! compares, and the `syscall` text of a step is that list rendered.

mod call;
mod disk;
mod real;
pub(crate) mod recorder;

use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MntFlags;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

pub(crate) use call::{Call, MountArgs, TEXT_CHANNEL};
pub(crate) use real::Real;
pub(crate) use recorder::Recorder;

use crate::plan::{CgroupWrite, Namespace};

/// A failed system call: which, with what, and the errno.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{call}: {errno}")]
pub struct SysError {
    pub call: String,
    pub errno: Errno,
}

pub type SysResult<T = ()> = Result<T, SysError>;

pub(crate) fn fail(call: impl Into<String>) -> impl FnOnce(Errno) -> SysError {
    let call = call.into();
    move |errno| SysError { call, errno }
}

/// Which side of a fork or clone this process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Forked {
    Child,
    Parent(Pid),
}

/// Attributes of `mount_setattr(2)`.
pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub(crate) const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub(crate) const MOUNT_ATTR_NODEV: u64 = 0x4;
pub(crate) const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

pub(crate) trait Kernel {
    // ----- processes
    /// A new process with these namespaces (clone3), born in the cgroup
    /// `into_cgroup` when given (CLONE_INTO_CGROUP).
    fn clone3(&mut self, flags: CloneFlags, into_cgroup: Option<&Path>) -> SysResult<Forked>;
    fn fork(&mut self) -> SysResult<Forked>;
    /// waitpid until `pid` ends: its exit status, or 128+N for a death by signal N.
    fn wait(&mut self, pid: Pid) -> SysResult<i32>;
    fn kill(&mut self, pid: Pid, signal: Signal) -> SysResult;
    /// prctl(PR_SET_PDEATHSIG, SIGKILL): die with the supervisor. A change of
    /// credentials clears it, so it is armed again after each.
    fn set_parent_death_signal(&mut self) -> SysResult;
    fn unshare(&mut self, flags: CloneFlags) -> SysResult;
    /// setns(2) into the namespaces `/proc/PID/ns/NAME` of a running sandbox,
    /// in this order. All are opened first: once in its user namespace, this
    /// process may no longer open the others' /proc files.
    fn setns(&mut self, pid: i32, namespaces: &[Namespace]) -> SysResult;

    // ----- mounts
    fn mount(&mut self, args: MountArgs) -> SysResult;
    /// Set attributes of the mount at `path` (and every mount below when `recursive`).
    fn mount_setattr(&mut self, path: &Path, recursive: bool, set: u64) -> SysResult;
    fn umount(&mut self, target: &Path, flags: MntFlags) -> SysResult;
    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> SysResult;
    /// A detached, read-only, nosuid, nodev copy of the mount at `path` whose
    /// owners are shifted into the user namespace of `userns_of`.
    fn idmapped_tree(&mut self, path: &Path, userns_of: Pid) -> SysResult<OwnedFd>;
    /// A detached ext4 mount of an instance's disk image, on a loop device
    /// that clears itself when the mount is gone (see `disk`).
    fn disk_mount(&mut self, image: &Path, readonly: bool) -> SysResult<OwnedFd>;
    /// Attach a detached mount (the idmapped tree, the disk) at `target`.
    fn attach_mount(&mut self, fd: RawFd, target: &Path) -> SysResult;

    // ----- files, names, network
    fn chroot(&mut self, path: &Path) -> SysResult;
    fn chdir(&mut self, path: &Path) -> SysResult;
    fn sethostname(&mut self, name: &str) -> SysResult;
    /// An empty file to bind a device or /dev/null onto.
    fn create_file(&mut self, path: &Path, mode: u32) -> SysResult;
    fn mkdir(&mut self, path: &Path, mode: u32) -> SysResult;
    fn symlink(&mut self, target: &Path, link: &Path) -> SysResult;
    /// Write an existing file (a /proc or cgroup file) in one write; never creates it.
    fn write_file(&mut self, path: &Path, content: &str) -> SysResult;
    fn loopback_up(&mut self) -> SysResult;
    /// An O_PATH descriptor of a directory, to reach it later without walking its path.
    fn open_path(&mut self, path: &Path) -> SysResult<RawFd>;
    /// ioctl(TIOCSCTTY) on the first standard descriptor that is a terminal
    /// (the sandbox's pty), after setsid.
    fn take_terminal(&mut self) -> SysResult;

    // ----- credentials and restrictions
    /// setgroups([]) when `clear_groups` (an unprivileged map denies it), then
    /// setresgid and setresuid, keeping the permitted capabilities across.
    fn set_ids(&mut self, uid: u32, gid: u32, clear_groups: bool) -> SysResult;
    /// prctl(PR_SET_DUMPABLE, 1): after a uid change, keep /proc/self writable by itself.
    fn set_dumpable(&mut self) -> SysResult;
    fn keep_capabilities(&mut self, keep: &[caps::Capability]) -> SysResult;
    fn no_new_privs(&mut self) -> SysResult;
    fn seccomp(&mut self, program: &[seccompiler::sock_filter]) -> SysResult;
    fn setsid(&mut self) -> SysResult;
    fn join_session_keyring(&mut self) -> SysResult;
    fn dup3(&mut self, from: RawFd, to: RawFd) -> SysResult;
    /// Close the descriptors `first..=last`.
    fn close_range(&mut self, first: u32, last: u32) -> SysResult;

    // ----- cgroups (the adapter to `crate::cgroup::CgroupManager`, see `Real`)
    /// mkdir of every sandbox cgroup (none may exist), and on v2 the
    /// controllers the parent does not hand down yet.
    fn cgroup_create(&mut self, dirs: &[PathBuf], enable: Option<&CgroupWrite>) -> SysResult;
    /// Write `pid` (0: this process) into every `cgroup.procs` file.
    fn cgroup_join(&mut self, procs: &[PathBuf], pid: Pid) -> SysResult;
    /// Move this very process into the leaf `leaf` (created when missing).
    fn cgroup_move_self(&mut self, leaf: &Path) -> SysResult;
    /// Kill what is left in the sandbox's cgroups and remove them.
    fn cgroup_remove(&mut self, dirs: &[PathBuf]) -> SysResult;
}
