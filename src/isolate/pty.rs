//! Interactive terminals, as `docker run -it` or `script` give them.
//!
//! The sandboxed command gets a terminal of its own, a pseudo-terminal (pty),
//! rather than the caller's: a program in the sandbox then cannot change the
//! caller's terminal modes, read what the caller types after it exits, or push
//! input into the caller's shell. The supervisor copies bytes between the
//! caller's terminal and the pty's master side. How the pieces fit:
//!
//! 1. supervisor: `let pty = open_for_terminal(stdin)?` (before raw mode: the
//!    pty copies the caller's window size and terminal modes);
//! 2. fork; the child calls [`make_controlling`]`(pty.slave.as_fd())`, then the
//!    rest of its setup, then exec;
//! 3. supervisor: drop `pty.slave` (while it holds the slave, the master never
//!    sees the end of the session), `let done = pidfd_open(child)?`, then
//!    [`relay_terminal`]`(pty.master.as_fd(), done.as_fd())`, then wait.
//!
//! The relay ends when the child exits (its pidfd becomes readable), even if a
//! leftover process still holds the slave open, or when no process holds the
//! slave any more (reading the master fails with EIO).

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::stat::Mode;
use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices, Termios};
use nix::unistd::{self, Pid};

pub use nix::pty::Winsize;

/// The size a pty gets when the caller has no terminal to copy one from.
pub const DEFAULT_SIZE: Winsize = Winsize { ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 };

/// After the child exited, how long to wait for more output before returning.
const QUIET_GAP: Duration = Duration::from_millis(100);
/// After the child exited, the longest the relay keeps copying output (a
/// leftover process could write forever).
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// A pseudo-terminal pair: the supervisor keeps `master`, the sandbox gets
/// `slave`. Both are close-on-exec.
#[derive(Debug)]
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Opens a pty with the window size and modes of the caller's `terminal`, or
/// [`DEFAULT_SIZE`] and the kernel's default modes when it is not a terminal.
pub fn open_for_terminal(terminal: BorrowedFd<'_>) -> nix::Result<Pty> {
    let size = window_size(terminal).unwrap_or(DEFAULT_SIZE);
    let modes = termios::tcgetattr(terminal).ok();
    open(&size, modes.as_ref())
}

/// Opens a pty of the given size with the kernel's default modes.
pub fn open_with_size(size: &Winsize) -> nix::Result<Pty> {
    open(size, None)
}

/// Like openpty(3), but both ends are opened close-on-exec from the start, so
/// a fork in another thread can never leak them into a process that would
/// then keep the session open.
fn open(size: &Winsize, modes: Option<&Termios>) -> nix::Result<Pty> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = posix_openpt(flags)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let slave = nix::fcntl::open(ptsname_r(&master)?.as_str(), flags, Mode::empty())?;
    if let Some(modes) = modes {
        termios::tcsetattr(&slave, SetArg::TCSANOW, modes)?;
    }
    let master = OwnedFd::from(master);
    set_window_size(master.as_fd(), size)?;
    Ok(Pty { master, slave })
}

/// The window size of a terminal (TIOCGWINSZ).
pub fn window_size(terminal: BorrowedFd<'_>) -> nix::Result<Winsize> {
    let mut size = DEFAULT_SIZE;
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through the pointer,
    // which points at `size`.
    let rc = unsafe { libc::ioctl(terminal.as_raw_fd(), libc::TIOCGWINSZ, &mut size as *mut Winsize) };
    Errno::result(rc)?;
    Ok(size)
}

/// Sets the window size of a pty (TIOCSWINSZ on the master); the kernel then
/// sends SIGWINCH to the pty's foreground process group.
pub fn set_window_size(master: BorrowedFd<'_>, size: &Winsize) -> nix::Result<()> {
    // SAFETY: TIOCSWINSZ reads one `struct winsize` through the pointer.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, size as *const Winsize) };
    Errno::result(rc).map(drop)
}

