//! What the host knows about an instance that a student cannot write: the
//! counters of its cgroup, the processes of its PID namespace, the mounts of
//! its mount namespace, its writable layer against the image, and the record
//! of the commands `sandbox exec` ran in it. Read as root on the host, so
//! every read is bounded and none follows a link the student made.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};

use crate::cgroup::{CgroupManager, CgroupVersion};

/// Kernel files and argv are short; this bounds each read.
const MAX_READ: u64 = 256 * 1024;

fn read_bounded(path: &Path, limit: u64) -> io::Result<String> {
    let file = fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)?;
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

// ---------------------------------------------------------------------------
// Cgroup counters

/// A counter of the instance's cgroup, named as lab.toml names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Counter {
    /// Processes the OOM killer killed (v2 memory.events oom_kill, v1 memory.oom_control oom_kill).
    OomKills,
    /// Times memory use hit the limit (v2 memory.events max, v1 memory.failcnt).
    MemoryLimitHits,
    /// Forks refused by the pids limit (pids.events max, both versions).
    PidsLimitHits,
    /// Periods in which the cpu quota ran out (cpu.stat nr_throttled, both versions).
    CpuThrottled,
    /// Seconds of cpu time used (v2 cpu.stat usage_usec, v1 cpuacct.usage).
    CpuSeconds,
}

impl Counter {
    pub const ALL: [Counter; 5] =
        [Counter::OomKills, Counter::MemoryLimitHits, Counter::PidsLimitHits, Counter::CpuThrottled, Counter::CpuSeconds];

    /// The file and the key in it (None: the file is one number), and a scale.
    fn source(self, version: CgroupVersion) -> (&'static str, Option<&'static str>, f64) {
        match (self, version) {
            (Counter::OomKills, CgroupVersion::V2) => ("memory.events", Some("oom_kill"), 1.0),
            (Counter::OomKills, CgroupVersion::V1) => ("memory.oom_control", Some("oom_kill"), 1.0),
            (Counter::MemoryLimitHits, CgroupVersion::V2) => ("memory.events", Some("max"), 1.0),
            (Counter::MemoryLimitHits, CgroupVersion::V1) => ("memory.failcnt", None, 1.0),
            (Counter::PidsLimitHits, _) => ("pids.events", Some("max"), 1.0),
            (Counter::CpuThrottled, _) => ("cpu.stat", Some("nr_throttled"), 1.0),
            (Counter::CpuSeconds, CgroupVersion::V2) => ("cpu.stat", Some("usage_usec"), 1e-6),
            (Counter::CpuSeconds, CgroupVersion::V1) => ("cpuacct.usage", None, 1e-9),
        }
    }

    /// Read from the cgroup's directories (one per v1 hierarchy, or the v2 one).
    pub fn read(self, version: CgroupVersion, dirs: &[PathBuf]) -> Option<f64> {
        let (file, key, scale) = self.source(version);
        let text = dirs.iter().find_map(|dir| read_bounded(&dir.join(file), MAX_READ).ok())?;
        let value: f64 = match key {
            None => text.trim().parse().ok()?,
            Some(key) => text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())?,
        };
        Some(value * scale)
    }
}

/// The counters of one cgroup lifetime of the instance (it gets a new cgroup
/// each time it starts), and their totals over every lifetime seen, kept in
/// `<instance>/lab-counters.json` (root's, 0600) so that stopping the instance
/// does not erase the proof that the OOM killer struck.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CounterRecord {
    /// Per lifetime (PID 1's pid and start time): the last values read.
    runs: BTreeMap<String, BTreeMap<Counter, f64>>,
    /// What the tool's own commands inside (the checks, placing the lab's
    /// files) moved: never the student's work.
    #[serde(default)]
    tool: ToolWork,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ToolWork {
    moved: BTreeMap<Counter, f64>,
    commands: u64,
}

/// How many ordinary commands a counter must stand out from before it proves
/// anything: a student's session of about this many commands, none of them the work.
const ORDINARY_COMMANDS: f64 = 20.0;

impl Counter {
    /// CPU counters move with any work in the instance, starting a shell
    /// included (on a slow machine, or under an emulator, that alone can use
    /// up half a core for a period); the others move only when a limit is met.
    fn moved_by_any_work(self) -> bool {
        matches!(self, Counter::CpuThrottled | Counter::CpuSeconds)
    }
}

