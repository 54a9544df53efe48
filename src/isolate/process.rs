//! The processes of a sandbox and how they talk (DESIGN.md, "Process model"):
//!
//! ```text
//! supervisor (host): cgroup, limits, uid maps, waits, cleans up
//!   └── child: makes the namespaces one by one (user first), forks PID 1
//!         └── init (PID 1 inside): builds the new root, starts the command,
//!               reaps zombies, forwards signals, exits with the command's status
//!               └── the command
//! ```
//!
//! The child and init report every step as an `Event` over a socket; the
//! supervisor answers the child's `NeedIds` with "go" (and, when the kernel
//! can, an idmapped mount of the rootfs passed as a file descriptor).

use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::{SigHandler, SigSet, Signal};
use nix::sys::socket::{AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use super::event::{Event, Message, send};
use super::kernel::{Kernel, Real, SysError};
use super::observe;
use super::setup::{self, Context};
use crate::cgroup::CgroupManager;
use crate::plan::{Action, Actor, Namespace, Plan, Step};

/// Exit statuses of the tool itself (as `docker run` uses them).
pub const TOOL_FAILED: i32 = 125;
pub const NOT_EXECUTABLE: i32 = 126;
pub const NOT_FOUND: i32 = 127;

/// Signals the supervisor and init pass on instead of dying of them.
/// (Not SIGWINCH: with a terminal, the kernel tells the foreground group itself.)
const FORWARDED: &[Signal] = &[Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2];

pub struct Options<'a> {
    /// Connect the command to a new pseudo-terminal (stdin is a terminal).
    pub tty: bool,
    pub cgroup: Option<&'a dyn CgroupManager>,
    /// Pause before each step until this returns (explain --step); None: no
    /// pause. It gets the step's index and the host PID of the sandbox's init
    /// once there is one.
    pub before_step: Option<&'a mut dyn FnMut(usize, Option<i32>)>,
    /// Told the host PID of the sandbox's init as soon as it exists.
    pub on_init: Option<&'a mut dyn FnMut(i32)>,
}

/// How a sandbox ended.
#[derive(Debug)]
pub struct Outcome {
    /// The command's exit status, 128+N for a death by signal N, or 125-127.
    pub status: i32,
    /// The step that failed, with the system call and errno.
    pub failed: Option<Event>,
    /// The command could not be started.
    pub exec_error: Option<String>,
    /// PID 1 of the sandbox as the host numbers it.
    pub init_pid: Option<i32>,
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0}")]
    Sys(#[from] SysError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn sys(call: &str) -> impl FnOnce(Errno) -> SysError + '_ {
    move |errno| SysError { call: call.to_string(), errno }
}

