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

mod attach;
mod files;
mod group;
mod kernel;
mod leaf;
mod leftovers;
mod v1;
mod v2;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::detect::{
    AccessCheck, CgroupLayout, CgroupVersion, EffectiveAccess, Limit, LimitPlacement, Placing, ProblemKind, place_limits_in,
};
pub use attach::{attach, attach_dirs};
use group::Group;
pub use kernel::{Kernel, RealKernel};
pub use leaf::{SupervisorLeaf, enter_supervisor_leaf};
pub use leftovers::{leftovers, leftovers_with, owner_pid, remove_leftovers, remove_leftovers_near, remove_leftovers_with, run_name};
use v1::V1;
use v2::V2;

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
    /// Forks refused by the pids limit (`pids.events` max, v1 and v2).
    pub pids_limit_hits: Option<u64>,
}

impl Stats {
    /// What a person should hear after a run: the limits that were reached.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(kills) = self.oom_kills.filter(|&n| n > 0) {
            notes.push(format!("the memory limit was reached: the kernel's OOM killer ended {kills} process(es) in the sandbox"));
        }
        if let Some(hits) = self.pids_limit_hits.filter(|&n| n > 0) {
            notes.push(format!("the pids limit was reached: {hits} fork(s) in the sandbox were refused"));
        }
        notes
    }
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
    /// v2: the leaf this process moves itself into during `create`, before its
    /// cgroup (the base) can hand controllers down; `remove` moves it back and
    /// removes the leaf when it is the last one there. As data for the plan:
    /// `mkdir -p LEAF; echo $$ > LEAF/cgroup.procs`.
    fn supervisor_leaf(&self) -> Option<&SupervisorLeaf>;
    /// v2: the sandbox's cgroup, to open (O_PATH|O_DIRECTORY) for clone3's
    /// CLONE_INTO_CGROUP after `create` and `apply`, so that the child starts
    /// inside it instead of being moved there by `add_process`.
    fn clone_into_cgroup(&self) -> Option<PathBuf>;
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
    let how = Placing { parent: super::options::current().parent, self_pid: std::process::id() as i32, tracking_only: limits.is_empty() };
    manager_in(layout, name, limits, access, kernel, &how)
}

/// [`manager_with`] with the placing spelled out (tests).
pub fn manager_in(
    layout: &CgroupLayout,
    name: &str,
    limits: &Limits,
    access: &dyn AccessCheck,
    kernel: Arc<dyn Kernel>,
    how: &Placing,
) -> Result<Box<dyn CgroupManager>, Vec<Unavailable>> {
    let child = dir_name(name);
    let mut problems = invalid_values(limits);
    let placements: Vec<LimitPlacement> = if limits.is_empty() {
        // Only holding processes: on v1 the pids hierarchy holds them.
        place_limits_in(layout, &child, access, how).into_iter().filter(|p| p.limit == Limit::Pids).collect()
    } else {
        let all = place_limits_in(layout, &child, access, how);
        all.into_iter().filter(|p| limits.requested().contains(&p.limit)).collect()
    };
    problems.extend(placements.iter().filter_map(|p| unavailable(p, limits.is_empty())));
    if !problems.is_empty() {
        return Err(problems);
    }
    build(&placements, limits.is_empty(), kernel, how.self_pid)
}

fn build(
    placements: &[LimitPlacement],
    tracking_only: bool,
    kernel: Arc<dyn Kernel>,
    self_pid: i32,
) -> Result<Box<dyn CgroupManager>, Vec<Unavailable>> {
    let version = single_backend(placements)?;
    let slots: Vec<Slot> = placements.iter().filter_map(Slot::from_placement).collect();
    let Some(first) = slots.first().cloned() else {
        return Err(vec![internal_error(placements)]);
    };
    let dirs = distinct(slots.iter().map(|s| s.dir.clone()));
    let leaf =
        placements.iter().find_map(|p| p.supervisor_leaf.clone()).map(|dir| SupervisorLeaf::new(first.parent.clone(), dir, self_pid));
    // Tracking only: the directory is made, no limit is written.
    let slots = if tracking_only { Vec::new() } else { slots };
    let backend: Box<dyn Backend> = match version {
        CgroupVersion::V1 => Box::new(V1),
        CgroupVersion::V2 => Box::new(V2 { dir: first.dir, parent: first.parent }),
    };
    Ok(Box::new(SandboxCgroup { group: Group::new(dirs, Arc::clone(&kernel)), slots, backend, leaf, kernel }))
}

/// What differs between cgroup v1 and v2; everything else (making, joining,
/// emptying and removing the directories) is [`SandboxCgroup`]'s, once.
trait Backend: Send + Sync {
    fn version(&self) -> CgroupVersion;
    /// The controller enabling in the parent (v2 only).
    fn enabling(&self, slots: &[Slot]) -> Option<Write>;
    /// The limit files for one slot, in the order they must be written.
    fn writes(&self, slot: &Slot, limits: &Limits) -> Vec<Write>;
    fn stats(&self, dirs: &[PathBuf]) -> Stats;
}

/// The sandbox's cgroup(s): one per v1 hierarchy used, or one v2 cgroup.
struct SandboxCgroup {
    group: Group,
    slots: Vec<Slot>,
    backend: Box<dyn Backend>,
    leaf: Option<SupervisorLeaf>,
    kernel: Arc<dyn Kernel>,
}

