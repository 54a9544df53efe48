//! Carrying out one step inside (the child or PID 1), through `Kernel`.

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use super::kernel::{Kernel, SysResult, under};
use crate::plan::{Action, Namespace};

/// What the steps of one sandbox share while they run.
pub struct Context {
    /// The event channel: kept open (close-on-exec) by `close-fds`.
    pub channel: Option<RawFd>,
    /// A detached, idmapped mount of the rootfs made by the supervisor.
    pub idmapped_rootfs: Option<RawFd>,
}

/// Carry out `action`. Actions that belong to the supervisor or that start
/// processes (`Exec`, the PID namespace's fork) are not handled here.
pub fn perform(kernel: &mut dyn Kernel, action: &Action, ctx: &Context) -> SysResult {
    match action {
        Action::Unshare { namespace } => kernel.unshare(CloneFlags::from_bits_truncate(namespace.clone_flag())),
        Action::MakeMountsPrivate => kernel.mount(None, Path::new("/"), None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None),
        Action::BindRootfs { rootfs, idmapped } => match (idmapped, ctx.idmapped_rootfs) {
            (true, Some(fd)) => kernel.attach_mount(fd, rootfs),
            _ => kernel.mount(Some(rootfs), rootfs, None, MsFlags::MS_BIND | MsFlags::MS_REC, None),
        },
        Action::MountProc { target } => {
            kernel.mount(Some(Path::new("proc")), target, Some("proc"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, None)
        }
        Action::MountDev { target, devices } => mount_dev(kernel, target, devices),
        Action::MountDevpts { target } => mount_devpts(kernel, target),
        Action::MountTmp { target, size } => {
            let data = match size {
                Some(bytes) => format!("mode=1777,size={bytes}"),
                None => "mode=1777".to_string(),
            };
            kernel.mount(Some(Path::new("tmpfs")), target, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(&data))
        }
        Action::MountSys { target } => {
            let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            kernel.mount(Some(Path::new("sysfs")), target, Some("sysfs"), flags, None)
        }
        Action::BindMount { source, target, readonly } => {
            kernel.mount(Some(source), target, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
            if *readonly { remount_readonly(kernel, target) } else { Ok(()) }
        }
        Action::PivotRoot { new_root } => pivot_root(kernel, new_root),
        Action::RemountReadonly { paths } => {
            for path in paths {
                if path != Path::new("/") {
                    if !path.exists() {
                        continue;
                    }
                    // Bind onto itself first so the remount touches this subtree only.
                    kernel.mount(Some(path), path, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
                }
                remount_readonly(kernel, path)?;
            }
            Ok(())
        }
        Action::MaskPaths { files, dirs } => {
            for file in files.iter().filter(|f| f.exists()) {
                kernel.mount(Some(Path::new("/dev/null")), file, None, MsFlags::MS_BIND, None)?;
            }
            for dir in dirs.iter().filter(|d| d.is_dir()) {
                kernel.mount(Some(Path::new("tmpfs")), dir, Some("tmpfs"), MsFlags::MS_RDONLY, Some("size=0"))?;
            }
            Ok(())
        }
        Action::SetHostname { hostname } => kernel.sethostname(hostname),
        Action::LoopbackUp => {
            kernel.loopback_up()?;
            // ICMP echo sockets for every group: ping works without a capability,
            // in this network namespace only.
            kernel.write_file(Path::new("/proc/sys/net/ipv4/ping_group_range"), "0 2147483647")
        }
        Action::Chroot { path } => {
            kernel.chroot(path)?;
            kernel.chdir(Path::new("/"))
        }
        Action::NewSession => {
            kernel.setsid()?;
            kernel.join_session_keyring()
        }
        Action::SetUser { uid, gid } => kernel.set_ids(*uid, *gid),
        Action::DropCapabilities { keep } => {
            let keep: Vec<caps::Capability> = keep.iter().filter_map(|name| name.parse().ok()).collect();
            kernel.keep_capabilities(&keep)
        }
        Action::NoNewPrivs => kernel.no_new_privs(),
        Action::Seccomp { .. } => kernel.seccomp(),
        Action::CloseFds => kernel.close_fds(3, ctx.channel),
        Action::CgroupCreate { .. } | Action::CgroupLimit { .. } | Action::IdMaps { .. } | Action::CgroupJoin { .. } | Action::Exec { .. } => Ok(()),
    }
}

fn mount_dev(kernel: &mut dyn Kernel, target: &Path, devices: &[String]) -> SysResult {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME;
    kernel.mount(Some(Path::new("tmpfs")), target, Some("tmpfs"), flags, Some("mode=755,size=65536"))?;
    // Device nodes cannot be made in a user namespace: bind the host's, as bubblewrap does.
    for device in devices {
        let node = target.join(device);
        kernel.create_file(&node, 0o666)?;
        kernel.mount(Some(&PathBuf::from("/dev").join(device)), &node, None, MsFlags::MS_BIND, None)?;
    }
    for (name, link) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx")] {
        kernel.symlink(Path::new(link), &target.join(name))?;
    }
    Ok(())
}

fn mount_devpts(kernel: &mut dyn Kernel, pts: &Path) -> SysResult {
    kernel.mkdir(pts, 0o755)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    kernel.mount(Some(Path::new("devpts")), pts, Some("devpts"), flags, Some("newinstance,ptmxmode=0666,mode=620"))?;
    let shm = pts.parent().unwrap_or(Path::new("/dev")).join("shm");
    kernel.mkdir(&shm, 0o1777)?;
    kernel.mount(Some(Path::new("shm")), &shm, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777"))
}

/// The rule: chdir into the new root, pivot_root(".", ".") stacks the old root
/// under the new one, and a lazy unmount of "." detaches it, so no path leads
/// back to the host's files (youki's `pivot_rootfs`).
fn pivot_root(kernel: &mut dyn Kernel, new_root: &Path) -> SysResult {
    kernel.chdir(new_root)?;
    kernel.pivot_root(Path::new("."), Path::new("."))?;
    // Make the old root a slave first, so unmounting it cannot propagate anywhere.
    kernel.mount(None, Path::new("."), None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None)?;
    kernel.umount(Path::new("."), MntFlags::MNT_DETACH)?;
    kernel.chdir(Path::new("/"))
}

/// A bind remount keeps the flags the kernel locked on the mount (nosuid,
/// nodev, noexec): a user namespace may not clear them, so they are repeated.
fn remount_readonly(kernel: &mut dyn Kernel, path: &Path) -> SysResult {
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    if let Ok(stat) = nix::sys::statvfs::statvfs(path) {
        use nix::sys::statvfs::FsFlags;
        for (have, want) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if stat.flags().contains(have) {
                flags |= want;
            }
        }
    }
    kernel.mount(None, path, None, flags, None)
}

/// /proc/self/ns/NAME, e.g. `pid:[4026532301]`: evidence that a namespace changed.
pub fn namespace_link(namespace: Namespace) -> String {
    std::fs::read_link(format!("/proc/self/ns/{}", namespace.proc_name())).map(|p| p.display().to_string()).unwrap_or_default()
}

pub fn rootfs_child(root: &Path, path: &str) -> PathBuf {
    under(root, path)
}
