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
    /// The rootfs mount, and an fd of it opened right after it was mounted.
    /// Root inside is an unprivileged id outside and may not walk the store's
    /// private directories; `/proc/self/fd/N` reaches the rootfs without
    /// walking them.
    pub rootfs: Option<(PathBuf, RawFd)>,
    /// An instance's directory (upper, work, merged), opened before PID 1
    /// takes the mapped ids: the state directory may sit below directories
    /// only host root may pass (`mktemp -d`, /root), which the mapped ids
    /// cannot walk (EACCES at mount-overlay).
    pub layer: Option<(PathBuf, RawFd)>,
    /// `explain --step`: wait for the supervisor's "go" before each step.
    pub step_mode: bool,
}

impl Context {
    /// `path` as this process can reach it (see `rootfs`).
    pub fn reach(&self, path: &Path) -> PathBuf {
        for (dir, fd) in self.rootfs.iter().chain(&self.layer) {
            if let Ok(rest) = path.strip_prefix(dir) {
                let base = PathBuf::from(format!("/proc/self/fd/{fd}"));
                return if rest.as_os_str().is_empty() { base } else { base.join(rest) };
            }
        }
        path.to_path_buf()
    }
}

/// The action with every rootfs path made reachable (`Context::reach`).
fn reachable(action: &Action, ctx: &Context) -> Action {
    let r = |p: &PathBuf| ctx.reach(p);
    match action {
        Action::BindRootfs { rootfs, idmapped, nosuid } => Action::BindRootfs { rootfs: r(rootfs), idmapped: *idmapped, nosuid: *nosuid },
        Action::MountProc { target } => Action::MountProc { target: r(target) },
        Action::MountOverlay { lower, upper, work, target } => {
            Action::MountOverlay { lower: r(lower), upper: r(upper), work: r(work), target: r(target) }
        }
        Action::MountDev { target, devices } => Action::MountDev { target: r(target), devices: devices.clone() },
        Action::MountDevpts { target } => Action::MountDevpts { target: r(target) },
        Action::MountTmp { target, size } => Action::MountTmp { target: r(target), size: *size },
        Action::MountSys { target } => Action::MountSys { target: r(target) },
        Action::BindMount { source, target, readonly } => {
            Action::BindMount { source: source.clone(), target: r(target), readonly: *readonly }
        }
        Action::PivotRoot { new_root } => Action::PivotRoot { new_root: r(new_root) },
        Action::RemountReadonly { paths } => Action::RemountReadonly { paths: paths.iter().map(r).collect() },
        Action::Chroot { path } => Action::Chroot { path: r(path) },
        other => other.clone(),
    }
}

