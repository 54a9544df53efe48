//! Records each call as a typed [`Call`] instead of making it, and fails the
//! calls a test chooses with the errno it chooses.

use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MntFlags;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::{Call, Forked, Kernel, MountArgs, SysError, SysResult};
use crate::plan::{CgroupWrite, Namespace};

/// The PID a recorded clone or fork returns to the parent.
pub(crate) const RECORDED_CHILD: i32 = 4242;

type Failing = Box<dyn Fn(&Call) -> bool>;

#[derive(Default)]
pub(crate) struct Recorder {
    pub calls: Vec<Call>,
    /// The first call for which this says yes fails with the errno.
    pub fail_when: Option<(Failing, Errno)>,
    /// Clone and fork return the child's side instead of the parent's.
    pub as_child: bool,
    /// The last descriptor number handed out (`open_path`).
    pub next_fd: RawFd,
}

impl Recorder {
    /// A recorder whose calls matching `when` fail with `errno`.
    #[cfg(test)]
    pub fn failing(when: impl Fn(&Call) -> bool + 'static, errno: Errno) -> Recorder {
        Recorder { fail_when: Some((Box::new(when), errno)), ..Recorder::new() }
    }

    /// A recorder whose descriptors start at 10 (what a process has open below is not ours).
    #[cfg(test)]
    pub fn new() -> Recorder {
        Recorder { next_fd: 9, ..Default::default() }
    }

    fn record(&mut self, call: Call) -> SysResult {
        let failing = self.fail_when.as_ref().filter(|(when, _)| when(&call)).map(|(_, errno)| *errno);
        let text = call.to_string();
        self.calls.push(call);
        match failing {
            Some(errno) => Err(SysError { call: text, errno }),
            None => Ok(()),
        }
    }

    fn forked(&self) -> Forked {
        if self.as_child { Forked::Child } else { Forked::Parent(Pid::from_raw(RECORDED_CHILD)) }
    }

    /// The calls, one a line, as a snapshot test compares them.
    pub fn lines(&self) -> Vec<String> {
        self.calls.iter().map(|c| c.to_string()).collect()
    }
}

