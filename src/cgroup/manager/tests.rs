//! The manager against fake cgroup trees in a temporary directory: plain
//! directories and files laid out the way the kernel shows them, and a fake
//! [`Kernel`] that fills a new cgroup with its control files, refuses rmdir
//! while processes are listed, and "kills" a pid by taking it out of every
//! `cgroup.procs`. No real process is ever signalled here.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::group::cgroup_tree;
use super::*;
use crate::cgroup::detect::layout_from;

const MIB: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------
// The fake kernel

type Files = Vec<(&'static str, &'static str)>;

struct FakeKernel {
    root: PathBuf,
    /// The files the kernel puts into a new cgroup, per hierarchy mount point.
    templates: Vec<(PathBuf, Files)>,
    alive: Mutex<BTreeSet<i32>>,
    /// Pids that ignore SIGKILL (a process stuck in the kernel).
    immortal: BTreeSet<i32>,
    killed: Mutex<Vec<i32>>,
}

impl FakeKernel {
    fn new(root: &Path, templates: Vec<(PathBuf, Files)>) -> FakeKernel {
        FakeKernel { root: root.to_path_buf(), templates, alive: Mutex::default(), immortal: BTreeSet::new(), killed: Mutex::default() }
    }

    fn killed(&self) -> BTreeSet<i32> {
        self.killed.lock().unwrap().iter().copied().collect()
    }

    /// The process exits: it leaves every cgroup.
    fn exit(&self, pid: i32) {
        self.alive.lock().unwrap().remove(&pid);
        for cgroup in cgroup_tree(&self.root).unwrap() {
            let procs = cgroup.join("cgroup.procs");
            if let Ok(text) = fs::read_to_string(&procs) {
                let kept: String = text.lines().filter(|l| l.trim() != pid.to_string()).map(|l| format!("{l}\n")).collect();
                fs::write(&procs, kept).unwrap();
            }
        }
    }
}

impl Kernel for FakeKernel {
    fn mkdir(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir(dir)?;
        let (_, files) = self.templates.iter().find(|(mount, _)| dir.starts_with(mount)).expect("a template for the mount");
        for (name, content) in files {
            fs::write(dir.join(name), content)?;
        }
        Ok(())
    }

    fn rmdir(&self, dir: &Path) -> io::Result<()> {
        if !dir.is_dir() {
            return Err(io::ErrorKind::NotFound.into());
        }
        let populated = fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|t| !t.trim().is_empty());
        let has_children = fs::read_dir(dir)?.flatten().any(|e| e.file_type().unwrap().is_dir());
        if populated || has_children {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        // cgroupfs drops the control files together with the directory.
        fs::remove_dir_all(dir)
    }

    fn move_process(&self, pid: i32, procs_file: &Path) -> io::Result<()> {
        // Out of every cgroup of the hierarchy, into this one.
        let mount = self.templates.iter().map(|(m, _)| m).find(|m| procs_file.starts_with(m)).expect("a mount");
        for cgroup in cgroup_tree(mount).unwrap() {
            let procs = cgroup.join("cgroup.procs");
            if let Ok(text) = fs::read_to_string(&procs) {
                let kept: String = text.lines().filter(|l| l.trim() != pid.to_string()).map(|l| format!("{l}\n")).collect();
                fs::write(&procs, kept).unwrap();
            }
        }
        let mut text = fs::read_to_string(procs_file)?;
        text.push_str(&format!("{pid}\n"));
        fs::write(procs_file, text)
    }

    fn kill_member(&self, pid: i32, procs_file: &Path) -> io::Result<()> {
        // Like the real kernel: a pid no longer listed is not ours to signal.
        if !super::files::read_pids(procs_file)?.contains(&pid) {
            return Ok(());
        }
        self.killed.lock().unwrap().push(pid);
        if !self.immortal.contains(&pid) {
            self.exit(pid);
        }
        Ok(())
    }

    fn is_alive(&self, pid: i32) -> bool {
        self.alive.lock().unwrap().contains(&pid)
    }

    fn pause(&self, _: Duration) {}
}

struct AllowAll;
impl AccessCheck for AllowAll {
    fn check_write(&self, _: &Path) -> Result<(), String> {
        Ok(())
    }
}

struct DenyAll;
impl AccessCheck for DenyAll {
    fn check_write(&self, path: &Path) -> Result<(), String> {
        Err(format!("{} is not writable (denied by the test)", path.display()))
    }
}

// ---------------------------------------------------------------------------
// Fake trees

/// Every file (with its content) and directory under `root`.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Option<String>> {
    let mut entries = BTreeMap::new();
    for dir in cgroup_tree(root).unwrap() {
        entries.insert(dir.clone(), None);
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_file() {
                entries.insert(entry.path(), Some(fs::read_to_string(entry.path()).unwrap()));
            }
        }
    }
    entries
}