/// Run a namespace-mode or chroot-mode plan to its end.
pub fn launch(plan: &Plan, options: Options, observer: &mut dyn FnMut(&Event)) -> Result<Outcome, LaunchError> {
    let mut outcome = Outcome { status: TOOL_FAILED, failed: None, exec_error: None, init_pid: None };
    let steps = &plan.steps;
    // Supervisor steps that come before any process: the cgroup and its limits.
    let mut next = 0;
    let mut options = options;
    let step_mode = options.before_step.is_some();
    while next < steps.len() && steps[next].actor == Actor::Supervisor {
        if let Some(pause) = options.before_step.as_mut() {
            pause(next, None);
        }
        let event = supervisor_step(next, &steps[next], options.cgroup, None);
        observer(&event);
        if !event.ok {
            outcome.failed = Some(event);
            return Ok(outcome);
        }
        next += 1;
    }

    let (parent_end, child_end) = nix::sys::socket::socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
        .map_err(sys("socketpair(AF_UNIX)"))?;
    let pty = if options.tty { Some(super::pty::open_for_terminal(std::io::stdin().as_fd()).map_err(sys("openpty"))?) } else { None };
    let supervisor_pid = nix::unistd::getpid();

    // SAFETY: the tool is single-threaded here; the child only runs the plan
    // and ends in exec or _exit, never returning into the caller.
    match unsafe { fork() }.map_err(sys("fork()"))? {
        ForkResult::Child => {
            drop(parent_end);
            let slave = pty.map(|p| p.slave);
            let status = child_main(plan, next, child_end.into_raw_fd(), slave, supervisor_pid, step_mode);
            // SAFETY: leaving the forked child without running the parent's destructors.
            unsafe { libc::_exit(status) }
        }
        ForkResult::Parent { child } => {
            drop(child_end);
            let master = pty.map(|p| {
                drop(p.slave);
                p.master
            });
            supervise(plan, next, child, parent_end, master, options, observer, &mut outcome)?;
            Ok(outcome)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn supervise(
    plan: &Plan,
    first: usize,
    child: Pid,
    channel: OwnedFd,
    master: Option<OwnedFd>,
    mut options: Options,
    observer: &mut dyn FnMut(&Event),
    outcome: &mut Outcome,
) -> Result<(), LaunchError> {
    let forwarder = SignalForwarder::start(child);
    let reader_fd = channel.try_clone()?;
    let mut lines = BufReader::new(std::fs::File::from(reader_fd)).lines();
    let supervisor_steps: Vec<(usize, &Step)> =
        plan.steps.iter().enumerate().skip(first).filter(|(_, s)| s.actor == Actor::Supervisor).collect();
    while let Some(Ok(line)) = lines.next() {
        let Ok(message) = serde_json::from_str::<Message>(&line) else { continue };
        match message {
            Message::Ready { index } => {
                if let Some(pause) = options.before_step.as_mut() {
                    pause(index, outcome.init_pid);
                }
                answer(&channel, true, None)?;
            }
            Message::Event(event) => {
                observer(&event);
                if !event.ok {
                    outcome.failed = Some(event);
                }
            }
            Message::NeedIds => {
                let mut go = true;
                let mut idmapped = None;
                for (index, step) in &supervisor_steps {
                    if let Some(pause) = options.before_step.as_mut() {
                        pause(*index, outcome.init_pid);
                    }
                    let event = supervisor_step(*index, step, options.cgroup, Some(child));
                    observer(&event);
                    if !event.ok {
                        outcome.failed = Some(event);
                        go = false;
                        break;
                    }
                    if matches!(step.action, Action::IdMaps { .. }) {
                        idmapped = idmapped_rootfs(plan, child);
                    }
                }
                answer(&channel, go, idmapped.as_ref())?;
            }
            Message::Init { pid } => {
                outcome.init_pid = Some(pid);
                forwarder.set_target(pid);
                if let Some(on_init) = options.on_init.as_mut() {
                    on_init(pid);
                }
            }
            Message::ExecFailed { status, error } => {
                outcome.exec_error = Some(error);
                outcome.status = status;
            }
        }
    }
    drop(channel);
    if let Some(master) = master
        && let Ok(exited) = super::pty::pidfd_open(child)
    {
        let _ = super::pty::relay_terminal(master.as_fd(), exited.as_fd());
    }
    let status = wait_exit_status(child);
    if outcome.exec_error.is_none() {
        outcome.status = status;
    }
    if outcome.failed.is_some() {
        outcome.status = TOOL_FAILED;
    }
    Ok(())
}

/// "g" lets the child go on, "x" tells it to stop; an idmapped rootfs travels with it.
fn answer(channel: &OwnedFd, go: bool, idmapped: Option<&OwnedFd>) -> Result<(), LaunchError> {
    let byte = if go { [b'g'] } else { [b'x'] };
    let iov = [std::io::IoSlice::new(&byte)];
    let fds: Vec<RawFd> = idmapped.map(|fd| vec![fd.as_raw_fd()]).unwrap_or_default();
    let cmsgs: Vec<ControlMessage> = if fds.is_empty() { vec![] } else { vec![ControlMessage::ScmRights(&fds)] };
    nix::sys::socket::sendmsg::<()>(channel.as_raw_fd(), &iov, &cmsgs, MsgFlags::empty(), None).map_err(sys("sendmsg(go)"))?;
    Ok(())
}

/// Wait for the supervisor's answer; returns whether to go on and a passed fd.
fn wait_for_go(channel: RawFd) -> (bool, Option<RawFd>) {
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    loop {
        match nix::sys::socket::recvmsg::<()>(channel, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(msg) => {
                let fd = msg.cmsgs().ok().and_then(|mut c| {
                    c.find_map(|m| match m {
                        ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                        _ => None,
                    })
                });
                let go = msg.bytes == 1;
                return (go && iov[0][0] == b'g', fd);
            }
            Err(Errno::EINTR) => continue,
            Err(_) => return (false, None),
        }
    }
}

/// The steps the supervisor carries out on the host.
fn supervisor_step(index: usize, step: &Step, cgroup: Option<&dyn CgroupManager>, child: Option<Pid>) -> Event {
    let mut event = new_event(index, step);
    let result: Result<(), String> = match &step.action {
        Action::CgroupCreate { .. } => match cgroup {
            Some(c) => c.create().map_err(|e| e.to_string()),
            None => Err("no cgroup manager".into()),
        },
        Action::CgroupLimit { write } => {
            // Never create: a cgroup file that does not exist is a mistake to report.
            let r = std::fs::OpenOptions::new()
                .write(true)
                .open(&write.file)
                .and_then(|mut f| std::io::Write::write_all(&mut f, write.value.as_bytes()))
                .map_err(|e| format!("write({}, {}): {e}", write.file.display(), write.value));
            if r.is_ok() {
                event.observed.insert("file".into(), write.file.display().to_string());
                event.observed.insert("value".into(), std::fs::read_to_string(&write.file).unwrap_or_default().trim().to_string());
            }
            r
        }
        Action::IdMaps { uid_map, gid_map } => match child {
            Some(pid) => write_id_maps(pid, uid_map, gid_map, &mut event),
            None => Err("no child".into()),
        },
        Action::CgroupJoin { .. } => match (cgroup, child) {
            (Some(c), Some(pid)) => c.add_process(pid.as_raw()).map_err(|e| e.to_string()).map(|()| {
                event.observed.insert("cgroup".into(), std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default());
            }),
            _ => Err("no cgroup or child".into()),
        },
        _ => Ok(()),
    };
    if let Err(error) = result {
        event.ok = false;
        event.error = Some(error);
    }
    event
}

fn write_id_maps(pid: Pid, uid_map: &str, gid_map: &str, event: &mut Event) -> Result<(), String> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let write = |file: &str, content: &str| {
        std::fs::write(proc.join(file), content).map_err(|e| format!("write(/proc/{pid}/{file}, {content:?}): {e}"))
    };
    write("uid_map", uid_map)?;
    // An unprivileged writer must deny setgroups before it may write gid_map.
    if !nix::unistd::geteuid().is_root() {
        write("setgroups", "deny")?;
    }
    write("gid_map", gid_map)?;
    event.observed.insert("uid_map".into(), std::fs::read_to_string(proc.join("uid_map")).unwrap_or_default().trim().to_string());
    event.observed.insert("gid_map".into(), std::fs::read_to_string(proc.join("gid_map")).unwrap_or_default().trim().to_string());
    Ok(())
}

/// A detached mount of the rootfs whose owners are shifted into the child's
/// user namespace: root-owned files look root-owned inside, and the host
/// sees only unprivileged ids. Needs root on the host and Linux 5.12+; None
/// otherwise (the rootfs then shows its files as `nobody`).
fn idmapped_rootfs(plan: &Plan, child: Pid) -> Option<OwnedFd> {
    let rootfs = plan.steps.iter().find_map(|s| match &s.action {
        Action::BindRootfs { rootfs, idmapped: true, .. } => Some(rootfs.clone()),
        _ => None,
    })?;
    let userns = std::fs::File::open(format!("/proc/{child}/ns/user")).ok()?;
    super::kernel::idmapped_tree(&rootfs, userns.as_raw_fd()).ok()
}

fn new_event(index: usize, step: &Step) -> Event {
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

fn wait_exit_status(child: Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, signal, _)) => return 128 + signal as i32,
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(_) => return TOOL_FAILED,
        }
    }
}

