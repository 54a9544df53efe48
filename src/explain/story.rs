//! `explain --build`: how the rootfs was assembled, told from the manifest's
//! own reasons (the ones `sandbox why` prints).

use std::collections::BTreeMap;
use std::io;

use super::render::Narrator;
use crate::resolve::{Kind, Manifest, Reason};

fn size(entry: &crate::resolve::Entry) -> u64 {
    match &entry.kind {
        Kind::File { source } => std::fs::metadata(source).map(|m| m.len()).unwrap_or(0),
        Kind::Inline { content } => content.len() as u64,
        Kind::Data { content } => content.len() as u64,
        _ => 0,
    }
}

pub fn tell(narrator: &mut Narrator, manifest: &Manifest, digest: Option<&str>) -> io::Result<()> {
    let catalog = narrator.catalog;
    narrator.section(catalog.text("build_title"))?;
    narrator.section(catalog.text("build_programs"))?;
    for entry in manifest.entries.values() {
        match &entry.reason {
            Reason::Binary { name, origin } => narrator.line(name, &format!("{}  ({origin})", entry.path.display()))?,
            Reason::Interpreter { of } => narrator.line("PT_INTERP", &format!("{} <- {}", entry.path.display(), of.display()))?,
            Reason::Shebang { of } => narrator.line("#!", &format!("{} <- {}", entry.path.display(), of.display()))?,
            _ => {}
        }
    }
    narrator.section(catalog.text("build_libraries"))?;
    for entry in manifest.entries.values() {
        if let Reason::Needed { of, how } = &entry.reason {
            let name = entry.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let of_name = of.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            narrator.paragraph(&format!("{name}  <- {of_name}: {how}"))?;
        }
    }
    narrator.section(catalog.text("build_rules"))?;
    let mut rules: BTreeMap<&str, (usize, u64, &str, Option<&std::path::Path>)> = BTreeMap::new();
    for entry in manifest.entries.values() {
        if let Reason::Rule { rule, why, trigger } = &entry.reason {
            let slot = rules.entry(rule).or_insert((0, 0, why, trigger.as_deref()));
            slot.0 += 1;
            slot.1 += size(entry);
        }
    }
    for (rule, (count, bytes, why, trigger)) in rules {
        let by = trigger.map(|t| format!(" ({})", t.display())).unwrap_or_default();
        narrator.line(rule, &format!("{count} entries, {} KiB{by}", bytes / 1024))?;
        narrator.paragraph(why)?;
    }
    narrator.section(catalog.text("build_totals"))?;
    let files = manifest.files().count();
    let bytes: u64 = manifest.files().map(size).sum();
    narrator.paragraph(&format!("{} entries, {files} files, {:.1} MiB", manifest.entries.len(), bytes as f64 / 1048576.0))?;
    if let Some(digest) = digest {
        narrator.paragraph(&format!("digest {digest}"))?;
    }
    Ok(())
}
