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

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure { message: e.to_string() }
    }
}

impl Failure {
    pub fn report(self) -> ExitCode {
        let mut err = stream(Stream::Stderr);
        let _ = err.set_color(ColorSpec::new().set_fg(Some(Color::Red)).set_bold(true));
        let _ = write!(err, "error");
        let _ = err.reset();
        let _ = writeln!(err, ": {}", self.message);
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
