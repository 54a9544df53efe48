//! cgroup v1: one sandbox cgroup per hierarchy that carries a limit (cpu and
//! cpuacct co-mounted count once).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::files::{read_keyed, read_u64};
use super::group::Group;
use super::kernel::Kernel;
use super::{CPU_PERIOD_US, CgroupManager, Limits, Slot, Stats, Write, apply_writes, cpu_quota};
use crate::cgroup::{CgroupVersion, Limit};

pub struct V1Manager {
    group: Group,
    slots: Vec<Slot>,
}

impl V1Manager {
    pub(super) fn new(dirs: Vec<PathBuf>, slots: Vec<Slot>, kernel: Arc<dyn Kernel>) -> V1Manager {
        V1Manager { group: Group::new(dirs, kernel), slots }
    }

    fn writes_for(slot: &Slot, limits: &Limits) -> Vec<Write> {
        let file = |name: &str| slot.dir.join(name);
        match slot.limit {
            Limit::Memory => limits.memory.map_or_else(Vec::new, |bytes| {
                // memsw (memory + swap) must stay >= the memory limit, so the
                // memory limit goes first. On a fresh cgroup both start
                // unlimited, so this order always works; the file exists only
                // with swap accounting, and without it swap is not limited.
                let mut writes = vec![(file("memory.limit_in_bytes"), bytes.to_string())];
                if slot.has_control_file("memory.memsw.limit_in_bytes") {
                    writes.push((file("memory.memsw.limit_in_bytes"), bytes.to_string()));
                }
                writes
            }),
            Limit::Pids => limits.pids.map_or_else(Vec::new, |n| vec![(file("pids.max"), n.to_string())]),
            Limit::Cpu => limits.cpu.and_then(cpu_quota).map_or_else(Vec::new, |quota| {
                // The period first: the quota is checked against it.
                vec![(file("cpu.cfs_period_us"), CPU_PERIOD_US.to_string()), (file("cpu.cfs_quota_us"), quota.to_string())]
            }),
        }
    }

    /// `name` in whichever of our directories has it: each control file lives
    /// only in its controller's hierarchy.
    fn read_stat<T>(&self, name: &str, read: impl Fn(&std::path::Path) -> Option<T>) -> Option<T> {
        self.group.dirs().iter().find_map(|dir| read(&dir.join(name)))
    }
}

impl CgroupManager for V1Manager {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    /// v1 has no `cgroup.subtree_control`: a hierarchy's controllers are in
    /// every cgroup of it.
    fn planned_enabling(&self) -> Vec<Write> {
        Vec::new()
    }

    fn planned_writes(&self, limits: &Limits) -> Vec<Write> {
        self.slots.iter().flat_map(|slot| Self::writes_for(slot, limits)).collect()
    }

    fn dirs(&self) -> Vec<PathBuf> {
        self.group.dirs().to_vec()
    }

    fn adopt(&self) -> io::Result<()> {
        self.group.adopt_existing()
    }

    fn create(&self) -> io::Result<()> {
        self.group.create()
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
        Stats {
            memory_bytes: self.read_stat("memory.usage_in_bytes", read_u64),
            pids: self.read_stat("pids.current", read_u64),
            // `oom_kill` in memory.oom_control since Linux 4.13.
            oom_kills: self.read_stat("memory.oom_control", |p| read_keyed(p, "oom_kill")),
            memory_limit_hits: self.read_stat("memory.failcnt", read_u64),
        }
    }
}
