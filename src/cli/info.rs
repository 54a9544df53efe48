//! `sandbox profiles` and `sandbox doctor`.

use std::io::Write;
use std::process::ExitCode;

use termcolor::Color;

use super::output::{Failure, Stream, paint, stream};

pub fn profiles() -> Result<ExitCode, Failure> {
    let mut out = stream(Stream::Stdout);
    let cwd = std::env::current_dir()?;
    for ready in crate::profile::ready() {
        let profile = crate::profile::load(ready.name, &cwd)?;
        paint(&mut out, Color::Cyan, true, &format!("{:<8}", ready.name))?;
        let parents = &profile.layers[..profile.layers.len().saturating_sub(1)];
        let extends = if parents.is_empty() { String::new() } else { format!("  (extends {})", parents.join(" > ")) };
        writeln!(out, " {}{extends}", profile.description.as_deref().unwrap_or(""))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit status 0 when nothing is missing, 1 when something is (so scripts can
/// check a machine before class), the tool's own failures 125.
pub fn doctor(json: bool) -> Result<ExitCode, Failure> {
    let report = crate::doctor::report();
    if json {
        writeln!(stream(Stream::Stdout), "{}", serde_json::to_string(&report)?)?;
    } else {
        crate::doctor::render(&report, &mut stream(Stream::Stdout))?;
    }
    let missing = report.checks.iter().any(|c| c.status == crate::doctor::Status::Missing);
    Ok(if missing { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `sandbox gc`: remove what crashed runs left behind: cgroups of supervisors
/// that are gone, and build directories abandoned in the store for an hour.
pub fn gc() -> Result<ExitCode, Failure> {
    let mut out = stream(Stream::Stdout);
    let mut removed = 0;
    if let Ok(layout) = crate::cgroup::detect() {
        for dir in crate::cgroup::remove_leftovers(&layout)? {
            writeln!(out, "removed cgroup {}", dir.display())?;
            removed += 1;
        }
    }
    removed += super::instances::gc_instances(&mut out)?;
    let tmp = crate::state::home().join("store/tmp");
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
        let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < hour_ago);
        if old {
            std::fs::remove_dir_all(entry.path())?;
            writeln!(out, "removed abandoned build {}", entry.path().display())?;
            removed += 1;
        }
    }
    if removed == 0 {
        writeln!(out, "nothing to remove")?;
    }
    Ok(ExitCode::SUCCESS)
}