/// What the instance's cgroup counted, as evidence of the student's work.
#[derive(Debug, Default, Clone)]
pub struct Counted {
    /// Over every lifetime, less what the tool's own commands moved.
    pub totals: BTreeMap<Counter, f64>,
    /// What [`ORDINARY_COMMANDS`] commands move on this machine (measured on
    /// the tool's own): a CPU counter proves the work only beyond it.
    pub floor: BTreeMap<Counter, f64>,
}

/// The counters now, raw.
pub fn read_now(version: CgroupVersion, dirs: &[PathBuf]) -> BTreeMap<Counter, f64> {
    Counter::ALL.iter().filter_map(|c| Some((*c, c.read(version, dirs)?))).collect()
}

fn load_record(path: &Path) -> CounterRecord {
    read_bounded(path, MAX_READ).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

/// The counters of the instance now, added to those of its earlier runs.
pub fn counters(instance_dir: &Path, run: &str, version: CgroupVersion, dirs: &[PathBuf]) -> Counted {
    let path = instance_dir.join("lab-counters.json");
    let mut record = load_record(&path);
    record.runs.insert(run.to_string(), read_now(version, dirs));
    let _ = write_private(&path, serde_json::to_vec(&record).unwrap_or_default().as_slice(), false);
    let mut counted = Counted::default();
    for values in record.runs.values() {
        for (counter, value) in values {
            *counted.totals.entry(*counter).or_insert(0.0) += value;
        }
    }
    for (counter, moved) in &record.tool.moved {
        if let Some(total) = counted.totals.get_mut(counter) {
            *total = (*total - moved).max(0.0);
        }
        if record.tool.commands > 0 {
            counted.floor.insert(*counter, moved / record.tool.commands as f64 * ORDINARY_COMMANDS);
        }
    }
    counted
}

/// Adds what the tool's own `commands` inside the instance moved (the CPU
/// counters from `before` to `after`), so they never count as the student's.
pub fn record_tool_work(instance_dir: &Path, before: &BTreeMap<Counter, f64>, after: &BTreeMap<Counter, f64>, commands: u64) {
    if commands == 0 {
        return;
    }
    let path = instance_dir.join("lab-counters.json");
    let mut record = load_record(&path);
    for (counter, now) in after.iter().filter(|(c, _)| c.moved_by_any_work()) {
        let moved = (now - before.get(counter).copied().unwrap_or(*now)).max(0.0);
        *record.tool.moved.entry(*counter).or_insert(0.0) += moved;
    }
    record.tool.commands += commands;
    let _ = write_private(&path, serde_json::to_vec(&record).unwrap_or_default().as_slice(), false);
}

/// Write (or append to) a file only root may read: created 0600, never through a link.
fn write_private(path: &Path, bytes: &[u8], append: bool) -> io::Result<()> {
    if append {
        let mut file =
            fs::OpenOptions::new().create(true).append(true).mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path)?;
        return file.write_all(bytes);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// What `sandbox exec` ran

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecRecord {
    /// Seconds since the epoch.
    pub time: u64,
    pub argv: Vec<String>,
    /// Who asked, when it was not a person: `lab check` for its own checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// Set by `lab check` on the `sandbox exec` it runs, so its checks are told
/// apart from what the student ran.
pub const EXEC_BY: &str = "SANDBOX_EXEC_BY";

const EXEC_LOG: &str = "execs.log";

/// Called by `sandbox exec` before it joins the instance: one JSON line in
/// `<instance>/execs.log`, created 0600 by root outside the instance's root,
/// so nothing inside can reach or edit it. (An empty argv is the profile's
/// default command.)
pub fn note_exec(instance_dir: &Path, argv: &[String]) -> io::Result<()> {
    let by = std::env::var(EXEC_BY).ok().filter(|b| b == "lab check");
    let record = ExecRecord { time: crate::instance::now(), argv: argv.to_vec(), by };
    let mut line = serde_json::to_vec(&record).map_err(io::Error::other)?;
    line.push(b'\n');
    write_private(&instance_dir.join(EXEC_LOG), &line, true)
}

/// The last records of `sandbox exec` into the instance (at most the last 256 KiB).
pub fn execs(instance_dir: &Path) -> Vec<ExecRecord> {
    let path = instance_dir.join(EXEC_LOG);
    let Ok(file) = fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path) else { return Vec::new() };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut file = file;
    let _ = io::Seek::seek(&mut file, io::SeekFrom::Start(len.saturating_sub(MAX_READ)));
    let mut text = String::new();
    let _ = file.take(MAX_READ).read_to_string(&mut text);
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

// ---------------------------------------------------------------------------
// Processes of the instance's PID namespace

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Process {
    /// The pid on the host.
    pub pid: i32,
    pub ppid: i32,
    /// R, S, Z, ...
    pub state: char,
    pub argv: Vec<String>,
}

/// State, parent and name (comm) from /proc/PID/stat.
fn stat_fields(pid: i32) -> Option<(char, i32, String)> {
    let stat = read_bounded(Path::new(&format!("/proc/{pid}/stat")), 4096).ok()?;
    let name = stat.get(stat.find('(')? + 1..stat.rfind(')')?)?.to_string();
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid, name))
}

fn namespace(pid: i32, kind: &str) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok()
}

