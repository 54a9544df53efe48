//! Compiled locales: which file holds a locale's data on this host.
//!
//! glibc looks for a locale first as a directory `/usr/lib/locale/<name>`, then
//! in the single archive `/usr/lib/locale/locale-archive` that `locale-gen`
//! writes on Debian. The archive's name table is read here to tell whether it
//! holds the locale, so a missing one is an error at build time, not mojibake
//! in class.

use std::fs;
use std::path::{Path, PathBuf};

pub const LOCALE_DIR: &str = "/usr/lib/locale";
pub const ARCHIVE: &str = "/usr/lib/locale/locale-archive";

/// glibc's normalized codeset: `UTF-8` -> `utf8` (lowercase, only alphanumerics).
pub fn normalize(locale: &str) -> String {
    match locale.split_once('.') {
        None => locale.to_string(),
        Some((lang, rest)) => {
            let (codeset, modifier) = match rest.split_once('@') {
                Some((c, m)) => (c, Some(m)),
                None => (rest, None),
            };
            let mut name = format!("{lang}.{}", codeset.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase());
            if let Some(m) = modifier {
                name = format!("{name}@{m}");
            }
            name
        }
    }
}

/// The language part for message catalogs: `ko_KR.UTF-8` -> [`ko_KR`, `ko`].
pub fn message_languages(locale: &str) -> Vec<String> {
    let base = locale.split(['.', '@']).next().unwrap_or(locale);
    let mut out = vec![base.to_string()];
    if let Some((lang, _)) = base.split_once('_') {
        out.push(lang.to_string());
    }
    out
}

pub enum Found {
    /// Always available in glibc, nothing to copy.
    BuiltIn,
    Directory(PathBuf),
    Archive(PathBuf),
}

/// Where `locale` is on the host rooted at `root`, or None.
pub fn find(root: &Path, locale: &str) -> Option<Found> {
    if locale == "C" || locale == "POSIX" {
        return Some(Found::BuiltIn);
    }
    for name in [locale.to_string(), normalize(locale)] {
        let dir = Path::new(LOCALE_DIR).join(&name);
        if root.join(dir.strip_prefix("/").ok()?).is_dir() {
            return Some(Found::Directory(dir));
        }
    }
    let archive = fs::read(root.join(&ARCHIVE[1..])).ok()?;
    let wanted = normalize(locale);
    archive_names(&archive).iter().any(|n| *n == wanted || *n == locale).then(|| Found::Archive(ARCHIVE.into()))
}

/// Names in a locale-archive (glibc's `struct locarhead` then `struct namehashent`).
pub fn archive_names(data: &[u8]) -> Vec<String> {
    let u32_at = |off: usize| data.get(off..off + 4).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize);
    const MAGIC: usize = 0xde02_0109;
    if u32_at(0) != Some(MAGIC) {
        return Vec::new();
    }
    // locarhead: magic, serial, namehash_offset, namehash_used, namehash_size, ...
    let (Some(table), Some(size)) = (u32_at(8), u32_at(16)) else { return Vec::new() };
    let mut names = Vec::new();
    for i in 0..size.min(1 << 20) {
        // namehashent: hashval, name_offset, locrec_offset
        let Some(name_offset) = u32_at(table + i * 12 + 4) else { break };
        if name_offset == 0 {
            continue;
        }
        let Some(tail) = data.get(name_offset..) else { continue };
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        if let Ok(name) = std::str::from_utf8(&tail[..end]) {
            names.push(name.to_string());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_glibc() {
        assert_eq!(normalize("ko_KR.UTF-8"), "ko_KR.utf8");
        assert_eq!(normalize("de_DE.ISO-8859-15@euro"), "de_DE.iso885915@euro");
        assert_eq!(normalize("C"), "C");
        assert_eq!(message_languages("ko_KR.UTF-8"), ["ko_KR", "ko"]);
    }

    #[test]
    fn archive_parser_survives_garbage() {
        assert!(archive_names(b"").is_empty());
        let mut junk = 0xde02_0109u32.to_ne_bytes().to_vec();
        junk.extend_from_slice(&[0xff; 40]);
        assert!(archive_names(&junk).is_empty());
    }

    #[test]
    fn host_archive_lists_its_locales() {
        let Ok(data) = fs::read(ARCHIVE) else {
            eprintln!("skipped: no {ARCHIVE} on this host");
            return;
        };
        let names = archive_names(&data);
        assert!(!names.is_empty(), "an existing archive holds at least one locale");
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_graphic())), "{names:?}");
    }
}
