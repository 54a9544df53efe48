//! Every privileged call the executor makes goes through `Kernel`: the real
//! kernel in a run, a `Recorder` in unit tests (as youki's `Syscall` trait),
//! so the order and arguments of each call are tested without root.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

/// A failed system call: which, with what, and the errno.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{call}: {errno}")]
pub struct SysError {
    pub call: String,
    pub errno: Errno,
}

pub type SysResult<T = ()> = Result<T, SysError>;

fn fail(call: impl Into<String>) -> impl FnOnce(Errno) -> SysError {
    let call = call.into();
    move |errno| SysError { call, errno }
}

pub trait Kernel {
    fn unshare(&mut self, flags: CloneFlags) -> SysResult;
    fn mount(&mut self, source: Option<&Path>, target: &Path, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> SysResult;
    fn umount(&mut self, target: &Path, flags: MntFlags) -> SysResult;
    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> SysResult;
    /// setns(2) into the namespaces `/proc/PID/ns/NAME` of a running sandbox,
    /// in this order. All are opened first: once in its user namespace, this
    /// process may no longer open the others' /proc files.
    fn setns(&mut self, pid: i32, namespaces: &[&str]) -> SysResult;
    fn chroot(&mut self, path: &Path) -> SysResult;
    fn chdir(&mut self, path: &Path) -> SysResult;
    fn sethostname(&mut self, name: &str) -> SysResult;
    /// An empty file to bind a device or /dev/null onto.
    fn create_file(&mut self, path: &Path, mode: u32) -> SysResult;
    fn mkdir(&mut self, path: &Path, mode: u32) -> SysResult;
    fn symlink(&mut self, target: &Path, link: &Path) -> SysResult;
    fn write_file(&mut self, path: &Path, content: &str) -> SysResult;
    /// Attach a detached mount (an idmapped rootfs made by the supervisor) at `target`.
    fn attach_mount(&mut self, fd: RawFd, target: &Path) -> SysResult;
    fn loopback_up(&mut self) -> SysResult;
    fn set_ids(&mut self, uid: u32, gid: u32) -> SysResult;
    /// setresgid/setresuid only (no setgroups, which an unprivileged map denies).
    fn switch_ids(&mut self, uid: u32, gid: u32) -> SysResult;
    fn keep_capabilities(&mut self, keep: &[caps::Capability]) -> SysResult;
    fn no_new_privs(&mut self) -> SysResult;
    fn seccomp(&mut self) -> SysResult;
    fn setsid(&mut self) -> SysResult;
    fn join_session_keyring(&mut self) -> SysResult;
    /// Close every fd from `first` up, except `keep` (the event channel, close-on-exec).
    fn close_fds(&mut self, first: RawFd, keep: Option<RawFd>) -> SysResult;
}

/// `MsFlags(MS_BIND | MS_REC)` -> `MS_BIND | MS_REC`: flags as a person writes them.
fn bare(flags: impl std::fmt::Debug) -> String {
    let text = format!("{flags:?}");
    match (text.find('('), text.ends_with(')')) {
        (Some(open), true) => text[open + 1..text.len() - 1].to_string(),
        _ => text,
    }
}

fn cstr(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap_or_else(|_| CString::from(c"/nonexistent-path-with-nul"))
}

/// The real kernel.
pub struct Real;

impl Kernel for Real {
    fn unshare(&mut self, flags: CloneFlags) -> SysResult {
        nix::sched::unshare(flags).map_err(fail(format!("unshare({})", bare(flags))))
    }

