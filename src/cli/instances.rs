//! Per-student instances: `run --name`, `start`, `exec`, `ps`, `stop`,
//! `reset`, `rm`, `diff`.

use std::io::Write;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use super::output::{Failure, Stream, stream};
use crate::cgroup::{self, CgroupManager};
use crate::instance::{self, Instance, Running};
use crate::plan::{self, IdMapping, Input};
use crate::profile::{Mode, Profile};
use crate::session::{self, Request};

fn state() -> std::path::PathBuf {
    crate::state::home()
}

fn limits(profile: &Profile) -> cgroup::Limits {
    cgroup::Limits { memory: profile.limits.memory, pids: profile.limits.pids, cpu: profile.limits.cpu }
}

fn cgroup_name(name: &str) -> String {
    format!("inst-{name}")
}

/// The cgroup a running instance's PID 1 is in, to join, read or clean
/// (nothing is created): found from the process, so it works from any cgroup.
fn manager(running: &Running) -> Option<Box<dyn CgroupManager>> {
    cgroup::attach(&running.cgroup, running.init)
}

/// The profile spec as the record keeps it: ready names as they are, paths absolute.
fn absolute_spec(spec: &str) -> String {
    if spec.contains('/') || spec.ends_with(".toml") {
        std::fs::canonicalize(spec).map(|p| p.display().to_string()).unwrap_or_else(|_| spec.to_string())
    } else {
        spec.to_string()
    }
}

/// `sandbox run PROFILE --name NAME`: enter the instance, creating it on first use.
/// In the background (`start`), PID 1 waits with no command until stopped.
pub fn run_named(spec: &str, name: &str, command: Vec<String>, background: bool) -> Result<ExitCode, Failure> {
    let state = state();
    let instance = Instance::named(&state, name)?;
    let lock = instance.lock()?;
    if instance.running().is_some() {
        return Err(instance::InstanceError::Running(name.into()).into());
    }
    let profile = super::build::load(spec)?;
    let rootfs = super::run::rootfs_for(&profile)?;
    let digest = rootfs.file_name().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default();
    let mut record = if instance.exists() {
        let record = instance.record()?;
        if record.profile_name != profile.name {
            return Err(instance::InstanceError::OtherProfile(name.into(), record.profile_name, profile.name).into());
        }
        record
    } else {
        instance.create(&state, &absolute_spec(spec), &profile.name, &digest, &rootfs)?
    };
    if record.digest != digest {
        // The environment was rebuilt (new host packages): the layer stays on top.
        record.digest = digest;
        record.rootfs = rootfs.clone();
    }
    let command = if background { Vec::new() } else { super::run::command_for(&profile, command) };
    let request = Request {
        profile: &profile,
        mode: Mode::Namespace,
        rootfs,
        command,
        name: cgroup_name(name),
        dry_run: false,
        layer: Some(instance.layer()),
        id_base: Some(record.id_base),
        throwaway: false,
    };
    let session = session::prepare(&request, &state)?;
    super::run::warn(&session.warnings)?;
    let cgroup_dirs = session.cgroup.as_ref().map(|c| c.dirs()).unwrap_or_default();
    // The lock is held until the instance is marked running: two `start`s of
    // one name never give two instances.
    let mut lock = Some(lock);
    let supervisor = std::process::id() as i32;
    let mut on_init = |init: i32| {
        let running = Running {
            supervisor,
            supervisor_start: instance::start_time(supervisor).unwrap_or(0),
            init,
            init_start: instance::start_time(init).unwrap_or(0),
            started: instance::now(),
            cgroup: cgroup_name(name),
            cgroup_dirs: cgroup_dirs.clone(),
        };
        let _ = instance.set_running(&running);
        // Unlock explicitly: the sandbox's processes inherited this descriptor
        // when they forked, and a flock lasts while any copy is open.
        if let Some(file) = lock.take() {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on our own open file.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
        }
    };
    let result = super::run::launch_session(&session, &mut |_| {}, None, Some(&mut on_init), !background, false);
    instance.clear_running();
    let status = result?.status;
    Ok(ExitCode::from(status.clamp(0, 255) as u8))
}

