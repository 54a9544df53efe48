//! The plan: what entering the sandbox takes, as a list of `Step` values.
//! Building it makes no system call, so it is unit-tested without root, and
//! `run`, `explain` and `--dry-run` share it: what is explained is what runs.

mod step;

use std::path::{Path, PathBuf};

pub use step::{Action, Actor, CgroupWrite, Namespace, Step};

use crate::profile::{Mode, NetworkMode, Profile};

/// The sizes of the uid and gid ranges a sandbox gets (as a container's).
pub const ID_RANGE: u32 = 65536;

/// Capabilities root keeps inside, as Docker's default: enough to manage
/// files and users of the sandbox, nothing that reaches the kernel or the host.
pub const ROOT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SYS_CHROOT",
    "CAP_MKNOD",
    "CAP_AUDIT_WRITE",
    "CAP_SETFCAP",
];

/// /proc files hidden as runc hides them: they leak host state or reach the kernel.
pub const MASKED_FILES: &[&str] = &[
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/sysrq-trigger",
];
pub const MASKED_DIRS: &[&str] = &["/proc/acpi", "/proc/scsi", "/sys/firmware"];
/// Read-only, as runc does: writing them changes the whole machine.
pub const READONLY_PROC: &[&str] = &["/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq"];
/// Devices bound from the host into the sandbox's tmpfs /dev.
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// How the sandbox's ids map to the host's.
#[derive(Clone, Debug, PartialEq)]
pub enum IdMapping {
    /// Root runs the tool: ids 0..65536 inside are HOST_BASE.. outside, never host root.
    Range { host_base: u32 },
    /// An unprivileged user runs the tool: one id, theirs, becomes `inside`.
    Single { inside: u32, host_uid: u32, host_gid: u32 },
}

impl IdMapping {
    pub fn uid_map(&self) -> String {
        match self {
            IdMapping::Range { host_base } => format!("0 {host_base} {ID_RANGE}"),
            IdMapping::Single { inside, host_uid, .. } => format!("{inside} {host_uid} 1"),
        }
    }
    /// The gids that exist inside, as "FIRST LAST".
    pub fn inside_gid_range(&self) -> String {
        match self {
            IdMapping::Range { .. } => format!("0 {}", ID_RANGE - 1),
            IdMapping::Single { inside, .. } => format!("{inside} {inside}"),
        }
    }

    pub fn gid_map(&self) -> String {
        match self {
            IdMapping::Range { host_base } => format!("0 {host_base} {ID_RANGE}"),
            IdMapping::Single { inside, host_gid, .. } => format!("{inside} {host_gid} 1"),
        }
    }
}

/// Everything the plan depends on, gathered (with reads of the host) before.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    pub profile: &'a Profile,
    pub mode: Mode,
    pub rootfs: PathBuf,
    pub command: Vec<String>,
    /// The caller's TERM, kept so the terminal works inside.
    pub term: Option<String>,
    pub ids: IdMapping,
    /// The kernel can idmap the rootfs mount (5.12+).
    pub idmapped: bool,
    /// The cgroup directories to create and the limit files to write.
    pub cgroup_dirs: Vec<PathBuf>,
    pub cgroup_writes: Vec<CgroupWrite>,
    pub cgroup_procs: Vec<PathBuf>,
    /// A named instance: its writable layer over the rootfs.
    pub layer: Option<Layer>,
}

/// The writable layer of an instance (overlayfs upper and work dirs, and
/// where the merged tree is mounted).
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub mode: Mode,
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn ids(&self) -> Vec<&'static str> {
        self.steps.iter().map(|s| s.id).collect()
    }

    /// The command the plan ends by starting.
    pub fn command(&self) -> Vec<String> {
        self.steps
            .iter()
            .find_map(|s| if let Action::Exec { argv, .. } = &s.action { Some(argv.clone()) } else { None })
            .unwrap_or_default()
    }

    pub fn for_actor(&self, actor: Actor) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(move |s| s.actor == actor)
    }
}

