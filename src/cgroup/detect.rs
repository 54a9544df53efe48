//! Finds how cgroups are set up on this machine. It only reads.
//!
//! Three texts tell the whole story:
//! - `/proc/self/mountinfo`: where each cgroup filesystem is mounted, which v1
//!   controllers each `cgroup` mount carries (`rw,cpu,cpuacct`, `name=systemd`),
//!   and which part of the hierarchy a mount shows (its root field);
//! - `/proc/self/cgroup`: the cgroup this process runs in, per hierarchy
//!   (`4:memory:/user.slice`, or `0::/user.slice/...` for cgroup v2);
//! - on v2, `cgroup.controllers`, `cgroup.subtree_control` and `cgroup.procs` of
//!   that cgroup: which controllers it may hand down to a child.
//!
//! Everything takes a `root` path that is prefixed to every file read and to the
//! paths it returns, so tests run against a fake tree in a temporary directory.
//! Nothing here writes, so detection can never disturb the real `/sys/fs/cgroup`.
//!
//! [`place_limits`] then says, for memory, pids and cpu, which backend applies and
//! where the sandbox's cgroup would go: always a child of the cgroup the tool runs
//! in (per hierarchy on v1), never elsewhere and never by moving processes. The
//! cgroup manager creates exactly the `child` paths it reports.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Which cgroup interface a mount or a backend speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    /// One hierarchy per controller (or per group of co-mounted controllers).
    V1,
    /// The single unified hierarchy.
    V2,
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupVersion::V1 => "cgroup v1",
            CgroupVersion::V2 => "cgroup v2",
        })
    }
}

// ---------------------------------------------------------------------------
// /proc/self/mountinfo

/// One mount of a cgroup filesystem, as `/proc/self/mountinfo` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CgroupMount {
    /// Where it is mounted, as seen by this process (not prefixed with `root`).
    pub mount_point: PathBuf,
    /// The directory of the hierarchy that appears at the mount point (`/` for a
    /// whole hierarchy; a sub-path in containers and bind mounts).
    pub root: String,
    pub version: CgroupVersion,
    /// The filesystem's options (`rw,cpu,cpuacct`, `rw,xattr,name=systemd`, ...).
    pub super_options: Vec<String>,
    /// Mounted read-only: nothing can be created under it.
    pub read_only: bool,
}

/// v1 mount options that are not controllers.
const V1_GENERIC_OPTIONS: &[&str] =
    &["rw", "ro", "noprefix", "xattr", "clone_children", "cpuset_v2_mode", "favordynmods", "none", "all", "seclabel"];

impl CgroupMount {
    /// The v1 controllers this mount carries, named hierarchies included
    /// (`name=systemd`), in mount order. Empty for cgroup2.
    pub fn controllers(&self) -> Vec<String> {
        if self.version == CgroupVersion::V2 {
            return Vec::new();
        }
        self.super_options.iter().filter(|o| !is_generic_v1_option(o)).cloned().collect()
    }

    fn carries_all(&self, controllers: &[String]) -> bool {
        // Options rather than `controllers()`: an option unknown to this code
        // must not hide the hierarchy.
        controllers.iter().all(|c| self.super_options.contains(c))
    }
}

fn is_generic_v1_option(option: &str) -> bool {
    V1_GENERIC_OPTIONS.contains(&option) || option.starts_with("release_agent=")
}

/// The cgroup mounts in a mountinfo text. Lines that are not cgroup mounts or
/// that do not parse are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

/// `36 35 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu`
fn parse_mountinfo_line(line: &str) -> Option<CgroupMount> {
    // Optional fields vary in number and end at a lone "-"; spaces inside
    // paths are escaped as \040, so the separator is unambiguous.
    let (head, tail) = line.split_once(" - ")?;
    let head: Vec<&str> = head.split(' ').collect();
    if head.len() < 6 {
        return None;
    }
    let mut tail = tail.split(' ');
    let version = match tail.next()? {
        "cgroup" => CgroupVersion::V1,
        "cgroup2" => CgroupVersion::V2,
        _ => return None,
    };
    let _source = tail.next()?;
    let super_options = tail.next().unwrap_or("").split(',').filter(|o| !o.is_empty());
    let root = String::from_utf8_lossy(&unescape_octal(head[3])).into_owned();
    let mount_point = PathBuf::from(OsString::from_vec(unescape_octal(head[4])));
    if !root.starts_with('/') || !mount_point.is_absolute() {
        return None;
    }
    Some(CgroupMount {
        mount_point,
        root,
        version,
        super_options: super_options.map(str::to_owned).collect(),
        read_only: head[5].split(',').any(|o| o == "ro"),
    })
}

