//! `sandbox login`: the ssh way into the caller's own instance.
//!
//! Used as sshd's `ForceCommand`, it runs as the student's own unprivileged
//! user. It connects to the helper's login socket; the helper learns the
//! caller's uid from the kernel (SO_PEERCRED), so nobody can ask for another
//! name, and answers with the master of a pty whose shell runs in that
//! student's instance. This side only copies bytes between ssh's terminal and
//! that master, as `sandbox run` does with its own pty: no sudo, no root, and
//! the instance never holds a descriptor of the ssh terminal.

use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, OwnedFd};
use std::process::ExitCode;

use super::helper::LoginRequest;
use super::protocol::{self, Received, Reply};
use crate::cli::Failure;

pub fn login() -> Result<ExitCode, Failure> {
    let path = super::login_socket_path();
    let socket = connect(&path).map_err(|e| Failure {
        message: format!(
            "cannot reach the class server at {}: {e}\n  fix: the teacher starts `sandbox serve` on this machine (it listens there)",
            path.display()
        ),
    })?;
    let stdin = io::stdin();
    let size = crate::isolate::pty::window_size(stdin.as_fd()).unwrap_or(crate::isolate::pty::DEFAULT_SIZE);
    let term = std::env::var("TERM").unwrap_or_default();
    protocol::send(socket.as_fd(), &LoginRequest { columns: size.ws_col, rows: size.ws_row, term }, None)?;
    let mut buffer = vec![0u8; 64 * 1024];
    let master = match protocol::receive::<Reply>(socket.as_fd(), &mut buffer)? {
        Received::Message(Reply::Shell, Some(master)) => master,
        Received::Message(Reply::Denied(why) | Reply::Failed(why), _) => return Err(Failure { message: super::printable(&why) }),
        _ => return Err(Failure { message: "the class server gave no terminal".into() }),
    };
    let tty = stdin.is_terminal();
    let _raw = if tty { Some(crate::isolate::pty::RawModeGuard::enter(stdin.as_fd())?) } else { None };
    crate::isolate::pty::relay(crate::isolate::pty::Relay {
        master: master.as_fd(),
        input: Some(stdin.as_fd()),
        output: io::stdout().as_fd(),
        // The helper writes the shell's exit status here when it has ended.
        child_exited: Some(socket.as_fd()),
        resize_from: tty.then_some(stdin.as_fd()),
    })?;
    drop(_raw);
    let status = match protocol::receive::<Reply>(socket.as_fd(), &mut buffer) {
        Ok(Received::Message(Reply::Done(status), _)) => status.parse().unwrap_or(0),
        _ => 0,
    };
    Ok(ExitCode::from(status.clamp(0, 255) as u8))
}

fn connect(path: &std::path::Path) -> io::Result<OwnedFd> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
    let fd = socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)?;
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &UnixAddr::new(path)?)?;
    Ok(fd)
}

/// The helper's side: a SOCK_SEQPACKET socket at `path` that every user may
/// connect to (who they are comes from the kernel, not from what they send).
pub fn listen(path: &std::path::Path) -> io::Result<OwnedFd> {
    use nix::sys::socket::{AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, listen, socket};
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if connect(path).is_ok() {
        return Err(io::Error::other(format!(
            "another `sandbox serve` answers logins at {}\n  fix: stop it, or give this one --login-socket PATH",
            path.display()
        )));
    }
    // A socket file left by a serve that was killed.
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let fd = socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)?;
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &UnixAddr::new(path)?)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    listen(&fd, Backlog::new(64).map_err(io::Error::from)?)?;
    Ok(fd)
}
