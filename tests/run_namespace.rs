//! `sandbox run` in namespace mode against the real kernel: what the student
//! sees, what they cannot reach, limits, exit statuses, and that nothing leaks.

mod common;

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn run_in(profile: &str, script: &str) -> Output {
    run(sandbox().arg("run").arg(profile_path(profile)).args(["--mode", "namespace", "--", "/bin/bash", "-c", script]).stdin(Stdio::null()))
}

/// stdout of a script that must succeed inside.
fn inside(profile: &str, script: &str) -> String {
    let output = run_in(profile, script);
    assert!(output.status.success(), "`{script}` failed ({}):\n{}{}", output.status, stdout(&output), stderr(&output));
    stdout(&output)
}

#[test]
fn the_command_is_alone_with_its_init() {
    if !need_root("namespace mode with an id range") {
        return;
    }
    let text = inside("run.toml", "ps -e -o pid=,ppid=,comm=; echo parent=$PPID");
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("parent=")).collect();
    assert!(lines.len() <= 4, "only init, bash and ps: {text}");
    assert!(lines[0].trim().starts_with("1 "), "PID 1 first: {text}");
    assert!(text.contains("parent=1"), "the command's parent is PID 1: {text}");
}

#[test]
fn hostname_network_and_ids_are_the_sandbox_s() {
    if !need_root("namespace mode with an id range") {
        return;
    }
    let text = inside(
        "run.toml",
        "uname -n; cat /proc/net/dev | tail -n +3 | cut -d: -f1; cat /proc/self/uid_map; id -un; ping -c1 -W2 127.0.0.1 >/dev/null && echo ping-ok",
    );
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(lines[0], "lab");
    assert_eq!(lines[1], "lo", "only loopback: {text}");
    let map: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(map[0], "0");
    assert_ne!(map[1], "0", "root inside is never root outside: {text}");
    assert_eq!(lines[3], "student");
    // No capability, no setuid: ping works through ICMP sockets on the sandbox's loopback.
    assert_eq!(lines[4], "ping-ok", "{text}");
}

#[test]
fn host_loopback_is_unreachable() {
    if !need_root("namespace mode with an id range") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let output = run_in("run.toml", &format!("echo hi > /dev/tcp/127.0.0.1/{port} && echo CONNECTED"));
    assert!(!stdout(&output).contains("CONNECTED"), "reached the host's loopback");
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "a connection arrived on the host");
}

