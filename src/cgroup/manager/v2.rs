//! cgroup v2: one sandbox cgroup in the unified hierarchy.

use std::path::PathBuf;

use super::files::{read_keyed, read_u64};
use super::{Backend, CPU_PERIOD_US, Limits, Slot, Stats, Write, cpu_quota, has_control_file};
use crate::cgroup::{CgroupVersion, Limit};

pub struct V2 {
    /// The sandbox's cgroup.
    pub dir: PathBuf,
    /// The base cgroup, whose `cgroup.subtree_control` may need a controller.
    pub parent: PathBuf,
}

impl Backend for V2 {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    /// `+memory +pids` for the controllers the parent does not hand down yet.
    fn enabling(&self, slots: &[Slot]) -> Option<Write> {
        let wanted: Vec<String> = slots.iter().filter(|s| s.needs_enabling).map(|s| format!("+{}", s.limit.controller())).collect();
        (!wanted.is_empty()).then(|| (self.parent.join("cgroup.subtree_control"), wanted.join(" ")))
    }

    fn writes(&self, slot: &Slot, limits: &Limits) -> Vec<Write> {
        let file = |name: &str| self.dir.join(name);
        match slot.limit {
            Limit::Memory => limits.memory.map_or_else(Vec::new, |bytes| {
                let mut writes = vec![(file("memory.max"), bytes.to_string())];
                // Without this the kernel swaps the sandbox out instead of
                // enforcing the limit; the file exists only with swap accounting.
                if has_control_file(&self.dir, &self.parent, "memory.swap.max") {
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

    fn stats(&self, dirs: &[PathBuf]) -> Stats {
        let Some(dir) = dirs.first() else { return Stats::default() };
        let file = |name: &str| dir.join(name);
        Stats {
            memory_bytes: read_u64(&file("memory.current")),
            pids: read_u64(&file("pids.current")),
            oom_kills: read_keyed(&file("memory.events"), "oom_kill"),
            memory_limit_hits: read_keyed(&file("memory.events"), "max"),
            pids_limit_hits: read_keyed(&file("pids.events"), "max"),
        }
    }
}
