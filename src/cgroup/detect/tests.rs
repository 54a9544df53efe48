//! Detection against realistic `/proc` texts and fake cgroup trees in a
//! temporary directory. Nothing here touches the real `/sys/fs/cgroup`.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

/// The real `/proc/self/mountinfo` of the development machine: cgroup v1 for
/// every controller, cgroup2 at /sys/fs/cgroup/unified with only hugetlb.
const HYBRID_MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334492k,nr_inodes=3083623,mode=755
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684092k
26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

/// The real `/proc/self/cgroup` of the same machine.
const HYBRID_PROC_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/01e0a07e8c3e59517cf893e90287f7c5
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

/// Pure cgroup v2 under systemd (Fedora, Ubuntu 22.04 and later).
const V2_MOUNTINFO: &str = "\
24 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
25 24 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
35 25 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
36 25 0:31 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:10 - pstore pstore rw
";

const V2_DELEGATED_CGROUP: &str = "/user.slice/user-1000.slice/user@1000.service/app.slice/lab.service";
const V2_SESSION_CGROUP: &str = "/user.slice/user-1000.slice/session-2.scope";

/// CentOS 7: pure v1, cpu and cpuacct co-mounted, SELinux's `seclabel` option,
/// systemd's release agent, no cgroup2 at all.
const V1_MOUNTINFO: &str = "\
24 18 0:20 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:7 - tmpfs tmpfs ro,seclabel,mode=755
25 24 0:21 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:8 - cgroup cgroup rw,seclabel,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
27 24 0:23 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,seclabel,memory
28 24 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,seclabel,cpuacct,cpu
29 24 0:25 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,seclabel,pids
30 24 0:26 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,seclabel,net_prio,net_cls
";

const V1_PROC_CGROUP: &str = "\
11:pids:/user.slice/user-1000.slice/session-3.scope
10:net_prio,net_cls:/
9:cpuacct,cpu:/user.slice
8:memory:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-3.scope
";

struct AllowAll;
impl AccessCheck for AllowAll {
    fn check_write(&self, _: &Path) -> Result<(), String> {
        Ok(())
    }
}

struct DenyAll;
impl AccessCheck for DenyAll {
    fn check_write(&self, path: &Path) -> Result<(), String> {
        Err(format!("{} is not writable (denied by the test)", path.display()))
    }
}

/// A fake v2 cgroup directory under `root` with the three control files.
fn fake_v2_cgroup(root: &Path, cgroup: &str, controllers: &str, subtree_control: &str, procs: &str) -> PathBuf {
    let dir = root.join("sys/fs/cgroup").join(cgroup.trim_start_matches('/'));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("cgroup.controllers"), controllers).unwrap();
    fs::write(dir.join("cgroup.subtree_control"), subtree_control).unwrap();
    fs::write(dir.join("cgroup.procs"), procs).unwrap();
    dir
}

fn placement(placements: &[LimitPlacement], limit: Limit) -> &LimitPlacement {
    placements.iter().find(|p| p.limit == limit).unwrap()
}

fn problem_kind(placement: &LimitPlacement) -> Option<ProblemKind> {
    placement.problem.as_ref().map(|p| p.kind)
}

// --- parsing ---

#[test]
fn mountinfo_lists_only_cgroup_mounts_with_their_controllers() {
    let mounts = parse_mountinfo(V1_MOUNTINFO);
    assert_eq!(mounts.len(), 5);
    let cpu = mounts.iter().find(|m| m.mount_point == Path::new("/sys/fs/cgroup/cpu,cpuacct")).unwrap();
    assert_eq!(cpu.version, CgroupVersion::V1);
    assert_eq!(cpu.controllers(), ["cpuacct", "cpu"]);
    let systemd = mounts.iter().find(|m| m.mount_point.ends_with("systemd")).unwrap();
    assert_eq!(systemd.controllers(), ["name=systemd"]);
}

#[test]
fn mountinfo_reads_cgroup2_root_and_read_only_flag() {
    let text = "40 30 0:38 /docker/abc /sys/fs/cgroup ro,nosuid shared:3 master:9 - cgroup2 cgroup2 rw,nsdelegate\n";
    let mounts = parse_mountinfo(text);
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].version, CgroupVersion::V2);
    assert_eq!(mounts[0].root, "/docker/abc");
    assert!(mounts[0].read_only);
    assert!(mounts[0].controllers().is_empty());
}

