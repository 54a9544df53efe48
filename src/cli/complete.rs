//! Shell completion: the script `sandbox completions SHELL` prints asks the
//! binary itself (clap_complete's `COMPLETE=SHELL sandbox ...` protocol), so
//! it offers the names only the tool knows: ready profiles, imported images
//! and profile files here; instances; labs. Hidden flags are never offered.

use std::ffi::OsStr;
use std::process::ExitCode;

use clap_complete::engine::{ArgValueCandidates, ArgValueCompleter, CompletionCandidate, PathCompleter, ValueCompleter};

use super::Failure;

/// PROFILE: a ready profile, an imported image, or a `.toml` file (paths as the shell would complete them).
pub fn profiles() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        let prefix = current.to_string_lossy();
        let mut out: Vec<CompletionCandidate> = Vec::new();
        if !prefix.contains('/') {
            for ready in crate::profile::ready() {
                let help = crate::profile::load(ready.name, std::path::Path::new("/")).ok().and_then(|p| p.description);
                out.push(CompletionCandidate::new(ready.name).help(help.map(Into::into)));
            }
            for name in crate::export::imported::ImageRecord::names(&crate::state::home()) {
                out.push(CompletionCandidate::new(name).help(Some("an imported image".into())));
            }
            out.retain(|c| c.get_value().to_string_lossy().starts_with(prefix.as_ref()));
        }
        let files = PathCompleter::any().filter(|path| path.is_dir() || path.extension().is_some_and(|e| e == "toml"));
        out.extend(files.complete(current).into_iter().filter(|c| !prefix.is_empty() || c.get_value().to_string_lossy().contains('/')));
        out
    })
}

/// NAME of an instance.
pub fn instances() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        crate::instance::all(&crate::state::home()).into_iter().map(|instance| CompletionCandidate::new(instance.name)).collect()
    })
}

/// LAB: folder names of the labs.
pub fn labs() -> ArgValueCandidates {
    ArgValueCandidates::new(|| crate::lab::all(None).unwrap_or_default().into_iter().map(|lab| CompletionCandidate::new(lab.id)).collect())
}

/// `sandbox completions SHELL`: the registration script for that shell.
pub fn registration(shell: &str) -> Result<ExitCode, Failure> {
    let shells = clap_complete::env::Shells::builtins();
    let completer = shells.completer(shell).ok_or_else(|| Failure { message: format!("no completion for the shell `{shell}`") })?;
    // The script calls the binary by the name the shell completes: `sandbox`, on PATH.
    let mut out = Vec::new();
    completer.write_registration("COMPLETE", "sandbox", "sandbox", "sandbox", &mut out)?;
    std::io::Write::write_all(&mut std::io::stdout(), &out)?;
    Ok(ExitCode::SUCCESS)
}
