//! The students' shells, as the web process keeps them: one pty master per
//! shell, read by a task of its own, with a bounded scrollback that a
//! reconnecting tab (or the teacher's read-only view) is shown first, as
//! `tmux attach` shows the screen. Closing a tab only detaches it.
//!
//! Flow control: each viewer has a small queue. The shell's task waits while a
//! viewer's queue is full, so output is paced by the viewers (a `yes` fills
//! its own pty and blocks there, as on a slow terminal) and never piles up in
//! memory; a viewer that takes nothing for [`SLOW_VIEWER`] is dropped (its tab
//! reconnects and starts from the scrollback), so a dead network cannot
//! stall the shell. Every shell is its own task: one student's runaway output
//! only ever waits on that student's viewers.

use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

/// Output kept for a tab that attaches later.
pub const SCROLLBACK: usize = 256 * 1024;
/// Chunks queued for one viewer (each at most [`CHUNK`] bytes).
const VIEWER_QUEUE: usize = 16;
const CHUNK: usize = 16 * 1024;
/// Input not yet taken by the pty, at most.
const INPUT_QUEUE: usize = 64;
/// A viewer that takes no output for this long is let go.
pub const SLOW_VIEWER: Duration = Duration::from_secs(10);
/// Tabs on one shell at once.
pub const MAX_VIEWERS: usize = 16;
/// Shells one student may have through the web.
pub const SHELLS_PER_STUDENT: u8 = 4;

pub enum Control {
    Input(Bytes),
    Resize(u16, u16),
}

pub enum Out {
    Data(Bytes),
    /// The shell ended, or this viewer was too slow.
    Closed(&'static str),
}

struct Shared {
    scrollback: VecDeque<u8>,
    viewers: Vec<(u64, mpsc::Sender<Out>)>,
    next_viewer: u64,
    /// Bytes read while nobody watched; past a scrollback's worth the shell
    /// is no longer read (its output blocks, as on a terminal on hold) until
    /// a viewer comes, so an unwatched `yes` costs nothing.
    unviewed: usize,
}

pub struct Terminal {
    shared: Mutex<Shared>,
    control: mpsc::Sender<Control>,
    alive: AtomicBool,
    viewer_came: tokio::sync::Notify,
}

pub struct Viewer {
    pub id: u64,
    pub output: mpsc::Receiver<Out>,
    /// What the shell showed before this viewer came.
    pub scrollback: Vec<u8>,
}

impl Terminal {
    /// Takes over `master` and starts the task that reads it.
    pub fn start(master: OwnedFd) -> std::io::Result<Arc<Terminal>> {
        let flags = nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_GETFL)?;
        let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(flags))?;
        // SAFETY: an OwnedFd stays open and the same until the AsyncFd drops it.
        let master =
            unsafe { AsyncFd::register_with_interest(master, Interest::READABLE | Interest::WRITABLE) }.map_err(std::io::Error::from)?;
        let (control, controls) = mpsc::channel(INPUT_QUEUE);
        let terminal = Arc::new(Terminal {
            shared: Mutex::new(Shared { scrollback: VecDeque::new(), viewers: Vec::new(), next_viewer: 1, unviewed: 0 }),
            control,
            alive: AtomicBool::new(true),
            viewer_came: tokio::sync::Notify::new(),
        });
        tokio::spawn(pump(Arc::clone(&terminal), master, controls));
        Ok(terminal)
    }

    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// A new viewer: the scrollback so far, then everything after it, with
    /// nothing lost or repeated between the two.
    pub fn attach(&self) -> Option<Viewer> {
        let mut shared = self.shared.lock().unwrap();
        if !self.alive() || shared.viewers.len() >= MAX_VIEWERS {
            return None;
        }
        let (tx, rx) = mpsc::channel(VIEWER_QUEUE);
        let id = shared.next_viewer;
        shared.next_viewer += 1;
        shared.viewers.push((id, tx));
        shared.unviewed = 0;
        self.viewer_came.notify_one();
        let scrollback = shared.scrollback.iter().copied().collect();
        Some(Viewer { id, output: rx, scrollback })
    }

    pub fn detach(&self, id: u64) {
        self.shared.lock().unwrap().viewers.retain(|(v, _)| *v != id);
    }

    /// Input or a resize; waits while the pty has not taken earlier input.
    pub async fn send(&self, control: Control) {
        let _ = self.control.send(control).await;
    }

    async fn publish(&self, bytes: Bytes) {
        let viewers = {
            let mut shared = self.shared.lock().unwrap();
            shared.scrollback.extend(bytes.iter().copied());
            let excess = shared.scrollback.len().saturating_sub(SCROLLBACK);
            if excess > 0 {
                // Cut at a line's start where one is near, so a replay does
                // not begin in the middle of an escape sequence.
                let cut = shared.scrollback.iter().skip(excess).take(4096).position(|b| *b == b'\n').map_or(excess, |p| excess + p + 1);
                shared.scrollback.drain(..cut);
            }
            if shared.viewers.is_empty() {
                shared.unviewed += bytes.len();
            }
            shared.viewers.clone()
        };
        for (id, viewer) in viewers {
            let sent = tokio::time::timeout(SLOW_VIEWER, viewer.send(Out::Data(bytes.clone()))).await;
            if !matches!(sent, Ok(Ok(()))) {
                self.detach(id);
                let _ = viewer.try_send(Out::Closed("too slow: reconnect"));
            }
        }
    }

    fn on_hold(&self) -> bool {
        let shared = self.shared.lock().unwrap();
        shared.viewers.is_empty() && shared.unviewed >= SCROLLBACK
    }

    fn end(&self) {
        self.alive.store(false, Ordering::SeqCst);
        let viewers = std::mem::take(&mut self.shared.lock().unwrap().viewers);
        for (_, viewer) in viewers {
            let _ = viewer.try_send(Out::Closed("the shell has ended"));
        }
    }
}