/// In the child, before exec: makes `slave` the controlling terminal of a new
/// session and the command's stdin, stdout and stderr.
///
/// Starts the session itself unless the process already leads one (so calling
/// setsid() before is fine). Only system calls, no allocation: safe after fork.
/// The original `slave` descriptor stays open (close-on-exec).
pub fn make_controlling(slave: BorrowedFd<'_>) -> nix::Result<()> {
    if unistd::getsid(None)? != unistd::getpid() {
        unistd::setsid()?;
    }
    // SAFETY: TIOCSCTTY takes an int; 0 means "do not steal the terminal if
    // it already belongs to another session".
    let rc = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) };
    Errno::result(rc)?;
    unistd::dup2_stdin(slave)?;
    unistd::dup2_stdout(slave)?;
    unistd::dup2_stderr(slave)?;
    // dup2 onto itself keeps close-on-exec, which would close it at exec.
    if slave.as_raw_fd() <= libc::STDERR_FILENO {
        fcntl(slave, FcntlArg::F_SETFD(FdFlag::empty()))?;
    }
    Ok(())
}

/// A descriptor that becomes readable when `child` exits (pidfd_open(2),
/// Linux 5.3); pass it to the relay as `child_exited`. Open it before the
/// child is reaped.
pub fn pidfd_open(child: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just created `fd` (close-on-exec) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Puts a terminal in raw mode (keys pass through unprocessed: Ctrl-C reaches
/// the sandbox's pty as a byte, which sends SIGINT *there*) and restores the
/// saved modes when dropped: on return, on error and on panic alike.
#[derive(Debug)]
pub struct RawModeGuard<'fd> {
    terminal: BorrowedFd<'fd>,
    saved: Termios,
}

impl<'fd> RawModeGuard<'fd> {
    pub fn enter(terminal: BorrowedFd<'fd>) -> nix::Result<Self> {
        let saved = termios::tcgetattr(terminal)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(terminal, SetArg::TCSANOW, &raw)?;
        Ok(Self { terminal, saved })
    }
}

impl Drop for RawModeGuard<'_> {
    fn drop(&mut self) {
        // TCSADRAIN: let the last output reach the screen in raw mode first.
        // Nothing useful can be done if this fails (the terminal is gone).
        let _ = termios::tcsetattr(self.terminal, SetArg::TCSADRAIN, &self.saved);
    }
}

/// What [`relay`] copies between.
#[derive(Debug, Clone, Copy)]
pub struct Relay<'fd> {
    /// The pty's master side; the relay makes it non-blocking.
    pub master: BorrowedFd<'fd>,
    /// Copied to the master until it reaches end of file (None: the sandbox
    /// reads no input through the pty).
    pub input: Option<BorrowedFd<'fd>>,
    /// Receives everything the master produces.
    pub output: BorrowedFd<'fd>,
    /// Becomes readable when the sandbox's first process has exited (see
    /// [`pidfd_open`]); the relay then copies the remaining output and returns.
    pub child_exited: Option<BorrowedFd<'fd>>,
    /// The caller's terminal, whose window size is mirrored onto the pty on
    /// SIGWINCH. Only one relay per process may use this at a time.
    pub resize_from: Option<BorrowedFd<'fd>>,
}

/// Which of this process's standard descriptors are terminals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Terminals {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl Terminals {
    pub fn of_this_process() -> Terminals {
        let tty = |fd: RawFd| {
            // SAFETY: isatty on a standard descriptor number only asks.
            unsafe { libc::isatty(fd) == 1 }
        };
        Terminals { stdin: tty(0), stdout: tty(1), stderr: tty(2) }
    }

    pub fn any(self) -> bool {
        self.stdin || self.stdout || self.stderr
    }

    /// The standard descriptors that are terminals.
    pub fn fds(self) -> impl Iterator<Item = RawFd> {
        [(0, self.stdin), (1, self.stdout), (2, self.stderr)].into_iter().filter(|(_, tty)| *tty).map(|(fd, _)| fd)
    }

    pub fn first(self) -> Option<RawFd> {
        self.fds().next()
    }
}

/// In the sandbox's first process: the pty's slave replaces every standard
/// descriptor that is a host terminal; the others (pipes, files) stay. So the
/// sandbox never holds a descriptor of a host terminal.
pub fn attach(slave: BorrowedFd<'_>, terminals: Terminals) -> nix::Result<()> {
    for fd in terminals.fds() {
        // SAFETY: dup2 onto a standard descriptor of this process.
        Errno::result(unsafe { libc::dup2(slave.as_raw_fd(), fd) })?;
    }
    Ok(())
}

