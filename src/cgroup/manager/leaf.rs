//! The `supervisor` leaf (see [`crate::cgroup::site`]): a cgroup v2 cgroup
//! that holds processes cannot hand controllers to children, so the tool moves
//! its own process, and only it, into `base/supervisor` and creates the
//! sandbox's cgroup beside it. When the last sandbox of the base ends, the
//! base is handed back as it was found: controllers off again, the tool's
//! process back in the base, the leaf removed. A lock on the base directory
//! keeps two supervisors from doing this at once.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::files::write_value;
use super::kernel::Kernel;
use crate::cgroup::detect::{CgroupLayout, Placing, is_root_cgroup, read_pid_list};
use crate::cgroup::site::{SiteKind, v2_site};

/// Moving this process into `dir` (a child of `base`), as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SupervisorLeaf {
    /// The cgroup the sandbox's cgroups are made in.
    pub base: PathBuf,
    /// `base/supervisor`.
    pub dir: PathBuf,
    /// The process that moves (the supervisor itself).
    pub pid: i32,
}

impl SupervisorLeaf {
    pub fn new(base: PathBuf, dir: PathBuf, pid: i32) -> SupervisorLeaf {
        SupervisorLeaf { base, dir, pid }
    }

    /// The file the pid is written to.
    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// An exclusive lock on the base directory, released when dropped.
    pub fn lock_base(&self) -> io::Result<File> {
        lock_dir(&self.base)
    }

    /// `mkdir -p dir; echo PID > dir/cgroup.procs`. The leaf may exist
    /// already (another sandbox of the same base made it).
    pub fn enter(&self, kernel: &dyn Kernel) -> io::Result<()> {
        match kernel.mkdir(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("cannot create the cgroup {}: {e}", self.dir.display()))),
        }
        kernel.move_process(self.pid, &self.procs_file())
    }

    /// When this process is the only one in the leaf and no other sandbox
    /// cgroup is left beside it: turn the base's controllers off, move back
    /// into the base and remove the leaf. Otherwise nothing (the last one
    /// does it). Returns whether it handed the base back.
    pub fn release(&self, kernel: &dyn Kernel) -> io::Result<bool> {
        let _lock = self.lock_base()?;
        release_locked(&self.base, &self.dir, Some(self.pid), kernel)
    }
}

/// [`SupervisorLeaf::release`] under the lock; `pid` None: nobody is to move
/// back (gc, after the supervisor died), the leaf must be empty.
pub(super) fn release_locked(base: &Path, leaf: &Path, pid: Option<i32>, kernel: &dyn Kernel) -> io::Result<bool> {
    let members = read_pid_list(&leaf.join("cgroup.procs"));
    let only_us = match pid {
        Some(pid) => members == [pid],
        None => members.is_empty(),
    };
    if !only_us || !leaf.is_dir() || has_other_children(base, leaf)? {
        return Ok(false);
    }
    // The root hands controllers down whatever it holds: nothing to undo there.
    if !is_root_cgroup(base) {
        let enabled = std::fs::read_to_string(base.join("cgroup.subtree_control")).unwrap_or_default();
        let off: Vec<String> = enabled.split_whitespace().map(|c| format!("-{}", c.trim_start_matches('+'))).collect();
        if !off.is_empty() {
            write_value(&base.join("cgroup.subtree_control"), &off.join(" "))?;
        }
    }
    if let Some(pid) = pid {
        kernel.move_process(pid, &base.join("cgroup.procs"))?;
    }
    kernel.rmdir(leaf)?;
    Ok(true)
}

/// After a crash (the supervisor is gone, nobody is left in the leaf) and its
/// sandbox cgroup was removed: hand `base` back when its `supervisor` leaf
/// is empty and nothing else is left in it. Nothing when there is no leaf.
pub(super) fn tidy_base(base: &Path, kernel: &dyn Kernel) -> io::Result<bool> {
    let leaf = base.join(crate::cgroup::site::SUPERVISOR_LEAF);
    if !leaf.is_dir() {
        return Ok(false);
    }
    let _lock = lock_dir(base)?;
    release_locked(base, &leaf, None, kernel)
}

fn has_other_children(base: &Path, leaf: &Path) -> io::Result<bool> {
    for entry in std::fs::read_dir(base)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() && entry.path() != leaf {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lock_dir(dir: &Path) -> io::Result<File> {
    let file = File::open(dir).map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", dir.display())))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        let error = io::Error::last_os_error();
        return Err(io::Error::new(error.kind(), format!("cannot lock {}: {error}", dir.display())));
    }
    Ok(file)
}

/// For a process that spawns supervisors (`sandbox start`): on cgroup v2,
/// when it is alone in its cgroup, move it into the `supervisor` leaf first,
/// so that the supervisors are born there and their base can hand controllers
/// down. Nothing on v1 or where the sandbox could not get a base anyway.
/// The guard hands the base back when dropped, if nothing else is left there.
pub fn enter_supervisor_leaf(layout: &CgroupLayout, how: &Placing) -> Option<LeafGuard> {
    let CgroupLayout::V2 { unified } = layout else { return None };
    let site = v2_site(unified, how.parent.as_deref(), how.self_pid).ok()?;
    if site.kind != SiteKind::MoveSelf {
        return None;
    }
    let leaf = SupervisorLeaf::new(site.base.clone(), site.supervisor_leaf?, how.self_pid);
    let kernel = super::kernel::RealKernel;
    let lock = leaf.lock_base().ok()?;
    leaf.enter(&kernel).ok()?;
    drop(lock);
    Some(LeafGuard { leaf })
}

/// Hands the base back on drop (see [`enter_supervisor_leaf`]).
pub struct LeafGuard {
    leaf: SupervisorLeaf,
}

impl Drop for LeafGuard {
    fn drop(&mut self) {
        let _ = self.leaf.release(&super::kernel::RealKernel);
    }
}
