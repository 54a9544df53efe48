//! Events: what each step did, reported from whichever process ran it to the
//! supervisor, one JSON object a line (for `explain` and course platforms).

use std::collections::BTreeMap;
use std::os::fd::{BorrowedFd, RawFd};

use serde::{Deserialize, Serialize};

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
pub enum Message {
    Event(Event),
    /// The child made its user namespace and waits for its uid/gid maps.
    NeedIds,
    /// PID 1 of the sandbox, as the host numbers it (for signals and `nsenter`).
    Init {
        pid: i32,
    },
    /// `explain --step`: the sender is about to run step `index` and waits for "go".
    Ready {
        index: usize,
    },
    /// The command could not be started (126: not executable, 127: not found).
    ExecFailed {
        status: i32,
        error: String,
    },
}

/// Write one message as a line. Errors are ignored: a supervisor that went
/// away cannot be told anything, and the process dies with it (PDEATHSIG).
pub fn send(fd: RawFd, message: &Message) {
    if let Ok(mut line) = serde_json::to_vec(message) {
        line.push(b'\n');
        // SAFETY: fd is the channel, open for the whole life of the sender.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let mut rest: &[u8] = &line;
        while !rest.is_empty() {
            match nix::unistd::write(borrowed, rest) {
                Ok(n) => rest = &rest[n..],
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
        }
    }
}