/// After setsid: the pty on a standard descriptor becomes the session's
/// controlling terminal.
pub fn take_controlling() {
    if let Some(fd) = Terminals::of_this_process().first() {
        // SAFETY: TIOCSCTTY on a terminal, by a session leader.
        unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) };
    }
}

/// The supervisor's relay for a sandbox on a pty: the caller's terminal input
/// (if stdin is one, in raw mode) to the pty, the pty's output to the
/// caller's terminal (stdout, or stderr when only it is one), the window size
/// followed, until the child exits.
pub fn relay_terminal(master: BorrowedFd<'_>, child_exited: BorrowedFd<'_>, terminals: Terminals) -> io::Result<()> {
    // Our own buffered output must not appear after the session's.
    io::stdout().flush()?;
    let (stdin, stdout, stderr) = (io::stdin(), io::stdout(), io::stderr());
    let input = terminals.stdin.then(|| stdin.as_fd());
    let output = if terminals.stdout || !terminals.stderr { stdout.as_fd() } else { stderr.as_fd() };
    let resize_from = input.or(terminals.stdout.then(|| stdout.as_fd())).or(terminals.stderr.then(|| stderr.as_fd()));
    let _raw_mode = input.map(RawModeGuard::enter).transpose()?;
    relay(Relay { master, input, output, child_exited: Some(child_exited), resize_from })
}

/// Copies `input` to the master and the master to `output` until the child
/// side ends: every descriptor a process of the sandbox held on the slave was
/// closed, or `child_exited` became readable (then the output still waiting in
/// the pty is copied first).
///
/// At end of `input` the relay stops reading it and keeps copying output. If
/// the pty is in canonical (line) mode it also types the end-of-file character
/// (Ctrl-D), so a program reading the pty sees end of file, as it would have
/// from the original input.
pub fn relay(fds: Relay<'_>) -> io::Result<()> {
    set_nonblocking(fds.master)?;
    let resize = fds.resize_from.map(|terminal| ResizeForwarding::install(terminal, fds.master)).transpose()?;
    Session::new(fds, resize.as_ref()).run()
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> nix::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

/// Whether the relay goes on after handling some output.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Finished,
}

/// What poll(2) reported, per source.
#[derive(Debug)]
struct Ready {
    master: PollFlags,
    input: PollFlags,
    child_exited: bool,
    resized: bool,
}

impl Ready {
    const NOTHING: Ready = Ready { master: PollFlags::empty(), input: PollFlags::empty(), child_exited: false, resized: false };
}

/// The state of one relay.
struct Session<'a, 'fd> {
    fds: Relay<'fd>,
    resize: Option<&'a ResizeForwarding<'fd>>,
    input_open: bool,
    /// Input read but not yet accepted by the master (it is non-blocking, so
    /// a full pty never stops the relay from copying output).
    to_child: Vec<u8>,
    /// Whether the last byte sent ended a line, for the end-of-file rule.
    at_line_start: bool,
}

const READABLE: PollFlags = PollFlags::POLLIN.union(PollFlags::POLLHUP).union(PollFlags::POLLERR);

impl<'a, 'fd> Session<'a, 'fd> {
    fn new(fds: Relay<'fd>, resize: Option<&'a ResizeForwarding<'fd>>) -> Self {
        Self { fds, resize, input_open: fds.input.is_some(), to_child: Vec::new(), at_line_start: true }
    }

    fn run(&mut self) -> io::Result<()> {
        loop {
            let ready = self.wait()?;
            if ready.master.intersects(READABLE) && self.copy_output()? == Flow::Finished {
                return Ok(());
            }
            if ready.master.contains(PollFlags::POLLOUT) {
                self.flush_to_child()?;
            }
            if ready.input.intersects(READABLE) {
                self.copy_input()?;
            }
            if ready.resized {
                self.resize.iter().for_each(|resize| resize.forward());
            }
            if ready.child_exited {
                return self.drain_output();
            }
        }
    }

