//! `sandbox explain`: the same plan `run` carries out, one step at a time,
//! with what each step changed in this very run.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use super::output::{Failure, Stream, stream};
use crate::explain::{Catalog, Lang, Narrator, render, story};
use crate::isolate::{self, Event, Pause};
use crate::profile::Mode;

pub struct Args {
    pub profile: String,
    pub mode: Option<Mode>,
    pub step: bool,
    pub dry_run: bool,
    pub lang: Option<String>,
    pub json: bool,
    pub build: bool,
    pub command: Vec<String>,
}

/// What runs inside when nobody is at a terminal: a look around that shows
/// the sandbox's own PIDs, name, user and root.
fn demonstration() -> Vec<String> {
    let script = "echo '$ ps -e -o pid,ppid,user,comm'; ps -e -o pid,ppid,user,comm; \
                  echo '$ uname -n'; uname -n; echo '$ id'; id; echo '$ ls /'; ls /";
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

pub fn explain(args: Args) -> Result<ExitCode, Failure> {
    let profile = super::build::load(&args.profile)?;
    let catalog = Catalog::load(Lang::choose(args.lang.as_deref()));
    let mut out = stream(Stream::Stdout);
    let width = render::terminal_width();

    if args.build {
        let (manifest, _) = crate::resolve::resolve_profile(&profile)?;
        // Resolved once: the same manifest is told and stored.
        let rootfs = super::run::store_manifest(&profile, &manifest)?;
        let digest = rootfs.file_name().map(|d| d.to_string_lossy().into_owned());
        let mut narrator = Narrator { out: &mut out, catalog: &catalog, width, total: 0 };
        story::tell(&mut narrator, &manifest, digest.as_deref())?;
        return Ok(ExitCode::SUCCESS);
    }

    let mode = args.mode.unwrap_or(profile.run.mode);
    let interactive = std::io::stdin().is_terminal();
    let demo = args.command.is_empty() && !interactive;
    let command = if demo { demonstration() } else { args.command.clone() };
    let session = super::run::prepare(&profile, mode, command, args.dry_run)?;
    let plan = &session.plan;
    let total = plan.steps.len();

    if args.dry_run {
        if args.json {
            for (index, step) in plan.steps.iter().enumerate() {
                let line = serde_json::json!({"phase": "plan", "index": index, "id": step.id, "actor": step.actor, "title": catalog.title(step.id), "command": step.shell, "syscall": step.syscall, "action": step.action});
                writeln!(out, "{line}")?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        let mut narrator = Narrator { out: &mut out, catalog: &catalog, width, total };
        for (index, step) in plan.steps.iter().enumerate() {
            narrator.header(index, step)?;
            narrator.not_run()?;
        }
        summary(&mut narrator, &profile, mode, plan, &plan.command())?;
        return Ok(ExitCode::SUCCESS);
    }

    super::run::warn(&session.warnings)?;
    if demo && !args.json {
        let mut narrator = Narrator { out: &mut out, catalog: &catalog, width, total };
        narrator.paragraph(catalog.text("demo"))?;
    }
    // A step's header comes before it (with --step) or with its event.
    let announced = std::cell::RefCell::new(vec![false; total]);
    let failed = std::cell::Cell::new(false);
    let mut observer = |event: &Event| {
        let Some(step) = plan.steps.get(event.index) else { return };
        let mut out = stream(Stream::Stdout);
        if args.json {
            let line = serde_json::json!({"phase": "step", "index": event.index, "id": event.id, "actor": event.actor, "title": catalog.title(step.id), "command": step.shell, "syscall": step.syscall, "ok": event.ok, "error": event.error, "errno": event.errno, "observed": event.observed});
            let _ = writeln!(out, "{line}");
            return;
        }
        let mut narrator = Narrator { out: &mut out, catalog: &catalog, width, total };
        if !std::mem::replace(&mut announced.borrow_mut()[event.index], true) {
            let _ = narrator.header(event.index, step);
        }
        if event.ok {
            let _ = narrator.observed(event);
        } else {
            failed.set(true);
            let _ = narrator.failure(event, &isolate::hints::fix(&event.id, event.errno));
        }
    };
    // Why step mode was left: q, or Ctrl-C (130 as an interrupted command).
    let left_with = std::cell::Cell::new(None::<Key>);
    let mut pause = |index: usize, init: Option<i32>| {
        let Some(step) = plan.steps.get(index) else { return Pause::Go };
        let mut out = stream(Stream::Stdout);
        let mut narrator = Narrator { out: &mut out, catalog: &catalog, width, total };
        announced.borrow_mut()[index] = true;
        let _ = narrator.header(index, step);
        if let Some(pid) = init {
            let _ = narrator.line("", &format!("{}: sudo nsenter -t {pid} -a", catalog.text("look_from_outside")));
        }
        // Keys first, then the prompt: a key pressed as soon as the prompt
        // shows is read raw (a Ctrl-C is a key here, not a SIGINT).
        let keys = KeyMode::enter();
        let _ = narrator.prompt(index, step);
        let key = keys.read();
        let _ = writeln!(out);
        match key {
            Key::Next => Pause::Go,
            quit => {
                left_with.set(Some(quit));
                Pause::Quit
            }
        }
    };
    let pause: Option<&mut dyn FnMut(usize, Option<i32>) -> Pause> = if args.step { Some(&mut pause) } else { None };
    let outcome = super::run::execute_with(&session, &mut observer, pause)?;
    if outcome.quit {
        let mut err = stream(Stream::Stderr);
        writeln!(err, "{}", catalog.text("left_step_mode"))?;
        return Ok(ExitCode::from(if left_with.get() == Some(Key::Interrupt) { 130 } else { 0 }));
    }
    let status = outcome.status;
    let failed = failed.get();
    if args.json {
        writeln!(out, "{}", serde_json::json!({"phase": "exit", "status": status}))?;
    } else if !failed {
        let mut narrator = Narrator { out: &mut out, catalog: &catalog, width, total };
        summary(&mut narrator, &profile, mode, plan, &plan.command())?;
    }
    Ok(ExitCode::from(status.clamp(0, 255) as u8))
}

/// An answer at a step-mode pause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    /// Enter (or the end of a piped input): the next step.
    Next,
    /// q: leave step mode.
    Quit,
    /// Ctrl-C: leave step mode as an interrupted command does.
    Interrupt,
}

/// The answer at a pause. On a terminal one key is enough, read without
/// echo and without the terminal turning Ctrl-C into a signal (so it leaves
/// step mode cleanly instead of killing the tool); from a pipe, one line.
/// The terminal in key-at-a-time mode (no line editing, no echo, Ctrl-C as
/// a byte) while a step waits; restored when dropped. Without a terminal,
/// lines are read.
struct KeyMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl KeyMode {
    fn enter() -> KeyMode {
        use nix::sys::termios::{self, LocalFlags, SetArg};
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin).ok();
        if let Some(saved) = &saved {
            let mut keys = saved.clone();
            keys.local_flags.remove(LocalFlags::ICANON | LocalFlags::ISIG | LocalFlags::ECHO);
            let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &keys);
        }
        KeyMode { saved }
    }

    fn read(&self) -> Key {
        let stdin = std::io::stdin();
        if self.saved.is_none() {
            let mut line = String::new();
            let _ = stdin.lock().read_line(&mut line);
            return if line.trim() == "q" { Key::Quit } else { Key::Next };
        }
        loop {
            let mut byte = [0u8; 1];
            match nix::unistd::read(&stdin, &mut byte) {
                Ok(0) => return Key::Next,
                Ok(_) => match byte[0] {
                    b'\n' | b'\r' | b' ' => return Key::Next,
                    b'q' | b'Q' => return Key::Quit,
                    0x03 | 0x04 => return Key::Interrupt,
                    _ => continue,
                },
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return Key::Quit,
            }
        }
    }
}

impl Drop for KeyMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, saved);
        }
    }
}

fn summary(
    narrator: &mut Narrator,
    profile: &crate::profile::Profile,
    mode: Mode,
    plan: &crate::plan::Plan,
    command: &[String],
) -> std::io::Result<()> {
    let catalog = narrator.catalog;
    narrator.section(catalog.text("summary_title"))?;
    let key = if mode == Mode::Chroot { "summary_chroot" } else { "summary_namespace" };
    narrator.paragraph(catalog.text(key))?;
    narrator.section(catalog.text("equivalents"))?;
    narrator.equivalents(profile, mode, plan, command)?;
    narrator.section(catalog.text("not_protected"))?;
    let key = if mode == Mode::Chroot { "not_protected_chroot" } else { "not_protected_namespace" };
    narrator.paragraph(catalog.text(key))
}
