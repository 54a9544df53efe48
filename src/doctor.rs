//! `sandbox doctor`: what this machine offers the two modes (chroot and
//! namespace), and the command that fixes what is missing.
//!
//! Each check reads a kernel interface or probes for real in a forked child
//! process. A probe's namespaces and mounts belong to the child and vanish when
//! it exits, so the doctor leaves nothing behind on the host. A check reports
//! "ok" only for what it actually tested, and says when something was not tested.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use termcolor::{Color, ColorSpec, WriteColor};

use crate::cgroup::{self, CgroupLayout, CgroupVersion, LimitPlacement, ProblemKind};

/// The id of every check, in report order.
pub const CHECK_IDS: [&str; 11] = [
    "kernel",
    "privileges",
    "user-namespaces",
    "unprivileged-user-namespaces",
    "mount-namespace",
    "idmapped-mounts",
    "overlayfs",
    "seccomp",
    "cgroups",
    "state-dir",
    "disk-cap",
];

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Tested and works.
    Ok,
    /// Works partly, or could not be fully tested.
    Warn,
    /// Tested and absent.
    Missing,
}

/// One check: what was found, what it means for each mode, how to fix it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub title: &'static str,
    pub status: Status,
    /// One line: the finding.
    pub summary: String,
    /// The evidence, one fact a line.
    pub found: Vec<String>,
    /// What it means for `--mode chroot`.
    pub chroot: String,
    /// What it means for `--mode namespace`.
    pub namespace: String,
    /// Concrete steps (commands) for what is missing; empty when nothing is.
    pub fix: Vec<String>,
}

impl Check {
    fn new(id: &'static str, title: &'static str, status: Status, summary: impl Into<String>) -> Check {
        Check {
            id,
            title,
            status,
            summary: summary.into(),
            found: Vec::new(),
            chroot: String::new(),
            namespace: String::new(),
            fix: Vec::new(),
        }
    }

    fn found(mut self, line: impl Into<String>) -> Check {
        self.found.push(line.into());
        self
    }

    fn modes(mut self, chroot: impl Into<String>, namespace: impl Into<String>) -> Check {
        self.chroot = chroot.into();
        self.namespace = namespace.into();
        self
    }

    fn fix(mut self, line: impl Into<String>) -> Check {
        self.fix.push(line.into());
        self
    }

    fn fixes(mut self, lines: Vec<String>) -> Check {
        self.fix.extend(lines);
        self
    }
}

/// Everything `sandbox doctor` found. Serializes as `{"checks": [...]}`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The worst status of all checks.
    pub fn worst(&self) -> Status {
        self.checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok)
    }
}

/// Runs every check on this machine, as the current user.
pub fn report() -> Report {
    let host = Host::read();
    Report {
        checks: vec![
            kernel(&host),
            privileges(&host),
            user_namespaces(&host),
            unprivileged_user_namespaces(&host),
            mount_namespace(&host),
            idmapped_mounts(&host),
            overlayfs(&host),
            seccomp(&host),
            cgroups(&host),
            state_dir(&host),
            disk_cap(&host),
        ],
    }
}

/// `[limits] disk`: an instance's image needs mkfs.ext4 to be made, and root,
/// a loop device (LOOP_CONFIGURE, 5.8+) and ext4 to be mounted.
fn disk_cap(host: &Host) -> Check {
    let mkfs = ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"].iter().find(|p| Path::new(p).is_file());
    let control = Path::new("/dev/loop-control").exists();
    let kernel = host.at_least((5, 8, 0));
    let modes = ("chroot mode has no instances: nothing to cap", "an instance's layer lives on a capped ext4 image ([limits] disk)");
    let found = |check: Check| {
        check
            .found(format!("mkfs.ext4: {}", mkfs.map(|p| p.to_string()).unwrap_or_else(|| "not found".into())))
            .found(format!("/dev/loop-control: {}", yes_no(Some(control))))
            .found(format!("LOOP_CONFIGURE (kernel 5.8+): {}", yes_no(kernel)))
    };
    let check = if !host.is_root() {
        found(Check::new("disk-cap", "Disk cap of instances", Status::Warn, "needs root: without it an instance's layer is not capped"))
            .fix("run `sandbox start` as root, or give --no-limits to start instances without a disk cap")
    } else if mkfs.is_some() && control && kernel != Some(false) {
        found(Check::new("disk-cap", "Disk cap of instances", Status::Ok, "instances get a capped disk image"))
    } else {
        let mut check =
            found(Check::new("disk-cap", "Disk cap of instances", Status::Missing, "an instance's disk image cannot be made or mounted"));
        if mkfs.is_none() {
            check = check.fix("sudo apt install e2fsprogs");
        }
        if !control {
            check = check.fix("sudo modprobe loop (a container needs /dev/loop-control from its host)");
        }
        if kernel == Some(false) {
            check = check.fix("use Linux 5.8 or later (Debian 12, Ubuntu 22.04)");
        }
        check
    };
    check.modes(modes.0, modes.1)
}

/// The probes: small plans run by the executor (see `isolate::probe`).
mod probe {
    pub use crate::isolate::probe::{Outcome, mount_setattr_errno};

    /// A user namespace with a one-id map, as this user or, from root, as `as_user`.
    pub fn user_namespace(as_user: Option<u32>, host: &super::Host) -> Outcome {
        let (uid, gid) = as_user.map(|id| (id, id)).unwrap_or((host.euid, host.egid));
        crate::isolate::probe::run(&crate::plan::probe_user_namespace(as_user, uid, gid))
    }

    /// What the namespace mode does to enter a rootfs, on a tmpfs in a fresh
    /// temporary directory (the child's mounts end with it; the directory is removed).
    pub fn mount_and_pivot_root(is_root: bool, uid: u32, gid: u32) -> Outcome {
        let dir = match tempfile::Builder::new().prefix("sandbox-doctor-").tempdir() {
            Ok(dir) => dir,
            Err(e) => return Outcome::NotRun(format!("no temporary directory: {e}")),
        };
        crate::isolate::probe::run(&crate::plan::probe_mount_namespace(dir.path(), is_root, uid, gid))
    }
}

// ---------------------------------------------------------------------------
// Facts about this process and kernel, read once

type KernelVersion = (u32, u32, u32);

struct Host {
    release: String,
    machine: String,
    version: Option<KernelVersion>,
    euid: u32,
    egid: u32,
    proc_status: String,
}

impl Host {
    fn read() -> Host {
        let (release, machine) = match nix::sys::utsname::uname() {
            Ok(uts) => (uts.release().to_string_lossy().into_owned(), uts.machine().to_string_lossy().into_owned()),
            Err(_) => (String::new(), String::new()),
        };
        Host {
            version: parse_kernel_version(&release),
            release,
            machine,
            euid: nix::unistd::geteuid().as_raw(),
            egid: nix::unistd::getegid().as_raw(),
            proc_status: std::fs::read_to_string("/proc/self/status").unwrap_or_default(),
        }
    }

