//! Cgroups: how they are set up here, and where the sandbox's limits go.
//!
//! [`detect`] reads the layout (v1, v2, hybrid or none) and places each limit
//! in a child of the tool's own cgroup. The cgroup manager ([`manager`]: create,
//! write limits, move the sandbox's process in, kill, remove) builds on its
//! [`LimitPlacement`]s: it creates `child`, writes `limit_file`, and enables the
//! controller first when `needs_enabling` says so. It never touches a path
//! detection did not name.

pub mod detect;
pub mod manager;

pub use detect::{
    AccessCheck, CgroupLayout, CgroupMount, CgroupVersion, DetectError, EffectiveAccess, Limit, LimitPlacement, Membership, Problem,
    ProblemKind, UnifiedHierarchy, V1Hierarchy, detect, detect_in, layout_from, place_limits, place_limits_with,
};
pub use manager::{
    CgroupManager, Limits, Stats, Unavailable, dir_name, leftovers, manager_for, owner_pid, remove_leftovers, remove_leftovers_near,
    run_name,
};