impl CgroupManager for SandboxCgroup {
    fn version(&self) -> CgroupVersion {
        self.backend.version()
    }

    fn planned_enabling(&self) -> Vec<Write> {
        self.backend.enabling(&self.slots).into_iter().collect()
    }

    fn planned_writes(&self, limits: &Limits) -> Vec<Write> {
        self.slots.iter().flat_map(|slot| self.backend.writes(slot, limits)).collect()
    }

    fn dirs(&self) -> Vec<PathBuf> {
        self.group.dirs().to_vec()
    }

    fn create(&self) -> io::Result<()> {
        // One sandbox at a time changes the base (its leaf, its controllers):
        // another supervisor's `remove` may be about to hand it back.
        let _lock = match &self.leaf {
            Some(leaf) => Some(leaf.lock_base()?),
            None => None,
        };
        if let Some(leaf) = &self.leaf {
            leaf.enter(self.kernel.as_ref())?;
        }
        self.group.create()?;
        // After mkdir, so that a refused (existing) directory leaves the parent
        // untouched. The child gets the controller's files at this write.
        if let Some((file, value)) = self.backend.enabling(&self.slots)
            && let Err(error) = files::write_value(&file, &value)
        {
            let _ = self.group.remove();
            drop(_lock);
            self.release_leaf();
            return Err(error);
        }
        Ok(())
    }

    fn adopt(&self) -> io::Result<()> {
        self.group.adopt_existing()
    }

    fn apply(&self, limits: &Limits) -> io::Result<()> {
        self.group.check_owned()?;
        if let Some(missing) = limits.requested().into_iter().find(|l| !self.slots.iter().any(|s| s.limit == *l)) {
            let message = format!("this sandbox cgroup was set up without the {missing} limit (see manager_for)");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        }
        self.planned_writes(limits).iter().try_for_each(|(file, value)| files::write_value(file, value))
    }

    fn procs_files(&self) -> Vec<PathBuf> {
        self.group.procs_files()
    }

    fn add_process(&self, pid: i32) -> io::Result<()> {
        self.group.add_process(pid)
    }

    fn kill_all(&self) -> io::Result<()> {
        self.group.kill_all()
    }

    fn remove(&self) -> io::Result<()> {
        let removed = self.group.remove();
        self.release_leaf();
        // Taken over after a crash (no leaf of our own): the dead supervisor's
        // leaf may be left beside it.
        if self.leaf.is_none() && self.backend.version() == CgroupVersion::V2 && removed.is_ok() {
            for base in self.group.dirs().iter().filter_map(|d| d.parent()) {
                let _ = leaf::tidy_base(base, self.kernel.as_ref());
            }
        }
        removed
    }

    fn stats(&self) -> Stats {
        self.backend.stats(self.group.dirs())
    }

    fn supervisor_leaf(&self) -> Option<&SupervisorLeaf> {
        self.leaf.as_ref()
    }

    fn clone_into_cgroup(&self) -> Option<PathBuf> {
        (self.backend.version() == CgroupVersion::V2).then(|| self.group.dirs().first().cloned()).flatten()
    }
}

impl SandboxCgroup {
    /// Hands the base back as it was found when this process is the last
    /// sandbox there (see [`SupervisorLeaf::release`]); otherwise the next
    /// one to finish does.
    fn release_leaf(&self) {
        if let Some(leaf) = &self.leaf {
            let _ = leaf.release(self.kernel.as_ref());
        }
    }
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
            "have the parent cgroup delegate `{c}`: start the tool in a delegated scope (`systemd-run --scope -p Delegate=yes \
             sandbox ...`, `systemd-run --user ...` as a user), or name a prepared cgroup with --cgroup-parent PATH, {or_drop}"
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
        ProblemKind::InternalProcesses => format!(
            "start the tool in a cgroup of its own: a delegated scope (`systemd-run --scope -p Delegate=yes sandbox ...`, \
             with `--user` when not root), or a prepared empty cgroup named with --cgroup-parent PATH, {or_drop}"
        ),
        ProblemKind::NotWritable => format!(
            "run as root, or from a cgroup delegated to your user (`systemd-run --user --scope -p Delegate=yes \
             sandbox ...`, or --cgroup-parent PATH of a cgroup you own), {or_drop}"
        ),
        ProblemKind::InvalidName => "use a run or instance name without `/`, `.` or `..`".to_owned(),
        ProblemKind::ParentMissing => format!("create that cgroup first, or name an existing one with --cgroup-parent, {or_drop}"),
    }
}

/// The refusal `run`, `start`, `exec` and `lab start` print when limits cannot
/// be applied: one short line per limit with the cause, then one fix (the first
/// problem's, since one cause usually blocks them all) and the way out on purpose.
pub fn refusal(problems: &[Unavailable]) -> String {
    let mut text = String::from("the profile's [limits] cannot be applied here, so the sandbox does not start:");
    for problem in problems {
        text.push_str(&format!("\n  {}: {}", problem.limit, problem.message));
    }
    if let Some(first) = problems.first() {
        let fix = first.fix.rsplit_once(", or remove").map_or(first.fix.as_str(), |(fix, _)| fix);
        text.push_str(&format!("\n  fix: {fix}; or run without limits on purpose with --no-limits"));
    }
    text
}

#[cfg(test)]
mod real_tests;
#[cfg(test)]
mod tests;