    fn is_root(&self) -> bool {
        self.euid == 0
    }

    fn at_least(&self, wanted: KernelVersion) -> Option<bool> {
        self.version.map(|v| v >= wanted)
    }

    /// A field of `/proc/self/status` (`Seccomp`, `CapEff`).
    fn status_field(&self, name: &str) -> Option<&str> {
        status_field(&self.proc_status, name)
    }

    /// Whether the effective capability set holds `bit`; `None` if unknown.
    fn has_capability(&self, bit: u32) -> Option<bool> {
        let mask = u64::from_str_radix(self.status_field("CapEff")?, 16).ok()?;
        Some(mask & (1u64 << bit) != 0)
    }
}

/// `6.18.44-fc-v657` -> (6, 18, 44); `5.4` -> (5, 4, 0).
fn parse_kernel_version(release: &str) -> Option<KernelVersion> {
    let mut numbers = release.split('.').map(|part| {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    let major = numbers.next()??;
    let minor = numbers.next()??;
    let patch = numbers.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':').map(str::trim))
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn read_number(path: &str) -> Option<i64> {
    read_trimmed(path)?.parse().ok()
}

fn yes_no(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

const CAP_SYS_CHROOT: u32 = 18;
const CAP_SYS_ADMIN: u32 = 21;

/// The uid and gid the unprivileged probes switch to when run as root.
const NOBODY: u32 = 65534;

fn persist_sysctl(key: &str, value: &str) -> String {
    format!("keep it after a reboot: echo '{key} = {value}' | sudo tee /etc/sysctl.d/60-sandbox.conf")
}

// ---------------------------------------------------------------------------
// kernel

/// Features whose presence follows from the version alone.
const VERSION_GATES: [(&str, KernelVersion); 4] = [
    ("user namespaces", (3, 8, 0)),
    ("cgroup namespaces", (4, 6, 0)),
    ("overlayfs inside user namespaces", (5, 11, 0)),
    ("idmapped mounts", (5, 12, 0)),
];

fn kernel(host: &Host) -> Check {
    let modes = ("chroot(2) exists on every Linux kernel", "needs user, mount and pid namespaces (3.8+) and cgroup namespaces (4.6+)");
    let Some(version) = host.version else {
        let summary = format!("could not read the kernel version (uname release `{}`)", host.release);
        return Check::new("kernel", "Kernel", Status::Warn, summary).modes(modes.0, modes.1);
    };
    let status = if version >= (4, 6, 0) { Status::Ok } else { Status::Warn };
    let mut check = Check::new("kernel", "Kernel", status, format!("Linux {} on {}", host.release, host.machine));
    for (feature, since) in VERSION_GATES {
        let (major, minor, _) = since;
        check = check.found(format!("{feature} ({major}.{minor}+): {}", yes_no(Some(version >= since))));
    }
    check = check.found("judged by the version only; the checks below test each feature itself").modes(modes.0, modes.1);
    if status != Status::Ok {
        check = check.fix("use a kernel 4.6 or newer (any distribution kernel of the last years)");
    }
    check
}

// ---------------------------------------------------------------------------
// privileges

fn privileges(host: &Host) -> Check {
    let can_chroot = host.has_capability(CAP_SYS_CHROOT);
    let can_admin = host.has_capability(CAP_SYS_ADMIN);
    let (status, summary) = match (host.is_root(), can_chroot, can_admin) {
        (true, Some(true), Some(true)) => (Status::Ok, "running as root".to_owned()),
        (true, _, _) => (Status::Warn, "running as root, but without CAP_SYS_ADMIN or CAP_SYS_CHROOT".to_owned()),
        (false, _, _) => (Status::Warn, format!("running as uid {} (not root)", host.euid)),
    };
    let chroot = if can_chroot == Some(true) {
        "available: chroot(2) needs CAP_SYS_CHROOT, which this process has"
    } else {
        "unavailable as this user: chroot(2) needs root (CAP_SYS_CHROOT)"
    };
    let namespace = if host.is_root() {
        "runs as root; the student still gets a new user namespace"
    } else {
        "runs without root if unprivileged user namespaces work (checked below)"
    };
    let mut check = Check::new("privileges", "Privileges", status, summary)
        .found(format!("effective uid {}, gid {}", host.euid, host.egid))
        .found(user_namespace_of_this_process())
        .found(format!("effective capabilities: CAP_SYS_CHROOT {}, CAP_SYS_ADMIN {}", yes_no(can_chroot), yes_no(can_admin)))
        .modes(chroot, namespace);
    if !host.is_root() {
        check = check.fix("for chroot mode run it with sudo: sudo sandbox run --mode chroot");
    } else if status != Status::Ok {
        check = check.fix("give the process CAP_SYS_ADMIN and CAP_SYS_CHROOT (in Docker: --cap-add SYS_ADMIN --cap-add SYS_CHROOT)");
    }
    check
}

/// Whether this process is in the host's user namespace: root in a nested
/// one (a rootless container) is not root on the host.
fn user_namespace_of_this_process() -> String {
    match read_trimmed("/proc/self/uid_map") {
        Some(map) if is_initial_uid_map(&map) => "user namespace: the host's own (initial) one".into(),
        Some(map) => format!(
            "user namespace: a nested one (uid_map `{}`): root here is not root on the host",
            map.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
        None => "user namespace: unknown (/proc/self/uid_map unreadable)".into(),
    }
}

fn is_initial_uid_map(map: &str) -> bool {
    map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]
}

// ---------------------------------------------------------------------------
// user namespaces

const USER_NS_FILE: &str = "/proc/self/ns/user";
const MAX_USER_NS: &str = "/proc/sys/user/max_user_namespaces";
const UNPRIVILEGED_USERNS_CLONE: &str = "/proc/sys/kernel/unprivileged_userns_clone";
const APPARMOR_RESTRICT_USERNS: &str = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns";

fn user_namespaces(host: &Host) -> Check {
    let title = "User namespaces";
    let has_ns_file = Path::new(USER_NS_FILE).exists();
    let max = read_number(MAX_USER_NS);
    let found = [
        format!("{USER_NS_FILE}: {}", if has_ns_file { "present" } else { "absent" }),
        match max {
            Some(n) => format!("user.max_user_namespaces = {n}"),
            None => "user.max_user_namespaces: not present".into(),
        },
    ];
    let modes = ("not used", "required: the student starts in a new user namespace");
    let check = |status, summary: String| {
        found.iter().fold(Check::new("user-namespaces", title, status, summary), |c, f| c.found(f.clone())).modes(modes.0, modes.1)
    };
    if !has_ns_file {
        return check(Status::Missing, "the kernel has no user namespaces".into())
            .fix("use a kernel built with CONFIG_USER_NS=y (every major distribution's is)");
    }
    if max == Some(0) {
        return check(Status::Missing, "disabled: user.max_user_namespaces is 0".into())
            .fix("sudo sysctl -w user.max_user_namespaces=15000")
            .fix(persist_sysctl("user.max_user_namespaces", "15000"));
    }
    if !host.is_root() {
        // Root's side cannot be probed from here; the settings are what was checked.
        return check(Status::Ok, "supported by the kernel (by its settings; not probed as root)".into())
            .found(format!("not probed as root: running as uid {}; the next check probes as this user", host.euid));
    }
    let outcome = probe::user_namespace(None, host);
    let (status, summary) = match &outcome {
        probe::Outcome::Passed(_) => (Status::Ok, "available to root (probed)".to_owned()),
        probe::Outcome::Failed { setup: false, .. } => (Status::Missing, "root cannot create a user namespace".to_owned()),
        _ => (Status::Warn, "could not be probed".to_owned()),
    };
    let mut result = check(status, summary).found(format!("probe as root: {outcome}"));
    if status == Status::Missing {
        result = result.fix(blocked_by_filter_advice());
    }
    result
}

fn unprivileged_user_namespaces(host: &Host) -> Check {
    let clone = read_number(UNPRIVILEGED_USERNS_CLONE);
    let apparmor = read_number(APPARMOR_RESTRICT_USERNS);
    let max = read_number(MAX_USER_NS);
    let who = if host.is_root() { format!("uid {NOBODY} (nobody)") } else { format!("uid {} (you)", host.euid) };
    let outcome = if host.is_root() { probe::user_namespace(Some(NOBODY), host) } else { probe::user_namespace(None, host) };
    let (status, summary) = match &outcome {
        probe::Outcome::Passed(_) => (Status::Ok, format!("available to users (probed as {who})")),
        probe::Outcome::Failed { setup: false, .. } => (Status::Missing, "users cannot create user namespaces".to_owned()),
        _ => (Status::Warn, format!("could not be probed as {who}")),
    };
    let namespace = if host.is_root() {
        "not needed as root; decides whether users can run the namespace mode without sudo"
    } else {
        "required to run the namespace mode without root"
    };
    let mut check = Check::new("unprivileged-user-namespaces", "Unprivileged user namespaces", status, summary)
        .found(knob_line("kernel.unprivileged_userns_clone", clone, "(Debian/Ubuntu kernels)"))
        .found(knob_line("kernel.apparmor_restrict_unprivileged_userns", apparmor, "(AppArmor)"))
        .found(format!("probe as {who}: {outcome}"))
        .modes("not used", namespace);
    if status == Status::Missing {
        check = check.fixes(unprivileged_userns_fixes(clone, apparmor, max));
    }
    check
}

fn knob_line(key: &str, value: Option<i64>, origin: &str) -> String {
    match value {
        Some(v) => format!("{key} = {v}"),
        None => format!("{key}: not present on this kernel {origin}"),
    }
}

fn unprivileged_userns_fixes(clone: Option<i64>, apparmor: Option<i64>, max: Option<i64>) -> Vec<String> {
    let mut fixes = Vec::new();
    if clone == Some(0) {
        fixes.push("sudo sysctl -w kernel.unprivileged_userns_clone=1".into());
        fixes.push(persist_sysctl("kernel.unprivileged_userns_clone", "1"));
    }
    if apparmor == Some(1) {
        fixes.push(
            "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or give the sandbox binary an AppArmor profile with `userns,`)"
                .into(),
        );
        fixes.push(persist_sysctl("kernel.apparmor_restrict_unprivileged_userns", "0"));
    }
    if max == Some(0) {
        fixes.push("sudo sysctl -w user.max_user_namespaces=15000".into());
        fixes.push(persist_sysctl("user.max_user_namespaces", "15000"));
    }
    if fixes.is_empty() {
        fixes.push(blocked_by_filter_advice());
    }
    fixes
}

fn blocked_by_filter_advice() -> String {
    "no kernel setting explains it: a seccomp filter or security module refused the call (inside a container? \
     allow unshare/clone with CLONE_NEWUSER, e.g. Docker's --security-opt seccomp=unconfined)"
        .into()
}

// ---------------------------------------------------------------------------
// mount namespace and pivot_root

fn mount_namespace(host: &Host) -> Check {
    let as_whom = if host.is_root() { "as root" } else { "as this user, inside a new user namespace" };
    let outcome = probe::mount_and_pivot_root(host.is_root(), host.euid, host.egid);
    let (status, summary) = match &outcome {
        probe::Outcome::Passed(_) => (Status::Ok, format!("a private mount namespace and pivot_root work ({as_whom}, probed)")),
        probe::Outcome::Failed { .. } => (Status::Missing, format!("a mount namespace with pivot_root fails {as_whom}")),
        probe::Outcome::NotRun(_) => (Status::Warn, "could not be probed".to_owned()),
    };
    let mut check = Check::new("mount-namespace", "Mount namespace and pivot_root", status, summary)
        .found(format!("probe in a child process ({as_whom}): {outcome}"))
        .found("the child's mounts lived in its own mount namespace and ended with it")
        .modes(
            "not used (chroot mode calls chroot(2) on the host's mount table)",
            "required: the rootfs is mounted in a private mount namespace and entered with pivot_root",
        );
    if status == Status::Missing {
        check = check.fix(if host.is_root() {
            blocked_by_filter_advice()
        } else {
            "fix unprivileged user namespaces first (above), or run the namespace mode with sudo".into()
        });
    }
    check
}

// ---------------------------------------------------------------------------
// idmapped mounts

fn idmapped_mounts(host: &Host) -> Check {
    let by_version = host.at_least((5, 12, 0));
    let errno = probe::mount_setattr_errno();
    let (status, summary) = match errno {
        libc::ENOSYS => (Status::Missing, "mount_setattr(2) does not exist on this kernel".to_owned()),
        libc::EPERM => (Status::Warn, "mount_setattr(2) is blocked (EPERM: a seccomp filter?)".to_owned()),
        _ if by_version == Some(true) => (Status::Ok, "mount_setattr(2) is there (kernel 5.12+)".to_owned()),
        _ => (Status::Warn, "mount_setattr(2) answers, but the kernel predates 5.12".to_owned()),
    };
    let errno_name = format!("{:?}", nix::errno::Errno::from_raw(errno));
    let mut check = Check::new("idmapped-mounts", "Idmapped mounts", status, summary)
        .found(format!("kernel 5.12 or newer: {}", yes_no(by_version)))
        .found(format!("a deliberately invalid mount_setattr(2) call returned {errno_name} (ENOSYS would mean absent)"))
        .found("not tested: whether the filesystem holding the store supports idmapped mounts")
        .modes("not used", "optional: shows the rootfs with shifted owners without copying or chown; the sandbox works without it");
    if status == Status::Missing {
        check = check.fix("optional; needs a kernel 5.12 or newer");
    }
    check
}

// ---------------------------------------------------------------------------
// overlayfs

fn overlayfs(host: &Host) -> Check {
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let loaded = filesystems_list_overlay(&filesystems);
    let module = overlay_module(&host.release);
    let modes = (
        "per-student writable layers over the shared, read-only rootfs need it",
        "per-student writable layers over the shared, read-only rootfs need it",
    );
    let mut check = if loaded {
        Check::new("overlayfs", "overlayfs", Status::Ok, "available (listed in /proc/filesystems)")
    } else if let Some(module) = &module {
        Check::new("overlayfs", "overlayfs", Status::Warn, "not loaded, but the module is installed")
            .found(format!("module: {}", module.display()))
            .found("root loads it on the first mount; a mount without root cannot load modules")
            .fix("sudo modprobe overlay")
            .fix("load it at every boot: echo overlay | sudo tee /etc/modules-load.d/overlay.conf")
    } else {
        Check::new("overlayfs", "overlayfs", Status::Missing, "not in /proc/filesystems and no module found")
            .fix("use a kernel with CONFIG_OVERLAY_FS (every major distribution's has it)")
    };
    if loaded || module.is_some() {
        let rootless = host.at_least((5, 11, 0));
        check = check.found(format!("mountable inside a user namespace (kernel 5.11+): {}", yes_no(rootless)));
    }
    check.modes(modes.0, modes.1)
}

fn filesystems_list_overlay(filesystems: &str) -> bool {
    filesystems.lines().any(|line| line.split_whitespace().last() == Some("overlay"))
}

fn overlay_module(release: &str) -> Option<PathBuf> {
    if release.is_empty() {
        return None;
    }
    let dir = Path::new("/lib/modules").join(release).join("kernel/fs/overlayfs");
    ["overlay.ko", "overlay.ko.xz", "overlay.ko.zst", "overlay.ko.gz"].iter().map(|name| dir.join(name)).find(|p| p.exists())
}

// ---------------------------------------------------------------------------
// seccomp

fn seccomp(host: &Host) -> Check {
    // PR_GET_SECCOMP fails with EINVAL only on a kernel without CONFIG_SECCOMP.
    // (It would kill a process in strict mode, but one in strict mode could not
    // be running this code at all.)
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    let actions = read_trimmed("/proc/sys/kernel/seccomp/actions_avail");
    let (status, summary) = match (mode >= 0, &actions) {
        (true, Some(_)) => (Status::Ok, "seccomp filters are supported"),
        (true, None) => (Status::Warn, "seccomp is there, but filter mode could not be confirmed"),
        (false, _) => (Status::Missing, "the kernel has no seccomp"),
    };
    let mut check = Check::new("seccomp", "seccomp", status, summary)
        .found(format!("prctl(PR_GET_SECCOMP) = {mode}"))
        .found(this_process_filter(host))
        .modes(
            "not used",
            "lets the sandbox filter the student's system calls; namespaces, capabilities and no_new_privs do not depend on it",
        );
    if let Some(actions) = actions {
        check = check.found(format!("filter actions: {actions}"));
    }
    if status != Status::Ok {
        check = check.fix("use a kernel with CONFIG_SECCOMP=y and CONFIG_SECCOMP_FILTER=y");
    }
    check
}

fn this_process_filter(host: &Host) -> String {
    match (host.status_field("Seccomp"), host.status_field("Seccomp_filters")) {
        (Some("0"), _) => "this process runs unfiltered (Seccomp: 0)".into(),
        (Some("2"), filters) => format!(
            "this process already runs under {} seccomp filter(s) (a container or service?): \
             what they block is blocked inside the sandbox too",
            filters.unwrap_or("some")
        ),
        (Some(other), _) => format!("Seccomp: {other} in /proc/self/status"),
        (None, _) => "no Seccomp field in /proc/self/status".into(),
    }
}

// ---------------------------------------------------------------------------
// cgroups

/// The name the doctor shows for the sandbox's cgroup; the real one names the instance.
const EXAMPLE_CHILD: &str = "sandbox-<name>";

fn cgroups(host: &Host) -> Check {
    let layout = match cgroup::detect() {
        Ok(layout) => layout,
        Err(e) => {
            return Check::new("cgroups", "Cgroups", Status::Missing, "could not read the cgroup setup")
                .found(e.to_string())
                .modes("chroot mode applies no cgroup limits", "no limits can be applied");
        }
    };
    let how = cgroup::Placing { parent: cgroup::options::current().parent, self_pid: std::process::id() as i32, tracking_only: false };
    let situation = cgroup::systemd::Situation {
        root: Path::new("/"),
        layout: &layout,
        wants_limits: true,
        parent: how.parent.as_deref(),
        self_pid: how.self_pid,
        euid_is_root: host.is_root(),
    };
    if let cgroup::systemd::Decision::Ask(bus) = cgroup::systemd::decide(&situation)
        && let Some(check) = systemd_cgroup_check(host, &layout, bus)
    {
        return check;
    }
    cgroup_check(host, &layout, &how, &cgroup::EffectiveAccess)
}

/// Under systemd: the sandbox's cgroups go in a transient scope the tool asks
/// for with Delegate=yes, which gets every controller its manager has. Nothing
/// is asked here (a scope would move the doctor).
fn systemd_cgroup_check(host: &Host, layout: &CgroupLayout, bus: cgroup::systemd::Bus) -> Option<Check> {
    let (scope, controllers) = cgroup::systemd::expected_scope(layout, bus)?;
    let manager = match bus {
        cgroup::systemd::Bus::System => "systemd (PID 1)",
        cgroup::systemd::Bus::User => "your user's systemd",
    };
    let placements: Vec<LimitPlacement> = cgroup::Limit::ALL
        .iter()
        .map(|&limit| {
            let child = scope.join(EXAMPLE_CHILD);
            let problem = (!controllers.iter().any(|c| c == limit.controller())).then(|| {
                let message =
                    format!("{manager} does not have `{limit}` to delegate (not in its cgroup.controllers), so its scopes cannot get it");
                cgroup::Problem::new(ProblemKind::ControllerMissing, message)
            });
            LimitPlacement {
                limit,
                backend: Some(CgroupVersion::V2),
                parent: Some(scope.clone()),
                limit_file: Some(child.join(limit.limit_file(CgroupVersion::V2))),
                child: Some(child),
                needs_enabling: true,
                supervisor_leaf: Some(scope.join(cgroup::site::SUPERVISOR_LEAF)),
                problem,
            }
        })
        .collect();
    let usable: Vec<&str> = placements.iter().filter(|p| p.usable()).map(|p| p.limit.controller()).collect();
    let unusable: Vec<&str> = placements.iter().filter(|p| !p.usable()).map(|p| p.limit.controller()).collect();
    let (status, summary) = cgroup_verdict(layout, &usable, &unusable);
    let mut check = Check::new("cgroups", "Cgroups", status, summary).found(format!("layout: {}", layout.describe()));
    for line in layout_lines(layout) {
        check = check.found(line);
    }
    check = check.found(format!(
        "systemd is PID 1: the sandbox's cgroups go in the systemd scope {}: a run asks for it on {} (StartTransientUnit, Delegate=yes), \
         moves itself into its supervisor leaf and makes each sandbox's cgroup beside it; if systemd says no, it places them as without systemd",
        scope.display(),
        bus.describe()
    ));
    for placement in &placements {
        check = check.found(placement_line(placement));
    }
    let namespace = limits_sentence(&usable, &unusable, ", in a systemd scope of the run's own");
    Some(check.modes("chroot mode applies no cgroup limits", namespace).fixes(cgroup_fixes(host, layout, &placements)))
}

/// What namespace mode does with the limits: all applied (`where_` says
/// where), none, or which ones and that the others stop the start.
fn limits_sentence(usable: &[&str], unusable: &[&str], where_: &str) -> String {
    match (usable.is_empty(), unusable.is_empty()) {
        (_, true) => format!("memory, pids and cpu limits are applied{where_}"),
        (true, _) => "a profile with [limits] does not start (exit 125) unless run with --no-limits".to_owned(),
        _ => format!(
            "applied: {}; a profile that limits {} does not start (exit 125) unless run with --no-limits",
            usable.join(", "),
            unusable.join(" or ")
        ),
    }
}

/// The cgroup report for a layout: where the sandbox's cgroups will go, and
/// for each limit whether it will hold and why not.
fn cgroup_check(host: &Host, layout: &CgroupLayout, how: &cgroup::Placing, access: &dyn cgroup::AccessCheck) -> Check {
    let placements = cgroup::place_limits_in(layout, EXAMPLE_CHILD, access, how);
    let usable: Vec<&str> = placements.iter().filter(|p| p.usable()).map(|p| p.limit.controller()).collect();
    let unusable: Vec<&str> = placements.iter().filter(|p| !p.usable()).map(|p| p.limit.controller()).collect();
    let (status, summary) = cgroup_verdict(layout, &usable, &unusable);
    let mut check = Check::new("cgroups", "Cgroups", status, summary).found(format!("layout: {}", layout.describe()));
    for line in layout_lines(layout) {
        check = check.found(line);
    }
    if let Some(line) = v2_site_line(layout, how) {
        check = check.found(line);
    }
    for placement in &placements {
        check = check.found(placement_line(placement));
    }
    let namespace = limits_sentence(&usable, &unusable, "");
    check.modes("chroot mode applies no cgroup limits", namespace).fixes(cgroup_fixes(host, layout, &placements))
}

/// cgroup v2: the base cgroup the sandbox's cgroups go in, and why there.
fn v2_site_line(layout: &CgroupLayout, how: &cgroup::Placing) -> Option<String> {
    use cgroup::site::SiteKind;
    let CgroupLayout::V2 { unified } = layout else { return None };
    let line = match cgroup::site::v2_site(unified, how.parent.as_deref(), how.self_pid) {
        Ok(site) => {
            let base = site.base.display();
            let why = match site.kind {
                SiteKind::Root => "the tool runs in the root cgroup, which may hold processes and hand controllers down".to_owned(),
                SiteKind::Empty => "it holds no process, so it hands controllers to its children".to_owned(),
                SiteKind::MoveSelf => {
                    format!("the tool is alone in it: it moves itself into {}/supervisor first, then {base} hands controllers down", base)
                }
                SiteKind::InLeaf => "the tool already runs in its supervisor leaf".to_owned(),
            };
            format!("the sandbox's cgroups go under {base}: {why}")
        }
        Err(problem) => format!("the sandbox's cgroups have nowhere to go: {}", problem.message),
    };
    Some(line)
}

fn cgroup_verdict(layout: &CgroupLayout, usable: &[&str], unusable: &[&str]) -> (Status, String) {
    if usable.is_empty() {
        return (Status::Missing, format!("{}: no limit can be applied", layout.describe()));
    }
    let status = if unusable.is_empty() { Status::Ok } else { Status::Warn };
    let mut summary = format!("{}: {} can be limited", layout.describe(), usable.join(", "));
    if !unusable.is_empty() {
        summary.push_str(&format!("; {} cannot", unusable.join(", ")));
    }
    (status, summary)
}

/// Where the hierarchies that matter for limits are, and the tool's cgroup in each.
fn layout_lines(layout: &CgroupLayout) -> Vec<String> {
    let mut lines = Vec::new();
    for hierarchy in layout.v1_hierarchies() {
        if !hierarchy.controllers.iter().any(|c| ["memory", "pids", "cpu"].contains(&c.as_str())) {
            continue;
        }
        lines.push(format!(
            "v1 {} at {}, the tool's cgroup: {}",
            hierarchy.controllers.join(","),
            hierarchy.mount.display(),
            hierarchy.cgroup_path
        ));
    }
    if let Some(unified) = layout.unified() {
        lines.push(format!(
            "cgroup2 at {}, the tool's cgroup: {}; controllers it has: {}; enabled for its children: {}",
            unified.mount.display(),
            unified.cgroup_path,
            list_or_none(&unified.available_controllers),
            list_or_none(&unified.subtree_control)
        ));
    }
    lines
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() { "none".into() } else { items.join(" ") }
}

fn placement_line(placement: &LimitPlacement) -> String {
    let limit = placement.limit;
    match (&placement.problem, &placement.limit_file, placement.backend) {
        (None, Some(file), Some(backend)) => {
            let mut line = format!("{limit}: {backend}, the limit goes in {}", file.display());
            if placement.needs_enabling
                && let Some(parent) = &placement.parent
            {
                line.push_str(&format!(" (after enabling {limit} in {}/cgroup.subtree_control)", parent.display()));
            }
            line
        }
        (Some(problem), _, _) => format!("{limit}: cannot be applied: {}", problem.message),
        _ => format!("{limit}: unknown"),
    }
}

/// Advice for each kind of problem found, once each.
fn cgroup_fixes(host: &Host, layout: &CgroupLayout, placements: &[LimitPlacement]) -> Vec<String> {
    let mut fixes: Vec<String> = Vec::new();
    for placement in placements {
        let Some(problem) = &placement.problem else { continue };
        for fix in problem_fixes(host, layout, placement, problem.kind) {
            if !fixes.contains(&fix) {
                fixes.push(fix);
            }
        }
    }
    fixes
}

fn problem_fixes(host: &Host, layout: &CgroupLayout, placement: &LimitPlacement, kind: ProblemKind) -> Vec<String> {
    let controller = placement.limit.controller();
    let on_v2 = placement.backend == Some(CgroupVersion::V2);
    match kind {
        ProblemKind::NoCgroups => vec!["mount cgroup v2: sudo mount -t cgroup2 none /sys/fs/cgroup".into()],
        ProblemKind::ControllerMissing if on_v2 && !host.is_root() => vec![delegate_to_users()],
        ProblemKind::ControllerMissing if on_v2 => {
            let grandparent = placement.parent.as_deref().and_then(Path::parent);
            let target = grandparent.map_or("the parent cgroup".into(), |p| p.join("cgroup.subtree_control").display().to_string());
            vec![format!("let the tool's cgroup use it: echo +{controller} | sudo tee {target}")]
        }
        ProblemKind::ControllerMissing => vec![
            format!(
                "mount its v1 hierarchy: sudo mkdir -p /sys/fs/cgroup/{controller} && sudo mount -t cgroup -o {controller} cgroup /sys/fs/cgroup/{controller}"
            ),
            enable_v2(),
        ],
        ProblemKind::InternalProcesses if host.is_root() => {
            let mount = layout.unified().map_or("/sys/fs/cgroup".into(), |u| u.mount.display().to_string());
            vec![
                "start it in a delegated scope of its own: sudo systemd-run --scope -p Delegate=yes sandbox run ...".into(),
                format!(
                    "without systemd, prepare an empty cgroup and name it: sudo mkdir {mount}/lab.slice && sandbox run --cgroup-parent {mount}/lab.slice ..."
                ),
            ]
        }
        ProblemKind::InternalProcesses => vec![format!(
            "start it in a delegated scope of its own: systemd-run --user --scope -p Delegate=yes sandbox run ... (cgroup v2 passes {controller} down only from a cgroup without other processes)"
        )],
        ProblemKind::NotWritable if host.is_root() => {
            vec!["even root may not write there: a read-only or foreign cgroup mount (a container?)".into()]
        }
        ProblemKind::NotWritable if on_v2 => vec![
            delegate_to_users(),
            "then start it in a delegated scope: systemd-run --user --scope -p Delegate=yes sandbox run ...".into(),
        ],
        ProblemKind::NotWritable => {
            vec!["cgroup v1 has no safe delegation to users: run it with sudo, or switch to cgroup v2".into(), enable_v2()]
        }
        ProblemKind::ReadOnly => {
            let mount = match placement.backend {
                Some(CgroupVersion::V1) => layout.v1_hierarchy(controller).map(|h| h.mount.clone()),
                _ => layout.unified().map(|u| u.mount.clone()),
            };
            let mount = mount.map_or("the cgroup mount".into(), |m| m.display().to_string());
            vec![format!("remount it writable: sudo mount -o remount,rw {mount} (in a container: give it a writable cgroup mount)")]
        }
        ProblemKind::NotVisible => {
            vec!["the tool's cgroup lies outside the mounted tree (a cgroup namespace?): mount the hierarchy that contains it".into()]
        }
        ProblemKind::InvalidName => Vec::new(),
        ProblemKind::ParentMissing => vec!["create it first, or name an existing cgroup with --cgroup-parent".into()],
    }
}

fn delegate_to_users() -> String {
    "delegate controllers to users' systemd: sudo mkdir -p /etc/systemd/system/user@.service.d && \
     printf '[Service]\\nDelegate=memory pids cpu\\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf && \
     sudo systemctl daemon-reload, then log in again"
        .into()
}

fn enable_v2() -> String {
    "switch to cgroup v2: add systemd.unified_cgroup_hierarchy=1 to GRUB_CMDLINE_LINUX in /etc/default/grub, \
     run sudo update-grub (or grub2-mkconfig) and reboot"
        .into()
}

// ---------------------------------------------------------------------------
// state directory

fn state_dir(host: &Host) -> Check {
    let home = crate::state::home();
    let origin = state_dir_origin(host);
    let modes = (
        format!("runs a rootfs built into {}", home.join("store").display()),
        format!("runs a rootfs built into {}; instances live in {}", home.join("store").display(), home.join("instances").display()),
    );
    let (status, summary) = match state_dir_access(&home) {
        Ok(summary) => (Status::Ok, summary),
        Err(summary) => (Status::Missing, summary),
    };
    let mut check =
        Check::new("state-dir", "State directory", status, summary).found(format!("{} ({origin})", home.display())).modes(modes.0, modes.1);
    if let Err(crate::state::StateError::Unreachable { blocked, .. }) = crate::state::usable(&home) {
        check = check.fix(format!("let the sandbox's setup pass {}: sudo chmod o+x {}", blocked.display(), blocked.display()));
    }
    if status == Status::Missing {
        check = check.fix("point SANDBOX_HOME at a writable directory: export SANDBOX_HOME=$HOME/sandbox");
        if host.is_root() {
            check = check.fix(format!("or make it writable: sudo mkdir -p {}", home.display()));
        } else {
            check = check.fix(format!("or give it to yourself: sudo chown -R $USER {}", home.display()));
        }
    }
    check
}

fn state_dir_origin(host: &Host) -> &'static str {
    if std::env::var_os("SANDBOX_HOME").is_some_and(|v| !v.is_empty()) {
        "from SANDBOX_HOME"
    } else if host.is_root() {
        "the default for root"
    } else {
        "the default without root: $XDG_DATA_HOME/sandbox"
    }
}

/// Whether a sandbox can use the state directory: tried for real (a probe file
/// in it, or a probe directory where it would be created, removed at once),
/// so a read-only disk or a pseudo-filesystem (`/proc/x`) is found, and as root
/// every parent must be passable by the sandbox's setup (see `state::reachable`).
fn state_dir_access(home: &Path) -> Result<String, String> {
    if home.exists() && !home.is_dir() {
        return Err(format!("{} exists but is not a directory", home.display()));
    }
    crate::state::usable(home).map_err(|e| e.to_string().lines().next().unwrap_or_default().to_string())?;
    if home.is_dir() {
        Ok("exists and is writable".into())
    } else {
        let ancestor = home.ancestors().skip(1).find(|p| p.is_dir()).unwrap_or(Path::new("/"));
        Ok(format!("does not exist yet; it can be created in {}", ancestor.display()))
    }
}

// ---------------------------------------------------------------------------
// Rendering

/// Writes the report for people: one line a check with its mark, then the
/// evidence, the meaning for each mode and the fixes, indented.
pub fn render(report: &Report, out: &mut dyn WriteColor) -> io::Result<()> {
    for check in &report.checks {
        render_check(check, out)?;
    }
    render_summary(report, out)
}

fn mark(status: Status) -> (&'static str, Color) {
    match status {
        Status::Ok => ("✓", Color::Green),
        Status::Warn => ("!", Color::Yellow),
        Status::Missing => ("✗", Color::Red),
    }
}

fn render_check(check: &Check, out: &mut dyn WriteColor) -> io::Result<()> {
    let (symbol, color) = mark(check.status);
    out.set_color(ColorSpec::new().set_fg(Some(color)).set_bold(true))?;
    write!(out, "[{symbol}]")?;
    out.set_color(ColorSpec::new().set_bold(true))?;
    write!(out, " {}", check.title)?;
    out.reset()?;
    writeln!(out, ": {}", check.summary)?;
    for line in &check.found {
        writeln!(out, "    • {line}")?;
    }
    writeln!(out, "    chroot mode:    {}", check.chroot)?;
    writeln!(out, "    namespace mode: {}", check.namespace)?;
    for fix in &check.fix {
        out.set_color(ColorSpec::new().set_fg(Some(Color::Cyan)).set_bold(true))?;
        write!(out, "    fix:")?;
        out.reset()?;
        writeln!(out, " {fix}")?;
    }
    Ok(())
}

fn render_summary(report: &Report, out: &mut dyn WriteColor) -> io::Result<()> {
    let count = |status| report.checks.iter().filter(|c| c.status == status).count();
    let (warn, missing) = (count(Status::Warn), count(Status::Missing));
    writeln!(out)?;
    if warn + missing == 0 {
        out.set_color(ColorSpec::new().set_fg(Some(Color::Green)).set_bold(true))?;
        write!(out, "No issues found.")?;
    } else {
        out.set_color(ColorSpec::new().set_bold(true))?;
        write!(out, "{} check(s) need attention: {missing} missing, {warn} warning(s).", warn + missing)?;
    }
    out.reset()?;
    writeln!(out)
}

// ---------------------------------------------------------------------------
// Probes in a child process

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doctor_report_runs_and_has_every_check() {
        let report = report();
        let ids: Vec<&str> = report.checks.iter().map(|c| c.id).collect();
        assert_eq!(ids, CHECK_IDS);
        for check in &report.checks {
            assert!(!check.summary.is_empty(), "{}", check.id);
            assert!(!check.chroot.is_empty() && !check.namespace.is_empty(), "{}", check.id);
            if check.status == Status::Missing {
                assert!(!check.fix.is_empty(), "{} is missing but has no fix", check.id);
            }
        }
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["checks"].as_array().unwrap().len(), CHECK_IDS.len());
        assert!(["ok", "warn", "missing"].contains(&json["checks"][0]["status"].as_str().unwrap()));
    }

    #[test]
    fn doctor_render_without_color_names_every_check() {
        let report = report();
        let mut out = termcolor::NoColor::new(Vec::new());
        render(&report, &mut out).unwrap();
        let text = String::from_utf8(out.into_inner()).unwrap();
        for check in &report.checks {
            assert!(text.contains(check.title), "{} missing from:\n{text}", check.title);
        }
        assert!(!text.contains('\u{1b}'), "no escape codes without color");
    }

    #[test]
    fn doctor_render_marks_each_status() {
        let report = Report {
            checks: vec![
                Check::new("a", "Alpha", Status::Ok, "fine").modes("c", "n"),
                Check::new("b", "Beta", Status::Warn, "partly").modes("c", "n").fix("do this"),
                Check::new("c", "Gamma", Status::Missing, "absent").modes("c", "n").fix("do that"),
            ],
        };
        let mut out = termcolor::NoColor::new(Vec::new());
        render(&report, &mut out).unwrap();
        let text = String::from_utf8(out.into_inner()).unwrap();
        assert!(text.contains("[✓] Alpha: fine"));
        assert!(text.contains("[!] Beta: partly"));
        assert!(text.contains("[✗] Gamma: absent"));
        assert!(text.contains("    fix: do that"));
        assert!(text.contains("2 check(s) need attention: 1 missing, 1 warning(s)."));
        assert_eq!(report.worst(), Status::Missing);
    }

    #[test]
    fn doctor_parses_kernel_versions() {
        assert_eq!(parse_kernel_version("6.18.44-fc-v657"), Some((6, 18, 44)));
        assert_eq!(parse_kernel_version("5.4"), Some((5, 4, 0)));
        assert_eq!(parse_kernel_version("4.19.0-rc1"), Some((4, 19, 0)));
        assert_eq!(parse_kernel_version(""), None);
        assert_eq!(parse_kernel_version("x.y"), None);
    }

    #[test]
    fn doctor_reads_status_fields_and_capabilities() {
        let host = Host {
            release: "6.1.0".into(),
            machine: "x86_64".into(),
            version: Some((6, 1, 0)),
            euid: 0,
            egid: 0,
            proc_status: "Name:\tx\nCapEff:\t000001ffffffffff\nSeccomp:\t2\nSeccomp_filters:\t1\n".into(),
        };
        assert_eq!(host.has_capability(CAP_SYS_ADMIN), Some(true));
        assert_eq!(host.status_field("Seccomp"), Some("2"));
        assert!(this_process_filter(&host).contains("1 seccomp filter"));
        let unprivileged = Host { proc_status: "CapEff:\t0000000000000000\n".into(), ..host };
        assert_eq!(unprivileged.has_capability(CAP_SYS_CHROOT), Some(false));
    }

    #[test]
    fn doctor_recognises_the_initial_user_namespace() {
        assert!(is_initial_uid_map("         0          0 4294967295"));
        assert!(!is_initial_uid_map("         0       1000          1"));
    }

    #[test]
    fn doctor_finds_overlay_in_proc_filesystems() {
        assert!(filesystems_list_overlay("nodev\tsysfs\nnodev\toverlay\n\text4\n"));
        assert!(!filesystems_list_overlay("nodev\tsysfs\n\text4\n"));
    }

    #[test]
    fn doctor_advises_each_sysctl_that_blocks_user_namespaces() {
        let fixes = unprivileged_userns_fixes(Some(0), Some(1), Some(0)).join("\n");
        assert!(fixes.contains("sysctl -w kernel.unprivileged_userns_clone=1"));
        assert!(fixes.contains("sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"));
        assert!(fixes.contains("sysctl -w user.max_user_namespaces=15000"));
        assert!(unprivileged_userns_fixes(None, None, Some(100))[0].contains("seccomp"));
    }

    /// A v2 machine without systemd, as the test VM sets it up: the tool in a
    /// scope with other processes, or alone in one, or given a prepared cgroup.
    fn fake_v2(root: &std::path::Path, own: &str, procs: &str) -> CgroupLayout {
        let mount = root.join("sys/fs/cgroup");
        for (dir, procs, enabled) in [(mount.clone(), "1\n", "cpu memory pids"), (mount.join(own.trim_start_matches('/')), procs, "")] {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("cgroup.controllers"), "cpu memory pids").unwrap();
            std::fs::write(dir.join("cgroup.subtree_control"), enabled).unwrap();
            std::fs::write(dir.join("cgroup.procs"), procs).unwrap();
            if dir != mount {
                std::fs::write(dir.join("cgroup.type"), "domain").unwrap();
            }
        }
        let mountinfo = "35 25 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
        cgroup::layout_from(mountinfo, &format!("0::{own}\n"), root)
    }

    struct Writable;
    impl cgroup::AccessCheck for Writable {
        fn check_write(&self, _: &std::path::Path) -> Result<(), String> {
            Ok(())
        }
    }

    fn root_host() -> Host {
        Host { release: "6.1.0".into(), machine: "x86_64".into(), version: Some((6, 1, 0)), euid: 0, egid: 0, proc_status: String::new() }
    }

    #[test]
    fn doctor_under_systemd_says_the_scope_is_where_the_cgroups_go() {
        let tmp = tempfile::tempdir().unwrap();
        fake_v2(tmp.path(), "/system.slice", "");
        let layout = fake_v2(tmp.path(), "/user.slice/user-0.slice/session-2.scope", "130\n4242\n");
        let check = systemd_cgroup_check(&root_host(), &layout, cgroup::systemd::Bus::System).unwrap();
        assert_eq!(check.status, Status::Ok, "{:?}", check.found);
        let found = check.found.join("\n");
        let slice = tmp.path().join("sys/fs/cgroup/system.slice");
        assert!(found.contains(&format!("the sandbox's cgroups go in the systemd scope {}/sandbox-", slice.display())), "{found}");
        assert!(found.contains("on the system bus (StartTransientUnit, Delegate=yes)"), "{found}");
        assert!(found.contains("-<random>.scope/sandbox-<name>/memory.max"), "{found}");
        // A slice that does not enable cpu yet does not matter (Delegate=yes
        // enables it on the way down); a controller the root lacks does.
        std::fs::write(slice.join("cgroup.controllers"), "memory pids").unwrap();
        let check = systemd_cgroup_check(&root_host(), &layout, cgroup::systemd::Bus::System).unwrap();
        assert_eq!(check.status, Status::Ok, "{:?}", check.found);
        std::fs::write(tmp.path().join("sys/fs/cgroup/cgroup.controllers"), "memory pids").unwrap();
        let check = systemd_cgroup_check(&root_host(), &layout, cgroup::systemd::Bus::System).unwrap();
        assert_eq!(check.status, Status::Warn);
        assert!(check.found.join("\n").contains("cpu: cannot be applied: systemd (PID 1) does not have `cpu`"), "{:?}", check.found);
    }

    #[test]
    fn doctor_v2_beside_other_processes_says_nothing_holds_and_how_to_fix_it() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = fake_v2(tmp.path(), "/system.slice/teacher.scope", "130\n4242\n");
        let how = cgroup::Placing { parent: None, self_pid: 4242, tracking_only: false };
        let check = cgroup_check(&root_host(), &layout, &how, &Writable);
        assert_eq!(check.status, Status::Missing);
        let found = check.found.join("\n");
        assert!(found.contains("the sandbox's cgroups have nowhere to go"), "{found}");
        assert!(found.contains("teacher.scope holds other processes (pid 130)"), "{found}");
        for limit in ["memory", "pids", "cpu"] {
            assert!(found.contains(&format!("{limit}: cannot be applied")), "{found}");
        }
        assert!(check.namespace.contains("does not start (exit 125) unless run with --no-limits"));
        let fixes = check.fix.join("\n");
        assert!(fixes.contains("systemd-run --scope -p Delegate=yes") && fixes.contains("--cgroup-parent"), "{fixes}");
    }

    #[test]
    fn doctor_v2_alone_or_with_a_prepared_parent_says_where_the_cgroups_go() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = fake_v2(tmp.path(), "/ci.scope", "4242\n");
        let how = cgroup::Placing { parent: None, self_pid: 4242, tracking_only: false };
        let check = cgroup_check(&root_host(), &layout, &how, &Writable);
        assert_eq!(check.status, Status::Ok, "{:?}", check.found);
        let found = check.found.join("\n");
        let base = tmp.path().join("sys/fs/cgroup/ci.scope");
        assert!(
            found.contains(&format!(
                "go under {}: the tool is alone in it: it moves itself into {}/supervisor",
                base.display(),
                base.display()
            )),
            "{found}"
        );
        assert!(found.contains(&format!("memory: cgroup v2, the limit goes in {}/sandbox-<name>/memory.max", base.display())), "{found}");
        assert!(found.contains("after enabling memory"), "{found}");

        let lab = tmp.path().join("sys/fs/cgroup/lab.slice");
        std::fs::create_dir_all(&lab).unwrap();
        for (file, text) in
            [("cgroup.controllers", "memory pids"), ("cgroup.subtree_control", ""), ("cgroup.procs", ""), ("cgroup.type", "domain")]
        {
            std::fs::write(lab.join(file), text).unwrap();
        }
        let how = cgroup::Placing { parent: Some("lab.slice".into()), self_pid: 4242, tracking_only: false };
        let check = cgroup_check(&root_host(), &layout, &how, &Writable);
        assert_eq!(check.status, Status::Warn);
        let found = check.found.join("\n");
        assert!(found.contains(&format!("go under {}: it holds no process", lab.display())), "{found}");
        assert!(found.contains("cpu: cannot be applied: `cpu` is not delegated to"), "{found}");
    }

    #[test]
    fn doctor_state_dir_needs_a_writable_ancestor() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(state_dir_access(tmp.path()).is_ok());
        assert!(state_dir_access(&tmp.path().join("a/b")).unwrap().contains("does not exist yet"));
        let file = tmp.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(state_dir_access(&file).is_err());
        // One it cannot create: a pseudo-filesystem takes no directories.
        let proc = state_dir_access(Path::new("/proc/sandbox-doctor")).unwrap_err();
        assert!(proc.contains("/proc/sandbox-doctor cannot be created"), "{proc}");
    }
}
