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
use crate::rootfs::{Store, digest, record};

pub fn load(spec: &str) -> Result<Profile, Failure> {
    let cwd = std::env::current_dir()?;
    Ok(profile::load(spec, &cwd)?)
}

/// Where the lock file of a profile lives: beside its file, or in the state
/// directory for a ready profile (never the current directory, which may be anyone's).
pub fn lock_path(profile: &Profile) -> PathBuf {
    match &profile.source {
        Source::File(path) => path.with_extension("lock"),
        Source::Embedded(name) => crate::state::home().join("store/locks").join(format!("{name}.lock")),
        Source::Image(name) => crate::export::imported::images_dir(&crate::state::home()).join(format!("{name}.lock")),
    }
}

/// The profile's rootfs, for `run`, `start`, `exec` and `lab`: from the store's
/// record when the profile and its lab files are unchanged (no resolving, the
/// host is not looked at), else resolved, built and recorded.
pub fn environment(profile: &Profile) -> Result<PathBuf, Failure> {
    let store = Store::open(&crate::state::home())?;
    let key = record::key(profile);
    if let Some((_, tree)) = key.as_deref().and_then(|key| store.recorded(key)) {
        return Ok(tree);
    }
    let (manifest, _) = resolve::resolve_profile(profile)?;
    let hidden = indicatif::ProgressBar::hidden();
    let hashes = store.hash_contents(&manifest, &hidden)?;
    let built = store.build(&profile.name, &manifest, &hashes, Instant::now(), &hidden)?;
    if let Some(key) = key {
        store.remember(&key, &profile.name, &built.digest)?;
    }
    Ok(built.path)
}

pub fn build(spec: &str, out: Option<&Path>, locked: bool, json: bool) -> Result<ExitCode, Failure> {
    let started = Instant::now();
    let profile = load(spec)?;
    // The key first: the lab files as they are before they are read.
    let key = record::key(&profile);
    let (manifest, dpkg) = resolve::resolve_profile(&profile)?;
    resolve::command::check(&profile, &manifest)?;
    let store = Store::open(&crate::state::home())?;
    let previous = key.as_deref().and_then(|key| store.recorded(key)).map(|(record, _)| record);
    let progress = progress_bar(json);
    let hashes = store.hash_contents(&manifest, &progress)?;
    let digest = digest::digest(&manifest, &hashes);
    let lock_file = lock_path(&profile);
    // The lock is read first: when its digest matches, it is already right and
    // dpkg (slow to read) need not be asked which package each file came from.
    let existing = Lock::read(&lock_file);
    let current = existing.as_ref().is_ok_and(|l| l.digest == digest);
    if locked {
        let expected = existing.as_ref().map_err(|e| Failure {
            message: format!("{e}\n  fix: run `sandbox build {spec}` once without --locked to write the lock file"),
        })?;
        if !current {
            let lock = Lock::new(&profile.name, &digest, &manifest, &hashes, &dpkg);
            return Err(Failure {
                message: format!(
                    "this host would give a different environment than {} (digest {} instead of {})\n{}  fix: {}",
                    lock_file.display(),
                    digest::short(&digest),
                    digest::short(&expected.digest),
                    expected.diff(&lock, 10),
                    locked_fix(&manifest, &expected.differing(&lock)),
                ),
            });
        }
    }
    let built = store.build(&profile.name, &manifest, &hashes, started, &progress)?;
    if locked && built.reused {
        // The lock proves the host; this proves the store still holds what was built.
        let damage = store.verify_tree(&built.digest);
        if !damage.is_empty() {
            let list: Vec<String> = damage.iter().take(10).map(|d| format!("  {d}\n")).collect();
            return Err(Failure {
                message: format!(
                    "the stored rootfs {} is corrupted ({} problems):\n{}  fix: run `sandbox verify --all`, remove what it lists, and build again",
                    built.path.display(),
                    damage.len(),
                    list.concat()
                ),
            });
        }
    }
    let lock = (!current).then(|| Lock::new(&profile.name, &digest, &manifest, &hashes, &dpkg));
    if let Some(lock) = &lock {
        write_lock(&lock_file, lock)?;
    }
    if let Some(key) = &key {
        store.remember(key, &profile.name, &built.digest)?;
    }
    let changed = previous.filter(|p| p.digest != built.digest).map(|p| {
        let before = match &existing {
            Ok(old) if old.digest == p.digest => Some(old.diff(lock.as_ref().unwrap_or(old), 10)),
            _ => store.record(&p.digest).map(|old| {
                Lock::new(&profile.name, &p.digest, &old.manifest, &old.hashes, &dpkg)
                    .diff(&Lock::new(&profile.name, &digest, &manifest, &hashes, &dpkg), 10)
            }),
        };
        (p.digest, before.unwrap_or_default())
    });
    if let Some(out) = out {
        store.export(&manifest, &hashes, out).map_err(|e| Failure { message: format!("--out {}: {e}", out.display()) })?;
    }
    if json {
        writeln!(stream(Stream::Stdout), "{}", serde_json::to_string(&built)?)?;
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
    if let Some((before, diff)) = changed {
        paint(&mut stdout, Color::Yellow, true, "changed")?;
        writeln!(
            stdout,
            " since the last build of this profile ({} -> {}): `run`, `start` and `lab` now use the new environment; {diff}",
            digest::short(&before),
            digest::short(&built.digest)
        )?;
    }
    print_notes(&manifest)?;
    Ok(ExitCode::SUCCESS)
}

pub fn check(spec: &str, json: bool) -> Result<ExitCode, Failure> {
    let profile = load(spec)?;
    let (manifest, _) = resolve::resolve_profile(&profile)?;
    resolve::command::check(&profile, &manifest)?;
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

/// What to do when `--locked` fails: name the lab files that changed, if any
/// did (they are the teacher's to restore), else point at the host's packages.
fn locked_fix(manifest: &Manifest, differing: &[PathBuf]) -> String {
    let lab: Vec<String> = differing
        .iter()
        .filter_map(|path| match &manifest.get(path)?.reason {
            resolve::Reason::LabFile { origin, .. } => Some(format!("{} (from {origin})", resolve::error::shown(path))),
            _ => None,
        })
        .collect();
    let accept = "or rebuild without --locked to accept the new files";
    match lab.len() {
        0 => format!("install the package versions the lock names, {accept}"),
        _ => format!("the lab files {} changed: restore them, {accept}", lab.join(", ")),
    }
}

fn file_size(entry: &crate::resolve::Entry) -> Option<u64> {
    match &entry.kind {
        crate::resolve::Kind::File { source } => std::fs::metadata(source).ok().map(|m| m.len()),
        crate::resolve::Kind::Inline { content } => Some(content.len() as u64),
        crate::resolve::Kind::Data { content } => Some(content.len() as u64),
        _ => None,
    }
}

fn write_lock(path: &Path, lock: &Lock) -> Result<(), Failure> {
    let text = lock.to_toml();
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let failed = |e: std::io::Error| Failure {
        message: format!(
            "cannot write the lock file {}: {}\n  fix: make its directory writable",
            path.display(),
            resolve::error::io_cause(&e)
        ),
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    tmp.write_all(text.as_bytes()).map_err(failed)?;
    tmp.persist(path).map_err(|e| failed(e.error))?;
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
