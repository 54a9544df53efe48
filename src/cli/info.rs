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
        println!("{}", serde_json::to_string(&report)?);
    } else {
        crate::doctor::render(&report, &mut stream(Stream::Stdout))?;
    }
    let missing = report.checks.iter().any(|c| c.status == crate::doctor::Status::Missing);
    Ok(if missing { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
