//! `sandbox lab list | show | start | check`, for one student or a class
//! (`--names-from FILE`). Grading itself is the library's ([`crate::lab::grade`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use termcolor::Color;
use unicode_width::UnicodeWidthStr;

use super::output::{Failure, Stream, paint, stream};
use crate::explain::{Catalog, Lang};
use crate::lab::{self, Lab, Report};

/// Options every `lab` command takes.
pub struct Common {
    /// `--labs DIR`: a folder of extra labs.
    pub labs: Option<PathBuf>,
    pub lang: Option<String>,
}

impl Common {
    fn extra(&self) -> Option<PathBuf> {
        lab::extra_folder(self.labs.as_deref())
    }

    fn find(&self, wanted: &str) -> Result<Lab, Failure> {
        Ok(lab::find(self.extra().as_deref(), wanted)?)
    }

    fn lang(&self) -> Lang {
        Lang::choose(self.lang.as_deref())
    }
}

/// Pad to a display width (a Hangul syllable takes two columns).
fn pad(text: &str, width: usize) -> String {
    format!("{text}{}", " ".repeat(width.saturating_sub(text.width())))
}

pub fn list(common: &Common) -> Result<ExitCode, Failure> {
    let lang = common.lang();
    let catalog = Catalog::load(lang);
    let mut out = stream(Stream::Stdout);
    for lab in lab::all(common.extra().as_deref())? {
        paint(&mut out, Color::Cyan, true, &pad(&lab.id, 22))?;
        let minutes = catalog.lab("minutes", &[("n", &lab.spec.minutes.to_string())]);
        writeln!(out, " {}  {}", pad(&minutes, 7), lab.spec.title.get(lang))?;
        writeln!(out, "{:31}{}", "", lab.spec.concepts.get(lang))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn show(wanted: &str, common: &Common) -> Result<ExitCode, Failure> {
    let lang = common.lang();
    let catalog = Catalog::load(lang);
    let lab = common.find(wanted)?;
    let mut out = stream(Stream::Stdout);
    paint(&mut out, Color::Cyan, true, &format!("{} · {}", lab.id, lab.spec.title.get(lang)))?;
    let minutes = catalog.lab("minutes", &[("n", &lab.spec.minutes.to_string())]);
    writeln!(out, "  ({minutes})\n\n{}\n", lab.spec.goal.get(lang))?;
    writeln!(out, "{}", lab.readme(lang))?;
    writeln!(out, "{}:", catalog.lab("checks", &[]))?;
    for check in &lab.spec.checks {
        writeln!(out, "  [ ] {}", check.title.get(lang))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Students from `--name` or `--names-from FILE`: one name a line, `#` comments,
/// each a valid part of an instance name. Errors give the line, not its text
/// (a names file may be anything, /etc/shadow included).
fn students(name: Option<&str>, names_from: Option<&Path>) -> Result<Vec<String>, Failure> {
    let Some(file) = names_from else { return Ok(vec![lab::student(name)]) };
    let text = read_names(file)?;
    let mut names = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !crate::instance::valid_name(&format!("lab00-{line}")) {
            return Err(Failure {
                message: format!(
                    "{}:{}: not a student name\n  fix: use a-z, 0-9, `_` and `-` (up to 57), one name a line",
                    file.display(),
                    number + 1
                ),
            });
        }
        if !names.iter().any(|n| n == line) {
            names.push(line.to_string());
        }
    }
    if names.is_empty() {
        return Err(Failure { message: format!("{}: no student names\n  fix: one name a line", file.display()) });
    }
    Ok(names)
}

fn read_names(file: &Path) -> Result<String, Failure> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| Failure { message: format!("{}: {e}", file.display()) };
    let handle = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(file).map_err(fail)?;
    if !handle.metadata().map_err(fail)?.is_file() {
        return Err(Failure { message: format!("{}: not a regular file\n  fix: give a text file of names", file.display()) });
    }
    let mut bytes = Vec::new();
    handle.take(1 << 20).read_to_end(&mut bytes).map_err(fail)?;
    String::from_utf8(bytes).map_err(|_| Failure { message: format!("{}: not UTF-8 text", file.display()) })
}

/// Start (or resume) the students' instances of the lab and place its files.
pub fn start(wanted: &str, name: Option<&str>, names_from: Option<&Path>, common: &Common) -> Result<ExitCode, Failure> {
    let lab = common.find(wanted)?;
    let catalog = Catalog::load(common.lang());
    let students = students(name, names_from)?;
    let state = crate::state::home();
    ensure_running(&lab, &students, &state)?;
    let mut out = stream(Stream::Stdout);
    for student in &students {
        lab::check::place_files(&lab, student, &state)?;
        let instance = lab::instance_name(&lab, student);
        writeln!(out, "{}", catalog.lab("ready", &[("lab", &lab.id), ("student", student), ("instance", &instance)]))?;
        if students.len() == 1 {
            writeln!(out, "  {} sandbox exec {instance}", pad(&catalog.lab("enter", &[]), 11))?;
            writeln!(out, "  {} sandbox lab check {} --name {student}", pad(&catalog.lab("check_it", &[]), 11), lab.id)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every student's instance running (the stopped ones started together).
fn ensure_running(lab: &Lab, students: &[String], state: &Path) -> Result<(), Failure> {
    let mut stopped = Vec::new();
    for student in students {
        let instance = lab::instance_name(lab, student);
        if crate::instance::Instance::named(state, &instance)?.running().is_none() {
            stopped.push(instance);
        }
    }
    if stopped.is_empty() {
        return Ok(());
    }
    let code = super::instances::start(&lab.profile_spec(state)?, stopped, None)?;
    if code != ExitCode::SUCCESS {
        return Err(Failure { message: format!("the lab's instances did not all start (lab {})", lab.id) });
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Csv,
}

pub fn check(wanted: &str, name: Option<&str>, names_from: Option<&Path>, format: Format, common: &Common) -> Result<ExitCode, Failure> {
    let lang = common.lang();
    let catalog = Catalog::load(lang);
    let lab = common.find(wanted)?;
    let students = students(name, names_from)?;
    let state = crate::state::home();
    for student in &students {
        let instance = lab::instance_name(&lab, student);
        if !crate::instance::Instance::named(&state, &instance)?.exists() {
            let values = [("lab", lab.id.as_str()), ("student", student.as_str())];
            return Err(Failure {
                message: format!("{}\n  fix: {}", catalog.lab("not_started", &values), catalog.lab("not_started_fix", &values)),
            });
        }
    }
    ensure_running(&lab, &students, &state)?;
    let reports = grade_all(&lab, &students, &state)?;
    let mut out = stream(Stream::Stdout);
    match format {
        Format::Json => {
            for report in &reports {
                writeln!(out, "{}", json(report, lang))?;
            }
        }
        Format::Csv => csv(&mut out, &lab, &reports)?,
        Format::Text if reports.len() == 1 => text(&mut out, &reports[0], &catalog, lang)?,
        Format::Text => class(&mut out, &lab, &reports, &catalog)?,
    }
    Ok(if reports.iter().all(|r| r.passed) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Every student's report, in the order given. A check spends its time
/// waiting for a `sandbox exec` into the instance, so students are graded a
/// few at a time side by side (a class of thirty in a fraction of the time),
/// not all thirty instances at once.
fn grade_all(lab: &Lab, students: &[String], state: &Path) -> Result<Vec<Report>, Failure> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8).min(students.len());
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<Report, Failure>>>> = students.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(student) = students.get(index) else { break };
                    *results[index].lock().unwrap_or_else(|e| e.into_inner()) = Some(grade_one(lab, student, state));
                }
            });
        }
    });
    results.into_iter().map(|r| r.into_inner().unwrap_or_else(|e| e.into_inner()).expect("every student is graded")).collect()
}

