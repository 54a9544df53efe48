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
        // One at a time: `rm` of a name that was never made refuses them all.
        for name in &self.0 {
            let _ = sandbox().arg("rm").arg(name).output();
        }
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
    // The instance's own sleep: in its PID namespace (another `sleep 300` on a shared machine is not it).
    let namespace = |pid: i64| fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let sleeper = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i64>().ok())
        .find(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"sleep\x00300\x00") && namespace(*pid) == namespace(init))
        .expect("the background sleep runs");
    ok(sandbox().args(["stop", "joined"]));
    // A bound for a loaded machine, not a timing claim: the kernel ends the
    // namespace's processes once its init is gone.
    let deadline = Instant::now() + Duration::from_secs(30);
    while (pid_alive(init) || pid_alive(sleeper)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = |pid: i64| fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    assert!(
        !pid_alive(init) && !pid_alive(sleeper),
        "stop ends every process of the instance: init {init}:\n{}\nsleep {sleeper}:\n{}",
        status(init),
        status(sleeper)
    );
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
        // One at a time: `rm` of a name that was never made refuses them all.
        for name in &self.1 {
            let _ = sandbox_in(&self.0).arg("rm").arg(name).output();
        }
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

fn record_of(home: &std::path::Path, id: &str) -> serde_json::Value {
    serde_json::from_slice(&fs::read(home.join("instances").join(id).join("record.json")).unwrap()).unwrap()
}

fn rows_in(home: &std::path::Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&ok(sandbox_in(home).args(["ps", "--json"]))).unwrap()
}

#[test]
fn two_state_directories_keep_their_instances_apart() {
    if !need_root("instances in two state directories") {
        return;
    }
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (home_a, home_b) = (a.path().join("home"), b.path().join("home"));
    let _cleanup_a = CleanupIn(home_a.clone(), vec!["twin".into()]);
    let _cleanup_b = CleanupIn(home_b.clone(), vec!["twin".into()]);
    // The same name in both: both start.
    ok(sandbox_in(&home_a).args(["start", "shell", "--name", "twin"]));
    ok(sandbox_in(&home_b).args(["start", "shell", "--name", "twin"]));
    let (row_a, row_b) = (rows_in(&home_a)[0].clone(), rows_in(&home_b)[0].clone());
    assert!(row_a["state"] == "running" && row_b["state"] == "running", "{row_a} {row_b}");
    // The first instance of each directory has an id range of its own.
    let (ids_a, ids_b) = (record_of(&home_a, "twin")["id_base"].clone(), record_of(&home_b, "twin")["id_base"].clone());
    assert_ne!(ids_a, ids_b);
    assert!(cgroup_dirs("twin").len() >= 2, "two cgroups: {:?}", cgroup_dirs("twin"));
    // rm in the second never touches the first.
    ok(sandbox_in(&home_b).args(["rm", "twin"]));
    let pid_a = row_a["pid"].as_i64().unwrap();
    assert!(pid_alive(pid_a), "the first directory's instance still runs");
    assert_eq!(rows_in(&home_a)[0]["state"], "running");
    let still = run(sandbox_in(&home_a).args(["exec", "twin", "--", "/bin/true"]).stdin(Stdio::null()));
    assert!(still.status.success(), "{}", stderr(&still));
    // The leases are root's alone: nobody else may enter, read or lock them.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let leases = std::path::Path::new("/run/sandbox");
    let meta = fs::metadata(leases).unwrap();
    assert_eq!((meta.uid(), meta.permissions().mode() & 0o777), (0, 0o700));
    for entry in fs::read_dir(leases.join("ids")).unwrap().flatten() {
        assert_eq!(entry.metadata().unwrap().permissions().mode() & 0o777, 0o600, "{}", entry.path().display());
    }
    use std::os::unix::process::CommandExt;
    let as_nobody = run(std::process::Command::new("flock").args(["-n", "/run/sandbox/lock", "true"]).uid(65534).gid(65534));
    assert!(!as_nobody.status.success(), "nobody could lock /run/sandbox/lock");
    ok(sandbox_in(&home_a).args(["rm", "twin"]));
    assert!(!pid_alive(pid_a));
    assert!(cgroup_dirs("twin").is_empty(), "{:?}", cgroup_dirs("twin"));
    // rm gave the claims back.
    let key_a = a.path().join("home").canonicalize().unwrap().display().to_string();
    for dir in ["ids", "cgroups"] {
        for entry in fs::read_dir(leases.join(dir)).unwrap().flatten() {
            let text = fs::read_to_string(entry.path()).unwrap_or_default();
            assert!(!text.contains(&key_a), "{} still claimed: {text}", entry.path().display());
        }
    }
}