/// The files whose content changed between two snapshots, with the new content.
fn changed_files(before: &BTreeMap<PathBuf, Option<String>>, after: &BTreeMap<PathBuf, Option<String>>) -> BTreeMap<PathBuf, String> {
    after
        .iter()
        .filter(|(path, content)| content.is_some() && before.get(*path) != Some(content))
        .map(|(path, content)| (path.clone(), content.clone().unwrap()))
        .collect()
}

fn outside<'a>(changes: &'a BTreeMap<PathBuf, String>, dirs: &[PathBuf]) -> Vec<&'a PathBuf> {
    changes.keys().filter(|p| !dirs.iter().any(|d| p.starts_with(d))).collect()
}

fn make_cgroup(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, content) in files {
        fs::write(dir.join(name), content).unwrap();
    }
}

fn writes(pairs: &[(&Path, &str)]) -> Vec<Write> {
    pairs.iter().map(|(p, v)| (p.to_path_buf(), (*v).to_owned())).collect()
}

const LIMITS: Limits = Limits { memory: Some(256 * MIB), pids: Some(64), cpu: Some(0.5) };

// --- cgroup v2 ---

const V2_MOUNTINFO: &str = "\
24 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
35 25 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
const V2_OWN: &str = "user.slice/user-1000.slice/user@1000.service/app.slice/lab.service";

fn v2_child_files(swap: bool, kill: bool) -> Files {
    let mut files = vec![
        ("cgroup.procs", ""),
        ("cgroup.type", "domain\n"),
        ("cgroup.events", "populated 0\nfrozen 0\n"),
        ("cgroup.subtree_control", ""),
        ("memory.max", "max\n"),
        ("memory.current", "0\n"),
        ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"),
        ("pids.max", "max\n"),
        ("pids.current", "0\n"),
        ("cpu.max", "max 100000\n"),
    ];
    if swap {
        files.push(("memory.swap.max", "max\n"));
    }
    if kill {
        files.push(("cgroup.kill", ""));
    }
    files
}

struct V2Tree {
    tmp: tempfile::TempDir,
    own: PathBuf,
    sibling: PathBuf,
    layout: CgroupLayout,
    kernel: Arc<FakeKernel>,
}

/// The tool's own v2 cgroup (with `controllers`, `subtree_control` and
/// `procs`), a sibling service that must stay untouched, and the layout.
fn v2_tree(controllers: &str, subtree_control: &str, procs: &str, swap: bool, kill: bool) -> V2Tree {
    let tmp = tempfile::tempdir().unwrap();
    let mount = tmp.path().join("sys/fs/cgroup");
    let own = mount.join(V2_OWN);
    let mut own_files = v2_child_files(swap, kill);
    own_files.retain(|(name, _)| !["cgroup.procs", "cgroup.subtree_control"].contains(name));
    own_files.extend([("cgroup.controllers", controllers), ("cgroup.subtree_control", subtree_control), ("cgroup.procs", procs)]);
    make_cgroup(&own, &own_files);
    let sibling = own.with_file_name("other.service");
    make_cgroup(&sibling, &[("cgroup.procs", "777\n"), ("memory.max", "max\n"), ("cgroup.kill", "")]);
    let layout = layout_from(V2_MOUNTINFO, &format!("0::/{V2_OWN}\n"), tmp.path());
    let kernel = Arc::new(FakeKernel::new(tmp.path(), vec![(mount, v2_child_files(swap, kill))]));
    V2Tree { tmp, own, sibling, layout, kernel }
}

fn delegated_v2() -> V2Tree {
    v2_tree("cpuset cpu io memory pids\n", "cpu memory pids\n", "", true, true)
}

fn v2_manager(tree: &V2Tree, name: &str, limits: &Limits) -> Box<dyn CgroupManager> {
    manager_with(&tree.layout, name, limits, &AllowAll, tree.kernel.clone()).unwrap()
}

#[test]
fn v2_writes_exactly_the_limit_files() {
    let tree = delegated_v2();
    let manager = v2_manager(&tree, "run-42-a", &LIMITS);
    let dir = tree.own.join("sandbox-run-42-a");
    assert_eq!(manager.version(), CgroupVersion::V2);
    assert_eq!(manager.dirs(), std::slice::from_ref(&dir));
    assert_eq!(manager.procs_files(), [dir.join("cgroup.procs")]);
    assert!(manager.planned_enabling().is_empty(), "everything is handed down already");
    let expected = writes(&[
        (&dir.join("memory.max"), "268435456"),
        (&dir.join("memory.swap.max"), "0"),
        (&dir.join("pids.max"), "64"),
        (&dir.join("cpu.max"), "50000 100000"),
    ]);
    assert_eq!(manager.planned_writes(&LIMITS), expected, "planned before create");

    let before = snapshot(tree.tmp.path());
    manager.create().unwrap();
    let created = snapshot(tree.tmp.path());
    assert!(outside(&changed_files(&before, &created), &manager.dirs()).is_empty(), "create wrote outside its cgroup");
    assert_eq!(manager.planned_writes(&LIMITS), expected, "planned after create");

    manager.apply(&LIMITS).unwrap();
    let applied = changed_files(&created, &snapshot(tree.tmp.path()));
    assert_eq!(applied, expected.into_iter().collect::<BTreeMap<_, _>>());
}

