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
    /// The first child: in a fast launch it is PID 1 at once (one clone3 made
    /// every namespace); explained, it creates the namespaces one by one and forks PID 1.
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CgroupWrite {
    pub file: PathBuf,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// cgroup v2 without systemd, when the tool's own cgroup holds processes:
    /// move the tool's own process (only it) into a `supervisor` leaf, so its
    /// old cgroup may hand controllers down (no process in an inner cgroup).
    CgroupMoveSelf {
        leaf: PathBuf,
    },
    /// Make the sandbox's cgroup directories (one per v1 hierarchy, or one on
    /// v2), and on v2 enable the controllers the parent does not hand down yet.
    CgroupCreate {
        dirs: Vec<PathBuf>,
        enable: Option<CgroupWrite>,
    },
    /// Write a limit into a cgroup file.
    CgroupLimit {
        write: CgroupWrite,
    },
    /// `[limits] disk`: attach the instance's ext4 image to a loop device that
    /// clears itself, and make a detached mount of it (in no mount namespace yet).
    DiskImage {
        image: PathBuf,
    },
    /// Attach the supervisor's detached disk mount at `target` (in the
    /// sandbox's own mount namespace: the host never sees it).
    MountDisk {
        target: PathBuf,
    },
    /// Start the sandbox's first process. `into_cgroup`: born in that cgroup
    /// (clone3 with CLONE_INTO_CGROUP, cgroup v2), so no `CgroupJoin` follows.
    /// Without explanation the namespace steps that follow are made by this
    /// same clone3; `explain` makes them one at a time.
    Spawn {
        into_cgroup: Option<PathBuf>,
    },
    /// Unshare one namespace (the PID namespace: unshare, then fork PID 1).
    Unshare {
        namespace: Namespace,
    },
    /// Write /proc/PID/uid_map, then (`deny_setgroups`: as an unprivileged
    /// user must) setgroups, then gid_map of the child.
    IdMaps {
        uid_map: String,
        gid_map: String,
        deny_setgroups: bool,
    },
    /// The supervisor makes a detached copy of the rootfs mount whose owners are
    /// shifted into the child's user namespace, and hands it to PID 1.
    IdmapRootfs {
        rootfs: PathBuf,
    },
    /// Move a process into the sandbox's cgroups (cgroup.procs): the child, by
    /// the supervisor; with `sandbox exec`, the joining process itself.
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
    /// A one-off run's throwaway layer: a tmpfs (private to the sandbox's
    /// mount namespace) holding the overlay's upper, work and merged directories.
    MountScratch {
        target: PathBuf,
        size: Option<u64>,
    },
    /// A writable layer over the shared rootfs (overlayfs): what the student
    /// writes goes to `upper`, the rootfs stays untouched. Mounted inside the
    /// user namespace, so its own attributes are `user.overlay.*` xattrs (`userxattr`).
    MountOverlay {
        lower: PathBuf,
        upper: PathBuf,
        work: PathBuf,
        target: PathBuf,
    },
    /// `sandbox exec`: setns into the PID namespace of `init_pid` (the
    /// supervisor, for the process it starts next).
    JoinPid {
        init_pid: i32,
    },
    /// `sandbox exec`: enter the other namespaces and the root of a running
    /// sandbox's PID 1.
    JoinNamespaces {
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
    /// A host directory shown inside; `readonly`: every mount below it too.
    BindMount {
        source: PathBuf,
        target: PathBuf,
        readonly: bool,
    },
    /// pivot_root(new, new), then detach the old root stacked under it.
    PivotRoot {
        new_root: PathBuf,
    },
    /// Read-only, with every mount below (`/` itself only: /proc, /dev and
    /// /tmp on it keep their own flags).
    RemountReadonly {
        paths: Vec<PathBuf>,
    },
    /// Hide sensitive /proc files (a /dev/null or an empty read-only tmpfs over
    /// them); one the kernel does not have is skipped.
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
    /// Close every inherited file descriptor above 2 (the tool's channel, fd 3,
    /// closes itself at exec).
    CloseFds,
    /// Start the command (PID 1 stays behind as init in namespace mode). An
    /// empty `argv` is a background instance: PID 1 waits until it is stopped.
    Exec {
        argv: Vec<String>,
        env: Vec<(String, String)>,
        workdir: PathBuf,
    },
    /// The supervisor waits for the sandbox's first process; its status is the run's.
    Wait,
    /// End what is left in the sandbox's cgroups, then remove them.
    CgroupRemove {
        dirs: Vec<PathBuf>,
    },
    /// `sandbox doctor`: become an unprivileged user (and stay dumpable, so
    /// the process may still write its own /proc files), to probe as them.
    ProbeAs {
        uid: u32,
        gid: u32,
    },
    /// `sandbox doctor`: write this process's own uid and gid maps.
    IdMapsSelf {
        uid_map: String,
        gid_map: String,
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
    /// The system call(s) it makes, with arguments: rendered from the calls the
    /// executor makes for `action` (see `isolate::describe`), so they cannot drift.
    pub syscall: String,
}
