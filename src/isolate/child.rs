//! The sandbox's own processes, and how they walk the plan:
//!
//! - fast (nothing explained): one clone3 made every namespace, so the first
//!   child is PID 1 at once (or, in chroot mode and for `exec`, becomes the
//!   command itself); it waits for the supervisor's "go" (id maps, cgroup, the
//!   idmapped rootfs), then carries out its steps;
//! - explained: the first child makes the namespaces one at a time, waits for
//!   its id maps after the user namespace, and forks PID 1 after the PID
//!   namespace; every step reports an event with what it changed.
//!
//! PID 1 builds the new root, then starts the command (`start_command`) and
//! stays as its init (`pid1::serve`).

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::{SigHandler, Signal};

use super::channel::{Event, Message, send, wait_for_go};
use super::command::{self, TOOL_FAILED};
use super::kernel::{Forked, Kernel, Real, SysError};
use super::observe;
use super::pid1;
use super::pty::{self, Terminals};
use super::setup::{self, Context, namespace_link};
use crate::plan::{Action, Actor, Namespace, Plan, Step};

/// How the first child starts.
pub(crate) struct Start<'p> {
    pub plan: &'p Plan,
    /// The first step after `start-child`.
    pub first: usize,
    pub ctx: Context,
    /// The namespaces the clone already made (fast); empty when explained.
    pub made: CloneFlags,
    /// Fast: wait for the supervisor's "go" before the first step.
    pub fast: bool,
    /// The pty's slave, for the standard descriptors that are host terminals.
    pub slave: Option<OwnedFd>,
    pub terminals: Terminals,
}

/// The first child's whole life; ends in exec or `_exit`.
pub(crate) fn main(start: Start) -> ! {
    let status = first_child(start);
    // SAFETY: leaving the forked child without running the parent's destructors.
    unsafe { libc::_exit(status) }
}

pub(crate) fn new_event(index: usize, step: &Step) -> Event {
    Event {
        index,
        id: step.id.to_string(),
        actor: format!("{:?}", step.actor).to_lowercase(),
        ok: true,
        error: None,
        errno: None,
        observed: Default::default(),
    }
}

/// Die with the supervisor (SIGKILL), so a killed supervisor leaves no sandbox
/// behind. (Had it died before this line, the channel's end tells: its "go"
/// never comes.)
fn die_with_parent() -> bool {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_ok()
}

fn first_child(mut start: Start) -> i32 {
    if !die_with_parent() {
        return TOOL_FAILED;
    }
    let plan = start.plan;
    let pid1 = start.fast && plan.has_init();
    if pid1 {
        // Signals sent while PID 1 still builds the root wait for it.
        pid1::catch_signals();
    } else if plan.has_init() {
        // The explained child only waits for PID 1; signals for the command go to it.
        for signal in pid1::FORWARDED {
            // SAFETY: setting a disposition to SIG_IGN.
            let _ = unsafe { nix::sys::signal::signal(*signal, SigHandler::SigIgn) };
        }
    }
    if let Some(slave) = start.slave.take() {
        if pty::attach(slave.as_fd(), start.terminals).is_err() {
            return TOOL_FAILED;
        }
        start.ctx.terminal = true;
        // A plan without a session step (chroot mode) gets its session here,
        // with the pty as its controlling terminal (the host's is out of reach).
        if !plan.steps.iter().any(|s| s.action == Action::NewSession) {
            let _ = nix::unistd::setsid();
            pty::take_controlling();
        }
    }
    if start.fast {
        start.ctx.fast = true;
        let Some(channel) = start.ctx.channel else { return TOOL_FAILED };
        let (go, fd) = wait_for_go(channel);
        if !go {
            return TOOL_FAILED;
        }
        start.ctx.idmapped_rootfs = fd;
    }
    walk(plan, start.first, &mut start.ctx, start.made, pid1)
}

/// Where `build` stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Explained: the PID namespace step, whose fork makes PID 1.
    PidNamespace(usize),
    /// The command's step.
    Exec(usize),
    /// A step failed (and said so).
    Failed,
}