/// `sandbox start PROFILE --name A --name B ...`: instances in the background, in parallel.
pub fn start(spec: &str, names: Vec<String>, names_from: Option<&Path>) -> Result<ExitCode, Failure> {
    let mut names = names;
    if let Some(file) = names_from {
        let text = std::fs::read_to_string(file).map_err(|e| Failure { message: format!("{}: {e}", file.display()) })?;
        names.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from));
    }
    if names.is_empty() {
        return Err(Failure { message: "no instance names\n  fix: give --name NAME (repeatable) or --names-from FILE".into() });
    }
    let state = state();
    for name in &names {
        Instance::named(&state, name)?;
    }
    // Build once, before thirty supervisors ask for the same rootfs.
    let profile = super::build::load(spec)?;
    super::run::rootfs_for(&profile)?;
    let spec = absolute_spec(spec);
    // On cgroup v2, alone in its cgroup: into the `supervisor` leaf first, so
    // the supervisors are born there and their cgroups can get controllers.
    let _leaf = cgroup::detect().ok().and_then(|layout| {
        let how = cgroup::Placing { parent: cgroup::options::current().parent, self_pid: std::process::id() as i32, tracking_only: false };
        cgroup::enter_supervisor_leaf(&layout, &how)
    });
    let logs = state.join("run/logs");
    std::fs::create_dir_all(&logs)?;
    let mut children = Vec::new();
    for name in &names {
        let log = std::fs::File::create(logs.join(format!("{name}.log")))?;
        let mut command = std::process::Command::new(std::env::current_exe()?);
        command
            .args(["run", &spec, "--name", name, "--background"])
            .args(cgroup::options::current().to_args())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // A session of its own: the instance outlives the terminal that started it.
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(std::io::Error::from));
        }
        children.push((name.clone(), command.spawn()?));
    }
    let mut out = stream(Stream::Stdout);
    let mut failed = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    for (name, mut child) in children {
        let instance = Instance::named(&state, &name)?;
        loop {
            // Running under our own supervisor: another `start` of the same
            // name may have won the race, and then ours fails below.
            if let Some(running) = instance.running().filter(|r| r.supervisor == child.id() as i32) {
                writeln!(out, "started {name} (PID {})", running.init)?;
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(logs.join(format!("{name}.log"))).unwrap_or_default();
                writeln!(stream(Stream::Stderr), "error: {name} did not start ({status}): {}", log.trim())?;
                failed += 1;
                break;
            }
            if Instant::now() > deadline {
                writeln!(stream(Stream::Stderr), "error: {name} did not start within 2 minutes")?;
                failed += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(125) })
}

/// `sandbox exec NAME [-- CMD]`: join a running instance.
pub fn exec(name: &str, command: Vec<String>) -> Result<ExitCode, Failure> {
    let state = state();
    let instance = Instance::named(&state, name)?;
    let record = instance.record()?;
    let running = instance.running().ok_or_else(|| Failure {
        message: format!(
            "instance `{name}` is not running\n  fix: `sandbox start {} --name {name}`, or `sandbox run {} --name {name}`",
            record.profile, record.profile
        ),
    })?;
    let profile = super::build::load(&record.profile)?;
    let manager = manager(&running);
    if manager.is_none() && !limits(&profile).is_empty() && !cgroup::options::current().no_limits {
        return Err(Failure {
            message: format!(
                "instance `{name}` has no cgroup of its own (started with --no-limits?), so the profile's [limits] would not hold for this command\n  fix: restart it (`sandbox stop {name}` and `sandbox start {} --name {name}`), or run without limits on purpose with --no-limits",
                record.profile
            ),
        });
    }
    let input = Input {
        profile: &profile,
        mode: Mode::Namespace,
        rootfs: record.rootfs.clone(),
        command: super::run::command_for(&profile, command),
        term: std::env::var("TERM").ok(),
        ids: IdMapping::Range { host_base: record.id_base },
        idmapped: false,
        cgroup: plan::CgroupPlan { procs: manager.as_ref().map(|m| m.procs_files()).unwrap_or_default(), ..Default::default() },
        layer: None,
        throwaway: false,
    };
    let plan = plan::join(&input, running.init);
    let options = crate::isolate::Options { tty: true, cgroup: manager.as_deref(), before_step: None, on_init: None, narrate: false };
    let outcome = crate::isolate::launch(&plan, options, &mut |_| {})?;
    super::run::report(&outcome)?;
    Ok(ExitCode::from(outcome.status.clamp(0, 255) as u8))
}

#[derive(serde::Serialize)]
struct Row {
    name: String,
    profile: String,
    digest: String,
    state: &'static str,
    pid: Option<i32>,
    uptime_seconds: Option<u64>,
    memory_bytes: Option<u64>,
    pids: Option<u64>,
    processes: Option<usize>,
}