/// Reads the master, writes input to it, resizes it, until the shell ends.
async fn pump(terminal: Arc<Terminal>, master: AsyncFd<OwnedFd>, mut controls: mpsc::Receiver<Control>) {
    let mut input: VecDeque<u8> = VecDeque::new();
    let mut buffer = vec![0u8; CHUNK];
    loop {
        if terminal.on_hold() {
            terminal.viewer_came.notified().await;
            continue;
        }
        tokio::select! {
            ready = master.readable() => {
                let Ok(mut guard) = ready else { break };
                match guard.try_io(|fd| nix::unistd::read(fd.get_ref(), &mut buffer).map_err(std::io::Error::from)) {
                    Ok(Ok(0)) | Ok(Err(_)) => break, // EIO: no process holds the shell's side any more
                    Ok(Ok(n)) => terminal.publish(Bytes::copy_from_slice(&buffer[..n])).await,
                    Err(_would_block) => {}
                }
            }
            ready = master.writable(), if !input.is_empty() => {
                let Ok(mut guard) = ready else { break };
                let (front, _) = input.as_slices();
                match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), front).map_err(std::io::Error::from)) {
                    Ok(Ok(n)) => { input.drain(..n); }
                    Ok(Err(_)) => input.clear(),
                    Err(_would_block) => {}
                }
            }
            control = controls.recv(), if input.len() < CHUNK => {
                match control {
                    Some(Control::Input(bytes)) => input.extend(bytes.iter().copied()),
                    Some(Control::Resize(columns, rows)) => {
                        let size = crate::isolate::pty::Winsize { ws_row: rows.clamp(2, 500), ws_col: columns.clamp(2, 1000), ws_xpixel: 0, ws_ypixel: 0 };
                        // SAFETY: TIOCSWINSZ reads one winsize through the pointer.
                        unsafe { libc::ioctl(master.get_ref().as_raw_fd(), libc::TIOCSWINSZ, &size as *const _) };
                    }
                    None => break,
                }
            }
        }
    }
    terminal.end();
}

/// Every shell the web process holds, by student and shell number.
#[derive(Default)]
pub struct Terminals {
    shells: tokio::sync::Mutex<HashMap<(String, u8), Arc<Terminal>>>,
    /// Last input per student (Unix seconds), for the teacher's table.
    activity: Mutex<HashMap<String, u64>>,
    pub attached: AtomicU64,
}

impl Terminals {
    /// The student's shell `number`, opened by `open` (the helper) if it is not running.
    pub async fn get_or_open<F, Fut>(&self, student: &str, number: u8, open: F) -> Result<Arc<Terminal>, String>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<OwnedFd, String>>,
    {
        let mut shells = self.shells.lock().await;
        shells.retain(|_, t| t.alive());
        if let Some(terminal) = shells.get(&(student.to_string(), number)) {
            return Ok(Arc::clone(terminal));
        }
        let master = open().await?;
        let terminal = Terminal::start(master).map_err(|e| e.to_string())?;
        shells.insert((student.to_string(), number), Arc::clone(&terminal));
        Ok(terminal)
    }

    /// An open shell, for a read-only viewer (who never starts one).
    pub async fn get(&self, student: &str, number: u8) -> Option<Arc<Terminal>> {
        self.shells.lock().await.get(&(student.to_string(), number)).filter(|t| t.alive()).cloned()
    }

    /// The shell numbers each student has open.
    pub async fn open_shells(&self) -> HashMap<String, Vec<u8>> {
        let mut open: HashMap<String, Vec<u8>> = HashMap::new();
        for ((student, number), terminal) in self.shells.lock().await.iter() {
            if terminal.alive() {
                open.entry(student.clone()).or_default().push(*number);
            }
        }
        open.values_mut().for_each(|v| v.sort());
        open
    }

    pub fn touched(&self, student: &str) {
        self.activity.lock().unwrap().insert(student.to_string(), crate::instance::now());
    }

    pub fn last_activity(&self, student: &str) -> Option<u64> {
        self.activity.lock().unwrap().get(student).copied()
    }
}
