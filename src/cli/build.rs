//! `sandbox build` and `sandbox check`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use termcolor::Color;

use super::output::{Failure, Stream, human_bytes, paint, stream};
use crate::profile::{self, Profile, Source};
use crate::resolve::{self, Manifest};
use crate::rootfs::lock::Lock;
use crate::rootfs::{Store, digest};

pub fn load(spec: &str) -> Result<Profile, Failure> {
    let cwd = std::env::current_dir()?;
    Ok(profile::load(spec, &cwd)?)
}

/// Where the lock file of a profile lives: beside its file, or in the current
/// directory for a ready profile.
pub fn lock_path(profile: &Profile) -> PathBuf {
    match &profile.source {
        Source::File(path) => path.with_extension("lock"),
        Source::Embedded(name) => PathBuf::from(format!("{name}.lock")),
        Source::Image(name) => crate::export::imported::images_dir(&crate::state::home()).join(format!("{name}.lock")),
    }
}

pub fn build(spec: &str, out: Option<&Path>, locked: bool, json: bool) -> Result<ExitCode, Failure> {
    let started = Instant::now();
    let profile = load(spec)?;
    let (manifest, dpkg) = resolve::resolve_profile(&profile)?;
    let store = Store::open(&crate::state::home())?;
    let progress = progress_bar(json);
    let hashes = store.hash_contents(&manifest, &progress)?;
    let digest = digest::digest(&manifest, &hashes);
    let lock_file = lock_path(&profile);
    // The lock is read first: when its digest matches, it is already right and
    // dpkg (slow to read) need not be asked which package each file came from.
    let existing = Lock::read(&lock_file);
    let current = existing.as_ref().is_ok_and(|l| l.digest == digest);
    if locked {
        let expected = existing.map_err(|e| Failure {
            message: format!("{e}\n  fix: run `sandbox build {spec}` once without --locked to write the lock file"),
        })?;
        if !current {
            let lock = Lock::new(&profile.name, &digest, &manifest, &hashes, &dpkg);
            return Err(Failure {
                message: format!(
                    "this host would give a different environment than {} (digest {} instead of {})\n{}  fix: install the package versions the lock names, or rebuild without --locked to accept the new files",
                    lock_file.display(),
                    digest::short(&digest),
                    digest::short(&expected.digest),
                    expected.diff(&lock, 10)
                ),
            });
        }
    }
    let built = store.build(&profile.name, &manifest, &hashes, started, &progress)?;
    if !current {
        write_lock(&lock_file, &Lock::new(&profile.name, &digest, &manifest, &hashes, &dpkg))?;
    }
    if let Some(out) = out {
        store.export(&manifest, &hashes, out).map_err(|e| Failure { message: format!("--out {}: {e}", out.display()) })?;
    }
    if json {
        println!("{}", serde_json::to_string(&built)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut stdout = stream(Stream::Stdout);
    paint(&mut stdout, Color::Green, true, if built.reused { "reused" } else { "built" })?;
    writeln!(
        stdout,
        " {} {}  ({} entries, {}, {:.2} s)",
        built.name,
        digest::short(&built.digest),
        built.entries,
        human_bytes(built.bytes),
        built.seconds
    )?;
    writeln!(stdout, "  digest: {}", built.digest)?;
    writeln!(stdout, "  path:   {}", built.path.display())?;
    writeln!(stdout, "  lock:   {}", lock_file.display())?;
    if let Some(out) = out {
        writeln!(stdout, "  copy:   {}", out.display())?;
    }
    print_notes(&manifest)?;
    Ok(ExitCode::SUCCESS)
}

pub fn check(spec: &str, json: bool) -> Result<ExitCode, Failure> {
    let profile = load(spec)?;
    let (manifest, _) = resolve::resolve_profile(&profile)?;
    if json {
        let report = serde_json::json!({
            "name": profile.name,
            "layers": profile.layers,
            "programs": profile.rootfs.binaries.len(),
            "entries": manifest.entries.len(),
            "bytes": manifest.files().filter_map(file_size).sum::<u64>(),
            "notes": manifest.notes.iter().map(|n| n.message.clone()).collect::<Vec<_>>(),
        });
        println!("{report}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut stdout = stream(Stream::Stdout);
    paint(&mut stdout, Color::Green, true, "ok")?;
    writeln!(
        stdout,
        " {} ({}): {} programs, {} entries, {} of files",
        profile.name,
        profile.layers.join(" > "),
        profile.rootfs.binaries.len(),
        manifest.entries.len(),
        human_bytes(manifest.files().filter_map(file_size).sum())
    )?;
    print_notes(&manifest)?;
    Ok(ExitCode::SUCCESS)
}

fn file_size(entry: &crate::resolve::Entry) -> Option<u64> {
    match &entry.kind {
        crate::resolve::Kind::File { source } => std::fs::metadata(source).ok().map(|m| m.len()),
        crate::resolve::Kind::Inline { content } => Some(content.len() as u64),
        _ => None,
    }
}

fn write_lock(path: &Path, lock: &Lock) -> Result<(), Failure> {
    let text = lock.to_toml();
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Failure { message: format!("{}: {e}", path.display()) })?;
    tmp.write_all(text.as_bytes())?;
    tmp.persist(path).map_err(|e| Failure { message: format!("{}: {}", path.display(), e.error) })?;
    Ok(())
}

fn print_notes(manifest: &Manifest) -> std::io::Result<()> {
    let mut err = stream(Stream::Stderr);
    for note in &manifest.notes {
        paint(&mut err, Color::Yellow, true, "note")?;
        writeln!(err, ": {}", note.message)?;
    }
    Ok(())
}

fn progress_bar(quiet: bool) -> indicatif::ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg:>8} [{bar:30}] {pos}/{len} files") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