impl Kernel for Recorder {
    fn clone3(&mut self, flags: CloneFlags, into_cgroup: Option<&Path>) -> SysResult<Forked> {
        self.record(Call::Clone3 { flags, into_cgroup: into_cgroup.map(Path::to_path_buf) })?;
        Ok(self.forked())
    }
    fn fork(&mut self) -> SysResult<Forked> {
        self.record(Call::Fork)?;
        Ok(self.forked())
    }
    fn wait(&mut self, pid: Pid) -> SysResult<i32> {
        self.record(Call::Wait { pid: pid.as_raw() }).map(|()| 0)
    }
    fn kill(&mut self, pid: Pid, signal: Signal) -> SysResult {
        self.record(Call::Kill { pid: pid.as_raw(), signal })
    }
    fn set_parent_death_signal(&mut self) -> SysResult {
        self.record(Call::ParentDeathSignal)
    }
    fn unshare(&mut self, flags: CloneFlags) -> SysResult {
        self.record(Call::Unshare { flags })
    }
    fn setns(&mut self, pid: i32, namespaces: &[Namespace]) -> SysResult {
        self.record(Call::Setns { pid, namespaces: namespaces.to_vec() })
    }
    fn mount(&mut self, args: MountArgs) -> SysResult {
        self.record(Call::Mount(args))
    }
    fn mount_setattr(&mut self, path: &Path, recursive: bool, set: u64) -> SysResult {
        self.record(Call::MountSetattr { path: path.into(), recursive, set })
    }
    fn umount(&mut self, target: &Path, flags: MntFlags) -> SysResult {
        self.record(Call::Umount { target: target.into(), flags })
    }
    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> SysResult {
        self.record(Call::PivotRoot { new_root: new_root.into(), put_old: put_old.into() })
    }
    fn idmapped_tree(&mut self, path: &Path, userns_of: Pid) -> SysResult<OwnedFd> {
        self.record(Call::IdmappedTree { path: path.into(), userns_of: userns_of.as_raw() })?;
        // A harmless real descriptor stands for the tree.
        std::fs::File::open("/dev/null").map(OwnedFd::from).map_err(|_| SysError { call: "open(/dev/null)".into(), errno: Errno::EIO })
    }
    fn disk_mount(&mut self, image: &Path, readonly: bool) -> SysResult<OwnedFd> {
        self.record(Call::DiskMount { image: image.into(), readonly })?;
        // A harmless real descriptor stands for the mount.
        std::fs::File::open("/dev/null").map(OwnedFd::from).map_err(|_| SysError { call: "open(/dev/null)".into(), errno: Errno::EIO })
    }
    fn attach_mount(&mut self, _fd: RawFd, target: &Path) -> SysResult {
        self.record(Call::AttachMount { target: target.into() })
    }
    fn chroot(&mut self, path: &Path) -> SysResult {
        self.record(Call::Chroot { path: path.into() })
    }
    fn chdir(&mut self, path: &Path) -> SysResult {
        self.record(Call::Chdir { path: path.into() })
    }
    fn sethostname(&mut self, name: &str) -> SysResult {
        self.record(Call::Sethostname { name: name.into() })
    }
    fn create_file(&mut self, path: &Path, mode: u32) -> SysResult {
        self.record(Call::CreateFile { path: path.into(), mode })
    }
    fn mkdir(&mut self, path: &Path, mode: u32) -> SysResult {
        self.record(Call::Mkdir { path: path.into(), mode })
    }
    fn symlink(&mut self, target: &Path, link: &Path) -> SysResult {
        self.record(Call::Symlink { target: target.into(), link: link.into() })
    }
    fn write_file(&mut self, path: &Path, content: &str) -> SysResult {
        self.record(Call::WriteFile { path: path.into(), content: content.into() })
    }
    fn loopback_up(&mut self) -> SysResult {
        self.record(Call::LoopbackUp)
    }
    fn open_path(&mut self, path: &Path) -> SysResult<RawFd> {
        self.record(Call::OpenPath { path: path.into() })?;
        self.next_fd += 1;
        Ok(self.next_fd)
    }
    fn take_terminal(&mut self) -> SysResult {
        self.record(Call::TakeTerminal)
    }
    fn set_ids(&mut self, uid: u32, gid: u32, clear_groups: bool) -> SysResult {
        self.record(Call::SetIds { uid, gid, clear_groups })
    }
    fn set_dumpable(&mut self) -> SysResult {
        self.record(Call::SetDumpable)
    }
    fn keep_capabilities(&mut self, keep: &[caps::Capability]) -> SysResult {
        self.record(Call::KeepCapabilities { keep: keep.iter().map(|c| c.to_string()).collect() })
    }
    fn no_new_privs(&mut self) -> SysResult {
        self.record(Call::NoNewPrivs)
    }
    fn seccomp(&mut self, program: &[seccompiler::sock_filter]) -> SysResult {
        self.record(Call::Seccomp { instructions: program.len() })
    }
    fn setsid(&mut self) -> SysResult {
        self.record(Call::Setsid)
    }
    fn join_session_keyring(&mut self) -> SysResult {
        self.record(Call::JoinSessionKeyring)
    }
    fn dup3(&mut self, from: RawFd, to: RawFd) -> SysResult {
        self.record(Call::Dup3 { from, to })
    }
    fn close_range(&mut self, first: u32, last: u32) -> SysResult {
        self.record(Call::CloseRange { first, last })
    }
    fn cgroup_create(&mut self, dirs: &[PathBuf], enable: Option<&CgroupWrite>) -> SysResult {
        self.record(Call::CgroupCreate { dirs: dirs.to_vec(), enable: enable.cloned() })
    }
    fn cgroup_join(&mut self, procs: &[PathBuf], pid: Pid) -> SysResult {
        self.record(Call::CgroupJoin { procs: procs.to_vec(), pid: pid.as_raw() })
    }
    fn cgroup_move_self(&mut self, leaf: &Path) -> SysResult {
        self.record(Call::CgroupMoveSelf { leaf: leaf.into() })
    }
    fn cgroup_remove(&mut self, dirs: &[PathBuf]) -> SysResult {
        self.record(Call::CgroupRemove { dirs: dirs.to_vec() })
    }
}
