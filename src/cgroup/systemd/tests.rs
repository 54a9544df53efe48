//! The decision (systemd or not) on fake trees, the scope's name and
//! properties, and the exact D-Bus signature of the call.

use std::fs;
use std::path::{Path, PathBuf};

use zbus::zvariant::{DynamicType, Value};

use super::*;
use crate::cgroup::detect::layout_from;

const V2: &str = "35 25 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
const HYBRID: &str = "35 25 0:30 / /sys/fs/cgroup/unified rw shared:9 - cgroup2 cgroup2 rw\n\
                      36 25 0:31 / /sys/fs/cgroup/memory rw shared:10 - cgroup cgroup rw,memory\n";
const SELF: i32 = 4242;

/// A fake machine: a cgroup tree and, when `systemd`, `/run/systemd/system`.
fn machine(systemd: bool) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    if systemd {
        fs::create_dir_all(tmp.path().join("run/systemd/system")).unwrap();
    }
    cgroup(tmp.path(), "/", "");
    tmp
}

fn cgroup(root: &Path, path: &str, procs: &str) -> PathBuf {
    let dir = root.join("sys/fs/cgroup").join(path.trim_start_matches('/'));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
    fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
    fs::write(dir.join("cgroup.procs"), procs).unwrap();
    if !path.trim_matches('/').is_empty() {
        fs::write(dir.join("cgroup.type"), "domain\n").unwrap();
    }
    dir
}

fn decision(root: &Path, mountinfo: &str, own: &str, wants_limits: bool, parent: Option<&Path>, euid_is_root: bool) -> Decision {
    // A hybrid machine has the process in the v1 memory hierarchy too.
    let v1 = if mountinfo == HYBRID { format!("4:memory:{own}\n") } else { String::new() };
    let layout = layout_from(mountinfo, &format!("{v1}0::{own}\n"), root);
    decide(&Situation { root, layout: &layout, wants_limits, parent, self_pid: SELF, euid_is_root })
}

#[test]
fn under_systemd_a_shell_beside_other_processes_asks_on_the_system_bus_as_root() {
    let m = machine(true);
    cgroup(m.path(), "/user.slice/user-0.slice/session-3.scope", "900\n4242\n");
    let own = "/user.slice/user-0.slice/session-3.scope";
    assert_eq!(decision(m.path(), V2, own, true, None, true), Decision::Ask(Bus::System));
    // Rootless: the user's own manager.
    assert_eq!(decision(m.path(), V2, own, true, None, false), Decision::Ask(Bus::User));
}

#[test]
fn alone_in_an_undelegated_service_it_still_asks() {
    // A service's cgroup is systemd's to manage, even with one process in it.
    let m = machine(true);
    cgroup(m.path(), "/system.slice/lab.service", "4242\n");
    assert_eq!(decision(m.path(), V2, "/system.slice/lab.service", true, None, true), Decision::Ask(Bus::System));
}

#[test]
fn without_systemd_or_limits_or_v2_nothing_is_asked() {
    let plain = machine(false);
    cgroup(plain.path(), "/ci.scope", "4242\n");
    assert_eq!(decision(plain.path(), V2, "/ci.scope", true, None, true), Decision::Stay(Stay::NotSystemd));
    let m = machine(true);
    cgroup(m.path(), "/system.slice/lab.service", "4242\n");
    assert_eq!(decision(m.path(), V2, "/system.slice/lab.service", false, None, true), Decision::Stay(Stay::NoLimits));
    assert_eq!(decision(m.path(), HYBRID, "/system.slice/lab.service", true, None, true), Decision::Stay(Stay::NotV2));
    let parent = Path::new("lab.slice");
    assert_eq!(decision(m.path(), V2, "/system.slice/lab.service", true, Some(parent), true), Decision::Stay(Stay::CgroupParent));
}

#[test]
fn placed_already_it_stays() {
    let m = machine(true);
    // The root cgroup.
    assert_eq!(decision(m.path(), V2, "/", true, None, true), Decision::Stay(Stay::Placed));
    // A supervisor born in the leaf of the scope `sandbox start` asked for.
    cgroup(m.path(), "/system.slice/sandbox-100-0badcafe.scope", "");
    cgroup(m.path(), "/system.slice/sandbox-100-0badcafe.scope/supervisor", "100\n4242\n");
    let leaf = "/system.slice/sandbox-100-0badcafe.scope/supervisor";
    assert_eq!(decision(m.path(), V2, leaf, true, None, true), Decision::Stay(Stay::Placed));
    // In a scope of ours, alone (a second placement in the same process).
    cgroup(m.path(), "/system.slice/sandbox-4242-12345678.scope", "4242\n");
    let ours = "/system.slice/sandbox-4242-12345678.scope";
    assert_eq!(decision(m.path(), V2, ours, true, None, true), Decision::Stay(Stay::Delegated));
    // A scope of ours that holds others too is no place: ask for a new one.
    cgroup(m.path(), "/system.slice/sandbox-4242-87654321.scope", "4242\n77\n");
    let shared = "/system.slice/sandbox-4242-87654321.scope";
    assert_eq!(decision(m.path(), V2, shared, true, None, true), Decision::Ask(Bus::System));
}

