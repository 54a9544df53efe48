//! Helpers shared by the integration tests: the real binary, a shared store,
//! and the rule for tests that need root (skip with a reason, but never under
//! CI=true, where a skip is a failure).

#![allow(dead_code)]

pub mod oci;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn sandbox() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sandbox"));
    cmd.env("SANDBOX_HOME", shared_home()).env("NO_COLOR", "1");
    cmd
}

/// One state directory for every test binary, so a profile is built once and
/// reused from the store by every test that needs it.
pub fn shared_home() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandbox-home")
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// True when the test may go on. Without root it prints why it skips, and
/// under CI=true it fails instead.
pub fn need_root(what: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(!in_ci(), "CI=true: this test needs root ({what}) and must not be skipped");
    eprintln!("skipped: {what} needs root");
    false
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Run the binary, assert success, return stdout.
pub fn ok(cmd: &mut Command) -> String {
    let output = run(cmd);
    assert!(output.status.success(), "{cmd:?} failed ({}):\n{}{}", output.status, stdout(&output), stderr(&output));
    stdout(&output)
}

/// A copy of tests/data/NAME in the target directory: `build` writes the lock
/// file beside the profile, and tests must not write into the source tree.
pub fn profile_path(name: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("profiles");
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join(name);
    std::fs::copy(&source, &copy).unwrap();
    copy
}

/// True when the program is on PATH. Without it: a skip with the reason, or a
/// failure under CI=true (.ci/run installs it).
pub fn need_program(program: &str, install: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(!in_ci(), "CI=true: `{program}` is missing; .ci/run installs it");
        eprintln!("skipped: `{program}` is not installed ({install})");
    }
    found
}

/// podman with a storage of its own (so the host's images and containers
/// are never touched), runc and cgroupfs as this kind of machine needs
/// (PEERS.md), no events journal.
pub struct Podman {
    pub storage: tempfile::TempDir,
}

impl Podman {
    /// None (with the reason printed) when podman is missing or cannot run here.
    pub fn new() -> Option<Podman> {
        if !need_root("podman as root with a storage of its own") || !need_program("podman", "apt-get install podman") {
            return None;
        }
        let podman = Podman { storage: tempfile::tempdir().unwrap() };
        podman.set_sysctls(&[]);
        let info = podman.sh("info");
        if !info.status.success() {
            assert!(!in_ci(), "CI=true: podman does not run here: {}", stderr(&info));
            eprintln!("skipped: podman does not run here: {}", stderr(&info));
            return None;
        }
        Some(podman)
    }

    /// This storage's containers.conf. podman's default ulimits are above what
    /// this machine allows (PEERS.md), and `kube play` has no --ulimit, so they
    /// are set for every command here; `sysctls` (`name=value`) go to every
    /// container, for what podman 4.3's `kube play` leaves out of a pod's securityContext.
    pub fn set_sysctls(&self, sysctls: &[String]) {
        let quoted: Vec<String> = sysctls.iter().map(|s| format!("{s:?}")).collect();
        std::fs::write(
            self.storage.path().join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\ndefault_sysctls = [{}]\n",
                quoted.join(", ")
            ),
        )
        .unwrap();
    }

    /// The podman command line with this storage.
    pub fn command(&self) -> String {
        format!(
            "CONTAINERS_CONF={0}/containers.conf podman --root {0}/root --runroot {0}/run --tmpdir {0}/tmp --storage-driver vfs --runtime runc --cgroup-manager cgroupfs --events-backend none",
            self.storage.path().display()
        )
    }

    /// Run `podman ARGS` (a shell fragment) in a shell.
    pub fn sh(&self, args: &str) -> Output {
        run(Command::new("sh").arg("-c").arg(format!("{} {args}", self.command())).stdin(std::process::Stdio::null()))
    }

    /// Run a container-starting podman command in a private mount namespace
    /// where, on a v1 hybrid, cgroup2 is hidden (PEERS.md): runc and cgroupfs
    /// then place the containers in the v1 hierarchies, and podman removes
    /// those cgroups with the containers. The default ulimits come from the
    /// storage's containers.conf.
    pub fn sh_isolated(&self, args: &str) -> Output {
        let hybrid = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split_whitespace().nth(4) == Some("/sys/fs/cgroup/unified"));
        let hide = if hybrid {
            "umount /sys/fs/cgroup/unified && mount -t tmpfs -o size=1m sandbox-scratch /sys/fs/cgroup/unified && "
        } else {
            ""
        };
        let script = format!("{hide}exec env {} {args}", self.command());
        run(Command::new("timeout")
            .args(["300", "unshare", "--mount", "--propagation", "private", "sh", "-c"])
            .arg(script)
            .stdin(std::process::Stdio::null()))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Containers and pods of this storage only; then the storage goes with the directory.
        let _ = self.sh("pod rm --all --force");
        let _ = self.sh("rm --all --force");
        let _ = self.sh("volume rm --all --force");
        let _ = run(Command::new("sh")
            .arg("-c")
            .arg(format!("umount -R {0}/root/overlay 2>/dev/null; umount -R {0}/run 2>/dev/null; true", self.storage.path().display())));
    }
}

/// One student's result from `sandbox lab check --json`.
pub struct LabResult {
    pub passed: bool,
    /// The failed checks, each as `id (what was seen)`.
    pub failed: Vec<String>,
    /// The whole JSON line, for a failure message.
    pub line: String,
}

/// Every student's result in what `lab check --json` printed, by student;
/// panics (naming `lab`) on a line that is not a result.
pub fn lab_results(lab: &str, text: &str) -> std::collections::BTreeMap<String, LabResult> {
    let mut results = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{lab}: not JSON ({e}): {text}"));
        let failed = value["checks"]
            .as_array()
            .unwrap_or_else(|| panic!("{lab}: no checks in {line}"))
            .iter()
            .filter(|c| c["passed"] != true)
            .map(|c| format!("{} ({})", c["id"].as_str().unwrap_or("?"), c["seen"].as_str().unwrap_or("")))
            .collect();
        let student = value["student"].as_str().unwrap_or_else(|| panic!("{lab}: no student in {line}")).to_string();
        results.insert(student, LabResult { passed: value["passed"] == true, failed, line: line.to_string() });
    }
    assert!(!results.is_empty(), "{lab}: no result: {text}");
    results
}
