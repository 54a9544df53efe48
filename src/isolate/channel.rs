//! The channel between the supervisor and the sandbox's processes: one socket
//! pair. Up: typed messages, one JSON object a line (events for `explain` and
//! course platforms). Down: one byte, "go" (with the idmapped rootfs as a
//! passed descriptor) or "stop".

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};

use super::kernel::SysError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position of the step in the plan.
    pub index: usize,
    pub id: String,
    pub actor: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    /// What was read after the step in this very run (an inode, a pid, a value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub observed: BTreeMap<String, String>,
}

/// Messages from the sandbox's processes to the supervisor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub(crate) enum Message {
    /// A step's outcome (every step when explaining, else only a failure).
    Event(Event),
    /// Explained: the child made its user namespace and waits for its uid/gid maps.
    NeedIds,
    /// Explained: PID 1 of the sandbox, as the host numbers it (for signals and `nsenter`).
    Init { pid: i32 },
    /// `explain --step`: the sender is about to run step `index` and waits for "go".
    Ready { index: usize },
    /// PID 1 built the sandbox and started the command (or, for a background
    /// instance, waits for `exec`): the sandbox is ready to be entered.
    Started,
    /// The command could not be started (126: not executable, 127: not found).
    ExecFailed { status: i32, error: String },
}

/// Write one message as a line. Errors are ignored: a supervisor that went
/// away cannot be told anything, and the process dies with it (PDEATHSIG).
pub(crate) fn send(fd: RawFd, message: &Message) {
    if let Ok(mut line) = serde_json::to_vec(message) {
        line.push(b'\n');
        // SAFETY: fd is the channel, open for the whole life of the sender.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let mut rest: &[u8] = &line;
        while !rest.is_empty() {
            match nix::unistd::write(borrowed, rest) {
                Ok(n) => rest = &rest[n..],
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            }
        }
    }
}

/// The supervisor's end, reading messages until every sender closed it.
pub(crate) struct Receiver {
    lines: std::io::Lines<BufReader<std::fs::File>>,
}

impl Receiver {
    pub fn new(channel: &OwnedFd) -> std::io::Result<Receiver> {
        Ok(Receiver { lines: BufReader::new(std::fs::File::from(channel.try_clone()?)).lines() })
    }

    /// The next message; None at the end. A line that is not a message is a
    /// broken protocol, reported as such rather than skipped.
    pub fn next(&mut self) -> Option<Result<Message, String>> {
        let line = match self.lines.next()? {
            Ok(line) => line,
            Err(e) => return Some(Err(format!("reading the sandbox's channel: {e}"))),
        };
        Some(serde_json::from_str(&line).map_err(|e| format!("an unexpected message from the sandbox ({e}): {line:?}")))
    }
}

/// "g" lets the child go on, "x" tells it to stop; an idmapped rootfs travels with it.
pub(crate) fn answer(channel: &OwnedFd, go: bool, passed: Option<&OwnedFd>) -> Result<(), SysError> {
    let byte = if go { [b'g'] } else { [b'x'] };
    let iov = [std::io::IoSlice::new(&byte)];
    let fds: Vec<RawFd> = passed.map(|fd| vec![fd.as_raw_fd()]).unwrap_or_default();
    let cmsgs: Vec<ControlMessage> = if fds.is_empty() { vec![] } else { vec![ControlMessage::ScmRights(&fds)] };
    nix::sys::socket::sendmsg::<()>(channel.as_raw_fd(), &iov, &cmsgs, MsgFlags::empty(), None)
        .map(drop)
        .map_err(|errno| SysError { call: "sendmsg(go)".into(), errno })
}

/// Wait for the supervisor's answer: whether to go on, and a passed fd. The
/// end of the channel (the supervisor died) is "stop".
pub(crate) fn wait_for_go(channel: RawFd) -> (bool, Option<RawFd>) {
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