/// Undoes the kernel's `\ooo` escaping of spaces, tabs, newlines and backslashes.
fn unescape_octal(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if let Some(byte) = octal_escape_at(bytes, i) {
            out.push(byte);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn octal_escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    let digits = bytes.get(i + 1..i + 4)?;
    if bytes[i] != b'\\' || !digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
        return None;
    }
    let value = digits.iter().fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
    u8::try_from(value).ok()
}

// ---------------------------------------------------------------------------
// /proc/self/cgroup

/// One line of `/proc/self/cgroup`: the cgroup this process is in, in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    /// 0 for the unified (v2) hierarchy.
    pub hierarchy_id: u32,
    /// v1 controllers of the hierarchy (`cpu`, `cpuacct`, `name=systemd`); empty for v2.
    pub controllers: Vec<String>,
    /// The cgroup, relative to the hierarchy (or cgroup namespace) root.
    pub path: String,
}

impl Membership {
    fn is_unified(&self) -> bool {
        self.hierarchy_id == 0 && self.controllers.is_empty()
    }
}

/// The memberships in a `/proc/self/cgroup` text; malformed lines are skipped.
pub fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines().filter_map(parse_proc_cgroup_line).collect()
}

/// `4:memory:/user.slice`, `2:cpu,cpuacct:/`, `0::/user.slice/session-2.scope`
fn parse_proc_cgroup_line(line: &str) -> Option<Membership> {
    // The path may itself contain ':', so split at the first two only.
    let mut parts = line.splitn(3, ':');
    let hierarchy_id = parts.next()?.trim().parse().ok()?;
    let controllers = parts.next()?.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect();
    let path = parts.next()?;
    if !path.starts_with('/') {
        return None;
    }
    Some(Membership { hierarchy_id, controllers, path: path.to_owned() })
}

// ---------------------------------------------------------------------------
// The layout

/// A v1 hierarchy the tool runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct V1Hierarchy {
    /// All controllers of this hierarchy (co-mounted ones together: `cpu`, `cpuacct`).
    pub controllers: Vec<String>,
    /// The mount point, under `root`.
    pub mount: PathBuf,
    /// The tool's cgroup as `/proc/self/cgroup` names it.
    pub cgroup_path: String,
    /// The directory of the tool's cgroup, under `root`; `None` when the mount
    /// does not show it (a cgroup namespace or a bind mount of another sub-tree).
    pub own_path: Option<PathBuf>,
    pub read_only: bool,
}

/// The cgroup v2 hierarchy the tool runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnifiedHierarchy {
    /// The mount point, under `root`.
    pub mount: PathBuf,
    /// The tool's cgroup as `/proc/self/cgroup` names it.
    pub cgroup_path: String,
    /// The directory of the tool's cgroup, under `root` (`None`: not visible).
    pub own_path: Option<PathBuf>,
    pub read_only: bool,
    /// `cgroup.controllers` of the tool's cgroup: what its parent lets it use,
    /// so what it may enable for a child.
    pub available_controllers: Vec<String>,
    /// `cgroup.subtree_control` of the tool's cgroup: what a child gets now.
    pub subtree_control: Vec<String>,
    /// `cgroup.procs` of the tool's cgroup is not empty. cgroup v2 refuses to
    /// enable a controller for the children of a cgroup that holds processes
    /// (the "no internal processes" rule), so this decides whether a missing
    /// controller can still be enabled.
    pub own_has_processes: bool,
    /// The pids in the tool's cgroup (`cgroup.procs`); empty when unreadable.
    /// When this process is the only one, it can move itself into a leaf and
    /// free its cgroup to hand controllers down (see [`crate::cgroup::site`]).
    pub own_processes: Vec<i32>,
    /// The tool runs in the hierarchy's root cgroup (the only cgroup without
    /// `cgroup.type`), where the "no internal processes" rule does not apply.
    pub own_is_root: bool,
}

