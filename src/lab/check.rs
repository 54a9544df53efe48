//! Grading: every check of a lab against one student's instance.
//!
//! Checks of the student's own work (`command`, `file`, `history`) run inside
//! the instance, as the student, under its limits, with a timeout and a cap
//! on what they return: a link to /dev/zero or a FIFO as an answer costs the
//! host nothing. Checks of evidence (`cgroup`, `layer`, `process`, and the
//! `{kernel.*}` facts that answers are compared with) are read on the host
//! from the kernel and the instance's layer, where no student can write.
//!
//! [`grade`] is the library entry point (`lab check`, and `serve`'s "check my
//! work" button and progress view): one [`Report`] with a [`CheckResult`]
//! per check.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::evidence::{self, LayerState};
use super::format::{CheckSpec, Lab, Text, fill};
use super::{history, values};
use crate::cgroup::CgroupVersion;

/// What a check may take: time, and bytes of output.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);
const MAX_OUTPUT: usize = 256 * 1024;
/// An answer is a short text; only its beginning is read.
const MAX_ANSWER: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GradeError(pub String);

impl From<std::io::Error> for GradeError {
    fn from(e: std::io::Error) -> Self {
        GradeError(e.to_string())
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    pub id: String,
    pub title: Text,
    pub hint: Text,
    pub passed: bool,
    /// What the check saw, in a few words (numbers, states; never raw bytes
    /// from inside beyond a short, escaped excerpt).
    pub seen: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub lab: String,
    pub student: String,
    pub instance: String,
    /// `v1` or `v2`: the cgroup version the instance's limits use.
    pub cgroup: Option<String>,
    pub passed: bool,
    pub checks: Vec<CheckResult>,
    /// The record of `sandbox exec` into the instance (the last 20 that were
    /// not the checks' own).
    pub execs: Vec<evidence::ExecRecord>,
}

impl Report {
    pub fn passed_count(&self) -> usize {
        self.checks.iter().filter(|c| c.passed).count()
    }
}

/// What an instance shows the host: its layer, PID 1, cgroup.
pub struct Scene {
    pub instance: String,
    pub dir: PathBuf,
    pub upper: PathBuf,
    /// Keeps `upper` readable (a disk image's mount) while the scene lives.
    _view: crate::instance::UpperView,
    pub lower: PathBuf,
    pub init: Option<i32>,
    /// Which lifetime of the instance (PID 1's pid and start time).
    pub run: String,
    pub cgroup: Option<(CgroupVersion, Vec<PathBuf>)>,
    /// The cgroup's counters as grading began, before the checks' own commands.
    pub counted: Option<evidence::Counted>,
    /// Commands the tool ran inside during this scene (their cost is not the student's).
    commands: std::cell::Cell<u64>,
}

impl Scene {
    pub fn open(state: &Path, name: &str) -> Result<Scene, GradeError> {
        let instance = crate::instance::Instance::named(state, name).map_err(|e| GradeError(e.to_string()))?;
        let record = instance.record().map_err(|e| GradeError(e.to_string()))?;
        let running = instance.running();
        // Where the instance's PID 1 is, as `exec` and `ps` find it: the
        // checker runs in a cgroup of its own (the teacher's session, another
        // scope under systemd), so the place is never worked out from there.
        let cgroup = running.as_ref().and_then(|running| {
            let manager = crate::cgroup::attach(&running.cgroup, running.init)
                .or_else(|| crate::cgroup::attach_dirs(&running.cgroup, &running.cgroup_dirs))?;
            Some(evidence::cgroup_of(manager.as_ref()))
        });
        let view = instance.upper_view(true).map_err(|e| GradeError(e.to_string()))?;
        Ok(Scene {
            instance: name.to_string(),
            upper: view.upper.clone(),
            _view: view,
            lower: record.rootfs.clone(),
            init: running.as_ref().map(|r| r.init),
            run: running.as_ref().map(|r| format!("{}-{}", r.init, r.init_start)).unwrap_or_default(),
            cgroup,
            counted: None,
            commands: std::cell::Cell::new(0),
            dir: instance.dir,
        })
    }

    /// [`run_inside`] this scene's instance, counted as the tool's own work.
    fn inside(&self, args: &[String], stdin: &[u8], cap: usize) -> std::io::Result<Ran> {
        self.commands.set(self.commands.get() + 1);
        run_inside(&self.instance, args, stdin, cap)
    }

