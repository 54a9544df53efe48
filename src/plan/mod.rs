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

/// Where the sandbox's cgroups are and what goes into them, read from the
/// cgroup manager before the plan is built (empty: no cgroup).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CgroupPlan {
    /// The directories to create (one per v1 hierarchy, or one v2 cgroup).
    pub dirs: Vec<PathBuf>,
    /// v2: the parent's `cgroup.subtree_control` and the controllers to enable there.
    pub enable: Option<CgroupWrite>,
    /// The limit files and their values, in order.
    pub writes: Vec<CgroupWrite>,
    /// The `cgroup.procs` files the sandbox's process is written to.
    pub procs: Vec<PathBuf>,
    /// v2 with clone3: the cgroup the first process is born in (CLONE_INTO_CGROUP);
    /// then no `cgroup-join` step is needed.
    pub clone_into: Option<PathBuf>,
    /// v2 without systemd, when the tool's cgroup holds processes: the leaf the
    /// tool moves its own process into first (see `Action::CgroupMoveSelf`).
    pub supervisor_leaf: Option<PathBuf>,
}

impl CgroupPlan {
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
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
    pub cgroup: CgroupPlan,
    /// A named instance: its writable layer over the rootfs.
    pub layer: Option<Layer>,
    /// A one-off run gets a writable throwaway layer over the rootfs (as
    /// `docker run`): an overlay whose upper layer is on a tmpfs, gone with the
    /// sandbox's mount namespace. False: the rootfs is seen read-only.
    pub throwaway: bool,
}

/// The writable layer of an instance (overlayfs upper and work dirs, and
/// where the merged tree is mounted).
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    /// `[limits] disk`: the upper and work dirs are on this ext4 image (the
    /// cap is its size), mounted at their parent in the sandbox's mount namespace only.
    pub disk: Option<PathBuf>,
}

impl Layer {
    /// The throwaway layer's directories on its tmpfs at `scratch`.
    fn on_scratch(scratch: &Path) -> Layer {
        Layer { upper: scratch.join("upper"), work: scratch.join("work"), merged: scratch.join("merged"), disk: None }
    }

    /// Where the disk image is mounted: the directory of `upper` and `work`.
    pub fn disk_mount_point(&self) -> PathBuf {
        self.upper.parent().map(Path::to_path_buf).unwrap_or_else(|| self.upper.clone())
    }
}

/// Where a throwaway layer's tmpfs goes: the rootfs's own (empty) /tmp, in the
/// sandbox's mount namespace only. Nothing on the host holds the layer, and the
/// overlay sees the store's /tmp below it, not this tmpfs.
fn scratch_dir(rootfs: &Path) -> PathBuf {
    rootfs.join("tmp")
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

    /// Whether the sandbox has a PID 1 of its own (a new PID namespace), which
    /// forks the command and stays as its init.
    pub fn has_init(&self) -> bool {
        self.steps.iter().any(|s| matches!(s.action, Action::Unshare { namespace: Namespace::Pid }))
    }
}

pub fn build(input: &Input) -> Plan {
    let mut steps = match input.mode {
        Mode::Chroot => chroot_steps(input),
        Mode::Namespace => namespace_steps(input),
    };
    teardown_steps(input, &mut steps);
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

fn path_words(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| quote(&p.to_string_lossy())).collect::<Vec<_>>().join(" ")
}

/// A step; its system calls are rendered from what the executor does for the action.
fn step(id: &'static str, actor: Actor, action: Action, shell: impl Into<String>) -> Step {
    let syscall = crate::isolate::describe(actor, &action);
    Step { id, actor, action, shell: shell.into(), syscall }
}

fn workdir(input: &Input) -> PathBuf {
    let profile = input.profile;
    PathBuf::from(profile.run.workdir.clone().unwrap_or_else(|| profile.user.home.clone()))
}

fn exec_step(input: &Input, actor: Actor) -> Step {
    let argv = input.command.clone();
    let shell = if argv.is_empty() {
        "(a background instance: PID 1 waits until `sandbox stop`)".to_string()
    } else {
        format!("cd {} && env -i ... {}", quote(&workdir(input).to_string_lossy()), shell_words(&argv))
    };
    step("exec-command", actor, Action::Exec { argv, env: environment(input), workdir: workdir(input) }, shell)
}

