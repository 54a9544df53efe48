use super::*;
use crate::profile;

fn input(profile: &Profile, mode: Mode) -> Input<'_> {
    Input {
        profile,
        mode,
        rootfs: PathBuf::from("/var/lib/sandbox/store/rootfs/abc"),
        command: vec!["/bin/bash".into(), "-l".into()],
        term: Some("xterm-256color".into()),
        ids: IdMapping::Range { host_base: 1 << 20 },
        idmapped: true,
        cgroup: CgroupPlan {
            dirs: vec![PathBuf::from("/sys/fs/cgroup/sandbox-run-1")],
            writes: vec![CgroupWrite { file: "/sys/fs/cgroup/sandbox-run-1/memory.max".into(), value: "536870912".into() }],
            procs: vec![PathBuf::from("/sys/fs/cgroup/sandbox-run-1/cgroup.procs")],
            ..Default::default()
        },
        layer: None,
        throwaway: false,
    }
}

fn shell() -> Profile {
    profile::load("shell", Path::new("/")).unwrap()
}

#[test]
fn namespace_plan_runs_in_the_kernel_s_order() {
    let profile = shell();
    let plan = build(&input(&profile, Mode::Namespace));
    let ids = plan.ids();
    let pos = |id: &str| ids.iter().position(|s| *s == id).unwrap_or_else(|| panic!("{id} missing from {ids:?}"));
    // The cgroup and its limits exist before any process is put in it.
    assert!(pos("cgroup-create") < pos("cgroup-memory-limit") && pos("cgroup-memory-limit") < pos("cgroup-join"));
    // The user namespace comes first: it owns the others; the ids are mapped before they are used.
    assert_eq!(ids.iter().find(|i| i.starts_with("new-")), Some(&"new-user-namespace"));
    assert!(pos("new-user-namespace") < pos("uid-map") && pos("uid-map") < pos("new-mount-namespace"));
    // The cgroup namespace after joining the cgroup, so its root is the sandbox's cgroup.
    assert!(pos("cgroup-join") < pos("new-cgroup-namespace"));
    // Mounts are private before anything is mounted; /proc before the old root goes.
    assert!(pos("mount-private") < pos("bind-rootfs") && pos("mount-proc") < pos("pivot-root"));
    assert!(pos("pivot-root") < pos("readonly-paths") && pos("readonly-paths") < pos("mask-paths"));
    // Privileges go last, seccomp the very last before exec.
    assert!(pos("set-user") < pos("drop-capabilities") && pos("drop-capabilities") < pos("no-new-privs"));
    assert_eq!(ids[ids.len() - 4..], ["seccomp", "exec-command", "wait", "cgroup-remove"]);
}

#[test]
fn uid_map_never_maps_root_to_host_root() {
    let profile = shell();
    let plan = build(&input(&profile, Mode::Namespace));
    let maps = plan.steps.iter().find_map(|s| match &s.action {
        Action::IdMaps { uid_map, .. } => Some(uid_map.clone()),
        _ => None,
    });
    assert_eq!(maps.as_deref(), Some("0 1048576 65536"));
}

#[test]
fn host_network_keeps_the_host_namespace_and_no_cgroup_no_cgroup_namespace() {
    let mut profile = shell();
    profile.network = NetworkMode::Host;
    let mut input = input(&profile, Mode::Namespace);
    input.cgroup = CgroupPlan::default();
    let ids = build(&input).ids();
    for absent in ["new-net-namespace", "loopback-up", "new-cgroup-namespace", "cgroup-create", "cgroup-join"] {
        assert!(!ids.contains(&absent), "{absent} in {ids:?}");
    }
}

#[test]
fn student_keeps_no_capability_and_root_keeps_docker_s_set() {
    let profile = shell();
    let keep = |p: &Profile| {
        build(&input(p, Mode::Namespace)).steps.iter().find_map(|s| match &s.action {
            Action::DropCapabilities { keep } => Some(keep.clone()),
            _ => None,
        })
    };
    assert_eq!(keep(&profile), Some(vec![]));
    let mut root = profile.clone();
    root.user = profile::User::default();
    let kept = keep(&root).unwrap();
    assert!(kept.contains(&"CAP_CHOWN".to_string()) && !kept.contains(&"CAP_SYS_ADMIN".to_string()));
}

#[test]
fn chroot_plan_is_the_classic_jail() {
    let profile = shell();
    let ids = build(&input(&profile, Mode::Chroot)).ids();
    assert_eq!(
        ids,
        [
            "start-child",
            "new-mount-namespace",
            "mount-private",
            "bind-rootfs",
            "readonly-paths",
            "mount-proc",
            "mount-tmp",
            "chroot",
            "set-user",
            "close-fds",
            "exec-command",
            "wait"
        ]
    );
}

#[test]
fn environment_is_clean_and_profile_env_wins() {
    let mut profile = shell();
    profile.env.insert("TERM".into(), "vt100".into());
    let env = environment(&input(&profile, Mode::Namespace));
    let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    assert_eq!(get("HOME"), Some("/home/student"));
    assert_eq!(get("USER"), Some("student"));
    assert_eq!(get("TERM"), Some("vt100"));
    assert_eq!(env.iter().filter(|(k, _)| k == "TERM").count(), 1);
    assert!(get("PATH").unwrap().starts_with("/usr/local/sbin"));
}

#[test]
fn shell_equivalents_quote_what_needs_quoting() {
    assert_eq!(quote("/usr/bin/ls"), "/usr/bin/ls");
    assert_eq!(quote("it's"), r"'it'\''s'");
    assert_eq!(quote(""), "''");
}