/// How cgroups are set up, seen from the tool's process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "version", rename_all = "lowercase")]
pub enum CgroupLayout {
    /// Pure cgroup v2 (most current distributions).
    V2 { unified: UnifiedHierarchy },
    /// Only v1 hierarchies. `hierarchies` maps each controller (and each named
    /// hierarchy, `name=systemd`) to its hierarchy; co-mounted controllers map
    /// to the same one.
    V1 { hierarchies: BTreeMap<String, V1Hierarchy> },
    /// v1 hierarchies plus a cgroup2 mount (systemd's "hybrid" mode). A
    /// controller bound to a v1 hierarchy cannot be used on v2 at the same time.
    Hybrid { hierarchies: BTreeMap<String, V1Hierarchy>, unified: UnifiedHierarchy },
    /// No cgroup hierarchy the tool runs in is mounted.
    None,
}

impl CgroupLayout {
    /// The v1 hierarchy carrying `controller`, if any.
    pub fn v1_hierarchy(&self, controller: &str) -> Option<&V1Hierarchy> {
        match self {
            CgroupLayout::V1 { hierarchies } | CgroupLayout::Hybrid { hierarchies, .. } => hierarchies.get(controller),
            _ => None,
        }
    }

    /// The v2 hierarchy, if mounted.
    pub fn unified(&self) -> Option<&UnifiedHierarchy> {
        match self {
            CgroupLayout::V2 { unified } | CgroupLayout::Hybrid { unified, .. } => Some(unified),
            _ => None,
        }
    }

    /// The distinct v1 hierarchies, each once (co-mounted controllers share one).
    pub fn v1_hierarchies(&self) -> Vec<&V1Hierarchy> {
        let mut distinct: Vec<&V1Hierarchy> = Vec::new();
        if let CgroupLayout::V1 { hierarchies } | CgroupLayout::Hybrid { hierarchies, .. } = self {
            for hierarchy in hierarchies.values() {
                if !distinct.contains(&hierarchy) {
                    distinct.push(hierarchy);
                }
            }
        }
        distinct
    }

    /// A short name for people: "cgroup v2", "cgroup v1", ...
    pub fn describe(&self) -> &'static str {
        match self {
            CgroupLayout::V2 { .. } => "cgroup v2 (unified)",
            CgroupLayout::V1 { .. } => "cgroup v1",
            CgroupLayout::Hybrid { .. } => "cgroup v1 with a cgroup2 mount (hybrid)",
            CgroupLayout::None => "no cgroups",
        }
    }
}

/// Reading the two `/proc` files failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct DetectError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// The layout of the real system.
pub fn detect() -> Result<CgroupLayout, DetectError> {
    detect_in(Path::new("/"))
}

/// The layout of the tree under `root` (`root/proc/self/mountinfo`, ...).
pub fn detect_in(root: &Path) -> Result<CgroupLayout, DetectError> {
    let mountinfo = read_proc_file(root, "proc/self/mountinfo")?;
    // A kernel built without cgroups has no /proc/self/cgroup: no cgroups,
    // rather than an error.
    let proc_cgroup = match read_proc_file(root, "proc/self/cgroup") {
        Err(e) if e.source.kind() == io::ErrorKind::NotFound => String::new(),
        other => other?,
    };
    Ok(layout_from(&mountinfo, &proc_cgroup, root))
}

fn read_proc_file(root: &Path, relative: &str) -> Result<String, DetectError> {
    let path = root.join(relative);
    std::fs::read(&path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).map_err(|source| DetectError { path, source })
}

/// The layout from the two texts; the v2 control files are read under `root`.
pub fn layout_from(mountinfo: &str, proc_cgroup: &str, root: &Path) -> CgroupLayout {
    let mounts = parse_mountinfo(mountinfo);
    let memberships = parse_proc_cgroup(proc_cgroup);
    let hierarchies = v1_hierarchies(&mounts, &memberships, root);
    let unified = unified_hierarchy(&mounts, &memberships, root);
    match (hierarchies.is_empty(), unified) {
        (true, None) => CgroupLayout::None,
        (true, Some(unified)) => CgroupLayout::V2 { unified },
        (false, None) => CgroupLayout::V1 { hierarchies },
        (false, Some(unified)) => CgroupLayout::Hybrid { hierarchies, unified },
    }
}

