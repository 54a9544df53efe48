//! The supervisor: the `sandbox` process on the host. It interprets the plan's
//! supervisor steps (the cgroup, id maps, the idmapped tree, waiting,
//! teardown), starts the sandbox's first process, relays a terminal, passes
//! signals on, and reports each step to its observer.
//!
//! ```text
//! supervisor (host): cgroup, limits, clone3, uid maps, cgroup join, waits, cleans up
//!   └── PID 1 inside (fast: the clone3 child itself): builds the new root,
//!         starts the command, reaps zombies, forwards signals
//!         └── the command
//! ```
//!
//! Explained (`explain`), the same plan runs one step at a time: a first
//! child makes the namespaces one by one and forks PID 1, and every step
//! reports what it changed.

use std::os::fd::{AsFd, IntoRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::CloneFlags;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::socket::{AddressFamily, SockFlag, SockType};
use nix::unistd::Pid;

use super::channel::{Event, Message, Receiver, answer};
use super::child::{self, Start, new_event};
use super::command::TOOL_FAILED;
use super::kernel::{Forked, Kernel, Real, SysError, SysResult};
use super::pid1::FORWARDED;
use super::pty::{self, Terminals};
use super::setup::Context;
use crate::cgroup::CgroupManager;
use crate::plan::{Action, Actor, Namespace, Plan, Step};

/// What the person at `explain --step` answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pause {
    Go,
    /// Leave step mode: the sandbox is stopped and removed.
    Quit,
}

pub struct Options<'a> {
    /// Give the sandbox a pty of its own when a standard descriptor is a terminal.
    pub tty: bool,
    pub cgroup: Option<&'a dyn CgroupManager>,
    /// Pause before each step until this returns (explain --step); None: no
    /// pause. It gets the step's index and the host PID of the sandbox's init
    /// once there is one.
    pub before_step: Option<&'a mut dyn FnMut(usize, Option<i32>) -> Pause>,
    /// Told the host PID of the sandbox's init once the sandbox is ready, and
    /// the supervisor's descriptor of the instance's disk mount (if it has one).
    pub on_init: Option<&'a mut dyn FnMut(i32, Option<i32>)>,
    /// Explain: one step at a time, every step reported with what it changed.
    pub narrate: bool,
}

