//! `sandbox doctor`'s probes: small plans (`plan::probe_*`) carried out by the
//! same executor as a run, in a forked child whose namespaces and mounts end
//! with it. So the doctor tests the very sequence `run` uses.

use std::fmt;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;

use super::kernel::{Forked, Kernel, Real};
use super::setup::{self, Context};
use crate::plan::{Action, Step};

/// How a probe ended.
pub enum Outcome {
    /// Every step worked (their shell equivalents).
    Passed(Vec<String>),
    Failed {
        label: String,
        /// Preparation (becoming another user) rather than the thing tested:
        /// its failure means "not tested", not "missing".
        setup: bool,
        errno: i32,
    },
    /// It could not run, or the child died without reporting.
    NotRun(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Passed(labels) => write!(f, "passed: {}", labels.join(" → ")),
            Outcome::Failed { label, setup, errno } => {
                let errno = Errno::from_raw(*errno);
                let role = if *setup { " (preparation, so not tested)" } else { "" };
                write!(f, "`{label}` failed{role}: {errno:?} ({})", errno.desc())
            }
            Outcome::NotRun(why) => write!(f, "not run: {why}"),
        }
    }
}

/// Runs `steps` in a forked child and returns how far it got.
pub fn run(steps: &[Step]) -> Outcome {
    // CLOEXEC: a process another thread spawns meanwhile must not inherit
    // the write end, or the read below would wait for that process too.
    let (read_end, write_end) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(ends) => ends,
        Err(e) => return Outcome::NotRun(format!("pipe: {}", e.desc())),
    };
    let mut kernel = Real::new(None);
    match kernel.fork() {
        Ok(Forked::Child) => child(steps, &write_end),
        Ok(Forked::Parent(child)) => {
            drop(write_end);
            let report = read_report(read_end);
            let status = kernel.wait(child).ok();
            decode(steps, report, status)
        }
        Err(e) => Outcome::NotRun(e.to_string()),
    }
}

/// The child's whole life: run the steps, report `[failed step + 1 or 0, errno]`, `_exit`.
fn child(steps: &[Step], report: &OwnedFd) -> ! {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| first_failure(steps)));
    let (index, errno) = result.unwrap_or((-1, 0));
    let mut message = [0u8; 8];
    message[..4].copy_from_slice(&index.to_ne_bytes());
    message[4..].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: a write of our buffer to our pipe, then leaving without destructors.
    unsafe {
        libc::write(report.as_raw_fd(), message.as_ptr().cast(), message.len());
        libc::_exit(0)
    }
}

fn first_failure(steps: &[Step]) -> (i32, i32) {
    let mut kernel = Real::new(None);
    let mut ctx = Context::default();
    for (i, step) in steps.iter().enumerate() {
        if let Err(e) = setup::perform(&mut kernel, &step.action, &mut ctx) {
            return (i32::try_from(i + 1).unwrap_or(i32::MAX), e.errno as i32);
        }
    }
    (0, 0)
}

fn read_report(read_end: OwnedFd) -> Option<(i32, i32)> {
    let mut message = [0u8; 8];
    std::fs::File::from(read_end).read_exact(&mut message).ok()?;
    let index = i32::from_ne_bytes(message[..4].try_into().ok()?);
    let errno = i32::from_ne_bytes(message[4..].try_into().ok()?);
    Some((index, errno))
}

fn decode(steps: &[Step], report: Option<(i32, i32)>, status: Option<i32>) -> Outcome {
    match report {
        Some((0, _)) => Outcome::Passed(steps.iter().map(|s| s.shell.clone()).collect()),
        Some((index, errno)) if index > 0 => match steps.get(index as usize - 1) {
            Some(step) => Outcome::Failed { label: step.shell.clone(), setup: matches!(step.action, Action::ProbeAs { .. }), errno },
            None => Outcome::NotRun("the child reported an unknown step".into()),
        },
        Some(_) => Outcome::NotRun("the probe panicked in the child".into()),
        None => Outcome::NotRun(format!("the child died without reporting (status {status:?})")),
    }
}

/// The errno of a deliberately invalid mount_setattr(2) call (size 0):
/// EINVAL when the call exists, ENOSYS when it does not. It changes nothing.
pub fn mount_setattr_errno() -> i32 {
    // SAFETY: an invalid fd, an empty path and a zero size: the kernel only checks the arguments.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            -1 as libc::c_long,
            c"".as_ptr(),
            0 as libc::c_long,
            std::ptr::null_mut::<libc::c_void>(),
            0 as libc::c_long,
        )
    };
    if ret < 0 { Errno::last_raw() } else { 0 }
}
