//! The sandbox's cgroup, as the supervisor uses it: one [`CgroupManager`]
//! trait, with a cgroup v1 and a cgroup v2 implementation.
//!
//! Usage order:
//!
//! ```text
//! let manager = manager_for(&layout, &run_name(suffix), &limits)?;  // nothing touched yet
//! manager.create()?;            // mkdir sandbox-<name> (v2: then +controller in the parent)
//! manager.apply(&limits)?;      // the limit files
//! manager.add_process(pid)?;    // the sandbox's child, and only it
//! ...                           // manager.stats() at any time
//! manager.kill_all()?;          // everything still in the cgroup, then wait until empty
//! manager.remove()?;            // rmdir
//! ```
//!
//! The sandbox cgroup `sandbox-<name>` is always a child of the cgroup the tool
//! runs in (one per v1 hierarchy used), exactly where [`place_limits`] puts it.
//! The manager writes only inside the directories it created, with one
//! exception: on v2 a controller the tool's own cgroup does not hand down yet
//! is enabled in its `cgroup.subtree_control` (shown by `planned_enabling`).
//! It moves no process but the pid it is given, and signals only pids listed
//! in its own cgroups. Where a limit cannot be applied, [`manager_for`] says why
//! and what would fix it, instead of running without it.

mod files;
mod group;
mod kernel;
mod leftovers;
mod v1;
mod v2;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::detect::{AccessCheck, CgroupLayout, CgroupVersion, EffectiveAccess, Limit, LimitPlacement, ProblemKind, place_limits_with};
pub use kernel::{Kernel, RealKernel};
pub use leftovers::{leftovers, leftovers_with, owner_pid, remove_leftovers, remove_leftovers_near, remove_leftovers_with, run_name};
use v1::V1Manager;
use v2::V2Manager;

/// Every sandbox cgroup's name starts with this.
pub const DIR_PREFIX: &str = "sandbox-";
/// The cpu period: the quota is a share of it (100 ms, the kernel's default).
pub const CPU_PERIOD_US: u64 = 100_000;
/// The kernel refuses quotas below 1 ms.
pub const MIN_CPU_QUOTA_US: u64 = 1_000;

/// A file and the value written to it.
pub type Write = (PathBuf, String);

/// The limits of one sandbox; `None` leaves that resource unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Limits {
    /// Bytes of memory (swap is not allowed on top of it where the kernel can say so).
    pub memory: Option<u64>,
    /// Processes and threads at once.
    pub pids: Option<u64>,
    /// Cores' worth of cpu time (0.5: half of one core).
    pub cpu: Option<f64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.requested().is_empty()
    }

    /// The limits that are set, in the order they are applied.
    pub fn requested(&self) -> Vec<Limit> {
        let set = |limit: &Limit| match limit {
            Limit::Memory => self.memory.is_some(),
            Limit::Pids => self.pids.is_some(),
            Limit::Cpu => self.cpu.is_some(),
        };
        Limit::ALL.into_iter().filter(set).collect()
    }
}

/// What the sandbox's cgroup reports; `None` where the file is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Stats {
    /// Memory in use now (v2 `memory.current`, v1 `memory.usage_in_bytes`).
    pub memory_bytes: Option<u64>,
    /// Processes and threads now (`pids.current`).
    pub pids: Option<u64>,
    /// Processes the OOM killer killed (v2 `memory.events` oom_kill, v1
    /// `memory.oom_control` oom_kill).
    pub oom_kills: Option<u64>,
    /// Times the memory limit was hit (v2 `memory.events` max, v1 `memory.failcnt`).
    pub memory_limit_hits: Option<u64>,
}

