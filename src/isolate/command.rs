//! Starting the command: the last step of every plan.

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::{SigHandler, Signal};
use nix::unistd::Pid;

use super::channel::{Message, send};
use super::pty::Terminals;

/// Exit statuses of the tool itself (as `docker run` uses them).
pub const TOOL_FAILED: i32 = 125;
pub const NOT_EXECUTABLE: i32 = 126;
pub const NOT_FOUND: i32 = 127;

/// In the command's process, before exec: a process group of its own (which
/// PID 1 signals as a whole, as a terminal signals its foreground group,
/// never including PID 1), in the foreground of the sandbox's terminal.
pub(crate) fn into_foreground(terminal: bool) {
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    if let Some(fd) = Terminals::of_this_process().first().filter(|_| terminal) {
        // In the terminal's foreground: Ctrl-C reaches it, not PID 1.
        // SAFETY: SIGTTOU ignored around tcsetpgrp, as shells do.
        let _ = unsafe { nix::sys::signal::signal(Signal::SIGTTOU, SigHandler::SigIgn) };
        // SAFETY: fd is one of this process's standard descriptors, a terminal.
        let _ = nix::unistd::tcsetpgrp(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }, nix::unistd::getpid());
        // SAFETY: back to the default before exec.
        let _ = unsafe { nix::sys::signal::signal(Signal::SIGTTOU, SigHandler::SigDfl) };
    }
}

/// execve the command with exactly the plan's environment; PATH is searched
/// with the plan's PATH, never the caller's. Returns only on failure, with
/// the status to exit with and why (also sent to the supervisor).
pub(crate) fn exec(argv: &[String], env: &[(String, String)], workdir: &Path, channel: Option<RawFd>) -> (i32, String) {
    let fail = |status: i32, error: String| {
        if let Some(channel) = channel {
            send(channel, &Message::ExecFailed { status, error: error.clone() });
        }
        (status, error)
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

/// The program `program` names: itself when it has a slash, else the first
/// regular file of that name in `path_var`'s directories.
pub(crate) fn find_program(program: &str, path_var: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    path_var.split(':').filter(|dir| !dir.is_empty()).map(|dir| Path::new(dir).join(program)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_the_plan_s_path_only() {
        assert_eq!(find_program("/x/y", ""), Some(PathBuf::from("/x/y")));
        assert_eq!(find_program("sh", "/nonexistent::/bin"), Some(PathBuf::from("/bin/sh")));
        assert_eq!(find_program("sh", "/nonexistent"), None);
        // A directory of that name is not a program.
        assert_eq!(find_program("tmp", "/"), None);
    }
}
