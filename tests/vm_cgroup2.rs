//! cgroup v2 on a real kernel: Debian's stock kernel booted under qemu with
//! only cgroup2 mounted (tests/vm/rig.rs). The cases run from a scope that
//! holds other processes, as a login shell sits in its session's scope
//! (tests/vm/guest/vm/cases/*.sh); here are the assertions on what they printed.

mod common;
#[path = "vm/rig.rs"]
mod rig;

use std::path::Path;
use std::time::Duration;

/// The VM boots in about 15 s and runs the cases in about a minute under TCG
/// on a quiet machine; a busy one may take several times as long.
const BOOT_TIMEOUT: Duration = Duration::from_secs(1200);
const OOM_KILLED: i32 = 137;

fn rig() -> Option<rig::Rig> {
    match rig::Rig::new() {
        Ok(rig) => Some(rig),
        Err(why) => {
            assert!(!common::in_ci(), "CI=true: the VM test must not be skipped: {why}");
            eprintln!("skipped: the cgroup v2 VM cannot boot here: {why}");
            None
        }
    }
}

fn boot(cases: &str) -> Option<rig::Boot> {
    let rig = rig()?;
    let initramfs = rig.initramfs(Path::new(env!("CARGO_BIN_EXE_sandbox"))).unwrap_or_else(|e| panic!("initramfs: {e}"));
    let boot = rig.boot(&initramfs, cases, BOOT_TIMEOUT).unwrap_or_else(|e| panic!("boot: {e}"));
    eprintln!("the {cases} VM ran for {:.1} s", boot.seconds);
    assert!(boot.finished(), "the VM did not finish its cases\n{}", boot.report());
    Some(boot)
}

/// The last number a fork loop printed: how many forks it got to.
fn forks_reached(output: &str) -> u32 {
    output.lines().filter_map(|l| l.trim().parse().ok()).max().unwrap_or(0)
}

/// A case's exit status and output, checked with the whole report on failure.
fn expect(boot: &rig::Boot, name: &str, status: i32, contains: &[&str]) {
    let case = boot.case(name);
    assert_eq!(case.status, status, "case {name}\n{}", boot.report());
    for text in contains {
        assert!(case.output.contains(text), "case {name}: no {text:?}\n{}", boot.report());
    }
}

fn expect_forks_stop(boot: &rig::Boot, name: &str) {
    let reached = forks_reached(&boot.case(name).output);
    assert!(reached > 0 && reached < 32, "case {name}: forks went to {reached} under pids = 32\n{}", boot.report());
}

fn expect_base_restored(boot: &rig::Boot, name: &str) {
    expect(boot, name, 0, &["children: \n", "subtree_control: \n"]);
}

#[test]
fn v2_without_systemd() {
    let Some(boot) = boot("nosystemd") else { return };
    let b = &boot;
    expect(b, "build", 0, &["vm-limits"]);

    // From a scope that holds other processes: refused, one line per limit, one fix.
    expect(b, "refused", 125, &["cannot be applied", "  memory: ", "  pids: ", "  cpu: ", "holds other processes", "--no-limits"]);
    assert_eq!(b.case("refused").output.matches("fix:").count(), 1, "{}", b.report());
    expect(b, "no-limits", 0, &["--no-limits", "1+0 records out"]);

    // doctor says so before anything runs.
    expect(b, "doctor-teacher", 1, &["the sandbox's cgroups have nowhere to go", "teacher.scope holds other processes", "--cgroup-parent"]);
    expect(b, "doctor-alone", 0, &["go under /sys/fs/cgroup/ci.scope: the tool is alone in it", "ci.scope/sandbox-<name>/memory.max"]);

    // Alone in its cgroup: the tool moves into a leaf and the limits hold.
    expect(b, "run-memory", OOM_KILLED, &["OOM killer ended"]);
    expect_forks_stop(b, "run-pids");
    expect(b, "run-pids", 2, &["the pids limit was reached"]);
    expect(b, "run-cgroup", 0, &["0::/\n"]);
    expect_base_restored(b, "run-after");

    // The root cgroup, and a prepared --cgroup-parent (absolute or relative).
    expect(b, "root-memory", OOM_KILLED, &[]);
    expect(b, "parent-memory", OOM_KILLED, &[]);
    expect_forks_stop(b, "parent-pids");
    expect(b, "parent-after", 0, &["children: \n"]);

    // Instances: limits written, exec joins the cgroup and its namespace.
    expect(b, "start", 0, &["started a", "started b"]);
    expect(b, "cpu-max", 0, &["50000 100000"]);
    expect(b, "memory-max", 0, &["67108864\n32\n"]);
    expect(b, "exec-memory", OOM_KILLED, &[]);
    expect(b, "exec-cgroup", 0, &["0::/\n"]);
    expect_forks_stop(b, "exec-pids");
    expect(b, "ps", 0, &["\"memory_bytes\":", "\"state\":\"running\""]);
    assert!(!b.case("ps").output.contains("\"memory_bytes\":null"), "ps read no v2 memory.current\n{}", b.report());

    // stop, kill -9 of a supervisor and gc leave nothing behind.
    expect(b, "stop", 0, &["stopped a"]);
    expect(b, "gc", 0, &["cleaned crashed instance b"]);
    expect_base_restored(b, "instances-after");

    // lab start and lab check of a lab with limits.
    expect(b, "lab-start", 0, &["is ready for alice"]);
    expect(b, "lab-check", 0, &["\"passed\":true"]);

    // Rootless in a cgroup delegated to the user.
    expect(b, "rootless-build", 0, &["vm-limits"]);
    expect(b, "rootless-refused", 125, &["cannot be applied"]);
    expect(b, "rootless-memory", OOM_KILLED, &[]);
    expect_forks_stop(b, "rootless-pids");
    expect_base_restored(b, "rootless-after");

    expect(b, "left", 0, &[]);
    assert_eq!(b.case("left").output.trim(), "", "sandbox cgroups left behind\n{}", b.report());
}
