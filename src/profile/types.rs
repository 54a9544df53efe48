//! The validated, merged profile: what the rest of the tool reads.
//!
//! Every value a teacher wrote keeps its `Origin` (file, line, column) so that
//! later stages (`why`, a binary that is not found) can point back at it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a value was written: `shell.toml:4:15`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// The file as the user knows it: a path, or `shell.toml` for an embedded profile.
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A value together with where it was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Located<T> {
    pub value: T,
    pub origin: Origin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Chroot,
    Namespace,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    None,
    Loopback,
    Host,
}

/// `[[rootfs.copy]]`: lab files. `from` was written relative to the profile
/// file that named it; here it is the real path it leads to, resolved beneath
/// that file's folder (no symlink left in it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopySpec {
    pub from: PathBuf,
    /// Absolute path inside the rootfs; a trailing `/` means "into this directory".
    pub to: String,
    /// `keep_special_bits = true`: keep the files' setuid and setgid bits and
    /// file capabilities, which lab files otherwise lose.
    pub keep_special_bits: bool,
    pub origin: Origin,
}

/// `[[rootfs.write]]`: a file with inline content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteSpec {
    /// Absolute path inside the rootfs.
    pub path: String,
    pub content: String,
    /// Permission bits, parsed from the octal string ("0644"); default 0o644.
    pub mode: u32,
    pub origin: Origin,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RootfsSpec {
    pub binaries: Vec<Located<String>>,
    pub files: Vec<Located<String>>,
    pub locales: Vec<Located<String>>,
    pub timezones: Vec<Located<String>>,
    pub timezone: Option<Located<String>>,
    pub copy: Vec<CopySpec>,
    pub write: Vec<WriteSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

impl Default for User {
    /// Root inside, as in a container image without `USER`.
    fn default() -> Self {
        User { name: "root".into(), uid: 0, gid: 0, home: "/root".into(), shell: "/bin/sh".into() }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub mode: Mode,
    pub command: Vec<String>,
    /// Where the command was set, for `check` to point at.
    #[serde(default)]
    pub command_source: CommandSource,
    pub workdir: Option<String>,
    pub hostname: String,
}

/// Which setting gave the command.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandSource {
    /// `[run] command`.
    Command(Origin),
    /// No command: the user's shell, `[user] shell`.
    Shell(Origin),
    /// Neither is set: the default shell, /bin/sh.
    #[default]
    Default,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Bytes.
    pub memory: Option<u64>,
    pub pids: Option<u64>,
    /// Cores, e.g. 0.5.
    pub cpu: Option<f64>,
    /// Bytes of the tmpfs on /tmp.
    pub tmp: Option<u64>,
    /// Bytes an instance's writable layer may hold (its disk image's size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Absolute host path: as written when it was absolute; else the real path
    /// it leads to, resolved beneath the profile file's folder.
    pub source: PathBuf,
    /// Absolute path inside.
    pub target: String,
    pub readonly: bool,
    pub origin: Origin,
}

/// Where a profile came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// A ready profile built into the binary, by name.
    Embedded(String),
    /// A file on disk (absolute path).
    File(PathBuf),
    /// An image `sandbox import` stored, by name (`image:NAME`).
    Image(String),
}

/// An imported image a profile builds on (`extends = "image:NAME"`, or
/// `sandbox run NAME`): its tree in the store is the base of the rootfs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageBase {
    pub name: String,
    /// The rootfs digest of the imported tree.
    pub digest: String,
}

/// A fully merged, validated profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub description: Option<String>,
    pub source: Source,
    /// The `extends` chain, base first, this profile last (names).
    pub layers: Vec<String>,
    pub rootfs: RootfsSpec,
    pub user: User,
    pub env: BTreeMap<String, String>,
    pub run: Run,
    pub limits: Limits,
    pub network: NetworkMode,
    pub mounts: Vec<MountSpec>,
    /// sha256 over the text of every file of the `extends` chain and where it
    /// came from: the profile's part of the store record's key.
    #[serde(default)]
    pub fingerprint: String,
    /// The imported image the rootfs starts from, if any.
    #[serde(default)]
    pub image: Option<ImageBase>,
}
