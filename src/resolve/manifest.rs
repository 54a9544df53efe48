//! The manifest: the exact list of entries a rootfs will hold, each with the
//! reason it is there. Pure data; building it reads the host, materializing it
//! is `rootfs`'s job.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::profile::Origin;

/// What an entry is made of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Kind {
    Dir,
    /// A regular file copied from the host.
    File {
        #[serde(with = "super::bytepath::one")]
        source: PathBuf,
    },
    /// A regular file whose content the tool writes (passwd, lab files written inline).
    Inline {
        content: String,
    },
    /// A regular file of bytes the tool writes that are not text (the rootfs's
    /// own /etc/ld.so.cache), kept in hex in records.
    Data {
        #[serde(with = "hex_bytes")]
        content: Vec<u8>,
    },
    /// A symbolic link, kept as a link with its target exactly as on the host.
    Symlink {
        #[serde(with = "super::bytepath::one")]
        target: PathBuf,
    },
    /// A character device (/dev/null): what a plain chroot needs, as jailkit
    /// makes them. Namespace mode mounts its own /dev over these.
    Device {
        major: u32,
        minor: u32,
    },
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Dir => "dir",
            Kind::File { .. } | Kind::Inline { .. } | Kind::Data { .. } => "file",
            Kind::Symlink { .. } => "symlink",
            Kind::Device { .. } => "chardev",
        }
    }
}

/// Why an entry is in the rootfs. Each reason but the roots points at the entry
/// that pulled this one in, so `sandbox why` can print the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Reason {
    /// Named in `binaries`.
    Binary { name: String, origin: Origin },
    /// Named in `files`.
    ProfileFile { origin: Origin },
    /// A lab file from `[[rootfs.copy]]` or `[[rootfs.write]]`; `special` says
    /// what became of its setuid/setgid bits and capabilities, when it had any.
    LabFile {
        origin: Origin,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        special: Option<String>,
    },
    /// The PT_INTERP of an ELF file: the dynamic loader the kernel starts first.
    Interpreter {
        #[serde(with = "super::bytepath::one")]
        of: PathBuf,
    },
    /// A DT_NEEDED library, and where the search found it.
    Needed {
        #[serde(with = "super::bytepath::one")]
        of: PathBuf,
        how: String,
    },
    /// The `#!` interpreter of a script.
    Shebang {
        #[serde(with = "super::bytepath::one")]
        of: PathBuf,
    },
    /// A program a shell script runs: a command word on `line` of the script.
    Script {
        #[serde(with = "super::bytepath::one")]
        of: PathBuf,
        line: u32,
    },
    /// The target of a symlink that is in the rootfs.
    LinkTarget {
        #[serde(with = "super::bytepath::one")]
        of: PathBuf,
    },
    /// A runtime-file rule fired (NSS, terminfo, a Python standard library, ...).
    Rule {
        rule: String,
        why: String,
        #[serde(default, with = "super::bytepath::optional")]
        trigger: Option<PathBuf>,
    },
    /// A locale or time zone named in the profile.
    Requested { what: String, origin: Origin },
    /// The skeleton every rootfs has (/proc, /tmp, /etc/passwd, ...).
    Skeleton { why: String },
    /// A directory that holds another entry.
    Parent {
        #[serde(with = "super::bytepath::one")]
        of: PathBuf,
    },
}

