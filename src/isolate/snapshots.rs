//! Snapshot tests of whole launches: every plan shape carried out by the
//! executor's own functions against the recorder, the calls of each process
//! listed in the order that process makes them. A change of the launch shows
//! as a change of these lists (`cargo insta review`, or INSTA_UPDATE=always).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::sched::CloneFlags;
use nix::unistd::Pid;

use super::child::{Next, build};
use super::kernel::{Kernel, Recorder, TEXT_CHANNEL};
use super::setup::{self, Context};
use super::supervisor::{after_spawn, clone_flags, perform_step, teardown};
use crate::cgroup::{self, AccessCheck, Limits};
use crate::plan::{self, Action, Actor, CgroupPlan, CgroupWrite, IdMapping, Input, Layer, Plan};
use crate::profile::{self, Mode, Profile};

const CHILD: i32 = super::kernel::recorder::RECORDED_CHILD;

/// Every call of a launch, process by process, as the executor makes them.
/// `fast`: one clone3 and no waiting (a run); else explained, one step at a time.
fn record(plan: &Plan, fast: bool) -> String {
    let mut out = String::new();
    let mut kernel = Recorder::new();
    let mut section = |title: &str, kernel: &mut Recorder| {
        out.push_str(&format!("== {title}\n"));
        for line in kernel.lines() {
            out.push_str(&format!("{line}\n"));
        }
        kernel.calls.clear();
    };
    let spawn = plan.steps.iter().position(|s| matches!(s.action, Action::Spawn { .. })).expect("a start-child step");
    for step in &plan.steps[..spawn] {
        if step.actor == Actor::Supervisor {
            perform_step(&mut kernel, &step.action, None).expect("recorded");
        }
    }
    let Action::Spawn { into_cgroup } = &plan.steps[spawn].action else { unreachable!() };
    let made = if fast { clone_flags(plan) } else { CloneFlags::empty() };
    kernel.clone3(made, into_cgroup.as_deref()).expect("recorded");
    let child = Pid::from_raw(CHILD);
    let after: Vec<&Action> =
        plan.steps.iter().filter(|s| s.actor == Actor::Supervisor && after_spawn(&s.action)).map(|s| &s.action).collect();
    if fast {
        for action in &after {
            perform_step(&mut kernel, action, Some(child)).expect("recorded");
        }
    }
    section("supervisor", &mut kernel);

    // The recorder plays the supervisor's part itself (`fast`: nobody to ask
    // for the ids), and the channel is a number no process has.
    let mut ctx = Context {
        fast: true,
        channel: Some(TEXT_CHANNEL),
        seccomp: vec![seccompiler::sock_filter { code: 6, jt: 0, jf: 0, k: 0x7fff_0000 }],
        ..Default::default()
    };
    if after.iter().any(|a| matches!(a, Action::IdmapRootfs { .. })) {
        // The supervisor's idmapped tree, passed with its "go".
        ctx.idmapped_rootfs = Some(9);
    }
    if plan.steps.iter().any(|s| matches!(s.action, Action::DiskImage { .. })) {
        // The supervisor's disk mount, made before the clone: the child has its descriptor.
        ctx.disk = Some(8);
    }
    let mut next = build(plan, spawn + 1, &mut kernel, &mut ctx, made);
    if !fast && after.iter().any(|a| matches!(a, Action::IdMaps { .. })) {
        // Explained, the child stops after its user namespace: the supervisor's part comes then.
        let child_calls = std::mem::take(&mut kernel.calls);
        for action in &after {
            perform_step(&mut kernel, action, Some(child)).expect("recorded");
        }
        let supervisor_calls = std::mem::replace(&mut kernel.calls, child_calls);
        section("first process", &mut kernel);
        kernel.calls = supervisor_calls;
        section("supervisor, asked for the child's ids after its user namespace", &mut kernel);
    }
    if let Next::PidNamespace(index) = next {
        setup::perform(&mut kernel, &plan.steps[index].action, &mut ctx).expect("recorded");
        kernel.fork().expect("recorded");
        section(if fast { "first process" } else { "first process, continued" }, &mut kernel);
        next = build(plan, index + 1, &mut kernel, &mut ctx, CloneFlags::empty());
    }
    let Next::Exec(index) = next else { panic!("the plan ends in a failure: {next:?}") };
    let Action::Exec { argv, .. } = &plan.steps[index].action else { unreachable!() };
    if plan.has_init() {
        if !argv.is_empty() {
            kernel.fork().expect("recorded");
        }
        section("PID 1", &mut kernel);
    } else {
        section(if fast { "first process" } else { "first process, continued" }, &mut kernel);
    }
    out.push_str(&format!("== the command\nexecve({:?})\n", argv.first().map(String::as_str).unwrap_or("(none: PID 1 waits)")));
    for step in plan.steps.iter().filter(|s| s.actor == Actor::Supervisor && teardown(&s.action)) {
        perform_step(&mut kernel, &step.action, Some(child)).expect("recorded");
    }
    out.push_str("== supervisor, at the end\n");
    for line in kernel.lines() {
        out.push_str(&format!("{line}\n"));
    }
    out
}