#[test]
fn mountinfo_unescapes_octal_in_paths() {
    let text = "41 31 0:38 / /mnt/my\\040cgroups rw,relatime - cgroup2 cgroup2 rw\n";
    assert_eq!(parse_mountinfo(text)[0].mount_point, Path::new("/mnt/my cgroups"));
}

#[test]
fn proc_cgroup_reads_v1_and_v2_lines() {
    let memberships = parse_proc_cgroup(V1_PROC_CGROUP);
    assert_eq!(memberships.len(), 5);
    assert_eq!(memberships[2].controllers, ["cpuacct", "cpu"]);
    assert_eq!(memberships[2].path, "/user.slice");
    let v2 = parse_proc_cgroup("0::/user.slice/a:b.scope\n");
    assert_eq!(v2, [Membership { hierarchy_id: 0, controllers: vec![], path: "/user.slice/a:b.scope".into() }]);
}

// --- layouts ---

#[test]
fn this_machine_is_hybrid_with_every_limit_on_v1() {
    let tmp = tempfile::tempdir().unwrap();
    let unified = tmp.path().join("sys/fs/cgroup/unified");
    fs::create_dir_all(&unified).unwrap();
    fs::write(unified.join("cgroup.controllers"), "hugetlb\n").unwrap();
    fs::write(unified.join("cgroup.subtree_control"), "").unwrap();

    let layout = layout_from(HYBRID_MOUNTINFO, HYBRID_PROC_CGROUP, tmp.path());
    let CgroupLayout::Hybrid { hierarchies, unified: v2 } = &layout else { panic!("not hybrid: {layout:?}") };
    assert_eq!(v2.own_path.as_deref(), Some(unified.as_path()));
    assert_eq!(v2.available_controllers, ["hugetlb"]);
    assert!(hierarchies.contains_key("name=systemd"));
    let memory = &hierarchies["memory"];
    assert_eq!(memory.mount, tmp.path().join("sys/fs/cgroup/memory"));
    assert_eq!(
        memory.own_path.as_deref(),
        Some(tmp.path().join("sys/fs/cgroup/memory/process_api/01e0a07e8c3e59517cf893e90287f7c5").as_path())
    );
    assert_eq!(hierarchies["pids"].own_path.as_deref(), Some(tmp.path().join("sys/fs/cgroup/pids").as_path()));

    let placements = place_limits_with(&layout, "sandbox-x", &AllowAll);
    for p in &placements {
        assert!(p.usable(), "{p:?}");
        assert_eq!(p.backend, Some(CgroupVersion::V1));
    }
    assert_eq!(
        placement(&placements, Limit::Memory).limit_file.as_deref(),
        Some(memory.own_path.as_ref().unwrap().join("sandbox-x/memory.limit_in_bytes").as_path())
    );
    assert_eq!(placement(&placements, Limit::Cpu).child.as_deref(), Some(tmp.path().join("sys/fs/cgroup/cpu/sandbox-x").as_path()));
}

#[test]
fn v1_with_cpu_and_cpuacct_co_mounted_shares_one_hierarchy() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout_from(V1_MOUNTINFO, V1_PROC_CGROUP, tmp.path());
    let CgroupLayout::V1 { hierarchies } = &layout else { panic!("not v1: {layout:?}") };
    assert_eq!(hierarchies["cpu"], hierarchies["cpuacct"]);
    assert_eq!(hierarchies["net_cls"], hierarchies["net_prio"]);
    assert_eq!(hierarchies["cpu"].mount, tmp.path().join("sys/fs/cgroup/cpu,cpuacct"));
    assert_eq!(hierarchies["cpu"].own_path.as_deref(), Some(tmp.path().join("sys/fs/cgroup/cpu,cpuacct/user.slice").as_path()));
    // cpu,cpuacct counted once; also systemd, memory, pids, net_cls,net_prio.
    assert_eq!(layout.v1_hierarchies().len(), 5);

    let placements = place_limits_with(&layout, "sandbox-x", &AllowAll);
    let cpu = placement(&placements, Limit::Cpu);
    assert!(cpu.usable());
    assert_eq!(
        cpu.limit_file.as_deref(),
        Some(tmp.path().join("sys/fs/cgroup/cpu,cpuacct/user.slice/sandbox-x/cpu.cfs_quota_us").as_path())
    );
    assert_eq!(
        placement(&placements, Limit::Pids).child.as_deref(),
        Some(tmp.path().join("sys/fs/cgroup/pids/user.slice/user-1000.slice/session-3.scope/sandbox-x").as_path())
    );
}

