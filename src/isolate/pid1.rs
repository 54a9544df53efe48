//! PID 1's life after the start: reap every zombie, pass signals to the
//! command's process group, and end with the command's status (the kernel then
//! ends every other process of the namespace, as in a container). Without a
//! command (a background instance), PID 1 reaps what `sandbox exec` leaves
//! behind and ends when told to (`sandbox stop`).

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Signals the supervisor and init pass on instead of dying of them.
/// (Not SIGWINCH: with a terminal, the kernel tells the foreground group itself.)
pub(crate) const FORWARDED: &[Signal] =
    &[Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2];

extern "C" fn ignore_signal(_: libc::c_int) {}

/// The signals PID 1 waits for: the forwarded ones and SIGCHLD.
pub(crate) fn watched() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for signal in FORWARDED {
        set.add(*signal);
    }
    set
}

/// Block the signals PID 1 passes on (and SIGCHLD), to take them with
/// sigwait. PID 1 of a namespace never gets a signal it has no handler for
/// (the kernel drops it at send time, even when blocked), so each gets one
/// that never runs. Called first thing, so signals sent while PID 1 still
/// builds the root wait for it.
pub(crate) fn catch_signals() {
    let watched = watched();
    let _ = watched.thread_block();
    for signal in watched.iter() {
        let action = SigAction::new(SigHandler::Handler(ignore_signal), SaFlags::SA_RESTART, SigSet::empty());
        // SAFETY: the handler does nothing; the signals stay blocked until exec resets them.
        let _ = unsafe { nix::sys::signal::sigaction(signal, &action) };
    }
}

/// Before exec: the command starts with default signals. exec resets every
/// caught signal by itself; what it keeps is an ignored one (the tool's
/// SIGPIPE) and the mask.
pub(crate) fn restore_signals() {
    // SAFETY: resetting a disposition to default before exec.
    let _ = unsafe { nix::sys::signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    let _ = SigSet::empty().thread_set_mask();
}

/// Until the command ends (its status is returned), or with no command until
/// a forwarded signal ends PID 1 (128+N).
pub(crate) fn serve(command: Option<Pid>) -> i32 {
    let watched = watched();
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

#[cfg(test)]
mod tests {
    use super::*;
    use nix::unistd::{ForkResult, fork};

    /// PID 1's loop in a child of the test: it returns the command's status
    /// and reaps an orphan that exits before the command.
    #[test]
    fn serve_returns_the_command_s_status_and_reaps_the_rest() {
        // SAFETY: the child only forks, sleeps, waits and _exits.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                catch_signals();
                // SAFETY: as above.
                let orphan = match unsafe { fork() } {
                    Ok(ForkResult::Child) => unsafe { libc::_exit(3) },
                    Ok(ForkResult::Parent { child }) => child,
                    Err(_) => unsafe { libc::_exit(100) },
                };
                let command = match unsafe { fork() } {
                    Ok(ForkResult::Child) => {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        unsafe { libc::_exit(7) }
                    }
                    Ok(ForkResult::Parent { child }) => child,
                    Err(_) => unsafe { libc::_exit(100) },
                };
                let status = serve(Some(command));
                let orphan_reaped = matches!(waitpid(orphan, Some(WaitPidFlag::WNOHANG)), Err(nix::errno::Errno::ECHILD));
                unsafe { libc::_exit(if orphan_reaped { status } else { 101 }) }
            }
            ForkResult::Parent { child } => {
                assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 7));
            }
        }
    }

    #[test]
    fn a_forwarded_signal_ends_a_background_pid1_with_128_plus_n() {
        // SAFETY: the child only waits for a signal and _exits.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                catch_signals();
                let status = serve(None);
                unsafe { libc::_exit(status) }
            }
            ForkResult::Parent { child } => {
                std::thread::sleep(std::time::Duration::from_millis(50));
                nix::sys::signal::kill(child, Signal::SIGTERM).unwrap();
                assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 143));
            }
        }
    }
}