fn v1_hierarchies(mounts: &[CgroupMount], memberships: &[Membership], root: &Path) -> BTreeMap<String, V1Hierarchy> {
    let mut hierarchies = BTreeMap::new();
    for membership in memberships.iter().filter(|m| !m.is_unified() && !m.controllers.is_empty()) {
        let candidates = mounts.iter().filter(|m| m.version == CgroupVersion::V1 && m.carries_all(&membership.controllers));
        // A hierarchy not mounted here (common in containers) is simply absent.
        let Some(mount) = best_mount(candidates, &membership.path) else { continue };
        let hierarchy = V1Hierarchy {
            controllers: membership.controllers.clone(),
            mount: under_root(root, &mount.mount_point),
            cgroup_path: membership.path.clone(),
            own_path: own_dir(mount, &membership.path, root),
            read_only: mount.read_only,
        };
        for controller in &membership.controllers {
            hierarchies.insert(controller.clone(), hierarchy.clone());
        }
    }
    hierarchies
}

fn unified_hierarchy(mounts: &[CgroupMount], memberships: &[Membership], root: &Path) -> Option<UnifiedHierarchy> {
    let membership = memberships.iter().find(|m| m.is_unified())?;
    let candidates = mounts.iter().filter(|m| m.version == CgroupVersion::V2);
    let mount = best_mount(candidates, &membership.path)?;
    let own_path = own_dir(mount, &membership.path, root);
    let read_list = |file: &str| own_path.as_ref().map(|dir| read_word_list(&dir.join(file))).unwrap_or_default();
    Some(UnifiedHierarchy {
        mount: under_root(root, &mount.mount_point),
        cgroup_path: membership.path.clone(),
        available_controllers: read_list("cgroup.controllers"),
        subtree_control: read_list("cgroup.subtree_control"),
        own_has_processes: own_path.as_ref().is_none_or(|dir| holds_processes(dir)),
        own_processes: own_path.as_ref().map(|dir| read_pid_list(&dir.join("cgroup.procs"))).unwrap_or_default(),
        own_is_root: membership.path == "/" && mount.root == "/" && own_path.as_ref().is_some_and(|dir| is_root_cgroup(dir)),
        own_path,
        read_only: mount.read_only,
    })
}

/// Of several mounts of one hierarchy, one that shows the tool's cgroup,
/// writable ones first.
fn best_mount<'a>(candidates: impl Iterator<Item = &'a CgroupMount>, cgroup_path: &str) -> Option<&'a CgroupMount> {
    candidates.max_by_key(|m| (relative_to_mount(&m.root, cgroup_path).is_some(), !m.read_only))
}

/// The directory of `cgroup_path` under `mount`, if the mount shows it.
fn own_dir(mount: &CgroupMount, cgroup_path: &str, root: &Path) -> Option<PathBuf> {
    let relative = relative_to_mount(&mount.root, cgroup_path)?;
    let base = under_root(root, &mount.mount_point);
    Some(if relative.is_empty() { base } else { base.join(relative) })
}

/// `cgroup_path` relative to a mount whose root is `mount_root`; `None` if it lies
/// outside (or climbs out with `..`, as paths outside a cgroup namespace do).
fn relative_to_mount<'a>(mount_root: &str, cgroup_path: &'a str) -> Option<&'a str> {
    let rest = if mount_root == "/" {
        Some(cgroup_path.trim_start_matches('/'))
    } else {
        match cgroup_path.strip_prefix(mount_root.trim_end_matches('/'))? {
            "" => Some(""),
            rest => rest.strip_prefix('/'),
        }
    }?;
    let rest = rest.trim_end_matches('/');
    if rest.split('/').any(|part| part == ".." || part == ".") {
        return None;
    }
    Some(rest)
}

/// `absolute` (a path as this process sees it) inside the tree at `root`.
fn under_root(root: &Path, absolute: &Path) -> PathBuf {
    root.join(absolute.strip_prefix("/").unwrap_or(absolute))
}

/// A whitespace separated list (`cgroup.controllers`); empty if unreadable.
fn read_word_list(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).map(|text| text.split_whitespace().map(str::to_owned).collect()).unwrap_or_default()
}

/// The pids of a `cgroup.procs` file; empty if unreadable.
pub(crate) fn read_pid_list(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path).map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect()).unwrap_or_default()
}

/// The root of a cgroup2 hierarchy is the one cgroup without `cgroup.type`
/// (a cgroup namespace's root has it: it is not the real root).
pub(crate) fn is_root_cgroup(dir: &Path) -> bool {
    dir.join("cgroup.procs").is_file() && !dir.join("cgroup.type").exists()
}