/// How a sandbox ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The command's exit status, 128+N for a death by signal N, or 125-127.
    pub status: i32,
    /// The step that failed, with the system call and errno.
    pub failed: Option<Event>,
    /// The command could not be started.
    pub exec_error: Option<String>,
    /// PID 1 of the sandbox as the host numbers it.
    pub init_pid: Option<i32>,
    /// Processes the OOM killer ended in the sandbox's cgroup.
    pub oom_kills: u64,
    /// The limits the sandbox reached (memory.events, pids.events), for people.
    pub limit_notes: Vec<String>,
    /// `explain --step` was left before its end (q or Ctrl-C).
    pub quit: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0}")]
    Sys(#[from] SysError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The supervisor's own steps; for an action that is not the supervisor's, nothing.
/// `child`: the sandbox's first process, once there is one. Returns a
/// descriptor to pass to it (the idmapped tree).
pub(crate) fn perform_step(kernel: &mut dyn Kernel, action: &Action, child: Option<Pid>) -> SysResult<Option<OwnedFd>> {
    let child_pid = child.unwrap_or(Pid::from_raw(0));
    let proc = |file: &str| match child {
        Some(pid) => PathBuf::from(format!("/proc/{pid}/{file}")),
        None => PathBuf::from(format!("/proc/PID/{file}")),
    };
    match action {
        Action::CgroupMoveSelf { leaf } => kernel.cgroup_move_self(leaf)?,
        Action::CgroupCreate { dirs, enable } => kernel.cgroup_create(dirs, enable.as_ref())?,
        Action::CgroupLimit { write } => kernel.write_file(&write.file, &write.value)?,
        Action::Spawn { into_cgroup } => {
            kernel.clone3(CloneFlags::empty(), into_cgroup.as_deref())?;
        }
        Action::IdMaps { uid_map, gid_map, deny_setgroups } => {
            kernel.write_file(&proc("uid_map"), uid_map)?;
            // An unprivileged writer must deny setgroups before it may write gid_map.
            if *deny_setgroups {
                kernel.write_file(&proc("setgroups"), "deny")?;
            }
            kernel.write_file(&proc("gid_map"), gid_map)?;
        }
        Action::IdmapRootfs { rootfs } => return kernel.idmapped_tree(rootfs, child_pid).map(Some),
        Action::DiskImage { image } => return kernel.disk_mount(image, false).map(Some),
        Action::CgroupJoin { procs } => kernel.cgroup_join(procs, child_pid)?,
        Action::JoinPid { init_pid } => kernel.setns(*init_pid, &[Namespace::Pid])?,
        Action::Wait => {
            kernel.wait(child_pid)?;
        }
        Action::CgroupRemove { dirs } => kernel.cgroup_remove(dirs)?,
        _ => {}
    }
    Ok(None)
}

/// Supervisor steps that come after the first process exists and before it may go on.
pub(crate) fn after_spawn(action: &Action) -> bool {
    matches!(action, Action::IdMaps { .. } | Action::IdmapRootfs { .. } | Action::CgroupJoin { .. })
}

/// Supervisor steps of the end.
pub(crate) fn teardown(action: &Action) -> bool {
    matches!(action, Action::Wait | Action::CgroupRemove { .. })
}

/// The namespaces a fast launch makes with its one clone3: every namespace
/// step, except the cgroup namespace when the supervisor still has to move the
/// child into its cgroup (a cgroup namespace takes its creator's cgroup as root).
pub(crate) fn clone_flags(plan: &Plan) -> CloneFlags {
    let joins_later = plan.steps.iter().any(|s| s.actor == Actor::Supervisor && matches!(s.action, Action::CgroupJoin { .. }));
    plan.steps
        .iter()
        .filter_map(|s| match s.action {
            Action::Unshare { namespace } if s.actor == Actor::Child => Some(namespace),
            _ => None,
        })
        .filter(|n| !(joins_later && *n == Namespace::Cgroup))
        .fold(CloneFlags::empty(), |flags, n| flags | CloneFlags::from_bits_truncate(n.clone_flag()))
}

/// Run a plan to its end: the command's status, or the step that failed.
pub fn launch<'a>(plan: &Plan, options: Options<'a>, observer: &'a mut dyn FnMut(&Event)) -> Result<Outcome, LaunchError> {
    let seccomp = if plan.steps.iter().any(|s| matches!(s.action, Action::Seccomp { .. })) {
        super::seccomp::program().map_err(|e| SysError { call: format!("the seccomp filter: {e}"), errno: nix::errno::Errno::EINVAL })?
    } else {
        Vec::new()
    };
    let terminals = if options.tty { Terminals::of_this_process() } else { Terminals::default() };
    let stepwise = options.narrate || options.before_step.is_some();
    let mut supervisor = Supervisor {
        plan,
        kernel: Real::new(options.cgroup),
        cgroup: options.cgroup,
        before_step: options.before_step,
        on_init: options.on_init,
        narrate: options.narrate,
        observer,
        outcome: Outcome { status: TOOL_FAILED, ..Default::default() },
        cgroup_made: false,
        disk: None,
    };
    let ctx = Context { narrate: options.narrate, step_mode: supervisor.before_step.is_some(), seccomp, ..Default::default() };
    supervisor.run(ctx, terminals, stepwise)?;
    Ok(supervisor.outcome)
}

struct Supervisor<'p, 'o> {
    plan: &'p Plan,
    kernel: Real<'o>,
    cgroup: Option<&'o dyn CgroupManager>,
    before_step: Option<&'o mut dyn FnMut(usize, Option<i32>) -> Pause>,
    on_init: Option<&'o mut dyn FnMut(i32, Option<i32>)>,
    narrate: bool,
    observer: &'o mut dyn FnMut(&Event),
    outcome: Outcome,
    /// The sandbox's cgroup exists: the teardown removes it, whatever happens.
    cgroup_made: bool,
    /// The instance's disk, a detached mount the child inherits and PID 1
    /// attaches. Kept to the end, so the tool can read the layer while the
    /// sandbox runs (`/proc/SUPERVISOR/fd/N`); it closes with this process.
    disk: Option<OwnedFd>,
}

