//! Shared by the serve tests: a running `sandbox serve` (killed by PID when
//! dropped, its instances removed), links by `serve tokens --rotate`, HTTP
//! with curl, and a ttyd-protocol websocket client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[path = "../common/mod.rs"]
pub mod common;
pub use common::*;

/// The serve tests share one state directory (and its store), so they run
/// one at a time: each rotates the teacher's token.
pub static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub fn serialize() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn labs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/serve-labs")
}

pub struct Serve {
    pub child: Option<Child>,
    pub port: u16,
    pub students: Vec<String>,
    pub lab: Option<String>,
    pub stderr: Arc<Mutex<String>>,
    pub stdout: Arc<Mutex<String>>,
    pub socket: PathBuf,
    /// Remove the instances when dropped.
    pub cleanup: bool,
    pub extra: Vec<String>,
}

impl Serve {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn instance(&self, student: &str) -> String {
        match &self.lab {
            Some(lab) => format!("lab{}-{student}", &lab[..2]),
            None => student.to_string(),
        }
    }

    pub fn start(students: &[&str], lab: Option<&str>, extra: &[&str]) -> Serve {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve");
        std::fs::create_dir_all(&dir).unwrap();
        let names = dir.join(format!("names-{}", students.join("-")));
        std::fs::write(&names, students.join("\n") + "\n").unwrap();
        let mut serve = Serve {
            child: None,
            port: free_port(),
            students: students.iter().map(|s| s.to_string()).collect(),
            lab: lab.map(String::from),
            stderr: Arc::default(),
            stdout: Arc::default(),
            socket: dir.join(format!("login-{}.sock", students[0])),
            cleanup: true,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        serve.spawn(&names);
        serve
    }

    fn spawn(&mut self, names: &Path) {
        let mut command = sandbox();
        command.env("SANDBOX_LABS", labs_dir()).env("SANDBOX_LOGIN_SOCKET", &self.socket).arg("serve");
        if self.lab.is_none() {
            command.arg("shell");
        }
        command.arg("--names-from").arg(names).args(["--listen", &format!("127.0.0.1:{}", self.port)]);
        if let Some(lab) = &self.lab {
            command.args(["--lab", lab]);
        }
        command.args(&self.extra);
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).spawn().unwrap();
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let (stdout, stderr) = (Arc::clone(&self.stdout), Arc::clone(&self.stderr));
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                stdout.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("serve: {line}");
                stderr.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            if self.stderr.lock().unwrap().contains("serving ") {
                break;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("serve ended ({status}):\n{}", self.stderr.lock().unwrap());
            }
            assert!(Instant::now() < deadline, "serve did not start:\n{}", self.stderr.lock().unwrap());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Start again with the same class (after a kill).
    pub fn restart(&mut self) {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve");
        let names = dir.join(format!("names-{}", self.students.join("-")));
        self.stderr.lock().unwrap().clear();
        self.spawn(&names);
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// The web process (the serve's child running as nobody).
    pub fn web_pid(&self) -> Option<i32> {
        let parent = self.pid();
        std::fs::read_dir("/proc").ok()?.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()).find(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let after = stat.rfind(')').map(|i| &stat[i + 2..]).unwrap_or("");
            let ppid = after.split_whitespace().nth(1).and_then(|p| p.parse::<i32>().ok());
            ppid == Some(parent) && String::from_utf8_lossy(&cmdline).contains("serve-web")
        })
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    /// A login link for `name` (a new token each time).
    pub fn link(&self, name: &str) -> String {
        let out = ok(sandbox().args(["serve", "tokens", "--rotate", name]));
        let url = out.split_whitespace().nth(1).unwrap_or_else(|| panic!("no link: {out}")).to_string();
        // The printed base is the one of the last serve started, ours here: its
        // first --origin, else its listen address. Curl reaches it by the latter.
        let origin = self.extra.iter().position(|a| a == "--origin").and_then(|i| self.extra.get(i + 1));
        let printed = origin.cloned().unwrap_or_else(|| self.base());
        assert!(url.starts_with(&printed), "{url} vs {printed}");
        url.replacen(&printed, &self.base(), 1)
    }

    pub fn token(&self, name: &str) -> String {
        self.link(name).rsplit_once("token=").unwrap().1.to_string()
    }

    /// Log in with a link: the session cookie.
    pub fn cookie(&self, name: &str) -> String {
        let response = curl(&["-i", &self.link(name)]);
        let line = response.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).unwrap_or_else(|| panic!("{response}"));
        line.split_once("sandbox_session=").unwrap().1.split(';').next().unwrap().to_string()
    }

    pub fn get(&self, path: &str, cookie: &str) -> (u16, String) {
        status_and_body(&curl(&["-i", "-H", &format!("Cookie: sandbox_session={cookie}"), &format!("{}{path}", self.base())]))
    }

    /// A POST as our own page makes it (with our Origin).
    pub fn post(&self, path: &str, cookie: &str, body: &str) -> (u16, String) {
        self.post_from(path, cookie, body, &self.base())
    }

