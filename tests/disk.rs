//! `[limits] disk`: an instance that fills its disk fills its own image only.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

fn exec(name: &str, script: &str) -> std::process::Output {
    run(sandbox().args(["exec", name, "--", "/bin/sh", "-c", script]).stdin(Stdio::null()))
}

fn row(name: &str) -> serde_json::Value {
    let text = ok(sandbox().args(["ps", "--json"]));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    rows.into_iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("{name} in {text}"))
}

fn image(name: &str) -> PathBuf {
    shared_home().join("instances").join(name).join("disk.img")
}

/// The loop devices whose backing file is this instance's image (`losetup -a`'s view, from sysfs).
fn loops_of(name: &str) -> Vec<String> {
    let image = image(name).display().to_string();
    fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("loop"))
        .filter(|e| fs::read_to_string(e.path().join("loop/backing_file")).is_ok_and(|f| f.trim().starts_with(&image)))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn host_mounts_of(name: &str) -> Vec<String> {
    let dir = shared_home().join("instances").join(name).display().to_string();
    fs::read_to_string("/proc/self/mountinfo").unwrap().lines().filter(|l| l.contains(&dir)).map(String::from).collect()
}

fn cgroups_of(name: &str) -> Vec<PathBuf> {
    let suffix = format!("-{name}");
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let dir = entry.file_name().to_string_lossy().into_owned();
                if dir.starts_with("sandbox-inst-") && dir.ends_with(&suffix) {
                    found.push(entry.path());
                }
                stack.push(entry.path());
            }
        }
    }
    found
}

/// Bytes a directory tree takes on the host's disk.
fn allocated(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        total += meta.blocks() * 512;
        if meta.is_dir() {
            stack.extend(fs::read_dir(&path).into_iter().flatten().flatten().map(|e| e.path()));
        }
    }
    total
}

/// Waits for what the kernel releases a moment after the last process ends.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "still not true after 10 s: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn nothing_left(name: &str) {
    eventually(&format!("no loop device of {name}"), || loops_of(name).is_empty());
    assert!(host_mounts_of(name).is_empty(), "no host mount of {name}: {:?}", host_mounts_of(name));
}

struct Cleanup(Vec<&'static str>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        // One at a time: `rm` of a name that was never made refuses them all.
        for name in &self.0 {
            let _ = sandbox().arg("rm").arg(name).output();
        }
    }
}

fn capped_profile() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("capped.toml"), "name = \"capped\"\nextends = \"shell\"\n[limits]\ndisk = \"16M\"\n").unwrap();
    dir
}