/// Whether a cgroup holds processes. Unreadable counts as yes, the answer that
/// promises less.
fn holds_processes(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.procs")).map(|text| !text.trim().is_empty()).unwrap_or(true)
}

// ---------------------------------------------------------------------------
// Where each limit would go

/// A limit the sandbox applies through cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Limit {
    Memory,
    Pids,
    Cpu,
}

impl Limit {
    pub const ALL: [Limit; 3] = [Limit::Memory, Limit::Pids, Limit::Cpu];

    /// The controller that enforces it (the same name in v1 and v2).
    pub fn controller(self) -> &'static str {
        match self {
            Limit::Memory => "memory",
            Limit::Pids => "pids",
            Limit::Cpu => "cpu",
        }
    }

    /// The file in the sandbox's cgroup that holds the limit. On v1 the cpu
    /// quota also needs `cpu.cfs_period_us`; v2's `cpu.max` holds both.
    pub fn limit_file(self, version: CgroupVersion) -> &'static str {
        match (self, version) {
            (Limit::Memory, CgroupVersion::V2) => "memory.max",
            (Limit::Memory, CgroupVersion::V1) => "memory.limit_in_bytes",
            (Limit::Pids, _) => "pids.max",
            (Limit::Cpu, CgroupVersion::V2) => "cpu.max",
            (Limit::Cpu, CgroupVersion::V1) => "cpu.cfs_quota_us",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.controller())
    }
}

/// Why a limit cannot be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// No cgroup hierarchy is mounted for this process at all.
    NoCgroups,
    /// No v1 hierarchy carries the controller and the tool's v2 cgroup does not
    /// have it (not delegated, or not built into the kernel).
    ControllerMissing,
    /// The tool's cgroup is not visible under the mount.
    NotVisible,
    /// The hierarchy is mounted read-only.
    ReadOnly,
    /// v2: the controller is available but can only be enabled for children of
    /// a cgroup without processes, and the tool's cgroup has some.
    InternalProcesses,
    /// The current user may not create the child cgroup or move a process into
    /// it (no delegation).
    NotWritable,
    /// The child cgroup name is not a single path component.
    InvalidName,
    /// `--cgroup-parent` names no cgroup.
    ParentMissing,
}

/// A limit that cannot be applied, and the plain reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub message: String,
}

impl Problem {
    pub(crate) fn new(kind: ProblemKind, message: impl Into<String>) -> Problem {
        Problem { kind, message: message.into() }
    }
}

/// Where one limit would be applied, or why it cannot be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitPlacement {
    pub limit: Limit,
    /// The backend that enforces it; `None` when no hierarchy has the controller.
    pub backend: Option<CgroupVersion>,
    /// The tool's own cgroup in that hierarchy: the parent of the sandbox's.
    pub parent: Option<PathBuf>,
    /// The sandbox's cgroup to create (`parent/<name>`).
    pub child: Option<PathBuf>,
    /// The file in `child` that holds the limit.
    pub limit_file: Option<PathBuf>,
    /// v2: the manager must first write `+<controller>` to the parent's
    /// `cgroup.subtree_control`.
    pub needs_enabling: bool,
    /// v2: the leaf (`parent/supervisor`) this process moves itself into
    /// before the parent can hand controllers down ([`crate::cgroup::site`]).
    pub supervisor_leaf: Option<PathBuf>,
    /// Why the limit cannot be applied; `None` when it can.
    pub problem: Option<Problem>,
}

impl LimitPlacement {
    pub fn usable(&self) -> bool {
        self.problem.is_none()
    }

    fn at(limit: Limit, version: CgroupVersion, parent: &Path, child_name: &str) -> LimitPlacement {
        let child = parent.join(child_name);
        LimitPlacement {
            limit,
            backend: Some(version),
            parent: Some(parent.to_path_buf()),
            limit_file: Some(child.join(limit.limit_file(version))),
            child: Some(child),
            needs_enabling: false,
            supervisor_leaf: None,
            problem: None,
        }
    }

    fn nowhere(limit: Limit, backend: Option<CgroupVersion>, problem: Problem) -> LimitPlacement {
        LimitPlacement {
            limit,
            backend,
            parent: None,
            child: None,
            limit_file: None,
            needs_enabling: false,
            supervisor_leaf: None,
            problem: Some(problem),
        }
    }

