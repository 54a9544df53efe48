//! `sandbox why PATH [PROFILE]`: the chain of reasons that put a file in.

use std::io::Write;
use std::process::ExitCode;

use termcolor::Color;

use super::output::{Failure, Stream, paint, stream};
use crate::resolve;

pub fn why(path: &str, spec: &str, json: bool) -> Result<ExitCode, Failure> {
    let profile = super::build::load(spec)?;
    let (manifest, _) = resolve::resolve_profile(&profile)?;
    // Follow the rootfs's links on the way (/lib -> usr/lib), not the file's own:
    // a library's soname link has a reason of its own. `..` is taken inside the rootfs.
    let located = manifest.locate_named(path).ok_or_else(|| Failure {
        message: format!(
            "`{}` is not an absolute path inside the rootfs\n  fix: give a path that starts with `/`, such as /usr/bin/ls",
            path.escape_debug()
        ),
    })?;
    if manifest.get(&located).is_none() {
        return Err(Failure {
            message: format!(
                "`{path}` is not in the rootfs of profile `{}`\n  fix: add it to the profile (`files = [\"{path}\"]`, or the program that needs it to `binaries`)",
                profile.name
            ),
        });
    }
    if json {
        let reasons: Vec<serde_json::Value> = manifest
            .why(&located)
            .into_iter()
            .map(|entry| serde_json::json!({ "path": entry.path, "reason": entry.reason.to_string() }))
            .collect();
        println!("{}", serde_json::json!({ "path": path, "located": located, "reasons": reasons }));
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = stream(Stream::Stdout);
    paint(&mut out, Color::Cyan, true, &located.display().to_string())?;
    if located.to_str() != Some(path) {
        write!(out, "  (as {path}, through the rootfs's symlinks)")?;
    }
    writeln!(out)?;
    for entry in manifest.why(&located) {
        write!(out, "  <- ")?;
        writeln!(out, "{}", entry.reason)?;
    }
    Ok(ExitCode::SUCCESS)
}