#[test]
fn host_files_and_processes_are_out_of_reach() {
    if !need_root("namespace mode with an id range") {
        return;
    }
    let marker = tempfile::NamedTempFile::new_in("/tmp").unwrap();
    fs::write(marker.path(), "host secret").unwrap();
    let mut sleeper = Command::new("sleep").arg("300").spawn().unwrap();
    let host_pid = sleeper.id();
    let marker_path = marker.path().display().to_string();
    // As root inside: the classic double chroot, /proc/1/root, signals, ptrace.
    let script = format!(
        r#"cat {m} /proc/1/root{m} 2>/dev/null && echo READ
           perl -e 'mkdir "/tmp/x"; chroot "/tmp/x"; chdir ".." for 1..64; chroot "."; open(F, "<", "{m}") && print "ESCAPED\n"'
           kill -9 {host_pid} 2>/dev/null && echo KILLED
           python3 -c 'import ctypes; l=ctypes.CDLL(None, use_errno=True); print("handle", l.syscall(304, -100, 0, 0), ctypes.get_errno())'
           echo LISTING $(ls /proc/1/root/ 2>&1)"#,
        m = marker_path
    );
    let output = run_in("runroot.toml", &script);
    let text = stdout(&output);
    assert!(!text.contains("READ") && !text.contains("ESCAPED"), "host file read: {text}{}", stderr(&output));
    assert!(!text.contains("KILLED"));
    assert!(text.contains("handle -1 1"), "open_by_handle_at must fail with EPERM: {text}{}", stderr(&output));
    let listing = text.lines().find(|l| l.starts_with("LISTING")).unwrap_or_default();
    assert!(!listing.contains("work") && !listing.contains("boot"), "/proc/1/root shows the host: {text}");
    assert!(sleeper.try_wait().unwrap().is_none(), "the host process was signalled");
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

#[test]
fn kernel_settings_devices_and_mounts_are_refused_even_to_root() {
    if !need_root("namespace mode with an id range") {
        return;
    }
    let script = r#"
        for f in /proc/sys/kernel/core_pattern /proc/sys/kernel/hostname /proc/sys/vm/drop_caches; do
            (echo x > $f) 2>/dev/null && echo "WROTE $f"
        done
        mknod /tmp/null c 1 3 2>/dev/null && echo MKNOD
        python3 -c 'import ctypes; l=ctypes.CDLL(None, use_errno=True); print("mount", l.mount(b"none", b"/tmp", b"tmpfs", 0, None), ctypes.get_errno())'
        wc -c < /proc/keys; cat /proc/sysvipc/shm | wc -l
        grep CapEff /proc/self/status"#;
    // A shared memory segment on the host, which the sandbox must not see.
    let created = stdout(&run(Command::new("ipcmk").args(["-M", "4096"])));
    let id = created.split_whitespace().last().unwrap_or_default().to_string();
    let host_segments = fs::read_to_string("/proc/sysvipc/shm").unwrap().lines().count();
    let text = inside("runroot.toml", script);
    run(Command::new("ipcrm").args(["-m", &id]));
    assert!(host_segments > 1, "the host has a segment to hide: {created}");
    assert!(!text.contains("WROTE") && !text.contains("MKNOD"), "{text}");
    assert!(text.contains("mount -1 1"), "mount(2) must fail with EPERM: {text}");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert!(lines.contains(&"0"), "/proc/keys is masked: {text}");
    assert!(lines.contains(&"1"), "no SysV shared memory from the host, only the header: {text}");
    let student = inside("run.toml", "grep -E 'CapEff|CapBnd|NoNewPrivs|Seccomp:' /proc/self/status");
    assert!(student.contains("CapEff:\t0000000000000000") && student.contains("CapBnd:\t0000000000000000"), "{student}");
    assert!(student.contains("NoNewPrivs:\t1") && student.contains("Seccomp:\t2"), "{student}");
}

#[test]
fn an_inherited_directory_fd_is_closed() {
    if !need_root("namespace mode with an id range") {
        return;
    }
    let dir = fs::File::open("/").unwrap();
    let fd = dir.as_raw_fd();
    // SAFETY: clearing close-on-exec on our own fd, so `sandbox` inherits it.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    let text = inside("run.toml", "ls /proc/self/fd | tr '\\n' ' '");
    let fds: Vec<&str> = text.split_whitespace().collect();
    assert!(fds.iter().all(|f| ["0", "1", "2", "3"].contains(f)), "fd {fd} leaked in: {text}");
}

#[test]
fn memory_limit_oom_kills_and_the_tool_says_so() {
    if !need_root("cgroup limits") {
        return;
    }
    let output = run_in("run.toml", "python3 -c 'x = bytearray(400 * 1024 * 1024); print(len(x))'");
    assert_eq!(output.status.code(), Some(137), "{}{}", stdout(&output), stderr(&output));
    assert!(stderr(&output).contains("OOM killer"), "{}", stderr(&output));
}

#[test]
fn fork_bomb_stops_at_the_pids_limit() {
    if !need_root("cgroup limits") {
        return;
    }
    // A bomb that counts: fork until the kernel refuses, then clean up.
    let script = r#"exec python3 -c '
import os, time
kids, refused = [], 0
for i in range(200):
    try:
        pid = os.fork()
    except OSError:
        refused += 1
        continue
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    kids.append(pid)
print(len(kids))
print(refused)
for k in kids: os.kill(k, 9)
for k in kids: os.waitpid(k, 0)
'"#;
    let output = run_in("run.toml", script);
    let text = stdout(&output);
    let counts: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert!(counts.len() == 2 && counts[0] < 48, "more processes than pids = 48: {text}{}", stderr(&output));
    assert!(counts[1] > 0, "fork never failed: {text}{}", stderr(&output));
}

#[test]
fn exit_statuses_are_the_command_s() {
    if !need_root("namespace mode with an id range") {
        return;
    }
    assert_eq!(run_in("run.toml", "exit 7").status.code(), Some(7));
    assert_eq!(run_in("run.toml", "kill -TERM $$").status.code(), Some(143));
    let missing = run(sandbox().arg("run").arg(profile_path("run.toml")).args(["--", "/no/such/program"]).stdin(Stdio::null()));
    assert_eq!(missing.status.code(), Some(127), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("/no/such/program"), "{}", stderr(&missing));
    let not_exec = run(sandbox().arg("run").arg(profile_path("run.toml")).args(["--", "/etc/passwd"]).stdin(Stdio::null()));
    assert_eq!(not_exec.status.code(), Some(126), "{}", stderr(&not_exec));
    let bad = run(sandbox().arg("run").arg("/no/such/profile.toml").stdin(Stdio::null()));
    assert_eq!(bad.status.code(), Some(125));
}

// ----- nothing leaks ---------------------------------------------------------------------------

/// Mounts of the host that mention the store: there must be none after a run.
fn store_mounts() -> Vec<String> {
    let home = shared_home().display().to_string();
    fs::read_to_string("/proc/self/mountinfo").unwrap().lines().filter(|l| l.contains(&home)).map(String::from).collect()
}

fn cgroups_of(supervisor: u32) -> Vec<String> {
    let needle = format!("sandbox-run-{supervisor}");
    let mut found = Vec::new();
    for hierarchy in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let mut stack = vec![hierarchy.path()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    if entry.file_name().to_string_lossy().starts_with(&needle) {
                        found.push(entry.path().display().to_string());
                    }
                    if stack.len() < 10_000 {
                        stack.push(entry.path());
                    }
                }
            }
        }
    }
    found
}

