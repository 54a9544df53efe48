//! Cgroups: how they are set up here, and where the sandbox's limits go.
//!
//! [`detect`] reads the layout (v1, v2, hybrid or none) and places each limit;
//! on v2, [`site`] picks the base cgroup by systemd's delegation rules and
//! [`systemd`] asks systemd for a delegated scope first where it is PID 1.
//! The cgroup manager ([`manager`]: create, write limits, move the sandbox's
//! process in, kill, remove) builds on the [`LimitPlacement`]s: it creates
//! `child`, writes `limit_file`, and enables the controller first when
//! `needs_enabling` says so. It never touches a path detection did not name.

pub mod detect;
pub mod manager;
pub mod options;
pub mod site;
pub mod systemd;

pub use detect::{
    AccessCheck, CgroupLayout, CgroupMount, CgroupVersion, DetectError, EffectiveAccess, Limit, LimitPlacement, Membership, Placing,
    Problem, ProblemKind, UnifiedHierarchy, V1Hierarchy, detect, detect_in, layout_from, place_limits, place_limits_in, place_limits_with,
};
pub use manager::{
    CgroupManager, Limits, Stats, SupervisorLeaf, Unavailable, attach, attach_dirs, dir_name, enter_supervisor_leaf, leftovers,
    manager_for, owner_pid, remove_leftovers, remove_leftovers_near, run_name,
};
pub use options::CgroupOptions;