// ----- the child: namespaces ---------------------------------------------------------------------

fn child_main(plan: &Plan, first: usize, channel: RawFd, slave: Option<OwnedFd>, supervisor: Pid, step_mode: bool) -> i32 {
    if die_with_parent(supervisor).is_err() {
        return TOOL_FAILED;
    }
    // The child only waits for init; signals meant for the command go to init.
    for signal in FORWARDED {
        // SAFETY: setting a disposition to SIG_IGN is async-signal-safe.
        let _ = unsafe { nix::sys::signal::signal(*signal, SigHandler::SigIgn) };
    }
    let mut kernel = Real;
    let mut ctx = Context { channel: Some(channel), idmapped_rootfs: None, rootfs: None, layer: None, step_mode };
    let steps = &plan.steps;
    for (index, step) in steps.iter().enumerate().skip(first) {
        if step.actor != Actor::Child {
            continue;
        }
        if !await_turn(&ctx, index) {
            return TOOL_FAILED;
        }
        let mut event = new_event(index, step);
        if matches!(step.action, Action::Unshare { namespace: Namespace::Pid } | Action::JoinPid { .. }) {
            return fork_init(plan, index, event, &mut kernel, ctx, slave, &step.action);
        }
        if let Action::Unshare { namespace } = step.action {
            event.observed.insert("before".into(), setup::namespace_link(namespace));
        }
        let result = setup::perform(&mut kernel, &step.action, &ctx);
        if let Action::Unshare { namespace } = step.action {
            event.observed.insert("after".into(), setup::namespace_link(namespace));
        }
        if !report(channel, event, result) {
            return TOOL_FAILED;
        }
        // After its user namespace (or joining one), the child waits for the
        // supervisor: uid maps, the cgroup, an idmapped rootfs.
        if matches!(step.action, Action::Unshare { namespace: Namespace::User } | Action::JoinNamespaces { .. }) {
            send(channel, &Message::NeedIds);
            let (go, fd) = wait_for_go(channel);
            if !go {
                return TOOL_FAILED;
            }
            ctx.idmapped_rootfs = fd;
        }
        if let Action::Chroot { .. } = step.action {
            // chroot mode: no init; the command replaces this process.
            return run_chroot_rest(plan, index + 1, &mut kernel, &ctx);
        }
    }
    TOOL_FAILED
}

