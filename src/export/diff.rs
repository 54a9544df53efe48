//! What one image layer holds: the entries a level adds or changes over its
//! parent, and OCI whiteouts (`.wh.NAME`) for what it no longer has.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::resolve::{Entry, Kind, Manifest};
use crate::rootfs::digest::ContentHashes;

/// One member of a layer tar, keyed in the layer by its path inside.
#[derive(Clone, Debug, PartialEq)]
pub enum Change<'a> {
    /// Write this entry (new, changed, or a directory that holds one).
    Put(&'a Entry),
    /// An empty `.wh.NAME` file: the lower layers' NAME is deleted.
    Whiteout,
}

/// A manifest with the content hashes of its files.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    pub manifest: &'a Manifest,
    pub hashes: &'a ContentHashes,
}

/// The members of the layer that turns `lower` into `upper` (everything of
/// `upper` when there is no lower layer), sorted by path: a BTreeMap of paths
/// orders each directory before what it holds, and the same way every time.
pub fn layer<'a>(lower: Option<Side<'_>>, upper: Side<'a>) -> BTreeMap<PathBuf, Change<'a>> {
    let mut members = BTreeMap::new();
    for entry in upper.manifest.entries.values() {
        let unchanged = lower.is_some_and(|lower| same(lower, upper, entry));
        if !unchanged {
            members.insert(entry.path.clone(), Change::Put(entry));
        }
    }
    if let Some(lower) = lower {
        for path in lower.manifest.entries.keys() {
            if let Some(whiteout) = whiteout_for(path, lower.manifest, upper.manifest) {
                members.insert(whiteout, Change::Whiteout);
            }
        }
    }
    add_parents(&mut members, upper.manifest);
    members
}

/// True when `entry` of `upper` is in `lower` with the same kind, content,
/// mode, owner and capability: the lower layer already provides it.
fn same(lower: Side, upper: Side, entry: &Entry) -> bool {
    let Some(old) = lower.manifest.get(&entry.path) else { return false };
    let content_same = match (&old.kind, &entry.kind) {
        (Kind::File { .. } | Kind::Inline { .. } | Kind::Data { .. }, Kind::File { .. } | Kind::Inline { .. } | Kind::Data { .. }) => {
            lower.hashes.get(&entry.path).is_some() && lower.hashes.get(&entry.path) == upper.hashes.get(&entry.path)
        }
        (a, b) => a == b,
    };
    content_same && old.mode == entry.mode && old.uid == entry.uid && old.gid == entry.gid && old.capability == entry.capability
}

/// The whiteout that deletes `path` of the lower layers, if one is needed: not
/// when `upper` still has it (a changed entry replaces it), and not when a
/// deleted or replaced parent already takes it away.
fn whiteout_for(path: &Path, lower: &Manifest, upper: &Manifest) -> Option<PathBuf> {
    if upper.entries.contains_key(path) {
        return None;
    }
    let parent = path.parent()?;
    let parent_still_dir = matches!(upper.get(parent), Some(Entry { kind: Kind::Dir, .. }))
        && matches!(lower.get(parent), Some(Entry { kind: Kind::Dir, .. }));
    if !parent_still_dir {
        return None;
    }
    let mut name = std::ffi::OsString::from(".wh.");
    name.push(path.file_name()?);
    Some(parent.join(name))
}

