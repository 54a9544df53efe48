//! `sandbox lab list | show | start | check`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, ExitCode, Stdio};

use termcolor::Color;

use super::output::{Failure, Stream, paint, stream};
use crate::explain::Lang;
use crate::lab::{self, Lab, fill, values};

fn labs() -> std::path::PathBuf {
    lab::labs_dir()
}

pub fn list(lang: Option<&str>) -> Result<ExitCode, Failure> {
    let lang = Lang::choose(lang);
    let mut out = stream(Stream::Stdout);
    for lab in lab::all(&labs())? {
        paint(&mut out, Color::Cyan, true, &format!("{:<22}", lab.id))?;
        writeln!(out, " {:>3} min  {}", lab.spec.minutes, lab.spec.title.get(lang))?;
        writeln!(out, "{:27}{}", "", lab.spec.concepts.get(lang))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn show(wanted: &str, lang: Option<&str>) -> Result<ExitCode, Failure> {
    let lang = Lang::choose(lang);
    let lab = lab::find(&labs(), wanted)?;
    let mut out = stream(Stream::Stdout);
    paint(&mut out, Color::Cyan, true, &format!("{} · {}", lab.id, lab.spec.title.get(lang)))?;
    writeln!(out, "  ({} min)\n\n{}\n", lab.spec.minutes, lab.spec.goal.get(lang))?;
    let code = match lang {
        Lang::En => "en",
        Lang::Ko => "ko",
    };
    let readme = std::fs::read_to_string(lab.dir.join(format!("README.{code}.md"))).unwrap_or_default();
    writeln!(out, "{readme}")?;
    for check in &lab.spec.checks {
        writeln!(out, "  [ ] {}", check.title.get(lang))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Run `sandbox exec NAME -- ARGS` (the same code path a student uses), with `stdin`.
fn inside(instance: &str, args: &[String], stdin: &[u8]) -> std::io::Result<std::process::Output> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("exec")
        .arg(instance)
        .arg("--")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().map(|mut s| s.write_all(stdin));
    child.wait_with_output()
}

fn student_values(lab: &Lab, student: &str) -> Result<BTreeMap<String, String>, Failure> {
    let secret = values::course_secret(&crate::state::home())?;
    Ok(values::derive(&secret, &lab.id, student, &lab.spec.values))
}

/// Start (or resume) the student's instance of the lab and place its files.
pub fn start(wanted: &str, name: Option<&str>) -> Result<ExitCode, Failure> {
    let lab = lab::find(&labs(), wanted)?;
    let student = lab::student(name);
    let instance = lab::instance_name(&lab, &student);
    let values = student_values(&lab, &student)?;
    ensure_running(&lab, &instance)?;
    for file in &lab.spec.files {
        let path = fill(&file.path, &values);
        let content = fill(&file.content, &values);
        let mode = file.mode.clone().unwrap_or_else(|| "0644".into());
        let script = "mkdir -p \"$(dirname \"$1\")\" && cat > \"$1\" && chmod \"$2\" \"$1\"";
        let args: Vec<String> = ["/bin/sh", "-c", script, "place", &path, &mode].iter().map(|s| s.to_string()).collect();
        let output = inside(&instance, &args, content.as_bytes())?;
        if !output.status.success() {
            return Err(Failure { message: format!("placing {path} in {instance}: {}", String::from_utf8_lossy(&output.stderr).trim()) });
        }
    }
    let mut out = stream(Stream::Stdout);
    writeln!(out, "lab {} is ready for {student} in instance {instance}", lab.id)?;
    writeln!(out, "  enter it:  sandbox exec {instance}")?;
    writeln!(out, "  check it:  sandbox lab check {} --name {student}", lab.id)?;
    Ok(ExitCode::SUCCESS)
}

fn ensure_running(lab: &Lab, instance: &str) -> Result<(), Failure> {
    let state = crate::state::home();
    if crate::instance::Instance::named(&state, instance)?.running().is_some() {
        return Ok(());
    }
    let code = super::instances::start(&lab.profile_spec(), vec![instance.to_string()], None)?;
    if code != ExitCode::SUCCESS {
        return Err(Failure { message: format!("the lab's instance {instance} did not start") });
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct Result_ {
    id: String,
    title: String,
    passed: bool,
    hint: Option<String>,
}

pub fn check(wanted: &str, name: Option<&str>, json: bool, lang: Option<&str>) -> Result<ExitCode, Failure> {
    let lang = Lang::choose(lang);
    let lab = lab::find(&labs(), wanted)?;
    let student = lab::student(name);
    let instance = lab::instance_name(&lab, &student);
    let state = crate::state::home();
    if !crate::instance::Instance::named(&state, &instance)?.exists() {
        return Err(Failure {
            message: format!("{student} has not started lab {}\n  fix: sandbox lab start {} --name {student}", lab.id, lab.id),
        });
    }
    ensure_running(&lab, &instance)?;
    let values = student_values(&lab, &student)?;
    let mut results = Vec::new();
    for check in &lab.spec.checks {
        let passed = run_check(check, &instance, &values)?;
        results.push(Result_ {
            id: check.id.clone(),
            title: check.title.get(lang).to_string(),
            passed,
            hint: (!passed).then(|| check.hint.get(lang).to_string()),
        });
    }
    let all = results.iter().all(|r| r.passed);
    let mut out = stream(Stream::Stdout);
    if json {
        let value = serde_json::json!({"lab": lab.id, "student": student, "passed": all, "checks": results});
        writeln!(out, "{value}")?;
    } else {
        for r in &results {
            if r.passed {
                paint(&mut out, Color::Green, true, "  pass ")?;
            } else {
                paint(&mut out, Color::Red, true, "  FAIL ")?;
            }
            writeln!(out, "{}", r.title)?;
            if let Some(hint) = &r.hint {
                writeln!(out, "       hint: {hint}")?;
            }
        }
        let passed = results.iter().filter(|r| r.passed).count();
        writeln!(out, "{passed} passed, {} failed", results.len() - passed)?;
    }
    Ok(if all { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn matches(pattern: &str, values: &BTreeMap<String, String>, text: &str) -> bool {
    regex::Regex::new(&fill(pattern, values)).is_ok_and(|re| re.is_match(text))
}

fn run_check(check: &lab::CheckSpec, instance: &str, values: &BTreeMap<String, String>) -> Result<bool, Failure> {
    if let Some(command) = &check.command {
        let args: Vec<String> = command.iter().map(|a| fill(a, values)).collect();
        let output = inside(instance, &args, b"")?;
        let status_ok = output.status.code() == Some(check.expect_status.unwrap_or(0));
        let stdout = String::from_utf8_lossy(&output.stdout);
        return Ok(status_ok && check.expect_output.as_ref().is_none_or(|p| matches(p, values, &stdout)));
    }
    let (path, pattern) = match (&check.file, &check.history) {
        (Some(file), _) => (fill(file, values), check.expect_content.clone()),
        (None, Some(history)) => ("/home/student/.bash_history".to_string(), Some(format!("(?m){history}"))),
        (None, None) => return Ok(false),
    };
    let output = inside(instance, &["/bin/cat".to_string(), path], b"")?;
    if !output.status.success() {
        return Ok(false);
    }
    let content = String::from_utf8_lossy(&output.stdout);
    Ok(pattern.is_none_or(|p| matches(&p, values, &content)))
}
