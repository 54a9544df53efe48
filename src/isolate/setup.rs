//! Carrying out one step inside the sandbox (the child, PID 1, or `exec`'s
//! joining process) through `Kernel`, and the step texts rendered from it.

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use super::kernel::{Call, Kernel, MOUNT_ATTR_RDONLY, MountArgs, Recorder, SysError, SysResult, TEXT_CHANNEL};
use crate::plan::{Action, Actor, Namespace};

/// The descriptor the event channel is moved to before every other one is closed.
pub(crate) const CHANNEL_FD: RawFd = 3;

/// What the steps of one sandbox share while they run.
#[derive(Clone, Debug, Default)]
pub(crate) struct Context {
    /// The event channel to the supervisor (close-on-exec); `close-fds` keeps it.
    pub channel: Option<RawFd>,
    /// A detached, idmapped mount of the rootfs made by the supervisor.
    pub idmapped_rootfs: Option<RawFd>,
    /// The detached mount of the instance's disk image, made by the
    /// supervisor before the clone (so this process has the same descriptor).
    pub disk: Option<RawFd>,
    /// Trees this process reaches through an fd opened while it still could:
    /// root inside is an unprivileged id outside and may not walk the store's
    /// private directories; `/proc/self/fd/N/...` reaches them without walking.
    pub reach: Vec<(PathBuf, RawFd)>,
    /// `explain --step`: wait for the supervisor's "go" before each step.
    pub step_mode: bool,
    /// Report every step's event (explain), not only a failure (a fast run).
    pub narrate: bool,
    /// The sandbox's standard descriptors include its own pty.
    pub terminal: bool,
    /// A fast launch: the clone made the namespaces and the supervisor's
    /// "go" came before the first step (no waiting after the user namespace).
    pub fast: bool,
    /// The seccomp program, compiled (or read from the cache) before the start.
    pub seccomp: Vec<seccompiler::sock_filter>,
    /// Without a channel (chroot mode run in the tool's own process): the
    /// step that failed, or why the command could not start.
    pub failed: Option<super::channel::Event>,
    pub exec_error: Option<String>,
}

impl Context {
    /// `path` as this process can reach it (see `reach`; the longest match wins).
    pub fn reach(&self, path: &Path) -> PathBuf {
        let best = self.reach.iter().filter(|(root, _)| path.starts_with(root)).max_by_key(|(root, _)| root.as_os_str().len());
        let Some((root, fd)) = best else { return path.to_path_buf() };
        let base = PathBuf::from(format!("/proc/self/fd/{fd}"));
        match path.strip_prefix(root) {
            Ok(rest) if !rest.as_os_str().is_empty() => base.join(rest),
            _ => base,
        }
    }
}