/// The sandbox's cgroup(s). See the module documentation for the order of calls.
pub trait CgroupManager: Send + Sync {
    fn version(&self) -> CgroupVersion;
    /// The controller enabling that `create` writes to the parent's
    /// `cgroup.subtree_control` (v2 only, and only when needed), e.g.
    /// (".../lab.service/cgroup.subtree_control", "+memory +pids").
    fn planned_enabling(&self) -> Vec<Write>;
    /// The files and values that `apply` will write, in order, e.g.
    /// ("/sys/fs/cgroup/memory/.../sandbox-x/memory.limit_in_bytes", "268435456").
    /// Limits this manager was not set up for are left out.
    fn planned_writes(&self, limits: &Limits) -> Vec<Write>;
    /// The cgroup directories it creates: one per v1 hierarchy used, or one v2 cgroup.
    fn dirs(&self) -> Vec<PathBuf>;
    /// mkdir of every directory; fails if one exists (another run's cgroup is
    /// never reused) and then leaves nothing behind.
    fn create(&self) -> io::Result<()>;
    /// Instead of `create`: take over the existing cgroup of a named instance
    /// (for `exec`, `ps` and `stop`, which come after the run that made it).
    fn adopt(&self) -> io::Result<()>;
    /// Writes the limits ([`CgroupManager::planned_writes`]).
    fn apply(&self, limits: &Limits) -> io::Result<()>;
    /// The `cgroup.procs` files a pid is written to.
    fn procs_files(&self) -> Vec<PathBuf>;
    /// Moves the sandbox's process into the cgroup(s).
    fn add_process(&self, pid: i32) -> io::Result<()>;
    /// Kills every process in the cgroup(s) (v2: `cgroup.kill` when present)
    /// and returns once they are empty. Signals only pids they list.
    fn kill_all(&self) -> io::Result<()>;
    /// rmdir of every directory, retrying briefly while processes exit. Call
    /// after `kill_all`. Directories already gone count as removed.
    fn remove(&self) -> io::Result<()>;
    fn stats(&self) -> Stats;
}

/// A limit that cannot be applied (or a value that cannot be), plainly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unavailable {
    pub limit: Limit,
    /// Detection's reason; `None` for a bad value or limits split across v1 and v2.
    pub kind: Option<ProblemKind>,
    /// What is wrong.
    pub message: String,
    /// What the user can do about it.
    pub fix: String,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {} limit cannot be applied: {}. Fix: {}", self.limit, self.message, self.fix)
    }
}

/// The name of the sandbox's cgroup directory for a run or instance name.
pub fn dir_name(name: &str) -> String {
    format!("{DIR_PREFIX}{name}")
}

/// The manager for a sandbox called `name` (a [`run_name`] or an instance
/// name) with these limits, or every reason some limit cannot be applied.
/// Nothing is created yet. With no limit set, the cgroup still holds the
/// sandbox's processes (so `kill_all` reaches all of them) and needs no
/// controller: on v1 it goes into the pids hierarchy.
pub fn manager_for(layout: &CgroupLayout, name: &str, limits: &Limits) -> Result<Box<dyn CgroupManager>, Vec<Unavailable>> {
    manager_with(layout, name, limits, &EffectiveAccess, Arc::new(RealKernel))
}

/// [`manager_for`] with another access check and kernel (tests).
pub fn manager_with(
    layout: &CgroupLayout,
    name: &str,
    limits: &Limits,
    access: &dyn AccessCheck,
    kernel: Arc<dyn Kernel>,
) -> Result<Box<dyn CgroupManager>, Vec<Unavailable>> {
    let child = dir_name(name);
    let mut problems = invalid_values(limits);
    let placements: Vec<LimitPlacement> = if limits.is_empty() {
        tracking_placement(layout, &child, access).into_iter().collect()
    } else {
        let all = place_limits_with(layout, &child, access);
        all.into_iter().filter(|p| limits.requested().contains(&p.limit)).collect()
    };
    problems.extend(placements.iter().filter_map(|p| unavailable(p, limits.is_empty())));
    if !problems.is_empty() {
        return Err(problems);
    }
    build(&placements, limits.is_empty(), kernel)
}

/// With no limit, the cgroup only holds processes, which needs no controller.
/// On v2 any cgroup can do that, so place it as if `pids` were handed down
/// already (the access checks still run); on v1 the pids hierarchy holds it.
fn tracking_placement(layout: &CgroupLayout, child: &str, access: &dyn AccessCheck) -> Option<LimitPlacement> {
    let mut layout = layout.clone();
    if let CgroupLayout::V2 { unified } | CgroupLayout::Hybrid { unified, .. } = &mut layout {
        for list in [&mut unified.available_controllers, &mut unified.subtree_control] {
            if !list.iter().any(|c| c == "pids") {
                list.push("pids".to_owned());
            }
        }
    }
    let placements = place_limits_with(&layout, child, access);
    placements.into_iter().find(|p| p.limit == Limit::Pids)
}

