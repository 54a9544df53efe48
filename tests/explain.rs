//! `sandbox explain`: the real run, narrated; its observations are the truth.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

#[test]
fn explain_without_a_terminal_runs_a_demonstration_and_shows_the_evidence() {
    if !need_root("the default profile's namespaces and cgroup limits") {
        return;
    }
    let output = run(sandbox().args(["explain", "--lang", "en"]).stdin(Stdio::null()));
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    // PID 1 inside: the demonstration's ps, and the observation.
    assert!(text.lines().any(|l| l.trim_start().starts_with("1       0 student")), "ps shows PID 1: {text}");
    assert!(text.contains("pid:[") && text.contains("->"), "namespace inodes change: {text}");
    assert!(text.contains("new / holds") && text.contains("bin dev etc home"), "the new root's listing: {text}");
    assert!(text.contains("memory.limit_in_bytes") || text.contains("memory.max"), "the cgroup file: {text}");
    assert!(text.contains("536870912"), "the memory limit written (512M): {text}");
    assert!(text.contains("What you are inside now") && text.contains("bwrap --unshare-all"), "{text}");
}

#[test]
fn json_observations_match_what_the_host_sees() {
    if !need_root("namespaces and cgroups") {
        return;
    }
    let mut child = sandbox()
        .args(["explain", "--json", "shell", "--", "/bin/sleep", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = BufReader::new(child.stdout.take().unwrap());
    let mut checked_pid = false;
    let mut checked_limit = false;
    let mut ids = Vec::new();
    for line in reader.lines() {
        let event: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if event["phase"] != "step" {
            continue;
        }
        assert_eq!(event["ok"], true, "{event}");
        ids.push(event["id"].as_str().unwrap().to_string());
        let observed = &event["observed"];
        if event["id"] == "new-pid-namespace" {
            let outside = observed["pid_outside"].as_str().unwrap();
            let seen = fs::read_link(format!("/proc/{outside}/ns/pid")).unwrap();
            assert_eq!(observed["after"].as_str().unwrap(), seen.to_str().unwrap(), "{event}");
            assert_ne!(observed["before"], observed["after"]);
            assert_eq!(observed["pid_inside"], "1");
            checked_pid = true;
        }
        if event["id"] == "cgroup-memory-limit" && observed.get("file").is_some() {
            let file = observed["file"].as_str().unwrap();
            let on_disk = fs::read_to_string(file).unwrap();
            assert_eq!(observed["value"].as_str().unwrap(), on_disk.trim(), "{event}");
            checked_limit = true;
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(checked_pid && checked_limit, "events seen: {ids:?}");

    // The steps that ran are the plan's, in order: the same plan `run` carries out.
    let plan = json_lines(&ok(sandbox().args(["explain", "--dry-run", "--json", "shell", "--", "/bin/sleep", "2"])));
    let planned: Vec<String> = plan.iter().map(|p| p["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, planned);
}

#[test]
fn korean_texts_for_every_step() {
    if !need_root("namespaces and cgroups") {
        return;
    }
    let output = run(sandbox().args(["explain", "--lang", "ko", "shell"]).stdin(Stdio::null()));
    let text = stdout(&output);
    assert!(output.status.success(), "{}", stderr(&output));
    let catalog = sandbox::explain::Catalog::load(sandbox::explain::Lang::Ko);
    let plan = json_lines(&ok(sandbox().args(["explain", "--dry-run", "--json", "--lang", "ko", "shell"])));
    let ids: BTreeSet<&str> = plan.iter().map(|p| p["id"].as_str().unwrap()).collect();
    for id in ids {
        assert!(text.contains(catalog.title(id)), "no Korean title for {id}: {text}");
    }
    assert!(text.contains("단계"), "{text}");
}

#[test]
fn dry_run_works_as_nobody() {
    if !need_root("switching to the user nobody for the test") {
        return;
    }
    let output = run(Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_sandbox"))
        .args(["explain", "--dry-run", "--lang", "en", "shell"])
        .env("SANDBOX_HOME", "/nonexistent/state")
        .env("NO_COLOR", "1")
        .current_dir("/")
        .stdin(Stdio::null()));
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    for title in ["New PID namespace", "pivot_root", "seccomp"] {
        assert!(text.to_lowercase().contains(&title.to_lowercase()), "missing {title}: {text}");
    }
    assert!(text.contains("unshare --pid --fork") && text.contains("not run (--dry-run)"), "{text}");
}

#[test]
fn chroot_mode_shows_what_chroot_does_not_isolate() {
    if !need_root("chroot(2)") {
        return;
    }
    let output = run(sandbox().args(["explain", "--mode", "chroot", "--lang", "en", "shell"]).stdin(Stdio::null()));
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    // The demonstration's ps lists the host's processes: PID 1 is the host's init, not ours.
    let ps_lines = text.lines().skip_while(|l| !l.starts_with("$ ps")).skip(2).take_while(|l| !l.starts_with("$ ")).count();
    assert!(ps_lines > 5, "the host's processes are visible: {text}");
    assert!(text.contains("sudo chroot --userspec=1000:1000"), "{text}");
}

#[test]
fn a_failing_step_is_explained_and_stops_cleanly() {
    if !need_root("namespaces") {
        return;
    }
    // Root inside is not root outside: a host directory only host root may enter cannot be bound.
    let private = tempfile::tempdir_in("/root").unwrap();
    let work = tempfile::tempdir().unwrap();
    let profile = work.path().join("m.toml");
    fs::write(
        &profile,
        format!("name = \"m\"\nextends = \"shell\"\n[[mounts]]\nsource = \"{}\"\ntarget = \"/home/student\"\n", private.path().display()),
    )
    .unwrap();
    let output = run(sandbox().args(["explain", "--lang", "en"]).arg(&profile).stdin(Stdio::null()));
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(125), "{text}{}", stderr(&output));
    assert!(text.contains("FAILED") && text.contains("EACCES"), "{text}");
    assert!(text.contains("What it means") && text.contains("Fix"), "{text}");
    assert!(!text.contains("What you are inside now"), "no summary after a failure: {text}");
}

#[test]
fn step_mode_waits_for_enter_before_every_step() {
    if !need_root("namespaces and cgroups") {
        return;
    }
    use std::io::Write;
    let mut child = sandbox()
        .args(["explain", "--step", "--lang", "en", "shell", "--", "/bin/true"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all("\n".repeat(64).as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    let plan = json_lines(&ok(sandbox().args(["explain", "--dry-run", "--json", "shell", "--", "/bin/true"])));
    // Every step pauses but the end's (waiting for the command, removing its cgroup).
    let paused = plan.iter().filter(|p| !["wait", "cgroup-remove"].contains(&p["id"].as_str().unwrap())).count();
    assert_eq!(text.matches("Press Enter").count(), paused, "one pause per step: {text}");
    assert!(text.contains("sudo nsenter -t "), "the pause tells how to look from outside: {text}");
}
