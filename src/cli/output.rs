//! How the commands talk to people: errors on stderr with one clear message,
//! colors as `--color` says: by default only on a terminal, never with
//! NO_COLOR, always with CLICOLOR_FORCE.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};

use termcolor::{Color, ColorSpec, StandardStream, WriteColor};

/// `--color WHEN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

static COLOR: AtomicU8 = AtomicU8::new(ColorChoice::Auto as u8);

/// Set once by `main` from `--color`.
pub fn set_color(choice: ColorChoice) {
    COLOR.store(choice as u8, Ordering::Relaxed);
}

/// Whether to color a stream: the flag first, then NO_COLOR (no-color.org),
/// then CLICOLOR_FORCE (bixense.com/clicolors), then whether it is a terminal.
pub fn colors_on(flag: ColorChoice, tty: bool, env: &dyn Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| env(name).is_some_and(|v| !v.is_empty());
    match flag {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if set("NO_COLOR") => false,
        ColorChoice::Auto if set("CLICOLOR_FORCE") && env("CLICOLOR_FORCE").as_deref() != Some("0") => true,
        ColorChoice::Auto => tty,
    }
}

/// The tool's own failure: exit status 125, as `docker run` and `podman` use.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
}

/// The message of a write to a closed pipe (`sandbox ps | head -1`): not a
/// failure to report, the reader has all it wanted.
const BROKEN_PIPE: &str = "\0broken pipe";

impl<E: std::fmt::Display + 'static> From<E> for Failure {
    fn from(e: E) -> Failure {
        let any: &dyn std::any::Any = &e;
        if any.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
            return Failure { message: BROKEN_PIPE.into() };
        }
        Failure { message: e.to_string() }
    }
}

impl Failure {
    /// Print the message (escaped: it may quote a student's file name or a
    /// program's output) and give exit status 125. A closed pipe ends quietly
    /// with 0, as ripgrep does.
    pub fn report(self) -> ExitCode {
        if self.message == BROKEN_PIPE {
            return ExitCode::SUCCESS;
        }
        let mut err = stream(Stream::Stderr);
        let _ = err.set_color(ColorSpec::new().set_fg(Some(Color::Red)).set_bold(true));
        let _ = write!(err, "error");
        let _ = err.reset();
        let _ = writeln!(err, ": {}", crate::escape::text(self.message.as_bytes()));
        ExitCode::from(125)
    }

    /// For `--json`: the same message as one JSON object on stdout (for the
    /// script that reads stdout), and for the person on stderr.
    pub fn report_json(self) -> ExitCode {
        println!("{}", serde_json::json!({ "error": self.message, "status": 125 }));
        self.report()
    }
}

pub enum Stream {
    Stdout,
    Stderr,
}

pub fn stream(which: Stream) -> StandardStream {
    let tty = match which {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    };
    let flag = match COLOR.load(Ordering::Relaxed) {
        x if x == ColorChoice::Always as u8 => ColorChoice::Always,
        x if x == ColorChoice::Never as u8 => ColorChoice::Never,
        _ => ColorChoice::Auto,
    };
    // termcolor's own Auto would look at NO_COLOR and TERM again: decide here, once.
    let choice =
        if colors_on(flag, tty, &|name| std::env::var(name).ok()) { termcolor::ColorChoice::Always } else { termcolor::ColorChoice::Never };
    match which {
        Stream::Stdout => StandardStream::stdout(choice),
        Stream::Stderr => StandardStream::stderr(choice),
    }
}

/// Write `text` in a color (when colors are on).
pub fn paint(out: &mut dyn WriteColor, color: Color, bold: bool, text: &str) -> std::io::Result<()> {
    out.set_color(ColorSpec::new().set_fg(Some(color)).set_bold(bold))?;
    write!(out, "{text}")?;
    out.reset()
}

pub fn human_bytes(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", units[unit]) }
}

/// `text` padded with spaces to `width` terminal columns (a Hangul syllable
/// takes two), never cut.
pub fn pad(text: &str, width: usize) -> String {
    let used = unicode_width::UnicodeWidthStr::width(text);
    format!("{text}{}", " ".repeat(width.saturating_sub(used)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_is_no_failure() {
        let closed = Failure::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert_eq!(closed.report(), ExitCode::SUCCESS);
        let other = Failure::from(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert_ne!(other.message, BROKEN_PIPE);
    }

    #[test]
    fn padding_counts_columns() {
        assert_eq!(pad("내이름", 8), "내이름  ");
        assert_eq!(pad("alice", 8), "alice   ");
        assert_eq!(pad("toolongname", 4), "toolongname");
    }
}
