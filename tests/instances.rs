//! Per-student instances: one environment, a writable layer each.

mod common;

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

fn exec(name: &str, script: &str) -> std::process::Output {
    run(sandbox().args(["exec", name, "--", "/bin/bash", "-c", script]).stdin(Stdio::null()))
}

fn ps() -> Vec<serde_json::Value> {
    let text = ok(sandbox().args(["ps", "--json"]));
    serde_json::from_str::<Vec<serde_json::Value>>(&text).unwrap()
}

fn row(name: &str) -> Option<serde_json::Value> {
    ps().into_iter().find(|r| r["name"] == name)
}

/// The cgroups of an instance of any state directory (`sandbox-inst-<state key>-<id>`).
fn cgroup_dirs(name: &str) -> Vec<String> {
    let suffix = format!("-{name}");
    let mut found = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let dir = entry.file_name().to_string_lossy().into_owned();
                if dir.starts_with("sandbox-inst-") && dir.ends_with(&suffix) {
                    found.push(entry.path().display().to_string());
                }
                stack.push(entry.path());
            }
        }
    }
    found
}

fn mounts_of(name: &str) -> Vec<String> {
    let dir = shared_home().join("instances").join(name).display().to_string();
    fs::read_to_string("/proc/self/mountinfo").unwrap().lines().filter(|l| l.contains(&dir)).map(String::from).collect()
}

fn pid_alive(pid: i64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// Remove test instances even when an assertion failed.
struct Cleanup(Vec<String>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = sandbox().arg("rm").args(&self.0).output();
    }
}

#[test]
fn thirty_students_start_at_once_and_stay_apart() {
    if !need_root("instances with id ranges and cgroups") {
        return;
    }
    let names: Vec<String> = (0..30).map(|i| format!("class-{i:02}")).collect();
    let _cleanup = Cleanup(names.clone());
    let started = Instant::now();
    let mut start = sandbox();
    start.arg("start").arg("shell");
    for name in &names {
        start.args(["--name", name]);
    }
    ok(&mut start);
    eprintln!("30 instances running after {:.1} s", started.elapsed().as_secs_f64());
    let rows: Vec<serde_json::Value> = ps().into_iter().filter(|r| r["name"].as_str().unwrap().starts_with("class-")).collect();
    assert_eq!(rows.len(), 30);
    assert!(rows.iter().all(|r| r["state"] == "running"), "{rows:?}");
    let digest = &rows[0]["digest"];
    assert!(rows.iter().all(|r| &r["digest"] == digest), "all from one environment");

    let written = exec("class-00", "echo mine > ~/secret.txt && cat ~/secret.txt");
    assert_eq!(stdout(&written), "mine\n", "{}", stderr(&written));
    for other in ["class-01", "class-29"] {
        let looked = exec(other, "cat /home/student/secret.txt 2>&1; ls /proc | grep -c '^[0-9]'");
        assert!(stdout(&looked).contains("No such file"), "{other} sees class-00's file: {}", stdout(&looked));
    }
    for name in &names[1..] {
        assert!(!shared_home().join("instances").join(name).join("upper/home/student/secret.txt").exists());
    }

    let pids: Vec<i64> = rows.iter().map(|r| r["pid"].as_i64().unwrap()).collect();
    ok(sandbox().arg("stop").args(&names));
    for (name, pid) in names.iter().zip(pids) {
        assert!(!pid_alive(pid), "{name}'s PID 1 still runs");
        assert!(cgroup_dirs(name).is_empty(), "{name}'s cgroup is left: {:?}", cgroup_dirs(name));
        assert!(mounts_of(name).is_empty(), "{name}'s mounts are left");
    }
    assert!(ps().iter().filter(|r| r["name"].as_str().unwrap().starts_with("class-")).all(|r| r["state"] == "stopped"));
}

#[test]
fn a_student_s_files_persist_until_reset() {
    if !need_root("instances") {
        return;
    }
    let _cleanup = Cleanup(vec!["persist".into()]);
    let run_named =
        |script: &str| run(sandbox().args(["run", "shell", "--name", "persist", "--", "/bin/bash", "-c", script]).stdin(Stdio::null()));
    let first = run_named("echo kept > ~/work.txt; rm -f ~/.profile; echo done");
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(stdout(&run_named("cat ~/work.txt")), "kept\n");
    let diff = ok(sandbox().args(["diff", "persist"]));
    assert!(diff.lines().any(|l| l == "A /home/student/work.txt"), "{diff}");
    ok(sandbox().args(["reset", "persist"]));
    assert!(ok(sandbox().args(["diff", "persist"])).is_empty());
    let after = run_named("cat ~/work.txt");
    assert!(!after.status.success() && stderr(&after).contains("No such file"));
    // The layer belongs to the instance's root, an unprivileged id, and no other user may enter it.
    let meta = fs::metadata(shared_home().join("instances/persist")).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    assert!(meta.uid() >= 1_000_000_000);
}