/// Every process in the PID namespace of `init` (the instance's PID 1), as the
/// host's /proc shows them: the kernel's view, which no file inside changes.
pub fn processes(init: i32) -> Vec<Process> {
    let Some(ns) = namespace(init, "pid") else { return Vec::new() };
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        if namespace(pid, "pid").as_ref() != Some(&ns) {
            continue;
        }
        let Some((state, ppid, name)) = stat_fields(pid) else { continue };
        let cmdline = read_bounded(Path::new(&format!("/proc/{pid}/cmdline")), 4096).unwrap_or_default();
        let mut argv: Vec<String> = cmdline.split('\0').filter(|a| !a.is_empty()).map(String::from).collect();
        // A zombie has no command line left, only its name.
        if argv.is_empty() {
            argv.push(name);
        }
        found.push(Process { pid, ppid, state, argv });
    }
    found.sort_by_key(|p| p.pid);
    found
}

// ---------------------------------------------------------------------------
// Kernel facts for placeholders: `{kernel.NAME}` in a check

/// Facts about the instance, read from the kernel on the host. Checks compare a
/// student's answer with them (`{kernel.root_mount_id}`), so the truth never
/// comes from inside.
pub fn facts(init: Option<i32>, upper: &Path, version: Option<CgroupVersion>) -> BTreeMap<String, String> {
    let mut facts = BTreeMap::new();
    facts.insert("kernel.upperdir".into(), upper.display().to_string());
    if let Some(version) = version {
        facts.insert(
            "kernel.cgroup_version".into(),
            match version {
                CgroupVersion::V1 => "v1",
                CgroupVersion::V2 => "v2",
            }
            .into(),
        );
    }
    let Some(init) = init else { return facts };
    for kind in ["pid", "mnt", "net", "ipc", "uts", "user", "cgroup"] {
        if let Some(inode) = namespace(init, kind).and_then(|l| l.to_string_lossy().split(['[', ']']).nth(1).map(String::from)) {
            facts.insert(format!("kernel.ns_{kind}"), inode);
        }
    }
    if let Ok(mountinfo) = read_bounded(Path::new(&format!("/proc/{init}/mountinfo")), 1 << 20) {
        let root = mountinfo.lines().rfind(|l| l.split(' ').nth(4) == Some("/"));
        if let Some(id) = root.and_then(|l| l.split(' ').next()) {
            facts.insert("kernel.root_mount_id".into(), id.into());
        }
        let shared = mountinfo.lines().filter(|l| l.split(" - ").next().is_some_and(|f| f.contains(" shared:"))).count();
        facts.insert("kernel.mounts".into(), mountinfo.lines().count().to_string());
        facts.insert("kernel.shared_mounts".into(), shared.to_string());
    }
    if let Ok(map) = read_bounded(Path::new(&format!("/proc/{init}/uid_map")), 4096) {
        let first: Vec<i64> = map.split_whitespace().take(2).filter_map(|w| w.parse().ok()).collect();
        if let [inside, outside] = first[..] {
            facts.insert("kernel.host_root_uid".into(), (outside - inside).to_string());
        }
    }
    facts
}

/// The names [`facts`] may give, for validating lab files.
pub const FACTS: &[&str] = &[
    "kernel.upperdir",
    "kernel.cgroup_version",
    "kernel.ns_pid",
    "kernel.ns_mnt",
    "kernel.ns_net",
    "kernel.ns_ipc",
    "kernel.ns_uts",
    "kernel.ns_user",
    "kernel.ns_cgroup",
    "kernel.root_mount_id",
    "kernel.mounts",
    "kernel.shared_mounts",
    "kernel.host_root_uid",
];

