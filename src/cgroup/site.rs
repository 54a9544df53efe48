//! Where a sandbox's cgroups go on cgroup v2: the *base* cgroup whose children
//! they become, following systemd's delegation rules (CGROUP_DELEGATION.md):
//! processes live only in leaves, and a cgroup hands controllers to its
//! children only while it holds no process itself (the root is exempt).
//!
//! ```text
//! base/                     cgroup.subtree_control: +memory +pids +cpu
//! ├── supervisor/           this tool, moved here by itself (only it)
//! └── sandbox-run-123-x/    the sandbox: its limits, its processes
//! ```
//!
//! The base is, in this order:
//! - `--cgroup-parent PATH`: a cgroup an admin prepared (empty, or holding
//!   only this process, which then moves into `PATH/supervisor`);
//! - the root cgroup, when the tool runs there: children directly;
//! - the parent of the tool's cgroup when that is a `supervisor` leaf (a
//!   `sandbox start` moved itself there and its supervisors were born in it);
//! - the tool's own cgroup when no other process is in it (a delegated scope,
//!   a container, a CI job): the tool moves itself into `supervisor` first,
//!   as nsjail does on EBUSY and systemd-nspawn lays its scope out;
//! - otherwise nowhere: the tool's cgroup holds other processes (a login
//!   shell's session scope), and no limit could be enforced from there.
//!
//! Under systemd the tool first asks for a transient scope of its own with
//! `Delegate=yes` ([`super::systemd`]); inside it, the fourth case applies.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::detect::{Problem, ProblemKind, UnifiedHierarchy, is_root_cgroup, read_pid_list};

/// The name of the leaf the tool moves itself into.
pub const SUPERVISOR_LEAF: &str = "supervisor";

/// How the base was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SiteKind {
    /// The root cgroup: children are made directly.
    Root,
    /// A cgroup without processes (`--cgroup-parent`, or a prepared one).
    Empty,
    /// The tool's cgroup, which holds only the tool: it moves into the leaf first.
    MoveSelf,
    /// The tool already runs in the base's `supervisor` leaf.
    InLeaf,
}

/// The base cgroup and what is known about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct V2Site {
    pub base: PathBuf,
    pub kind: SiteKind,
    /// `base/supervisor`, when this process moves there (MoveSelf) or is
    /// there already (InLeaf); the last sandbox to end hands the base back.
    pub supervisor_leaf: Option<PathBuf>,
    /// The tool's own cgroup now (the sandbox's process starts there, so a
    /// move needs write access to the common ancestor of it and the base).
    pub own: PathBuf,
    /// `cgroup.controllers` and `cgroup.subtree_control` of the base.
    pub available: Vec<String>,
    pub enabled: Vec<String>,
}

/// The base for this process (`self_pid`), or why there is none.
pub fn v2_site(unified: &UnifiedHierarchy, parent: Option<&Path>, self_pid: i32) -> Result<V2Site, Problem> {
    let Some(own) = unified.own_path.clone() else {
        let message = format!("the tool's cgroup {} is not visible under {}", unified.cgroup_path, unified.mount.display());
        return Err(Problem::new(ProblemKind::NotVisible, message));
    };
    let site = |base: PathBuf, kind: SiteKind| {
        let supervisor_leaf = matches!(kind, SiteKind::MoveSelf | SiteKind::InLeaf).then(|| base.join(SUPERVISOR_LEAF));
        let (available, enabled) = (read_words(&base.join("cgroup.controllers")), read_words(&base.join("cgroup.subtree_control")));
        V2Site { base, kind, supervisor_leaf, own: own.clone(), available, enabled }
    };
    if let Some(parent) = parent {
        let base = parent_dir(&unified.mount, parent);
        if !base.join("cgroup.procs").is_file() {
            let message = format!("--cgroup-parent {} is not a cgroup (no {})", parent.display(), base.join("cgroup.procs").display());
            return Err(Problem::new(ProblemKind::ParentMissing, message));
        }
        let procs = read_pid_list(&base.join("cgroup.procs"));
        let kind = if is_root_cgroup(&base) {
            SiteKind::Root
        } else if procs.is_empty() {
            SiteKind::Empty
        } else if procs == [self_pid] {
            SiteKind::MoveSelf
        } else {
            return Err(others_inside(&base, &procs, self_pid));
        };
        return Ok(site(base, kind));
    }
    if unified.own_is_root {
        return Ok(site(own.clone(), SiteKind::Root));
    }
    if own.file_name().is_some_and(|n| n == SUPERVISOR_LEAF)
        && let Some(base) = own.parent().filter(|b| read_pid_list(&b.join("cgroup.procs")).is_empty() && !is_root_cgroup(b))
    {
        return Ok(site(base.to_path_buf(), SiteKind::InLeaf));
    }
    match unified.own_processes.as_slice() {
        // A fake tree (tests) or a cgroup left empty on purpose.
        [] if !unified.own_has_processes => Ok(site(own.clone(), SiteKind::Empty)),
        [only] if *only == self_pid => Ok(site(own.clone(), SiteKind::MoveSelf)),
        others => Err(others_inside(&own, others, self_pid)),
    }
}

/// `--cgroup-parent` as a path under the mount: absolute paths under it are
/// taken as they are, anything else is relative to the hierarchy's root
/// (`system.slice/lab.slice`, the way systemd names cgroups).
fn parent_dir(mount: &Path, parent: &Path) -> PathBuf {
    if parent.starts_with(mount) {
        return parent.to_path_buf();
    }
    mount.join(parent.strip_prefix("/").unwrap_or(parent))
}

fn others_inside(base: &Path, procs: &[i32], self_pid: i32) -> Problem {
    let others: Vec<String> = procs.iter().filter(|&&p| p != self_pid).take(4).map(i32::to_string).collect();
    let more = if procs.len() > others.len() + 1 { ", ..." } else { "" };
    let message = format!(
        "{} holds other processes (pid {}{more}), and only a cgroup without processes hands controllers to its children",
        base.display(),
        others.join(", ")
    );
    Problem::new(ProblemKind::InternalProcesses, message)
}

fn read_words(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).map(|t| t.split_whitespace().map(str::to_owned).collect()).unwrap_or_default()
}

/// The deepest cgroup that holds both `a` and `b`: moving a process between
/// them needs write access to its `cgroup.procs`.
pub fn common_ancestor(a: &Path, b: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for (x, y) in a.components().zip(b.components()) {
        if x != y {
            break;
        }
        out.push(x);
    }
    out
}