    /// Waits until something can be done. Input is read only while the master
    /// has taken all earlier input, which passes a slow reader's back-pressure on.
    fn wait(&self) -> io::Result<Ready> {
        let master_events = match self.to_child.is_empty() {
            true => PollFlags::POLLIN,
            false => PollFlags::POLLIN | PollFlags::POLLOUT,
        };
        let mut fds = vec![PollFd::new(self.fds.master, master_events)];
        let mut watch = |fd: BorrowedFd<'fd>| {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
            fds.len() - 1
        };
        let input = self.fds.input.filter(|_| self.input_open && self.to_child.is_empty()).map(&mut watch);
        let child_exited = self.fds.child_exited.map(&mut watch);
        let resized = self.resize.map(|resize| watch(resize.signals()));
        match poll(&mut fds, PollTimeout::NONE) {
            // A signal (such as SIGWINCH) arrived; its pipe says the rest.
            Err(Errno::EINTR) => return Ok(Ready::NOTHING),
            Err(error) => return Err(error.into()),
            Ok(_) => {}
        }
        let events = |slot: Option<usize>| slot.and_then(|slot| fds[slot].revents()).unwrap_or(PollFlags::empty());
        if fds.iter().any(|fd| fd.revents().is_some_and(|events| events.contains(PollFlags::POLLNVAL))) {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        Ok(Ready {
            master: events(Some(0)),
            input: events(input),
            child_exited: !events(child_exited).is_empty(),
            resized: !events(resized).is_empty(),
        })
    }

    /// Copies one read of output. `Finished` when no process holds the slave.
    fn copy_output(&mut self) -> io::Result<Flow> {
        let mut buffer = [0u8; 16 * 1024];
        match unistd::read(self.fds.master, &mut buffer) {
            Ok(0) | Err(Errno::EIO) => Ok(Flow::Finished),
            Ok(count) => write_all(self.fds.output, &buffer[..count]).map(|()| Flow::Continue),
            Err(Errno::EAGAIN | Errno::EINTR) => Ok(Flow::Continue),
            Err(error) => Err(error.into()),
        }
    }