    fn mount(&mut self, source: Option<&Path>, target: &Path, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> SysResult {
        nix::mount::mount(source, target, fstype, flags, data).map_err(fail(format!(
            "mount({}, {}, {}, {})",
            source.map(|s| s.display().to_string()).unwrap_or("NULL".into()),
            target.display(),
            fstype.unwrap_or("NULL"),
            bare(flags)
        )))
    }

    fn umount(&mut self, target: &Path, flags: MntFlags) -> SysResult {
        nix::mount::umount2(target, flags).map_err(fail(format!("umount2({}, {})", target.display(), bare(flags))))
    }

    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> SysResult {
        nix::unistd::pivot_root(new_root, put_old).map_err(fail(format!("pivot_root({}, {})", new_root.display(), put_old.display())))
    }

    fn setns(&mut self, pid: i32, namespaces: &[&str]) -> SysResult {
        let mut fds = Vec::new();
        for namespace in namespaces {
            let path = format!("/proc/{pid}/ns/{namespace}");
            let fd =
                nix::fcntl::open(path.as_str(), nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
                    .map_err(fail(format!("open({path})")))?;
            fds.push((path, fd));
        }
        for (path, fd) in fds {
            nix::sched::setns(fd, CloneFlags::empty()).map_err(fail(format!("setns({path})")))?;
        }
        Ok(())
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
        use nix::fcntl::OFlag;
        let flags = OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
        nix::fcntl::open(path, flags, nix::sys::stat::Mode::from_bits_truncate(mode))
            .map(drop)
            .map_err(fail(format!("open({}, O_CREAT)", path.display())))
    }

    fn mkdir(&mut self, path: &Path, mode: u32) -> SysResult {
        match nix::unistd::mkdir(path, nix::sys::stat::Mode::from_bits_truncate(mode)) {
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
        std::fs::write(path, content).map_err(|e| SysError {
            call: format!("write({}, {content:?})", path.display()),
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })
    }

    fn attach_mount(&mut self, fd: RawFd, target: &Path) -> SysResult {
        let target_c = cstr(target);
        // SAFETY: move_mount with a valid fd, an empty C string and a NUL-terminated path.
        let rc =
            unsafe { libc::syscall(libc::SYS_move_mount, fd, c"".as_ptr(), libc::AT_FDCWD, target_c.as_ptr(), MOVE_MOUNT_F_EMPTY_PATH) };
        Errno::result(rc).map(drop).map_err(fail(format!("move_mount(fd {fd}, {})", target.display())))
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
        // SAFETY: valid socket and ifreq pointer for SIOCGIFFLAGS/SIOCSIFFLAGS.
        Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) }).map_err(fail("ioctl(SIOCGIFFLAGS, lo)"))?;
        // SAFETY: the union member ifru_flags is the one SIOCGIFFLAGS filled.
        unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
        // SAFETY: as above.
        Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) })
            .map(drop)
            .map_err(fail("ioctl(SIOCSIFFLAGS, lo, IFF_UP)"))
    }

    fn set_ids(&mut self, uid: u32, gid: u32) -> SysResult {
        use nix::unistd::{Gid, Uid};
        nix::unistd::setgroups(&[]).map_err(fail("setgroups([])"))?;
        let g = Gid::from_raw(gid);
        nix::unistd::setresgid(g, g, g).map_err(fail(format!("setresgid({gid})")))?;
        // Keep the permitted capabilities across the uid change: the next step
        // still has to drop the bounding set, which needs CAP_SETPCAP.
        nix::sys::prctl::set_keepcaps(true).map_err(fail("prctl(PR_SET_KEEPCAPS, 1)"))?;
        let u = Uid::from_raw(uid);
        nix::unistd::setresuid(u, u, u).map_err(fail(format!("setresuid({uid})")))?;
        nix::sys::prctl::set_keepcaps(false).map_err(fail("prctl(PR_SET_KEEPCAPS, 0)"))
    }

    fn switch_ids(&mut self, uid: u32, gid: u32) -> SysResult {
        use nix::unistd::{Gid, Uid};
        let g = Gid::from_raw(gid);
        nix::unistd::setresgid(g, g, g).map_err(fail(format!("setresgid({gid})")))?;
        let u = Uid::from_raw(uid);
        nix::unistd::setresuid(u, u, u).map_err(fail(format!("setresuid({uid})")))
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

    fn seccomp(&mut self) -> SysResult {
        let program = super::seccomp::default_filter()
            .map_err(|e| SysError { call: format!("building the seccomp filter: {e}"), errno: Errno::EINVAL })?;
        super::seccomp::apply(&program)
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

    fn close_fds(&mut self, first: RawFd, keep: Option<RawFd>) -> SysResult {
        let close = |from: RawFd, to: u32| {
            // SAFETY: close_range only closes descriptors; nothing of ours past `first` is used after.
            let rc = unsafe { libc::syscall(libc::SYS_close_range, from as u32, to, 0u32) };
            Errno::result(rc).map(drop).map_err(fail(format!("close_range({from}, {to})")))
        };
        match keep {
            Some(k) if k >= first => {
                if k > first {
                    close(first, (k - 1) as u32)?;
                }
                close(k + 1, u32::MAX)
            }
            _ => close(first, u32::MAX),
        }
    }
}

/// Records each call instead of making it; `fail_on` injects an error.
#[derive(Default)]
pub struct Recorder {
    pub calls: Vec<String>,
    pub fail_on: Option<(String, Errno)>,
}

impl Recorder {
    fn record(&mut self, call: String) -> SysResult {
        let failing = self.fail_on.as_ref().filter(|(prefix, _)| call.starts_with(prefix.as_str())).map(|(_, e)| *e);
        self.calls.push(call.clone());
        match failing {
            Some(errno) => Err(SysError { call, errno }),
            None => Ok(()),
        }
    }
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

impl Kernel for Recorder {
    fn unshare(&mut self, flags: CloneFlags) -> SysResult {
        self.record(format!("unshare({})", bare(flags)))
    }
    fn mount(&mut self, source: Option<&Path>, target: &Path, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> SysResult {
        self.record(format!(
            "mount({}, {}, {}, {}, {})",
            source.map(p).unwrap_or("NULL".into()),
            p(target),
            fstype.unwrap_or("NULL"),
            bare(flags),
            data.unwrap_or("NULL")
        ))
    }
    fn umount(&mut self, target: &Path, flags: MntFlags) -> SysResult {
        self.record(format!("umount2({}, {})", p(target), bare(flags)))
    }
    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> SysResult {
        self.record(format!("pivot_root({}, {})", p(new_root), p(put_old)))
    }
    fn chroot(&mut self, path: &Path) -> SysResult {
        self.record(format!("chroot({})", p(path)))
    }
    fn setns(&mut self, pid: i32, namespaces: &[&str]) -> SysResult {
        self.record(format!("setns(/proc/{pid}/ns/{{{}}})", namespaces.join(",")))
    }

    fn chdir(&mut self, path: &Path) -> SysResult {
        self.record(format!("chdir({})", p(path)))
    }
    fn sethostname(&mut self, name: &str) -> SysResult {
        self.record(format!("sethostname({name})"))
    }
    fn create_file(&mut self, path: &Path, mode: u32) -> SysResult {
        self.record(format!("create({}, {mode:o})", p(path)))
    }
    fn mkdir(&mut self, path: &Path, mode: u32) -> SysResult {
        self.record(format!("mkdir({}, {mode:o})", p(path)))
    }
    fn symlink(&mut self, target: &Path, link: &Path) -> SysResult {
        self.record(format!("symlink({}, {})", p(target), p(link)))
    }
    fn write_file(&mut self, path: &Path, content: &str) -> SysResult {
        self.record(format!("write({}, {content:?})", p(path)))
    }
    fn attach_mount(&mut self, fd: RawFd, target: &Path) -> SysResult {
        self.record(format!("move_mount({fd}, {})", p(target)))
    }
    fn loopback_up(&mut self) -> SysResult {
        self.record("ioctl(SIOCSIFFLAGS, lo, IFF_UP)".into())
    }
    fn set_ids(&mut self, uid: u32, gid: u32) -> SysResult {
        self.record(format!("set_ids({uid}, {gid})"))
    }
    fn switch_ids(&mut self, uid: u32, gid: u32) -> SysResult {
        self.record(format!("switch_ids({uid}, {gid})"))
    }
    fn keep_capabilities(&mut self, keep: &[caps::Capability]) -> SysResult {
        self.record(format!("keep_capabilities({})", keep.len()))
    }
    fn no_new_privs(&mut self) -> SysResult {
        self.record("prctl(PR_SET_NO_NEW_PRIVS)".into())
    }
    fn seccomp(&mut self) -> SysResult {
        self.record("seccomp(SECCOMP_SET_MODE_FILTER)".into())
    }
    fn setsid(&mut self) -> SysResult {
        self.record("setsid()".into())
    }
    fn join_session_keyring(&mut self) -> SysResult {
        self.record("keyctl(JOIN_SESSION_KEYRING)".into())
    }
    fn close_fds(&mut self, first: RawFd, keep: Option<RawFd>) -> SysResult {
        self.record(format!("close_fds({first}, keep {keep:?})"))
    }
}

// From <linux/mount.h>; spelled out so the code does not hang on a libc version.
const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A detached copy of the mount at `path`, read-only, nosuid, nodev, whose
/// file owners are shifted by the user namespace `userns_fd` (an idmapped
/// mount, Linux 5.12+). Only host root may make it: the filesystem's owner
/// must consent. The supervisor makes it and hands it to PID 1, which
/// attaches it with `move_mount`.
pub fn idmapped_tree(path: &Path, userns_fd: RawFd) -> SysResult<OwnedFd> {
    let path_c = cstr(path);
    // SAFETY: open_tree with a NUL-terminated path; the result is a new fd we own.
    let fd =
        unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path_c.as_ptr(), OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint) };
    let fd = Errno::result(fd).map_err(fail(format!("open_tree({}, OPEN_TREE_CLONE)", path.display())))?;
    // SAFETY: fd was just returned by open_tree.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns_fd as u64,
    };
    // SAFETY: mount_setattr on our fd with an empty path and a valid struct of its size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            (libc::AT_EMPTY_PATH as libc::c_uint) | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(rc).map_err(fail("mount_setattr(MOUNT_ATTR_IDMAP)"))?;
    Ok(tree)
}

/// Paths under `root`, for building targets before pivot_root.
pub fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}