/// The user first (keeping capabilities across the uid change), then the
/// capabilities: dropping the bounding set needs CAP_SETPCAP, and setgroups
/// needs CAP_SETGID.
fn user_steps(input: &Input, actor: Actor, steps: &mut Vec<Step>) {
    let user = &input.profile.user;
    let clear_groups = !matches!(input.ids, IdMapping::Single { .. });
    let groups = if clear_groups { " --clear-groups" } else { "" };
    steps.push(step(
        "set-user",
        actor,
        Action::SetUser { uid: user.uid, gid: user.gid, clear_groups },
        format!("setpriv --reuid={} --regid={}{groups}", user.uid, user.gid),
    ));
    if input.mode == Mode::Namespace {
        let keep: Vec<String> = if user.uid == 0 { ROOT_CAPABILITIES.iter().map(|c| c.to_string()).collect() } else { Vec::new() };
        let keep_text = if keep.is_empty() { "none".to_string() } else { keep.join(",").to_lowercase() };
        steps.push(step("drop-capabilities", actor, Action::DropCapabilities { keep }, format!("capsh --caps={keep_text} --")));
    }
}

/// The supervisor starts the first process.
fn spawn_step(into_cgroup: Option<PathBuf>) -> Step {
    let shell = match &into_cgroup {
        Some(dir) => format!("(a child process, born in {})", dir.display()),
        None => "(a child process of the supervisor)".to_string(),
    };
    step("start-child", Actor::Supervisor, Action::Spawn { into_cgroup }, shell)
}

/// The classic jail. Its mounts live in a mount namespace of their own, only so
/// that the shared rootfs stays read-only and nothing is left mounted on the
/// host: every other thing (processes, network, hostname, users) is the host's.
fn chroot_steps(input: &Input) -> Vec<Step> {
    let root = &input.rootfs;
    let in_root = |p: &str| root.join(p.trim_start_matches('/'));
    let child = Actor::Child;
    let mut steps = vec![spawn_step(None), ns_step(Namespace::Mount)];
    steps.push(step("mount-private", child, Action::MakeMountsPrivate, "mount --make-rprivate /"));
    steps.push(step(
        "bind-rootfs",
        child,
        Action::BindRootfs { rootfs: root.clone(), idmapped: false, nosuid: false },
        format!("mount --rbind {0} {0}", quote(&root.to_string_lossy())),
    ));
    steps.push(step(
        "readonly-paths",
        child,
        Action::RemountReadonly { paths: vec![root.clone()] },
        format!("mount -o remount,bind,ro {}", quote(&root.to_string_lossy())),
    ));
    steps.push(mount_proc_step(child, in_root("/proc")));
    steps.push(mount_tmp_step(child, in_root("/tmp"), input.profile.limits.tmp));
    steps.push(step("chroot", child, Action::Chroot { path: root.clone() }, format!("chroot {} && cd /", quote(&root.to_string_lossy()))));
    user_steps(input, child, &mut steps);
    steps.push(close_fds_step(child));
    steps.push(exec_step(input, child));
    steps
}

/// The supervisor's part before anything starts: its own cgroup leaf, the
/// sandbox's cgroup and its limits.
fn cgroup_steps(cgroup: &CgroupPlan, steps: &mut Vec<Step>) {
    let supervisor = Actor::Supervisor;
    if let Some(leaf) = &cgroup.supervisor_leaf {
        let shell = format!("mkdir -p {0} && echo $$ > {0}/cgroup.procs", leaf.display());
        steps.push(step("cgroup-supervisor-leaf", supervisor, Action::CgroupMoveSelf { leaf: leaf.clone() }, shell));
    }
    if cgroup.is_empty() {
        return;
    }
    let mut shell = format!("mkdir {}", path_words(&cgroup.dirs));
    if let Some(enable) = &cgroup.enable {
        shell.push_str(&format!("; echo {} > {}", quote(&enable.value), enable.file.display()));
    }
    steps.push(step("cgroup-create", supervisor, Action::CgroupCreate { dirs: cgroup.dirs.clone(), enable: cgroup.enable.clone() }, shell));
    for write in &cgroup.writes {
        let shell = format!("echo {} > {}", quote(&write.value), write.file.display());
        steps.push(step(limit_step_id(&write.file), supervisor, Action::CgroupLimit { write: write.clone() }, shell));
    }
}

fn cgroup_join_step(actor: Actor, procs: &[PathBuf]) -> Step {
    let who = if actor == Actor::Supervisor { "PID" } else { "$$" };
    let shell = procs.iter().map(|p| format!("echo {who} > {}", p.display())).collect::<Vec<_>>().join("; ");
    step("cgroup-join", actor, Action::CgroupJoin { procs: procs.to_vec() }, shell)
}