    /// A POST as a page of `origin` makes it.
    pub fn post_from(&self, path: &str, cookie: &str, body: &str, origin: &str) -> (u16, String) {
        status_and_body(&curl(&[
            "-i",
            "-X",
            "POST",
            "-H",
            &format!("Cookie: sandbox_session={cookie}"),
            "-H",
            &format!("Origin: {origin}"),
            "-H",
            "Content-Type: application/json",
            "--data",
            body,
            &format!("{}{path}", self.base()),
        ]))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill9();
        if self.cleanup {
            let instances: Vec<String> = self.students.iter().map(|s| self.instance(s)).collect();
            let _ = sandbox().arg("rm").args(&instances).output();
        }
    }
}

pub fn curl(args: &[&str]) -> String {
    let output = Command::new("curl").args(["-s", "--max-time", "120"]).args(args).output().expect("curl is needed (.ci/run installs it)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn status_and_body(response: &str) -> (u16, String) {
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A websocket to /ws with the `tty` subprotocol, a cookie and an Origin when given.
pub async fn connect(base: &str, query: &str, cookie: Option<&str>, origin: Option<&str>) -> Result<Socket, String> {
    let url = format!("{}/ws{query}", base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "tty".parse().unwrap());
    if let Some(cookie) = cookie {
        request.headers_mut().insert("Cookie", format!("sandbox_session={cookie}").parse().unwrap());
    }
    if let Some(origin) = origin {
        request.headers_mut().insert("Origin", origin.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request).await.map(|(socket, _)| socket).map_err(|e| e.to_string())
}

pub async fn hello(socket: &mut Socket, token: &str, columns: u16, rows: u16) {
    let hello = serde_json::json!({"AuthToken": token, "columns": columns, "rows": rows}).to_string();
    socket.send(Message::Binary(hello.into_bytes().into())).await.unwrap();
}

pub async fn send(socket: &mut Socket, command: u8, payload: &[u8]) {
    let mut frame = vec![command];
    frame.extend_from_slice(payload);
    socket.send(Message::Binary(frame.into())).await.unwrap();
}

pub async fn input(socket: &mut Socket, text: &str) {
    send(socket, b'0', text.as_bytes()).await;
}

/// What the server said, frame by frame.
#[derive(Debug, PartialEq)]
pub enum Said {
    Frame(u8, Vec<u8>),
    Closed(u16, String),
}

/// The next frame (a guard against a hang, not a timing check: 90 s).
pub async fn next(socket: &mut Socket) -> Said {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(90), socket.next()).await.expect("no frame within 90 s");
        match message {
            Some(Ok(Message::Binary(bytes))) if !bytes.is_empty() => return Said::Frame(bytes[0], bytes[1..].to_vec()),
            Some(Ok(Message::Text(text))) if !text.is_empty() => return Said::Frame(text.as_bytes()[0], text.as_bytes()[1..].to_vec()),
            Some(Ok(Message::Close(frame))) => {
                return frame.map(|f| Said::Closed(f.code.into(), f.reason.to_string())).unwrap_or(Said::Closed(1005, String::new()));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Said::Closed(1006, String::new()),
        }
    }
}

/// Reads output frames until `needle` appears in what came so far; returns it all.
pub async fn until(socket: &mut Socket, needle: &str) -> String {
    let mut seen = String::new();
    loop {
        match next(socket).await {
            Said::Frame(b'0', bytes) => {
                seen.push_str(&String::from_utf8_lossy(&bytes));
                if seen.contains(needle) {
                    return seen;
                }
            }
            Said::Frame(_, _) => {}
            Said::Closed(code, reason) => panic!("closed ({code} {reason}) before {needle:?} came; so far:\n{seen}"),
        }
    }
}

/// Skips the title and preferences frames ttyd sends first; returns them.
pub async fn greeting(socket: &mut Socket) -> (String, String) {
    let title = match next(socket).await {
        Said::Frame(b'1', t) => String::from_utf8_lossy(&t).into_owned(),
        other => panic!("expected the title first, got {other:?}"),
    };
    let preferences = match next(socket).await {
        Said::Frame(b'2', p) => String::from_utf8_lossy(&p).into_owned(),
        other => panic!("expected the preferences second, got {other:?}"),
    };
    (title, preferences)
}

/// A student's shell, logged in and greeted.
pub async fn shell(serve: &Serve, cookie: &str, shell: u8) -> Socket {
    let mut socket = connect(&serve.base(), &format!("?shell={shell}"), Some(cookie), Some(&serve.base())).await.unwrap();
    hello(&mut socket, "", 80, 24).await;
    greeting(&mut socket).await;
    socket
}

pub fn exec(instance: &str, script: &str) -> String {
    stdout(&run(sandbox().args(["exec", instance, "--", "/bin/sh", "-c", script]).stdin(Stdio::null())))
}

/// The VmRSS of a process, in bytes.
pub fn rss(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

pub fn need_tool(tool: &str) -> bool {
    if Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    assert!(!in_ci(), "CI=true: {tool} is needed (.ci/run installs it)");
    eprintln!("skipped: {tool} is not installed");
    false
}