impl Supervisor<'_, '_> {
    fn pause(&mut self, index: usize) -> Pause {
        let init = self.outcome.init_pid;
        match self.before_step.as_mut() {
            Some(pause) => pause(index, init),
            None => Pause::Go,
        }
    }

    /// One supervisor step, reported; false when it failed.
    fn step(&mut self, index: usize, step: &Step, child: Option<Pid>) -> (bool, Option<OwnedFd>) {
        let mut event = new_event(index, step);
        let result = perform_step(&mut self.kernel, &step.action, child);
        if result.is_ok() {
            if let Action::CgroupCreate { .. } = step.action {
                self.cgroup_made = true;
            }
            if self.narrate {
                observe_supervisor(&step.action, child, &mut event);
            }
        }
        let (ok, fd) = match result {
            Ok(fd) => (true, fd),
            Err(e) => {
                event.ok = false;
                event.error = Some(e.to_string());
                event.errno = Some(e.errno as i32);
                (false, None)
            }
        };
        if self.narrate || !ok {
            (self.observer)(&event);
        }
        if !ok {
            self.outcome.failed = Some(event);
        }
        (ok, fd)
    }

    /// The supervisor steps from `from` up to the first one that is not
    /// (or up to `start-child`): false when one failed or the person quit.
    fn steps_before_spawn(&mut self) -> Option<usize> {
        for (index, step) in self.plan.steps.iter().enumerate() {
            if let Action::Spawn { .. } = step.action {
                return Some(index);
            }
            if step.actor != Actor::Supervisor {
                continue;
            }
            if self.pause(index) == Pause::Quit {
                self.outcome.quit = true;
                return None;
            }
            let (ok, fd) = self.step(index, step, None);
            if !ok {
                return None;
            }
            if let (Action::DiskImage { .. }, Some(fd)) = (&step.action, fd) {
                self.disk = Some(fd);
            }
        }
        None
    }

    /// The supervisor steps between the start of the first process and its "go".
    fn steps_after_spawn(&mut self, child: Pid, channel: &OwnedFd) -> Result<(), LaunchError> {
        let mut passed = None;
        let mut go = true;
        let steps: Vec<(usize, &Step)> =
            self.plan.steps.iter().enumerate().filter(|(_, s)| s.actor == Actor::Supervisor && after_spawn(&s.action)).collect();
        for (index, step) in steps {
            if self.pause(index) == Pause::Quit {
                self.outcome.quit = true;
                go = false;
                break;
            }
            let (ok, fd) = self.step(index, step, Some(child));
            if !ok {
                go = false;
                break;
            }
            passed = fd.or(passed);
        }
        answer(channel, go, passed.as_ref())?;
        Ok(())
    }