fn namespace_steps(input: &Input) -> Vec<Step> {
    let profile = input.profile;
    let scratch = (input.throwaway && input.layer.is_none()).then(|| scratch_dir(&input.rootfs));
    let throwaway = scratch.as_deref().map(Layer::on_scratch);
    let layer = input.layer.as_ref().or(throwaway.as_ref());
    // With a layer, the new root is the merged tree, not the rootfs.
    let root = layer.map(|l| &l.merged).unwrap_or(&input.rootfs);
    let in_root = |p: &str| root.join(p.trim_start_matches('/'));
    let mut steps = Vec::new();

    // On the host, before anything starts: the cgroup and its limits, and the
    // instance's disk as a detached mount (the child inherits its descriptor).
    cgroup_steps(&input.cgroup, &mut steps);
    let disk = layer.and_then(|l| l.disk.as_ref().map(|image| (image, l.disk_mount_point())));
    if let Some((image, _)) = disk {
        steps.push(step(
            "disk-image",
            Actor::Supervisor,
            Action::DiskImage { image: image.clone() },
            format!("losetup --find --show {} (cleared when unused: LO_FLAGS_AUTOCLEAR)", quote(&image.to_string_lossy())),
        ));
    }
    steps.push(spawn_step(input.cgroup.clone_into.clone()));

    // The child makes the user namespace; the supervisor maps its ids and
    // puts it into the cgroup; then the child makes the other namespaces.
    steps.push(ns_step(Namespace::User));
    let (uid_map, gid_map) = (input.ids.uid_map(), input.ids.gid_map());
    // Only an unprivileged writer must deny setgroups before it may write gid_map.
    let deny_setgroups = matches!(input.ids, IdMapping::Single { .. });
    let setgroups = if deny_setgroups { "echo deny > /proc/PID/setgroups; " } else { "" };
    steps.push(step(
        "uid-map",
        Actor::Supervisor,
        Action::IdMaps { uid_map: uid_map.clone(), gid_map: gid_map.clone(), deny_setgroups },
        format!("echo '{uid_map}' > /proc/PID/uid_map; {setgroups}echo '{gid_map}' > /proc/PID/gid_map"),
    ));
    let idmapped = input.idmapped && matches!(input.ids, IdMapping::Range { .. });
    if idmapped {
        steps.push(step(
            "idmap-rootfs",
            Actor::Supervisor,
            Action::IdmapRootfs { rootfs: input.rootfs.clone() },
            format!("mount --bind -o X-mount.idmap=/proc/PID/ns/user {0} {0}", quote(&input.rootfs.to_string_lossy())),
        ));
    }
    if !input.cgroup.is_empty() && input.cgroup.clone_into.is_none() {
        steps.push(cgroup_join_step(Actor::Supervisor, &input.cgroup.procs));
    }
    for namespace in [Namespace::Mount, Namespace::Uts, Namespace::Ipc, Namespace::Net, Namespace::Cgroup, Namespace::Pid] {
        if namespace == Namespace::Net && profile.network == NetworkMode::Host {
            continue;
        }
        if namespace == Namespace::Cgroup && input.cgroup.is_empty() {
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
    ));
    if profile.network == NetworkMode::Loopback {
        let range = input.ids.inside_gid_range();
        steps.push(step(
            "loopback-up",
            init,
            Action::LoopbackUp { ping_group_range: range.clone() },
            format!("ip link set lo up; sysctl -w net.ipv4.ping_group_range='{range}'"),
        ));
    }
    steps.push(step("mount-private", init, Action::MakeMountsPrivate, "mount --make-rprivate /"));
    // The disk before the rootfs: PID 1 still has the host's ids to walk to
    // its mount point, and the layer's directories are on it.
    if let Some((_, target)) = &disk {
        steps.push(step(
            "mount-disk",
            init,
            Action::MountDisk { target: target.clone() },
            format!("mount -t ext4 -o discard,nosuid,nodev /dev/loopN {}", quote(&target.to_string_lossy())),
        ));
    }
    let rootfs = &input.rootfs;
    let bind_shell = if idmapped {
        "(attach the idmapped tree the supervisor made)".to_string()
    } else {
        format!("mount --rbind {0} {0} && mount -o remount,bind,nosuid,nodev {0}", quote(&rootfs.to_string_lossy()))
    };
    steps.push(step("bind-rootfs", init, Action::BindRootfs { rootfs: rootfs.clone(), idmapped, nosuid: true }, bind_shell));
    if let (Some(scratch), Some(layer)) = (&scratch, layer) {
        // `[limits] disk` caps what a sandbox writes, an instance's layer or
        // this throwaway one; /tmp has its own tmpfs and its own size.
        let size = profile.limits.disk;
        let size_opt = size.map(|s| format!(",size={s}")).unwrap_or_default();
        steps.push(step(
            "mount-scratch",
            init,
            Action::MountScratch { target: scratch.clone(), size },
            format!(
                "mount -t tmpfs -o mode=0755{size_opt} tmpfs {0} && mkdir {1} {2} {3}",
                scratch.display(),
                layer.upper.display(),
                layer.work.display(),
                layer.merged.display()
            ),
        ));
    }
    if let Some(layer) = layer {
        let options =
            format!("userxattr,lowerdir={},upperdir={},workdir={}", rootfs.display(), layer.upper.display(), layer.work.display());
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
    ));
    steps.push(mount_tmp_step(init, in_root("/tmp"), profile.limits.tmp));
    if profile.network != NetworkMode::Host {
        steps.push(step(
            "mount-sys",
            init,
            Action::MountSys { target: in_root("/sys") },
            format!("mount -t sysfs -o ro,nosuid,nodev,noexec sysfs {}", in_root("/sys").display()),
        ));
    }
    for mount in &profile.mounts {
        let target = in_root(&mount.target);
        let ro = if mount.readonly { format!(" && mount --make-rro... (mount_setattr -R ro) {}", target.display()) } else { String::new() };
        let shell = format!("mount --rbind {} {}{ro}", quote(&mount.source.to_string_lossy()), target.display());
        steps.push(step("bind-mount", init, Action::BindMount { source: mount.source.clone(), target, readonly: mount.readonly }, shell));
    }
    steps.push(step(
        "pivot-root",
        init,
        Action::PivotRoot { new_root: root.clone() },
        format!("cd {} && pivot_root . . && umount -l .", quote(&root.to_string_lossy())),
    ));
    // The shared rootfs is read-only; a layer's `/` is writable.
    let root_readonly = layer.is_none().then(|| PathBuf::from("/"));
    let readonly: Vec<PathBuf> = root_readonly.into_iter().chain(READONLY_PROC.iter().map(PathBuf::from)).collect();
    let root_ro = if layer.is_none() { "mount -o remount,bind,ro /; " } else { "" };
    steps.push(step(
        "readonly-paths",
        init,
        Action::RemountReadonly { paths: readonly },
        format!("{root_ro}for p in {}; do mount --bind $p $p; mount -o remount,bind,ro $p; done", READONLY_PROC.join(" ")),
    ));
    steps.push(step(
        "mask-paths",
        init,
        Action::MaskPaths {
            files: MASKED_FILES.iter().map(PathBuf::from).collect(),
            dirs: MASKED_DIRS.iter().map(PathBuf::from).collect(),
        },
        format!(
            "for f in {}; do mount --bind /dev/null $f; done; for d in {}; do mount -t tmpfs -o ro,size=0 tmpfs $d; done",
            MASKED_FILES.join(" "),
            MASKED_DIRS.join(" ")
        ),
    ));
    final_steps(input, init, &mut steps);
    steps
}