fn build(placements: &[LimitPlacement], tracking_only: bool, kernel: Arc<dyn Kernel>) -> Result<Box<dyn CgroupManager>, Vec<Unavailable>> {
    let version = single_backend(placements)?;
    let slots: Vec<Slot> = placements.iter().filter_map(Slot::from_placement).collect();
    let Some(first) = slots.first().cloned() else {
        return Err(vec![internal_error(placements)]);
    };
    let dirs = distinct(slots.iter().map(|s| s.dir.clone()));
    // Tracking only: the directory is made, no limit is written.
    let slots = if tracking_only { Vec::new() } else { slots };
    Ok(match version {
        CgroupVersion::V1 => Box::new(V1Manager::new(dirs, slots, kernel)),
        CgroupVersion::V2 => Box::new(V2Manager::new(first.dir, first.parent, slots, kernel)),
    })
}

/// One limit's place: the sandbox cgroup that holds it and that cgroup's parent.
#[derive(Debug, Clone)]
struct Slot {
    limit: Limit,
    dir: PathBuf,
    parent: PathBuf,
    needs_enabling: bool,
}

impl Slot {
    fn from_placement(placement: &LimitPlacement) -> Option<Slot> {
        Some(Slot {
            limit: placement.limit,
            dir: placement.child.clone()?,
            parent: placement.parent.clone()?,
            needs_enabling: placement.needs_enabling,
        })
    }

    fn has_control_file(&self, name: &str) -> bool {
        has_control_file(&self.dir, &self.parent, name)
    }
}

/// Whether the sandbox's cgroup has (or, before `create`, will have) a control
/// file. Before it exists the tool's own cgroup answers: it has the same
/// controllers' files. (A v2 root cgroup has no memory files at all, so a plan
/// made there before `create` may leave out `memory.swap.max`; `apply` asks the
/// created cgroup itself.)
fn has_control_file(dir: &Path, parent: &Path, name: &str) -> bool {
    let asked = if dir.is_dir() { dir } else { parent };
    asked.join(name).is_file()
}

/// Writes in order, after checking the manager created its cgroup and was set
/// up for every limit asked.
fn apply_writes(group: &group::Group, slots: &[Slot], limits: &Limits, writes: &[Write]) -> io::Result<()> {
    group.check_owned()?;
    if let Some(missing) = limits.requested().into_iter().find(|l| !slots.iter().any(|s| s.limit == *l)) {
        let message = format!("this sandbox cgroup was set up without the {missing} limit (see manager_for)");
        return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
    }
    writes.iter().try_for_each(|(file, value)| files::write_value(file, value))
}

/// The cpu quota in microseconds per [`CPU_PERIOD_US`] for `cores`, if valid.
pub fn cpu_quota(cores: f64) -> Option<u64> {
    let quota = (cores * CPU_PERIOD_US as f64).round();
    // `as` saturates; the check keeps NaN, negatives and tiny shares out.
    (quota.is_finite() && quota >= MIN_CPU_QUOTA_US as f64).then_some(quota as u64)
}