    fn run(&mut self, mut ctx: Context, terminals: Terminals, stepwise: bool) -> Result<(), LaunchError> {
        let Some(spawn_index) = self.steps_before_spawn() else {
            return self.finish(None, None, terminals);
        };
        ctx.disk = self.disk.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
        // chroot mode with nothing to relay or explain: this process becomes the command.
        if !stepwise && !terminals.any() && !self.plan.has_init() && self.plan.mode == crate::profile::Mode::Chroot {
            let status = child::walk(self.plan, spawn_index + 1, &mut ctx, CloneFlags::empty(), false);
            self.outcome.status = status;
            self.outcome.exec_error = ctx.exec_error;
            if let Some(event) = ctx.failed {
                (self.observer)(&event);
                self.outcome.failed = Some(event);
                self.outcome.status = TOOL_FAILED;
            }
            return Ok(());
        }
        let Action::Spawn { into_cgroup } = &self.plan.steps[spawn_index].action else { unreachable!("found as Spawn") };
        if self.pause(spawn_index) == Pause::Quit {
            self.outcome.quit = true;
            return self.finish(None, None, terminals);
        }
        let (parent_end, child_end) = nix::sys::socket::socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
            .map_err(fail("socketpair(AF_UNIX)"))?;
        let pty = match (terminals.first(), terminals.any()) {
            (Some(fd), true) => {
                // SAFETY: fd is one of our standard descriptors.
                let terminal = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                Some(pty::open_for_terminal(terminal).map_err(fail("openpty"))?)
            }
            _ => None,
        };
        let made = if stepwise { CloneFlags::empty() } else { clone_flags(self.plan) };
        // The forwarder thread starts after the clone: the child must be a copy of a single thread.
        let forked = self.kernel.clone3(made, into_cgroup.as_deref());
        let child = match forked {
            Err(e) => {
                let mut event = new_event(spawn_index, &self.plan.steps[spawn_index]);
                event.ok = false;
                event.error = Some(e.to_string());
                event.errno = Some(e.errno as i32);
                (self.observer)(&event);
                self.outcome.failed = Some(event);
                return self.finish(None, None, terminals);
            }
            Ok(Forked::Child) => {
                drop(parent_end);
                ctx.channel = Some(child_end.into_raw_fd());
                let (slave, terminals) = match pty {
                    Some(p) => (Some(p.slave), terminals),
                    None => (None, Terminals::default()),
                };
                child::main(Start { plan: self.plan, first: spawn_index + 1, ctx, made, fast: !stepwise, slave, terminals })
            }
            Ok(Forked::Parent(child)) => child,
        };
        drop(child_end);
        let master = pty.map(|p| {
            drop(p.slave);
            p.master
        });
        if self.narrate {
            let mut event = new_event(spawn_index, &self.plan.steps[spawn_index]);
            event.observed.insert("child_pid".into(), child.to_string());
            (self.observer)(&event);
        }
        let forwarder = SignalForwarder::start();
        // Fast: the first process is PID 1 itself (or the command).
        let fast_target = !stepwise || !self.plan.has_init();
        if fast_target {
            forwarder.set_target(child.as_raw());
            if self.plan.has_init() {
                self.outcome.init_pid = Some(child.as_raw());
            }
        }
        if !stepwise {
            self.steps_after_spawn(child, &parent_end)?;
        }
        self.messages(child, &parent_end, &forwarder)?;
        drop(parent_end);
        self.finish(Some(child), master, terminals)
    }

    /// What the sandbox's processes say, until all of them closed the channel.
    fn messages(&mut self, child: Pid, channel: &OwnedFd, forwarder: &SignalForwarder) -> Result<(), LaunchError> {
        let mut receiver = Receiver::new(channel)?;
        while let Some(message) = receiver.next() {
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    self.outcome.exec_error.get_or_insert(error);
                    let _ = self.kernel.kill(child, Signal::SIGKILL);
                    break;
                }
            };
            match message {
                Message::Ready { index } => {
                    let go = self.pause(index) == Pause::Go;
                    if !go {
                        self.outcome.quit = true;
                    }
                    answer(channel, go, None)?;
                }
                Message::Event(event) => {
                    (self.observer)(&event);
                    if !event.ok {
                        self.outcome.failed = Some(event);
                    }
                }
                Message::NeedIds => self.steps_after_spawn(child, channel)?,
                Message::Init { pid } => {
                    self.outcome.init_pid = Some(pid);
                    forwarder.set_target(pid);
                }
                Message::Started => {
                    if let (Some(on_init), Some(pid)) = (self.on_init.as_mut(), self.outcome.init_pid) {
                        on_init(pid, self.disk.as_ref().map(std::os::fd::AsRawFd::as_raw_fd));
                    }
                }
                Message::ExecFailed { status, error } => {
                    self.outcome.exec_error = Some(error);
                    self.outcome.status = status;
                }
            }
        }
        Ok(())
    }

    /// The end: relay the terminal until the child exits, wait for it, then
    /// the teardown steps (the cgroup's removal), whatever happened before.
    fn finish(&mut self, child: Option<Pid>, master: Option<OwnedFd>, terminals: Terminals) -> Result<(), LaunchError> {
        if let (Some(master), Some(child)) = (&master, child)
            && let Ok(exited) = pty::pidfd_open(child)
        {
            let _ = pty::relay_terminal(master.as_fd(), exited.as_fd(), terminals);
        }
        let steps: Vec<(usize, &Step)> =
            self.plan.steps.iter().enumerate().filter(|(_, s)| s.actor == Actor::Supervisor && teardown(&s.action)).collect();
        for (index, step) in steps {
            match &step.action {
                Action::Wait => {
                    let Some(child) = child else { continue };
                    let status = self.kernel.wait(child).unwrap_or(TOOL_FAILED);
                    if self.outcome.exec_error.is_none() {
                        self.outcome.status = status;
                    }
                    if self.narrate {
                        let mut event = new_event(index, step);
                        event.observed.insert("status".into(), status.to_string());
                        (self.observer)(&event);
                    }
                }
                Action::CgroupRemove { .. } if self.cgroup_made => {
                    let stats = self.cgroup.map(|c| c.stats()).unwrap_or_default();
                    self.outcome.oom_kills = stats.oom_kills.unwrap_or(0);
                    self.outcome.limit_notes = stats.notes();
                    self.step(index, step, child);
                }
                _ => {}
            }
        }
        if self.outcome.failed.is_some() || (self.outcome.quit && self.outcome.exec_error.is_none()) {
            self.outcome.status = TOOL_FAILED;
        }
        Ok(())
    }
}

