//! How steps look on a terminal: number and title, the concept wrapped to the
//! terminal's width, the shell equivalent, the system call, then what this run
//! observed. Colors only on a terminal; a plain layout otherwise.

use std::io;

use termcolor::{Color, ColorSpec, WriteColor};

use super::catalog::Catalog;
use crate::isolate::Event;
use crate::plan::Step;

pub struct Narrator<'a> {
    pub out: &'a mut dyn WriteColor,
    pub catalog: &'a Catalog,
    pub width: usize,
    pub total: usize,
}

/// The terminal's width, or 80 when stdout is not a terminal.
pub fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ fills a winsize struct we own.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut size) } == 0 && size.ws_col > 20;
    if ok { (size.ws_col as usize).min(110) } else { 80 }
}

/// Word-wrap `text` to `width` columns (counting characters), each line indented.
pub fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.chars().count() + line.chars().count() + 1 + word.chars().count() > width {
            lines.push(format!("{indent}{line}"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(format!("{indent}{line}"));
    }
    lines.join("\n")
}

/// Observations shown as "before -> after".
const PAIRS: &[(&str, &str)] = &[
    ("before", "after"),
    ("mounts_before", "mounts_after"),
    ("capabilities_before", "capabilities_after"),
    ("hostname_before", "hostname_after"),
];

/// A label padded to the observations' column, with a space at least.
fn column(label: &str) -> String {
    format!("{label:<23} ")
}

/// Width of the labels column ("shell", "system call", "seen in this run").
const LABEL: usize = 18;

impl Narrator<'_> {
    fn paint(&mut self, color: Color, bold: bool, text: &str) -> io::Result<()> {
        self.out.set_color(ColorSpec::new().set_fg(Some(color)).set_bold(bold))?;
        write!(self.out, "{text}")?;
        self.out.reset()
    }

    pub fn header(&mut self, index: usize, step: &Step) -> io::Result<()> {
        let title = format!("{} {}/{} · {}", self.catalog.text("step"), index + 1, self.total, self.catalog.title(step.id));
        let rule = "─".repeat(self.width.saturating_sub(title.chars().count() + 4).min(60));
        writeln!(self.out)?;
        self.paint(Color::Cyan, true, &format!("── {title} "))?;
        self.paint(Color::Cyan, false, &rule)?;
        writeln!(self.out)?;
        writeln!(self.out, "{}", wrap(self.catalog.concept(step.id), self.width, "  "))?;
        writeln!(self.out)?;
        self.field("shell", &step.shell)?;
        self.field("syscall", &step.syscall)
    }

    fn field(&mut self, key: &str, value: &str) -> io::Result<()> {
        let label = format!("  {:<LABEL$}", self.catalog.text(key));
        self.paint(Color::Blue, true, &label)?;
        writeln!(self.out, "{value}")
    }

    /// What the run showed after the step.
    pub fn observed(&mut self, event: &Event) -> io::Result<()> {
        if !event.ok {
            return Ok(());
        }
        let seen = format!("  {:<LABEL$}", self.catalog.text("seen"));
        self.paint(Color::Green, true, &seen)?;
        if event.observed.is_empty() {
            writeln!(self.out, "ok")?;
            return Ok(());
        }
        writeln!(self.out)?;
        // Before/after pairs on one line, so the change is visible at a glance.
        let mut shown = std::collections::BTreeSet::new();
        for (before, after) in PAIRS {
            if event.observed.contains_key(*before) {
                shown.insert(*after);
            }
        }
        for (key, value) in &event.observed {
            if shown.contains(key.as_str()) {
                continue;
            }
            let pair = PAIRS.iter().find(|(before, _)| before == key).map(|(_, after)| *after);
            match pair.and_then(|after| event.observed.get(after)) {
                Some(after) => {
                    let label = column(self.catalog.label(key));
                    write!(self.out, "    {label}{value}")?;
                    self.paint(Color::Yellow, true, "  ->  ")?;
                    writeln!(self.out, "{after}")?;
                }
                None => {
                    let label = column(self.catalog.label(key));
                    let value = value.trim_end().replace('\t', "  ").replace('\n', &format!("\n    {:<24}", ""));
                    writeln!(self.out, "    {label}{value}")?;
                }
            }
        }
        Ok(())
    }

    pub fn not_run(&mut self) -> io::Result<()> {
        let seen = format!("  {:<LABEL$}", self.catalog.text("seen"));
        self.paint(Color::Yellow, true, &seen)?;
        writeln!(self.out, "{}", self.catalog.text("dry_run"))
    }

    /// A failed step: what failed (the call and errno), what the step means, the fix.
    pub fn failure(&mut self, event: &Event, fix: &str) -> io::Result<()> {
        let failed = format!("  {:<LABEL$}", self.catalog.text("failed"));
        self.paint(Color::Red, true, &failed)?;
        writeln!(self.out, "{}", event.error.as_deref().unwrap_or("?"))?;
        let means = format!("  {:<LABEL$}", self.catalog.text("why_failed"));
        self.paint(Color::Red, true, &means)?;
        writeln!(self.out, "{}", wrap(self.catalog.concept(&event.id), self.width, &" ".repeat(LABEL + 2)).trim_start())?;
        let fix_label = format!("  {:<LABEL$}", self.catalog.text("fix"));
        self.paint(Color::Red, true, &fix_label)?;
        writeln!(self.out, "{}", wrap(fix, self.width, &" ".repeat(LABEL + 2)).trim_start())
    }

    pub fn section(&mut self, title: &str) -> io::Result<()> {
        writeln!(self.out)?;
        self.paint(Color::Magenta, true, &format!("══ {title} "))?;
        self.paint(Color::Magenta, false, &"═".repeat(self.width.saturating_sub(title.chars().count() + 4).min(60)))?;
        writeln!(self.out)
    }

    pub fn paragraph(&mut self, text: &str) -> io::Result<()> {
        writeln!(self.out, "{}", wrap(text, self.width, "  "))
    }

    pub fn line(&mut self, label: &str, text: &str) -> io::Result<()> {
        self.paint(Color::Blue, true, &format!("  {label:<10}"))?;
        writeln!(self.out, "{text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_respects_width_and_korean_counts_characters() {
        let text = "네임스페이스는 프로세스가 보는 시스템의 일부를 따로 떼어 줍니다 ".repeat(5);
        for line in wrap(&text, 30, "  ").lines() {
            assert!(line.chars().count() <= 30, "{line}");
        }
        assert_eq!(wrap("a b", 80, "> "), "> a b");
    }
}