impl Reason {
    /// The profile line of a root reason (a binary, a file, a lab file, a locale...).
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            Reason::Binary { origin, .. }
            | Reason::ProfileFile { origin }
            | Reason::LabFile { origin, .. }
            | Reason::Requested { origin, .. } => Some(origin),
            _ => None,
        }
    }

    /// The entry that caused this one, if any.
    pub fn cause(&self) -> Option<&Path> {
        match self {
            Reason::Interpreter { of }
            | Reason::Needed { of, .. }
            | Reason::Shebang { of }
            | Reason::Script { of, .. }
            | Reason::LinkTarget { of }
            | Reason::Parent { of } => Some(of),
            Reason::Rule { trigger, .. } => trigger.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Binary { name, origin } => write!(f, "binaries = [\"{name}\"] in {origin}"),
            Reason::ProfileFile { origin } => write!(f, "files in {origin}"),
            Reason::LabFile { origin, special: None } => write!(f, "lab file from {origin}"),
            Reason::LabFile { origin, special: Some(special) } => write!(f, "lab file from {origin} ({special})"),
            Reason::Interpreter { of } => write!(f, "PT_INTERP (dynamic loader) of {}", of.display()),
            Reason::Needed { of, how } => write!(f, "DT_NEEDED of {} ({how})", of.display()),
            Reason::Shebang { of } => write!(f, "#! interpreter of {}", of.display()),
            Reason::Script { of, line } => write!(f, "run by the script {} (line {line})", of.display()),
            Reason::LinkTarget { of } => write!(f, "target of symlink {}", of.display()),
            Reason::Rule { rule, why, trigger } => match trigger {
                Some(t) => write!(f, "rule `{rule}`: {why} (because of {})", t.display()),
                None => write!(f, "rule `{rule}`: {why}"),
            },
            Reason::Requested { what, origin } => write!(f, "{what} in {origin}"),
            Reason::Skeleton { why } => write!(f, "skeleton: {why}"),
            Reason::Parent { of } => write!(f, "directory of {}", of.display()),
        }
    }
}

/// One file, directory or link of the rootfs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Absolute, normalized, inside the rootfs.
    #[serde(with = "super::bytepath::one")]
    pub path: PathBuf,
    #[serde(flatten)]
    pub kind: Kind,
    /// Permission and special bits (setuid, setgid, sticky), no file type.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The `security.capability` extended attribute, as on the host (ping's cap_net_raw).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_opt")]
    pub capability: Option<Vec<u8>>,
    pub reason: Reason,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex::decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

mod hex_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| hex::decode(s).map_err(serde::de::Error::custom)).transpose()
    }
}

/// A note for the person building: a wrapper script, a missing optional file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub message: String,
}

/// All entries by path. A BTreeMap of `PathBuf` orders by component, so every
/// directory comes before what it holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(with = "super::bytepath::keys")]
    pub entries: BTreeMap<PathBuf, Entry>,
    pub notes: Vec<Note>,
}

impl Manifest {
    pub fn get(&self, path: &Path) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// The chain of reasons that put `path` in, from the file itself to a root cause.
    pub fn why(&self, path: &Path) -> Vec<&Entry> {
        let mut chain = Vec::new();
        let mut next = self.entries.get(path);
        while let Some(entry) = next {
            if chain.iter().any(|e: &&Entry| e.path == entry.path) {
                break; // a loop of reasons (cannot happen by construction, but never spin)
            }
            chain.push(entry);
            next = entry.reason.cause().and_then(|p| self.entries.get(p));
        }
        chain
    }

    /// Where an absolute path lands inside, following the symlinks of this
    /// manifest (never the host's), with `..` clamped at the root as the kernel
    /// does. None for a relative path or a loop of links.
    pub fn locate(&self, path: &str) -> Option<PathBuf> {
        let mut rest: std::collections::VecDeque<PathBuf> = components(&normalize_inside(path)?).into();
        let mut current = PathBuf::from("/");
        let mut links = 0;
        while let Some(component) = rest.pop_front() {
            let candidate = current.join(&component);
            if let Some(Entry { kind: Kind::Symlink { target }, .. }) = self.entries.get(&candidate) {
                links += 1;
                if links > 40 {
                    return None;
                }
                let mut resolved: std::collections::VecDeque<PathBuf> = components(&lexical_join(&current, target)).into();
                resolved.extend(rest.drain(..));
                rest = resolved;
                current = PathBuf::from("/");
            } else {
                current = candidate;
            }
        }
        Some(current)
    }

