//! Reading and writing cgroup control files.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Writes `value` to an existing control file in one `write(2)`: the kernel
/// parses each write on its own. Never creates the file: a missing file means
/// a missing controller, which must be an error rather than a stray new file.
pub fn write_value(path: &Path, value: &str) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).truncate(true).open(path).map_err(|e| context(e, path, value))?;
    file.write_all(value.as_bytes()).map_err(|e| context(e, path, value))
}

fn context(error: io::Error, path: &Path, value: &str) -> io::Error {
    io::Error::new(error.kind(), format!("cannot write `{value}` to {}: {error}", path.display()))
}

/// The pids in a `cgroup.procs` file (one a line).
pub fn read_pids(path: &Path) -> io::Result<Vec<i32>> {
    let text = fs::read_to_string(path)?;
    // A pid of a process outside this pid namespace reads as 0: not addressable, skipped.
    Ok(text.lines().filter_map(|line| line.trim().parse().ok()).filter(|&pid| pid > 0).collect())
}

/// A file holding one number (`memory.current`, `pids.current`).
pub fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat keyed file (`memory.events`: `oom_kill 3`).
pub fn read_keyed(path: &Path, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        if name == key { value.trim().parse().ok() } else { None }
    })
}