#[test]
fn pure_v2_with_delegated_controllers_places_every_limit_under_own_cgroup() {
    let tmp = tempfile::tempdir().unwrap();
    let own = fake_v2_cgroup(tmp.path(), V2_DELEGATED_CGROUP, "cpuset cpu io memory pids\n", "cpu memory pids\n", "");
    let proc_cgroup = format!("0::{V2_DELEGATED_CGROUP}\n");

    let layout = layout_from(V2_MOUNTINFO, &proc_cgroup, tmp.path());
    let CgroupLayout::V2 { unified } = &layout else { panic!("not v2: {layout:?}") };
    assert_eq!(unified.mount, tmp.path().join("sys/fs/cgroup"));
    assert_eq!(unified.own_path.as_deref(), Some(own.as_path()));
    assert_eq!(unified.available_controllers, ["cpuset", "cpu", "io", "memory", "pids"]);
    assert!(!unified.own_has_processes);

    // The tempdir belongs to whoever runs the test, so the real check passes.
    let placements = place_limits(&layout, "sandbox-x");
    for p in &placements {
        assert!(p.usable(), "{p:?}");
        assert_eq!(p.backend, Some(CgroupVersion::V2));
        assert_eq!(p.parent.as_deref(), Some(own.as_path()));
        assert!(!p.needs_enabling);
    }
    assert_eq!(placement(&placements, Limit::Memory).limit_file, Some(own.join("sandbox-x/memory.max")));
    assert_eq!(placement(&placements, Limit::Cpu).limit_file, Some(own.join("sandbox-x/cpu.max")));
}

#[test]
fn v2_controller_available_but_not_enabled_needs_enabling_in_an_empty_cgroup() {
    let tmp = tempfile::tempdir().unwrap();
    fake_v2_cgroup(tmp.path(), V2_DELEGATED_CGROUP, "cpu memory pids\n", "pids\n", "");
    let layout = layout_from(V2_MOUNTINFO, &format!("0::{V2_DELEGATED_CGROUP}\n"), tmp.path());
    let placements = place_limits_with(&layout, "sandbox-x", &AllowAll);
    assert!(placement(&placements, Limit::Memory).needs_enabling);
    assert!(placement(&placements, Limit::Memory).usable());
    assert!(!placement(&placements, Limit::Pids).needs_enabling);
}

#[test]
fn v2_session_scope_with_processes_cannot_hand_controllers_down() {
    let tmp = tempfile::tempdir().unwrap();
    fake_v2_cgroup(tmp.path(), V2_SESSION_CGROUP, "memory pids\n", "", "1234\n5678\n");
    let layout = layout_from(V2_MOUNTINFO, &format!("0::{V2_SESSION_CGROUP}\n"), tmp.path());
    assert!(layout.unified().unwrap().own_has_processes);
    let placements = place_limits_with(&layout, "sandbox-x", &AllowAll);
    assert_eq!(problem_kind(placement(&placements, Limit::Memory)), Some(ProblemKind::InternalProcesses));
    assert_eq!(problem_kind(placement(&placements, Limit::Pids)), Some(ProblemKind::InternalProcesses));
    // The first cause blocks every limit: no base cgroup at all.
    assert_eq!(problem_kind(placement(&placements, Limit::Cpu)), Some(ProblemKind::InternalProcesses));
    // It still says where the cgroup would have gone.
    assert!(placement(&placements, Limit::Memory).child.as_ref().unwrap().ends_with("session-2.scope/sandbox-x"));
}

#[test]
fn no_delegation_is_reported_as_not_writable() {
    let tmp = tempfile::tempdir().unwrap();
    fake_v2_cgroup(tmp.path(), V2_DELEGATED_CGROUP, "cpu memory pids\n", "cpu memory pids\n", "");
    let layout = layout_from(V2_MOUNTINFO, &format!("0::{V2_DELEGATED_CGROUP}\n"), tmp.path());
    for p in place_limits_with(&layout, "sandbox-x", &DenyAll) {
        assert_eq!(problem_kind(&p), Some(ProblemKind::NotWritable), "{p:?}");
    }
    let v1 = layout_from(V1_MOUNTINFO, V1_PROC_CGROUP, tmp.path());
    for p in place_limits_with(&v1, "sandbox-x", &DenyAll) {
        assert_eq!(problem_kind(&p), Some(ProblemKind::NotWritable), "{p:?}");
    }
}