    /// The entry an absolute path a person typed names (`sandbox why`): the
    /// links on the way are followed inside the manifest, the last component
    /// is not (a soname link has a reason of its own), and `..` goes up from
    /// where the links led, clamped at `/`, as the kernel does inside a chroot.
    /// `/` is the root directory. None for a relative path or a loop of links.
    pub fn locate_named(&self, path: &str) -> Option<PathBuf> {
        if !path.starts_with('/') || path.contains('\0') {
            return None;
        }
        let mut rest: std::collections::VecDeque<Component> = Path::new(path).components().collect();
        let mut current = PathBuf::from("/");
        let mut links = 0;
        while let Some(component) = rest.pop_front() {
            match component {
                Component::Normal(name) => {
                    let candidate = current.join(name);
                    let last = rest.iter().all(|c| matches!(c, Component::CurDir));
                    match self.entries.get(&candidate) {
                        Some(Entry { kind: Kind::Symlink { target }, .. }) if !last => {
                            links += 1;
                            if links > 40 {
                                return None;
                            }
                            // `current` holds no link, so the target's `..` is lexical here.
                            current = self.locate(&lexical_join(&current, target).to_string_lossy())?;
                        }
                        _ => current = candidate,
                    }
                }
                Component::ParentDir => {
                    current.pop();
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        Some(current)
    }

    pub fn files(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values().filter(|e| matches!(e.kind, Kind::File { .. } | Kind::Inline { .. } | Kind::Data { .. }))
    }
}

pub fn components(path: &Path) -> Vec<PathBuf> {
    path.components().filter_map(|c| if let Component::Normal(n) = c { Some(PathBuf::from(n)) } else { None }).collect()
}

/// `base` joined with `target` (absolute targets replace base), `..` applied
/// lexically and clamped at `/`, as the kernel does at the root.
pub fn lexical_join(base: &Path, target: &Path) -> PathBuf {
    let mut out = if target.is_absolute() { PathBuf::from("/") } else { base.to_path_buf() };
    for c in target.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Normalize an absolute path lexically: no `.`, no `..` (rejected), no trailing
/// slash. Returns None for anything that could point outside the root.
pub fn normalize_inside(path: &str) -> Option<PathBuf> {
    if !path.starts_with('/') || path.contains('\0') {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in Path::new(path).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_rejects_escapes() {
        assert_eq!(normalize_inside("/a/./b/"), Some(PathBuf::from("/a/b")));
        assert_eq!(normalize_inside("/a/../../etc"), None);
        assert_eq!(normalize_inside("a/b"), None);
        assert_eq!(normalize_inside("/a\0b"), None);
        assert_eq!(normalize_inside("/"), Some(PathBuf::from("/")));
    }

    #[test]
    fn locate_named_follows_links_and_dots_inside() {
        let mut m = Manifest::default();
        let link = |path: &str, target: &str| Entry {
            path: path.into(),
            kind: Kind::Symlink { target: target.into() },
            mode: 0o777,
            uid: 0,
            gid: 0,
            capability: None,
            reason: Reason::Skeleton { why: "t".into() },
        };
        for (path, target) in [("/bin", "usr/bin"), ("/usr/bin/sh", "dash"), ("/up", "../../..")] {
            m.entries.insert(path.into(), link(path, target));
        }
        let at = |p: &str| m.locate_named(p).map(|p| p.to_string_lossy().into_owned());
        assert_eq!(at("/usr/bin/../bin/ls").as_deref(), Some("/usr/bin/ls"));
        assert_eq!(at("/").as_deref(), Some("/"));
        assert_eq!(at("/bin/../lib/x").as_deref(), Some("/usr/lib/x"), "`..` after a link goes up from its target");
        assert_eq!(at("/bin/sh").as_deref(), Some("/usr/bin/sh"), "the last link is the entry named");
        assert_eq!(at("/../../etc/./passwd").as_deref(), Some("/etc/passwd"), "clamped at the root");
        assert_eq!(at("/up/etc").as_deref(), Some("/etc"));
        assert_eq!(at("/usr/.."), Some("/".into()));
        assert_eq!(at("usr/bin"), None);
    }

    #[test]
    fn btree_orders_parents_first() {
        let mut m = Manifest::default();
        for p in ["/a b", "/a/b", "/a", "/"] {
            m.entries.insert(
                PathBuf::from(p),
                Entry {
                    path: p.into(),
                    kind: Kind::Dir,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    capability: None,
                    reason: Reason::Skeleton { why: "t".into() },
                },
            );
        }
        let order: Vec<_> = m.entries.keys().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(order, ["/", "/a", "/a/b", "/a b"]);
    }
}
