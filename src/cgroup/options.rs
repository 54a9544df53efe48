//! The command line's cgroup choices (`--no-limits`, `--cgroup-parent`), set
//! once by the CLI before a command runs and read where the cgroup is placed.
//! A process-wide setting rather than a parameter: it reaches `run`, `start`
//! (and the supervisors it spawns), `exec` and `lab start` alike without
//! changing their signatures.

use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupOptions {
    /// Run without the profile's [limits], on purpose.
    pub no_limits: bool,
    /// The prepared cgroup to create the sandbox's cgroups in.
    pub parent: Option<PathBuf>,
}

impl CgroupOptions {
    /// The same choices as command-line arguments, for the supervisors
    /// `sandbox start` spawns.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.no_limits {
            args.push("--no-limits".to_owned());
        }
        if let Some(parent) = &self.parent {
            args.extend(["--cgroup-parent".to_owned(), parent.display().to_string()]);
        }
        args
    }
}

static CHOSEN: OnceLock<CgroupOptions> = OnceLock::new();

/// Set by the CLI; later calls keep the first choice.
pub fn choose(options: CgroupOptions) {
    let _ = CHOSEN.set(options);
}

/// What the command line chose (the defaults when it said nothing).
pub fn current() -> CgroupOptions {
    CHOSEN.get().cloned().unwrap_or_default()
}