pub fn build(input: &Input) -> Plan {
    let steps = match input.mode {
        Mode::Chroot => chroot_steps(input),
        Mode::Namespace => namespace_steps(input),
    };
    Plan { mode: input.mode, steps }
}

/// The clean environment the command starts with.
pub fn environment(input: &Input) -> Vec<(String, String)> {
    let profile = input.profile;
    let user = &profile.user;
    let lang = profile.rootfs.locales.iter().map(|l| l.value.clone()).find(|l| l != "C" && l != "POSIX").unwrap_or_else(|| "C".into());
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()),
        ("HOME".into(), user.home.clone()),
        ("USER".into(), user.name.clone()),
        ("LOGNAME".into(), user.name.clone()),
        ("SHELL".into(), user.shell.clone()),
        ("TERM".into(), input.term.clone().unwrap_or_else(|| "xterm".into())),
        ("LANG".into(), lang),
    ];
    if let Some(zone) = &profile.rootfs.timezone {
        env.push(("TZ".into(), format!(":/usr/share/zoneinfo/{}", zone.value)));
    }
    for (key, value) in &profile.env {
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value.clone()));
    }
    env
}

fn quote(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@%".contains(c)) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn shell_words(argv: &[String]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

fn step(id: &'static str, actor: Actor, action: Action, shell: impl Into<String>, syscall: impl Into<String>) -> Step {
    Step { id, actor, action, shell: shell.into(), syscall: syscall.into() }
}

fn workdir(input: &Input) -> PathBuf {
    let profile = input.profile;
    PathBuf::from(profile.run.workdir.clone().unwrap_or_else(|| profile.user.home.clone()))
}

fn exec_step(input: &Input, actor: Actor) -> Step {
    let argv = input.command.clone();
    let shell = format!("cd {} && env -i ... {}", quote(&workdir(input).to_string_lossy()), shell_words(&argv));
    let syscall = format!("chdir(\"{}\"); execve(\"{}\", ...)", workdir(input).display(), argv.first().map(String::as_str).unwrap_or(""));
    step("exec-command", actor, Action::Exec { argv, env: environment(input), workdir: workdir(input) }, shell, syscall)
}

/// The user first (keeping capabilities across the uid change), then the
/// capabilities: dropping the bounding set needs CAP_SETPCAP, and setgroups
/// needs CAP_SETGID, so neither order of two plain calls works.
fn user_steps(input: &Input, actor: Actor, steps: &mut Vec<Step>) {
    let user = &input.profile.user;
    steps.push(step(
        "set-user",
        actor,
        Action::SetUser { uid: user.uid, gid: user.gid, clear_groups: !matches!(input.ids, IdMapping::Single { .. }) },
        format!("setpriv --reuid={} --regid={} --clear-groups", user.uid, user.gid),
        format!("setgroups(0, NULL); setresgid({0}, {0}, {0}); prctl(PR_SET_KEEPCAPS, 1); setresuid({1}, {1}, {1})", user.gid, user.uid),
    ));
    if input.mode == Mode::Namespace {
        let keep: Vec<String> = if user.uid == 0 { ROOT_CAPABILITIES.iter().map(|c| c.to_string()).collect() } else { Vec::new() };
        let keep_text = if keep.is_empty() { "none".to_string() } else { keep.join(",").to_lowercase() };
        steps.push(step(
            "drop-capabilities",
            actor,
            Action::DropCapabilities { keep },
            format!("capsh --caps={keep_text} --"),
            "prctl(PR_CAPBSET_DROP, ...); capset(...)",
        ));
    }
}

/// The classic jail. Its mounts live in a mount namespace of their own, only so
/// that the shared rootfs stays read-only and nothing is left mounted on the
/// host: every other thing (processes, network, hostname, users) is the host's.
fn chroot_steps(input: &Input) -> Vec<Step> {
    let root = &input.rootfs;
    let in_root = |p: &str| root.join(p.trim_start_matches('/'));
    let child = Actor::Child;
    let mut steps = vec![ns_step(Namespace::Mount)];
    steps.push(step(
        "mount-private",
        child,
        Action::MakeMountsPrivate,
        "mount --make-rprivate /",
        "mount(NULL, \"/\", NULL, MS_REC|MS_PRIVATE, NULL)",
    ));
    steps.push(step(
        "bind-rootfs",
        child,
        Action::BindRootfs { rootfs: root.clone(), idmapped: false, nosuid: false },
        format!("mount --bind {0} {0}", quote(&root.to_string_lossy())),
        format!("mount(\"{0}\", \"{0}\", NULL, MS_BIND|MS_REC, NULL)", root.display()),
    ));
    steps.push(step(
        "readonly-paths",
        child,
        Action::RemountReadonly { paths: vec![root.clone()] },
        format!("mount -o remount,bind,ro {}", quote(&root.to_string_lossy())),
        "mount(NULL, ROOTFS, NULL, MS_REMOUNT|MS_BIND|MS_RDONLY, NULL)",
    ));
    steps.push(mount_proc_step(child, in_root("/proc")));
    steps.push(mount_tmp_step(child, in_root("/tmp"), input.profile.limits.tmp));
    steps.push(step(
        "chroot",
        child,
        Action::Chroot { path: root.clone() },
        format!("chroot {} && cd /", quote(&root.to_string_lossy())),
        format!("chroot(\"{}\"); chdir(\"/\")", root.display()),
    ));
    user_steps(input, child, &mut steps);
    steps.push(close_fds_step(child));
    steps.push(exec_step(input, child));
    steps
}

fn namespace_steps(input: &Input) -> Vec<Step> {
    let profile = input.profile;
    // With an instance layer, the new root is the merged tree, not the rootfs.
    let root = input.layer.as_ref().map(|l| &l.merged).unwrap_or(&input.rootfs);
    let in_root = |p: &str| root.join(p.trim_start_matches('/'));
    let mut steps = Vec::new();

    // On the host, before anything starts: the cgroup and its limits.
    if !input.cgroup_dirs.is_empty() {
        let dirs = input.cgroup_dirs.clone();
        let shell = format!("mkdir {}", dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(" "));
        steps.push(step("cgroup-create", Actor::Supervisor, Action::CgroupCreate { dirs }, shell, "mkdir(...)"));
    }
    for write in &input.cgroup_writes {
        let id = limit_step_id(&write.file);
        let shell = format!("echo {} > {}", quote(&write.value), write.file.display());
        let syscall = format!("write(\"{}\", \"{}\")", write.file.display(), write.value);
        steps.push(step(id, Actor::Supervisor, Action::CgroupLimit { write: write.clone() }, shell, syscall));
    }

    // The child makes the user namespace; the supervisor maps its ids and
    // puts it into the cgroup; then the child makes the other namespaces.
    steps.push(ns_step(Namespace::User));
    let (uid_map, gid_map) = (input.ids.uid_map(), input.ids.gid_map());
    steps.push(step(
        "uid-map",
        Actor::Supervisor,
        Action::IdMaps { uid_map: uid_map.clone(), gid_map: gid_map.clone() },
        format!("echo '{uid_map}' > /proc/PID/uid_map; echo deny > /proc/PID/setgroups; echo '{gid_map}' > /proc/PID/gid_map"),
        "write(\"/proc/PID/uid_map\"); write(\"/proc/PID/setgroups\"); write(\"/proc/PID/gid_map\")",
    ));
    if !input.cgroup_procs.is_empty() {
        let procs = input.cgroup_procs.clone();
        let shell = procs.iter().map(|p| format!("echo PID > {}", p.display())).collect::<Vec<_>>().join("; ");
        steps.push(step("cgroup-join", Actor::Supervisor, Action::CgroupJoin { procs }, shell, "write(\"cgroup.procs\", PID)"));
    }
    for namespace in [Namespace::Mount, Namespace::Uts, Namespace::Ipc, Namespace::Net, Namespace::Cgroup, Namespace::Pid] {
        if namespace == Namespace::Net && profile.network == NetworkMode::Host {
            continue;
        }
        if namespace == Namespace::Cgroup && input.cgroup_procs.is_empty() {
            // Without a cgroup of its own, a cgroup namespace would show the caller's.
            continue;
        }
        steps.push(ns_step(namespace));
    }

    // PID 1 of the new PID namespace builds the new root.
    let init = Actor::Init;
    // Names and the network first: /proc/sys is still writable here.
    steps.push(step(
        "hostname",
        init,
        Action::SetHostname { hostname: profile.run.hostname.clone() },
        format!("hostname {}", quote(&profile.run.hostname)),
        format!("sethostname(\"{}\")", profile.run.hostname),
    ));
    if profile.network == NetworkMode::Loopback {
        steps.push(step(
            "loopback-up",
            init,
            Action::LoopbackUp { ping_group_range: input.ids.inside_gid_range() },
            format!("ip link set lo up; sysctl -w net.ipv4.ping_group_range='{}'", input.ids.inside_gid_range()),
            "ioctl(sock, SIOCSIFFLAGS, {\"lo\", IFF_UP}); write(\"/proc/sys/net/ipv4/ping_group_range\")",
        ));
    }
    steps.push(step(
        "mount-private",
        init,
        Action::MakeMountsPrivate,
        "mount --make-rprivate /",
        "mount(NULL, \"/\", NULL, MS_REC|MS_PRIVATE, NULL)",
    ));
    let idmapped = input.idmapped && matches!(input.ids, IdMapping::Range { .. });
    let (bind_shell, bind_syscall) = if idmapped {
        (
            format!("mount --bind -o X-mount.idmap=/proc/PID/ns/user {0} {0}", quote(&input.rootfs.to_string_lossy())),
            "open_tree(OPEN_TREE_CLONE|AT_RECURSIVE); mount_setattr(MOUNT_ATTR_IDMAP); move_mount(...)".to_string(),
        )
    } else {
        (
            format!("mount --rbind {0} {0}", quote(&input.rootfs.to_string_lossy())),
            format!("mount(\"{0}\", \"{0}\", NULL, MS_BIND|MS_REC, NULL)", input.rootfs.display()),
        )
    };
    let rootfs = &input.rootfs;
    steps.push(step("bind-rootfs", init, Action::BindRootfs { rootfs: rootfs.clone(), idmapped, nosuid: true }, bind_shell, bind_syscall));
    if let Some(layer) = &input.layer {
        let options = format!("lowerdir={},upperdir={},workdir={}", rootfs.display(), layer.upper.display(), layer.work.display());
        steps.push(step(
            "mount-overlay",
            init,
            Action::MountOverlay {
                lower: rootfs.clone(),
                upper: layer.upper.clone(),
                work: layer.work.clone(),
                target: layer.merged.clone(),
            },
            format!("mount -t overlay overlay -o nosuid,nodev,{options} {}", layer.merged.display()),
            format!("mount(\"overlay\", \"{}\", \"overlay\", MS_NOSUID|MS_NODEV, \"{options}\")", layer.merged.display()),
        ));
    }
    steps.push(mount_proc_step(init, in_root("/proc")));
    let devices: Vec<String> = DEVICES.iter().map(|d| d.to_string()).collect();
    steps.push(step(
        "mount-dev",
        init,
        Action::MountDev { target: in_root("/dev"), devices },
        format!(
            "mount -t tmpfs -o mode=755,nosuid tmpfs {0}; for d in {1}; do touch {0}/$d; mount --bind /dev/$d {0}/$d; done",
            in_root("/dev").display(),
            DEVICES.join(" ")
        ),
        "mount(\"tmpfs\", \".../dev\", \"tmpfs\", MS_NOSUID|MS_STRICTATIME, \"mode=755\"); mount(\"/dev/null\", ..., MS_BIND)",
    ));
    steps.push(step(
        "mount-devpts",
        init,
        Action::MountDevpts { target: in_root("/dev/pts") },
        format!(
            "mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts {}; mount -t tmpfs shm {}",
            in_root("/dev/pts").display(),
            in_root("/dev/shm").display()
        ),
        "mount(\"devpts\", \".../dev/pts\", \"devpts\", MS_NOSUID|MS_NOEXEC, \"newinstance,ptmxmode=0666,mode=620\")",
    ));
    steps.push(mount_tmp_step(init, in_root("/tmp"), profile.limits.tmp));
    if profile.network != NetworkMode::Host {
        steps.push(step(
            "mount-sys",
            init,
            Action::MountSys { target: in_root("/sys") },
            format!("mount -t sysfs -o ro,nosuid,nodev,noexec sysfs {}", in_root("/sys").display()),
            "mount(\"sysfs\", \".../sys\", \"sysfs\", MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL)",
        ));
    }
    for mount in &profile.mounts {
        let target = in_root(&mount.target);
        let ro = if mount.readonly { " && mount -o remount,bind,ro " } else { "" };
        let shell = format!(
            "mount --rbind {} {}{ro}{}",
            quote(&mount.source.to_string_lossy()),
            target.display(),
            if mount.readonly { target.display().to_string() } else { String::new() }
        );
        steps.push(step(
            "bind-mount",
            init,
            Action::BindMount { source: mount.source.clone(), target, readonly: mount.readonly },
            shell,
            "mount(SOURCE, TARGET, NULL, MS_BIND|MS_REC, NULL)",
        ));
    }
    steps.push(step(
        "pivot-root",
        init,
        Action::PivotRoot { new_root: root.clone() },
        format!("cd {} && pivot_root . . && umount -l .", quote(&root.to_string_lossy())),
        format!("chdir(\"{}\"); pivot_root(\".\", \".\"); umount2(\".\", MNT_DETACH); chdir(\"/\")", root.display()),
    ));
    // The shared rootfs is read-only; an instance's `/` is its own writable layer.
    let root_readonly = input.layer.is_none().then(|| PathBuf::from("/"));
    let readonly: Vec<PathBuf> = root_readonly.into_iter().chain(READONLY_PROC.iter().map(PathBuf::from)).collect();
    steps.push(step(
        "readonly-paths",
        init,
        Action::RemountReadonly { paths: readonly },
        format!(
            "mount -o remount,bind,ro /; for p in {}; do mount --bind $p $p; mount -o remount,bind,ro $p; done",
            READONLY_PROC.join(" ")
        ),
        "mount(NULL, \"/\", NULL, MS_REMOUNT|MS_BIND|MS_RDONLY, NULL)",
    ));
    steps.push(step(
        "mask-paths",
        init,
        Action::MaskPaths {
            files: MASKED_FILES.iter().map(PathBuf::from).collect(),
            dirs: MASKED_DIRS.iter().map(PathBuf::from).collect(),
        },
        format!("for f in {}; do mount --bind /dev/null $f; done", MASKED_FILES.join(" ")),
        "mount(\"/dev/null\", FILE, NULL, MS_BIND, NULL); mount(\"tmpfs\", DIR, \"tmpfs\", MS_RDONLY, NULL)",
    ));
    final_steps(input, &mut steps);
    steps
}

/// `sandbox exec`: join a running sandbox, then become its user with the same
/// restrictions as its own command had.
pub fn join(input: &Input, init_pid: i32) -> Plan {
    let mut steps = Vec::new();
    steps.push(step(
        "join-namespaces",
        Actor::Child,
        Action::JoinNamespaces { init_pid },
        format!("nsenter --target {init_pid} --user --mount --uts --ipc --net --cgroup"),
        format!("setns(open(\"/proc/{init_pid}/ns/user\"), 0); setns(.../mnt); ...; chdir(\"/\")"),
    ));
    // The supervisor puts the joining child into the instance's cgroup (its limits hold for it too).
    if !input.cgroup_procs.is_empty() {
        let procs = input.cgroup_procs.clone();
        let shell = procs.iter().map(|p| format!("echo PID > {}", p.display())).collect::<Vec<_>>().join("; ");
        steps.push(step("cgroup-join", Actor::Supervisor, Action::CgroupJoin { procs }, shell, "write(\"cgroup.procs\", PID)"));
    }
    steps.push(step(
        "join-pid-namespace",
        Actor::Child,
        Action::JoinPid { init_pid },
        format!("nsenter --target {init_pid} --pid"),
        format!("setns(open(\"/proc/{init_pid}/ns/pid\"), CLONE_NEWPID); fork()"),
    ));
    final_steps(input, &mut steps);
    Plan { mode: Mode::Namespace, steps }
}

fn mount_proc_step(actor: Actor, target: PathBuf) -> Step {
    step(
        "mount-proc",
        actor,
        Action::MountProc { target: target.clone() },
        format!("mount -t proc proc {}", target.display()),
        "mount(\"proc\", \".../proc\", \"proc\", MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL)",
    )
}

fn mount_tmp_step(actor: Actor, target: PathBuf, size: Option<u64>) -> Step {
    let size_opt = size.map(|s| format!(",size={s}")).unwrap_or_default();
    step(
        "mount-tmp",
        actor,
        Action::MountTmp { target: target.clone(), size },
        format!("mount -t tmpfs -o mode=1777,nosuid,nodev{size_opt} tmpfs {}", target.display()),
        format!("mount(\"tmpfs\", \".../tmp\", \"tmpfs\", MS_NOSUID|MS_NODEV, \"mode=1777{size_opt}\")"),
    )
}

/// The last steps before the command, the same for a new sandbox and for
/// `exec` into a running one: session, user, capabilities, no_new_privs,
/// descriptors, seccomp, and the command.
fn final_steps(input: &Input, steps: &mut Vec<Step>) {
    let init = Actor::Init;
    steps.push(step("new-session", init, Action::NewSession, "setsid", "setsid(); keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)"));
    user_steps(input, init, steps);
    steps.push(step("no-new-privs", init, Action::NoNewPrivs, "setpriv --no-new-privs", "prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)"));
    steps.push(close_fds_step(init));
    let denied: Vec<String> = crate::isolate::seccomp::DENIED.iter().map(|d| d.syscall.to_string()).collect();
    steps.push(step(
        "seccomp",
        init,
        Action::Seccomp { denied: denied.clone() },
        "(no shell command: bwrap --seccomp FD or docker's default profile)",
        format!("seccomp(SECCOMP_SET_MODE_FILTER, 0, {{{} denied}})", denied.len()),
    ));
    steps.push(exec_step(input, init));
}

fn close_fds_step(actor: Actor) -> Step {
    step("close-fds", actor, Action::CloseFds, "exec 3>&- 4>&- ...", "close_range(3, ~0U, 0)")
}

fn ns_step(namespace: Namespace) -> Step {
    let (shell, syscall) = match namespace {
        Namespace::Pid => ("unshare --pid --fork".to_string(), "unshare(CLONE_NEWPID); fork()".to_string()),
        n => (format!("unshare {}", n.unshare_option()), format!("unshare(CLONE_NEW{})", flag_name(n))),
    };
    step(namespace.step_id(), Actor::Child, Action::Unshare { namespace }, shell, syscall)
}

fn flag_name(namespace: Namespace) -> &'static str {
    match namespace {
        Namespace::User => "USER",
        Namespace::Mount => "NS",
        Namespace::Uts => "UTS",
        Namespace::Ipc => "IPC",
        Namespace::Net => "NET",
        Namespace::Cgroup => "CGROUP",
        Namespace::Pid => "PID",
    }
}

/// Each limit is its own step, named by what it limits.
fn limit_step_id(file: &Path) -> &'static str {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if name.starts_with("memory.memsw") || name.starts_with("memory.swap") {
        "cgroup-swap-limit"
    } else if name.starts_with("memory") {
        "cgroup-memory-limit"
    } else if name.starts_with("pids") {
        "cgroup-pids-limit"
    } else {
        "cgroup-cpu-limit"
    }
}

#[cfg(test)]
mod tests;
