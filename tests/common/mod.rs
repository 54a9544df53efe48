//! Helpers shared by the integration tests: the real binary, a shared store,
//! and the rule for tests that need root (skip with a reason, but never under
//! CI=true, where a skip is a failure).

#![allow(dead_code)]

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