// ---------------------------------------------------------------------------
// The writable layer against the image

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerState {
    /// Only in the upper layer.
    Added,
    /// In both: copied up and (maybe) changed.
    Changed,
    /// A whiteout in the upper layer hides the image's file.
    Deleted,
    /// Not in the upper layer.
    Untouched,
}

/// An entry's metadata beneath `root`, never following a symlink (the parents
/// are opened with openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS).
fn lstat_beneath(root: &Path, inside: &str) -> Option<nix::sys::stat::FileStat> {
    let relative = Path::new(inside.trim_start_matches('/'));
    let root_fd: OwnedFd = nix::fcntl::open(root, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).ok()?;
    let parent = relative.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = match parent {
        Some(parent) => {
            let how = OpenHow::new()
                .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            openat2(root_fd.as_fd(), parent, how).ok()?
        }
        None => root_fd,
    };
    let name = relative.file_name()?;
    nix::sys::stat::fstatat(&dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).ok()
}

/// What the instance's layer did to `inside` (an absolute path inside).
pub fn layer_state(upper: &Path, lower: &Path, inside: &str) -> LayerState {
    let Some(up) = lstat_beneath(upper, inside) else { return LayerState::Untouched };
    let whiteout = (up.st_mode & libc::S_IFMT) == libc::S_IFCHR && up.st_rdev == 0;
    let in_lower = lstat_beneath(lower, inside).is_some();
    match (whiteout, in_lower) {
        (true, _) => LayerState::Deleted,
        (false, true) => LayerState::Changed,
        (false, false) => LayerState::Added,
    }
}