/// The `sleep MARKER` processes (not the sandbox's own, whose arguments mention them).
fn processes_with(marker: &str) -> Vec<u32> {
    let wanted = format!("sleep\0{marker}\0");
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted.as_bytes()))
        .collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spawn_sleeper(marker: &str) -> std::process::Child {
    sandbox()
        .arg("run")
        .arg(profile_path("run.toml"))
        .args(["--", "/bin/bash", "-c", &format!("sleep {marker} & sleep {marker}; echo done")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn assert_clean(supervisor: u32, marker: &str) {
    wait_until("the sandbox's processes end", || processes_with(marker).is_empty());
    assert!(store_mounts().is_empty(), "mounts leaked: {:?}", store_mounts());
    assert!(cgroups_of(supervisor).is_empty(), "cgroups leaked: {:?}", cgroups_of(supervisor));
}

#[test]
fn nothing_leaks_after_exit_error_interrupt_or_kill() {
    if !need_root("cgroups and mounts") {
        return;
    }
    // Normal exit and a failing command.
    for script in ["exit 0", "exit 3"] {
        let child = sandbox()
            .arg("run")
            .arg(profile_path("run.toml"))
            .args(["--", "/bin/bash", "-c", script])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.code().is_some());
        assert_clean(pid, "no-marker-needed-here");
    }
    // Ctrl-C: SIGINT to the supervisor reaches the command, which dies of it.
    let marker = "1234.5";
    let mut child = spawn_sleeper(marker);
    wait_until("the sleepers start", || processes_with(marker).len() >= 2);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "the command died of SIGINT");
    assert_clean(child.id(), marker);
    // kill -9 of the supervisor: the sandbox dies with it; the next run removes its cgroup.
    let marker = "1234.6";
    let mut child = spawn_sleeper(marker);
    wait_until("the sleepers start", || processes_with(marker).len() >= 2);
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until("the sandbox dies with its supervisor", || processes_with(marker).is_empty());
    assert!(store_mounts().is_empty(), "mounts leaked: {:?}", store_mounts());
    ok(sandbox().arg("run").arg(profile_path("run.toml")).args(["--", "/bin/true"]).stdin(Stdio::null()));
    assert!(cgroups_of(child.id()).is_empty(), "the next run removes a killed run's cgroup: {:?}", cgroups_of(child.id()));
}

#[test]
fn interactive_bash_through_a_terminal() {
    if !need_root("namespace mode with an id range") {
        return;
    }
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = || Stdio::from(pty.slave.try_clone().unwrap());
    let mut child = sandbox()
        .arg("run")
        .arg(profile_path("run.toml"))
        .args(["--", "/bin/bash", "--norc", "-i"])
        .env("TERM", "dumb")
        .stdin(slave())
        .stdout(slave())
        .stderr(slave())
        .spawn()
        .unwrap();
    drop(pty.slave);
    let mut master = fs::File::from(pty.master);
    let mut seen = String::new();
    // Reads with a deadline: a hang fails the test instead of blocking CI.
    let read_until = |master: &mut fs::File, needle: &str, seen: &mut String| {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        while !seen.contains(needle) {
            assert!(start.elapsed() < Duration::from_secs(15), "never saw {needle:?} in {seen:?}");
            let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::from(200u16)).unwrap_or(0) == 0 {
                continue;
            }
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    };
    use std::io::Write;
    master.write_all(b"echo $((6*7)); readlink /proc/self/fd/0\n").unwrap();
    read_until(&mut master, "42", &mut seen);
    read_until(&mut master, "/dev/pts/", &mut seen);
    master.write_all(b"sleep 100\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Ctrl-C reaches the foreground job inside, not the supervisor.
    master.write_all(&[0x03]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    master.write_all(b"echo after=$?\n").unwrap();
    read_until(&mut master, "after=130", &mut seen);
    master.write_all(b"exit 5\n").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(5), "{seen}");
}

#[test]
fn an_unprivileged_user_runs_rootless() {
    if !need_root("switching to the user nobody for the test") {
        return;
    }
    let home = tempfile::tempdir_in("/tmp").unwrap();
    nix::unistd::chown(home.path(), Some(nix::unistd::Uid::from_raw(65534)), Some(nix::unistd::Gid::from_raw(65534))).unwrap();
    let as_nobody = |args: &[&str]| {
        run(Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_sandbox"))
            .args(args)
            .env("SANDBOX_HOME", home.path().join("state"))
            .env("HOME", home.path())
            .current_dir(home.path())
            .stdin(Stdio::null()))
    };
    // No cgroup is delegated to nobody here: the shell profile's limits cannot
    // hold, so it does not start, one line per limit and the fix...
    let refused = as_nobody(&["run", "shell", "--", "/bin/true"]);
    assert_eq!(refused.status.code(), Some(125), "{}", stderr(&refused));
    for line in ["cannot be applied", "  memory: ", "  pids: ", "fix: ", "--no-limits"] {
        assert!(stderr(&refused).contains(line), "{line:?} in {}", stderr(&refused));
    }
    // ...unless it is told to run without them, and then it says so.
    let output =
        as_nobody(&["run", "--no-limits", "shell", "--", "/bin/bash", "-c", "id -un; cat /proc/self/uid_map; ps -e --no-headers | wc -l"]);
    assert!(stderr(&output).contains("--no-limits: the profile's [limits] are not applied"), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(lines[0], "student");
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["1000", "65534", "1"]);
    assert_eq!(lines[2], "4", "init, bash, ps and wc only: {text}");
}

// ----- terminals: the sandbox never holds a host terminal (issue 12 item 14) -------------------

/// A pty the test owns, standing for the teacher's terminal.
struct HostTerminal {
    master: fs::File,
    slave: std::os::fd::OwnedFd,
}

impl HostTerminal {
    fn new(rows: u16, cols: u16) -> HostTerminal {
        let size = nix::pty::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = nix::pty::openpty(Some(&size), None).unwrap();
        HostTerminal { master: fs::File::from(pty.master), slave: pty.slave }
    }

    fn stdio(&self) -> Stdio {
        Stdio::from(self.slave.try_clone().unwrap())
    }

    fn size(&self) -> (u16, u16) {
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ fills the struct we own.
        assert_eq!(unsafe { libc::ioctl(self.slave.as_raw_fd(), libc::TIOCGWINSZ, &mut size) }, 0);
        (size.ws_row, size.ws_col)
    }

    fn canonical(&self) -> bool {
        nix::sys::termios::tcgetattr(&self.slave).unwrap().local_flags.contains(nix::sys::termios::LocalFlags::ICANON)
    }

    /// Everything the terminal shows until `needle`, or a failure after 20 s.
    fn read_until(&mut self, needle: &str) -> String {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let start = Instant::now();
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        while !seen.contains(needle) {
            assert!(start.elapsed() < Duration::from_secs(20), "never saw {needle:?} in {seen:?}");
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::from(200u16)).unwrap_or(0) == 0 {
                continue;
            }
            match self.master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        seen
    }
}

/// What a program inside does to "its" terminal: a tiny window, raw mode.
const TERMINAL_GRAB: &str = "import fcntl, os, struct, sys, termios, tty
fd = 1
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 5, 17, 0, 0))
tty.setraw(fd)
print('stdin', os.readlink('/proc/self/fd/0'), 'tty', os.isatty(1), flush=True)";

