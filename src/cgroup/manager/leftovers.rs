//! Sandbox cgroups left behind by a run that crashed, and their removal.
//!
//! cgroupfs holds no files of ours, so the owner is recorded in the name: a
//! run's cgroup is `sandbox-run-<supervisor pid>[-<anything>]` ([`run_name`]).
//! When that pid no longer exists, no supervisor will ever remove the cgroup
//! (or kill what still runs in it), so the next run or `sandbox gc` does.
//! Cgroups named after an instance (`sandbox-<instance>`) carry no pid and are
//! never taken for leftovers; neither is anything not starting `sandbox-run-`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::group::Group;
use super::kernel::{Kernel, RealKernel};
use super::{CgroupManager, DIR_PREFIX};
use crate::cgroup::{CgroupLayout, Limit};

const RUN_PREFIX: &str = "run-";

/// A run name that records this process as the owner: `run-<pid>-<suffix>`.
/// The suffix (random, or a counter) keeps a later process that gets the same
/// pid from colliding with a leftover.
pub fn run_name(suffix: &str) -> String {
    let pid = std::process::id();
    if suffix.is_empty() { format!("{RUN_PREFIX}{pid}") } else { format!("{RUN_PREFIX}{pid}-{suffix}") }
}

/// The owner pid recorded in a sandbox cgroup's directory name
/// (`sandbox-run-123` or `sandbox-run-123-x7f`), if it records one.
pub fn owner_pid(dir_name: &str) -> Option<i32> {
    let rest = dir_name.strip_prefix(DIR_PREFIX)?.strip_prefix(RUN_PREFIX)?;
    let digits = rest.split_once('-').map_or(rest, |(pid, _)| pid);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&pid| pid > 0)
}

/// The leftover sandbox cgroups under the tool's own cgroups: named after a
/// supervisor pid that no longer exists. (A pid that was reused by another
/// process looks alive: such a cgroup waits for a later pass, never the reverse.)
pub fn leftovers(layout: &CgroupLayout) -> Vec<PathBuf> {
    leftovers_with(layout, &RealKernel)
}

/// [`leftovers`] asking `kernel` which pids are alive.
pub fn leftovers_with(layout: &CgroupLayout, kernel: &dyn Kernel) -> Vec<PathBuf> {
    leftovers_in(&scanned_parents(layout), kernel)
}

fn leftovers_in(parents: &[PathBuf], kernel: &dyn Kernel) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for parent in parents {
        // An unreadable parent has nothing we could remove either.
        let Ok(entries) = fs::read_dir(parent) else { continue };
        for entry in entries.flatten() {
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let owner = entry.file_name().to_str().and_then(owner_pid);
            if is_dir && owner.is_some_and(|pid| !kernel.is_alive(pid)) {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

/// Kills what still runs inside each leftover cgroup (only pids listed in that
/// cgroup) and removes it. Returns the removed directories; on an error the
/// others are still tried and the first error is returned.
pub fn remove_leftovers(layout: &CgroupLayout) -> io::Result<Vec<PathBuf>> {
    remove_leftovers_with(layout, Arc::new(RealKernel))
}

/// [`remove_leftovers`] through `kernel`.
pub fn remove_leftovers_with(layout: &CgroupLayout, kernel: Arc<dyn Kernel>) -> io::Result<Vec<PathBuf>> {
    remove_leftovers_in(&scanned_parents(layout), kernel)
}

/// [`remove_leftovers`] next to a manager's own cgroups (the same parents),
/// for a supervisor that holds a manager rather than the layout.
pub fn remove_leftovers_near(manager: &dyn CgroupManager) -> io::Result<Vec<PathBuf>> {
    let parents = distinct_parents(manager.dirs().iter().filter_map(|dir| dir.parent().map(Path::to_path_buf)));
    remove_leftovers_in(&parents, Arc::new(RealKernel))
}

fn remove_leftovers_in(parents: &[PathBuf], kernel: Arc<dyn Kernel>) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let mut first_error = None;
    for dir in leftovers_in(parents, kernel.as_ref()) {
        let group = Group::adopt(vec![dir.clone()], Arc::clone(&kernel));
        match group.kill_all().and_then(|()| group.remove()) {
            Ok(()) => {
                // v2: the dead supervisor's leaf beside it, if it was the last.
                if let Some(base) = dir.parent() {
                    let _ = super::leaf::tidy_base(base, kernel.as_ref());
                }
                removed.push(dir)
            }
            Err(error) => {
                first_error.get_or_insert(io::Error::new(error.kind(), format!("leftover {}: {error}", dir.display())));
            }
        }
    }
    first_error.map_or(Ok(removed), Err)
}

/// Where the manager creates sandbox cgroups: the tool's own cgroup in each v1
/// hierarchy that carries a limit, and in the unified hierarchy.
fn scanned_parents(layout: &CgroupLayout) -> Vec<PathBuf> {
    let v1 = Limit::ALL.iter().filter_map(|limit| layout.v1_hierarchy(limit.controller())?.own_path.clone());
    let v2 = layout.unified().and_then(|unified| unified.own_path.clone());
    distinct_parents(v1.chain(v2))
}

fn distinct_parents(paths: impl Iterator<Item = PathBuf>) -> Vec<PathBuf> {
    let mut parents: Vec<PathBuf> = Vec::new();
    for path in paths {
        if !parents.contains(&path) {
            parents.push(path);
        }
    }
    parents
}