/// The first ids inside of the plan's uid and gid maps.
fn first_inside_ids(plan: &Plan) -> Option<(u32, u32)> {
    plan.steps.iter().find_map(|s| match &s.action {
        Action::IdMaps { uid_map, gid_map } => {
            let first = |map: &str| map.split_whitespace().next().and_then(|v| v.parse::<u32>().ok());
            Some((first(uid_map)?, first(gid_map)?))
        }
        _ => None,
    })
}

/// The rest of a chroot-mode plan: user, fds, then exec in this very process.
fn run_chroot_rest(plan: &Plan, from: usize, kernel: &mut dyn Kernel, ctx: &Context) -> i32 {
    let channel = ctx.channel.unwrap_or(-1);
    for (index, step) in plan.steps.iter().enumerate().skip(from) {
        if !await_turn(ctx, index) {
            return TOOL_FAILED;
        }
        if let Action::Exec { argv, env, workdir } = &step.action {
            restore_signals();
            report(channel, new_event(index, step), Ok(()));
            return exec_command(argv, env, workdir, channel);
        }
        let result = setup::perform(kernel, &step.action, ctx);
        if !report(channel, new_event(index, step), result) {
            return TOOL_FAILED;
        }
    }
    TOOL_FAILED
}

/// Enter a PID namespace (a new one, or a running sandbox's) and fork: the PID
/// namespace of a process never changes, only its children's.
fn fork_init(
    plan: &Plan,
    index: usize,
    mut event: Event,
    kernel: &mut dyn Kernel,
    ctx: Context,
    slave: Option<OwnedFd>,
    enter: &Action,
) -> i32 {
    let channel = ctx.channel.unwrap_or(-1);
    event.observed.insert("before".into(), setup::namespace_link(Namespace::Pid));
    if let Err(e) = setup::perform(kernel, enter, &ctx) {
        report(channel, event, Err(e));
        return TOOL_FAILED;
    }
    let me = nix::unistd::getpid();
    // SAFETY: single-threaded; the new process is PID 1 of the new namespace and
    // ends in _exit.
    match unsafe { fork() } {
        Err(e) => {
            report(channel, event, Err(SysError { call: "fork()".into(), errno: e }));
            TOOL_FAILED
        }
        Ok(ForkResult::Child) => {
            let status = init_main(plan, index, event, ctx, slave, me);
            // SAFETY: leave without the parent's destructors.
            unsafe { libc::_exit(status) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(slave);
            send(channel, &Message::Init { pid: child.as_raw() });
            // SAFETY: the channel fd is ours; init keeps its own copy.
            drop(unsafe { OwnedFd::from_raw_fd(channel) });
            if let Some(fd) = ctx.idmapped_rootfs {
                // SAFETY: received for init, which has its own copy.
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
            }
            wait_exit_status(child)
        }
    }
}

// ----- PID 1 -------------------------------------------------------------------------------------

fn init_main(plan: &Plan, pid_step: usize, mut event: Event, mut ctx: Context, slave: Option<OwnedFd>, parent: Pid) -> i32 {
    let channel = ctx.channel.unwrap_or(-1);
    // In the new PID namespace the parent is outside: getppid() is 0, so the
    // check of die_with_parent cannot apply; the child waits for us anyway.
    let _ = parent;
    if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() {
        return TOOL_FAILED;
    }
    // Signals sent while PID 1 still builds the root wait for it (see `catch_signals`).
    catch_signals();
    event.observed.insert("after".into(), setup::namespace_link(Namespace::Pid));
    event.observed.insert("pid_inside".into(), nix::unistd::getpid().to_string());
    // /proc is still the host's here: its idea of "self" is our PID outside.
    if let Ok(outside) = std::fs::read_link("/proc/self") {
        event.observed.insert("pid_outside".into(), outside.display().to_string());
    }
    report(channel, event, Ok(()));
    if let Some(slave) = &slave {
        // The terminal becomes the sandbox's stdin, stdout and stderr.
        for target in 0..3 {
            // SAFETY: dup2 onto the standard descriptors of this process.
            unsafe { libc::dup2(slave.as_raw_fd(), target) };
        }
    }
    drop(slave);
    let mut kernel = Real;
    for (index, step) in plan.steps.iter().enumerate().skip(pid_step + 1) {
        if step.actor != Actor::Init {
            continue;
        }
        if !await_turn(&ctx, index) {
            return TOOL_FAILED;
        }
        if let Action::Exec { argv, env, workdir } = &step.action {
            return run_as_init(index, step, argv, env, workdir, channel);
        }
        let mut event = new_event(index, step);
        let before = observe::before(&step.action);
        let result = setup::perform(&mut kernel, &step.action, &ctx);
        let result = result.and_then(|()| match &step.action {
            Action::BindRootfs { rootfs, .. } => enter_mapped_ids(plan, rootfs, &mut kernel, &mut ctx),
            Action::MountOverlay { target, .. } => reach_through_fd(target, &mut ctx),
            _ => Ok(()),
        });
        if matches!(step.action, Action::BindRootfs { .. } | Action::SetUser { .. }) {
            // A change of credentials clears the parent-death signal: arm it again.
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
        }
        if result.is_ok() {
            if let Action::NewSession = step.action {
                take_terminal();
            }
            observe::after(&step.action, before, &mut event.observed);
        }
        if !report(channel, event, result) {
            return TOOL_FAILED;
        }
    }
    TOOL_FAILED
}

/// Until now this process kept the host's ids, unmapped in its user namespace
/// (it owned the store, so it could walk it to mount the rootfs). From here on
/// it takes the mapped ones, or files cannot even be created (EOVERFLOW), and
/// reaches the rootfs through an fd instead of the store's private path.
fn enter_mapped_ids(plan: &Plan, rootfs: &Path, kernel: &mut dyn Kernel, ctx: &mut Context) -> Result<(), SysError> {
    use nix::fcntl::OFlag;
    let fd = nix::fcntl::open(rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY, nix::sys::stat::Mode::empty())
        .map_err(|errno| SysError { call: format!("open({}, O_PATH)", rootfs.display()), errno })?;
    ctx.rootfs = Some((rootfs.to_path_buf(), fd.into_raw_fd()));
    // The instance's layer too, while the host's ids may still walk to it.
    let layer = plan.steps.iter().find_map(|s| match &s.action {
        Action::MountOverlay { upper, .. } => upper.parent().map(Path::to_path_buf),
        _ => None,
    });
    if let Some(dir) = layer {
        let fd = nix::fcntl::open(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY, nix::sys::stat::Mode::empty())
            .map_err(|errno| SysError { call: format!("open({}, O_PATH)", dir.display()), errno })?;
        ctx.layer = Some((dir, fd.into_raw_fd()));
    }
    let Some((uid, gid)) = first_inside_ids(plan) else { return Ok(()) };
    // The overlay's upper layer belongs to the instance's root: mount it as that root.
    if uid == 0 { kernel.set_ids(uid, gid) } else { kernel.switch_ids(uid, gid) }
}

/// From now on the new root is the instance's merged tree: reach it by an fd.
fn reach_through_fd(target: &Path, ctx: &mut Context) -> Result<(), SysError> {
    use nix::fcntl::OFlag;
    let fd = nix::fcntl::open(&ctx.reach(target), OFlag::O_PATH | OFlag::O_DIRECTORY, nix::sys::stat::Mode::empty())
        .map_err(|errno| SysError { call: format!("open({}, O_PATH)", target.display()), errno })?;
    ctx.rootfs = Some((target.to_path_buf(), fd.into_raw_fd()));
    Ok(())
}

/// After setsid: a terminal on stdin becomes the session's controlling terminal.
fn take_terminal() {
    if nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        // SAFETY: TIOCSCTTY on stdin, a terminal, by a session leader.
        unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) };
    }
}

