//! What the unprivileged web process may ask the root helper, and how.
//!
//! One SOCK_SEQPACKET socket pair: every message is one datagram holding one
//! JSON object, so a message is never split or merged, and a terminal travels
//! as the pty's master descriptor attached to the reply (SCM_RIGHTS). Every
//! request carries the credential it acts for (a login token or a session
//! cookie): the helper decides who that is and what they may reach; the web
//! process never names an instance.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use serde::{Deserialize, Serialize};

/// The largest message either side sends (the class table of a big class, a
/// lab's instructions in two languages).
pub const MAX_MESSAGE: usize = 1 << 20;

/// Who a credential belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "role", content = "name", rename_all = "lowercase")]
pub enum Who {
    Teacher,
    Student(String),
}

impl Who {
    /// The name tokens are kept under: `teacher` or the student's.
    pub fn key(&self) -> &str {
        match self {
            Who::Teacher => super::tokens::TEACHER,
            Who::Student(name) => name,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Start,
    Stop,
    Reset,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// Exchange a login token for a session.
    Login {
        token: String,
    },
    /// Who holds this session cookie.
    Whoami {
        cookie: String,
    },
    Logout {
        cookie: String,
    },
    /// A new shell in the session's own instance (students only): the reply
    /// carries the pty's master.
    OpenShell {
        cookie: String,
        columns: u16,
        rows: u16,
    },
    /// The class table (teacher only).
    Class {
        cookie: String,
    },
    /// Start, stop or reset one student's instance, or every one (teacher only).
    Act {
        cookie: String,
        action: Action,
        student: Option<String>,
    },
    /// Run the lab's checks: a student's own, or any student's for the teacher.
    Check {
        cookie: String,
        student: Option<String>,
    },
    /// The lab's texts (no credential: they are the same for everyone).
    Lab,
}

/// One line of the class table.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StudentStatus {
    pub name: String,
    pub instance: String,
    pub state: String,
    pub uptime_seconds: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub pids: Option<u64>,
    pub disk_bytes: Option<u64>,
    /// The last check: check id -> passed, and when (Unix seconds).
    pub checks: std::collections::BTreeMap<String, bool>,
    pub checked_at: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckResult {
    pub id: String,
    pub passed: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckReport {
    pub student: String,
    pub passed: bool,
    pub checks: Vec<CheckResult>,
    pub at: u64,
}

/// A text in both languages of the labs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Texts {
    pub en: String,
    pub ko: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckInfo {
    pub id: String,
    pub title: Texts,
    pub hint: Texts,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabInfo {
    pub id: String,
    pub title: Texts,
    pub goal: Texts,
    pub readme: Texts,
    pub checks: Vec<CheckInfo>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Reply {
    Session {
        cookie: String,
        who: Who,
    },
    Who(Who),
    /// The shell's pty master is attached.
    Shell,
    Class(Vec<StudentStatus>),
    Done(String),
    Checked(CheckReport),
    Lab(Option<Box<LabInfo>>),
    Ok,
    /// Not allowed, or not a valid credential (the same answer for both).
    Denied(String),
    Failed(String),
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub id: u64,
    pub body: T,
}

/// Sends one message, with `fd` attached when given.
pub fn send<T: Serialize>(socket: BorrowedFd<'_>, message: &T, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let bytes = serde_json::to_vec(message).map_err(io::Error::other)?;
    if bytes.len() > MAX_MESSAGE {
        return Err(io::Error::other(format!("message of {} bytes is over the limit of {MAX_MESSAGE}", bytes.len())));
    }
    let fds: Vec<RawFd> = fd.iter().map(|fd| fd.as_raw_fd()).collect();
    let control = [ControlMessage::ScmRights(&fds)];
    let control: &[ControlMessage] = if fds.is_empty() { &[] } else { &control };
    loop {
        match sendmsg::<()>(socket.as_raw_fd(), &[IoSlice::new(&bytes)], control, MsgFlags::MSG_NOSIGNAL, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            result => return result.map(drop).map_err(io::Error::from),
        }
    }
}

/// What [`receive`] got.
pub enum Received<T> {
    Message(T, Option<OwnedFd>),
    /// The other side closed its end.
    Closed,
    /// Nothing yet (the socket is non-blocking).
    WouldBlock,
}

/// Receives one message and the descriptor attached to it, if any. Every
/// descriptor that arrives is owned (and so closed) even if the message is bad.
pub fn receive<T: for<'de> Deserialize<'de>>(socket: BorrowedFd<'_>, buffer: &mut [u8]) -> io::Result<Received<T>> {
    let mut control = nix::cmsg_space!([RawFd; 4]);
    let (length, truncated, mut fds) = loop {
        let mut iov = [IoSliceMut::new(buffer)];
        match recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut control), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => return Ok(Received::WouldBlock),
            Err(error) => return Err(error.into()),
            Ok(message) => {
                let mut fds = Vec::new();
                for cmsg in message.cmsgs().map_err(io::Error::from)? {
                    if let ControlMessageOwned::ScmRights(received) = cmsg {
                        // SAFETY: the kernel just installed these descriptors for us; nothing else owns them.
                        fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                    }
                }
                break (message.bytes, message.flags.contains(MsgFlags::MSG_TRUNC), fds);
            }
        }
    };
    if length == 0 && fds.is_empty() {
        return Ok(Received::Closed);
    }
    if truncated {
        return Err(io::Error::other("a message over the size limit"));
    }
    let value = serde_json::from_slice(&buffer[..length]).map_err(|e| io::Error::other(format!("a malformed message: {e}")))?;
    Ok(Received::Message(value, fds.pop()))
}

/// A connected SOCK_SEQPACKET pair, both ends close-on-exec.
pub fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).map_err(io::Error::from)?;
    for fd in [&a, &b] {
        // Room for a few large messages at once (the default is about 200 KiB).
        let _ = nix::sys::socket::setsockopt(fd, nix::sys::socket::sockopt::SndBuf, &(4 * MAX_MESSAGE));
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn messages_and_descriptors_cross_the_pair() {
        let (a, b) = pair().unwrap();
        let file = tempfile::tempfile().unwrap();
        let request = Envelope { id: 7, body: Request::OpenShell { cookie: "c".into(), columns: 80, rows: 24 } };
        send(a.as_fd(), &request, Some(file.as_fd())).unwrap();
        let mut buffer = vec![0; MAX_MESSAGE];
        let Received::Message(got, fd) = receive::<Envelope<Request>>(b.as_fd(), &mut buffer).unwrap() else { panic!("no message") };
        assert_eq!(got.id, 7);
        assert!(matches!(got.body, Request::OpenShell { columns: 80, rows: 24, .. }));
        assert!(fd.is_some(), "the descriptor came along");
        drop(a);
        assert!(matches!(receive::<Envelope<Request>>(b.as_fd(), &mut buffer).unwrap(), Received::Closed));
    }

    #[test]
    fn a_malformed_message_is_an_error_not_a_panic() {
        let (a, b) = pair().unwrap();
        nix::unistd::write(&a, b"{not json").unwrap();
        let mut buffer = vec![0; 1024];
        assert!(receive::<Envelope<Request>>(b.as_fd(), &mut buffer).is_err());
    }

    #[test]
    fn who_serialises_by_role() {
        assert_eq!(serde_json::to_string(&Who::Student("alice".into())).unwrap(), r#"{"role":"student","name":"alice"}"#);
        assert_eq!(serde_json::to_string(&Who::Teacher).unwrap(), r#"{"role":"teacher"}"#);
    }
}
