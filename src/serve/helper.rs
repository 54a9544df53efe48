//! The privileged helper: the root half of `sandbox serve`.
//!
//! It answers the web process over a socket pair and `sandbox login` over a
//! unix socket, and is the only part that acts on instances. Every request is
//! checked here, not in the web process: a credential is resolved to a person
//! by the hashed stores; a student reaches only their own instance; the
//! teacher reaches only the instances of this class; nothing names an
//! instance directly. A web process taken over by an attacker can so use only
//! the credentials of people who logged in through it, for what those people
//! may do anyway.
//!
//! Instances are driven through this binary's own commands (`exec`, `start`,
//! `stop`, `reset`, `lab start`, `lab check`, `ps`): the same code paths, and
//! locks, a teacher's shell uses, each in a process of its own, so a launch
//! never forks from this multi-threaded helper's address space.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::class::Class;
use super::protocol::{self, Action, CheckReport, CheckResult, Envelope, Received, Reply, Request, StudentStatus, Who};
use super::tokens::{self, Store, TEACHER};

/// Shells one student may have open at once (web tabs and ssh sessions).
pub const MAX_SHELLS_PER_STUDENT: usize = 8;
/// Requests handled at once; more are refused until one finishes.
const MAX_CONCURRENT: usize = 64;
/// Failed logins counted in a minute, for the whole class (the web process
/// also limits each address). Past it a failed login is told to wait; a valid
/// token still logs in, so a flood from many addresses never locks the class
/// out (a check is one hash and a lookup, and tokens cannot be guessed).
const FAILED_LOGINS_PER_MINUTE: usize = 120;
/// The longest a lab check or an instance command may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(180);
/// How long the class table is reused (many teachers' tabs poll it).
const STATUS_REUSE: Duration = Duration::from_secs(2);
/// Files walked at most to measure one instance's layer.
const DISK_WALK_LIMIT: usize = 200_000;

pub struct Helper {
    class: Class,
    state: PathBuf,
    store: Mutex<Store>,
    failures: Mutex<Vec<Instant>>,
    /// Open shells per student, shared with the threads that wait for them.
    shells: Arc<Mutex<HashMap<String, usize>>>,
    busy: Mutex<HashSet<String>>,
    progress: Mutex<BTreeMap<String, CheckReport>>,
    status: Mutex<Option<(Instant, Vec<StudentStatus>)>>,
    lab: Option<Box<protocol::LabInfo>>,
}

impl Helper {
    pub fn new(class: Class, state: &Path) -> io::Result<Helper> {
        let progress =
            std::fs::read(tokens::dir(state).join("progress.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        Ok(Helper {
            lab: class.lab_info().map(Box::new),
            class,
            state: state.to_path_buf(),
            store: Mutex::new(Store::open(state)?),
            failures: Mutex::new(Vec::new()),
            shells: Arc::new(Mutex::new(HashMap::new())),
            busy: Mutex::new(HashSet::new()),
            progress: Mutex::new(progress),
            status: Mutex::new(None),
        })
    }

    pub fn class(&self) -> &Class {
        &self.class
    }

