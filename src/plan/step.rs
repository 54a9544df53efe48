//! A step of entering the sandbox, as data: what it does (`Action`), who does
//! it (`Actor`), and how a person would do the same by hand. `run`, `explain`
//! and `--dry-run` all walk the same list.

use std::path::PathBuf;

use serde::Serialize;

/// Which process carries a step out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    /// The `sandbox` process on the host: cgroups, uid maps, waiting.
    Supervisor,
    /// The first child: creates the namespaces one by one.
    Child,
    /// PID 1 of the new PID namespace: builds the new root, then runs the command.
    Init,
}

/// The namespaces, in the order they are created: the user namespace first,
/// because it owns all the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    User,
    Mount,
    Uts,
    Ipc,
    Net,
    Cgroup,
    Pid,
}

impl Namespace {
    pub const ALL: [Namespace; 7] =
        [Namespace::User, Namespace::Mount, Namespace::Uts, Namespace::Ipc, Namespace::Net, Namespace::Cgroup, Namespace::Pid];

    /// The name under /proc/PID/ns/.
    pub fn proc_name(self) -> &'static str {
        match self {
            Namespace::User => "user",
            Namespace::Mount => "mnt",
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::Net => "net",
            Namespace::Cgroup => "cgroup",
            Namespace::Pid => "pid",
        }
    }

    pub fn clone_flag(self) -> libc::c_int {
        match self {
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Mount => libc::CLONE_NEWNS,
            Namespace::Uts => libc::CLONE_NEWUTS,
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Net => libc::CLONE_NEWNET,
            Namespace::Cgroup => libc::CLONE_NEWCGROUP,
            Namespace::Pid => libc::CLONE_NEWPID,
        }
    }

    pub fn step_id(self) -> &'static str {
        match self {
            Namespace::User => "new-user-namespace",
            Namespace::Mount => "new-mount-namespace",
            Namespace::Uts => "new-uts-namespace",
            Namespace::Ipc => "new-ipc-namespace",
            Namespace::Net => "new-net-namespace",
            Namespace::Cgroup => "new-cgroup-namespace",
            Namespace::Pid => "new-pid-namespace",
        }
    }

    /// The `unshare(1)` option.
    pub fn unshare_option(self) -> &'static str {
        match self {
            Namespace::User => "--user",
            Namespace::Mount => "--mount",
            Namespace::Uts => "--uts",
            Namespace::Ipc => "--ipc",
            Namespace::Net => "--net",
            Namespace::Cgroup => "--cgroup",
            Namespace::Pid => "--pid --fork",
        }
    }
}

/// A cgroup file the supervisor writes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CgroupWrite {
    pub file: PathBuf,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// Make the sandbox's cgroup directories (one per v1 hierarchy, or one on v2).
    CgroupCreate {
        dirs: Vec<PathBuf>,
    },
    /// Write a limit into a cgroup file.
    CgroupLimit {
        write: CgroupWrite,
    },
    /// Unshare one namespace (the PID namespace: unshare, then fork PID 1).
    Unshare {
        namespace: Namespace,
    },
    /// Write /proc/PID/uid_map, setgroups and gid_map of the child.
    IdMaps {
        uid_map: String,
        gid_map: String,
    },
    /// Move the child into the sandbox's cgroups (cgroup.procs).
    CgroupJoin {
        procs: Vec<PathBuf>,
    },
    /// `mount --make-rprivate /`: nothing we mount propagates to the host.
    MakeMountsPrivate,
    /// Bind the rootfs onto itself so it is a mount point (pivot_root needs
    /// one), idmapped when the kernel can, so its root-owned files look
    /// root-owned inside.
    /// `nosuid`: setuid bits and file capabilities mean nothing inside (namespace
    /// mode: its users keep no capabilities, and a binary that asks for some,
    /// as ping does, would fail to start; ping uses ICMP sockets instead).
    BindRootfs {
        rootfs: PathBuf,
        idmapped: bool,
        nosuid: bool,
    },
    /// An instance's own writable layer over the shared rootfs (overlayfs):
    /// what the student writes goes to `upper`, the rootfs stays untouched.
    MountOverlay {
        lower: PathBuf,
        upper: PathBuf,
        work: PathBuf,
        target: PathBuf,
    },
    /// `sandbox exec`: enter the namespaces and the root of a running
    /// sandbox's PID 1 (every namespace but the PID one, which `JoinPid` enters).
    JoinNamespaces {
        init_pid: i32,
    },
    /// setns into the PID namespace of `init_pid`, then fork: the new process is in it.
    JoinPid {
        init_pid: i32,
    },
    MountProc {
        target: PathBuf,
    },
    /// A tmpfs /dev with the few devices programs need, bound from the host.
    MountDev {
        target: PathBuf,
        devices: Vec<String>,
    },
    /// A new devpts instance (terminals of this sandbox only) and /dev/shm.
    MountDevpts {
        target: PathBuf,
    },
    MountTmp {
        target: PathBuf,
        size: Option<u64>,
    },
    MountSys {
        target: PathBuf,
    },
    BindMount {
        source: PathBuf,
        target: PathBuf,
        readonly: bool,
    },
    /// pivot_root(new, new), then detach the old root stacked under it.
    PivotRoot {
        new_root: PathBuf,
    },
    /// Read-only: the rootfs itself, /proc/sys and friends.
    RemountReadonly {
        paths: Vec<PathBuf>,
    },
    /// Hide sensitive /proc files (a /dev/null or an empty read-only tmpfs over them).
    MaskPaths {
        files: Vec<PathBuf>,
        dirs: Vec<PathBuf>,
    },
    SetHostname {
        hostname: String,
    },
    /// Bring `lo` up, and let the sandbox's groups use ICMP sockets (ping
    /// without a capability): `ping_group_range` is "FIRST LAST".
    LoopbackUp {
        ping_group_range: String,
    },
    /// The classic jail: chroot(2) and chdir("/").
    Chroot {
        path: PathBuf,
    },
    /// A session of its own, and a new session keyring (the caller's keys are out of reach).
    NewSession,
    /// The profile's user. `clear_groups`: drop supplementary groups, which a
    /// rootless sandbox may not (its setgroups is denied, and it has none).
    SetUser {
        uid: u32,
        gid: u32,
        clear_groups: bool,
    },
    /// Keep only these capabilities (empty: none), in every set, the bounding set too.
    DropCapabilities {
        keep: Vec<String>,
    },
    NoNewPrivs,
    Seccomp {
        denied: Vec<String>,
    },
    /// Close every inherited file descriptor above 2.
    CloseFds,
    /// Start the command (PID 1 stays behind as init in namespace mode). An
    /// empty `argv` is a background instance: PID 1 waits until it is stopped.
    Exec {
        argv: Vec<String>,
        env: Vec<(String, String)>,
        workdir: PathBuf,
    },
}

/// One step of the plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    /// Stable id, the key of the explain catalogs (`new-pid-namespace`, `pivot-root`).
    pub id: &'static str,
    pub actor: Actor,
    pub action: Action,
    /// The same thing done by hand in a shell.
    pub shell: String,
    /// The system call(s) it makes, with arguments.
    pub syscall: String,
}