fn grade_one(lab: &Lab, student: &str, state: &Path) -> Result<Report, Failure> {
    // An instance reset since `lab start` gets the lab's files back first.
    let dir = crate::instance::Instance::named(state, &lab::instance_name(lab, student))?.dir;
    if lab::check::lab_of(&dir).is_none() {
        lab::check::place_files(lab, student, state)?;
    }
    Ok(lab::grade(lab, student, state)?)
}

fn json(report: &Report, lang: Lang) -> serde_json::Value {
    let checks: Vec<serde_json::Value> = report
        .checks
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.id,
                "title": c.title.get(lang),
                "passed": c.passed,
                "hint": (!c.passed).then(|| c.hint.get(lang)),
                "seen": c.seen,
            })
        })
        .collect();
    serde_json::json!({
        "lab": report.lab,
        "student": report.student,
        "instance": report.instance,
        "cgroup": report.cgroup,
        "passed": report.passed,
        "checks": checks,
        "execs": report.execs,
    })
}

fn text(out: &mut termcolor::StandardStream, report: &Report, catalog: &Catalog, lang: Lang) -> std::io::Result<()> {
    let pass = catalog.lab("pass", &[]);
    let fail = catalog.lab("fail", &[]);
    let width = pass.width().max(fail.width()) + 1;
    for check in &report.checks {
        if check.passed {
            paint(out, Color::Green, true, &format!("  {}", pad(&pass, width)))?;
        } else {
            paint(out, Color::Red, true, &format!("  {}", pad(&fail, width)))?;
        }
        writeln!(out, "{}", check.title.get(lang))?;
        if !check.passed {
            let indent = " ".repeat(width + 2);
            writeln!(out, "{indent}{}: {}", catalog.lab("seen", &[]), check.seen)?;
            writeln!(out, "{indent}{}: {}", catalog.lab("hint", &[]), check.hint.get(lang))?;
        }
    }
    if let Some(version) = &report.cgroup {
        writeln!(out, "{}", catalog.lab("cgroup", &[("version", &format!("cgroup {version}"))]))?;
    }
    let passed = report.passed_count();
    let summary = catalog.lab("summary", &[("passed", &passed.to_string()), ("failed", &(report.checks.len() - passed).to_string())]);
    writeln!(out, "{summary}")
}

