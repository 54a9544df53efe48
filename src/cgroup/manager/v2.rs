//! cgroup v2: one sandbox cgroup in the unified hierarchy.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::files::{read_keyed, read_u64, write_value};
use super::group::Group;
use super::kernel::Kernel;
use super::{CPU_PERIOD_US, CgroupManager, Limits, Slot, Stats, Write, apply_writes, cpu_quota, has_control_file};
use crate::cgroup::{CgroupVersion, Limit};

pub struct V2Manager {
    group: Group,
    /// The sandbox's cgroup.
    dir: PathBuf,
    /// The tool's own cgroup, whose `cgroup.subtree_control` may need a controller.
    parent: PathBuf,
    slots: Vec<Slot>,
}

impl V2Manager {
    pub(super) fn new(dir: PathBuf, parent: PathBuf, slots: Vec<Slot>, kernel: Arc<dyn Kernel>) -> V2Manager {
        V2Manager { group: Group::new(vec![dir.clone()], kernel), dir, parent, slots }
    }

    /// `+memory +pids` for the controllers the parent does not hand down yet.
    fn enabling(&self) -> Option<Write> {
        let wanted: Vec<String> = self.slots.iter().filter(|s| s.needs_enabling).map(|s| format!("+{}", s.limit.controller())).collect();
        (!wanted.is_empty()).then(|| (self.parent.join("cgroup.subtree_control"), wanted.join(" ")))
    }

    fn writes_for(&self, limit: Limit, limits: &Limits) -> Vec<Write> {
        let file = |name: &str| self.dir.join(name);
        match limit {
            Limit::Memory => limits.memory.map_or_else(Vec::new, |bytes| {
                let mut writes = vec![(file("memory.max"), bytes.to_string())];
                // Without this the kernel swaps the sandbox out instead of
                // enforcing the limit; the file exists only with swap accounting.
                if self.has_control_file("memory.swap.max") {
                    writes.push((file("memory.swap.max"), "0".to_owned()));
                }
                writes
            }),
            Limit::Pids => limits.pids.map_or_else(Vec::new, |n| vec![(file("pids.max"), n.to_string())]),
            Limit::Cpu => {
                limits.cpu.and_then(cpu_quota).map_or_else(Vec::new, |quota| vec![(file("cpu.max"), format!("{quota} {CPU_PERIOD_US}"))])
            }
        }
    }

    fn has_control_file(&self, name: &str) -> bool {
        has_control_file(&self.dir, &self.parent, name)
    }
}

impl CgroupManager for V2Manager {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    fn planned_enabling(&self) -> Vec<Write> {
        self.enabling().into_iter().collect()
    }

    fn planned_writes(&self, limits: &Limits) -> Vec<Write> {
        self.slots.iter().flat_map(|slot| self.writes_for(slot.limit, limits)).collect()
    }

    fn dirs(&self) -> Vec<PathBuf> {
        self.group.dirs().to_vec()
    }

    fn adopt(&self) -> io::Result<()> {
        self.group.adopt_existing()
    }

    fn create(&self) -> io::Result<()> {
        self.group.create()?;
        // After mkdir, so that a refused (existing) directory leaves the parent
        // untouched. The child gets the controller's files at this write.
        if let Some((file, value)) = self.enabling()
            && let Err(error) = write_value(&file, &value)
        {
            let _ = self.group.remove();
            return Err(error);
        }
        Ok(())
    }

    fn apply(&self, limits: &Limits) -> io::Result<()> {
        apply_writes(&self.group, &self.slots, limits, &self.planned_writes(limits))
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
        self.group.remove()
    }

    fn stats(&self) -> Stats {
        let file = |name: &str| self.dir.join(name);
        Stats {
            memory_bytes: read_u64(&file("memory.current")),
            pids: read_u64(&file("pids.current")),
            oom_kills: read_keyed(&file("memory.events"), "oom_kill"),
            memory_limit_hits: read_keyed(&file("memory.events"), "max"),
        }
    }
}