/// The version and directories of a cgroup manager, for [`counters`].
pub fn cgroup_of(manager: &dyn CgroupManager) -> (CgroupVersion, Vec<PathBuf>) {
    (manager.version(), manager.dirs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_per_version() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("memory.events"), "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n").unwrap();
        fs::write(dir.path().join("pids.events"), "max 3\n").unwrap();
        fs::write(dir.path().join("cpu.stat"), "usage_usec 2500000\nnr_periods 40\nnr_throttled 17\nthrottled_usec 9000\n").unwrap();
        let dirs = [dir.path().to_path_buf()];
        assert_eq!(Counter::OomKills.read(CgroupVersion::V2, &dirs), Some(1.0));
        assert_eq!(Counter::MemoryLimitHits.read(CgroupVersion::V2, &dirs), Some(12.0));
        assert_eq!(Counter::PidsLimitHits.read(CgroupVersion::V2, &dirs), Some(3.0));
        assert_eq!(Counter::CpuThrottled.read(CgroupVersion::V2, &dirs), Some(17.0));
        assert_eq!(Counter::CpuSeconds.read(CgroupVersion::V2, &dirs), Some(2.5));
        let v1 = tempfile::tempdir().unwrap();
        fs::write(v1.path().join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n").unwrap();
        fs::write(v1.path().join("memory.failcnt"), "40\n").unwrap();
        fs::write(v1.path().join("cpuacct.usage"), "1500000000\n").unwrap();
        let dirs = [PathBuf::from("/nonexistent"), v1.path().to_path_buf()];
        assert_eq!(Counter::OomKills.read(CgroupVersion::V1, &dirs), Some(2.0));
        assert_eq!(Counter::MemoryLimitHits.read(CgroupVersion::V1, &dirs), Some(40.0));
        assert_eq!(Counter::CpuSeconds.read(CgroupVersion::V1, &dirs), Some(1.5));
        assert_eq!(Counter::PidsLimitHits.read(CgroupVersion::V1, &dirs), None);
    }

    #[test]
    fn counters_of_earlier_runs_are_kept() {
        let instance = tempfile::tempdir().unwrap();
        let cg = tempfile::tempdir().unwrap();
        fs::write(cg.path().join("pids.events"), "max 3\n").unwrap();
        let dirs = [cg.path().to_path_buf()];
        assert_eq!(counters(instance.path(), "1-100", CgroupVersion::V2, &dirs).totals[&Counter::PidsLimitHits], 3.0);
        fs::write(cg.path().join("pids.events"), "max 0\n").unwrap();
        assert_eq!(counters(instance.path(), "2-200", CgroupVersion::V2, &dirs).totals[&Counter::PidsLimitHits], 3.0);
        fs::write(cg.path().join("pids.events"), "max 1\n").unwrap();
        assert_eq!(counters(instance.path(), "2-200", CgroupVersion::V2, &dirs).totals[&Counter::PidsLimitHits], 4.0);
    }

    /// What the tool's own commands moved is not the student's, and a CPU
    /// counter must stand out from what twenty such commands move.
    #[test]
    fn the_tool_s_own_work_is_not_evidence() {
        let instance = tempfile::tempdir().unwrap();
        let cg = tempfile::tempdir().unwrap();
        let stat = |throttled: u32| fs::write(cg.path().join("cpu.stat"), format!("usage_usec 0\nnr_throttled {throttled}\n")).unwrap();
        let dirs = [cg.path().to_path_buf()];
        stat(10);
        let before = read_now(CgroupVersion::V2, &dirs);
        stat(40); // the checks' own eight commands, on a slow machine
        record_tool_work(instance.path(), &before, &read_now(CgroupVersion::V2, &dirs), 8);
        stat(45); // and the student's five
        let counted = counters(instance.path(), "1-100", CgroupVersion::V2, &dirs);
        assert_eq!(counted.totals[&Counter::CpuThrottled], 15.0, "45 counted, 30 of them the tool's");
        assert_eq!(counted.floor[&Counter::CpuThrottled], 75.0, "twenty commands at 30 / 8 each");
        assert!(!counted.floor.contains_key(&Counter::PidsLimitHits), "only CPU counters move with any work");
    }

    #[test]
    fn exec_records_are_appended_and_private() {
        let instance = tempfile::tempdir().unwrap();
        note_exec(instance.path(), &["/bin/bash".into(), "-c".into(), "x\ny".into()]).unwrap();
        note_exec(instance.path(), &[]).unwrap();
        let records = execs(instance.path());
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].argv, ["/bin/bash", "-c", "x\ny"]);
        let mode = std::os::unix::fs::MetadataExt::mode(&fs::metadata(instance.path().join(EXEC_LOG)).unwrap());
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_layer_is_read_without_following_links() {
        let upper = tempfile::tempdir().unwrap();
        let lower = tempfile::tempdir().unwrap();
        fs::create_dir_all(lower.path().join("home/student")).unwrap();
        fs::write(lower.path().join("home/student/config.txt"), "a").unwrap();
        fs::write(lower.path().join("home/student/notes.txt"), "a").unwrap();
        fs::create_dir_all(upper.path().join("home/student")).unwrap();
        fs::write(upper.path().join("home/student/config.txt"), "b").unwrap();
        fs::write(upper.path().join("home/student/new.txt"), "c").unwrap();
        std::os::unix::fs::symlink("/etc", upper.path().join("home/student/etc")).unwrap();
        assert_eq!(layer_state(upper.path(), lower.path(), "/home/student/config.txt"), LayerState::Changed);
        assert_eq!(layer_state(upper.path(), lower.path(), "/home/student/new.txt"), LayerState::Added);
        assert_eq!(layer_state(upper.path(), lower.path(), "/home/student/notes.txt"), LayerState::Untouched);
        // /etc/passwd exists on the host, but not through the student's link.
        assert_eq!(layer_state(upper.path(), lower.path(), "/home/student/etc/passwd"), LayerState::Untouched);
        if nix::unistd::geteuid().is_root() {
            let gone = upper.path().join("home/student/notes.txt");
            nix::sys::stat::mknod(&gone, nix::sys::stat::SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
            assert_eq!(layer_state(upper.path(), lower.path(), "/home/student/notes.txt"), LayerState::Deleted);
        }
    }

    #[test]
    fn processes_of_this_namespace_include_this_one() {
        let me = std::process::id() as i32;
        let found = processes(me);
        assert!(found.iter().any(|p| p.pid == me && !p.argv.is_empty()), "{found:?}");
        let facts = facts(Some(me), Path::new("/u"), Some(CgroupVersion::V1));
        assert!(facts.contains_key("kernel.root_mount_id") && facts.contains_key("kernel.ns_ipc"), "{facts:?}");
        assert!(facts.keys().all(|k| FACTS.contains(&k.as_str())), "{facts:?}");
    }
}