#[test]
fn stdout_on_a_terminal_gets_a_pty_of_its_own_and_stdin_stays_what_it_was() {
    if !need_root("namespace mode with an id range") {
        return;
    }
    let mut host = HostTerminal::new(40, 100);
    let child = sandbox()
        .arg("run")
        .arg(profile_path("run.toml"))
        .args(["--", "python3", "-c", TERMINAL_GRAB])
        .stdin(Stdio::null())
        .stdout(host.stdio())
        .stderr(host.stdio())
        .spawn()
        .unwrap();
    let seen = host.read_until("tty True");
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{seen}");
    assert!(seen.contains("stdin /dev/null"), "stdin is not a terminal, so it stays as it was: {seen}");
    // The program changed its own pty, never the host's terminal.
    assert_eq!(host.size(), (40, 100), "the host terminal's size changed: {seen}");
    assert!(host.canonical(), "the host terminal was left in raw mode: {seen}");
}

#[test]
fn explain_step_gives_the_command_its_own_pty_and_q_or_ctrl_c_leave_cleanly() {
    if !need_root("namespace mode with an id range") {
        return;
    }
    use std::io::Write;
    // Enter at every pause, then the command runs on its own pty.
    let mut host = HostTerminal::new(40, 100);
    let mut child = sandbox()
        .args(["explain", "--step", "--lang", "en"])
        .arg(profile_path("run.toml"))
        .args(["--", "python3", "-c", TERMINAL_GRAB])
        .stdin(host.stdio())
        .stdout(host.stdio())
        .stderr(host.stdio())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    while !seen.contains("tty True") {
        seen.push_str(&host.read_until("]"));
        if seen.contains("tty True") {
            break;
        }
        host.master.write_all(b"\n").unwrap();
        assert!(seen.matches("Press Enter").count() < 200, "{seen}");
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{seen}");
    assert_eq!(host.size(), (40, 100), "the host terminal's size changed");
    assert!(host.canonical(), "the host terminal was left changed");

    // q at the first pause, and Ctrl-C at the third: step mode ends, nothing is left.
    for (key, after, code) in [(b'q', 0, 0), (0x03u8, 2, 130)] {
        let mut host = HostTerminal::new(24, 80);
        let mut child = sandbox()
            .args(["explain", "--step", "--lang", "en"])
            .arg(profile_path("run.toml"))
            .args(["--", "/bin/true"])
            .stdin(host.stdio())
            .stdout(host.stdio())
            .stderr(host.stdio())
            .spawn()
            .unwrap();
        for _ in 0..after {
            host.read_until("Press Enter");
            host.master.write_all(b"\n").unwrap();
        }
        host.read_until("Press Enter");
        host.master.write_all(&[key]).unwrap();
        let seen = host.read_until("Left step mode");
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{seen}");
        assert!(cgroups_of(child.id()).is_empty(), "a cgroup is left: {:?}", cgroups_of(child.id()));
    }
}

// ----- [[mounts]] readonly = true holds for every mount below (issue 12 item 13) ----------------

#[test]
fn a_readonly_mount_is_readonly_all_the_way_down() {
    if !need_root("mounts") {
        return;
    }
    let shared = tempfile::tempdir().unwrap();
    fs::create_dir(shared.path().join("sub")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let profile = work.path().join("ro.toml");
    fs::write(
        &profile,
        format!(
            "name = \"ro\"\nextends = \"{}\"\n[[mounts]]\nsource = \"{}\"\ntarget = \"/shared\"\nreadonly = true\n",
            profile_path("runroot.toml").display(),
            shared.path().display()
        ),
    )
    .unwrap();
    // A mount below the shared directory, in a mount namespace of the test's own (gone with it).
    let script = "touch /shared/top 2>&1; touch /shared/sub/below 2>&1; echo checked";
    let output = run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!("mount -t tmpfs below {}/sub && exec \"$0\" run \"$1\" -- /bin/sh -c \"$2\"", shared.path().display()))
        .arg(env!("CARGO_BIN_EXE_sandbox"))
        .arg(&profile)
        .arg(script)
        .env("SANDBOX_HOME", shared_home())
        .stdin(Stdio::null()));
    let text = stdout(&output);
    assert!(text.contains("checked"), "{text}{}", stderr(&output));
    assert_eq!(text.matches("Read-only file system").count(), 2, "both the mount and the one below are read-only: {text}");
    assert!(!shared.path().join("top").exists());
}

// ----- a one-off run writes into a throwaway layer ----------------------------------------------

#[test]
fn a_one_off_run_can_write_its_home_and_leaves_nothing() {
    if !need_root("namespace mode with an id range") {
        return;
    }
    let text = inside(
        "run.toml",
        "mkdir -p ~/.local/lib && echo kept > ~/.local/lib/x && cat ~/.local/lib/x; touch /etc/x 2>&1 | grep -c Permission",
    );
    // The home is writable; the image's own files keep their owners (root's /etc is not the student's).
    assert_eq!(text, "kept\n1\n");
    // The next run starts from the image again.
    assert_eq!(inside("run.toml", "test -e ~/.local/lib/x && echo still-there; echo fresh"), "fresh\n");
    assert!(store_mounts().is_empty(), "mounts leaked: {:?}", store_mounts());
}