    fn copy_input(&mut self) -> io::Result<()> {
        let Some(input) = self.fds.input else { return Ok(()) };
        let mut buffer = [0u8; 4096];
        match unistd::read(input, &mut buffer) {
            // EIO: the caller's terminal hung up; treat it as end of input.
            Ok(0) | Err(Errno::EIO) => {
                self.input_open = false;
                self.send_end_of_file()
            }
            Ok(count) => {
                self.to_child.extend_from_slice(&buffer[..count]);
                self.flush_to_child()
            }
            Err(Errno::EAGAIN | Errno::EINTR) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Types Ctrl-D (the pty's VEOF character) if the pty is in line mode: at
    /// the start of a line it makes read(2) return 0; after an unfinished line
    /// the first one only ends that line, so then two are sent. A program that
    /// switched the pty to raw mode cannot be told about end of file at all.
    fn send_end_of_file(&mut self) -> io::Result<()> {
        let Ok(modes) = termios::tcgetattr(self.fds.master) else {
            return Ok(());
        };
        if !modes.local_flags.contains(LocalFlags::ICANON) {
            return Ok(());
        }
        let end_of_file = modes.control_chars[SpecialCharacterIndices::VEOF as usize];
        let count = if self.at_line_start { 1 } else { 2 };
        self.to_child.extend(std::iter::repeat_n(end_of_file, count));
        self.flush_to_child()
    }

    /// Writes as much pending input as the master takes now.
    fn flush_to_child(&mut self) -> io::Result<()> {
        if self.to_child.is_empty() {
            return Ok(());
        }
        match unistd::write(self.fds.master, &self.to_child) {
            Ok(count) => {
                self.at_line_start = matches!(self.to_child[..count].last(), Some(b'\n' | b'\r'));
                self.to_child.drain(..count);
                Ok(())
            }
            Err(Errno::EAGAIN | Errno::EINTR) => Ok(()),
            // The child side is gone; the output side will notice and finish.
            Err(Errno::EIO) => {
                self.to_child.clear();
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// After the child exited: copies what is still in the pty, until it is
    /// closed, stays quiet for QUIET_GAP, or DRAIN_LIMIT has passed.
    fn drain_output(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + DRAIN_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            let timeout = PollTimeout::try_from(left.min(QUIET_GAP)).unwrap_or(PollTimeout::ZERO);
            match poll(&mut [PollFd::new(self.fds.master, PollFlags::POLLIN)], timeout) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    if self.copy_output()? == Flow::Finished {
                        return Ok(());
                    }
                }
                Err(Errno::EINTR) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
}

/// write(2) until all of `bytes` is written, waiting if `fd` is non-blocking.
fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match unistd::write(fd, bytes) {
            Ok(count) => bytes = &bytes[count..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => match poll(&mut [PollFd::new(fd, PollFlags::POLLOUT)], PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(error) => return Err(error.into()),
            },
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// The self-pipe of SIGWINCH: the handler writes a byte, the relay polls the
/// read end. Created once and never closed, so a handler running late in
/// another thread can never write into a descriptor number reused since.
static RESIZE_PIPE: OnceLock<(OwnedFd, OwnedFd)> = OnceLock::new();
/// The pipe's write end for the signal handler; -1 until the pipe exists.
static RESIZE_PIPE_WRITE_END: AtomicI32 = AtomicI32::new(-1);

fn resize_pipe() -> io::Result<&'static (OwnedFd, OwnedFd)> {
    if let Some(pipe) = RESIZE_PIPE.get() {
        return Ok(pipe);
    }
    let pipe = unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    // Should another thread win the race, our pipe is simply dropped.
    let pipe = RESIZE_PIPE.get_or_init(|| pipe);
    RESIZE_PIPE_WRITE_END.store(pipe.1.as_raw_fd(), Ordering::Release);
    Ok(pipe)
}

extern "C" fn on_window_change(_signal: libc::c_int) {
    let saved_errno = Errno::last_raw();
    let fd = RESIZE_PIPE_WRITE_END.load(Ordering::Acquire);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe and `fd` is the pipe's write
        // end, never closed. A full pipe (EAGAIN) already holds a wake-up.
        unsafe { libc::write(fd, [0u8].as_ptr().cast(), 1) };
    }
    // The interrupted code may be about to read errno.
    Errno::set_raw(saved_errno);
}

/// While alive: SIGWINCH makes the relay copy the caller's window size to the
/// pty. Dropping it restores the previous SIGWINCH handling.
struct ResizeForwarding<'fd> {
    from: BorrowedFd<'fd>,
    to: BorrowedFd<'fd>,
    signals: BorrowedFd<'static>,
    previous: SigAction,
}

impl<'fd> ResizeForwarding<'fd> {
    fn install(from: BorrowedFd<'fd>, to: BorrowedFd<'fd>) -> io::Result<Self> {
        let (read_end, _) = resize_pipe()?;
        let action = SigAction::new(SigHandler::Handler(on_window_change), SaFlags::SA_RESTART, SigSet::empty());
        // SAFETY: the handler only loads an atomic, calls write(2) and saves
        // and restores errno, all async-signal-safe.
        let previous = unsafe { sigaction(Signal::SIGWINCH, &action) }?;
        let forwarding = Self { from, to, signals: read_end.as_fd(), previous };
        // The size may have changed between opening the pty and now.
        forwarding.forward();
        Ok(forwarding)
    }

    fn signals(&self) -> BorrowedFd<'static> {
        self.signals
    }

    /// Empties the self-pipe and copies the current size. A failure is
    /// ignored: a missed resize must not end the session.
    fn forward(&self) {
        let mut wakeups = [0u8; 64];
        while matches!(unistd::read(self.signals, &mut wakeups), Ok(count) if count > 0) {}
        if let Ok(size) = window_size(self.from) {
            let _ = set_window_size(self.to, &size);
        }
    }
}

impl Drop for ResizeForwarding<'_> {
    fn drop(&mut self) {
        // SAFETY: puts back the handling that was in place before `install`.
        let _ = unsafe { sigaction(Signal::SIGWINCH, &self.previous) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::{kill, killpg};
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};
    use std::ffi::CStr;
    use std::sync::mpsc;
    use std::thread;

    const TIMEOUT: Duration = Duration::from_secs(20);

    fn size(rows: u16, cols: u16) -> Winsize {
        Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 }
    }

    /// Forks a child that takes `slave` as its terminal and runs `/bin/sh -c
    /// script`. The argument vector is built before the fork, so the child
    /// only makes system calls until exec.
    fn spawn_on_pty(slave: BorrowedFd<'_>, script: &CStr) -> Pid {
        let argv = [c"/bin/sh".as_ptr(), c"-c".as_ptr(), script.as_ptr(), std::ptr::null()];
        // SAFETY: the child calls only async-signal-safe functions before
        // exec, and `_exit` if anything fails, never returning into the harness.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => unsafe {
                if make_controlling(slave).is_err() {
                    libc::_exit(126);
                }
                libc::execv(argv[0], argv.as_ptr());
                libc::_exit(127)
            },
            ForkResult::Parent { child } => child,
        }
    }

    /// Waits for `child`; kills its process group (it leads a session of its
    /// own) and fails the test if it runs longer than TIMEOUT.
    fn wait_or_kill(child: Pid) -> WaitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match waitpid(child, Some(WaitPidFlag::WNOHANG)).expect("waitpid") {
                WaitStatus::StillAlive if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                WaitStatus::StillAlive => {
                    let _ = killpg(child, Signal::SIGKILL).or_else(|_| kill(child, Signal::SIGKILL));
                    let status = waitpid(child, None);
                    panic!("child {child} hung, killed it: {status:?}");
                }
                status => return status,
            }
        }
    }

    /// Reads the master until `needle` appeared, or fails after TIMEOUT.
    fn read_until(master: BorrowedFd<'_>, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no {needle:?} within {TIMEOUT:?}; got {:?}", String::from_utf8_lossy(&seen));
            let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
            if poll(&mut [PollFd::new(master, PollFlags::POLLIN)], timeout).expect("poll") > 0 {
                let mut buffer = [0u8; 1024];
                let count = unistd::read(master, &mut buffer).expect("read master");
                seen.extend_from_slice(&buffer[..count]);
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    }

    /// Runs `relay` in a thread; the returned receiver yields its result.
    fn relay_in_thread(
        master: OwnedFd,
        input: OwnedFd,
        output: OwnedFd,
        child_exited: OwnedFd,
        resize_from: Option<OwnedFd>,
    ) -> mpsc::Receiver<io::Result<()>> {
        let (sender, receiver) = mpsc::channel();
        thread::spawn(move || {
            let result = relay(Relay {
                master: master.as_fd(),
                input: Some(input.as_fd()),
                output: output.as_fd(),
                child_exited: Some(child_exited.as_fd()),
                resize_from: resize_from.as_ref().map(AsFd::as_fd),
            });
            let _ = sender.send(result);
        });
        receiver
    }

    fn pipe() -> (OwnedFd, OwnedFd) {
        unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe")
    }

    fn read_to_end(fd: OwnedFd) -> String {
        let mut text = String::new();
        io::Read::read_to_string(&mut std::fs::File::from(fd), &mut text).expect("read output");
        text
    }

    #[test]
    fn a_shell_on_the_pty_sees_its_size_its_terminal_and_our_input() {
        let pty = open_with_size(&size(33, 101)).expect("open pty");
        let child = spawn_on_pty(pty.slave.as_fd(), c"stty size; tty; read x; echo got:$x");
        drop(pty.slave);
        let child_exited = pidfd_open(child).expect("pidfd_open");
        let (input, mut typing) = pipe();
        unistd::write(&mut typing, b"hello\n").expect("write input");
        drop(typing); // end of input: the relay types Ctrl-D after it
        let (output_read, output_write) = pipe();
        let relay_done = relay_in_thread(pty.master, input, output_write, child_exited, None);

        let status = wait_or_kill(child);
        let relayed = relay_done.recv_timeout(TIMEOUT).expect("relay returns after the child exits");
        let output = read_to_end(output_read);
        relayed.expect("relay succeeds");
        assert_eq!(status, WaitStatus::Exited(child, 0), "output: {output:?}");
        assert!(output.contains("33 101"), "stty size: {output:?}");
        assert!(output.contains("/dev/pts/"), "tty: {output:?}");
        assert!(output.contains("got:hello"), "read: {output:?}");
    }

    /// A leftover process holding the slave (here: the test itself) must not
    /// keep the session open once the child has exited.
    #[test]
    fn the_relay_ends_when_the_child_exits_even_if_the_slave_stays_open() {
        let pty = open_with_size(&DEFAULT_SIZE).expect("open pty");
        let child = spawn_on_pty(pty.slave.as_fd(), c"echo bye");
        let _leftover_holder = pty.slave;
        let child_exited = pidfd_open(child).expect("pidfd_open");
        let (input, _keep_input_open) = pipe();
        let (output_read, output_write) = pipe();
        let relay_done = relay_in_thread(pty.master, input, output_write, child_exited, None);

        let status = wait_or_kill(child);
        relay_done.recv_timeout(TIMEOUT).expect("relay returns").expect("relay succeeds");
        let output = read_to_end(output_read);
        assert_eq!(status, WaitStatus::Exited(child, 0));
        assert!(output.contains("bye"), "the last output is still copied: {output:?}");
    }

    #[test]
    fn ctrl_c_on_the_master_interrupts_the_foreground_process() {
        let pty = open_with_size(&DEFAULT_SIZE).expect("open pty");
        let child = spawn_on_pty(pty.slave.as_fd(), c"echo ready; exec sleep 100");
        drop(pty.slave);
        read_until(pty.master.as_fd(), "ready");
        unistd::write(&pty.master, &[0x03]).expect("type Ctrl-C");
        let status = wait_or_kill(child);
        assert!(matches!(status, WaitStatus::Signaled(pid, Signal::SIGINT, _) if pid == child), "{status:?}");
    }

    #[test]
    fn end_of_input_after_an_unfinished_line_still_reaches_the_program() {
        let pty = open_with_size(&DEFAULT_SIZE).expect("open pty");
        // cat copies its input and exits only when it sees end of file.
        let child = spawn_on_pty(pty.slave.as_fd(), c"stty -echo; echo ready; cat; echo done:$?");
        drop(pty.slave);
        read_until(pty.master.as_fd(), "ready");
        let child_exited = pidfd_open(child).expect("pidfd_open");
        let (input, mut typing) = pipe();
        unistd::write(&mut typing, b"no newline").expect("write input");
        drop(typing);
        let (output_read, output_write) = pipe();
        let relay_done = relay_in_thread(pty.master, input, output_write, child_exited, None);

        let status = wait_or_kill(child);
        relay_done.recv_timeout(TIMEOUT).expect("relay returns").expect("relay succeeds");
        let output = read_to_end(output_read);
        assert_eq!(status, WaitStatus::Exited(child, 0), "output: {output:?}");
        assert!(output.contains("no newline"), "{output:?}");
        assert!(output.contains("done:0"), "{output:?}");
    }

    #[test]
    fn raw_mode_is_restored_when_the_guard_drops() {
        // A second pty stands in for the caller's terminal.
        let caller = open_with_size(&DEFAULT_SIZE).expect("open pty");
        let canonical = |fd| termios::tcgetattr(fd).expect("tcgetattr").local_flags.contains(LocalFlags::ICANON);
        assert!(canonical(caller.slave.as_fd()));
        let guard = RawModeGuard::enter(caller.slave.as_fd()).expect("raw mode");
        assert!(!canonical(caller.slave.as_fd()));
        drop(guard);
        assert!(canonical(caller.slave.as_fd()));
    }

    #[test]
    fn sigwinch_copies_the_callers_window_size_to_the_pty() {
        let sandbox = open_with_size(&size(33, 101)).expect("open pty");
        let caller = open_with_size(&size(10, 20)).expect("open pty");
        let observed = sandbox.master.try_clone().expect("dup master");
        let (input, _keep_input_open) = pipe();
        let (_output_read, output_write) = pipe();
        let (stop, mut stop_now) = pipe();
        let relay_done = relay_in_thread(sandbox.master, input, output_write, stop, Some(caller.slave));

        // The relay copies the size once when it starts, after installing its handler.
        wait_for_size(observed.as_fd(), size(10, 20));
        set_window_size(caller.master.as_fd(), &size(40, 120)).expect("resize caller");
        kill(unistd::getpid(), Signal::SIGWINCH).expect("send SIGWINCH");
        wait_for_size(observed.as_fd(), size(40, 120));

        unistd::write(&mut stop_now, b"x").expect("stop relay");
        relay_done.recv_timeout(TIMEOUT).expect("relay returns").expect("relay succeeds");
    }

    fn wait_for_size(master: BorrowedFd<'_>, expected: Winsize) {
        let deadline = Instant::now() + TIMEOUT;
        let same = |a: &Winsize| (a.ws_row, a.ws_col) == (expected.ws_row, expected.ws_col);
        while !same(&window_size(master).expect("window size")) {
            assert!(Instant::now() < deadline, "pty never got {}x{}", expected.ws_row, expected.ws_col);
            thread::sleep(Duration::from_millis(10));
        }
    }
}
