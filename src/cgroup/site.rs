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

#[cfg(test)]
mod tests {
    //! The choice of base on fake cgroup trees (plain directories and files).

    use std::fs;

    use super::*;
    use crate::cgroup::detect::layout_from;

    const MOUNTINFO: &str = "35 25 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
    const SELF: i32 = 4242;

    /// A cgroup with controllers, enabled controllers and processes; the root
    /// has no `cgroup.type`, every other cgroup has one.
    fn cgroup(root: &Path, path: &str, controllers: &str, enabled: &str, procs: &str) -> PathBuf {
        let dir = root.join("sys/fs/cgroup").join(path.trim_start_matches('/'));
        fs::create_dir_all(&dir).unwrap();
        for (file, text) in [("cgroup.controllers", controllers), ("cgroup.subtree_control", enabled), ("cgroup.procs", procs)] {
            fs::write(dir.join(file), text).unwrap();
        }
        if !path.trim_matches('/').is_empty() {
            fs::write(dir.join("cgroup.type"), "domain\n").unwrap();
        }
        dir
    }

    fn site_of(root: &Path, own: &str, parent: Option<&Path>) -> Result<V2Site, Problem> {
        let layout = layout_from(MOUNTINFO, &format!("0::{own}\n"), root);
        v2_site(layout.unified().unwrap(), parent, SELF)
    }

    #[test]
    fn alone_in_its_cgroup_the_tool_moves_into_a_supervisor_leaf() {
        let tmp = tempfile::tempdir().unwrap();
        let own = cgroup(tmp.path(), "/ci.scope", "cpu memory pids", "", "4242\n");
        let site = site_of(tmp.path(), "/ci.scope", None).unwrap();
        assert_eq!(site.kind, SiteKind::MoveSelf);
        assert_eq!(site.base, own);
        assert_eq!(site.supervisor_leaf, Some(own.join("supervisor")));
        assert_eq!(site.available, ["cpu", "memory", "pids"]);
    }

    #[test]
    fn beside_other_processes_there_is_no_base() {
        let tmp = tempfile::tempdir().unwrap();
        cgroup(tmp.path(), "/system.slice/teacher.scope", "cpu memory pids", "", "130\n4242\n131\n");
        let problem = site_of(tmp.path(), "/system.slice/teacher.scope", None).unwrap_err();
        assert_eq!(problem.kind, ProblemKind::InternalProcesses);
        assert!(problem.message.contains("holds other processes (pid 130, 131)"), "{}", problem.message);
        assert!(!problem.message.contains("4242"), "the tool itself is not an other process");
    }

    #[test]
    fn in_the_root_children_are_made_directly() {
        let tmp = tempfile::tempdir().unwrap();
        let root = cgroup(tmp.path(), "/", "cpu memory pids", "cpu memory pids", "1\n4242\n");
        let site = site_of(tmp.path(), "/", None).unwrap();
        assert_eq!((site.kind, site.base, site.supervisor_leaf), (SiteKind::Root, root, None));
    }

    #[test]
    fn in_a_supervisor_leaf_the_base_is_its_parent() {
        // `sandbox start` moved itself there; its supervisors are born in it.
        let tmp = tempfile::tempdir().unwrap();
        let base = cgroup(tmp.path(), "/ci.scope", "cpu memory pids", "memory pids", "");
        cgroup(tmp.path(), "/ci.scope/supervisor", "memory pids", "", "4241\n4242\n");
        let site = site_of(tmp.path(), "/ci.scope/supervisor", None).unwrap();
        assert_eq!(site.kind, SiteKind::InLeaf);
        assert_eq!(site.base, base);
        assert_eq!(site.enabled, ["memory", "pids"]);
        assert_eq!(site.supervisor_leaf, Some(base.join("supervisor")));
    }

    #[test]
    fn cgroup_parent_is_taken_absolute_or_relative_to_the_mount() {
        let tmp = tempfile::tempdir().unwrap();
        cgroup(tmp.path(), "/system.slice/teacher.scope", "cpu memory pids", "", "130\n4242\n");
        let lab = cgroup(tmp.path(), "/lab.slice", "cpu memory pids", "", "");
        for given in [lab.clone(), PathBuf::from("lab.slice"), PathBuf::from("/lab.slice")] {
            let site = site_of(tmp.path(), "/system.slice/teacher.scope", Some(&given)).unwrap();
            assert_eq!((site.kind, &site.base), (SiteKind::Empty, &lab), "{}", given.display());
            assert_eq!(site.own, tmp.path().join("sys/fs/cgroup/system.slice/teacher.scope"));
            // The child starts in the tool's cgroup: moving it needs the common ancestor.
            assert_eq!(common_ancestor(&site.own, &site.base), tmp.path().join("sys/fs/cgroup"));
        }
        let missing = site_of(tmp.path(), "/system.slice/teacher.scope", Some(Path::new("nope.slice"))).unwrap_err();
        assert_eq!(missing.kind, ProblemKind::ParentMissing);
        cgroup(tmp.path(), "/busy.slice", "cpu memory pids", "", "777\n");
        let busy = site_of(tmp.path(), "/system.slice/teacher.scope", Some(Path::new("busy.slice"))).unwrap_err();
        assert_eq!(busy.kind, ProblemKind::InternalProcesses);
    }
}
