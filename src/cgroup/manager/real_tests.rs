//! The manager against the real kernel: sandbox cgroups created under the
//! cgroups this test process runs in (never anywhere else), one child process
//! of this test moved in, limits read back, the child killed, the cgroups
//! removed. A guard undoes everything on every path, panics included; it only
//! ever kills the child this test forked and only removes cgroups this test
//! created.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, geteuid};

use super::files::read_pids;
use super::*;
use crate::cgroup::{detect, place_limits};

const MIB: u64 = 1024 * 1024;
const LIMITS: Limits = Limits { memory: Some(64 * MIB), pids: Some(16), cpu: Some(0.5) };

/// Prints why a test does not run. `required`: the skip is the test
/// environment's fault (not root), so under `CI=true` it fails instead.
fn skip(reason: &str, required: bool) {
    if required && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{reason} (CI=true: a skipped test is a failure)");
    }
    eprintln!("skipped: {reason}");
}

/// A name no other run uses, owned by this test process (so a crash of the
/// test leaves a cgroup that `sandbox gc` recognizes as a leftover).
fn unique_name(tag: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    run_name(&format!("test-{tag}-{nanos}"))
}

/// Undoes the test on every path: the forked child, then our cgroups.
struct Cleanup<'a> {
    manager: &'a dyn CgroupManager,
    child: Option<Pid>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let _ = kill(child, Signal::SIGKILL);
            let _ = waitpid(child, None);
        }
        // Both do nothing unless this manager's create succeeded.
        let _ = self.manager.kill_all();
        let _ = self.manager.remove();
    }
}

/// A child that only waits for a signal. After fork in a threaded test
/// process the child may only make async-signal-safe calls: pause and _exit.
fn fork_waiting_child() -> Pid {
    // SAFETY: the child calls nothing but pause(2) and _exit(2).
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => unsafe {
            libc::pause();
            libc::_exit(0)
        },
        ForkResult::Parent { child } => child,
    }
}

/// The lines `/proc/<pid>/cgroup` shows for a process in our cgroups:
/// `<controllers>:<path>` per v1 hierarchy, `:<path>` for v2 (after `<id>:`).
fn expected_memberships(layout: &CgroupLayout, manager: &dyn CgroupManager) -> Vec<String> {
    let mut lines = Vec::new();
    for dir in manager.dirs() {
        let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let parent = dir.parent().unwrap();
        let v1 = layout.v1_hierarchies().into_iter().find(|h| h.own_path.as_deref() == Some(parent));
        let (controllers, cgroup_path) = match v1 {
            Some(h) => (h.controllers.join(","), h.cgroup_path.clone()),
            None => (String::new(), layout.unified().unwrap().cgroup_path.clone()),
        };
        lines.push(format!("{controllers}:{}", join_cgroup_path(&cgroup_path, &name)));
    }
    lines
}

fn join_cgroup_path(base: &str, name: &str) -> String {
    format!("{}/{name}", base.trim_end_matches('/'))
}

/// create -> apply -> add_process -> kill_all -> remove, checked at each step.
fn exercise(layout: &CgroupLayout, name: &str, manager: &dyn CgroupManager) {
    manager.create().expect("create");
    let mut cleanup = Cleanup { manager, child: None };
    manager.apply(&LIMITS).expect("apply");
    for (file, value) in manager.planned_writes(&LIMITS) {
        let read = fs::read_to_string(&file).unwrap();
        assert_eq!(read.trim(), value, "{}", file.display());
    }

    let child = fork_waiting_child();
    cleanup.child = Some(child);
    manager.add_process(child.as_raw()).expect("add_process");
    let proc_cgroup = fs::read_to_string(format!("/proc/{child}/cgroup")).unwrap();
    for expected in expected_memberships(layout, manager) {
        assert!(
            proc_cgroup.lines().any(|line| line.split_once(':').is_some_and(|(_, rest)| rest == expected)),
            "/proc/{child}/cgroup lacks {expected}:\n{proc_cgroup}"
        );
    }
    for procs in manager.procs_files() {
        assert_eq!(read_pids(&procs).unwrap(), [child.as_raw()], "{}", procs.display());
    }
    assert_eq!(manager.stats().pids, Some(1));
    // Our run is alive, so it is no leftover.
    let left = leftovers(layout);
    assert!(manager.dirs().iter().all(|dir| !left.contains(dir)), "{left:?}");

    // Another manager with the same name is refused and then touches nothing.
    let twin = manager_for(layout, name, &LIMITS).unwrap();
    assert_eq!(twin.create().unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    twin.kill_all().unwrap();
    twin.remove().unwrap();
    assert!(manager.dirs().iter().all(|dir| dir.is_dir()));
    assert!(nix::sys::signal::kill(child, None).is_ok(), "the twin killed our child");

    manager.kill_all().expect("kill_all");
    let status = waitpid(child, None).unwrap();
    cleanup.child = None;
    assert!(matches!(status, WaitStatus::Signaled(_, Signal::SIGKILL, _)), "{status:?}");
    manager.remove().expect("remove");
    for dir in manager.dirs() {
        assert!(!Path::new(&dir).exists(), "{} still exists", dir.display());
    }
}

#[test]
fn real_cgroup_v1_limits_child_kill_and_remove() {
    if !geteuid().is_root() {
        return skip("the real cgroup v1 test needs root (v1 has no safe delegation to users)", true);
    }
    let layout = detect().expect("detect");
    // Needs v1 hierarchies for memory, pids and cpu: a machine with only v2
    // lacks them, which is no fault of the tool, so this skip passes under CI.
    let placements = place_limits(&layout, "sandbox-probe");
    if let Some(p) = placements.iter().find(|p| !p.usable() || p.backend != Some(CgroupVersion::V1)) {
        let why = p.problem.as_ref().map_or("it is on cgroup v2".to_owned(), |problem| problem.message.clone());
        return skip(&format!("no usable cgroup v1 hierarchy for {} here: {why}", p.limit), false);
    }
    let name = unique_name("v1");
    let manager = manager_for(&layout, &name, &LIMITS).unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(manager.version(), CgroupVersion::V1);
    exercise(&layout, &name, manager.as_ref());
}

#[test]
fn real_cgroup_v2_limits_child_kill_and_remove() {
    let layout = detect().expect("detect");
    let name = unique_name("v2");
    // Runs wherever the machine gives this process a v2 cgroup with memory,
    // pids and cpu delegated (as root or not). Without that the machine, not
    // the tool, lacks the feature, so the test skips even under CI=true.
    let manager = match manager_for(&layout, &name, &LIMITS) {
        Ok(manager) if manager.version() == CgroupVersion::V2 => manager,
        Ok(_) => return skip("memory, pids and cpu are on cgroup v1 here, not v2", false),
        Err(problems) => {
            let reasons: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return skip(&format!("no delegated cgroup v2 for these limits here: {}", reasons.join("; ")), false);
        }
    };
    exercise(&layout, &name, manager.as_ref());
}