#[test]
fn the_scope_is_named_after_the_pid_with_a_random_part_and_is_no_leftover() {
    let name = scope_name(4242, 0x9f3a61c0);
    assert_eq!(name, "sandbox-4242-9f3a61c0.scope");
    assert_eq!(scope_name(7, 1), "sandbox-7-00000001.scope");
    // `sandbox gc` removes `sandbox-run-<dead pid>` cgroups; a scope is never one.
    assert_eq!(crate::cgroup::owner_pid(&name), None);
    assert!(is_ours(Path::new("/sys/fs/cgroup/system.slice/sandbox-4242-9f3a61c0.scope")));
    assert!(!is_ours(Path::new("/sys/fs/cgroup/system.slice/sandbox-run-4242")));
}

#[test]
fn the_scope_holds_only_the_tool_and_is_delegated() {
    let request = ScopeRequest::new(Bus::System, 4242, 0xab);
    let properties = request.properties();
    let get = |name: &str| properties.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
    assert_eq!(get("PIDs"), Some(Property::Pids(vec![4242])));
    assert_eq!(get("Delegate"), Some(Property::Bool(true)));
    assert_eq!(get("CollectMode"), Some(Property::Str("inactive-or-failed".into())));
    assert_eq!(get("DefaultDependencies"), Some(Property::Bool(false)));
    assert!(matches!(get("Description"), Some(Property::Str(d)) if d.contains("4242")));
    // Nothing else: an unknown property makes systemd refuse the whole unit.
    let names: Vec<&str> = properties.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["Description", "PIDs", "Delegate", "DefaultDependencies", "CollectMode"]);
    assert_eq!(request.mode(), "fail");
}

#[test]
fn the_call_has_systemd_s_signature_and_types() {
    let request = ScopeRequest::new(Bus::User, 31, 2);
    let body = bus::start_body(&request);
    assert_eq!(body.signature().to_string(), "(ssa(sv)a(sa(sv)))");
    let (name, mode, properties, aux) = &body;
    assert_eq!((*name, *mode), ("sandbox-31-00000002.scope", "fail"));
    assert!(aux.is_empty());
    let pids = properties.iter().find(|(n, _)| *n == "PIDs").map(|(_, v)| v.value_signature().to_string());
    assert_eq!(pids.as_deref(), Some("au"), "systemd takes PIDs as an array of uint32");
    let delegate = properties.iter().find(|(n, _)| *n == "Delegate").map(|(_, v)| v.clone());
    assert_eq!(delegate, Some(Value::from(true)));
}

#[test]
fn only_a_failed_attempt_is_worth_a_note() {
    assert_eq!(Outcome::Stayed(Stay::NotSystemd).note(), None);
    let entered = Outcome::Entered { scope: "sandbox-1-00000000.scope".into(), cgroup: PathBuf::from("/x") };
    assert_eq!(entered.note(), None);
    let note = Outcome::Failed("cannot connect to the system bus: No such file or directory".into()).note().unwrap();
    assert!(note.contains("cannot connect to the system bus") && note.contains("without systemd"), "{note}");
    assert!(!note.contains('\n'));
}

#[test]
fn doctor_s_expected_scope_is_in_system_slice_with_its_controllers() {
    let m = machine(true);
    cgroup(m.path(), "/system.slice", "");
    cgroup(m.path(), "/user.slice/user-0.slice/session-3.scope", "900\n4242\n");
    let layout = layout_from(V2, "0::/user.slice/user-0.slice/session-3.scope\n", m.path());
    let (scope, controllers) = expected_scope(&layout, Bus::System).unwrap();
    assert!(scope.starts_with(m.path().join("sys/fs/cgroup/system.slice")), "{}", scope.display());
    assert!(scope.to_string_lossy().ends_with("-<random>.scope"));
    assert_eq!(controllers, ["cpu", "memory", "pids"]);
}