#[test]
fn exec_joins_the_same_namespaces_and_stop_ends_everything() {
    if !need_root("instances") {
        return;
    }
    let _cleanup = Cleanup(vec!["joined".into()]);
    ok(sandbox().args(["start", "shell", "--name", "joined"]));
    let init = row("joined").unwrap()["pid"].as_i64().unwrap();
    let text = stdout(&exec("joined", "ps -e -o pid=,comm= | head -1; uname -n; echo hello > /tmp/shared; (sleep 300 >/dev/null 2>&1 &)"));
    assert!(text.trim_start().starts_with("1 "), "PID 1 is the instance's init: {text}");
    assert!(text.contains("lab"), "{text}");
    assert_eq!(stdout(&exec("joined", "cat /tmp/shared")), "hello\n", "the same /tmp: the same mount namespace");
    let sleeper = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i64>().ok())
        .find(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"sleep\x00300\x00"))
        .expect("the background sleep runs");
    ok(sandbox().args(["stop", "joined"]));
    let deadline = Instant::now() + Duration::from_secs(5);
    while (pid_alive(init) || pid_alive(sleeper)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pid_alive(init) && !pid_alive(sleeper), "stop ends every process of the instance");
    assert!(cgroup_dirs("joined").is_empty());
    let refused = run(sandbox().args(["exec", "joined", "--", "/bin/true"]).stdin(Stdio::null()));
    assert_eq!(refused.status.code(), Some(125));
    assert!(stderr(&refused).contains("is not running"));
}

#[test]
fn a_killed_supervisor_is_seen_and_cleaned() {
    if !need_root("instances") {
        return;
    }
    let _cleanup = Cleanup(vec!["crashed".into()]);
    ok(sandbox().args(["start", "shell", "--name", "crashed"]));
    let running: serde_json::Value =
        serde_json::from_slice(&fs::read(shared_home().join("instances/crashed/running.json")).unwrap()).unwrap();
    let supervisor = running["supervisor"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(supervisor), nix::sys::signal::Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while row("crashed").unwrap()["state"] == "running" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(row("crashed").unwrap()["state"], "stopped", "ps tells the truth after kill -9");
    ok(sandbox().arg("gc"));
    assert!(cgroup_dirs("crashed").is_empty(), "gc removes the crashed instance's cgroup");
    // And it starts again.
    ok(sandbox().args(["start", "shell", "--name", "crashed"]));
    ok(sandbox().args(["stop", "crashed"]));
}

#[test]
fn names_are_checked_and_one_name_is_one_instance() {
    let bad = run(sandbox().args(["run", "shell", "--name", "../x"]).stdin(Stdio::null()));
    assert_eq!(bad.status.code(), Some(125));
    assert!(stderr(&bad).contains("not a valid instance name"));
    if !need_root("instances") {
        return;
    }
    let _cleanup = Cleanup(vec!["twice".into()]);
    let first = sandbox().args(["start", "shell", "--name", "twice"]).spawn().unwrap();
    let second = sandbox().args(["start", "shell", "--name", "twice"]).stderr(Stdio::piped()).spawn().unwrap();
    let a = first.wait_with_output().unwrap();
    let b = second.wait_with_output().unwrap();
    assert!(a.status.success() != b.status.success(), "exactly one start wins: {:?} {:?}", a.status, b.status);
    let running = ps().into_iter().filter(|r| r["name"] == "twice" && r["state"] == "running").count();
    assert_eq!(running, 1);
}

/// The binary with a state directory of its own.
fn sandbox_in(home: &std::path::Path) -> std::process::Command {
    let mut command = sandbox();
    command.env("SANDBOX_HOME", home);
    command
}

/// Remove instances of another state directory even when an assertion failed.
struct CleanupIn(std::path::PathBuf, Vec<String>);
impl Drop for CleanupIn {
    fn drop(&mut self) {
        let _ = sandbox_in(&self.0).arg("rm").args(&self.1).output();
    }
}

#[test]
fn a_state_dir_inside_a_closed_directory_works() {
    if !need_root("instances") {
        return;
    }
    // What `mktemp -d` makes: 0700, root's.
    let closed = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(closed.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let home = closed.path().join("home");
    let _cleanup = CleanupIn(home.clone(), vec!["closed".into()]);
    let doctor: serde_json::Value = serde_json::from_str(&stdout(&run(sandbox_in(&home).args(["doctor", "--json"])))).unwrap();
    let state = doctor["checks"].as_array().unwrap().iter().find(|c| c["id"] == "state-dir").unwrap().clone();
    assert_eq!(state["status"], "ok", "{state}");
    ok(sandbox_in(&home).args(["start", "shell", "--name", "closed"]));
    let written = run(sandbox_in(&home).args(["exec", "closed", "--", "/bin/sh", "-c", "echo mine > ~/f && cat ~/f"]).stdin(Stdio::null()));
    assert_eq!(stdout(&written), "mine\n", "{}", stderr(&written));
    assert!(ok(sandbox_in(&home).args(["diff", "closed"])).lines().any(|l| l == "A /home/student/f"));
    ok(sandbox_in(&home).args(["rm", "closed"]));
}

#[test]
fn doctor_fails_a_state_dir_it_cannot_create() {
    let doctor = run(sandbox().env("SANDBOX_HOME", "/proc/sandbox-x").args(["doctor", "--json"]));
    assert_eq!(doctor.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_str(&stdout(&doctor)).unwrap();
    let state = report["checks"].as_array().unwrap().iter().find(|c| c["id"] == "state-dir").unwrap().clone();
    assert_eq!(state["status"], "missing", "{state}");
    assert!(state["summary"].as_str().unwrap().contains("/proc/sandbox-x cannot be created"), "{state}");
}