/// Carry out `action` in this process. The supervisor's actions, and those
/// that start processes (`Spawn`, `Exec`, the PID namespace's fork), belong
/// to the supervisor and the process roles.
pub(crate) fn perform(kernel: &mut dyn Kernel, action: &Action, ctx: &mut Context) -> SysResult {
    let r = |p: &Path| ctx.reach(p);
    match action {
        Action::Unshare { namespace } => kernel.unshare(CloneFlags::from_bits_truncate(namespace.clone_flag())),
        Action::MakeMountsPrivate => kernel.mount(MountArgs::change("/", MsFlags::MS_REC | MsFlags::MS_PRIVATE)),
        Action::BindRootfs { rootfs, idmapped, nosuid } => match (idmapped, ctx.idmapped_rootfs) {
            // The idmapped tree was made read-only, nosuid and nodev by the supervisor.
            (true, Some(fd)) => kernel.attach_mount(fd, &r(rootfs)),
            _ => {
                let rootfs = r(rootfs);
                kernel.mount(MountArgs::bind(&rootfs, &rootfs, MsFlags::MS_REC))?;
                if *nosuid {
                    kernel.mount(MountArgs::change(
                        &rootfs,
                        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    ))?;
                }
                Ok(())
            }
        },
        Action::MountScratch { target, size } => {
            let target = r(target);
            let data = match size {
                Some(bytes) => format!("mode=0755,size={bytes}"),
                None => "mode=0755".to_string(),
            };
            kernel.mount(MountArgs::fs("tmpfs", "tmpfs", &target, MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(data)))?;
            for dir in ["upper", "work", "merged"] {
                kernel.mkdir(&target.join(dir), 0o755)?;
            }
            Ok(())
        }
        Action::MountDisk { target } => match ctx.disk {
            Some(fd) => kernel.attach_mount(fd, &r(target)),
            None => Err(SysError {
                call: format!("move_mount(DISK, {}): the supervisor made no disk mount", target.display()),
                errno: Errno::EBADF,
            }),
        },
        Action::MountOverlay { lower, upper, work, target } => {
            // userxattr: mounted in a user namespace, the overlay cannot set
            // trusted.* attributes on its upper layer (a removed or renamed
            // directory of the image would fail with EIO); user.overlay.* it can.
            let options =
                format!("userxattr,lowerdir={},upperdir={},workdir={}", r(lower).display(), r(upper).display(), r(work).display());
            kernel.mount(MountArgs::fs("overlay", "overlay", r(target), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(options)))
        }
        Action::JoinNamespaces { init_pid } => {
            // The user namespace first: from it come the rights to enter the others.
            let namespaces = [Namespace::User, Namespace::Mount, Namespace::Uts, Namespace::Ipc, Namespace::Net, Namespace::Cgroup];
            kernel.setns(*init_pid, &namespaces)?;
            // Entering a mount namespace moves our root to its root, which
            // pivot_root made the sandbox's: stand in it.
            kernel.chdir(Path::new("/"))
        }
        // By `exec`'s joining process itself, while it still sees the host's cgroupfs.
        Action::CgroupJoin { procs } => kernel.cgroup_join(procs, nix::unistd::Pid::from_raw(0)),
        Action::MountProc { target } => {
            kernel.mount(MountArgs::fs("proc", "proc", r(target), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, None))
        }
        Action::MountDev { target, devices } => mount_dev(kernel, &r(target), devices),
        Action::MountDevpts { target } => mount_devpts(kernel, &r(target)),
        Action::MountTmp { target, size } => {
            let data = match size {
                Some(bytes) => format!("mode=1777,size={bytes}"),
                None => "mode=1777".to_string(),
            };
            kernel.mount(MountArgs::fs("tmpfs", "tmpfs", r(target), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(data)))
        }
        Action::MountSys { target } => {
            let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            kernel.mount(MountArgs::fs("sysfs", "sysfs", r(target), flags, None))
        }
        Action::BindMount { source, target, readonly } => {
            let target = r(target);
            kernel.mount(MountArgs::bind(source, &target, MsFlags::MS_REC))?;
            if *readonly { readonly_tree(kernel, &target, true) } else { Ok(()) }
        }
        Action::PivotRoot { new_root } => pivot_root(kernel, &r(new_root)),
        Action::RemountReadonly { paths } => {
            for path in paths {
                let path = r(path);
                // `/` itself only: the mounts on it (/proc, /dev, /tmp) keep theirs.
                let is_root = path == Path::new("/");
                if !is_root && path.starts_with("/proc") {
                    // Bind onto itself first, so the change touches this subtree only.
                    // (/proc/bus and friends exist only on some kernels.)
                    match kernel.mount(MountArgs::bind(&path, &path, MsFlags::MS_REC)) {
                        Err(SysError { errno: Errno::ENOENT, .. }) => continue,
                        other => other?,
                    }
                }
                readonly_tree(kernel, &path, !is_root)?;
            }
            Ok(())
        }
        Action::MaskPaths { files, dirs } => {
            // A path this kernel does not have is not there to hide.
            let skip_missing = |result: SysResult| match result {
                Err(SysError { errno: Errno::ENOENT, .. }) => Ok(()),
                other => other,
            };
            for file in files {
                skip_missing(kernel.mount(MountArgs::bind("/dev/null", file, MsFlags::empty())))?;
            }
            for dir in dirs {
                skip_missing(kernel.mount(MountArgs::fs("tmpfs", "tmpfs", dir, MsFlags::MS_RDONLY, Some("size=0".into()))))?;
            }
            Ok(())
        }
        Action::SetHostname { hostname } => kernel.sethostname(hostname),
        Action::LoopbackUp { ping_group_range } => {
            kernel.loopback_up()?;
            // ICMP echo sockets for the sandbox's groups: ping works without a
            // capability (no_new_privs ignores file capabilities), in this
            // network namespace only.
            kernel.write_file(Path::new("/proc/sys/net/ipv4/ping_group_range"), ping_group_range)
        }
        Action::Chroot { path } => {
            kernel.chroot(&r(path))?;
            kernel.chdir(Path::new("/"))
        }
        Action::NewSession => {
            kernel.setsid()?;
            kernel.join_session_keyring()
        }
        Action::SetUser { uid, gid, clear_groups } => kernel.set_ids(*uid, *gid, *clear_groups),
        Action::DropCapabilities { keep } => {
            let keep: Vec<caps::Capability> = keep.iter().filter_map(|name| name.parse().ok()).collect();
            kernel.keep_capabilities(&keep)
        }
        Action::NoNewPrivs => kernel.no_new_privs(),
        Action::Seccomp { .. } => kernel.seccomp(&ctx.seccomp),
        Action::CloseFds => close_fds(kernel, ctx),
        Action::ProbeAs { uid, gid } => {
            kernel.set_ids(*uid, *gid, true)?;
            // A uid change makes the process non-dumpable, which gives its
            // /proc/self files to root: its id maps could not be written.
            kernel.set_dumpable()
        }
        Action::IdMapsSelf { uid_map, gid_map } => {
            kernel.write_file(Path::new("/proc/self/setgroups"), "deny")?;
            kernel.write_file(Path::new("/proc/self/uid_map"), uid_map)?;
            kernel.write_file(Path::new("/proc/self/gid_map"), gid_map)
        }
        Action::CgroupMoveSelf { .. }
        | Action::CgroupCreate { .. }
        | Action::CgroupLimit { .. }
        | Action::Spawn { .. }
        | Action::IdMaps { .. }
        | Action::IdmapRootfs { .. }
        | Action::DiskImage { .. }
        | Action::JoinPid { .. }
        | Action::Exec { .. }
        | Action::Wait
        | Action::CgroupRemove { .. } => Ok(()),
    }
}

