//! How steps look on a terminal: number and title, the concept wrapped to the
//! terminal's width, the shell equivalent, the system call, then what this run
//! observed. Colors only on a terminal; a plain layout otherwise.
//!
//! Widths are display widths (a Hangul syllable or a CJK character takes two
//! columns, a combining mark none), so Korean text wraps at the same column
//! as English and the value column lines up in both.

use std::io;

use termcolor::{Color, ColorSpec, WriteColor};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::catalog::Catalog;
use crate::isolate::Event;
use crate::plan::{Plan, Step};
use crate::profile::{Mode, Profile};

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

/// Columns `text` takes on a terminal.
pub fn width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// `text` padded with spaces to `columns` display columns (never cut).
pub fn pad(text: &str, columns: usize) -> String {
    format!("{text}{}", " ".repeat(columns.saturating_sub(width(text))))
}

/// A label padded to its column, with one space at least after it.
fn label_cell(text: &str, columns: usize) -> String {
    pad(text, columns.max(width(text) + 1))
}

/// Pieces of `word` of at most `columns` display columns each.
fn split_word(word: &str, columns: usize) -> Vec<String> {
    let mut pieces = vec![String::new()];
    let mut used = 0;
    for c in word.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > columns && used > 0 {
            pieces.push(String::new());
            used = 0;
        }
        pieces.last_mut().expect("one piece at least").push(c);
        used += w;
    }
    pieces
}

/// Word-wrap `text` so that every line, `indent` included, fits in `columns`
/// display columns; a word longer than a line is cut.
pub fn wrap(text: &str, columns: usize, indent: &str) -> String {
    wrap_hanging(text, columns, indent, indent)
}

/// Like [`wrap`], with the first line after `first` and the others after `rest`.
fn wrap_hanging(text: &str, columns: usize, first: &str, rest: &str) -> String {
    let lines = lines(text, columns.saturating_sub(width(first)), columns.saturating_sub(width(rest)));
    lines.iter().enumerate().map(|(i, l)| format!("{}{l}", if i == 0 { first } else { rest })).collect::<Vec<_>>().join("\n")
}

/// `text` after `used` columns already printed on its line: the first line
/// has what is left, the others start after `rest`.
fn wrap_after(text: &str, columns: usize, used: usize, rest: &str) -> String {
    let lines = lines(text, columns.saturating_sub(used), columns.saturating_sub(width(rest)));
    lines.iter().enumerate().map(|(i, l)| if i == 0 { l.clone() } else { format!("{rest}{l}") }).collect::<Vec<_>>().join("\n")
}

