//! The cgroup of a running sandbox, found from one of its processes: `exec`,
//! `ps` and `stop` come after the run that made it, from any cgroup, so they
//! read where its PID 1 is (`/proc/PID/cgroup`) instead of working the place
//! out again from their own.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::group::Group;
use super::kernel::{Kernel, RealKernel};
use super::v1::V1;
use super::v2::V2;
use super::{Backend, CgroupManager, SandboxCgroup, dir_name, distinct};
use crate::cgroup::detect::{CgroupLayout, layout_from};

/// The cgroup(s) named for sandbox `name` that process `pid` is in, taken
/// over as existing (`adopt`); `None` when it is in none (a sandbox started
/// without limits, or a pid that is not the sandbox's).
pub fn attach(name: &str, pid: i32) -> Option<Box<dyn CgroupManager>> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let memberships = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    // The layout as that process sits in it: its "own" cgroups are the sandbox's.
    let layout = layout_from(&mountinfo, &memberships, Path::new("/"));
    attach_in(&layout, name, Arc::new(RealKernel))
}

/// The cgroup(s) a supervisor recorded for sandbox `name` (`dirs`), taken over
/// as existing, for the cleanup after a crash when no process is left to ask.
/// Only directories named for the sandbox under this machine's cgroup mounts
/// count; `None` when none is left.
pub fn attach_dirs(name: &str, dirs: &[PathBuf]) -> Option<Box<dyn CgroupManager>> {
    let layout = crate::cgroup::detect().ok()?;
    attach_dirs_in(&layout, name, dirs, Arc::new(RealKernel))
}

pub(crate) fn attach_dirs_in(
    layout: &CgroupLayout,
    name: &str,
    dirs: &[PathBuf],
    kernel: Arc<dyn Kernel>,
) -> Option<Box<dyn CgroupManager>> {
    let wanted = dir_name(name);
    let ours =
        |d: &&PathBuf| d.file_name().is_some_and(|n| n == wanted.as_str()) && d.is_dir() && !d.components().any(|c| c.as_os_str() == "..");
    let unified = layout.unified().map(|u| u.mount.clone());
    let v2: Vec<PathBuf> = dirs.iter().filter(ours).filter(|d| unified.as_ref().is_some_and(|m| d.starts_with(m))).cloned().collect();
    let (dirs, backend): (Vec<PathBuf>, Box<dyn Backend>) = if let Some(dir) = v2.first() {
        let parent = dir.parent().map(Path::to_path_buf).unwrap_or_default();
        (vec![dir.clone()], Box::new(V2 { dir: dir.clone(), parent }))
    } else {
        let mounts: Vec<PathBuf> = layout.v1_hierarchies().iter().map(|h| h.mount.clone()).collect();
        (distinct(dirs.iter().filter(ours).filter(|d| mounts.iter().any(|m| d.starts_with(m))).cloned()), Box::new(V1))
    };
    if dirs.is_empty() {
        return None;
    }
    Some(Box::new(SandboxCgroup { group: Group::adopt(dirs, Arc::clone(&kernel)), slots: Vec::new(), backend, leaf: None, kernel }))
}

/// [`attach`] for a layout read elsewhere (tests).
pub(crate) fn attach_in(layout: &CgroupLayout, name: &str, kernel: Arc<dyn Kernel>) -> Option<Box<dyn CgroupManager>> {
    let wanted = dir_name(name);
    let named = |dir: &Option<PathBuf>| dir.clone().filter(|d| d.file_name().is_some_and(|n| n == wanted.as_str()) && d.is_dir());
    let (dirs, backend): (Vec<PathBuf>, Box<dyn Backend>) = match layout.unified().and_then(|u| named(&u.own_path)) {
        Some(dir) => {
            let parent = dir.parent().map(Path::to_path_buf).unwrap_or_default();
            (vec![dir.clone()], Box::new(V2 { dir, parent }))
        }
        None => (distinct(layout.v1_hierarchies().into_iter().filter_map(|h| named(&h.own_path))), Box::new(V1)),
    };
    if dirs.is_empty() {
        return None;
    }
    Some(Box::new(SandboxCgroup { group: Group::adopt(dirs, Arc::clone(&kernel)), slots: Vec::new(), backend, leaf: None, kernel }))
}