#[test]
fn diff_shows_a_student_s_file_names_escaped_and_json_keeps_them_exact() {
    if !need_root("instances") {
        return;
    }
    let _cleanup = Cleanup(vec!["escapes".into()]);
    let made = run(sandbox()
        .args(["run", "shell", "--name", "escapes", "--", "/bin/bash", "-c"])
        .arg("cd ~ && touch $'\\e]0;title\\a' $'\\e[2J' $'caf\\xe9'")
        .stdin(Stdio::null()));
    assert!(made.status.success(), "{}", stderr(&made));
    let output = run(sandbox().args(["diff", "escapes"]));
    assert!(output.status.success());
    assert!(!output.stdout.contains(&0x1b) && !output.stdout.contains(&0x07), "raw control bytes reach the terminal");
    let text = stdout(&output);
    for shown in ["A /home/student/\\x1b]0;title\\x07", "A /home/student/\\x1b[2J", "A /home/student/caf\\xe9"] {
        assert!(text.lines().any(|l| l == shown), "{shown} not in:\n{text}");
    }
    let json: serde_json::Value = serde_json::from_str(&ok(sandbox().args(["diff", "escapes", "--json"]))).unwrap();
    let paths: Vec<&serde_json::Value> = json["changes"].as_array().unwrap().iter().map(|c| &c["path"]).collect();
    assert!(paths.contains(&&serde_json::json!({"text": "/home/student/\u{1b}]0;title\u{7}"})), "{json}");
    assert!(paths.contains(&&serde_json::json!({"text": "/home/student/\u{1b}[2J"})), "{json}");
    // Not UTF-8: the bytes, in base64.
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.encode(b"/home/student/caf\xe9");
    assert!(paths.contains(&&serde_json::json!({ "bytes": bytes })), "{json}");
}

#[test]
fn a_korean_name_is_an_instance_everywhere() {
    if !need_root("instances") {
        return;
    }
    let _cleanup = Cleanup(vec!["내이름".into()]);
    ok(sandbox().args(["start", "shell", "--name", "내이름"]));
    let listed = row("내이름").expect("ps lists the display name");
    let id = listed["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("u-") && id.is_ascii(), "{id}");
    let table = ok(sandbox().arg("ps"));
    assert!(table.lines().any(|l| l.starts_with("내이름 ") && l.contains(&id) && l.contains("running")), "{table}");
    let hello = exec("내이름", "echo 안녕 > ~/f && cat ~/f");
    assert_eq!(stdout(&hello), "안녕\n", "{}", stderr(&hello));
    assert_eq!(stdout(&exec(&id, "cat ~/f")), "안녕\n", "the id reaches it too");
    assert!(ok(sandbox().args(["diff", "내이름"])).lines().any(|l| l == "A /home/student/f"));
    assert!(ok(sandbox().args(["stop", "내이름"])).contains("stopped 내이름"));
    ok(sandbox().args(["reset", "내이름"]));
    assert!(ok(sandbox().args(["rm", "내이름"])).contains("removed 내이름"));
    assert!(row("내이름").is_none());
}

#[test]
fn instance_commands_without_a_name_are_usage_errors() {
    for command in ["stop", "reset", "rm", "start"] {
        let output = run(sandbox().arg(command).args(if command == "start" { &["shell"][..] } else { &[][..] }));
        assert_eq!(output.status.code(), Some(2), "{command}: {}", stderr(&output));
    }
}

#[test]
fn a_names_file_is_told_by_line_number_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let shadow = dir.path().join("shadow");
    fs::write(&shadow, "root:$y$j9T$topsecrethash:19700:0:99999:7:::\n").unwrap();
    let output = run(sandbox().args(["start", "shell", "--names-from"]).arg(&shadow));
    assert_eq!(output.status.code(), Some(125));
    let error = stderr(&output);
    assert!(error.contains(&format!("{}:1: not a name", shadow.display())), "{error}");
    assert!(!error.contains("topsecrethash") && !error.contains("root"), "{error}");
    // The real one, as the issue found it.
    let real = stderr(&run(sandbox().args(["start", "shell", "--names-from", "/etc/shadow"])));
    assert!(real.contains("/etc/shadow:1: not a name") && !real.contains("root"), "{real}");
    // export --k8s --students reads names the same way: passwd lines are no students.
    let passwd = run(sandbox().args(["export", "shell", "--k8s", "--students", "/etc/passwd"]));
    assert_ne!(passwd.status.code(), Some(0));
    let error = stderr(&passwd);
    assert!(error.contains("/etc/passwd:1: not a name") && !error.contains("root"), "{error}");
}