/// A class at a glance: one row per student, one column per check.
fn class(out: &mut termcolor::StandardStream, lab: &Lab, reports: &[Report], catalog: &Catalog) -> std::io::Result<()> {
    let name_width = reports.iter().map(|r| r.student.width()).chain([catalog.lab("class_header", &[]).width()]).max().unwrap_or(8) + 2;
    write!(out, "{}", pad(&catalog.lab("class_header", &[]), name_width))?;
    for (i, _) in lab.spec.checks.iter().enumerate() {
        write!(out, "{:>3}", i + 1)?;
    }
    writeln!(out, "  {}", catalog.lab("pass", &[]))?;
    for report in reports {
        write!(out, "{}", pad(&report.student, name_width))?;
        for check in &report.checks {
            if check.passed {
                paint(out, Color::Green, true, "  ✓")?;
            } else {
                paint(out, Color::Red, true, "  ✗")?;
            }
        }
        writeln!(out, "  {}/{}", report.passed_count(), report.checks.len())?;
    }
    for (i, check) in lab.spec.checks.iter().enumerate() {
        writeln!(out, "{:>3} {}", i + 1, check.id)?;
    }
    Ok(())
}

/// Grades as CSV: student, instance, passed, total, then 1/0 per check id.
fn csv(out: &mut termcolor::StandardStream, lab: &Lab, reports: &[Report]) -> std::io::Result<()> {
    let ids: Vec<&str> = lab.spec.checks.iter().map(|c| c.id.as_str()).collect();
    writeln!(out, "student,instance,passed,total,{}", ids.join(","))?;
    for report in reports {
        let marks: Vec<&str> = report.checks.iter().map(|c| if c.passed { "1" } else { "0" }).collect();
        // Names are checked (a-z, 0-9, `_`, `-`): nothing to quote.
        writeln!(out, "{},{},{},{},{}", report.student, report.instance, report.passed_count(), report.checks.len(), marks.join(","))?;
    }
    Ok(())
}

/// The reset hook: an instance that `lab start` made gets its lab's files
/// back after `sandbox reset` (it is started and they are placed, as `lab
/// start` does), so the next `lab check` sees what the lab starts with.
pub fn after_reset(name: &str) -> Result<Option<String>, Failure> {
    let state = crate::state::home();
    let dir = crate::instance::Instance::named(&state, name)?.dir;
    let Some((lab_id, student, folder)) = lab::check::lab_of(&dir) else { return Ok(None) };
    let _ = std::fs::remove_file(dir.join("lab.json"));
    // The extra folder is checked again, as on every use.
    let lab = lab::find(folder.as_deref(), &lab_id)?;
    ensure_running(&lab, std::slice::from_ref(&student), &state)?;
    lab::check::place_files(&lab, &student, &state)?;
    Ok(Some(Catalog::load(Lang::choose(None)).lab("placed_again", &[("instance", name)])))
}