/// After the command: the supervisor waits, then removes the cgroup.
fn teardown_steps(input: &Input, steps: &mut Vec<Step>) {
    steps.push(step("wait", Actor::Supervisor, Action::Wait, "wait $PID"));
    if !input.cgroup.is_empty() && input.mode == Mode::Namespace {
        let dirs = input.cgroup.dirs.clone();
        let shell = format!(
            "kill -9 $(cat {}); rmdir {}",
            input.cgroup.procs.first().map(|p| p.display().to_string()).unwrap_or_default(),
            path_words(&dirs)
        );
        steps.push(step("cgroup-remove", Actor::Supervisor, Action::CgroupRemove { dirs }, shell));
    }
}

/// `sandbox exec`: join a running sandbox, then become its user with the same
/// restrictions as its own command had. The supervisor enters the PID
/// namespace (for its next child only), the child joins the cgroup and the
/// other namespaces and becomes the command, as `nsenter --all` does.
pub fn join(input: &Input, init_pid: i32) -> Plan {
    let mut steps =
        vec![step("join-pid-namespace", Actor::Supervisor, Action::JoinPid { init_pid }, format!("nsenter --target {init_pid} --pid"))];
    steps.push(spawn_step(input.cgroup.clone_into.clone()));
    // The joining process puts itself into the instance's cgroup first (its
    // limits hold for it too), while it still sees the host's cgroupfs.
    if !input.cgroup.procs.is_empty() && input.cgroup.clone_into.is_none() {
        steps.push(cgroup_join_step(Actor::Child, &input.cgroup.procs));
    }
    steps.push(step(
        "join-namespaces",
        Actor::Child,
        Action::JoinNamespaces { init_pid },
        format!("nsenter --target {init_pid} --user --mount --uts --ipc --net --cgroup"),
    ));
    final_steps(input, Actor::Child, &mut steps);
    steps.push(step("wait", Actor::Supervisor, Action::Wait, "wait $PID"));
    Plan { mode: Mode::Namespace, steps }
}

