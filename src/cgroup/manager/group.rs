//! What v1 and v2 do alike: a set of sandbox cgroup directories (one per v1
//! hierarchy, or one v2 cgroup) that are created, joined, emptied and removed
//! together.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::files::{read_pids, write_value};
use super::kernel::Kernel;

/// Rounds of "list members, SIGKILL them, wait": forks racing the kill are
/// caught by the next round; 200 rounds of 25 ms give up after about 5 s.
const KILL_ROUNDS: u32 = 200;
const KILL_PAUSE: Duration = Duration::from_millis(25);
/// rmdir says EBUSY until the last process has left; about 2 s of retries.
const RMDIR_ROUNDS: u32 = 100;
const RMDIR_PAUSE: Duration = Duration::from_millis(20);

pub struct Group {
    dirs: Vec<PathBuf>,
    kernel: Arc<dyn Kernel>,
    /// Set once `create` made every directory. Until then the directories may
    /// be another run's (create refused them), so nothing is written, killed
    /// or removed in them.
    owned: AtomicBool,
}

impl Group {
    /// Directories still to be created.
    pub fn new(dirs: Vec<PathBuf>, kernel: Arc<dyn Kernel>) -> Group {
        Group { dirs, kernel, owned: AtomicBool::new(false) }
    }

    /// Existing directories taken over (a leftover whose owner is gone).
    pub fn adopt(dirs: Vec<PathBuf>, kernel: Arc<dyn Kernel>) -> Group {
        Group { dirs, kernel, owned: AtomicBool::new(true) }
    }

    /// Take over directories a named instance made earlier (its supervisor
    /// created them): they are this tool's by their name. Fails when one is missing.
    pub fn adopt_existing(&self) -> io::Result<()> {
        if let Some(missing) = self.dirs.iter().find(|d| !d.is_dir()) {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("{} does not exist", missing.display())));
        }
        self.owned.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn owned(&self) -> bool {
        self.owned.load(Ordering::SeqCst)
    }

    /// For writes into the directories: refused before a successful `create`.
    pub fn check_owned(&self) -> io::Result<()> {
        if self.owned() {
            return Ok(());
        }
        let message = "the sandbox cgroup has not been created by this run (create() first)";
        Err(io::Error::new(io::ErrorKind::NotFound, message))
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|dir| dir.join("cgroup.procs")).collect()
    }

    /// Creates every directory, or none: on failure the ones made by this call
    /// are removed again (and nothing that existed before is touched).
    pub fn create(&self) -> io::Result<()> {
        let mut created: Vec<&Path> = Vec::new();
        for dir in &self.dirs {
            if let Err(error) = self.kernel.mkdir(dir) {
                for made in created.iter().rev() {
                    let _ = self.kernel.rmdir(made);
                }
                return Err(mkdir_error(dir, error));
            }
            created.push(dir);
        }
        self.owned.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Moves `pid` into every directory (v1: each hierarchy separately).
    pub fn add_process(&self, pid: i32) -> io::Result<()> {
        if pid <= 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("not a process id: {pid}")));
        }
        self.check_owned()?;
        self.procs_files().iter().try_for_each(|procs| self.kernel.move_process(pid, procs))
    }

    /// Kills every process in the directories (and in cgroups nested in them)
    /// and waits until they are empty. Only pids read from these cgroups'
    /// `cgroup.procs` are signalled, and nothing before a successful `create`.
    pub fn kill_all(&self) -> io::Result<()> {
        if !self.owned() {
            return Ok(());
        }
        self.request_kernel_kill();
        let mut last_error = None;
        for _ in 0..KILL_ROUNDS {
            let members = self.members()?;
            if members.is_empty() {
                return Ok(());
            }
            for (pid, procs_file) in &members {
                if let Err(error) = self.kernel.kill_member(*pid, procs_file) {
                    last_error = Some(error);
                }
            }
            self.kernel.pause(KILL_PAUSE);
        }
        Err(still_populated(&self.members()?, last_error))
    }

    /// v2's `cgroup.kill` (Linux 5.14) kills the whole subtree at once, forks in
    /// flight included. The member loop in `kill_all` still runs afterwards: it
    /// waits for the exits and covers kernels without the file (and v1).
    fn request_kernel_kill(&self) {
        for dir in &self.dirs {
            let kill_file = dir.join("cgroup.kill");
            if kill_file.is_file() {
                let _ = write_value(&kill_file, "1");
            }
        }
    }

    /// (pid, the cgroup.procs that lists it) for every process in the group.
    fn members(&self) -> io::Result<Vec<(i32, PathBuf)>> {
        let mut members = Vec::new();
        for dir in &self.dirs {
            for cgroup in cgroup_tree(dir)? {
                let procs = cgroup.join("cgroup.procs");
                match read_pids(&procs) {
                    Ok(pids) => members.extend(pids.into_iter().map(|pid| (pid, procs.clone()))),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(members)
    }

    /// Removes every directory, nested cgroups first. Missing ones count as
    /// removed, so a second call is harmless; before a successful `create` it
    /// removes nothing (a refused directory is another run's).
    pub fn remove(&self) -> io::Result<()> {
        if !self.owned() {
            return Ok(());
        }
        let mut first_error = None;
        for dir in self.dirs.iter().rev() {
            if let Err(error) = self.remove_tree(dir) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn remove_tree(&self, dir: &Path) -> io::Result<()> {
        // Deepest first: a cgroup with child cgroups cannot be removed.
        for cgroup in cgroup_tree(dir)?.iter().rev() {
            self.rmdir_when_empty(cgroup)?;
        }
        Ok(())
    }

    fn rmdir_when_empty(&self, dir: &Path) -> io::Result<()> {
        for _ in 0..RMDIR_ROUNDS {
            match self.kernel.rmdir(dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => self.kernel.pause(RMDIR_PAUSE),
                Err(e) => return Err(io::Error::new(e.kind(), format!("cannot remove {}: {e}", dir.display()))),
            }
        }
        let message = format!("cannot remove {}: still busy (processes still in it?)", dir.display());
        Err(io::Error::new(io::ErrorKind::ResourceBusy, message))
    }
}

/// `dir` and every directory below it, parents before children. A directory
/// that does not exist gives an empty list. Symlinks are not followed (cgroupfs
/// has none; a fake tree must not lead the walk elsewhere).
pub fn cgroup_tree(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut tree = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = match fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                pending.push(entry.path());
            }
        }
        tree.push(current);
    }
    // Parents were pushed before their children, so this order holds.
    Ok(tree)
}

fn mkdir_error(dir: &Path, error: io::Error) -> io::Error {
    let message = if error.kind() == io::ErrorKind::AlreadyExists {
        format!(
            "{} already exists: a sandbox cgroup is never reused (a leftover of a crashed run is removed by `sandbox gc`)",
            dir.display()
        )
    } else {
        format!("cannot create the cgroup {}: {error}", dir.display())
    };
    io::Error::new(error.kind(), message)
}

fn still_populated(members: &[(i32, PathBuf)], last_error: Option<io::Error>) -> io::Error {
    let pids: Vec<String> = members.iter().map(|(pid, _)| pid.to_string()).collect();
    let cause = last_error.map(|e| format!(" (last error: {e})")).unwrap_or_default();
    let message = format!("processes {} still in the sandbox cgroup after SIGKILL{cause}", pids.join(", "));
    io::Error::new(io::ErrorKind::TimedOut, message)
}