fn shell() -> Profile {
    profile::load("shell", Path::new("/")).unwrap()
}

fn input(profile: &Profile, mode: Mode) -> Input<'_> {
    Input {
        profile,
        mode,
        rootfs: PathBuf::from("/var/lib/sandbox/store/rootfs/abc"),
        command: vec!["/bin/true".into()],
        term: None,
        ids: IdMapping::Range { host_base: 1_000_000_000 },
        idmapped: true,
        cgroup: CgroupPlan::default(),
        layer: None,
        throwaway: true,
    }
}

struct AllowAll;

impl AccessCheck for AllowAll {
    fn check_write(&self, _: &Path) -> Result<(), String> {
        Ok(())
    }
}

/// The cgroup part of a plan from the real cgroup manager over a fake layout
/// (paths under `root`, shown without it).
fn cgroup_plan(mountinfo: &str, proc_cgroup: &str, root: &Path, limits: &Limits) -> CgroupPlan {
    let layout = cgroup::layout_from(mountinfo, proc_cgroup, root);
    let manager =
        cgroup::manager::manager_with(&layout, "run-1", limits, &AllowAll, Arc::new(cgroup::manager::RealKernel)).expect("placed");
    let strip = |p: PathBuf| Path::new("/").join(p.strip_prefix(root).unwrap_or(&p));
    let write = |(file, value): (PathBuf, String)| CgroupWrite { file: strip(file), value };
    CgroupPlan {
        dirs: manager.dirs().into_iter().map(strip).collect(),
        enable: manager.planned_enabling().into_iter().map(write).next(),
        writes: manager.planned_writes(limits).into_iter().map(write).collect(),
        procs: manager.procs_files().into_iter().map(strip).collect(),
        ..Default::default()
    }
}

const LIMITS: Limits = Limits { memory: Some(256 << 20), pids: Some(64), cpu: Some(0.5) };

fn v1_cgroups() -> CgroupPlan {
    let tmp = tempfile::tempdir().unwrap();
    for (dir, files) in [
        ("sys/fs/cgroup/memory", &["memory.limit_in_bytes", "cgroup.procs"][..]),
        ("sys/fs/cgroup/pids", &["pids.max", "cgroup.procs"][..]),
        ("sys/fs/cgroup/cpu", &["cpu.cfs_quota_us", "cpu.cfs_period_us", "cgroup.procs"][..]),
    ] {
        std::fs::create_dir_all(tmp.path().join(dir)).unwrap();
        for file in files {
            std::fs::write(tmp.path().join(dir).join(file), "").unwrap();
        }
    }
    let mountinfo = "30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,memory\n\
                     31 25 0:27 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,pids\n\
                     32 25 0:28 / /sys/fs/cgroup/cpu rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu\n";
    cgroup_plan(mountinfo, "4:memory:/\n5:pids:/\n6:cpu:/\n", tmp.path(), &LIMITS)
}

