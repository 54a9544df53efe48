//! cgroup v1: one sandbox cgroup per hierarchy that carries a limit (cpu and
//! cpuacct co-mounted count once).

use std::path::{Path, PathBuf};

use super::files::{read_keyed, read_u64};
use super::{Backend, CPU_PERIOD_US, Limits, Slot, Stats, Write, cpu_quota};
use crate::cgroup::{CgroupVersion, Limit};

pub struct V1;

impl Backend for V1 {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    /// v1 has no `cgroup.subtree_control`: a hierarchy's controllers are in
    /// every cgroup of it.
    fn enabling(&self, _: &[Slot]) -> Option<Write> {
        None
    }

    fn writes(&self, slot: &Slot, limits: &Limits) -> Vec<Write> {
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

    fn stats(&self, dirs: &[PathBuf]) -> Stats {
        // Each control file lives only in its controller's hierarchy.
        let stat = |name: &str, read: &dyn Fn(&Path) -> Option<u64>| dirs.iter().find_map(|dir| read(&dir.join(name)));
        Stats {
            memory_bytes: stat("memory.usage_in_bytes", &read_u64),
            pids: stat("pids.current", &read_u64),
            // `oom_kill` in memory.oom_control since Linux 4.13.
            oom_kills: stat("memory.oom_control", &|p| read_keyed(p, "oom_kill")),
            memory_limit_hits: stat("memory.failcnt", &read_u64),
            pids_limit_hits: stat("pids.events", &|p| read_keyed(p, "max")),
        }
    }
}