    fn with_problem(mut self, problem: Option<Problem>) -> LimitPlacement {
        self.problem = self.problem.or(problem);
        self
    }
}

/// Answers whether the current user may write a path, without writing.
pub trait AccessCheck {
    /// `Ok` if `path` (a file, or a directory to create entries in) is
    /// writable; otherwise a sentence saying why not.
    fn check_write(&self, path: &Path) -> Result<(), String>;
}

/// The kernel's answer for this process's effective uid and gids (`faccessat`
/// with `AT_EACCESS`), which also reports read-only filesystems.
pub struct EffectiveAccess;

impl AccessCheck for EffectiveAccess {
    fn check_write(&self, path: &Path) -> Result<(), String> {
        use nix::fcntl::{AT_FDCWD, AtFlags};
        use nix::unistd::{AccessFlags, faccessat};
        // Creating an entry in a directory also needs search permission.
        let mode = if path.is_dir() { AccessFlags::W_OK | AccessFlags::X_OK } else { AccessFlags::W_OK };
        faccessat(AT_FDCWD, path, mode, AtFlags::AT_EACCESS)
            .map_err(|errno| format!("{} is not writable ({}){}", path.display(), errno.desc(), owner_note(path)))
    }
}

fn owner_note(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(meta) => format!(": owned by uid {}, this process runs as uid {}", meta.uid(), nix::unistd::geteuid()),
        Err(_) => String::new(),
    }
}

/// Where memory, pids and cpu limits would go for a sandbox cgroup called
/// `child_name`, checking write access as this process.
pub fn place_limits(layout: &CgroupLayout, child_name: &str) -> Vec<LimitPlacement> {
    place_limits_with(layout, child_name, &EffectiveAccess)
}

/// [`place_limits`] with another access check (tests, or a dry run as another
/// user), for this process and the command line's `--cgroup-parent`.
pub fn place_limits_with(layout: &CgroupLayout, child_name: &str, access: &dyn AccessCheck) -> Vec<LimitPlacement> {
    let how = Placing { parent: super::options::current().parent, self_pid: std::process::id() as i32, tracking_only: false };
    place_limits_in(layout, child_name, access, &how)
}

/// What placing depends on besides the layout.
#[derive(Debug, Clone, Default)]
pub struct Placing {
    /// `--cgroup-parent`: the base cgroup an admin prepared.
    pub parent: Option<PathBuf>,
    /// The process that will be the supervisor (it may move itself into a leaf).
    pub self_pid: i32,
    /// No limit, only a cgroup to hold the processes: no controller needed.
    pub tracking_only: bool,
}

/// [`place_limits_with`] with everything spelled out.
pub fn place_limits_in(layout: &CgroupLayout, child_name: &str, access: &dyn AccessCheck, how: &Placing) -> Vec<LimitPlacement> {
    Limit::ALL.iter().map(|&limit| place_limit(layout, limit, child_name, access, how)).collect()
}

fn place_limit(layout: &CgroupLayout, limit: Limit, child_name: &str, access: &dyn AccessCheck, how: &Placing) -> LimitPlacement {
    if !is_valid_child_name(child_name) {
        let message = format!("`{child_name}` is not a valid cgroup name (one path component expected)");
        return LimitPlacement::nowhere(limit, None, Problem::new(ProblemKind::InvalidName, message));
    }
    // A controller bound to a v1 hierarchy is unavailable on v2, so v1 wins.
    if let Some(hierarchy) = layout.v1_hierarchy(limit.controller()) {
        return place_v1(limit, hierarchy, child_name, access, how.parent.as_deref());
    }
    if let Some(unified) = layout.unified() {
        return place_v2(limit, unified, child_name, access, how);
    }
    let problem = match layout {
        CgroupLayout::None => Problem::new(ProblemKind::NoCgroups, "no cgroup hierarchy is mounted for this process"),
        _ => Problem::new(
            ProblemKind::ControllerMissing,
            format!("no mounted cgroup v1 hierarchy carries the `{limit}` controller and there is no cgroup2 mount"),
        ),
    };
    LimitPlacement::nowhere(limit, None, problem)
}

fn is_valid_child_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

