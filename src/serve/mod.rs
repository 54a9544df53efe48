//! `sandbox serve`: the class's front door, and `sandbox login`, the ssh one.
//!
//! ```text
//! browser --http(s)/ws--> web process (unprivileged: HTTP, sessions, pages, terminals' bytes)
//!                            | socket pair: typed requests, each with the caller's credential;
//!                            | a shell comes back as a pty master (SCM_RIGHTS)
//!                            v
//! ssh -> sandbox login --> helper (root: tokens and sessions, exec into instances, start/stop/reset/check)
//!        (unix socket, SO_PEERCRED)
//! ```
//!
//! `sandbox serve` starts as root, starts (or adopts) the class's instances,
//! prints the links, binds the port and opens the TLS files, then runs the
//! web process as a child that drops to an unprivileged user before it reads
//! a byte from the network; the root process stays behind as the helper
//! ([`helper`]). Tokio, axum and rustls live only in the web process
//! ([`web`], behind the `serve` cargo feature): `sandbox run` never starts them.

pub mod class;
pub mod helper;
pub mod login;
pub mod protocol;
pub mod tokens;
#[cfg(feature = "serve")]
pub mod web;

use serde::{Deserialize, Serialize};

/// Where `sandbox login` finds the helper unless SANDBOX_LOGIN_SOCKET says otherwise.
pub const LOGIN_SOCKET: &str = "/run/sandbox-serve/login.sock";

pub fn login_socket_path() -> std::path::PathBuf {
    std::env::var_os("SANDBOX_LOGIN_SOCKET").filter(|p| !p.is_empty()).map(Into::into).unwrap_or_else(|| LOGIN_SOCKET.into())
}

/// What the root process hands the web process (as JSON on its command line;
/// no secret is in it: the TLS key travels as an open descriptor).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WebConfig {
    pub listener_fd: i32,
    pub helper_fd: i32,
    pub tls_cert_fd: Option<i32>,
    pub tls_key_fd: Option<i32>,
    /// Origins a browser's requests may come from (`http://127.0.0.1:8080`, `--origin`s).
    pub origins: Vec<String>,
    pub uid: u32,
    pub gid: u32,
}

/// Text from inside an instance (or from a command that read it), made safe
/// for a terminal and a log: control characters other than newline and tab
/// become `\xNN`, so no escape sequence reaches the teacher's screen.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if (c.is_control() && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c) {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Become `uid`:`gid` for good: no supplementary groups, real, effective and
/// saved ids all changed (so root cannot be regained), no new privileges on
/// exec. Checked afterwards: a drop that silently failed would be the worst case.
pub fn drop_privileges(uid: u32, gid: u32) -> std::io::Result<()> {
    use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
    setgroups(&[]).map_err(std::io::Error::from)?;
    setresgid(Gid::from_raw(gid), Gid::from_raw(gid), Gid::from_raw(gid)).map_err(std::io::Error::from)?;
    setresuid(Uid::from_raw(uid), Uid::from_raw(uid), Uid::from_raw(uid)).map_err(std::io::Error::from)?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if uid != 0 && (nix::unistd::setuid(Uid::from_raw(0)).is_ok() || nix::unistd::geteuid().is_root()) {
        return Err(std::io::Error::other("root could be regained after dropping privileges"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_made_visible() {
        assert_eq!(printable("ok\n\x1b]0;pwned\x07\x1b[2J"), "ok\n\\x1b]0;pwned\\x07\\x1b[2J");
        assert_eq!(printable("한글\tfine"), "한글\tfine");
        assert_eq!(printable("\u{9b}31m"), "\\x9b31m");
    }
}