#[test]
fn a_closed_pipe_ends_quietly() {
    // The reader is gone before ps writes a byte: every write is EPIPE.
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let output = run(sandbox().arg("ps").stdout(Stdio::from(write)));
    assert_eq!(stderr(&output), "", "no `error: Broken pipe`");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn a_full_disk_and_a_read_only_state_dir_are_named_and_leave_nothing() {
    if !need_root("mounts in a private mount namespace") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(sandbox_in(&home).args(["build", "shell"]).current_dir(dir.path()));
    fs::create_dir_all(home.join("instances")).unwrap();
    // In a mount namespace of its own, so nothing is left mounted on the host.
    let script = r#"
        set -u
        mount -t tmpfs -o size=4k tmpfs "$HOME_DIR/instances"
        head -c 4096 /dev/zero > "$HOME_DIR/instances/filler" 2>/dev/null
        "$SANDBOX" start shell --name full; echo "full=$?"
        echo "left=$(ls -A "$HOME_DIR/instances" | tr '\n' ' ')"
        umount "$HOME_DIR/instances"
        mount --bind "$HOME_DIR" "$HOME_DIR" && mount -o remount,bind,ro "$HOME_DIR"
        "$SANDBOX" start shell --name readonly; echo "readonly=$?"
    "#;
    let output = run(std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "/bin/sh", "-c", script])
        .env("HOME_DIR", &home)
        .env("SANDBOX", env!("CARGO_BIN_EXE_sandbox"))
        .env("SANDBOX_HOME", &home)
        .env("NO_COLOR", "1"));
    let (out, err) = (stdout(&output), stderr(&output));
    assert!(out.contains("full=125"), "{out}{err}");
    assert!(err.contains(&home.join("instances").display().to_string()) && err.contains("No space left on device"), "{err}");
    assert!(out.contains("left=filler \n"), "a half-made instance is left: {out}");
    assert!(out.contains("readonly=125"), "{out}{err}");
    assert!(err.contains(&format!("the state directory {} is not writable: Read-only file system", home.display())), "{err}");
    let claims = fs::read_dir("/run/sandbox/ids").map(|d| d.flatten().map(|e| fs::read_to_string(e.path()).unwrap_or_default()).collect());
    let claims: Vec<String> = claims.unwrap_or_default();
    assert!(!claims.iter().any(|c| c.contains(&home.display().to_string())), "the failed instance keeps a claim: {claims:?}");
}

/// Issue 14: a one-off run's throwaway layer goes with the run, unless
/// `--keep`, which makes it an instance with a new name (told on stderr).
#[test]
fn run_keep_turns_a_one_off_run_into_an_instance() {
    if !need_root("instances") {
        return;
    }
    let home = tempfile::tempdir().unwrap().keep();
    let _cleanup = CleanupIn(home.clone(), vec!["shell-1".into(), "shell-2".into(), "shell-3".into(), "shell-4".into()]);
    let once = run(sandbox_in(&home).args(["run", "shell", "--", "/bin/sh", "-c", "echo gone > ~/f"]).stdin(Stdio::null()));
    assert!(once.status.success(), "{}", stderr(&once));
    assert!(
        stdout(&run(sandbox_in(&home).args(["ps", "--json"]))).trim().trim_matches(['[', ']']).is_empty(),
        "no instance without --keep"
    );
    let kept = run(sandbox_in(&home).args(["run", "--keep", "shell", "--", "/bin/sh", "-c", "echo kept > ~/f"]).stdin(Stdio::null()));
    assert!(kept.status.success(), "{}", stderr(&kept));
    assert!(stderr(&kept).contains("`shell-1`"), "{}", stderr(&kept));
    assert!(ok(sandbox_in(&home).args(["diff", "shell-1"])).lines().any(|l| l == "A /home/student/f"));
    let again =
        run(sandbox_in(&home).args(["run", "shell", "--name", "shell-1", "--", "/bin/cat", "/home/student/f"]).stdin(Stdio::null()));
    assert_eq!(stdout(&again), "kept\n", "{}", stderr(&again));
    // The next --keep takes the next name; --keep with --name is a usage error.
    let next = run(sandbox_in(&home).args(["run", "--keep", "shell", "--", "/bin/true"]).stdin(Stdio::null()));
    assert!(stderr(&next).contains("`shell-2`"), "{}", stderr(&next));
    assert_eq!(run(sandbox_in(&home).args(["run", "--keep", "--name", "x", "shell"])).status.code(), Some(2));
    // Two --keep runs at the same instant: each takes a name of its own.
    let spawn = || {
        sandbox_in(&home)
            .args(["run", "--keep", "shell", "--", "/bin/sh", "-c", "echo $$ > ~/mine"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    let said: Vec<String> = [first, second].into_iter().map(|c| stderr(&c.wait_with_output().unwrap())).collect();
    let named = |text: &str| ["`shell-3`", "`shell-4`"].into_iter().find(|n| text.contains(n));
    assert!(named(&said[0]).is_some() && named(&said[1]).is_some() && named(&said[0]) != named(&said[1]), "{said:?}");
    ok(sandbox_in(&home).args(["rm", "shell-1", "shell-2", "shell-3", "shell-4"]));
    let _ = fs::remove_dir_all(&home);
}