/// The words of `text` in lines of `first_room` columns, then `room` columns.
fn lines(text: &str, first_room: usize, room: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    let room_of = |lines: &Vec<String>| if lines.is_empty() { first_room } else { room }.max(8);
    for word in text.split_whitespace() {
        for piece in split_word(word, room.max(8)) {
            let fits = width(&line) + usize::from(!line.is_empty()) + width(&piece) <= room_of(&lines);
            // A full line ends; when not even this piece fits after what is
            // already printed, the first line stays empty and text starts below.
            if !fits {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&piece);
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Observations shown as "before -> after".
const PAIRS: &[(&str, &str)] = &[
    ("before", "after"),
    ("mounts_before", "mounts_after"),
    ("shared_before", "shared_after"),
    ("capabilities_before", "capabilities_after"),
    ("hostname_before", "hostname_after"),
];

/// Width of the labels column ("shell", "system call", "seen in this run").
const LABEL: usize = 18;
/// Where observed values start: 4 spaces, a label of up to 23 columns, a space.
const VALUE: usize = 28;

impl Narrator<'_> {
    fn paint(&mut self, color: Color, bold: bool, text: &str) -> io::Result<()> {
        self.out.set_color(ColorSpec::new().set_fg(Some(color)).set_bold(bold))?;
        write!(self.out, "{text}")?;
        self.out.reset()
    }

    /// "── TITLE ───", as wide as the terminal (the title wrapped when it is not).
    fn rule(&mut self, color: Color, mark: &str, title: &str) -> io::Result<()> {
        let head = wrap_hanging(title, self.width.saturating_sub(4), &format!("{mark}{mark} "), "   ");
        let last = head.lines().last().unwrap_or("");
        let fill = mark.repeat(self.width.saturating_sub(width(last) + 1).min(60));
        self.paint(color, true, &format!("{head} "))?;
        self.paint(color, false, &fill)?;
        writeln!(self.out)
    }

    pub fn header(&mut self, index: usize, step: &Step) -> io::Result<()> {
        let title = format!("{} {}/{} · {}", self.catalog.text("step"), index + 1, self.total, self.catalog.title(step.id));
        writeln!(self.out)?;
        self.rule(Color::Cyan, "─", &title)?;
        writeln!(self.out, "{}", wrap(self.catalog.concept(step.id), self.width, "  "))?;
        writeln!(self.out)?;
        self.field("shell", &step.shell)?;
        self.field("syscall", &step.syscall)
    }

    /// The `--step` prompt: what Enter will run.
    pub fn prompt(&mut self, index: usize, step: &Step) -> io::Result<()> {
        let text = self
            .catalog
            .text("press_enter")
            .replace("{step}", &format!("{}/{}", index + 1, self.total))
            .replace("{title}", self.catalog.title(step.id));
        // One column less: the cursor waits after a space.
        let text = wrap_hanging(&format!("[{text}]"), self.width.saturating_sub(1), "  ", "   ");
        write!(self.out, "{text} ")?;
        self.out.flush()
    }

    /// A label in the labels column, then the value wrapped beside it.
    fn labelled(&mut self, color: Color, label: &str, value: &str) -> io::Result<()> {
        let label = format!("  {}", label_cell(label, LABEL));
        let indent = " ".repeat(LABEL + 2);
        self.paint(color, true, &label)?;
        writeln!(self.out, "{}", wrap_after(value, self.width, width(&label), &indent))
    }

    fn field(&mut self, key: &str, value: &str) -> io::Result<()> {
        let label = self.catalog.text(key).to_string();
        self.labelled(Color::Blue, &label, value)
    }

    /// One observation: a label in its column, the value wrapped in the value
    /// column (a multi-line value keeps its lines).
    fn observation(&mut self, label: &str, value: &str, after: Option<&str>) -> io::Result<()> {
        let label = format!("    {}", pad(label, VALUE - 5));
        let indent = " ".repeat(VALUE);
        write!(self.out, "{label} ")?;
        let room = self.width;
        match after {
            Some(after) if width(&label) + 1 + width(value) + 6 + width(after) <= room => {
                write!(self.out, "{value}")?;
                self.paint(Color::Yellow, true, "  ->  ")?;
                writeln!(self.out, "{after}")
            }
            Some(after) => {
                writeln!(self.out, "{}", wrap_after(value, room, width(&label) + 1, &indent))?;
                write!(self.out, "{indent}")?;
                self.paint(Color::Yellow, true, "->  ")?;
                writeln!(self.out, "{}", wrap_after(after, room, width(&indent) + 4, &format!("{indent}    ")))
            }
            None => {
                let value = value.trim_end().replace('\t', "  ");
                let mut first = true;
                for line in value.lines() {
                    if first {
                        writeln!(self.out, "{}", wrap_after(line, room, width(&label) + 1, &indent))?;
                    } else {
                        writeln!(self.out, "{}", wrap_hanging(line, room, &indent, &indent))?;
                    }
                    first = false;
                }
                if first {
                    writeln!(self.out)?;
                }
                Ok(())
            }
        }
    }

    /// What the run showed after the step.
    pub fn observed(&mut self, event: &Event) -> io::Result<()> {
        if !event.ok {
            return Ok(());
        }
        let seen = format!("  {}", label_cell(self.catalog.text("seen"), LABEL));
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
            let after = pair.and_then(|after| event.observed.get(after)).map(String::as_str);
            let label = self.catalog.label(key).to_string();
            self.observation(&label, value, after)?;
        }
        Ok(())
    }

    pub fn not_run(&mut self) -> io::Result<()> {
        let text = self.catalog.text("dry_run").to_string();
        let label = self.catalog.text("seen").to_string();
        self.labelled(Color::Yellow, &label, &text)
    }

    /// A failed step: what failed (the call and errno), what the step means, the fix.
    pub fn failure(&mut self, event: &Event, fix: &str) -> io::Result<()> {
        let catalog = self.catalog;
        self.labelled(Color::Red, catalog.text("failed"), event.error.as_deref().unwrap_or("?"))?;
        self.labelled(Color::Red, catalog.text("why_failed"), catalog.concept(&event.id))?;
        self.labelled(Color::Red, catalog.text("fix"), fix)
    }

    pub fn section(&mut self, title: &str) -> io::Result<()> {
        writeln!(self.out)?;
        self.rule(Color::Magenta, "═", title)
    }

    pub fn paragraph(&mut self, text: &str) -> io::Result<()> {
        writeln!(self.out, "{}", wrap(text, self.width, "  "))
    }

    pub fn line(&mut self, label: &str, text: &str) -> io::Result<()> {
        let label = format!("  {}", label_cell(label, 10));
        let indent = " ".repeat(12);
        self.paint(Color::Blue, true, &label)?;
        writeln!(self.out, "{}", wrap_after(text, self.width, width(&label), &indent))
    }

    /// The same sandbox with unshare, bwrap and docker, and what unshare's maps need.
    pub fn equivalents(&mut self, profile: &Profile, mode: Mode, plan: &Plan, command: &[String]) -> io::Result<()> {
        for (tool, line) in super::equivalents::equivalents(profile, mode, plan, command) {
            self.line(tool, &line)?;
        }
        if mode == Mode::Namespace && super::equivalents::needs_subuid(plan) {
            let note = self.catalog.text("equivalents_note").to_string();
            self.paragraph(&note)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::Lang;

    #[test]
    fn wrap_counts_display_columns() {
        let text = "네임스페이스는 프로세스가 보는 시스템의 일부를 따로 떼어 줍니다 ".repeat(5);
        let wrapped = wrap(&text, 30, "  ");
        for line in wrapped.lines() {
            assert!(width(line) <= 30, "{line}: {}", width(line));
        }
        // Two columns a syllable: fewer syllables a line than characters would allow.
        assert!(wrapped.lines().next().unwrap().chars().count() < 28, "{wrapped}");
        assert_eq!(wrap("a b", 80, "> "), "> a b");
        let long = wrap(&"x".repeat(200), 40, "  ");
        assert!(long.lines().all(|l| width(l) <= 40), "{long}");
        assert_eq!(pad("통과", 6), "통과  ");
    }

    /// Every step of every plan shape, in English and Korean, with
    /// observations of every kind and a failure: no line over 80 columns.
    #[test]
    fn every_step_fits_80_columns_in_every_language() {
        let plans = crate::explain::catalog::tests::all_plans();
        let long_value = "/var/lib/sandbox/store/rootfs/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/home";
        for lang in Lang::ALL {
            let catalog = Catalog::load(lang);
            let mut observed = std::collections::BTreeMap::new();
            for key in catalog.labels.keys() {
                observed.insert(key.clone(), format!("{long_value} 1 2 3\n0 1268435456 65536"));
            }
            observed.insert("mounts_before".into(), "20".into());
            observed.insert("mounts_after".into(), "20".into());
            for plan in &plans {
                let mut out = termcolor::NoColor::new(Vec::new());
                let mut narrator = Narrator { out: &mut out, catalog: &catalog, width: 80, total: plan.steps.len() };
                for (index, step) in plan.steps.iter().enumerate() {
                    narrator.header(index, step).unwrap();
                    let event = Event {
                        index,
                        id: step.id.to_string(),
                        actor: "child".into(),
                        ok: true,
                        error: None,
                        errno: None,
                        observed: observed.clone(),
                    };
                    narrator.observed(&event).unwrap();
                    let failed = Event { ok: false, error: Some(format!("{}: EPERM {long_value}", step.syscall)), ..event };
                    narrator.failure(&failed, crate::isolate::hints::fix(step.id, Some(1)).as_ref()).unwrap();
                    narrator.not_run().unwrap();
                    narrator.prompt(index, step).unwrap();
                    writeln!(narrator.out).unwrap();
                }
                for key in ["summary_namespace", "not_protected_namespace", "summary_chroot"] {
                    narrator.section(catalog.text("summary_title")).unwrap();
                    narrator.paragraph(catalog.text(key)).unwrap();
                }
                let profile = crate::profile::load("shell", std::path::Path::new("/")).unwrap();
                narrator.equivalents(&profile, plan.mode, plan, &["/bin/bash".into(), "-l".into()]).unwrap();
                let text = String::from_utf8(out.into_inner()).unwrap();
                for line in text.lines() {
                    assert!(width(line) <= 80, "{lang:?}: {} columns:\n{line}", width(line));
                }
            }
        }
    }

    #[test]
    fn the_value_column_lines_up_in_korean() {
        let catalog = Catalog::load(Lang::Ko);
        let mut out = termcolor::NoColor::new(Vec::new());
        let mut narrator = Narrator { out: &mut out, catalog: &catalog, width: 80, total: 1 };
        let mut observed = std::collections::BTreeMap::new();
        observed.insert("pid_inside".to_string(), "1".to_string());
        observed.insert("uid_map".to_string(), "0 1268435456 65536".to_string());
        observed.insert("shared_before".to_string(), "12".to_string());
        observed.insert("shared_after".to_string(), "0".to_string());
        let event = Event { index: 0, id: "x".into(), actor: "child".into(), ok: true, error: None, errno: None, observed };
        narrator.observed(&event).unwrap();
        let text = String::from_utf8(out.into_inner()).unwrap();
        let columns: Vec<usize> = text
            .lines()
            .skip(1)
            .map(|l| {
                let value_start = l.char_indices().find(|(i, c)| *i > 4 && c.is_ascii_digit()).map(|(i, _)| i).unwrap();
                width(&l[..value_start])
            })
            .collect();
        assert!(columns.len() == 3 && columns.iter().all(|c| *c == VALUE), "{columns:?}\n{text}");
        assert!(text.contains("12  ->  0"), "{text}");
    }
}
