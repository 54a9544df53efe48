//! The real kernel: each method is the system call(s) its `Call` names.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MntFlags;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use super::call::c_flags;
use super::{
    Forked, Kernel, MOUNT_ATTR_IDMAP, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, MountArgs, SysError, SysResult, fail,
};
use crate::cgroup::CgroupManager;
use crate::plan::{CgroupWrite, Namespace};

/// The real kernel. Cgroup calls go to the sandbox's `CgroupManager` (the
/// adapter between this trait and `crate::cgroup`, whose own `Kernel` makes
/// and removes the directories): a run without a cgroup has none.
pub(crate) struct Real<'a> {
    pub cgroup: Option<&'a dyn CgroupManager>,
}

impl Real<'_> {
    pub fn new(cgroup: Option<&dyn CgroupManager>) -> Real<'_> {
        Real { cgroup }
    }

    fn manager(&self, call: &str) -> SysResult<&dyn CgroupManager> {
        self.cgroup.ok_or_else(|| SysError { call: format!("{call}: no cgroup manager"), errno: Errno::EINVAL })
    }
}

fn cstr(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap_or_else(|_| CString::from(c"/nonexistent-path-with-nul"))
}

fn io_fail(call: String) -> impl FnOnce(std::io::Error) -> SysError {
    move |e| SysError { call: format!("{call}: {e}"), errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)) }
}

/// The kernel's `struct clone_args` (clone3(2)).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

fn forked(rc: libc::c_long) -> Forked {
    if rc == 0 { Forked::Child } else { Forked::Parent(Pid::from_raw(rc as i32)) }
}

// From <linux/mount.h>; spelled out so the code does not hang on a libc version.
const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn mount_setattr(dirfd: RawFd, path: &CString, flags: libc::c_uint, attr: &MountAttr) -> libc::c_long {
    // SAFETY: mount_setattr with a NUL-terminated path and a valid struct of its size.
    unsafe {
        libc::syscall(libc::SYS_mount_setattr, dirfd, path.as_ptr(), flags, attr as *const MountAttr, std::mem::size_of::<MountAttr>())
    }
}

