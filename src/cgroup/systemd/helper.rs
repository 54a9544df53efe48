//! The helper process that talks to systemd, so the launcher never gains a
//! thread (see [`super`]). fork(), the child runs [`super::bus::start_scope`]
//! for the parent's pid and writes one line to a pipe (`ok`, or `err WHY`),
//! then `_exit`s; the parent waits for that line at most `timeout`.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork, pipe};

use super::ScopeRequest;

/// Asks systemd for the scope from a child process; `Err` is one line for people.
pub(super) fn ask(request: &ScopeRequest, timeout: Duration) -> Result<(), String> {
    let (read, write) = pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the child only runs the D-Bus exchange and `_exit`s; it never
    // returns into the caller's code. The launcher is single-threaded here
    // (this is why the helper exists), so no lock is held across the fork.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(read);
            let line = match super::bus::start_scope(request) {
                Ok(()) => "ok\n".to_owned(),
                Err(why) => format!("err {}\n", why.replace('\n', " ")),
            };
            let _ = nix::unistd::write(&write, line.as_bytes());
            // SAFETY: ends the child without running the parent's destructors or atexit handlers.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(write);
            let answer = read_answer(read, timeout);
            if answer.is_none() {
                let _ = kill(child, Signal::SIGKILL);
            }
            let _ = waitpid(child, None);
            match answer.as_deref().map(str::trim_end) {
                Some("ok") => Ok(()),
                Some(line) if line.starts_with("err ") => Err(line["err ".len()..].to_owned()),
                Some(_) => Err("the D-Bus helper process ended without an answer".to_owned()),
                None => Err(format!("systemd did not answer within {} s", timeout.as_secs())),
            }
        }
    }
}

/// Everything the child writes until it closes the pipe; `None` on timeout.
fn read_answer(read: OwnedFd, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    let mut file = std::fs::File::from(read);
    let mut text = Vec::new();
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
        }
        let mut chunk = [0u8; 512];
        match file.read(&mut chunk) {
            Ok(0) => return Some(String::from_utf8_lossy(&text).into_owned()),
            Ok(n) => text.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}