/// Start the command, then stay as PID 1: reap every zombie, pass signals on,
/// and exit with the command's status (the kernel then ends every other
/// process of the namespace, as in a container).
fn run_as_init(index: usize, step: &Step, argv: &[String], env: &[(String, String)], workdir: &Path, channel: RawFd) -> i32 {
    let watched = catch_signals();
    if argv.is_empty() {
        return serve(index, step, channel, &watched, None);
    }
    // SAFETY: single-threaded; the child execs or _exits.
    let command = match unsafe { fork() } {
        Err(e) => {
            report(channel, new_event(index, step), Err(SysError { call: "fork()".into(), errno: e }));
            return TOOL_FAILED;
        }
        Ok(ForkResult::Child) => {
            let _ = watched.thread_unblock();
            restore_signals();
            // A process group of its own, which PID 1 signals as a whole (as a
            // terminal signals its foreground group), never including itself.
            let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
            if nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
                // In the terminal's foreground: Ctrl-C reaches it, not PID 1.
                // SAFETY: SIGTTOU ignored around tcsetpgrp, as shells do.
                let _ = unsafe { nix::sys::signal::signal(Signal::SIGTTOU, SigHandler::SigIgn) };
                let _ = nix::unistd::tcsetpgrp(std::io::stdin(), nix::unistd::getpid());
                // SAFETY: back to the default before exec.
                let _ = unsafe { nix::sys::signal::signal(Signal::SIGTTOU, SigHandler::SigDfl) };
            }
            let status = exec_command(argv, env, workdir, channel);
            // SAFETY: exec failed; leave without destructors.
            unsafe { libc::_exit(status) }
        }
        Ok(ForkResult::Parent { child }) => {
            // Also here: a signal may come before the child ran its setpgid.
            let _ = nix::unistd::setpgid(child, child);
            child
        }
    };
    serve(index, step, channel, &watched, Some(command))
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Block the signals PID 1 passes on (and SIGCHLD), to take them with
/// sigwait. PID 1 of a namespace never gets a signal it has no handler for
/// (the kernel drops it at send time, even when blocked), so each gets one
/// that never runs. Returns the set.
fn catch_signals() -> SigSet {
    let mut watched = SigSet::empty();
    watched.add(Signal::SIGCHLD);
    for signal in FORWARDED {
        watched.add(*signal);
    }
    let _ = watched.thread_block();
    for signal in watched.iter() {
        let action =
            nix::sys::signal::SigAction::new(SigHandler::Handler(ignore_signal), nix::sys::signal::SaFlags::SA_RESTART, SigSet::empty());
        // SAFETY: the handler does nothing; the signals stay blocked until exec resets them.
        let _ = unsafe { nix::sys::signal::sigaction(signal, &action) };
    }
    watched
}