/// The directories above every member, as `upper` has them, so each member's
/// directory exists with the right mode and owner whatever extracts the layer.
fn add_parents<'a>(members: &mut BTreeMap<PathBuf, Change<'a>>, upper: &'a Manifest) {
    let paths: Vec<PathBuf> = members.keys().cloned().collect();
    for path in paths {
        for ancestor in path.ancestors().skip(1) {
            if ancestor == Path::new("/") || members.contains_key(ancestor) {
                break;
            }
            if let Some(dir) = upper.get(ancestor) {
                members.insert(ancestor.to_path_buf(), Change::Put(dir));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::Reason;

    fn entry(path: &str, kind: Kind, mode: u32) -> Entry {
        Entry { path: path.into(), kind, mode, uid: 0, gid: 0, capability: None, reason: Reason::Skeleton { why: "test".into() } }
    }

    fn manifest(entries: Vec<Entry>) -> (Manifest, ContentHashes) {
        let mut m = Manifest::default();
        let mut hashes = ContentHashes::new();
        for e in entries {
            if let Kind::Inline { content } = &e.kind {
                hashes.insert(e.path.clone(), crate::rootfs::digest::sha256_hex(content.as_bytes()));
            }
            m.entries.insert(e.path.clone(), e);
        }
        (m, hashes)
    }

    fn file(path: &str, content: &str) -> Entry {
        entry(path, Kind::Inline { content: content.into() }, 0o644)
    }

    fn dir(path: &str) -> Entry {
        entry(path, Kind::Dir, 0o755)
    }

    fn names(members: &BTreeMap<PathBuf, Change>) -> Vec<String> {
        members.iter().map(|(p, c)| format!("{}{}", p.display(), if matches!(c, Change::Whiteout) { " (wh)" } else { "" })).collect()
    }

    #[test]
    fn base_layer_holds_everything_in_path_order() {
        let (m, h) = manifest(vec![dir("/"), dir("/etc"), file("/etc/passwd", "root"), dir("/a b"), dir("/a")]);
        let members = layer(None, Side { manifest: &m, hashes: &h });
        assert_eq!(names(&members), ["/", "/a", "/a b", "/etc", "/etc/passwd"]);
    }

    #[test]
    fn child_layer_has_changes_their_parents_and_whiteouts() {
        let (low, low_h) = manifest(vec![
            dir("/"),
            dir("/etc"),
            file("/etc/passwd", "student"),
            file("/etc/hosts", "same"),
            dir("/home"),
            dir("/home/student"),
            file("/home/student/notes", "x"),
            dir("/usr"),
        ]);
        let (up, up_h) = manifest(vec![
            dir("/"),
            dir("/etc"),
            file("/etc/passwd", "teacher"),
            file("/etc/hosts", "same"),
            dir("/home"),
            dir("/home/teacher"),
            dir("/usr"),
            dir("/usr/bin"),
            file("/usr/bin/ping", "elf"),
        ]);
        let members = layer(Some(Side { manifest: &low, hashes: &low_h }), Side { manifest: &up, hashes: &up_h });
        assert_eq!(
            names(&members),
            ["/etc", "/etc/passwd", "/home", "/home/.wh.student (wh)", "/home/teacher", "/usr", "/usr/bin", "/usr/bin/ping"],
            "the deleted directory's file needs no whiteout of its own; unchanged /etc/hosts is not repeated"
        );
    }

    #[test]
    fn a_mode_owner_or_capability_change_is_a_change() {
        let (low, low_h) = manifest(vec![dir("/"), file("/f", "x"), file("/g", "y")]);
        let mut f = file("/f", "x");
        f.mode = 0o755;
        let mut g = file("/g", "y");
        g.capability = Some(vec![1, 2]);
        let (up, up_h) = manifest(vec![dir("/"), f, g]);
        let members = layer(Some(Side { manifest: &low, hashes: &low_h }), Side { manifest: &up, hashes: &up_h });
        assert_eq!(names(&members), ["/f", "/g"]);
    }

    #[test]
    fn a_directory_replaced_by_a_link_takes_its_children_without_whiteouts() {
        let (low, low_h) = manifest(vec![dir("/"), dir("/lib"), file("/lib/x", "x")]);
        let (up, up_h) = manifest(vec![dir("/"), entry("/lib", Kind::Symlink { target: "usr/lib".into() }, 0o777)]);
        let members = layer(Some(Side { manifest: &low, hashes: &low_h }), Side { manifest: &up, hashes: &up_h });
        assert_eq!(names(&members), ["/lib"]);
    }
}
