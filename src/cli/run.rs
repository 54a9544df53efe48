//! `sandbox run`: build (or reuse) the rootfs, then enter it.

use std::io::Write;
use std::process::ExitCode;

use termcolor::Color;

use super::output::{Failure, Stream, paint, stream};
use crate::isolate::{self, Event, Options, Outcome, Pause};
use crate::profile::{Mode, Profile};
use crate::rootfs::Store;
use crate::session::{self, Request, Session};

/// Build or reuse the profile's rootfs; its path in the store.
/// From the store's record of the profile when it and its lab files did not
/// change (no resolving): `sandbox build` is what looks at the host again.
pub fn rootfs_for(profile: &Profile) -> Result<std::path::PathBuf, Failure> {
    super::build::environment(profile)
}

/// Build or reuse the rootfs of an already resolved manifest.
pub fn store_manifest(profile: &Profile, manifest: &crate::resolve::Manifest) -> Result<std::path::PathBuf, Failure> {
    let started = std::time::Instant::now();
    let store = Store::open(&crate::state::home())?;
    let hidden = indicatif::ProgressBar::hidden();
    let hashes = store.hash_contents(manifest, &hidden)?;
    Ok(store.build(&profile.name, manifest, &hashes, started, &hidden)?.path)
}

pub fn command_for(profile: &Profile, command: Vec<String>) -> Vec<String> {
    if command.is_empty() { profile.run.command.clone() } else { command }
}

pub fn prepare(profile: &Profile, mode: Mode, command: Vec<String>, dry_run: bool) -> Result<Session, Failure> {
    if mode == Mode::Chroot && !dry_run && !nix::unistd::geteuid().is_root() {
        return Err(Failure {
            message: "chroot mode needs root (chroot(2) needs CAP_SYS_CHROOT)\n  fix: run it with sudo, or use --mode namespace, which works without root".into(),
        });
    }
    let rootfs = if dry_run {
        // A dry run builds nothing: it shows where the rootfs would be.
        crate::state::home().join("store/rootfs/<digest>")
    } else {
        rootfs_for(profile)?
    };
    let request = Request {
        profile,
        mode,
        rootfs,
        command: command_for(profile, command),
        name: crate::cgroup::run_name(&format!(
            "{:x}",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
        )),
        dry_run,
        layer: None,
        id_base: None,
        throwaway: mode == Mode::Namespace,
    };
    Ok(session::prepare(&request, &crate::state::home())?)
}

pub fn run(spec: &str, mode: Option<Mode>, command: Vec<String>, overrides: &super::overrides::Overrides) -> Result<ExitCode, Failure> {
    let profile = super::overrides::load(spec, overrides)?;
    let mode = mode.unwrap_or(profile.run.mode);
    let session = prepare(&profile, mode, command, false)?;
    warn(&session.warnings)?;
    let outcome = execute(&session)?;
    Ok(ExitCode::from(outcome.clamp(0, 255) as u8))
}

pub fn warn(warnings: &[String]) -> std::io::Result<()> {
    let mut err = stream(Stream::Stderr);
    for warning in warnings {
        paint(&mut err, Color::Yellow, true, "warning")?;
        writeln!(err, ": {warning}")?;
    }
    Ok(())
}

/// Launch the session's plan and clean up its cgroup; the exit status to
/// return. A failed step becomes one clear message.
pub fn execute(session: &Session) -> Result<i32, Failure> {
    Ok(launch_session(session, &mut |_| {}, None, None, true, false)?.status)
}

/// `execute`, narrated (explain), pausing before each step when `pause` is given (explain --step).
pub fn execute_with<'a>(
    session: &'a Session,
    observer: &'a mut dyn FnMut(&Event),
    pause: Option<&'a mut dyn FnMut(usize, Option<i32>) -> Pause>,
) -> Result<Outcome, Failure> {
    launch_session(session, observer, pause, None, true, true)
}

/// Launch a session's plan; `on_init` hears the sandbox's PID 1 once it is
/// ready. `tty`: give the sandbox a pty of its own where a standard descriptor
/// is a terminal. `narrate`: one step at a time, each reported (explain).
pub fn launch_session<'a>(
    session: &'a Session,
    observer: &'a mut dyn FnMut(&Event),
    pause: Option<&'a mut dyn FnMut(usize, Option<i32>) -> Pause>,
    on_init: Option<&'a mut dyn FnMut(i32, Option<i32>)>,
    tty: bool,
    narrate: bool,
) -> Result<Outcome, Failure> {
    if let Some(cgroup) = &session.cgroup {
        // Leftovers of sandboxes whose supervisor was killed.
        let _ = crate::cgroup::remove_leftovers_near(cgroup.as_ref());
    }
    let options = Options { tty, cgroup: session.cgroup.as_deref(), before_step: pause, on_init, narrate };
    let outcome =
        isolate::launch(&session.plan, options, observer).map_err(|e| Failure { message: format!("{e}\n  fix: run `sandbox doctor`") })?;
    report(&outcome)?;
    Ok(outcome)
}

/// A failed step becomes one clear message; a command that could not start
/// or an OOM kill is said on stderr.
pub fn report(outcome: &Outcome) -> Result<(), Failure> {
    if let Some(event) = &outcome.failed {
        return Err(Failure {
            message: format!(
                "step `{}` failed: {}\n  fix: {}",
                event.id,
                event.error.as_deref().unwrap_or("unknown error"),
                isolate::hints::fix(&event.id, event.errno)
            ),
        });
    }
    if let Some(error) = &outcome.exec_error {
        let mut err = stream(Stream::Stderr);
        paint(&mut err, Color::Red, true, "error")?;
        // The error names the student's program: terminal-safe.
        writeln!(err, ": {}", crate::escape::text(error.as_bytes()))?;
    }
    // From memory.events and pids.events, read before the cgroup went.
    for note in &outcome.limit_notes {
        let mut err = stream(Stream::Stderr);
        paint(&mut err, Color::Yellow, true, "note")?;
        writeln!(err, ": {note}")?;
    }
    Ok(())
}