/// PID 1's life after the start: report the step, then reap every zombie and
/// pass signals to the command's process group until the command exits (its
/// status is PID 1's). Without a command (a background instance), PID 1 reaps
/// what `sandbox exec` leaves behind and ends when told to (`sandbox stop`).
fn serve(index: usize, step: &Step, channel: RawFd, watched: &SigSet, command: Option<Pid>) -> i32 {
    let mut event = new_event(index, step);
    if let Some(command) = command {
        event.observed.insert("command_pid_inside".into(), command.to_string());
    }
    event.observed.insert("init_pid_inside".into(), nix::unistd::getpid().to_string());
    report(channel, event, Ok(()));
    // SAFETY: PID 1's copy of the channel; the command keeps its own until exec.
    drop(unsafe { OwnedFd::from_raw_fd(channel) });
    loop {
        match (watched.wait(), command) {
            (Ok(Signal::SIGCHLD), Some(command)) => {
                if let Some(status) = reap(command) {
                    return status;
                }
            }
            (Ok(Signal::SIGCHLD), None) => {
                let _ = reap(Pid::from_raw(0));
            }
            // The whole group, as Ctrl-C on a terminal would: `sleep` under a
            // non-interactive shell gets it too.
            (Ok(signal), Some(command)) => {
                let _ = nix::sys::signal::killpg(command, signal);
            }
            (Ok(signal), None) => return 128 + signal as i32,
            (Err(_), _) => {}
        }
    }
}