    /// Answers the web process until it closes its end.
    pub fn serve_channel(self: &Arc<Self>, socket: OwnedFd) -> io::Result<()> {
        let socket = Arc::new(socket);
        let active = Arc::new(AtomicUsize::new(0));
        let mut buffer = vec![0u8; protocol::MAX_MESSAGE];
        loop {
            let envelope = match protocol::receive::<Envelope<Request>>(socket.as_fd(), &mut buffer) {
                Ok(Received::Message(envelope, _ignored_fd)) => envelope,
                Ok(Received::Closed) => return Ok(()),
                Ok(Received::WouldBlock) => continue,
                Err(error) => {
                    eprintln!("serve: helper: {error}");
                    continue;
                }
            };
            if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONCURRENT {
                active.fetch_sub(1, Ordering::SeqCst);
                let _ = protocol::send(socket.as_fd(), &Envelope { id: envelope.id, body: Reply::Failed("busy: try again".into()) }, None);
                continue;
            }
            let (helper, socket, active) = (Arc::clone(self), Arc::clone(&socket), Arc::clone(&active));
            std::thread::spawn(move || {
                let (reply, fd) = helper.handle(envelope.body);
                let _ = protocol::send(socket.as_fd(), &Envelope { id: envelope.id, body: reply }, fd.as_ref().map(|f| f.as_fd()));
                active.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }

    fn handle(&self, request: Request) -> (Reply, Option<OwnedFd>) {
        let result = match request {
            Request::Login { token } => self.login(&token),
            Request::Whoami { cookie } => self.who(&cookie).map(Reply::Who),
            Request::Logout { cookie } => self.store.lock().unwrap().close_session(&cookie).map(|()| Reply::Ok).map_err(fail),
            Request::OpenShell { cookie, columns, rows } => {
                return match self.who(&cookie) {
                    Ok(Who::Student(name)) => match self.open_shell(&name, columns, rows, "xterm-256color", Box::new(|_| {})) {
                        Ok(master) => (Reply::Shell, Some(master)),
                        Err(error) => (Reply::Failed(error.to_string()), None),
                    },
                    Ok(Who::Teacher) => (Reply::Denied("the teacher has no instance of their own".into()), None),
                    Err(reply) => (reply, None),
                };
            }
            Request::Class { cookie } => self.teacher(&cookie).map(|()| Reply::Class(self.class_status())),
            Request::Act { cookie, action, student } => self.act(&cookie, action, student),
            Request::Check { cookie, student } => self.check_for(&cookie, student),
            Request::Lab => Ok(Reply::Lab(self.lab.clone())),
        };
        (result.unwrap_or_else(|reply| reply), None)
    }

    fn login(&self, token: &str) -> Result<Reply, Reply> {
        let mut store = self.store.lock().unwrap();
        // Someone of this class (the tokens file may hold another serve's people).
        let member = store.person_of_token(token).map_err(fail)?.and_then(|p| self.person(&p));
        let session = match member {
            Some(_) => store.open_session(token).map_err(fail)?,
            None => None,
        };
        drop(store);
        match session {
            Some((cookie, person)) => Ok(Reply::Session { cookie, who: self.person(&person).ok_or_else(denied)? }),
            None => {
                let mut failures = self.failures.lock().unwrap();
                failures.retain(|t| t.elapsed() < Duration::from_secs(60));
                if failures.len() >= FAILED_LOGINS_PER_MINUTE {
                    return Err(Reply::Denied("too many failed logins: wait a minute".into()));
                }
                failures.push(Instant::now());
                Err(denied())
            }
        }
    }

    /// A person of this class: the teacher, or one of its students (a token
    /// file may hold people of another serve of the same state directory).
    fn person(&self, key: &str) -> Option<Who> {
        if key == TEACHER { Some(Who::Teacher) } else { self.class.has(key).then(|| Who::Student(key.to_string())) }
    }

    fn who(&self, cookie: &str) -> Result<Who, Reply> {
        let person = self.store.lock().unwrap().person_of_session(cookie).map_err(fail)?;
        person.and_then(|p| self.person(&p)).ok_or_else(denied)
    }

    fn teacher(&self, cookie: &str) -> Result<(), Reply> {
        match self.who(cookie)? {
            Who::Teacher => Ok(()),
            Who::Student(_) => Err(Reply::Denied("only the teacher may do this".into())),
        }
    }

    /// The students a request may act on: a student only themself; the
    /// teacher one student of the class, or all of them.
    fn targets(&self, cookie: &str, student: Option<String>) -> Result<Vec<String>, Reply> {
        match (self.who(cookie)?, student) {
            (Who::Student(own), None) => Ok(vec![own]),
            (Who::Student(own), Some(other)) if other == own => Ok(vec![own]),
            (Who::Student(_), Some(_)) => Err(Reply::Denied("a student may only reach their own instance".into())),
            (Who::Teacher, Some(name)) if self.class.has(&name) => Ok(vec![name]),
            (Who::Teacher, Some(_)) => Err(Reply::Denied("not a student of this class".into())),
            (Who::Teacher, None) => Ok(self.class.students.clone()),
        }
    }

    /// A shell in `student`'s instance on a new pty: `sandbox exec INSTANCE`
    /// with the pty as its terminal, as a student at a console would get. The
    /// master is returned; `on_exit` runs when the shell has ended.
    pub fn open_shell(
        &self,
        student: &str,
        columns: u16,
        rows: u16,
        term: &str,
        on_exit: Box<dyn FnOnce(Option<i32>) + Send>,
    ) -> io::Result<OwnedFd> {
        if !self.class.has(student) {
            return Err(io::Error::other("not a student of this class"));
        }
        {
            let mut shells = self.shells.lock().unwrap();
            let open = shells.entry(student.to_string()).or_default();
            if *open >= MAX_SHELLS_PER_STUDENT {
                return Err(io::Error::other(format!("{student} has {MAX_SHELLS_PER_STUDENT} shells open already: close one")));
            }
            *open += 1;
        }
        let size = crate::isolate::pty::Winsize { ws_row: rows.clamp(2, 500), ws_col: columns.clamp(2, 1000), ws_xpixel: 0, ws_ypixel: 0 };
        let spawned = crate::isolate::pty::open_with_size(&size).map_err(io::Error::from).and_then(|pty| {
            let mut command = Command::new(&self.class.exe);
            command
                .args(["exec", &self.class.instance_of(student)])
                .env("TERM", term)
                .stdin(Stdio::from(pty.slave.try_clone()?))
                .stdout(Stdio::from(pty.slave.try_clone()?))
                .stderr(Stdio::from(pty.slave.try_clone()?));
            // SAFETY: only system calls between fork and exec: a session of its
            // own with the pty (now its stdin) as the controlling terminal.
            unsafe {
                command.pre_exec(|| {
                    nix::unistd::setsid().map_err(io::Error::from)?;
                    if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = command.spawn()?;
            Ok((pty.master, child))
        });
        let (master, child) = match spawned {
            Ok(spawned) => spawned,
            Err(error) => {
                self.shell_closed(student);
                return Err(error);
            }
        };
        let student = student.to_string();
        let shells = Arc::clone(&self.shells);
        std::thread::spawn(move || {
            let mut child: Child = child;
            let status = child.wait().ok().and_then(|s| s.code());
            if let Some(open) = shells.lock().unwrap().get_mut(&student) {
                *open = open.saturating_sub(1);
            }
            on_exit(status);
        });
        Ok(master)
    }

    fn shell_closed(&self, student: &str) {
        if let Some(open) = self.shells.lock().unwrap().get_mut(student) {
            *open = open.saturating_sub(1);
        }
    }

    fn act(&self, cookie: &str, action: Action, student: Option<String>) -> Result<Reply, Reply> {
        self.teacher(cookie)?;
        let students = self.targets(cookie, student)?;
        let _busy = self.claim(&students)?;
        let result = match action {
            Action::Start => self.start(&students),
            Action::Stop => self.stop(&students),
            // `sandbox reset` of a lab's instance starts it and places the lab's
            // files again by itself; `start` then starts only what is still stopped.
            Action::Reset => self
                .stop(&students)
                .and_then(|_| self.reset(&students))
                .and_then(|_| self.start(&students))
                .map(|_| format!("reset {}", students.join(" "))),
        };
        *self.status.lock().unwrap() = None;
        result.map(Reply::Done).map_err(fail)
    }

    /// Marks students busy for one action at a time; released when dropped.
    fn claim(&self, students: &[String]) -> Result<Claim<'_>, Reply> {
        let mut busy = self.busy.lock().unwrap();
        if let Some(taken) = students.iter().find(|s| busy.contains(*s)) {
            return Err(Reply::Failed(format!("{taken}'s instance is busy with another action: try again")));
        }
        busy.extend(students.iter().cloned());
        Ok(Claim { helper: self, students: students.to_vec() })
    }

    /// Start the instances of `students` that are not running (a serve that
    /// starts again adopts those that are). Lab files are placed only in an
    /// instance made now, so a restart never overwrites a student's work.
    pub fn start(&self, students: &[String]) -> io::Result<String> {
        let state = &self.state;
        let mut new = Vec::new();
        let mut stopped = Vec::new();
        for student in students {
            let instance = crate::instance::Instance::named(state, &self.class.instance_of(student)).map_err(io::Error::other)?;
            if instance.running().is_none() {
                if !instance.exists() {
                    new.push(student.clone());
                }
                stopped.push(student.clone());
            }
        }
        if stopped.is_empty() {
            return Ok("every instance was running".into());
        }
        let mut args = vec!["start".to_string(), self.class.profile.clone()];
        for student in &stopped {
            args.extend(["--name".to_string(), self.class.instance_of(student)]);
        }
        self.run(&args)?;
        self.place_lab_files(&new)?;
        // A new instance has no work in it yet, whatever an old one of the same name had.
        if !new.is_empty() {
            self.progress.lock().unwrap().retain(|name, _| !new.contains(name));
            self.save_progress();
        }
        Ok(format!("started {}", stopped.join(" ")))
    }

    fn place_lab_files(&self, students: &[String]) -> io::Result<()> {
        let Some(lab) = &self.class.lab else { return Ok(()) };
        for student in students {
            self.run(&["lab".into(), "start".into(), lab.id.clone(), "--name".into(), student.clone()])?;
        }
        Ok(())
    }

    fn stop(&self, students: &[String]) -> io::Result<String> {
        let mut args = vec!["stop".to_string()];
        args.extend(students.iter().map(|s| self.class.instance_of(s)));
        self.run(&args)?;
        Ok(format!("stopped {}", students.join(" ")))
    }

    fn reset(&self, students: &[String]) -> io::Result<String> {
        let mut args = vec!["reset".to_string()];
        args.extend(students.iter().map(|s| self.class.instance_of(s)));
        self.run(&args)?;
        self.progress.lock().unwrap().retain(|name, _| !students.contains(name));
        self.save_progress();
        Ok(String::new())
    }

    fn check_for(&self, cookie: &str, student: Option<String>) -> Result<Reply, Reply> {
        let Some(lab) = &self.class.lab else { return Err(Reply::Failed("this class has no lab to check".into())) };
        let students = self.targets(cookie, student)?;
        let [student] = students.as_slice() else { return Err(Reply::Failed("check one student at a time".into())) };
        let _busy = self.claim(std::slice::from_ref(student))?;
        let output = self
            .output(&["lab".into(), "check".into(), lab.id.clone(), "--name".into(), student.clone(), "--json".into()])
            .map_err(fail)?;
        let parsed: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|_| {
            Reply::Failed(format!("the check did not run: {}", crate::serve::printable(&String::from_utf8_lossy(&output.stderr))))
        })?;
        let checks: Vec<CheckResult> = parsed["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| CheckResult { id: c["id"].as_str().unwrap_or("").to_string(), passed: c["passed"].as_bool().unwrap_or(false) })
            .collect();
        let report = CheckReport {
            student: student.clone(),
            passed: !checks.is_empty() && checks.iter().all(|c| c.passed),
            checks,
            at: crate::instance::now(),
        };
        self.progress.lock().unwrap().insert(student.clone(), report.clone());
        self.save_progress();
        *self.status.lock().unwrap() = None;
        Ok(Reply::Checked(report))
    }

    fn save_progress(&self) {
        let progress = self.progress.lock().unwrap().clone();
        if let Err(error) = tokens::write_private(&tokens::dir(&self.state).join("progress.json"), &progress) {
            eprintln!("serve: cannot save lab progress: {error}");
        }
    }

    /// The class table: every student's instance, its usage, their last check.
    fn class_status(&self) -> Vec<StudentStatus> {
        if let Some((at, rows)) = self.status.lock().unwrap().as_ref()
            && at.elapsed() < STATUS_REUSE
        {
            return rows.clone();
        }
        let ps: Vec<serde_json::Value> =
            self.output(&["ps".into(), "--json".into()]).ok().and_then(|o| serde_json::from_slice(&o.stdout).ok()).unwrap_or_default();
        let progress = self.progress.lock().unwrap().clone();
        let rows: Vec<StudentStatus> = self
            .class
            .students
            .iter()
            .map(|student| {
                let instance = self.class.instance_of(student);
                let row = ps.iter().find(|r| r["name"] == instance.as_str());
                let number = |key: &str| row.and_then(|r| r[key].as_u64());
                let last = progress.get(student);
                StudentStatus {
                    name: student.clone(),
                    state: row.and_then(|r| r["state"].as_str()).unwrap_or("missing").to_string(),
                    uptime_seconds: number("uptime_seconds"),
                    memory_bytes: number("memory_bytes"),
                    pids: number("pids"),
                    disk_bytes: number("disk_bytes")
                        .or_else(|| layer_bytes(&crate::instance::root(&self.state).join(&instance).join("upper"))),
                    checks: last.map(|l| l.checks.iter().map(|c| (c.id.clone(), c.passed)).collect()).unwrap_or_default(),
                    checked_at: last.map(|l| l.at),
                    instance,
                }
            })
            .collect();
        *self.status.lock().unwrap() = Some((Instant::now(), rows.clone()));
        rows
    }

    fn output(&self, args: &[String]) -> io::Result<std::process::Output> {
        let mut child = Command::new(&self.class.exe)
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        // Read both pipes while waiting, so a chatty command never blocks on a full one.
        let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = io::Read::read_to_end(&mut err, &mut bytes);
            bytes
        });
        let mut stdout = Vec::new();
        let deadline = Instant::now() + COMMAND_LIMIT;
        let out_reader = std::thread::spawn(move || {
            let _ = io::Read::read_to_end(&mut out, &mut stdout);
            stdout
        });
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(std::process::Output { status, stdout: out_reader.join().unwrap_or_default(), stderr: reader.join().unwrap_or_default() })
    }

    fn run(&self, args: &[String]) -> io::Result<()> {
        let output = self.output(args)?;
        if output.status.success() {
            return Ok(());
        }
        let message = String::from_utf8_lossy(&output.stderr);
        Err(io::Error::other(format!("`sandbox {}` failed: {}", args.join(" "), super::printable(message.trim()))))
    }

    /// Answers `sandbox login` on `listener` (a SOCK_SEQPACKET unix socket
    /// everyone may connect to): the caller's uid, from the kernel, names the
    /// student; a shell in that student's instance goes back as a pty master.
    pub fn serve_logins(self: &Arc<Self>, listener: OwnedFd) {
        loop {
            let connection = match nix::sys::socket::accept4(listener.as_raw_fd(), nix::sys::socket::SockFlag::SOCK_CLOEXEC) {
                // SAFETY: accept4 returned a new descriptor that nothing else owns.
                Ok(fd) => unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) },
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::ECONNABORTED) => continue,
                Err(error) => {
                    eprintln!("serve: login socket: {error}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let helper = Arc::clone(self);
            std::thread::spawn(move || helper.login_session(connection));
        }
    }

    fn login_session(&self, connection: OwnedFd) {
        let reply = |body: Reply, fd: Option<&OwnedFd>| {
            let _ = protocol::send(connection.as_fd(), &body, fd.map(|f| f.as_fd()));
        };
        // The request first (the caller sends it at once), so a refusal is read, not reset;
        // a caller that sends nothing is let go.
        let limit = nix::sys::time::TimeVal::new(10, 0);
        let _ = nix::sys::socket::setsockopt(&connection, nix::sys::socket::sockopt::ReceiveTimeout, &limit);
        let mut buffer = vec![0u8; 4096];
        let Ok(Received::Message(request, _)) = protocol::receive::<LoginRequest>(connection.as_fd(), &mut buffer) else {
            return reply(Reply::Failed("a malformed login request".into()), None);
        };
        let Ok(credentials) = nix::sys::socket::getsockopt(&connection, nix::sys::socket::sockopt::PeerCredentials) else {
            return reply(Reply::Denied("cannot tell who is calling".into()), None);
        };
        let user = nix::unistd::User::from_uid(credentials.uid().into()).ok().flatten().map(|u| u.name);
        let Some(student) = user.filter(|name| self.class.has(name)) else {
            return reply(Reply::Denied("your user name is not a student of the class on this server".into()), None);
        };
        let term = Some(request.term).filter(|t| valid_term(t)).unwrap_or_else(|| "xterm-256color".into());
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let on_exit = Box::new(move |status: Option<i32>| {
            let _ = done_tx.send(status);
        });
        match self.open_shell(&student, request.columns, request.rows, &term, on_exit) {
            Ok(master) => {
                eprintln!("serve: {student} logged in over ssh");
                reply(Reply::Shell, Some(&master));
                drop(master);
                let status = done_rx.recv().ok().flatten();
                reply(Reply::Done(status.unwrap_or(0).to_string()), None);
            }
            Err(error) => reply(Reply::Failed(error.to_string()), None),
        }
    }
}

/// What `sandbox login` sends first.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct LoginRequest {
    pub columns: u16,
    pub rows: u16,
    pub term: String,
}

/// A TERM value worth passing on: a terminfo name, nothing else.
fn valid_term(term: &str) -> bool {
    !term.is_empty() && term.len() <= 64 && term.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
}

struct Claim<'a> {
    helper: &'a Helper,
    students: Vec<String>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut busy = self.helper.busy.lock().unwrap();
        for s in &self.students {
            busy.remove(s);
        }
    }
}