fn fail(call: &str) -> impl FnOnce(nix::errno::Errno) -> SysError + '_ {
    move |errno| SysError { call: call.to_string(), errno }
}

/// What a supervisor step changed, read back from the kernel (explain only).
fn observe_supervisor(action: &Action, child: Option<Pid>, event: &mut Event) {
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default().trim().to_string();
    match (action, child) {
        (Action::CgroupLimit { write }, _) => {
            event.observed.insert("file".into(), write.file.display().to_string());
            event.observed.insert("value".into(), read(&write.file));
        }
        (Action::IdMaps { .. }, Some(pid)) => {
            for map in ["uid_map", "gid_map", "setgroups"] {
                event.observed.insert(map.into(), read(&PathBuf::from(format!("/proc/{pid}/{map}"))));
            }
        }
        (Action::CgroupJoin { .. }, Some(pid)) => {
            event.observed.insert("cgroup".into(), read(&PathBuf::from(format!("/proc/{pid}/cgroup"))));
        }
        _ => {}
    }
}

/// The supervisor's signal forwarding: a handler passes each forwarded signal
/// to the sandbox's init (or, without one, its first process). A signal that
/// comes before there is a target waits for it, so an early Ctrl-C is not lost.
/// No thread: a handler that calls kill(2) (async-signal-safe) is enough, and
/// SA_RESTART keeps the supervisor's reads and waits going.
struct SignalForwarder;

static TARGET: AtomicI32 = AtomicI32::new(0);
static PENDING: AtomicU64 = AtomicU64::new(0);

fn send_pending(pid: i32) {
    let pending = PENDING.swap(0, Ordering::SeqCst);
    for signal in 1..64 {
        if pending & (1u64 << signal) != 0 {
            // SAFETY: kill(2) is async-signal-safe; pid is the sandbox's process.
            unsafe { libc::kill(pid, signal) };
        }
    }
}

extern "C" fn forward(signal: libc::c_int) {
    let saved_errno = nix::errno::Errno::last_raw();
    match TARGET.load(Ordering::SeqCst) {
        pid if pid > 0 => {
            // SAFETY: as above.
            unsafe { libc::kill(pid, signal) };
        }
        _ => {
            PENDING.fetch_or(1u64 << signal, Ordering::SeqCst);
            // The target may have been set meanwhile.
            let pid = TARGET.load(Ordering::SeqCst);
            if pid > 0 {
                send_pending(pid);
            }
        }
    }
    nix::errno::Errno::set_raw(saved_errno);
}

impl SignalForwarder {
    fn start() -> SignalForwarder {
        TARGET.store(0, Ordering::SeqCst);
        let action = SigAction::new(SigHandler::Handler(forward), SaFlags::SA_RESTART, SigSet::empty());
        for signal in FORWARDED {
            // SAFETY: the handler only loads and stores atomics and calls kill(2).
            let _ = unsafe { nix::sys::signal::sigaction(*signal, &action) };
        }
        SignalForwarder
    }

    fn set_target(&self, pid: i32) {
        TARGET.store(pid, Ordering::SeqCst);
        send_pending(pid);
    }
}

impl Drop for SignalForwarder {
    /// The sandbox is gone: a later signal must not reach a process that got its PID.
    /// (The handlers stay, so a Ctrl-C now cannot kill the tool in its teardown.)
    fn drop(&mut self) {
        TARGET.store(-1, Ordering::SeqCst);
        PENDING.store(0, Ordering::SeqCst);
    }
}
