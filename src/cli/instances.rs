//! Per-student instances: `run --name`, `start`, `exec`, `ps`, `stop`,
//! `reset`, `rm`, `diff`. A name may be a display name of any script
//! (`내이름`) or the id it maps to; what comes from inside an instance (file
//! names, its log) is escaped before it reaches the terminal.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use super::output::{Failure, Stream, pad, stream};
use crate::cgroup::{self, CgroupManager};
use crate::escape;
use crate::instance::{self, Instance, Record, Running};
use crate::plan::{self, IdMapping, Input};
use crate::profile::{Mode, Profile};
use crate::session::{self, Request};

fn state() -> PathBuf {
    crate::state::home()
}

/// The state directory, checked before anything is made in it: writable, and
/// passable by the sandbox's setup (errors name the path, the cause, the fix).
fn usable_state() -> Result<PathBuf, Failure> {
    let state = state();
    crate::state::usable(&state)?;
    Ok(state)
}

fn limits(profile: &Profile) -> cgroup::Limits {
    cgroup::Limits { memory: profile.limits.memory, pids: profile.limits.pids, cpu: profile.limits.cpu }
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

/// The display name, safe to print.
fn shown(name: &str) -> String {
    escape::line(name.as_bytes()).into_owned()
}

/// The instance's record, made on first use (under its lock, which the caller holds).
fn record_for(instance: &Instance, spec: &str, profile: &Profile, rootfs: &Path) -> Result<Record, Failure> {
    let digest = rootfs.file_name().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default();
    if !instance.exists() {
        return Ok(instance.create(&absolute_spec(spec), &profile.name, &digest, rootfs, profile.limits.disk)?);
    }
    let mut record = instance.record()?;
    if record.display_name() != instance.display && record.name != instance.display {
        return Err(instance::InstanceError::Clash(shown(record.display_name()), shown(&instance.display), record.name).into());
    }
    if record.profile_name != profile.name {
        return Err(instance::InstanceError::OtherProfile(shown(&instance.display), record.profile_name, profile.name.clone()).into());
    }
    if record.digest != digest {
        // The environment was rebuilt (new host packages): the layer stays on top.
        record.digest = digest;
        record.rootfs = rootfs.to_path_buf();
        instance.save(&record)?;
    }
    Ok(record)
}

/// `sandbox run PROFILE --name NAME`: enter the instance, creating it on first use.
/// In the background (`start`), PID 1 waits with no command until stopped.
pub fn run_named(
    spec: &str,
    name: &str,
    command: Vec<String>,
    background: bool,
    overrides: &super::overrides::Overrides,
) -> Result<ExitCode, Failure> {
    let state = usable_state()?;
    let instance = Instance::named(&state, name)?;
    let lock = instance.lock()?;
    run_locked(spec, &state, instance, lock, command, background, overrides)
}

/// `run --keep`: the run becomes a new instance, named after the profile with
/// the first free number (`shell-1`, `shell-2`, ...). A name is taken under
/// its instance's lock, so two `--keep` runs at the same instant never share one.
pub fn run_kept(spec: &str, command: Vec<String>, background: bool, overrides: &super::overrides::Overrides) -> Result<ExitCode, Failure> {
    let state = usable_state()?;
    let base: String = Path::new(spec)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect();
    for n in 1..10_000 {
        let name = format!("{base}-{n}");
        let instance = Instance::named(&state, &name)?;
        if instance.exists() {
            continue;
        }
        let lock = instance.lock()?;
        // Made by another run between the look and the lock.
        if instance.exists() {
            continue;
        }
        writeln!(
            stream(Stream::Stderr),
            "note: --keep: this run's changes stay in the instance `{name}` (sandbox diff {name}; sandbox rm {name})"
        )?;
        return run_locked(spec, &state, instance, lock, command, background, overrides);
    }
    Err(Failure { message: format!("no free name for --keep among {base}-1 to {base}-9999\n  fix: give one with --name NAME") })
}

fn run_locked(
    spec: &str,
    state: &Path,
    instance: Instance,
    lock: std::fs::File,
    command: Vec<String>,
    background: bool,
    overrides: &super::overrides::Overrides,
) -> Result<ExitCode, Failure> {
    let name = instance.display.as_str();
    if instance.running().is_some() {
        return Err(instance::InstanceError::Running(shown(name)).into());
    }
    let profile = super::overrides::load(spec, overrides)?;
    let rootfs = super::run::rootfs_for(&profile)?;
    let mut record = record_for(&instance, spec, &profile, &rootfs)?;
    if let Some(note) = instance.claim_leases(&mut record)? {
        writeln!(stream(Stream::Stderr), "note: {note}")?;
    }
    let command = if background { Vec::new() } else { super::run::command_for(&profile, command) };
    let request = Request {
        profile: &profile,
        mode: Mode::Namespace,
        rootfs,
        command,
        name: instance.cgroup_name(),
        dry_run: false,
        layer: Some(instance.layer()),
        id_base: Some(record.id_base),
        throwaway: false,
    };
    let session = session::prepare(&request, state)?;
    super::run::warn(&session.warnings)?;
    let cgroup_dirs = session.cgroup.as_ref().map(|c| c.dirs()).unwrap_or_default();
    // The instance is marked running once its command step is reached (its
    // root is built), and the lock is held until then: two `start`s of one
    // name never give two instances, and `start` never reports one that failed.
    let mut lock = Some(lock);
    let supervisor = std::process::id() as i32;
    // PID 1 says the sandbox started once its command step is reached; a
    // fast launch reports no step events, so this is the moment to record it.
    let mut on_init = |init: i32, disk_fd: Option<i32>| {
        let running = Running {
            supervisor,
            supervisor_start: instance::start_time(supervisor).unwrap_or(0),
            init,
            init_start: instance::start_time(init).unwrap_or(0),
            started: instance::now(),
            cgroup: instance.cgroup_name(),
            cgroup_dirs: cgroup_dirs.clone(),
            disk_fd,
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
    let mut on_event = |_: &crate::isolate::Event| {};
    let result = super::run::launch_session(&session, &mut on_event, None, Some(&mut on_init), !background, false);
    instance.clear_running();
    let status = result?.status;
    Ok(ExitCode::from(status.clamp(0, 255) as u8))
}

/// `sandbox start PROFILE --name A --name B ...`: instances in the background, in parallel.
pub fn start(spec: &str, names: Vec<String>, names_from: Option<&Path>) -> Result<ExitCode, Failure> {
    let mut names = names;
    if let Some(file) = names_from {
        names.extend(crate::names::read_file(file)?.into_iter().map(|listed| listed.name));
    }
    if names.is_empty() {
        return Err(Failure { message: "no instance names\n  fix: give --name NAME (repeatable) or --names-from FILE".into() });
    }
    let state = usable_state()?;
    let mut instances = Vec::new();
    for name in &names {
        let instance = Instance::named(&state, name)?;
        if instances.iter().any(|i: &Instance| i.name == instance.name) {
            return Err(Failure { message: format!("`{}` is named twice (as the instance {})", shown(name), instance.name) });
        }
        instances.push(instance);
    }
    // Build once, before thirty supervisors ask for the same rootfs, and make
    // every instance here, so a full disk is told once, with its path.
    let profile = super::build::load(spec)?;
    let rootfs = super::run::rootfs_for(&profile)?;
    for instance in &instances {
        let _lock = instance.lock()?;
        record_for(instance, spec, &profile, &rootfs)?;
    }
    if let Some(note) = disk_overcommit(&state) {
        super::run::warn(&[note])?;
    }
    let spec = absolute_spec(spec);
    // Under systemd, with limits to apply: into a delegated scope first, so
    // that the supervisors are born in it (their scope outlives this process).
    let limits = &profile.limits;
    let wants_limits = (limits.memory.is_some() || limits.pids.is_some() || limits.cpu.is_some()) && !cgroup::options::current().no_limits;
    if let Some(note) = cgroup::systemd::enter_scope(wants_limits).note() {
        super::run::warn(&[note])?;
    }
    // On cgroup v2, alone in its cgroup: into the `supervisor` leaf first, so
    // the supervisors are born there and their cgroups can get controllers.
    let _leaf = cgroup::detect().ok().and_then(|layout| {
        let how = cgroup::Placing { parent: cgroup::options::current().parent, self_pid: std::process::id() as i32, tracking_only: false };
        cgroup::enter_supervisor_leaf(&layout, &how)
    });
    let logs = state.join("run/logs");
    std::fs::create_dir_all(&logs).map_err(crate::state::at(&logs))?;
    let mut children = Vec::new();
    for instance in &instances {
        let log_path = logs.join(format!("{}.log", instance.name));
        let log = std::fs::File::create(&log_path).map_err(crate::state::at(&log_path))?;
        let mut command = std::process::Command::new(std::env::current_exe()?);
        command
            .args(["run", &spec, "--name", &instance.display])
            .args(cgroup::options::current().to_args())
            .env(super::BACKGROUND_ENV, "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // A session of its own: the instance outlives the terminal that started it.
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid and close_range are async-signal-safe system calls.
        unsafe {
            command.pre_exec(|| {
                // The instance outlives this command: it must not keep the
                // caller's descriptors (a `flock` held around `start` stayed
                // locked as long as the instance ran). CLOEXEC, not close: the
                // standard library's own exec-error pipe stays usable.
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
                nix::unistd::setsid().map(drop).map_err(std::io::Error::from)
            });
        }
        children.push((instance, log_path, command.spawn()?));
    }
    let mut out = stream(Stream::Stdout);
    let mut failed = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    for (instance, log_path, mut child) in children {
        let name = shown(&instance.display);
        loop {
            // Running under our own supervisor: another `start` of the same
            // name may have won the race, and then ours fails below.
            if let Some(running) = instance.running().filter(|r| r.supervisor == child.id() as i32) {
                writeln!(out, "started {name} (PID {})", running.init)?;
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read(&log_path).unwrap_or_default();
                let log = escape::text(&log);
                let why = if log.trim().is_empty() {
                    format!("it wrote nothing to its log {} (is the disk full?)", log_path.display())
                } else {
                    log.trim().to_string()
                };
                writeln!(stream(Stream::Stderr), "error: {name} did not start ({status}): {why}")?;
                failed += 1;
                break;
            }
            if Instant::now() > deadline {
                writeln!(stream(Stream::Stderr), "error: {name} did not start within 2 minutes (its log: {})", log_path.display())?;
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
    let running = instance.running().ok_or_else(|| {
        let (name, profile) = (shown(name), shown(&record.profile));
        Failure {
            message: format!(
                "instance `{name}` is not running\n  fix: `sandbox start {profile} --name {name}`, or `sandbox run {profile} --name {name}`"
            ),
        }
    })?;
    let profile = super::build::load(&record.profile)?;
    let manager = manager(&running);
    if manager.is_none() && !limits(&profile).is_empty() && !cgroup::options::current().no_limits {
        let name = shown(name);
        return Err(Failure {
            message: format!(
                "instance `{name}` has no cgroup of its own (started with --no-limits?), so the profile's [limits] would not hold for this command\n  fix: restart it (`sandbox stop {name}` and `sandbox start {} --name {name}`), or run without limits on purpose with --no-limits",
                shown(&record.profile)
            ),
        });
    }
    // What ran in the instance, in a record only root can read or change.
    crate::lab::evidence::note_exec(&instance.dir, &command)?;
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
    /// The display name (exact).
    name: String,
    /// The safe id it maps to.
    id: String,
    profile: String,
    digest: String,
    state: &'static str,
    pid: Option<i32>,
    uptime_seconds: Option<u64>,
    memory_bytes: Option<u64>,
    pids: Option<u64>,
    processes: Option<usize>,
    /// `[limits] disk`: the bytes its image takes on the host, and its cap
    /// (read from the image file, so known whether it runs or not).
    disk_bytes: Option<u64>,
    disk_limit_bytes: Option<u64>,
}

pub fn ps(json: bool) -> Result<ExitCode, Failure> {
    let state = state();
    let mut rows = Vec::new();
    for instance in instance::all(&state) {
        let Ok(record) = instance.record() else { continue };
        let running = instance.running();
        let stats = running.as_ref().and_then(|running| manager(running).map(|m| (m.stats(), m.procs_files())));
        let disk = instance.disk_usage();
        let processes =
            stats.as_ref().and_then(|(_, procs)| procs.first()).and_then(|f| std::fs::read_to_string(f).ok()).map(|t| t.lines().count());
        rows.push(Row {
            name: record.display_name().to_string(),
            id: record.name.clone(),
            profile: record.profile_name.clone(),
            digest: crate::rootfs::digest::short(&record.digest).to_string(),
            state: if running.is_some() { "running" } else { "stopped" },
            pid: running.as_ref().map(|r| r.init),
            uptime_seconds: running.as_ref().map(|r| instance::now().saturating_sub(r.started)),
            memory_bytes: stats.as_ref().and_then(|(s, _)| s.memory_bytes),
            pids: stats.as_ref().and_then(|(s, _)| s.pids),
            processes,
            disk_bytes: disk.map(|d| d.used),
            disk_limit_bytes: disk.map(|d| d.cap),
        });
    }
    let mut out = stream(Stream::Stdout);
    if json {
        writeln!(out, "{}", serde_json::to_string(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    // The id column only when some name is not its own id.
    let ids = rows.iter().any(|r| r.name != r.id);
    let names: Vec<String> = rows.iter().map(|r| shown(&r.name)).collect();
    let width = names.iter().map(|n| unicode_width::UnicodeWidthStr::width(n.as_str())).max().unwrap_or(0).clamp(4, 32);
    let id_width = rows.iter().map(|r| r.id.len()).max().unwrap_or(0).max(2);
    let id_header = if ids { format!(" {:<id_width$}", "ID") } else { String::new() };
    writeln!(
        out,
        "{}{id_header} {:<10} {:<13} {:<8} {:>7} {:>8} {:>10} {:>5} {:>21}",
        pad("NAME", width),
        "PROFILE",
        "DIGEST",
        "STATE",
        "PID",
        "UPTIME",
        "MEMORY",
        "PIDS",
        "DISK"
    )?;
    let dash = || "-".to_string();
    for (r, name) in rows.iter().zip(&names) {
        let id = if ids { format!(" {:<id_width$}", r.id) } else { String::new() };
        writeln!(
            out,
            "{}{id} {:<10} {:<13} {:<8} {:>7} {:>8} {:>10} {:>5} {:>21}",
            pad(name, width),
            r.profile,
            r.digest,
            r.state,
            r.pid.map(|p| p.to_string()).unwrap_or_else(dash),
            r.uptime_seconds.map(|s| format!("{s}s")).unwrap_or_else(dash),
            r.memory_bytes.map(super::output::human_bytes).unwrap_or_else(dash),
            r.pids.map(|p| p.to_string()).unwrap_or_else(dash),
            match (r.disk_bytes, r.disk_limit_bytes) {
                (Some(used), Some(cap)) => format!("{}/{}", super::output::human_bytes(used), super::output::human_bytes(cap)),
                _ => dash(),
            },
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// End an instance: SIGTERM to its PID 1, SIGKILL after a grace period, then
/// its cgroup (the supervisor normally removes it; after a crash, we do).
/// Only this state directory's instance: its cgroup name carries the
/// directory's key.
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

/// The instances named, each existing (checked before any is touched).
fn existing(names: &[String]) -> Result<Vec<Instance>, Failure> {
    let state = state();
    let mut found = Vec::new();
    for name in names {
        let instance = Instance::named(&state, name)?;
        if !instance.exists() {
            return Err(instance::InstanceError::Missing(shown(name)).into());
        }
        found.push(instance);
    }
    Ok(found)
}

pub fn stop(names: &[String]) -> Result<ExitCode, Failure> {
    let mut out = stream(Stream::Stdout);
    for instance in existing(names)? {
        let _lock = instance.lock()?;
        let stopped = stop_one(&instance)?;
        writeln!(out, "{} {}", if stopped { "stopped" } else { "not running:" }, shown(&instance.display))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn reset(names: &[String]) -> Result<ExitCode, Failure> {
    for instance in existing(names)? {
        let lock = instance.lock()?;
        if instance.running().is_some() {
            return Err(instance::InstanceError::Running(shown(&instance.display)).into());
        }
        instance.reset().map_err(crate::state::at(&instance.dir))?;
        drop(lock);
        writeln!(stream(Stream::Stdout), "reset {}", shown(&instance.display))?;
        // A lab's instance gets the lab's files back.
        if let Some(note) = super::lab::after_reset(&instance.display)? {
            writeln!(stream(Stream::Stdout), "{}", shown(&note))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A note when the disk caps of this state directory's instances could take
/// more than its filesystem has free: students would meet "No space left on
/// device" before their own cap, all at once.
fn disk_overcommit(state: &Path) -> Option<String> {
    let images: Vec<_> = instance::all(state).iter().filter_map(Instance::disk_image).collect();
    let over = crate::disk::overcommit(&images, &instance::root(state))?;
    Some(format!(
        "the disk caps of the {} instances in {} may still take {}, but its filesystem has {} free: students could meet \"No space left on device\" before their cap\n  fix: free space there, or lower [limits] disk",
        over.images,
        shown(&state.display().to_string()),
        super::output::human_bytes(over.room),
        super::output::human_bytes(over.free)
    ))
}

pub fn rm(names: &[String]) -> Result<ExitCode, Failure> {
    for instance in existing(names)? {
        let lock = instance.lock()?;
        stop_one(&instance)?;
        instance.remove()?;
        drop(lock);
        writeln!(stream(Stream::Stdout), "removed {}", shown(&instance.display))?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct ChangeRow {
    change: &'static str,
    path: escape::Data,
}

/// `sandbox diff NAME`: what the student changed. File names are the
/// student's: escaped for the terminal, exact in `--json`.
pub fn diff(name: &str, json: bool) -> Result<ExitCode, Failure> {
    let state = state();
    let instance = Instance::named(&state, name)?;
    let record = instance.record()?;
    let view = instance.upper_view(true)?;
    let changes = instance::diff(&view.upper, &record.rootfs).map_err(crate::state::at(&instance.layer().upper))?;
    let mut out = stream(Stream::Stdout);
    let rows = changes.iter().map(|change| match change {
        instance::Change::Added(p) => ("added", p),
        instance::Change::Changed(p) => ("changed", p),
        instance::Change::Deleted(p) => ("deleted", p),
    });
    if json {
        let changes: Vec<ChangeRow> = rows.map(|(change, path)| ChangeRow { change, path: escape::Data::of_path(path) }).collect();
        let value = serde_json::json!({"name": record.display_name(), "id": record.name, "changes": changes});
        writeln!(out, "{value}")?;
        return Ok(ExitCode::SUCCESS);
    }
    for (change, path) in rows {
        let letter = &change[..1].to_uppercase();
        writeln!(out, "{letter} {}", escape::path(path))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// For `gc`: instances marked running whose PID 1 is gone (a crash): clean
/// them; and claims of this machine whose owners are gone.
pub fn gc_instances(out: &mut dyn Write) -> std::io::Result<usize> {
    let mut cleaned = 0;
    for instance in instance::all(&state()) {
        let crashed = instance.dir.join("running.json").exists() && instance.running().is_none();
        if crashed {
            let _ = stop_one(&instance);
            writeln!(out, "cleaned crashed instance {}", shown(&instance.display))?;
            cleaned += 1;
        }
    }
    if nix::unistd::geteuid().is_root()
        && let Ok(leases) = crate::lease::Leases::lock()
    {
        for claim in leases.sweep(&instance::holds) {
            writeln!(out, "released {claim} (its instance is gone)")?;
            cleaned += 1;
        }
    }
    Ok(cleaned)
}
