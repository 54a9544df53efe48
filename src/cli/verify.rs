//! `sandbox verify [PROFILE|--all]`: re-hash stored trees (and, with --all,
//! every blob) against their digests; exit 1 when something is corrupted.

use std::io::Write;
use std::process::ExitCode;

use termcolor::Color;

use super::output::{Failure, Stream, paint, stream};
use crate::rootfs::verify::Damage;
use crate::rootfs::{Store, digest, record};

/// How many problems are listed per tree before "... and N more".
const SHOWN: usize = 20;

pub fn verify(spec: Option<&str>, all: bool) -> Result<ExitCode, Failure> {
    let store = Store::open(&crate::state::home())?;
    let mut trees: Vec<(String, String)> = Vec::new();
    if all {
        for digest in store.digests() {
            let name = store.record(&digest).map(|r| r.name).unwrap_or_else(|| "?".into());
            trees.push((name, digest));
        }
    } else {
        let spec = spec.unwrap_or("shell");
        let profile = super::build::load(spec)?;
        let recorded = record::key(&profile).and_then(|key| store.recorded(&key));
        let Some((record, _)) = recorded else {
            return Err(Failure {
                message: format!(
                    "profile `{}` has no rootfs in the store (or it changed since it was built)\n  fix: run `sandbox build {spec}`",
                    profile.name
                ),
            });
        };
        trees.push((profile.name, record.digest));
    }
    let mut out = stream(Stream::Stdout);
    let mut corrupted = false;
    for (name, digest) in &trees {
        let damage = store.verify_tree(digest);
        corrupted |= !damage.is_empty();
        report(&mut out, &format!("{name} {}", digest::short(digest)), &damage)?;
    }
    if all {
        let damage = store.verify_blobs();
        corrupted |= !damage.is_empty();
        report(&mut out, "blobs", &damage)?;
    }
    if corrupted {
        writeln!(
            out,
            "fix: remove the damaged trees (store/rootfs/DIGEST and DIGEST.json) and the blobs listed, then `sandbox build` again"
        )?;
    }
    Ok(if corrupted { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn report(out: &mut termcolor::StandardStream, what: &str, damage: &[Damage]) -> std::io::Result<()> {
    if damage.is_empty() {
        paint(out, Color::Green, true, "ok")?;
        return writeln!(out, " {what}");
    }
    paint(out, Color::Red, true, "corrupted")?;
    writeln!(out, " {what}: {} problems", damage.len())?;
    for problem in damage.iter().take(SHOWN) {
        writeln!(out, "  {problem}")?;
    }
    if damage.len() > SHOWN {
        writeln!(out, "  ... and {} more", damage.len() - SHOWN)?;
    }
    Ok(())
}
