//! The ready profiles, built into the binary so the tool works from any directory.

/// A profile shipped with the tool, usable by name (`sandbox run python`).
#[derive(Clone, Copy, Debug)]
pub struct ReadyProfile {
    pub name: &'static str,
    /// The TOML text, as in `profiles/<name>.toml`.
    pub source: &'static str,
}

impl ReadyProfile {
    /// The profile's `description`, read from its text.
    pub fn description(&self) -> Option<String> {
        let table: toml::Table = toml::from_str(self.source).ok()?;
        table.get("description")?.as_str().map(str::to_owned)
    }
}

const READY: &[ReadyProfile] = &[
    ReadyProfile { name: "shell", source: include_str!("../../profiles/shell.toml") },
    ReadyProfile { name: "python", source: include_str!("../../profiles/python.toml") },
    ReadyProfile { name: "c-dev", source: include_str!("../../profiles/c-dev.toml") },
    ReadyProfile { name: "net", source: include_str!("../../profiles/net.toml") },
];

/// Every ready profile, the default (`shell`) first.
pub fn ready() -> &'static [ReadyProfile] {
    READY
}

pub(super) fn find(name: &str) -> Option<&'static ReadyProfile> {
    READY.iter().find(|p| p.name == name)
}

/// "shell, python, c-dev, net", for messages.
pub(super) fn names() -> String {
    READY.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}