/// Carry out the sandbox's steps from `from` in this process, through
/// `kernel`, up to the step that starts a process. `made`: the namespaces the
/// clone made already.
pub(crate) fn build(plan: &Plan, from: usize, kernel: &mut dyn Kernel, ctx: &mut Context, made: CloneFlags) -> Next {
    for (index, step) in plan.steps.iter().enumerate().skip(from) {
        if step.actor == Actor::Supervisor {
            continue;
        }
        if let Action::Unshare { namespace } = step.action
            && made.contains(CloneFlags::from_bits_truncate(namespace.clone_flag()))
        {
            continue;
        }
        // Explained, the command waits until every step before it has been
        // told: its output must not run into the narration.
        let before_output = ctx.narrate && matches!(step.action, Action::Exec { .. });
        if !await_turn(ctx, index, before_output) {
            return Next::Failed;
        }
        match &step.action {
            Action::Unshare { namespace: Namespace::Pid } => return Next::PidNamespace(index),
            Action::Exec { .. } => return Next::Exec(index),
            _ => {}
        }
        let mut event = new_event(index, step);
        let before = ctx.narrate.then(|| observe::before(&step.action));
        if let (Action::Unshare { namespace }, true) = (&step.action, ctx.narrate) {
            event.observed.insert("before".into(), namespace_link(*namespace));
        }
        let result = setup::perform(kernel, &step.action, ctx).and_then(|()| match &step.action {
            Action::BindRootfs { rootfs, .. } => enter_mapped_ids(plan, rootfs, kernel, ctx),
            Action::MountOverlay { target, .. } => reach_through_fd(target, kernel, ctx),
            _ => Ok(()),
        });
        let result = result.and_then(|()| match step.action {
            // A change of credentials clears the parent-death signal: arm it again.
            Action::BindRootfs { .. } | Action::SetUser { .. } => kernel.set_parent_death_signal(),
            // After setsid: the pty becomes the session's terminal.
            Action::NewSession if ctx.terminal => kernel.take_terminal(),
            _ => Ok(()),
        });
        if let (Ok(()), Some(before)) = (&result, before) {
            observe::after(&step.action, before, &mut event.observed);
            if let Action::Unshare { namespace } = &step.action {
                event.observed.insert("after".into(), namespace_link(*namespace));
            }
        }
        if !report(ctx, event, result) {
            return Next::Failed;
        }
        // Explained: after its user namespace the child waits for the
        // supervisor (uid maps, the cgroup, an idmapped rootfs).
        if let (Action::Unshare { namespace: Namespace::User }, Some(channel)) = (&step.action, ctx.channel)
            && !ctx.fast
        {
            send(channel, &Message::NeedIds);
            let (go, fd) = wait_for_go(channel);
            if !go {
                return Next::Failed;
            }
            ctx.idmapped_rootfs = fd;
        }
    }
    Next::Failed
}

/// `build`, then what its stop calls for: PID 1's fork (explained), the
/// command as PID 1's child (`pid1`), or the command in this very process
/// (chroot mode, `exec`). Returns the status to exit with.
pub(crate) fn walk(plan: &Plan, from: usize, ctx: &mut Context, made: CloneFlags, pid1: bool) -> i32 {
    let mut kernel = Real::new(None);
    match build(plan, from, &mut kernel, ctx, made) {
        Next::Failed => TOOL_FAILED,
        Next::PidNamespace(index) => fork_init(plan, index, &plan.steps[index], &mut kernel, ctx),
        Next::Exec(index) => {
            let step = &plan.steps[index];
            let Action::Exec { argv, env, workdir } = &step.action else { return TOOL_FAILED };
            if pid1 {
                return start_command(&mut kernel, index, step, argv, env, workdir, ctx);
            }
            pid1::restore_signals();
            report(ctx, new_event(index, step), Ok(()));
            let (status, error) = command::exec(argv, env, workdir, ctx.channel);
            ctx.exec_error = Some(error);
            status
        }
    }
}

/// The first ids inside of the plan's uid and gid maps.
fn first_inside_ids(plan: &Plan) -> Option<(u32, u32)> {
    plan.steps.iter().find_map(|s| match &s.action {
        Action::IdMaps { uid_map, gid_map, .. } => {
            let first = |map: &str| map.split_whitespace().next().and_then(|v| v.parse::<u32>().ok());
            Some((first(uid_map)?, first(gid_map)?))
        }
        _ => None,
    })
}

/// Until now this process kept the host's ids, unmapped in its user namespace
/// (it owned the store, so it could walk it to mount the rootfs). From here on
/// it takes the mapped ones, or files cannot even be created (EOVERFLOW), and
/// reaches the rootfs through an fd instead of the store's private path.
fn enter_mapped_ids(plan: &Plan, rootfs: &Path, kernel: &mut dyn Kernel, ctx: &mut Context) -> Result<(), SysError> {
    let fd = kernel.open_path(&ctx.reach(rootfs))?;
    ctx.reach.push((rootfs.to_path_buf(), fd));
    // An instance's layer too, while the host's ids may still walk to it: the
    // state directory may sit below directories only host root may pass
    // (`mktemp -d`, /root), which the mapped ids cannot (EACCES at mount-overlay).
    // A throwaway layer lives on a tmpfs mounted later, reachable anyway.
    // With a disk, the layer's directory (the disk's mount point) and the
    // merged tree's (the instance's directory) are two: reach both.
    let layer: Vec<PathBuf> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::MountOverlay { upper, target, .. } => Some([upper.parent(), target.parent()]),
            _ => None,
        })
        .flatten()
        .flatten()
        .filter(|dir| !dir.starts_with(rootfs))
        .map(Path::to_path_buf)
        .collect();
    for dir in layer {
        if !dir.is_dir() || ctx.reach.iter().any(|(root, _)| dir.starts_with(root)) {
            continue;
        }
        let fd = kernel.open_path(&ctx.reach(&dir))?;
        ctx.reach.push((dir, fd));
    }
    let Some((uid, gid)) = first_inside_ids(plan) else { return Ok(()) };
    // The overlay's upper layer belongs to the sandbox's root: mount it as that root.
    kernel.set_ids(uid, gid, uid == 0)
}