fn mount_proc_step(actor: Actor, target: PathBuf) -> Step {
    let shell = format!("mount -t proc proc {}", target.display());
    step("mount-proc", actor, Action::MountProc { target }, shell)
}

fn mount_tmp_step(actor: Actor, target: PathBuf, size: Option<u64>) -> Step {
    let size_opt = size.map(|s| format!(",size={s}")).unwrap_or_default();
    let shell = format!("mount -t tmpfs -o mode=1777,nosuid,nodev{size_opt} tmpfs {}", target.display());
    step("mount-tmp", actor, Action::MountTmp { target, size }, shell)
}

/// The last steps before the command, the same for a new sandbox and for
/// `exec` into a running one: session, user, capabilities, no_new_privs,
/// descriptors, seccomp, and the command.
fn final_steps(input: &Input, actor: Actor, steps: &mut Vec<Step>) {
    steps.push(step("new-session", actor, Action::NewSession, "setsid"));
    user_steps(input, actor, steps);
    steps.push(step("no-new-privs", actor, Action::NoNewPrivs, "setpriv --no-new-privs"));
    steps.push(close_fds_step(actor));
    let denied: Vec<String> = crate::isolate::seccomp::DENIED.iter().map(|d| d.syscall.to_string()).collect();
    steps.push(step("seccomp", actor, Action::Seccomp { denied }, "(no shell command: bwrap --seccomp FD or docker's default profile)"));
    steps.push(exec_step(input, actor));
}

fn close_fds_step(actor: Actor) -> Step {
    step("close-fds", actor, Action::CloseFds, "exec 3>&- 4>&- ...")
}

fn ns_step(namespace: Namespace) -> Step {
    let shell = match namespace {
        Namespace::Pid => "unshare --pid --fork".to_string(),
        n => format!("unshare {}", n.unshare_option()),
    };
    step(namespace.step_id(), Actor::Child, Action::Unshare { namespace }, shell)
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

/// `sandbox doctor`'s probe of the namespace mode's mount sequence: the same
/// actions `run` carries out, on a tmpfs at `dir` (in a child that exits
/// after, so nothing stays): a new mount namespace (in a new user namespace
/// without root), private propagation, a mount point, pivot_root, detach.
pub fn probe_mount_namespace(dir: &Path, as_root: bool, uid: u32, gid: u32) -> Vec<Step> {
    let mut steps = Vec::new();
    if !as_root {
        steps.push(ns_step(Namespace::User));
        steps.push(id_maps_self_step(uid, gid));
    }
    steps.push(ns_step(Namespace::Mount));
    steps.push(step("mount-private", Actor::Child, Action::MakeMountsPrivate, "mount --make-rprivate /"));
    steps.push(step(
        "mount-scratch",
        Actor::Child,
        Action::MountScratch { target: dir.to_path_buf(), size: Some(1 << 20) },
        format!("mount -t tmpfs tmpfs {}", dir.display()),
    ));
    steps.push(step(
        "pivot-root",
        Actor::Child,
        Action::PivotRoot { new_root: dir.to_path_buf() },
        format!("cd {} && pivot_root . . && umount -l .", dir.display()),
    ));
    steps
}

/// `sandbox doctor`'s probe of a user namespace, as this user or (from root)
/// as `as_user` without any privilege.
pub fn probe_user_namespace(as_user: Option<u32>, uid: u32, gid: u32) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(id) = as_user {
        steps.push(step(
            "probe-as",
            Actor::Child,
            Action::ProbeAs { uid: id, gid: id },
            format!("setpriv --reuid={id} --regid={id} --clear-groups"),
        ));
    }
    steps.push(ns_step(Namespace::User));
    steps.push(id_maps_self_step(uid, gid));
    steps
}

fn id_maps_self_step(uid: u32, gid: u32) -> Step {
    let (uid_map, gid_map) = (format!("0 {uid} 1"), format!("0 {gid} 1"));
    step(
        "uid-map",
        Actor::Child,
        Action::IdMapsSelf { uid_map: uid_map.clone(), gid_map: gid_map.clone() },
        format!("echo deny > /proc/self/setgroups; echo '{uid_map}' > /proc/self/uid_map; echo '{gid_map}' > /proc/self/gid_map"),
    )
}

#[cfg(test)]
mod tests;