/// A pure cgroup v2 host: the tool in `lab.service`, whose controllers are not handed down yet.
fn v2_cgroups() -> CgroupPlan {
    let tmp = tempfile::tempdir().unwrap();
    let own = tmp.path().join("sys/fs/cgroup/lab.service");
    std::fs::create_dir_all(&own).unwrap();
    for (file, content) in [
        ("cgroup.controllers", "cpu memory pids\n"),
        ("cgroup.subtree_control", "\n"),
        ("cgroup.procs", ""),
        ("memory.max", "max\n"),
        ("memory.swap.max", "max\n"),
        ("pids.max", "max\n"),
        ("cpu.max", "max 100000\n"),
    ] {
        std::fs::write(own.join(file), content).unwrap();
    }
    std::fs::write(tmp.path().join("sys/fs/cgroup/cgroup.controllers"), "cpu memory pids\n").unwrap();
    std::fs::write(tmp.path().join("sys/fs/cgroup/cgroup.subtree_control"), "cpu memory pids\n").unwrap();
    let mountinfo = "30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
    cgroup_plan(mountinfo, "0::/lab.service\n", tmp.path(), &LIMITS)
}

#[test]
fn run() {
    let profile = shell();
    insta::assert_snapshot!(record(&plan::build(&input(&profile, Mode::Namespace)), true));
}

#[test]
fn run_with_limits_v1() {
    let profile = shell();
    let plan = plan::build(&Input { cgroup: v1_cgroups(), ..input(&profile, Mode::Namespace) });
    insta::assert_snapshot!(record(&plan, true));
}