/// Reap every exited child; the command's status once it is among them.
fn reap(command: Pid) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == command => result = Some(code),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == command => result = Some(128 + signal as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => continue,
        }
    }
}

/// execve the command with exactly the plan's environment; PATH is searched
/// with the plan's PATH, never the caller's.
fn exec_command(argv: &[String], env: &[(String, String)], workdir: &Path, channel: RawFd) -> i32 {
    let fail = |status: i32, error: String| {
        send(channel, &Message::ExecFailed { status, error });
        status
    };
    if let Err(e) = nix::unistd::chdir(workdir) {
        // The home may be missing in a bare rootfs: start in / as login does.
        if nix::unistd::chdir("/").is_err() {
            return fail(TOOL_FAILED, format!("chdir({}): {e}", workdir.display()));
        }
    }
    let Some(program) = argv.first() else { return fail(TOOL_FAILED, "empty command".into()) };
    let path_var = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str()).unwrap_or("/usr/bin:/bin");
    let Some(path) = find_program(program, path_var) else {
        return fail(NOT_FOUND, format!("{program}: command not found inside the sandbox"));
    };
    let c = |s: &str| std::ffi::CString::new(s).unwrap_or_default();
    let args: Vec<_> = argv.iter().map(|a| c(a)).collect();
    let envp: Vec<_> = env.iter().map(|(k, v)| c(&format!("{k}={v}"))).collect();
    let path_c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap_or_default();
    let errno = nix::unistd::execve(&path_c, &args, &envp).unwrap_err();
    let status = if errno == Errno::ENOENT { NOT_FOUND } else { NOT_EXECUTABLE };
    fail(status, format!("{}: {}", path.display(), errno.desc()))
}