fn denied() -> Reply {
    Reply::Denied("not a valid login".into())
}

fn fail(error: io::Error) -> Reply {
    Reply::Failed(error.to_string())
}

/// Bytes in a layer (allocated blocks), or None past the walk's limit.
fn layer_bytes(upper: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    let mut seen = 0usize;
    let mut stack = vec![upper.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            seen += 1;
            if seen > DISK_WALK_LIMIT {
                return None;
            }
            let Ok(meta) = entry.metadata() else { continue };
            total += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_of(students: &[&str]) -> (tempfile::TempDir, Helper) {
        let state = tempfile::tempdir().unwrap();
        let class = Class {
            profile: "shell".into(),
            lab: None,
            students: students.iter().map(|s| s.to_string()).collect(),
            exe: "/nonexistent/sandbox".into(),
        };
        let helper = Helper::new(class, state.path()).unwrap();
        (state, helper)
    }

    fn session(helper: &Helper, state: &Path, person: &str) -> String {
        let token = tokens::rotate(state, person).unwrap();
        match helper.login(&token) {
            Ok(Reply::Session { cookie, .. }) => cookie,
            other => panic!("{person}: {other:?}"),
        }
    }

    #[test]
    fn the_helper_decides_who_reaches_what() {
        let (state, helper) = class_of(&["alice", "bob"]);
        let alice = session(&helper, state.path(), "alice");
        let teacher = session(&helper, state.path(), TEACHER);
        let denied = |r: Result<Vec<String>, Reply>| matches!(r, Err(Reply::Denied(_)));
        assert_eq!(helper.targets(&alice, None).unwrap(), ["alice"]);
        assert_eq!(helper.targets(&alice, Some("alice".into())).unwrap(), ["alice"]);
        assert!(denied(helper.targets(&alice, Some("bob".into()))), "a student names another");
        assert!(denied(helper.targets(&alice, Some("../bob".into()))));
        assert_eq!(helper.targets(&teacher, Some("bob".into())).unwrap(), ["bob"]);
        assert_eq!(helper.targets(&teacher, None).unwrap(), ["alice", "bob"]);
        assert!(denied(helper.targets(&teacher, Some("carol".into()))), "not of this class");
        assert!(denied(helper.targets(&"f".repeat(64), None)), "a made-up cookie");
        assert!(matches!(helper.teacher(&alice), Err(Reply::Denied(_))));
        assert!(helper.teacher(&teacher).is_ok());
        // A student shell goes only to class members, whatever the caller asks.
        assert!(helper.open_shell("carol", 80, 24, "xterm", Box::new(|_| {})).is_err());
        // A token of someone outside this class (another serve's) logs nobody in.
        let outsider = tokens::rotate(state.path(), "carol").unwrap();
        assert!(matches!(helper.login(&outsider), Err(Reply::Denied(_))));
    }

    #[test]
    fn failed_logins_are_limited() {
        let (state, helper) = class_of(&["alice"]);
        for _ in 0..FAILED_LOGINS_PER_MINUTE {
            assert!(matches!(helper.login(&"0".repeat(64)), Err(Reply::Denied(why)) if why == "not a valid login"));
        }
        assert!(matches!(helper.login(&"0".repeat(64)), Err(Reply::Denied(why)) if why.contains("too many")));
        // A flood of failures locks nobody out: a real token still logs in.
        let token = tokens::rotate(state.path(), "alice").unwrap();
        assert!(matches!(helper.login(&token), Ok(Reply::Session { .. })), "a valid token after a flood");
    }

    #[test]
    fn term_values_are_terminfo_names_only() {
        assert!(valid_term("xterm-256color"));
        assert!(!valid_term("xterm\n; rm -rf /"));
        assert!(!valid_term(""));
    }
}