/// The channel moves to fd 3, then one close_range closes every other
/// descriptor above 2; the channel itself closes at exec.
fn close_fds(kernel: &mut dyn Kernel, ctx: &mut Context) -> SysResult {
    let mut first = CHANNEL_FD as u32;
    if let Some(channel) = ctx.channel {
        if channel != CHANNEL_FD {
            kernel.dup3(channel, CHANNEL_FD)?;
            ctx.channel = Some(CHANNEL_FD);
        }
        first += 1;
    }
    ctx.idmapped_rootfs = None;
    ctx.disk = None;
    ctx.reach.clear();
    kernel.close_range(first, u32::MAX)
}

fn mount_dev(kernel: &mut dyn Kernel, target: &Path, devices: &[String]) -> SysResult {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME;
    kernel.mount(MountArgs::fs("tmpfs", "tmpfs", target, flags, Some("mode=755,size=65536".into())))?;
    // Device nodes cannot be made in a user namespace: bind the host's, as bubblewrap does.
    for device in devices {
        let node = target.join(device);
        kernel.create_file(&node, 0o666)?;
        kernel.mount(MountArgs::bind(PathBuf::from("/dev").join(device), &node, MsFlags::empty()))?;
    }
    for (name, link) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        kernel.symlink(Path::new(link), &target.join(name))?;
    }
    Ok(())
}