fn distinct(paths: impl Iterator<Item = PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for path in paths {
        if !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Why not, and what to do

fn invalid_values(limits: &Limits) -> Vec<Unavailable> {
    let mut problems = Vec::new();
    let mut bad = |limit: Limit, message: String, fix: &str| {
        problems.push(Unavailable { limit, kind: None, message, fix: fix.to_owned() });
    };
    if limits.memory == Some(0) {
        bad(Limit::Memory, "memory = 0 leaves the sandbox no memory at all".into(), "set memory to a size such as \"256M\"");
    }
    if limits.pids == Some(0) {
        bad(Limit::Pids, "pids = 0 lets the sandbox start no process".into(), "set pids to at least 1 (e.g. 128)");
    }
    if let Some(cores) = limits.cpu
        && cpu_quota(cores).is_none()
    {
        let message = format!(
            "cpu = {cores} cores is not a share the kernel accepts (at least {} cores: a 1 ms quota per 100 ms)",
            MIN_CPU_QUOTA_US as f64 / CPU_PERIOD_US as f64
        );
        bad(Limit::Cpu, message, "set cpu to a positive number of cores such as 0.5");
    }
    problems
}

fn unavailable(placement: &LimitPlacement, tracking_only: bool) -> Option<Unavailable> {
    let problem = placement.problem.as_ref()?;
    let message = if tracking_only {
        format!(
            "no limit is set, but the sandbox's processes still need a cgroup of their own so that all of them \
             can be killed at the end, and {}",
            problem.message
        )
    } else {
        problem.message.clone()
    };
    Some(Unavailable {
        limit: placement.limit,
        kind: Some(problem.kind),
        message,
        fix: fix_for(problem.kind, placement.limit, placement.backend),
    })
}

fn single_backend(placements: &[LimitPlacement]) -> Result<CgroupVersion, Vec<Unavailable>> {
    let on = |version| placements.iter().filter(move |p| p.backend == Some(version)).map(|p| p.limit.to_string());
    let (v1, v2): (Vec<String>, Vec<String>) = (on(CgroupVersion::V1).collect(), on(CgroupVersion::V2).collect());
    match (v1.is_empty(), v2.is_empty()) {
        (false, true) => Ok(CgroupVersion::V1),
        (true, false) => Ok(CgroupVersion::V2),
        (true, true) => Err(vec![internal_error(placements)]),
        (false, false) => Err(vec![Unavailable {
            limit: placements[0].limit,
            kind: None,
            message: format!(
                "{} would be limited through cgroup v1 and {} through cgroup v2, and one sandbox cgroup cannot span both",
                v1.join(", "),
                v2.join(", ")
            ),
            fix: "mount these controllers on one cgroup version (systemd: `systemd.unified_cgroup_hierarchy=1` on the \
                  kernel command line for cgroup v2), or remove the others from the profile's [limits]"
                .to_owned(),
        }]),
    }
}

/// Usable placements always name a backend and directories; this is the
/// answer, rather than a panic, should that ever change.
fn internal_error(placements: &[LimitPlacement]) -> Unavailable {
    Unavailable {
        limit: placements.first().map_or(Limit::Pids, |p| p.limit),
        kind: None,
        message: "cgroup detection named no directory for it (a bug in this tool)".to_owned(),
        fix: "report it with the output of `sandbox doctor`".to_owned(),
    }
}

fn fix_for(kind: ProblemKind, limit: Limit, backend: Option<CgroupVersion>) -> String {
    let c = limit.controller();
    let or_drop = format!("or remove `{c}` from the profile's [limits]");
    match kind {
        ProblemKind::NoCgroups => format!("mount cgroup2 (`mount -t cgroup2 none /sys/fs/cgroup`), {or_drop}"),
        ProblemKind::ControllerMissing if backend == Some(CgroupVersion::V2) => format!(
            "have the parent cgroup delegate `{c}`: as root, start the tool under `systemd-run --scope -p Delegate=yes \
             sandbox ...` (`systemd-run --user ...` as a user), {or_drop}"
        ),
        ProblemKind::ControllerMissing => {
            format!("mount a hierarchy with it (`mount -t cgroup -o {c} cgroup /sys/fs/cgroup/{c}`), {or_drop}")
        }
        ProblemKind::NotVisible => format!(
            "run the tool where its own cgroup is visible under the cgroup mount (outside a cgroup namespace, or \
             with its part of the cgroup tree mounted), {or_drop}"
        ),
        ProblemKind::ReadOnly => {
            format!("make the cgroup mount writable (in a container: give it a writable cgroup of its own), {or_drop}")
        }
        // Honest about the kernel rule: a delegated scope alone does not help,
        // because the tool itself sits in the scope's cgroup.
        ProblemKind::InternalProcesses => format!(
            "cgroup v2 hands a controller to child cgroups only from a cgroup with no process in it, and this tool \
             runs in its own cgroup. A delegated scope (`systemd-run --scope -p Delegate=yes sandbox ...`, with \
             `--user` when not root) is the usual way out only together with the tool moving itself into a leaf \
             cgroup of that scope, which this version does not do; so for now, {}",
            or_drop.trim_start_matches("or ")
        ),
        ProblemKind::NotWritable => format!(
            "run as root, or from a cgroup delegated to your user (`systemd-run --user --scope -p Delegate=yes \
             sandbox ...`), {or_drop}"
        ),
        ProblemKind::InvalidName => "use a run or instance name without `/`, `.` or `..`".to_owned(),
    }
}

#[cfg(test)]
mod real_tests;
#[cfg(test)]
mod tests;