#[test]
fn a_full_disk_is_the_instance_s_own() {
    if !need_root("instances with a disk image (a loop device)") || !need_program("mkfs.ext4", "apt install e2fsprogs") {
        return;
    }
    let (a, b) = ("disk-full", "disk-beside");
    let _cleanup = Cleanup(vec![a, b]);
    let _ = sandbox().args(["rm", a, b]).output();
    let profile = capped_profile();
    let profile = profile.path().join("capped.toml");
    let profile = profile.to_str().unwrap();
    ok(sandbox().args(["start", profile, "--name", a, "--name", b]));
    assert_eq!(fs::metadata(image(a)).unwrap().len(), 16 << 20, "the image is the cap");
    assert_eq!(loops_of(a).len(), 1, "one loop device while it runs");
    assert!(host_mounts_of(a).is_empty(), "the disk is mounted in the sandbox's namespace only: {:?}", host_mounts_of(a));

    // Writing past the cap fails inside, with ENOSPC.
    let full = exec(a, "head -c 40000000 /dev/zero > ~/fill; echo status=$?");
    let said = format!("{}{}", stdout(&full), stderr(&full));
    assert!(said.contains("No space left on device"), "{said}");
    assert!(!said.contains("status=0"), "the write failed: {said}");
    // The one beside it still writes, and the state directory holds no more than the cap.
    let beside = exec(b, "head -c 1000000 /dev/zero > ~/mine && echo wrote");
    assert!(stdout(&beside).contains("wrote"), "{}{}", stdout(&beside), stderr(&beside));
    let held = allocated(&shared_home().join("instances").join(a));
    assert!(held <= (16 << 20) + (1 << 20), "the instance holds {held} bytes of the host's disk");
    assert!(!shared_home().join("instances").join(a).join("upper/home/student/fill").exists());

    // ps shows the use and the cap, running or not.
    let used = row(a)["disk_bytes"].as_u64().unwrap();
    assert_eq!(row(a)["disk_limit_bytes"].as_u64(), Some(16 << 20));
    assert!(used > 12 << 20, "the full one: {used}");
    assert!(row(b)["disk_bytes"].as_u64().unwrap() < used / 2);
    let diff = ok(sandbox().args(["diff", a]));
    assert!(diff.contains("A /home/student/fill"), "diff reads the layer of a running instance: {diff}");

    // Stopped: nothing left; ps and diff still know; reset empties the disk.
    ok(sandbox().args(["stop", a]));
    nothing_left(a);
    assert!(cgroups_of(a).is_empty(), "{:?}", cgroups_of(a));
    assert_eq!(row(a)["state"], "stopped");
    assert!(row(a)["disk_bytes"].as_u64().unwrap() > 12 << 20, "ps reads the image of a stopped instance");
    assert!(ok(sandbox().args(["diff", a])).contains("A /home/student/fill"), "diff of a stopped one");
    nothing_left(a);
    ok(sandbox().args(["reset", a]));
    assert!(row(a)["disk_bytes"].as_u64().unwrap() < 4 << 20, "reset gives the space back");
    ok(sandbox().args(["start", profile, "--name", a]));
    let after = exec(a, "ls ~; head -c 1000000 /dev/zero > ~/again && echo wrote");
    assert!(!stdout(&after).contains("fill") && stdout(&after).contains("wrote"), "{}", stdout(&after));

    // kill -9 of the supervisor: the sandbox dies with it, and so do its mount and loop device.
    let running: serde_json::Value =
        serde_json::from_slice(&fs::read(shared_home().join("instances").join(b).join("running.json")).unwrap()).unwrap();
    let supervisor = running["supervisor"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(supervisor), nix::sys::signal::Signal::SIGKILL).unwrap();
    eventually("the killed instance is stopped", || row(b)["state"] == "stopped");
    nothing_left(b);
    ok(sandbox().arg("gc"));
    assert!(cgroups_of(b).is_empty(), "{:?}", cgroups_of(b));

    // rm of a running and of a stopped one.
    let removed = run(sandbox().args(["rm", a]));
    if !removed.status.success() {
        ok(sandbox().args(["stop", a]));
        ok(sandbox().args(["rm", a]));
    }
    ok(sandbox().args(["rm", b]));
    nothing_left(a);
    nothing_left(b);
    assert!(!shared_home().join("instances").join(a).exists() && !shared_home().join("instances").join(b).exists());
    assert!(cgroups_of(a).is_empty() && cgroups_of(b).is_empty());
}

#[test]
fn check_rejects_a_bad_disk_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    fs::write(&file, "name = \"bad\"\n[limits]\ndisk = \"lots\"\n").unwrap();
    let checked = run(sandbox().arg("check").arg(&file));
    assert_eq!(checked.status.code(), Some(125), "{}", stderr(&checked));
    assert!(stderr(&checked).contains("bad.toml:3:8: `disk` must be a size like"), "{}", stderr(&checked));
    fs::write(&file, "name = \"bad\"\n[rootfs]\nbinaries = [\"sh\"]\n[limits]\ndisk = \"1Gi\"\n").unwrap();
    ok(sandbox().arg("check").arg(&file));
}

/// A one-off run's throwaway layer (a tmpfs) has the same cap: writing past
/// it fails inside, and below it works.
#[test]
fn a_one_off_run_is_capped_by_disk_too() {
    if !need_root("a one-off run in namespace mode") {
        return;
    }
    let profile = capped_profile();
    let profile = profile.path().join("capped.toml");
    let script = "head -c 1000000 /dev/zero > ~/small && echo small=$?; head -c 40000000 /dev/zero > ~/big; echo big=$?";
    let output = run(sandbox().arg("run").arg(&profile).args(["--", "/bin/sh", "-c", script]).stdin(Stdio::null()));
    let said = format!("{}{}", stdout(&output), stderr(&output));
    assert!(said.contains("small=0") && said.contains("No space left on device") && !said.contains("big=0"), "{said}");
}