fn place_v1(limit: Limit, hierarchy: &V1Hierarchy, child_name: &str, access: &dyn AccessCheck, prepared: Option<&Path>) -> LimitPlacement {
    // `--cgroup-parent`: the same path in each hierarchy, as runc's cgroupsPath.
    let prepared = prepared.map(|p| hierarchy.mount.join(p.strip_prefix(&hierarchy.mount).unwrap_or(p).strip_prefix("/").unwrap_or(p)));
    if let Some(dir) = &prepared
        && !dir.is_dir()
    {
        let message = format!("--cgroup-parent: {} does not exist", dir.display());
        return LimitPlacement::nowhere(limit, Some(CgroupVersion::V1), Problem::new(ProblemKind::ParentMissing, message));
    }
    let Some(parent) = prepared.as_ref().or(hierarchy.own_path.as_ref()) else {
        return LimitPlacement::nowhere(limit, Some(CgroupVersion::V1), not_visible(&hierarchy.cgroup_path, &hierarchy.mount));
    };
    let placement = LimitPlacement::at(limit, CgroupVersion::V1, parent, child_name);
    if hierarchy.read_only {
        return placement.with_problem(Some(read_only(&hierarchy.mount)));
    }
    // v1 needs only mkdir in the parent: the new cgroup's files belong to its
    // creator, and v1 moves a process into it by the destination's permissions.
    let denied = access.check_write(parent).err();
    placement.with_problem(denied.map(not_writable))
}

fn place_v2(limit: Limit, unified: &UnifiedHierarchy, child_name: &str, access: &dyn AccessCheck, how: &Placing) -> LimitPlacement {
    let controller = limit.controller();
    let site = match super::site::v2_site(unified, how.parent.as_deref(), how.self_pid) {
        Ok(site) => site,
        Err(problem) => {
            // Still say where the cgroup would have gone.
            let mut placement = match &unified.own_path {
                Some(own) if problem.kind != ProblemKind::NotVisible && problem.kind != ProblemKind::ParentMissing => {
                    LimitPlacement::at(limit, CgroupVersion::V2, own, child_name)
                }
                _ => LimitPlacement::nowhere(limit, Some(CgroupVersion::V2), problem.clone()),
            };
            placement.problem = Some(problem);
            return placement;
        }
    };
    let mut placement = LimitPlacement::at(limit, CgroupVersion::V2, &site.base, child_name);
    placement.supervisor_leaf = site.supervisor_leaf.clone();
    if unified.read_only {
        return placement.with_problem(Some(read_only(&unified.mount)));
    }
    // Holding processes only (no limit) needs no controller.
    if !how.tracking_only {
        if !site.available.iter().any(|c| c == controller) {
            let message = format!("`{controller}` is not delegated to {} (not in its cgroup.controllers)", site.base.display());
            return placement.with_problem(Some(Problem::new(ProblemKind::ControllerMissing, message)));
        }
        placement.needs_enabling = !site.enabled.iter().any(|c| c == controller);
    }
    let denied = v2_files_to_write(&site, placement.needs_enabling).into_iter().find_map(|p| access.check_write(&p).err());
    placement.with_problem(denied.map(not_writable))
}

/// What v2 needs to write: the base directory (mkdir), the `cgroup.procs` of
/// the common ancestor of the tool's cgroup and the base (a process moves
/// only with write access there, and the sandbox's process starts in the
/// tool's cgroup), and, when a controller must be enabled first, the base's
/// `cgroup.subtree_control`.
fn v2_files_to_write(site: &super::site::V2Site, needs_enabling: bool) -> Vec<PathBuf> {
    let ancestor = super::site::common_ancestor(&site.own, &site.base);
    let mut paths = vec![site.base.clone(), ancestor.join("cgroup.procs")];
    if needs_enabling {
        paths.push(site.base.join("cgroup.subtree_control"));
    }
    paths
}

fn not_visible(cgroup_path: &str, mount: &Path) -> Problem {
    let message =
        format!("the tool's cgroup {cgroup_path} is not visible under {} (a cgroup namespace or a partial mount)", mount.display());
    Problem::new(ProblemKind::NotVisible, message)
}

fn read_only(mount: &Path) -> Problem {
    Problem::new(ProblemKind::ReadOnly, format!("{} is mounted read-only", mount.display()))
}

fn not_writable(reason: String) -> Problem {
    Problem::new(ProblemKind::NotWritable, reason)
}

#[cfg(test)]
mod tests;