#[test]
fn container_mount_of_a_sub_tree_resolves_own_cgroup_at_the_mount_point() {
    let tmp = tempfile::tempdir().unwrap();
    let mountinfo = "700 690 0:30 /docker/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n";
    let layout = layout_from(mountinfo, "0::/docker/abc\n", tmp.path());
    let unified = layout.unified().unwrap();
    assert_eq!(unified.own_path.as_deref(), Some(tmp.path().join("sys/fs/cgroup").as_path()));
    assert!(unified.read_only);
}

#[test]
fn cgroup_outside_the_mount_is_not_visible() {
    let tmp = tempfile::tempdir().unwrap();
    let mountinfo = "700 690 0:30 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    for proc_cgroup in ["0::/docker/other\n", "0::/docker/abcdef\n", "0::/../..\n"] {
        let layout = layout_from(mountinfo, proc_cgroup, tmp.path());
        assert_eq!(layout.unified().unwrap().own_path, None, "{proc_cgroup}");
        for p in place_limits_with(&layout, "sandbox-x", &AllowAll) {
            assert_eq!(problem_kind(&p), Some(ProblemKind::NotVisible));
        }
    }
}

#[test]
fn no_cgroups_at_all() {
    let tmp = tempfile::tempdir().unwrap();
    let mountinfo = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n22 27 0:21 / /proc rw - proc proc rw\n";
    let layout = layout_from(mountinfo, "", tmp.path());
    assert_eq!(layout, CgroupLayout::None);
    for p in place_limits_with(&layout, "sandbox-x", &AllowAll) {
        assert_eq!(problem_kind(&p), Some(ProblemKind::NoCgroups));
        assert_eq!(p.child, None);
    }
    // Memberships without mounts (a container that mounts no cgroupfs) are none too.
    assert_eq!(layout_from(mountinfo, HYBRID_PROC_CGROUP, tmp.path()), CgroupLayout::None);
}

#[test]
fn detect_in_reads_the_fake_proc_and_tolerates_a_missing_proc_cgroup() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("proc/self")).unwrap();
    assert!(detect_in(tmp.path()).is_err(), "no mountinfo is an error");
    fs::write(tmp.path().join("proc/self/mountinfo"), V1_MOUNTINFO).unwrap();
    assert_eq!(detect_in(tmp.path()).unwrap(), CgroupLayout::None);
    fs::write(tmp.path().join("proc/self/cgroup"), V1_PROC_CGROUP).unwrap();
    assert!(matches!(detect_in(tmp.path()).unwrap(), CgroupLayout::V1 { .. }));
}

#[test]
fn malformed_input_never_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage = [
        "",
        "\n\n",
        "-",
        " - ",
        " - cgroup2",
        "1 2 3 4 5 6 - cgroup2",
        "1 2 3 relative relative rw - cgroup cgroup rw,memory",
        "41 31 0:38 / /x\\04 rw - cgroup2 cgroup2 rw",
        "41 31 0:38 / /x\\777\\ rw - cgroup2 cgroup2 rw",
        "41 31 0:38 / /ü\u{0} rw - cgroup cgroup ,,,",
        ":::",
        "x:memory:/a",
        "4294967296:memory:/a",
        "4:memory:relative",
        "0::",
        "0:: /",
        "\u{feff}0::/",
    ];
    for mountinfo in garbage {
        for proc_cgroup in garbage {
            let layout = layout_from(mountinfo, proc_cgroup, tmp.path());
            let _ = place_limits_with(&layout, "sandbox-x", &AllowAll);
        }
        let _ = layout_from(&format!("{HYBRID_MOUNTINFO}{mountinfo}"), mountinfo, tmp.path());
    }
}

#[test]
fn child_name_must_be_one_component() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout_from(V1_MOUNTINFO, V1_PROC_CGROUP, tmp.path());
    for name in ["", ".", "..", "../escape", "a/b"] {
        for p in place_limits_with(&layout, name, &AllowAll) {
            assert_eq!(problem_kind(&p), Some(ProblemKind::InvalidName), "{name}");
        }
    }
}

#[test]
fn limit_files_per_backend() {
    assert_eq!(Limit::Memory.limit_file(CgroupVersion::V2), "memory.max");
    assert_eq!(Limit::Memory.limit_file(CgroupVersion::V1), "memory.limit_in_bytes");
    assert_eq!(Limit::Pids.limit_file(CgroupVersion::V1), "pids.max");
    assert_eq!(Limit::Cpu.limit_file(CgroupVersion::V2), "cpu.max");
}

#[test]
fn layout_serializes_with_its_version() {
    let json = serde_json::to_value(CgroupLayout::None).unwrap();
    assert_eq!(json["version"], "none");
}