    fn raw_counters(&self) -> Option<BTreeMap<evidence::Counter, f64>> {
        self.cgroup.as_ref().map(|(version, dirs)| evidence::read_now(*version, dirs))
    }

    /// Runs `work` (the tool's commands inside), then records what those
    /// moved in the cgroup's CPU counters, so they never count as the student's.
    fn tool_work<T>(&self, work: impl FnOnce() -> T) -> T {
        let before = self.raw_counters();
        let commands = self.commands.get();
        let result = work();
        if let (Some(before), Some(after)) = (before, self.raw_counters()) {
            evidence::record_tool_work(&self.dir, &before, &after, self.commands.get() - commands);
        }
        result
    }

    /// The `{kernel.*}` facts of this instance.
    pub fn facts(&self) -> BTreeMap<String, String> {
        evidence::facts(self.init, &self.upper, self.cgroup.as_ref().map(|c| c.0))
    }
}

/// The student's values and the instance's facts, for placeholders.
pub fn values_for(lab: &Lab, student: &str, state: &Path, scene: &Scene) -> Result<BTreeMap<String, String>, GradeError> {
    let secret = values::course_secret(state)?;
    let mut all = values::derive(&secret, &lab.id, student, &lab.spec.values);
    all.extend(scene.facts());
    Ok(all)
}

/// The result of a command run inside the instance.
pub struct Ran {
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub timed_out: bool,
}

/// Run `sandbox exec INSTANCE -- ARGS` (the path a student's own shell takes:
/// the instance's namespaces, user and cgroup), feeding `stdin`, keeping at
/// most `cap` bytes of stdout, and ending it after [`CHECK_TIMEOUT`].
pub fn run_inside(instance: &str, args: &[String], stdin: &[u8], cap: usize) -> std::io::Result<Ran> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("exec")
        .arg(instance)
        .arg("--")
        .args(args)
        .env("NO_COLOR", "1")
        .env(evidence::EXEC_BY, "lab check")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut input = child.stdin.take();
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(pipe) = input.as_mut() {
            let _ = pipe.write_all(&stdin);
        }
    });
    let mut output = child.stdout.take();
    // The reader stops at the cap and closes the pipe: the writer inside gets
    // EPIPE instead of filling our memory.
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(pipe) = output.take() {
            let _ = pipe.take(cap as u64).read_to_end(&mut bytes);
        }
        bytes
    });
    let deadline = Instant::now() + CHECK_TIMEOUT;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline && !timed_out {
            timed_out = true;
            // `sandbox exec` passes SIGTERM on to the command; SIGKILL is the backstop.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
        }
        if timed_out && Instant::now() > deadline + Duration::from_secs(3) {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    let stdout = reader.join().unwrap_or_default();
    Ok(Ran { status: status.code(), stdout, timed_out })
}

/// A short excerpt of text from inside, safe for a terminal.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let mut out: String =
        text.chars().take(60).flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect();
    if text.chars().count() > 60 {
        out.push('…');
    }
    out
}

fn regex(pattern: &str, values: &BTreeMap<String, String>) -> Option<regex::Regex> {
    regex::Regex::new(&fill(pattern, values)).ok()
}

fn in_range(value: f64, check: &CheckSpec) -> bool {
    check.at_least.is_none_or(|min| value >= min) && check.at_most.is_none_or(|max| value <= max)
}

/// The first number in a text (`0,48` counts as 0.48).
fn first_number(text: &str) -> Option<f64> {
    let re = regex::Regex::new(r"[-+]?[0-9]*[.,]?[0-9]+").expect("a valid regex");
    re.find(text)?.as_str().replace(',', ".").parse().ok()
}