impl Kernel for Real<'_> {
    fn clone3(&mut self, flags: CloneFlags, into_cgroup: Option<&Path>) -> SysResult<Forked> {
        let cgroup = match into_cgroup {
            Some(dir) => Some(
                nix::fcntl::open(dir, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
                    .map_err(fail(format!("open({}, O_PATH)", dir.display())))?,
            ),
            None => None,
        };
        let mut args = CloneArgs { flags: flags.bits() as u64, exit_signal: libc::SIGCHLD as u64, ..Default::default() };
        if let Some(fd) = &cgroup {
            args.flags |= CLONE_INTO_CGROUP;
            args.cgroup = fd.as_raw_fd() as u64;
        }
        // SAFETY: clone3 without CLONE_VM is a fork: the child gets a copy of
        // this single-threaded process and ends in exec or _exit.
        let rc = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
        match Errno::result(rc) {
            Ok(rc) => Ok(forked(rc)),
            // Before Linux 5.3 (clone3) or 5.7 (CLONE_INTO_CGROUP): clone, then join.
            Err(Errno::ENOSYS | Errno::E2BIG) => {
                // SAFETY: clone without a stack is fork with namespace flags.
                let rc =
                    unsafe { libc::syscall(libc::SYS_clone, flags.bits() as libc::c_long | libc::SIGCHLD as libc::c_long, 0, 0, 0, 0) };
                let child = forked(Errno::result(rc).map_err(fail(format!("clone({}|SIGCHLD)", c_flags(flags))))?);
                if let (Forked::Parent(pid), Some(dir)) = (child, into_cgroup) {
                    self.write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
                }
                Ok(child)
            }
            Err(errno) => Err(SysError { call: format!("clone3({})", c_flags(flags)), errno }),
        }
    }

    fn fork(&mut self) -> SysResult<Forked> {
        // SAFETY: the tool is single-threaded when it forks; the child ends in exec or _exit.
        match unsafe { nix::unistd::fork() }.map_err(fail("fork()"))? {
            nix::unistd::ForkResult::Child => Ok(Forked::Child),
            nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        }
    }

    fn wait(&mut self, pid: Pid) -> SysResult<i32> {
        loop {
            match waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(128 + signal as i32),
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(errno) => return Err(SysError { call: format!("waitpid({pid})"), errno }),
            }
        }
    }

    fn kill(&mut self, pid: Pid, signal: Signal) -> SysResult {
        nix::sys::signal::kill(pid, signal).map_err(fail(format!("kill({pid}, {signal})")))
    }

    fn set_parent_death_signal(&mut self) -> SysResult {
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(fail("prctl(PR_SET_PDEATHSIG, SIGKILL)"))
    }

    fn unshare(&mut self, flags: CloneFlags) -> SysResult {
        nix::sched::unshare(flags).map_err(fail(format!("unshare({})", c_flags(flags))))
    }

    fn setns(&mut self, pid: i32, namespaces: &[Namespace]) -> SysResult {
        let mut fds = Vec::new();
        for namespace in namespaces {
            let path = format!("/proc/{pid}/ns/{}", namespace.proc_name());
            let fd = nix::fcntl::open(path.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                .map_err(fail(format!("open({path})")))?;
            fds.push((path, fd));
        }
        // A namespace the sandbox shares with the caller (no cgroup namespace
        // without a cgroup, the host network) is skipped: setns into it would
        // be a no-op, but the kernel checks the rights first, and after
        // joining the sandbox's user namespace the caller has none over the
        // host's namespaces (EPERM). Compared before any setns: after the
        // mount namespace, /proc/self is the sandbox's /proc.
        fds.retain(|(path, fd)| !same_namespace(fd, path));
        for (path, fd) in fds {
            nix::sched::setns(fd, CloneFlags::empty()).map_err(fail(format!("setns({path})")))?;
        }
        Ok(())
    }

    fn mount(&mut self, args: MountArgs) -> SysResult {
        let MountArgs { source, target, fstype, flags, data } = &args;
        nix::mount::mount(source.as_deref(), target.as_path(), *fstype, *flags, data.as_deref())
            .map_err(fail(super::Call::Mount(args.clone()).to_string()))
    }

    fn mount_setattr(&mut self, path: &Path, recursive: bool, set: u64) -> SysResult {
        let attr = MountAttr { attr_set: set, attr_clr: 0, propagation: 0, userns_fd: 0 };
        let flags = if recursive { AT_RECURSIVE } else { 0 };
        let rc = mount_setattr(libc::AT_FDCWD, &cstr(path), flags, &attr);
        Errno::result(rc).map(drop).map_err(fail(super::Call::MountSetattr { path: path.into(), recursive, set }.to_string()))
    }

    fn umount(&mut self, target: &Path, flags: MntFlags) -> SysResult {
        nix::mount::umount2(target, flags).map_err(fail(format!("umount2({}, {})", target.display(), c_flags(flags))))
    }

    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> SysResult {
        nix::unistd::pivot_root(new_root, put_old).map_err(fail(format!("pivot_root({}, {})", new_root.display(), put_old.display())))
    }

    fn idmapped_tree(&mut self, path: &Path, userns_of: Pid) -> SysResult<OwnedFd> {
        let userns = format!("/proc/{userns_of}/ns/user");
        let userns = nix::fcntl::open(userns.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(fail(format!("open({userns})")))?;
        let path_c = cstr(path);
        // SAFETY: open_tree with a NUL-terminated path; the result is a new fd we own.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                path_c.as_ptr(),
                OPEN_TREE_CLONE | AT_RECURSIVE | libc::O_CLOEXEC as libc::c_uint,
            )
        };
        let fd = Errno::result(fd).map_err(fail(format!("open_tree({}, OPEN_TREE_CLONE)", path.display())))?;
        // SAFETY: fd was just returned by open_tree.
        let tree = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        // Private too: a clone of a shared mount (systemd makes every mount
        // shared) joins its peer group, and the sandbox's mounts on top of it
        // would then propagate back to the host's store, and pivot_root
        // refuses a new root whose parent is shared.
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            attr_clr: 0,
            propagation: libc::MS_PRIVATE,
            userns_fd: userns.as_raw_fd() as u64,
        };
        let rc = mount_setattr(tree.as_raw_fd(), &CString::default(), (libc::AT_EMPTY_PATH as libc::c_uint) | AT_RECURSIVE, &attr);
        Errno::result(rc).map_err(fail("mount_setattr(MOUNT_ATTR_IDMAP)"))?;
        Ok(tree)
    }

    fn disk_mount(&mut self, image: &Path, readonly: bool) -> SysResult<OwnedFd> {
        super::disk::mount_image(image, readonly)
    }

    fn attach_mount(&mut self, fd: RawFd, target: &Path) -> SysResult {
        let target_c = cstr(target);
        // SAFETY: move_mount with a valid fd, an empty C string and a NUL-terminated path.
        let rc =
            unsafe { libc::syscall(libc::SYS_move_mount, fd, c"".as_ptr(), libc::AT_FDCWD, target_c.as_ptr(), MOVE_MOUNT_F_EMPTY_PATH) };
        Errno::result(rc).map(drop).map_err(fail(format!("move_mount(fd {fd}, {})", target.display())))
    }

    fn chroot(&mut self, path: &Path) -> SysResult {
        nix::unistd::chroot(path).map_err(fail(format!("chroot({})", path.display())))
    }

    fn chdir(&mut self, path: &Path) -> SysResult {
        nix::unistd::chdir(path).map_err(fail(format!("chdir({})", path.display())))
    }

    fn sethostname(&mut self, name: &str) -> SysResult {
        nix::unistd::sethostname(name).map_err(fail(format!("sethostname({name})")))
    }

    fn create_file(&mut self, path: &Path, mode: u32) -> SysResult {
        // mknod of a regular file needs no privilege and, unlike open, no close.
        nix::sys::stat::mknod(path, nix::sys::stat::SFlag::S_IFREG, Mode::from_bits_truncate(mode), 0)
            .map_err(fail(format!("mknod({}, S_IFREG)", path.display())))
    }

    fn mkdir(&mut self, path: &Path, mode: u32) -> SysResult {
        match nix::unistd::mkdir(path, Mode::from_bits_truncate(mode)) {
            Ok(()) | Err(Errno::EEXIST) => Ok(()),
            Err(e) => Err(fail(format!("mkdir({})", path.display()))(e)),
        }
    }

    fn symlink(&mut self, target: &Path, link: &Path) -> SysResult {
        nix::unistd::symlinkat(target, nix::fcntl::AT_FDCWD, link).map_err(fail(format!(
            "symlink({}, {})",
            target.display(),
            link.display()
        )))
    }

    fn write_file(&mut self, path: &Path, content: &str) -> SysResult {
        let call = || format!("write({}, {content:?})", path.display());
        let fd = nix::fcntl::open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| fail(call())(e))?;
        match nix::unistd::write(&fd, content.as_bytes()) {
            Ok(n) if n == content.len() => Ok(()),
            Ok(_) => Err(SysError { call: call(), errno: Errno::EIO }),
            Err(e) => Err(fail(call())(e)),
        }
    }

    fn loopback_up(&mut self) -> SysResult {
        // SAFETY: a plain socket(2); the fd is owned right away.
        let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        let sock = Errno::result(sock).map_err(fail("socket(AF_INET, SOCK_DGRAM)"))?;
        // SAFETY: sock is a fresh, valid fd.
        let sock = unsafe { OwnedFd::from_raw_fd(sock) };
        // SAFETY: ifreq is plain old data; zeroed is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        // A new network namespace's lo is down with no other flag: set them, no need to read first.
        req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        // SAFETY: valid socket and ifreq pointer for SIOCSIFFLAGS.
        Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) })
            .map(drop)
            .map_err(fail("ioctl(SIOCSIFFLAGS, lo, IFF_UP)"))
    }

    fn open_path(&mut self, path: &Path) -> SysResult<RawFd> {
        use std::os::fd::IntoRawFd;
        nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map(IntoRawFd::into_raw_fd)
            .map_err(fail(format!("open({}, O_PATH)", path.display())))
    }

    fn take_terminal(&mut self) -> SysResult {
        crate::isolate::pty::take_controlling();
        Ok(())
    }

    fn set_ids(&mut self, uid: u32, gid: u32, clear_groups: bool) -> SysResult {
        use nix::unistd::{Gid, Uid};
        if clear_groups {
            nix::unistd::setgroups(&[]).map_err(fail("setgroups([])"))?;
        }
        let g = Gid::from_raw(gid);
        nix::unistd::setresgid(g, g, g).map_err(fail(format!("setresgid({gid})")))?;
        // Keep the permitted capabilities across the uid change: the next step
        // still has to drop the bounding set, which needs CAP_SETPCAP.
        nix::sys::prctl::set_keepcaps(true).map_err(fail("prctl(PR_SET_KEEPCAPS, 1)"))?;
        let u = Uid::from_raw(uid);
        nix::unistd::setresuid(u, u, u).map_err(fail(format!("setresuid({uid})")))?;
        nix::sys::prctl::set_keepcaps(false).map_err(fail("prctl(PR_SET_KEEPCAPS, 0)"))
    }

    fn set_dumpable(&mut self) -> SysResult {
        nix::sys::prctl::set_dumpable(true).map_err(fail("prctl(PR_SET_DUMPABLE, 1)"))
    }

    fn keep_capabilities(&mut self, keep: &[caps::Capability]) -> SysResult {
        use caps::{CapSet, CapsHashSet};
        let keep_set: CapsHashSet = keep.iter().copied().collect();
        let to_errno = |what: &str| {
            let what = what.to_string();
            move |e: caps::errors::CapsError| SysError { call: format!("{what}: {e}"), errno: Errno::EPERM }
        };
        // A uid change cleared the effective set: raise what is still permitted.
        let permitted = caps::read(None, CapSet::Permitted).map_err(to_errno("capget(permitted)"))?;
        caps::set(None, CapSet::Effective, &permitted).map_err(to_errno("capset(effective)"))?;
        // The bounding set first: it needs CAP_SETPCAP, which the last lines may drop.
        for cap in caps::all() {
            if !keep_set.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap).map_err(to_errno("prctl(PR_CAPBSET_DROP)"))?;
            }
        }
        caps::clear(None, CapSet::Ambient).map_err(to_errno("prctl(PR_CAP_AMBIENT_CLEAR_ALL)"))?;
        caps::set(None, CapSet::Inheritable, &CapsHashSet::new()).map_err(to_errno("capset(inheritable)"))?;
        caps::set(None, CapSet::Effective, &keep_set).map_err(to_errno("capset(effective)"))?;
        caps::set(None, CapSet::Permitted, &keep_set).map_err(to_errno("capset(permitted)"))
    }

    fn no_new_privs(&mut self) -> SysResult {
        nix::sys::prctl::set_no_new_privs().map_err(fail("prctl(PR_SET_NO_NEW_PRIVS, 1)"))
    }

    fn seccomp(&mut self, program: &[seccompiler::sock_filter]) -> SysResult {
        crate::isolate::seccomp::apply(program)
            .map_err(|e| SysError { call: format!("seccomp(SECCOMP_SET_MODE_FILTER): {e}"), errno: Errno::EPERM })
    }

    fn setsid(&mut self) -> SysResult {
        nix::unistd::setsid().map(drop).map_err(fail("setsid()"))
    }

    fn join_session_keyring(&mut self) -> SysResult {
        const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
        // SAFETY: keyctl with a NULL name makes an anonymous session keyring.
        let rc = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, std::ptr::null::<libc::c_char>()) };
        Errno::result(rc).map(drop).map_err(fail("keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)"))
    }

    fn dup3(&mut self, from: RawFd, to: RawFd) -> SysResult {
        // SAFETY: dup3 onto a descriptor number this process owns.
        let rc = unsafe { libc::dup3(from, to, libc::O_CLOEXEC) };
        Errno::result(rc).map(drop).map_err(fail(format!("dup3({from}, {to}, O_CLOEXEC)")))
    }

    fn close_range(&mut self, first: u32, last: u32) -> SysResult {
        // SAFETY: close_range only closes descriptors; nothing of ours in the range is used after.
        let rc = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
        Errno::result(rc).map(drop).map_err(fail(format!("close_range({first}, {last})")))
    }

    fn cgroup_create(&mut self, dirs: &[PathBuf], _enable: Option<&CgroupWrite>) -> SysResult {
        // The manager writes the enabling itself, once, after its mkdir.
        let call = format!("mkdir({})", dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "));
        self.manager(&call)?.create().map_err(io_fail(call))
    }

    fn cgroup_join(&mut self, procs: &[PathBuf], pid: Pid) -> SysResult {
        let pid = if pid.as_raw() == 0 { nix::unistd::getpid() } else { pid };
        let call = format!("write(cgroup.procs, {pid})");
        match self.cgroup {
            Some(manager) => manager.add_process(pid.as_raw()).map_err(io_fail(call)),
            // Without a manager (exec of an instance whose cgroup is known by its files only).
            None => procs.iter().try_for_each(|p| self.write_file(p, &pid.to_string())),
        }
    }

    fn cgroup_move_self(&mut self, leaf: &Path) -> SysResult {
        match std::fs::create_dir(leaf) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_fail(format!("mkdir({})", leaf.display()))(e)),
        }
        self.write_file(&leaf.join("cgroup.procs"), &std::process::id().to_string())
    }

    fn cgroup_remove(&mut self, dirs: &[PathBuf]) -> SysResult {
        let call = format!("rmdir({})", dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "));
        let manager = self.manager(&call)?;
        let killed = manager.kill_all().map_err(io_fail(format!("kill_all({call})")));
        manager.remove().map_err(io_fail(call))?;
        killed
    }
}

/// Whether the namespace open as `fd` (from `/proc/PID/ns/NAME`) is the
/// calling process's own `/proc/self/ns/NAME`.
fn same_namespace(fd: &impl std::os::fd::AsFd, path: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(name) = path.rsplit('/').next() else { return false };
    let (Ok(theirs), Ok(ours)) = (nix::sys::stat::fstat(fd.as_fd()), std::fs::metadata(format!("/proc/self/ns/{name}"))) else {
        return false;
    };
    theirs.st_ino == ours.ino() && theirs.st_dev == ours.dev()
}