/// From now on the new root is the merged tree: reach it by an fd.
fn reach_through_fd(target: &Path, kernel: &mut dyn Kernel, ctx: &mut Context) -> Result<(), SysError> {
    let fd = kernel.open_path(&ctx.reach(target))?;
    ctx.reach.push((target.to_path_buf(), fd));
    Ok(())
}

/// Explained: enter the PID namespace and fork PID 1 (the PID namespace of a
/// process never changes, only its children's).
fn fork_init(plan: &Plan, index: usize, step: &Step, kernel: &mut dyn Kernel, ctx: &mut Context) -> i32 {
    let mut event = new_event(index, step);
    event.observed.insert("before".into(), namespace_link(Namespace::Pid));
    if let Err(e) = setup::perform(kernel, &step.action, ctx) {
        report(ctx, event, Err(e));
        return TOOL_FAILED;
    }
    match kernel.fork() {
        Err(e) => {
            report(ctx, event, Err(e));
            TOOL_FAILED
        }
        Ok(Forked::Child) => {
            if !die_with_parent() {
                // SAFETY: leave without the parent's destructors.
                unsafe { libc::_exit(TOOL_FAILED) }
            }
            pid1::catch_signals();
            event.observed.insert("after".into(), namespace_link(Namespace::Pid));
            event.observed.insert("pid_inside".into(), nix::unistd::getpid().to_string());
            // /proc is still the host's here: its idea of "self" is our PID outside.
            if let Ok(outside) = std::fs::read_link("/proc/self") {
                event.observed.insert("pid_outside".into(), outside.display().to_string());
            }
            report(ctx, event, Ok(()));
            let status = walk(plan, index + 1, ctx, CloneFlags::empty(), true);
            // SAFETY: leave without the parent's destructors.
            unsafe { libc::_exit(status) }
        }
        Ok(Forked::Parent(child)) => {
            if let Some(channel) = ctx.channel {
                send(channel, &Message::Init { pid: child.as_raw() });
                // SAFETY: the channel fd is ours; init keeps its own copy.
                drop(unsafe { OwnedFd::from_raw_fd(channel) });
            }
            kernel.wait(child).unwrap_or(TOOL_FAILED)
        }
    }
}

/// PID 1 starts the command (none: a background instance), tells the
/// supervisor the sandbox is ready, and stays as its init.
fn start_command(
    kernel: &mut dyn Kernel,
    index: usize,
    step: &Step,
    argv: &[String],
    env: &[(String, String)],
    workdir: &Path,
    ctx: &mut Context,
) -> i32 {
    let mut event = new_event(index, step);
    let command = if argv.is_empty() {
        None
    } else {
        match kernel.fork() {
            Err(e) => {
                report(ctx, event, Err(e));
                return TOOL_FAILED;
            }
            Ok(Forked::Child) => {
                pid1::restore_signals();
                command::into_foreground(ctx.terminal);
                let (status, _) = command::exec(argv, env, workdir, ctx.channel);
                // SAFETY: exec failed; leave without destructors.
                unsafe { libc::_exit(status) }
            }
            Ok(Forked::Parent(child)) => {
                // Also here: a signal may come before the child ran its setpgid.
                let _ = nix::unistd::setpgid(child, child);
                Some(child)
            }
        }
    };
    if ctx.narrate {
        if let Some(command) = command {
            event.observed.insert("command_pid_inside".into(), command.to_string());
        }
        event.observed.insert("init_pid_inside".into(), nix::unistd::getpid().to_string());
    }
    report(ctx, event, Ok(()));
    if let Some(channel) = ctx.channel.take() {
        send(channel, &Message::Started);
        // SAFETY: PID 1's copy of the channel; the command keeps its own until exec.
        drop(unsafe { OwnedFd::from_raw_fd(channel) });
    }
    pid1::serve(command)
}

/// `explain --step` (or `always`): say which step comes next and wait for the supervisor.
pub(crate) fn await_turn(ctx: &Context, index: usize, always: bool) -> bool {
    let Some(channel) = ctx.channel.filter(|_| ctx.step_mode || always) else { return true };
    send(channel, &Message::Ready { index });
    wait_for_go(channel).0
}

/// Send the step's event (explained: every one; else a failure only); false when it failed.
pub(crate) fn report(ctx: &mut Context, mut event: Event, result: Result<(), SysError>) -> bool {
    if let Err(e) = &result {
        event.ok = false;
        event.error = Some(e.to_string());
        event.errno = Some(e.errno as i32);
    }
    let ok = event.ok;
    match ctx.channel {
        Some(channel) if !ok || ctx.narrate => send(channel, &Message::Event(event)),
        Some(_) => {}
        None if !ok => ctx.failed = Some(event),
        None => {}
    }
    ok
}
