//! How the commands talk to people: errors on stderr with one clear message,
//! colors only on a terminal and never with NO_COLOR.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use termcolor::{Color, ColorChoice, ColorSpec, StandardStream, WriteColor};

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
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let choice = if tty && !no_color { ColorChoice::Auto } else { ColorChoice::Never };
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