/// Carry out `action`. Actions that belong to the supervisor or that start
/// processes (`Exec`, the PID namespace's fork) are not handled here.
pub fn perform(kernel: &mut dyn Kernel, action: &Action, ctx: &Context) -> SysResult {
    let action = &reachable(action, ctx);
    match action {
        Action::Unshare { namespace } => kernel.unshare(CloneFlags::from_bits_truncate(namespace.clone_flag())),
        Action::MakeMountsPrivate => kernel.mount(None, Path::new("/"), None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None),
        Action::BindRootfs { rootfs, idmapped, nosuid } => match (idmapped, ctx.idmapped_rootfs) {
            // The idmapped tree was made nosuid and nodev by the supervisor.
            (true, Some(fd)) => kernel.attach_mount(fd, rootfs),
            _ => {
                kernel.mount(Some(rootfs), rootfs, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
                if *nosuid {
                    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
                    kernel.mount(None, rootfs, None, flags, None)?;
                }
                Ok(())
            }
        },
        Action::MountOverlay { lower, upper, work, target } => {
            let options = format!("lowerdir={},upperdir={},workdir={}", lower.display(), upper.display(), work.display());
            kernel.mount(Some(Path::new("overlay")), target, Some("overlay"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(&options))
        }
        Action::JoinNamespaces { init_pid } => {
            // The user namespace first: from it come the rights to enter the
            // others. The PID namespace applies to the children (JoinPid forks).
            kernel.setns(*init_pid, &["user", "mnt", "uts", "ipc", "net", "cgroup", "pid"])?;
            // Entering a mount namespace moves our root to its root, which
            // pivot_root made the sandbox's: stand in it.
            kernel.chdir(Path::new("/"))
        }
        // Entered with the others above; what remains is the fork.
        Action::JoinPid { .. } => Ok(()),
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
                    // /proc/bus and friends exist only on some kernels.
                    if path.starts_with("/proc") && !path.exists() {
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
        Action::LoopbackUp { ping_group_range } => {
            kernel.loopback_up()?;
            // ICMP echo sockets for the sandbox's groups: ping works without a
            // capability (no_new_privs ignores file capabilities), in this
            // network namespace only.
            kernel.write_file(Path::new("/proc/sys/net/ipv4/ping_group_range"), ping_group_range)
        }
        Action::Chroot { path } => {
            kernel.chroot(path)?;
            kernel.chdir(Path::new("/"))
        }
        Action::NewSession => {
            kernel.setsid()?;
            kernel.join_session_keyring()
        }
        Action::SetUser { uid, gid, clear_groups: true } => kernel.set_ids(*uid, *gid),
        Action::SetUser { uid, gid, clear_groups: false } => kernel.switch_ids(*uid, *gid),
        Action::DropCapabilities { keep } => {
            let keep: Vec<caps::Capability> = keep.iter().filter_map(|name| name.parse().ok()).collect();
            kernel.keep_capabilities(&keep)
        }
        Action::NoNewPrivs => kernel.no_new_privs(),
        Action::Seccomp { .. } => kernel.seccomp(),
        Action::CloseFds => kernel.close_fds(3, ctx.channel),
        Action::CgroupCreate { .. }
        | Action::CgroupLimit { .. }
        | Action::IdMaps { .. }
        | Action::CgroupJoin { .. }
        | Action::Exec { .. } => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isolate::kernel::Recorder;
    use crate::plan::{Actor, IdMapping, Input, Plan};
    use crate::profile::{self, Mode};

    fn plan(mode: Mode) -> Plan {
        let profile = profile::load("shell", Path::new("/")).unwrap();
        crate::plan::build(&Input {
            profile: &profile,
            mode,
            rootfs: PathBuf::from("/store/r"),
            command: vec!["/bin/true".into()],
            term: None,
            ids: IdMapping::Range { host_base: 1_000_000_000 },
            idmapped: false,
            cgroup_dirs: vec![],
            cgroup_writes: vec![],
            cgroup_procs: vec![],
            layer: None,
        })
    }

    fn record(plan: &Plan, actor: Actor) -> Vec<String> {
        let mut kernel = Recorder::default();
        let ctx = Context { channel: Some(7), idmapped_rootfs: None, rootfs: None, layer: None, step_mode: false };
        for step in plan.for_actor(actor) {
            perform(&mut kernel, &step.action, &ctx).unwrap();
        }
        kernel.calls
    }

    fn position(calls: &[String], prefix: &str) -> usize {
        calls.iter().position(|c| c.starts_with(prefix)).unwrap_or_else(|| panic!("no call {prefix} in {calls:#?}"))
    }

    #[test]
    fn init_builds_the_root_in_the_kernel_s_order() {
        let calls = record(&plan(Mode::Namespace), Actor::Init);
        let private = position(&calls, "mount(NULL, /, NULL, MS_REC | MS_PRIVATE");
        let bind = position(&calls, "mount(/store/r, /store/r, NULL, MS_BIND | MS_REC");
        let proc = position(&calls, "mount(proc, /store/r/proc, proc");
        let pivot = position(&calls, "pivot_root(., .)");
        assert!(private < bind && bind < proc && proc < pivot, "{calls:#?}");
        // The old root is made a slave, then detached, then we stand in the new /.
        assert_eq!(calls[pivot - 1], "chdir(/store/r)");
        assert!(calls[pivot + 1].starts_with("mount(NULL, ., NULL, MS_REC | MS_SLAVE"), "{calls:#?}");
        assert_eq!(calls[pivot + 2], "umount2(., MNT_DETACH)");
        assert_eq!(calls[pivot + 3], "chdir(/)");
        // Devices are bound from the host, never made with mknod.
        assert!(calls.iter().any(|c| c == "mount(/dev/null, /store/r/dev/null, NULL, MS_BIND, NULL)"), "{calls:#?}");
        // Privileges last, seccomp after no_new_privs, and the event channel survives close-fds.
        let nnp = position(&calls, "prctl(PR_SET_NO_NEW_PRIVS)");
        assert!(position(&calls, "set_ids(1000, 1000)") < position(&calls, "keep_capabilities(0)"));
        assert!(position(&calls, "keep_capabilities") < nnp && nnp < position(&calls, "seccomp("));
        assert!(calls.contains(&"close_fds(3, keep Some(7))".to_string()));
    }

    #[test]
    fn chroot_mode_mounts_only_in_its_own_namespace_and_reads_only() {
        let calls = record(&plan(Mode::Chroot), Actor::Child);
        assert_eq!(calls[0], "unshare(CLONE_NEWNS)");
        assert!(calls.iter().any(|c| c.starts_with("mount(NULL, /store/r, NULL, MS_RDONLY | MS_REMOUNT | MS_BIND")), "{calls:#?}");
        let chroot = position(&calls, "chroot(/store/r)");
        assert_eq!(calls[chroot + 1], "chdir(/)");
        assert!(!calls.iter().any(|c| c.starts_with("pivot_root")), "chroot mode has no pivot_root");
    }

    #[test]
    fn a_failing_call_names_itself_and_its_errno() {
        let mut kernel = Recorder { fail_on: Some(("mount(proc".into(), nix::errno::Errno::EPERM)), ..Default::default() };
        let ctx = Context { channel: None, idmapped_rootfs: None, rootfs: None, layer: None, step_mode: false };
        let action = Action::MountProc { target: "/r/proc".into() };
        let error = perform(&mut kernel, &action, &ctx).unwrap_err();
        assert_eq!(error.errno, nix::errno::Errno::EPERM);
        assert!(error.to_string().starts_with("mount(proc, /r/proc, proc"), "{error}");
        assert!(crate::isolate::hints::fix("mount-proc", Some(libc::EPERM)).contains("procfs cannot be mounted"));
    }
}
