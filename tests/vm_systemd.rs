//! cgroup v2 under systemd on a real kernel: Debian's stock kernel booted
//! under qemu with a minimal Debian whose PID 1 is systemd (tests/vm/debian.rs).
//! The cases (tests/vm/systemd/cases/systemd.sh) run in a service's cgroup
//! beside other processes; every sandbox asks systemd for a transient scope
//! with Delegate=yes. Here are the assertions on what they printed.

mod common;
#[path = "vm/debian.rs"]
mod debian;
#[path = "vm/rig.rs"]
mod rig;

use std::path::Path;
use std::time::Duration;

/// systemd boots in about a minute under TCG and the cases take a few more;
/// a busy machine may take several times as long.
const BOOT_TIMEOUT: Duration = Duration::from_secs(1200);
const OOM_KILLED: i32 = 137;

fn boot() -> Option<rig::Boot> {
    let made = rig::Rig::new().and_then(|rig| debian::initramfs(&rig, Path::new(env!("CARGO_BIN_EXE_sandbox"))).map(|i| (rig, i)));
    let (rig, initramfs) = match made {
        Ok(made) => made,
        Err(why) => {
            assert!(!common::in_ci(), "CI=true: the systemd VM test must not be skipped: {why}");
            eprintln!("skipped: the systemd VM cannot boot here: {why}");
            return None;
        }
    };
    let boot = rig.boot(&initramfs, "systemd", BOOT_TIMEOUT).unwrap_or_else(|e| panic!("boot: {e}"));
    eprintln!("the systemd VM ran for {:.1} s", boot.seconds);
    assert!(boot.finished(), "the VM did not finish its cases\n{}", boot.report());
    Some(boot)
}

fn expect(boot: &rig::Boot, name: &str, status: i32, contains: &[&str]) {
    let case = boot.case(name);
    assert_eq!(case.status, status, "case {name}\n{}", boot.report());
    for text in contains {
        assert!(case.output.contains(text), "case {name}: no {text:?}\n{}", boot.report());
    }
}

fn expect_forks_stop(boot: &rig::Boot, name: &str) {
    let reached = boot.case(name).output.lines().filter_map(|l| l.trim().parse::<u32>().ok()).max().unwrap_or(0);
    assert!(reached > 0 && reached < 32, "case {name}: forks went to {reached} under pids = 32\n{}", boot.report());
}

fn expect_nothing_left(boot: &rig::Boot, name: &str) {
    expect(boot, name, 0, &[]);
    assert_eq!(boot.case(name).output.trim(), "", "case {name}: sandbox units or cgroups left behind\n{}", boot.report());
}

/// The sandbox's cgroup sat in a transient, delegated scope named after the
/// run's pid, under `slice`, with the supervisor alone in its leaf beside it.
fn expect_in_scope(boot: &rig::Boot, name: &str, slice: &str) {
    let output = &boot.case(name).output;
    let field = |key: &str| output.lines().find_map(|l| l.strip_prefix(key)).map(str::trim).unwrap_or_default().to_owned();
    let pid = field("run pid:");
    let cgroup = field("sandbox cgroup:");
    let scope = format!("{slice}/sandbox-{pid}-");
    assert!(
        cgroup.starts_with(&scope) && cgroup.contains(".scope/sandbox-run-"),
        "case {name}: {cgroup} not in {scope}*.scope\n{}",
        boot.report()
    );
    assert_eq!(field("supervisor leaf:"), pid, "case {name}: the supervisor is not alone in its leaf\n{}", boot.report());
    expect(boot, name, 0, &["Transient=yes", "Delegate=yes", "ActiveState=active", "memory.max: 67108864 pids.max: 32", "run exit: 0"]);
    assert!(field("scope subtree_control:").contains("memory"), "case {name}\n{}", boot.report());
}

#[test]
fn v2_under_systemd() {
    let Some(boot) = boot() else { return };
    let b = &boot;
    expect(b, "setup", 0, &["systemd\n", "0::/system.slice/vm-cases.service\n"]);
    expect(b, "build", 0, &["vm-limits"]);
    expect(b, "doctor", 0, &["the sandbox's cgroups go in the systemd scope /sys/fs/cgroup/system.slice/sandbox-", "on the system bus"]);

    // Root: a scope from PID 1, and the limits hold in it.
    expect(b, "run-memory", OOM_KILLED, &["OOM killer ended"]);
    expect_forks_stop(b, "run-pids");
    expect(b, "run-pids", 2, &["the pids limit was reached"]);
    expect_in_scope(b, "run-where", "/system.slice");
    expect_nothing_left(b, "run-left");

    // No bus: one line why, then the placement without systemd (refused here).
    expect(
        b,
        "no-bus",
        125,
        &["systemd did not give the sandbox a delegated scope (cannot connect to the system bus", "holds other processes"],
    );
    assert_eq!(b.case("no-bus").output.matches("did not give").count(), 1, "{}", b.report());

    // Instances: `start` asks PID 1 for one delegated scope, the supervisors
    // are born in it and it outlives `start`; exec joins the instance's
    // cgroup; stop, a killed supervisor and gc leave nothing.
    expect(b, "start", 0, &["started a", "started b"]);
    expect(b, "start-where", 0, &["Transient=yes", "Delegate=yes", "ActiveState=active"]);
    let placed: Vec<&str> = b.case("start-where").output.lines().filter(|l| l.starts_with('/')).collect();
    assert_eq!(placed.len(), 2, "one cgroup per instance\n{}", b.report());
    for line in &placed {
        assert!(
            line.starts_with("/system.slice/sandbox-") && line.contains(".scope/sandbox-inst-") && line.ends_with(" 67108864 32"),
            "an instance outside the scope, or without its limits: {line}\n{}",
            b.report()
        );
    }
    let scopes: std::collections::BTreeSet<&str> = placed.iter().filter_map(|l| l.split(".scope/").next()).collect();
    assert_eq!(scopes.len(), 1, "the instances of one start share its scope\n{}", b.report());
    expect(b, "exec-memory", OOM_KILLED, &[]);
    expect(b, "exec-cgroup", 0, &["0::/\n"]);
    expect_forks_stop(b, "exec-pids");
    expect(b, "ps", 0, &["\"state\":\"running\""]);
    expect(b, "stop", 0, &["stopped a"]);
    expect(b, "gc", 0, &["cleaned crashed instance b"]);
    expect(b, "rm", 0, &["removed a", "removed b"]);
    expect_nothing_left(b, "instances-left");

    // Rootless: the user's manager makes the scope in its own tree.
    expect(b, "user-manager", 0, &["memory", "pids"]);
    expect(b, "rootless-build", 0, &["vm-limits"]);
    expect(b, "rootless-memory", OOM_KILLED, &[]);
    expect_forks_stop(b, "rootless-pids");
    expect_in_scope(b, "rootless-where", "/user.slice/user-1000.slice/user@1000.service/app.slice");

    expect_nothing_left(b, "left");
}