#[test]
fn run_with_limits_v2() {
    let profile = shell();
    let plan = plan::build(&Input { cgroup: v2_cgroups(), ..input(&profile, Mode::Namespace) });
    let text = record(&plan, true);
    // The enabling is written once, by the create step, and is no limit.
    assert_eq!(text.matches("cgroup.subtree_control").count(), 1, "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn run_v2_born_in_its_cgroup() {
    let profile = shell();
    let mut cgroup = v2_cgroups();
    cgroup.clone_into = cgroup.dirs.first().cloned();
    let plan = plan::build(&Input { cgroup, ..input(&profile, Mode::Namespace) });
    let text = record(&plan, true);
    assert!(text.contains("CLONE_INTO_CGROUP") && !text.contains("cgroup.procs\"), \"4242"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn chroot() {
    let profile = shell();
    insta::assert_snapshot!(record(&plan::build(&input(&profile, Mode::Chroot)), true));
}

#[test]
fn rootless() {
    let profile = shell();
    let ids = IdMapping::Single { inside: 1000, host_uid: 1234, host_gid: 1234 };
    let plan = plan::build(&Input { ids, idmapped: false, ..input(&profile, Mode::Namespace) });
    let text = record(&plan, true);
    assert!(text.contains("/proc/4242/setgroups\"), \"deny\""), "an unprivileged writer denies setgroups: {text}");
    insta::assert_snapshot!(text);
}

#[test]
fn start_background_instance() {
    let profile = shell();
    let layer = Layer {
        upper: "/var/lib/sandbox/instances/a/upper".into(),
        work: "/var/lib/sandbox/instances/a/work".into(),
        merged: "/var/lib/sandbox/instances/a/merged".into(),
        disk: None,
    };
    let plan = plan::build(&Input {
        command: vec![],
        layer: Some(layer),
        throwaway: false,
        cgroup: v1_cgroups(),
        ..input(&profile, Mode::Namespace)
    });
    insta::assert_snapshot!(record(&plan, true));
}

/// `[limits] disk`: the supervisor makes the detached mount of the image
/// before the clone; PID 1 attaches it before anything else is mounted, and
/// the overlay's upper and work dirs are on it.
#[test]
fn start_instance_with_a_disk() {
    let profile = shell();
    let layer = Layer {
        upper: "/var/lib/sandbox/instances/a/layer/upper".into(),
        work: "/var/lib/sandbox/instances/a/layer/work".into(),
        merged: "/var/lib/sandbox/instances/a/merged".into(),
        disk: Some("/var/lib/sandbox/instances/a/disk.img".into()),
    };
    let plan = plan::build(&Input {
        command: vec![],
        layer: Some(layer),
        throwaway: false,
        cgroup: v1_cgroups(),
        ..input(&profile, Mode::Namespace)
    });
    let ids = plan.ids();
    let at = |id: &str| ids.iter().position(|i| *i == id).unwrap_or_else(|| panic!("{id} in {ids:?}"));
    assert!(at("disk-image") < at("start-child"), "made before the clone: the child inherits it");
    assert!(at("mount-private") < at("mount-disk") && at("mount-disk") < at("bind-rootfs"), "{ids:?}");
    let text = record(&plan, true);
    assert!(text.contains("move_mount(TREE, \"\", AT_FDCWD, \"/var/lib/sandbox/instances/a/layer\""), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn exec_into_an_instance() {
    let profile = shell();
    let cgroup = CgroupPlan { procs: v1_cgroups().procs, ..Default::default() };
    let plan = plan::join(&Input { cgroup, ..input(&profile, Mode::Namespace) }, 777);
    insta::assert_snapshot!(record(&plan, true));
}

#[test]
fn explain_step_by_step() {
    let profile = shell();
    let plan = plan::build(&Input { cgroup: v1_cgroups(), ..input(&profile, Mode::Namespace) });
    let text = record(&plan, false);
    // One namespace at a time, PID 1 forked after the PID namespace.
    assert!(text.contains("unshare(CLONE_NEWUSER)") && text.contains("unshare(CLONE_NEWPID)"), "{text}");
    insta::assert_snapshot!(text);
}

/// The step texts are the recorded calls: what `explain` says is what is made.
#[test]
fn step_texts_are_the_calls_made() {
    let profile = shell();
    let plan = plan::build(&input(&profile, Mode::Namespace));
    let text = |id: &str| plan.steps.iter().find(|s| s.id == id).map(|s| s.syscall.clone()).unwrap_or_default();
    assert_eq!(text("close-fds"), "dup3(CHANNEL, 3, O_CLOEXEC); close_range(4, ~0U, 0)");
    assert!(!plan.steps.iter().find(|s| s.id == "uid-map").unwrap().shell.contains("setgroups"), "root writes no setgroups");
    assert!(text("uid-map").contains("/proc/PID/uid_map") && !text("uid-map").contains("setgroups"), "{}", text("uid-map"));
    assert!(text("readonly-paths").contains("mount_setattr(AT_FDCWD, \"/proc/sys\", AT_RECURSIVE"), "{}", text("readonly-paths"));
}

/// An injected failure stops the first process at the step that failed, and says which.
#[test]
fn a_failing_call_names_itself_and_stops_the_build() {
    let profile = shell();
    let plan = plan::build(&input(&profile, Mode::Namespace));
    let mut kernel = Recorder::failing(|call| call.to_string().starts_with("mount(\"proc\""), nix::errno::Errno::EPERM);
    let mut ctx = Context { fast: true, ..Default::default() };
    let spawn = plan.steps.iter().position(|s| matches!(s.action, Action::Spawn { .. })).unwrap();
    assert_eq!(build(&plan, spawn + 1, &mut kernel, &mut ctx, clone_flags(&plan)), Next::Failed);
    let failed = ctx.failed.expect("the failure is kept");
    assert_eq!(failed.id, "mount-proc");
    assert_eq!(failed.errno, Some(libc::EPERM));
    assert!(failed.error.unwrap().starts_with("mount(\"proc\""));
    assert!(!kernel.lines().iter().any(|c| c.starts_with("pivot_root")), "nothing after the failure");
    assert!(crate::isolate::hints::fix("mount-proc", Some(libc::EPERM)).contains("procfs cannot be mounted"));
}