/// One check: passed, and what was seen.
pub fn run_check(check: &CheckSpec, scene: &Scene, values: &BTreeMap<String, String>) -> Result<(bool, String), GradeError> {
    if let Some(command) = &check.command {
        let args: Vec<String> = command.iter().map(|a| fill(a, values)).collect();
        let ran = scene.inside(&args, b"", MAX_OUTPUT)?;
        if ran.timed_out {
            return Ok((false, "timed out".into()));
        }
        let want = check.expect_status.unwrap_or(0);
        let status_ok = ran.status == Some(want);
        let stdout = String::from_utf8_lossy(&ran.stdout);
        let output_ok = check.expect_output.as_ref().is_none_or(|p| regex(p, values).is_some_and(|re| re.is_match(&stdout)));
        let seen = match ran.status {
            Some(s) => format!("exit status {s}"),
            None => "killed".into(),
        };
        return Ok((status_ok && output_ok, seen));
    }
    if let Some(file) = &check.file {
        let path = fill(file, values);
        // Inside, as the student: a link can only lead elsewhere in the instance,
        // and only a regular file's first bytes are read.
        let script = "test -f \"$1\" || exit 3; exec head -c \"$2\" -- \"$1\"";
        let args = ["/bin/sh", "-c", script, "read", &path, &MAX_ANSWER.to_string()].map(String::from).to_vec();
        let ran = scene.inside(&args, b"", MAX_ANSWER)?;
        if ran.timed_out {
            return Ok((false, "timed out reading it".into()));
        }
        match ran.status {
            Some(0) => {}
            Some(3) => return Ok((false, "no such file".into())),
            // `sh` or `head` missing from the profile: the check itself is broken.
            Some(127) => return Ok((false, "could not be read: the profile has no `sh` or `head` to read it with".into())),
            other => return Ok((false, format!("could not be read (exit status {})", other.map_or("none".into(), |s| s.to_string())))),
        }
        let content = String::from_utf8_lossy(&ran.stdout);
        let matched = check.expect_content.as_ref().is_none_or(|p| regex(p, values).is_some_and(|re| re.is_match(&content)));
        let ranged = check.at_least.is_none() && check.at_most.is_none() || first_number(&content).is_some_and(|n| in_range(n, check));
        return Ok((matched && ranged, format!("answer: {}", excerpt(&ran.stdout))));
    }
    if let Some(pattern) = &check.history {
        let args = ["/bin/sh", "-c", "exec tail -c \"$1\" /home/student/.bash_history", "read", &MAX_OUTPUT.to_string()]
            .map(String::from)
            .to_vec();
        let ran = scene.inside(&args, b"", MAX_OUTPUT)?;
        let text = String::from_utf8_lossy(&ran.stdout);
        let found = regex(pattern, values).is_some_and(|re| history::matches(&re, &text));
        return Ok((found, if found { "found in ~/.bash_history".into() } else { "not in ~/.bash_history".into() }));
    }
    if let Some(counter) = check.cgroup {
        let Some(counted) = &scene.counted else { return Ok((false, "the instance has no cgroup".into())) };
        let value = counted.totals.get(&counter).copied();
        let name = serde_json::to_value(counter).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        let round = |v: f64| (v * 1000.0).round() / 1000.0;
        // A CPU counter proves the work only where it stands out from what
        // ordinary commands move on this machine.
        let floor = counted.floor.get(&counter).copied().filter(|f| *f >= 0.001);
        return Ok(match (value, floor) {
            (Some(v), None) => (in_range(v, check), format!("{name} = {}", round(v))),
            (Some(v), Some(floor)) => (
                in_range(v - floor, check),
                format!("{name} = {}, of which ordinary commands on this machine may account for {}", round(v), round(floor)),
            ),
            (None, _) => (false, format!("{name}: not counted by this cgroup")),
        });
    }
    if let Some(want) = check.layer {
        let path = fill(check.path.as_deref().unwrap_or(""), values);
        let state = evidence::layer_state(&scene.upper, &scene.lower, &path);
        let state_name = |s: LayerState| serde_json::to_value(s).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        return Ok((state == want, format!("the layer: {}", state_name(state))));
    }
    if let Some(pattern) = &check.process {
        let Some(init) = scene.init else { return Ok((false, "the instance is not running".into())) };
        let Some(re) = regex(pattern, values) else { return Ok((false, "bad pattern".into())) };
        let processes = evidence::processes(init);
        let argv = |pid: i32| processes.iter().find(|p| p.pid == pid).map(|p| p.argv.join(" "));
        let parent_re = check.parent.as_ref().filter(|p| p.as_str() != "init").and_then(|p| regex(p, values));
        let found = processes.iter().filter(|p| re.is_match(&p.argv.join(" "))).find(|p| {
            let parent_ok = match check.parent.as_deref() {
                None => true,
                Some("init") => p.ppid == init,
                Some(_) => argv(p.ppid).is_some_and(|a| parent_re.as_ref().is_some_and(|re| re.is_match(&a))),
            };
            let state_ok = check.state.as_ref().is_none_or(|s| s.starts_with(p.state));
            parent_ok && state_ok
        });
        return Ok(match found {
            Some(p) => (true, format!("process {} ({})", p.pid, p.state)),
            None => (false, format!("no such process among {}", processes.len())),
        });
    }
    Ok((false, "nothing to check".into()))
}