fn mount_devpts(kernel: &mut dyn Kernel, pts: &Path) -> SysResult {
    kernel.mkdir(pts, 0o755)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    kernel.mount(MountArgs::fs("devpts", "devpts", pts, flags, Some("newinstance,ptmxmode=0666,mode=620".into())))?;
    let shm = pts.parent().unwrap_or(Path::new("/dev")).join("shm");
    kernel.mkdir(&shm, 0o1777)?;
    kernel.mount(MountArgs::fs("tmpfs", "shm", &shm, MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777".into())))
}

/// The rule: chdir into the new root, pivot_root(".", ".") stacks the old root
/// under the new one, and a lazy unmount of "." detaches it, so no path leads
/// back to the host's files (youki's `pivot_rootfs`).
fn pivot_root(kernel: &mut dyn Kernel, new_root: &Path) -> SysResult {
    kernel.chdir(new_root)?;
    kernel.pivot_root(Path::new("."), Path::new("."))?;
    // Make the old root a slave first, so unmounting it cannot propagate anywhere.
    kernel.mount(MountArgs::change(".", MsFlags::MS_SLAVE | MsFlags::MS_REC))?;
    kernel.umount(Path::new("."), MntFlags::MNT_DETACH)?;
    kernel.chdir(Path::new("/"))
}

/// Read-only: mount_setattr changes that one attribute (the flags the kernel
/// locked on the mount, nosuid and nodev, stay) on the mount and, with
/// `recursive`, on every mount below it. Kernels before 5.12 have no
/// mount_setattr: a bind remount there, which must repeat the locked flags.
fn readonly_tree(kernel: &mut dyn Kernel, path: &Path, recursive: bool) -> SysResult {
    match kernel.mount_setattr(path, recursive, MOUNT_ATTR_RDONLY) {
        Err(SysError { errno: Errno::ENOSYS, .. }) => legacy_readonly(kernel, path, recursive),
        other => other,
    }
}

fn legacy_readonly(kernel: &mut dyn Kernel, path: &Path, recursive: bool) -> SysResult {
    let mut targets = vec![path.to_path_buf()];
    if recursive {
        // Every mount below, as /proc/self/mountinfo lists them (field 5: the mount point).
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let below = mounts.lines().filter_map(|l| l.split(' ').nth(4)).map(PathBuf::from).filter(|m| m != path && m.starts_with(path));
        targets.extend(below);
    }
    for target in targets {
        let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        if let Ok(stat) = nix::sys::statvfs::statvfs(&target) {
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
        kernel.mount(MountArgs::change(&target, flags))?;
    }
    Ok(())
}

/// /proc/self/ns/NAME, e.g. `pid:[4026532301]`: evidence that a namespace changed.
pub(crate) fn namespace_link(namespace: Namespace) -> String {
    std::fs::read_link(format!("/proc/self/ns/{}", namespace.proc_name())).map(|p| p.display().to_string()).unwrap_or_default()
}

/// The system calls a step makes, rendered from the calls the executor makes
/// for it (recorded, not made), as `explain` shows them. Known only at run
/// time: the child's PID (`PID`) and the event channel (`CHANNEL`).
pub(crate) fn describe(actor: Actor, action: &Action) -> String {
    let mut recorder = Recorder::default();
    match actor {
        Actor::Supervisor => {
            let _ = super::supervisor::perform_step(&mut recorder, action, None);
        }
        Actor::Child | Actor::Init => {
            let mut ctx = Context { channel: Some(TEXT_CHANNEL), idmapped_rootfs: Some(-1), disk: Some(-1), ..Default::default() };
            if let Action::Spawn { .. } = action {
                return String::new();
            }
            let _ = perform(&mut recorder, action, &mut ctx);
            match action {
                // The PID namespace counts for children: explained, the child forks PID 1.
                Action::Unshare { namespace: Namespace::Pid } => recorder.calls.push(Call::Fork),
                Action::Exec { argv, workdir, .. } => {
                    return match argv.first() {
                        Some(program) => format!("chdir({:?}); execve({program:?}, ARGV, ENV)", workdir.display().to_string()),
                        None => "sigwaitinfo(SIGTERM|SIGCHLD|...) until stopped".to_string(),
                    };
                }
                _ => {}
            }
        }
    }
    recorder.lines().join("; ")
}