pub fn ps(json: bool) -> Result<ExitCode, Failure> {
    let state = state();
    let mut rows = Vec::new();
    for instance in instance::all(&state) {
        let Ok(record) = instance.record() else { continue };
        let running = instance.running();
        let stats = running.as_ref().and_then(|running| manager(running).map(|m| (m.stats(), m.procs_files())));
        let processes =
            stats.as_ref().and_then(|(_, procs)| procs.first()).and_then(|f| std::fs::read_to_string(f).ok()).map(|t| t.lines().count());
        rows.push(Row {
            name: record.name.clone(),
            profile: record.profile_name.clone(),
            digest: crate::rootfs::digest::short(&record.digest).to_string(),
            state: if running.is_some() { "running" } else { "stopped" },
            pid: running.as_ref().map(|r| r.init),
            uptime_seconds: running.as_ref().map(|r| instance::now().saturating_sub(r.started)),
            memory_bytes: stats.as_ref().and_then(|(s, _)| s.memory_bytes),
            pids: stats.as_ref().and_then(|(s, _)| s.pids),
            processes,
        });
    }
    let mut out = stream(Stream::Stdout);
    if json {
        writeln!(out, "{}", serde_json::to_string(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<16} {:<10} {:<13} {:<8} {:>7} {:>8} {:>10} {:>5}",
        "NAME", "PROFILE", "DIGEST", "STATE", "PID", "UPTIME", "MEMORY", "PIDS"
    )?;
    let dash = || "-".to_string();
    for r in rows {
        writeln!(
            out,
            "{:<16} {:<10} {:<13} {:<8} {:>7} {:>8} {:>10} {:>5}",
            r.name,
            r.profile,
            r.digest,
            r.state,
            r.pid.map(|p| p.to_string()).unwrap_or_else(dash),
            r.uptime_seconds.map(|s| format!("{s}s")).unwrap_or_else(dash),
            r.memory_bytes.map(super::output::human_bytes).unwrap_or_else(dash),
            r.pids.map(|p| p.to_string()).unwrap_or_else(dash),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// End an instance: SIGTERM to its PID 1, SIGKILL after a grace period, then
/// its cgroup (the supervisor normally removes it; after a crash, we do).
fn stop_one(instance: &Instance) -> Result<bool, Failure> {
    let running = instance.running();
    if let Some(running) = &running {
        let _ = crate::isolate::signal_sandbox(running.init, nix::sys::signal::Signal::SIGTERM);
        let gone = |r: &Running| instance::start_time(r.init) != Some(r.init_start);
        wait_for(|| gone(running), Duration::from_secs(5));
        if !gone(running) {
            let _ = crate::isolate::signal_sandbox(running.init, nix::sys::signal::Signal::SIGKILL);
        }
        // The supervisor cleans up after its sandbox; give it a moment.
        wait_for(|| instance::start_time(running.supervisor) != Some(running.supervisor_start), Duration::from_secs(5));
    }
    // Whatever happened before (a killed supervisor, a crash): no process and
    // no cgroup of the instance is left.
    if let Some(last) = instance.last_running()
        && let Some(m) = cgroup::attach_dirs(&last.cgroup, &last.cgroup_dirs)
    {
        let _ = m.kill_all();
        let _ = m.remove();
    }
    instance.clear_running();
    Ok(running.is_some())
}

fn wait_for(mut done: impl FnMut() -> bool, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !done() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn stop(names: &[String]) -> Result<ExitCode, Failure> {
    let state = state();
    let mut out = stream(Stream::Stdout);
    for name in names {
        let instance = Instance::named(&state, name)?;
        if !instance.exists() {
            return Err(instance::InstanceError::Missing(name.clone()).into());
        }
        let _lock = instance.lock()?;
        let stopped = stop_one(&instance)?;
        writeln!(out, "{} {name}", if stopped { "stopped" } else { "not running:" })?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn reset(names: &[String]) -> Result<ExitCode, Failure> {
    let state = state();
    for name in names {
        let instance = Instance::named(&state, name)?;
        if !instance.exists() {
            return Err(instance::InstanceError::Missing(name.clone()).into());
        }
        let _lock = instance.lock()?;
        if instance.running().is_some() {
            return Err(instance::InstanceError::Running(name.clone()).into());
        }
        instance.reset()?;
        writeln!(stream(Stream::Stdout), "reset {name}")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn rm(names: &[String]) -> Result<ExitCode, Failure> {
    let state = state();
    for name in names {
        let instance = Instance::named(&state, name)?;
        if !instance.exists() {
            return Err(instance::InstanceError::Missing(name.clone()).into());
        }
        let lock = instance.lock()?;
        stop_one(&instance)?;
        drop(lock);
        instance.remove()?;
        writeln!(stream(Stream::Stdout), "removed {name}")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn diff(name: &str) -> Result<ExitCode, Failure> {
    let state = state();
    let instance = Instance::named(&state, name)?;
    let record = instance.record()?;
    let mut out = stream(Stream::Stdout);
    for change in instance::diff(&instance.layer().upper, &record.rootfs)? {
        match change {
            instance::Change::Added(p) => writeln!(out, "A {}", p.display())?,
            instance::Change::Changed(p) => writeln!(out, "C {}", p.display())?,
            instance::Change::Deleted(p) => writeln!(out, "D {}", p.display())?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// For `gc`: instances marked running whose PID 1 is gone (a crash): clean them.
pub fn gc_instances(out: &mut dyn Write) -> std::io::Result<usize> {
    let mut cleaned = 0;
    for instance in instance::all(&state()) {
        let crashed = instance.dir.join("running.json").exists() && instance.running().is_none();
        if crashed {
            let _ = stop_one(&instance);
            writeln!(out, "cleaned crashed instance {}", instance.name)?;
            cleaned += 1;
        }
    }
    Ok(cleaned)
}