/// Run every check of `lab` in `student`'s running instance.
pub fn grade(lab: &Lab, student: &str, state: &Path) -> Result<Report, GradeError> {
    let instance = super::instance_name(lab, student);
    let mut scene = Scene::open(state, &instance)?;
    if scene.init.is_none() {
        return Err(GradeError(format!("instance {instance} is not running\n  fix: sandbox lab start {} --name {student}", lab.id)));
    }
    // The evidence as it stood before the checks' own commands ran.
    scene.counted = scene.cgroup.as_ref().map(|(version, dirs)| evidence::counters(&scene.dir, &scene.run, *version, dirs));
    let values = values_for(lab, student, state, &scene)?;
    let checks = scene.tool_work(|| {
        let mut checks = Vec::new();
        for check in &lab.spec.checks {
            let (passed, seen) = run_check(check, &scene, &values)?;
            checks.push(CheckResult { id: check.id.clone(), title: check.title.clone(), hint: check.hint.clone(), passed, seen });
        }
        Ok::<_, GradeError>(checks)
    })?;
    let mut execs: Vec<_> = evidence::execs(&scene.dir).into_iter().filter(|e| e.by.is_none()).collect();
    execs.drain(..execs.len().saturating_sub(20));
    Ok(Report {
        lab: lab.id.clone(),
        student: student.to_string(),
        instance,
        cgroup: values.get("kernel.cgroup_version").cloned(),
        passed: checks.iter().all(|c| c.passed),
        checks,
        execs,
    })
}

/// Write the lab's files into the student's running instance, as the student
/// (so only where the student may write), with the student's values filled in.
pub fn place_files(lab: &Lab, student: &str, state: &Path) -> Result<(), GradeError> {
    let instance = super::instance_name(lab, student);
    let scene = Scene::open(state, &instance)?;
    let values = values_for(lab, student, state, &scene)?;
    scene.tool_work(|| {
        for file in &lab.spec.files {
            let path = fill(&file.path, &values);
            let content = fill(&file.content, &values);
            let mode = file.mode.clone().unwrap_or_else(|| "0644".into());
            let script = "mkdir -p \"$(dirname \"$1\")\" && cat > \"$1\" && chmod \"$2\" \"$1\"";
            let args: Vec<String> = ["/bin/sh", "-c", script, "place", &path, &mode].iter().map(|s| s.to_string()).collect();
            let ran = scene.inside(&args, content.as_bytes(), MAX_OUTPUT)?;
            if ran.status != Some(0) {
                return Err(GradeError(format!("placing {path} in {instance} failed")));
            }
        }
        Ok(())
    })?;
    // Where a lab of an extra folder came from, so that `reset` finds it again.
    let folder = match &lab.origin {
        super::Origin::Folder(dir) => dir.parent().map(|p| p.display().to_string()),
        super::Origin::Embedded(_) => None,
    };
    let stamp = serde_json::json!({ "lab": lab.id, "student": student, "labs": folder });
    std::fs::write(scene.dir.join("lab.json"), stamp.to_string())?;
    Ok(())
}

/// The lab an instance was started for by `lab start`, if any: (lab, student,
/// extra lab folder).
pub fn lab_of(instance_dir: &Path) -> Option<(String, String, Option<PathBuf>)> {
    let text = std::fs::read_to_string(instance_dir.join("lab.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let folder = value["labs"].as_str().map(PathBuf::from);
    Some((value["lab"].as_str()?.to_string(), value["student"].as_str()?.to_string(), folder))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_from_answers() {
        assert_eq!(first_number("0.48\n"), Some(0.48));
        assert_eq!(first_number("ratio: 0,5"), Some(0.5));
        assert_eq!(first_number("137"), Some(137.0));
        assert_eq!(first_number("none"), None);
    }

    #[test]
    fn excerpts_escape_what_a_terminal_would_obey() {
        let shown = excerpt(b"\x1b]0;pwned\x07\x1b[2J137");
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
        assert!(excerpt(&[b'x'; 100]).ends_with('…'));
    }
}