#[test]
fn v2_enables_only_the_missing_controllers_in_the_parent() {
    let tree = v2_tree("cpuset cpu io memory pids\n", "pids\n", "", true, true);
    let manager = v2_manager(&tree, "run-42", &LIMITS);
    let subtree_control = tree.own.join("cgroup.subtree_control");
    assert_eq!(manager.planned_enabling(), writes(&[(&subtree_control, "+memory +cpu")]));

    let before = snapshot(tree.tmp.path());
    manager.create().unwrap();
    let changes = changed_files(&before, &snapshot(tree.tmp.path()));
    assert_eq!(outside(&changes, &manager.dirs()), [&subtree_control]);
    assert_eq!(changes[&subtree_control], "+memory +cpu");
    // The parent is never "un-enabled": other children may rely on it.
    manager.remove().unwrap();
    assert_eq!(fs::read_to_string(&subtree_control).unwrap(), "+memory +cpu");
}

#[test]
fn v2_only_the_limits_asked_for_are_enabled_and_written() {
    let tree = v2_tree("cpu memory pids\n", "", "", true, true);
    let pids_only = Limits { pids: Some(10), ..Limits::default() };
    let manager = v2_manager(&tree, "run-42", &pids_only);
    assert_eq!(manager.planned_enabling(), writes(&[(&tree.own.join("cgroup.subtree_control"), "+pids")]));
    let dir = tree.own.join("sandbox-run-42");
    assert_eq!(manager.planned_writes(&pids_only), writes(&[(&dir.join("pids.max"), "10")]));
    // Limits the manager was not set up for are neither planned nor applied.
    assert_eq!(manager.planned_writes(&LIMITS), writes(&[(&dir.join("pids.max"), "64")]));
    manager.create().unwrap();
    let error = manager.apply(&LIMITS).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn v2_without_swap_accounting_writes_memory_max_only() {
    let tree = v2_tree("memory\n", "memory\n", "", false, true);
    let limits = Limits { memory: Some(64 * MIB), ..Limits::default() };
    let manager = v2_manager(&tree, "run-42", &limits);
    let dir = tree.own.join("sandbox-run-42");
    assert_eq!(manager.planned_writes(&limits), writes(&[(&dir.join("memory.max"), "67108864")]));
    manager.create().unwrap();
    manager.apply(&limits).unwrap();
    assert!(!dir.join("memory.swap.max").exists(), "a missing control file is never created");
}

#[test]
fn v2_a_parent_with_processes_is_refused_plainly_and_nothing_is_touched() {
    let tree = v2_tree("memory pids\n", "", "1234\n", true, true);
    let before = snapshot(tree.tmp.path());
    let limits = Limits { memory: Some(64 * MIB), pids: Some(16), cpu: None };
    let problems = manager_with(&tree.layout, "run-42", &limits, &AllowAll, tree.kernel.clone()).err().unwrap();
    assert_eq!(problems.len(), 2);
    for problem in &problems {
        assert_eq!(problem.kind, Some(ProblemKind::InternalProcesses));
        assert!(problem.fix.contains("systemd-run --scope -p Delegate=yes"), "{}", problem.fix);
        assert!(problem.to_string().contains(&format!("the {} limit cannot be applied", problem.limit)));
    }
    assert_eq!(snapshot(tree.tmp.path()), before);
}

/// The supervisor alone in its cgroup (pid 4242): into a leaf, and back.
fn v2_alone_manager(tree: &V2Tree, name: &str) -> Box<dyn CgroupManager> {
    let how = Placing { parent: None, self_pid: 4242, tracking_only: false };
    manager_in(&tree.layout, name, &LIMITS, &AllowAll, tree.kernel.clone(), &how).unwrap()
}

#[test]
fn v2_alone_in_its_cgroup_the_supervisor_moves_into_a_leaf_and_hands_the_base_back() {
    let tree = v2_tree("cpu memory pids\n", "", "4242\n", true, true);
    let before = snapshot(tree.tmp.path());
    let manager = v2_alone_manager(&tree, "run-4242-a");
    let leaf = tree.own.join("supervisor");
    let expected_leaf = SupervisorLeaf { base: tree.own.clone(), dir: leaf.clone(), pid: 4242 };
    assert_eq!(manager.supervisor_leaf(), Some(&expected_leaf));
    assert_eq!(manager.clone_into_cgroup(), Some(tree.own.join("sandbox-run-4242-a")));
    assert_eq!(manager.planned_enabling(), writes(&[(&tree.own.join("cgroup.subtree_control"), "+memory +pids +cpu")]));

    manager.create().unwrap();
    assert_eq!(fs::read_to_string(leaf.join("cgroup.procs")).unwrap(), "4242\n", "the supervisor, and only it, moved");
    assert_eq!(fs::read_to_string(tree.own.join("cgroup.procs")).unwrap(), "");
    assert!(tree.own.join("sandbox-run-4242-a").is_dir());
    assert_eq!(fs::read_to_string(tree.own.join("cgroup.subtree_control")).unwrap(), "+memory +pids +cpu");

    // A second sandbox of the same base shares the leaf; the first to end leaves it.
    let second = v2_alone_manager(&tree, "run-4242-b");
    second.create().unwrap();
    manager.remove().unwrap();
    assert!(leaf.is_dir(), "another sandbox is still in the base");
    second.remove().unwrap();
    assert!(!leaf.exists(), "the last one removes the leaf");
    assert_eq!(fs::read_to_string(tree.own.join("cgroup.procs")).unwrap(), "4242\n", "and moves back");
    assert_eq!(fs::read_to_string(tree.own.join("cgroup.subtree_control")).unwrap(), "-memory -pids -cpu", "controllers off again");
    let changed = changed_files(&before, &snapshot(tree.tmp.path()));
    assert_eq!(changed.keys().collect::<Vec<_>>(), [&tree.own.join("cgroup.subtree_control")], "nothing else differs");
}

#[test]
fn v2_after_a_crash_the_dead_supervisors_leaf_is_tidied_with_its_sandbox() {
    let tree = v2_tree("cpu memory pids\n", "", "4242\n", true, true);
    let manager = v2_alone_manager(&tree, "inst-a");
    manager.create().unwrap();
    tree.kernel.exit(4242); // kill -9 of the supervisor; the sandbox's cgroup stays
    let adopted = attach::attach_dirs_in(&tree.layout, "inst-a", &manager.dirs(), tree.kernel.clone()).unwrap();
    adopted.kill_all().unwrap();
    adopted.remove().unwrap();
    assert!(!tree.own.join("sandbox-inst-a").exists());
    assert!(!tree.own.join("supervisor").exists());
    assert_eq!(fs::read_to_string(tree.own.join("cgroup.subtree_control")).unwrap(), "-memory -pids -cpu");
}

#[test]
fn v2_missing_controller_and_no_delegation_are_refused_with_a_fix() {
    let tree = v2_tree("pids\n", "pids\n", "", true, true);
    let problems = manager_with(&tree.layout, "run-42", &LIMITS, &AllowAll, tree.kernel.clone()).err().expect("memory and cpu missing");
    let kinds: Vec<_> = problems.iter().map(|p| (p.limit, p.kind)).collect();
    assert_eq!(kinds, [(Limit::Memory, Some(ProblemKind::ControllerMissing)), (Limit::Cpu, Some(ProblemKind::ControllerMissing))]);

    let tree = delegated_v2();
    let problems = manager_with(&tree.layout, "run-42", &LIMITS, &DenyAll, tree.kernel.clone()).err().unwrap();
    assert_eq!(problems.len(), 3);
    assert!(problems.iter().all(|p| p.kind == Some(ProblemKind::NotWritable) && p.fix.contains("run as root")));
}

#[test]
fn v2_kill_all_uses_cgroup_kill_and_signals_only_our_members() {
    let tree = delegated_v2();
    let manager = v2_manager(&tree, "run-42", &LIMITS);
    manager.create().unwrap();
    let dir = tree.own.join("sandbox-run-42");
    fs::write(dir.join("cgroup.procs"), "4242\n4243\n").unwrap();
    // A cgroup the sandbox made inside its own: its processes are ours too.
    make_cgroup(&dir.join("inner"), &[("cgroup.procs", "4244\n")]);

    manager.kill_all().unwrap();
    assert_eq!(fs::read_to_string(dir.join("cgroup.kill")).unwrap(), "1");
    assert_eq!(tree.kernel.killed(), BTreeSet::from([4242, 4243, 4244]));
    assert_eq!(fs::read_to_string(tree.sibling.join("cgroup.procs")).unwrap(), "777\n");
    assert_eq!(fs::read_to_string(tree.sibling.join("cgroup.kill")).unwrap(), "");
    assert_eq!(fs::read_to_string(tree.own.join("cgroup.procs")).unwrap(), "", "the parent's processes are not ours");

    manager.remove().unwrap();
    assert!(!dir.exists());
}

#[test]
fn kill_all_without_cgroup_kill_repeats_until_empty_and_gives_up_on_survivors() {
    let mut tree = v2_tree("cpu memory pids\n", "cpu memory pids\n", "", true, false);
    Arc::get_mut(&mut tree.kernel).unwrap().immortal.insert(5000);
    let manager = v2_manager(&tree, "run-42", &LIMITS);
    manager.create().unwrap();
    let procs = tree.own.join("sandbox-run-42/cgroup.procs");
    fs::write(&procs, "4242\n").unwrap();
    manager.kill_all().unwrap();
    assert_eq!(tree.kernel.killed(), BTreeSet::from([4242]));

    fs::write(&procs, "5000\n").unwrap();
    let error = manager.kill_all().unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    assert!(error.to_string().contains("5000"), "{error}");
    // Still populated: rmdir stays busy, and remove says so instead of hanging.
    assert_eq!(manager.remove().unwrap_err().kind(), io::ErrorKind::ResourceBusy);
}

#[test]
fn v2_stats_read_current_values_and_oom_kills() {
    let tree = delegated_v2();
    let manager = v2_manager(&tree, "run-42", &LIMITS);
    manager.create().unwrap();
    let dir = tree.own.join("sandbox-run-42");
    fs::write(dir.join("memory.current"), "1048576\n").unwrap();
    fs::write(dir.join("pids.current"), "3\n").unwrap();
    fs::write(dir.join("memory.events"), "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\noom_group_kill 0\n").unwrap();
    fs::write(dir.join("pids.events"), "max 68\n").unwrap();
    let stats = manager.stats();
    let expected =
        Stats { memory_bytes: Some(MIB), pids: Some(3), oom_kills: Some(2), memory_limit_hits: Some(7), pids_limit_hits: Some(68) };
    assert_eq!(stats, expected);
    assert_eq!(
        stats.notes(),
        [
            "the memory limit was reached: the kernel's OOM killer ended 2 process(es) in the sandbox",
            "the pids limit was reached: 68 fork(s) in the sandbox were refused"
        ]
    );
    manager.remove().unwrap();
    assert_eq!(manager.stats(), Stats::default(), "a removed cgroup reports nothing, not zeros");
}

#[test]
fn without_limits_the_cgroup_only_holds_the_processes() {
    // No controller delegated at all: holding processes needs none.
    let tree = v2_tree("\n", "", "", true, true);
    let manager = v2_manager(&tree, "run-42", &Limits::default());
    assert_eq!(manager.dirs(), [tree.own.join("sandbox-run-42")]);
    assert!(manager.planned_enabling().is_empty());
    assert!(manager.planned_writes(&Limits::default()).is_empty());

    let tree = v1_tree(true);
    let manager = v1_manager(&tree, "run-42", &Limits::default());
    assert_eq!(manager.dirs(), [tree.pids_own.join("sandbox-run-42")]);
    assert!(manager.planned_writes(&Limits::default()).is_empty());
}

// --- cgroup v1 ---

/// CentOS 7: cpu and cpuacct co-mounted, the tool in different cgroups per hierarchy.
const V1_MOUNTINFO: &str = "\
25 24 0:21 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:8 - cgroup cgroup rw,seclabel,xattr,name=systemd
27 24 0:23 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,seclabel,memory
28 24 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,seclabel,cpuacct,cpu
29 24 0:25 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,seclabel,pids
30 24 0:26 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,seclabel,net_prio,net_cls
";
const V1_PROC_CGROUP: &str = "\
11:pids:/user.slice/user-1000.slice/session-3.scope
10:net_prio,net_cls:/
9:cpuacct,cpu:/user.slice
8:memory:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-3.scope
";

const V1_UNLIMITED: &str = "9223372036854771712\n";

fn v1_memory_files(memsw: bool) -> Files {
    let mut files = vec![
        ("cgroup.procs", ""),
        ("tasks", ""),
        ("memory.limit_in_bytes", V1_UNLIMITED),
        ("memory.usage_in_bytes", "0\n"),
        ("memory.failcnt", "0\n"),
        ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"),
    ];
    if memsw {
        files.push(("memory.memsw.limit_in_bytes", V1_UNLIMITED));
    }
    files
}

fn v1_cpu_files() -> Files {
    vec![("cgroup.procs", ""), ("tasks", ""), ("cpu.cfs_period_us", "100000\n"), ("cpu.cfs_quota_us", "-1\n"), ("cpuacct.usage", "0\n")]
}

fn v1_pids_files() -> Files {
    vec![("cgroup.procs", ""), ("tasks", ""), ("pids.max", "max\n"), ("pids.current", "0\n")]
}

struct V1Tree {
    tmp: tempfile::TempDir,
    memory_own: PathBuf,
    cpu_own: PathBuf,
    pids_own: PathBuf,
    layout: CgroupLayout,
    kernel: Arc<FakeKernel>,
}

fn v1_tree(memsw: bool) -> V1Tree {
    let tmp = tempfile::tempdir().unwrap();
    let mount = |name: &str| tmp.path().join("sys/fs/cgroup").join(name);
    let memory_own = mount("memory").join("user.slice");
    let cpu_own = mount("cpu,cpuacct").join("user.slice");
    let pids_own = mount("pids").join("user.slice/user-1000.slice/session-3.scope");
    let systemd_own = mount("systemd").join("user.slice/user-1000.slice/session-3.scope");
    make_cgroup(&memory_own, &v1_memory_files(memsw));
    make_cgroup(&cpu_own, &v1_cpu_files());
    make_cgroup(&pids_own, &[("cgroup.procs", "1000\n1001\n"), ("tasks", "1000\n1001\n"), ("pids.max", "max\n")]);
    make_cgroup(&systemd_own, &[("cgroup.procs", "1000\n1001\n"), ("tasks", "1000\n1001\n")]);
    make_cgroup(&mount("net_cls,net_prio"), &[("cgroup.procs", "1\n"), ("net_cls.classid", "0\n")]);
    // Another tool's cgroup next to ours.
    make_cgroup(&memory_own.join("other"), &[("cgroup.procs", "888\n"), ("memory.limit_in_bytes", V1_UNLIMITED)]);
    let layout = layout_from(V1_MOUNTINFO, V1_PROC_CGROUP, tmp.path());
    let templates = vec![
        (mount("memory"), v1_memory_files(memsw)),
        (mount("cpu,cpuacct"), v1_cpu_files()),
        (mount("pids"), v1_pids_files()),
        (mount("systemd"), vec![("cgroup.procs", "")]),
    ];
    let kernel = Arc::new(FakeKernel::new(tmp.path(), templates));
    V1Tree { tmp, memory_own, cpu_own, pids_own, layout, kernel }
}

fn v1_manager(tree: &V1Tree, name: &str, limits: &Limits) -> Box<dyn CgroupManager> {
    manager_with(&tree.layout, name, limits, &AllowAll, tree.kernel.clone()).unwrap()
}

#[test]
fn v1_writes_each_limit_in_its_own_hierarchy() {
    let tree = v1_tree(true);
    let manager = v1_manager(&tree, "run-42", &LIMITS);
    let memory = tree.memory_own.join("sandbox-run-42");
    let pids = tree.pids_own.join("sandbox-run-42");
    let cpu = tree.cpu_own.join("sandbox-run-42");
    assert_eq!(manager.version(), CgroupVersion::V1);
    assert_eq!(manager.dirs(), [memory.clone(), pids.clone(), cpu.clone()]);
    assert!(manager.planned_enabling().is_empty());
    let expected = writes(&[
        (&memory.join("memory.limit_in_bytes"), "268435456"),
        (&memory.join("memory.memsw.limit_in_bytes"), "268435456"),
        (&pids.join("pids.max"), "64"),
        (&cpu.join("cpu.cfs_period_us"), "100000"),
        (&cpu.join("cpu.cfs_quota_us"), "50000"),
    ]);
    assert_eq!(manager.planned_writes(&LIMITS), expected);

    let before = snapshot(tree.tmp.path());
    manager.create().unwrap();
    let created = snapshot(tree.tmp.path());
    let new_dirs: Vec<&PathBuf> = created.keys().filter(|p| !before.contains_key(*p) && created[*p].is_none()).collect();
    assert_eq!(new_dirs, [&cpu, &memory, &pids], "one directory per hierarchy, nowhere else (sorted)");
    assert!(outside(&changed_files(&before, &created), &manager.dirs()).is_empty());

    manager.apply(&LIMITS).unwrap();
    let applied = changed_files(&created, &snapshot(tree.tmp.path()));
    assert_eq!(applied, expected.into_iter().collect::<BTreeMap<_, _>>());
}

#[test]
fn v1_without_swap_accounting_writes_no_memsw() {
    let tree = v1_tree(false);
    let limits = Limits { memory: Some(64 * MIB), ..Limits::default() };
    let manager = v1_manager(&tree, "run-42", &limits);
    let memory = tree.memory_own.join("sandbox-run-42");
    assert_eq!(manager.dirs(), std::slice::from_ref(&memory), "only the hierarchies of the limits asked for");
    assert_eq!(manager.planned_writes(&limits), writes(&[(&memory.join("memory.limit_in_bytes"), "67108864")]));
}

#[test]
fn cpu_quota_is_a_share_of_the_100ms_period() {
    assert_eq!(cpu_quota(0.5), Some(50_000));
    assert_eq!(cpu_quota(2.0), Some(200_000));
    assert_eq!(cpu_quota(0.01), Some(1_000));
    assert_eq!(cpu_quota(0.25 / 3.0), Some(8_333));
    for bad in [0.0, -1.0, 0.005, f64::NAN, f64::INFINITY] {
        assert_eq!(cpu_quota(bad), None, "{bad}");
    }
}

#[test]
fn values_the_kernel_would_refuse_are_refused_first() {
    let tree = v1_tree(true);
    let bad = Limits { memory: Some(0), pids: Some(0), cpu: Some(0.001) };
    let problems = manager_with(&tree.layout, "run-42", &bad, &AllowAll, tree.kernel.clone()).err().unwrap();
    let limits: Vec<Limit> = problems.iter().map(|p| p.limit).collect();
    assert_eq!(limits, [Limit::Memory, Limit::Pids, Limit::Cpu]);
    assert!(problems.iter().all(|p| p.kind.is_none()));
    assert!(problems[2].message.contains("0.01 cores"), "{}", problems[2].message);
}

#[test]
fn create_refuses_an_existing_directory_and_undoes_its_own_mkdirs() {
    let tree = v1_tree(true);
    // Another run's cgroup in the pids hierarchy, with a process in it.
    let existing = tree.pids_own.join("sandbox-run-42");
    make_cgroup(&existing, &[("cgroup.procs", "999\n"), ("pids.max", "5\n")]);
    let before = snapshot(tree.tmp.path());
    let manager = v1_manager(&tree, "run-42", &LIMITS);
    let error = manager.create().unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
    assert!(error.to_string().contains("never reused"), "{error}");
    // The memory directory made before the failure is gone; the other run's is intact.
    assert_eq!(snapshot(tree.tmp.path()), before);

    let tree = delegated_v2();
    let manager = v2_manager(&tree, "run-42", &LIMITS);
    manager.create().unwrap();
    manager.add_process(4242).unwrap();
    let again = v2_manager(&tree, "run-42", &LIMITS);
    assert_eq!(again.create().unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    // A manager whose create was refused owns nothing: no write, kill or rmdir.
    assert_eq!(again.apply(&LIMITS).unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(again.add_process(4243).unwrap_err().kind(), io::ErrorKind::NotFound);
    again.kill_all().unwrap();
    again.remove().unwrap();
    assert!(tree.kernel.killed().is_empty());
    assert!(tree.own.join("sandbox-run-42").is_dir(), "the refused create removed nothing");
    assert_eq!(fs::read_to_string(tree.own.join("sandbox-run-42/cgroup.procs")).unwrap(), "4242\n");
}

#[test]
fn add_process_writes_the_pid_into_every_hierarchy() {
    let tree = v1_tree(true);
    let manager = v1_manager(&tree, "run-42", &LIMITS);
    manager.create().unwrap();
    manager.add_process(4242).unwrap();
    for procs in manager.procs_files() {
        assert_eq!(fs::read_to_string(&procs).unwrap(), "4242\n", "{}", procs.display());
    }
    // The tool's own cgroups are not written to.
    assert_eq!(fs::read_to_string(tree.pids_own.join("cgroup.procs")).unwrap(), "1000\n1001\n");
    assert_eq!(manager.add_process(0).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    assert_eq!(manager.add_process(-1).unwrap_err().kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn v1_kill_all_then_remove_leaves_the_tree_as_it_was() {
    let tree = v1_tree(true);
    let before = snapshot(tree.tmp.path());
    let manager = v1_manager(&tree, "run-42", &LIMITS);
    manager.create().unwrap();
    manager.apply(&LIMITS).unwrap();
    for procs in manager.procs_files() {
        fs::write(procs, "4242\n4243\n").unwrap();
    }
    // Busy while processes are in it.
    assert_eq!(manager.remove().unwrap_err().kind(), io::ErrorKind::ResourceBusy);
    manager.kill_all().unwrap();
    assert_eq!(tree.kernel.killed(), BTreeSet::from([4242, 4243]));
    manager.remove().unwrap();
    assert_eq!(snapshot(tree.tmp.path()), before, "only our directories were made and removed");
    manager.remove().unwrap();
}

#[test]
fn v1_stats_come_from_each_controllers_hierarchy() {
    let tree = v1_tree(true);
    let manager = v1_manager(&tree, "run-42", &LIMITS);
    manager.create().unwrap();
    let memory = tree.memory_own.join("sandbox-run-42");
    fs::write(memory.join("memory.usage_in_bytes"), "2097152\n").unwrap();
    fs::write(memory.join("memory.failcnt"), "12\n").unwrap();
    fs::write(memory.join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n").unwrap();
    fs::write(tree.pids_own.join("sandbox-run-42/pids.current"), "5\n").unwrap();
    fs::write(tree.pids_own.join("sandbox-run-42/pids.events"), "max 0\n").unwrap();
    let expected =
        Stats { memory_bytes: Some(2 * MIB), pids: Some(5), oom_kills: Some(1), memory_limit_hits: Some(12), pids_limit_hits: Some(0) };
    assert_eq!(manager.stats(), expected);
    assert_eq!(manager.stats().notes().len(), 1, "no note for a limit never hit");
}

#[test]
fn limits_split_across_v1_and_v2_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mountinfo = "\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    make_cgroup(
        &tmp.path().join("sys/fs/cgroup/unified/lab"),
        &[("cgroup.controllers", "pids\n"), ("cgroup.subtree_control", "pids\n"), ("cgroup.procs", "")],
    );
    let layout = layout_from(mountinfo, "4:memory:/\n0::/lab\n", tmp.path());
    let kernel = Arc::new(FakeKernel::new(tmp.path(), Vec::new()));
    let limits = Limits { memory: Some(64 * MIB), pids: Some(16), cpu: None };
    let problems = manager_with(&layout, "run-42", &limits, &AllowAll, kernel).err().unwrap();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].message.contains("memory would be limited through cgroup v1 and pids through cgroup v2"));
}

#[test]
fn a_name_with_a_slash_is_refused() {
    let tree = v1_tree(true);
    let problems = manager_with(&tree.layout, "../x", &LIMITS, &AllowAll, tree.kernel.clone()).err().unwrap();
    assert!(problems.iter().all(|p| p.kind == Some(ProblemKind::InvalidName)));
}

// --- leftovers ---

#[test]
fn owner_pid_reads_run_names_only() {
    assert_eq!(owner_pid("sandbox-run-123"), Some(123));
    assert_eq!(owner_pid("sandbox-run-123-x7f"), Some(123));
    for not_a_run in
        ["sandbox-lab1", "sandbox-run-", "sandbox-run-x", "sandbox-run-12x", "sandbox-run-0", "run-123", "other-run-1", "sandbox-run--1"]
    {
        assert_eq!(owner_pid(not_a_run), None, "{not_a_run}");
    }
    let name = run_name("ab12");
    assert_eq!(owner_pid(&dir_name(&name)), Some(std::process::id() as i32));
    assert_eq!(run_name(""), format!("run-{}", std::process::id()));
}

#[test]
fn leftovers_are_dead_owners_sandbox_cgroups_only() {
    let tree = v1_tree(true);
    let memory = &tree.memory_own;
    let pids = &tree.pids_own;
    // Dead owner, empty: a leftover in both hierarchies it used.
    make_cgroup(&memory.join("sandbox-run-100"), &[("cgroup.procs", "")]);
    make_cgroup(&pids.join("sandbox-run-100"), &[("cgroup.procs", "")]);
    // Dead owner, a process still running inside: a leftover, and that process goes.
    make_cgroup(&pids.join("sandbox-run-300-abc"), &[("cgroup.procs", "555\n")]);
    // Live owner: another run in progress.
    make_cgroup(&memory.join("sandbox-run-200-x"), &[("cgroup.procs", "201\n")]);
    // Not ours to judge: an instance, another tool, a bad name, a plain file.
    make_cgroup(&memory.join("sandbox-lab1"), &[("cgroup.procs", "")]);
    make_cgroup(&memory.join("other-run-100"), &[("cgroup.procs", "")]);
    make_cgroup(&memory.join("sandbox-run-x"), &[("cgroup.procs", "")]);
    fs::write(pids.join("sandbox-run-101"), "").unwrap();
    // A dead owner's cgroup outside the tool's own cgroups is not looked at.
    let elsewhere = tree.tmp.path().join("sys/fs/cgroup/net_cls,net_prio/sandbox-run-100");
    make_cgroup(&elsewhere, &[("cgroup.procs", "")]);
    tree.kernel.alive.lock().unwrap().extend([200, 201, 555, 888, 1000, 1001]);

    let found = leftovers_with(&tree.layout, tree.kernel.as_ref());
    let expected = vec![memory.join("sandbox-run-100"), pids.join("sandbox-run-100"), pids.join("sandbox-run-300-abc")];
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(found, sorted);

    let before = snapshot(tree.tmp.path());
    let removed = remove_leftovers_with(&tree.layout, tree.kernel.clone()).unwrap();
    assert_eq!(removed, sorted);
    assert_eq!(tree.kernel.killed(), BTreeSet::from([555]));
    let after = snapshot(tree.tmp.path());
    let gone: Vec<&PathBuf> = before.keys().filter(|p| !after.contains_key(*p)).collect();
    assert!(gone.iter().all(|p| expected.iter().any(|dir| p.starts_with(dir))), "{gone:?}");
    assert!(changed_files(&before, &after).is_empty(), "nothing else was written");
    assert!(elsewhere.is_dir());
    assert!(memory.join("sandbox-run-200-x").is_dir());
    assert!(leftovers_with(&tree.layout, tree.kernel.as_ref()).is_empty());
}

#[test]
fn leftovers_on_v2_use_cgroup_kill_inside_the_leftover_only() {
    let tree = delegated_v2();
    let leftover = tree.own.join("sandbox-run-100");
    make_cgroup(&leftover, &[("cgroup.procs", "555\n"), ("cgroup.kill", "")]);
    let removed = remove_leftovers_with(&tree.layout, tree.kernel.clone()).unwrap();
    assert_eq!(removed, [leftover]);
    assert_eq!(tree.kernel.killed(), BTreeSet::from([555]));
    assert_eq!(fs::read_to_string(tree.sibling.join("cgroup.kill")).unwrap(), "");
    assert_eq!(fs::read_to_string(tree.sibling.join("cgroup.procs")).unwrap(), "777\n");
}