fn find_program(program: &str, path_var: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    path_var.split(':').map(|dir| Path::new(dir).join(program)).find(|p| p.is_file())
}

// ----- shared helpers ----------------------------------------------------------------------------

/// `explain --step`: say which step comes next and wait for the supervisor.
fn await_turn(ctx: &Context, index: usize) -> bool {
    let Some(channel) = ctx.channel.filter(|_| ctx.step_mode) else { return true };
    send(channel, &Message::Ready { index });
    wait_for_go(channel).0
}

/// Send the step's event; false when it failed.
fn report(channel: RawFd, mut event: Event, result: Result<(), SysError>) -> bool {
    if let Err(e) = &result {
        event.ok = false;
        event.error = Some(e.to_string());
        event.errno = Some(e.errno as i32);
    }
    let ok = event.ok;
    send(channel, &Message::Event(event));
    ok
}

/// Die with the parent (SIGKILL), so a killed supervisor leaves no sandbox behind.
fn die_with_parent(parent: Pid) -> nix::Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    // The parent may have died before the line above: then nobody would tell us.
    if nix::unistd::getppid() != parent {
        return Err(Errno::ESRCH);
    }
    Ok(())
}

fn restore_signals() {
    for signal in FORWARDED.iter().chain(&[Signal::SIGCHLD, Signal::SIGPIPE]) {
        // SAFETY: resetting dispositions to default before exec.
        let _ = unsafe { nix::sys::signal::signal(*signal, SigHandler::SigDfl) };
    }
    let _ = SigSet::empty().thread_set_mask();
}

/// The supervisor's signal forwarding: a thread waits for the forwarded
/// signals (blocked everywhere else) and passes each to the sandbox's init.
/// A signal that comes before init exists waits for it, so an early Ctrl-C
/// is not lost.
struct SignalForwarder {
    state: std::sync::Arc<std::sync::Mutex<(Option<i32>, Vec<Signal>)>>,
}

impl SignalForwarder {
    fn start(_child: Pid) -> SignalForwarder {
        let state = std::sync::Arc::new(std::sync::Mutex::new((None::<i32>, Vec::new())));
        let mut set = SigSet::empty();
        for signal in FORWARDED {
            set.add(*signal);
        }
        let _ = set.thread_block();
        let shared = state.clone();
        std::thread::spawn(move || {
            loop {
                if let Ok(signal) = set.wait() {
                    let mut guard = shared.lock().unwrap_or_else(|e| e.into_inner());
                    match guard.0 {
                        Some(pid) => {
                            let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
                        }
                        None => guard.1.push(signal),
                    }
                }
            }
        });
        SignalForwarder { state }
    }

    fn set_target(&self, pid: i32) {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        guard.0 = Some(pid);
        for signal in guard.1.drain(..) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
        }
    }
}
