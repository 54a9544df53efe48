//! One file's raw values checked and converted into a `Layer`, each error at
//! the value that caused it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::beneath;
use super::error::{Problem, ProfileError, ProfileText};
use super::merge::{Layer, RunLayer, UserLayer};
use super::raw::*;
use super::types::*;

pub(super) fn layer(file: &ProfileText, raw: RawProfile) -> Result<Layer, ProfileError> {
    let check = Check { file };
    let Some(name) = raw.name else {
        return Err(ProfileError::new(
            &file.display,
            None,
            "the profile has no `name`".into(),
            "add a line like `name = \"my-lab\"` at the top of the file".into(),
        ));
    };
    Ok(Layer {
        name: check.located(name, profile_name)?.value,
        description: raw.description.map(Spanned::into_inner),
        extends: raw.extends.map(|e| check.located(e, |_| Ok(()))).transpose()?,
        rootfs: check.rootfs(raw.rootfs)?,
        user: check.user(raw.user)?,
        env: check.env(raw.env)?,
        run: check.run(raw.run)?,
        limits: check.limits(raw.limits)?,
        network: raw.network.and_then(|n| n.mode).map(|m| check.value(m, |s| network_mode(s))).transpose()?,
        mounts: check.all(raw.mounts, |m| check.mount(m))?,
        image: file.image.clone(),
    })
}

struct Check<'a> {
    file: &'a ProfileText,
}

type Rule<'r, T, U> = &'r dyn Fn(&T) -> Result<U, Problem>;

impl Check<'_> {
    /// Applies `rule` to a value, placing its problem at the value's position.
    fn value<T, U>(&self, value: Spanned<T>, rule: impl FnOnce(&T) -> Result<U, Problem>) -> Result<U, ProfileError> {
        rule(value.get_ref()).map_err(|problem| self.file.error(&value.span(), problem))
    }

    fn located(&self, text: Spanned<String>, rule: impl FnOnce(&str) -> Result<(), Problem>) -> Result<Located<String>, ProfileError> {
        let origin = self.file.origin(&text.span());
        let value = self.value(text, |s| rule(s).map(|()| s.clone()))?;
        Ok(Located { value, origin })
    }

    fn texts(&self, list: Option<Vec<Spanned<String>>>, rule: Rule<'_, str, ()>) -> Result<Vec<Located<String>>, ProfileError> {
        self.all(list, |text| self.located(text, rule))
    }

    fn text(&self, text: Option<Spanned<String>>, rule: Rule<'_, str, ()>) -> Result<Option<String>, ProfileError> {
        text.map(|t| self.located(t, rule).map(|l| l.value)).transpose()
    }

    fn all<T, U>(&self, list: Option<Vec<T>>, convert: impl Fn(T) -> Result<U, ProfileError>) -> Result<Vec<U>, ProfileError> {
        list.unwrap_or_default().into_iter().map(convert).collect()
    }

    fn rootfs(&self, raw: Option<RawRootfs>) -> Result<RootfsSpec, ProfileError> {
        let Some(raw) = raw else {
            return Ok(RootfsSpec::default());
        };
        Ok(RootfsSpec {
            binaries: self.texts(raw.binaries, &binary)?,
            files: self.texts(raw.files, &|s| host_path("files", s))?,
            locales: self.texts(raw.locales, &locale)?,
            timezones: self.texts(raw.timezones, &|s| zone("timezones", s))?,
            timezone: raw.timezone.map(|t| self.located(t, |s| zone("timezone", s))).transpose()?,
            copy: self.all(raw.copy, |c| self.copy(c))?,
            write: self.all(raw.write, |w| self.write(w))?,
        })
    }

    fn copy(&self, raw: Spanned<RawCopy>) -> Result<CopySpec, ProfileError> {
        let origin = self.file.origin(&raw.span());
        let raw = raw.into_inner();
        Ok(CopySpec {
            from: self.value(raw.from, |s| lab_source(s, self.file.dir.as_deref()))?,
            to: self.located(raw.to, |s| inside_path("to", s))?.value,
            keep_special_bits: raw.keep_special_bits.unwrap_or(false),
            origin,
        })
    }

    fn write(&self, raw: Spanned<RawWrite>) -> Result<WriteSpec, ProfileError> {
        let origin = self.file.origin(&raw.span());
        let raw = raw.into_inner();
        Ok(WriteSpec {
            path: self.located(raw.path, |s| inside_path("path", s))?.value,
            content: raw.content.into_inner(),
            mode: raw.mode.map(|m| self.value(m, |s| file_mode(s))).transpose()?.unwrap_or(0o644),
            origin,
        })
    }

    fn mount(&self, raw: Spanned<RawMount>) -> Result<MountSpec, ProfileError> {
        let origin = self.file.origin(&raw.span());
        let raw = raw.into_inner();
        Ok(MountSpec {
            source: self.value(raw.source, |s| mount_source(s, self.file.dir.as_deref()))?,
            target: self.located(raw.target, |s| inside_path("target", s))?.value,
            // Sharing a host directory read-only is the safe reading of a lab.
            readonly: raw.readonly.unwrap_or(true),
            origin,
        })
    }

    fn user(&self, raw: Option<RawUser>) -> Result<UserLayer, ProfileError> {
        let Some(raw) = raw else {
            return Ok(UserLayer::default());
        };
        let uid = raw.uid.map(|u| {
            let origin = self.file.origin(&u.span());
            self.value(u, |&n| id("uid", n)).map(|value| Located { value, origin })
        });
        Ok(UserLayer {
            name: self.text(raw.name, &user_name)?,
            uid: uid.transpose()?,
            gid: raw.gid.map(|g| self.value(g, |&n| id("gid", n))).transpose()?,
            home: self.text(raw.home, &|s| inside_path("home", s))?,
            shell: raw.shell.map(|s| self.located(s, |s| inside_path("shell", s))).transpose()?,
        })
    }

    fn env(&self, raw: Option<BTreeMap<Spanned<String>, Spanned<String>>>) -> Result<BTreeMap<String, String>, ProfileError> {
        let mut env = BTreeMap::new();
        for (key, value) in raw.unwrap_or_default() {
            let key = self.located(key, env_name)?.value;
            let value = self.located(value, |v| no_nul(&key, v))?.value;
            env.insert(key, value);
        }
        Ok(env)
    }

    fn run(&self, raw: Option<RawRun>) -> Result<RunLayer, ProfileError> {
        let Some(raw) = raw else {
            return Ok(RunLayer::default());
        };
        Ok(RunLayer {
            mode: raw.mode.map(|m| self.value(m, |s| run_mode(s))).transpose()?,
            command: raw.command.map(|c| self.command(c)).transpose()?,
            workdir: self.text(raw.workdir, &|s| inside_path("workdir", s))?,
            hostname: self.text(raw.hostname, &hostname)?,
        })
    }

    fn command(&self, raw: Spanned<Vec<Spanned<String>>>) -> Result<Located<Vec<String>>, ProfileError> {
        let origin = self.file.origin(&raw.span());
        if raw.get_ref().is_empty() {
            return Err(self.file.error(
                &raw.span(),
                Problem::new("`command` is empty", "give the program and its arguments, e.g. command = [\"/bin/bash\", \"-l\"]"),
            ));
        }
        let words = self.texts(Some(raw.into_inner()), &command_word)?;
        Ok(Located { value: words.into_iter().map(|w| w.value).collect(), origin })
    }

    fn limits(&self, raw: Option<RawLimits>) -> Result<Limits, ProfileError> {
        let Some(raw) = raw else {
            return Ok(Limits::default());
        };
        Ok(Limits {
            memory: raw.memory.map(|m| self.value(m, |v| size("memory", v))).transpose()?,
            pids: raw.pids.map(|p| self.value(p, |&n| pids(n))).transpose()?,
            cpu: raw.cpu.map(|c| self.value(c, |&n| cpu(n))).transpose()?,
            tmp: raw.tmp.map(|t| self.value(t, |v| size("tmp", v))).transpose()?,
            disk: raw.disk.map(|d| self.value(d, disk)).transpose()?,
        })
    }
}

// ---- rules: each checks one value and says how to fix it ----

fn profile_name(s: &str) -> Result<(), Problem> {
    let fix = || format!("write it as `name = \"{}\"`", slug(s));
    if !charset(s, |c| c.is_ascii_lowercase() || c.is_ascii_digit(), |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(Problem::new(
            format!("`name` must be lowercase letters, digits and `-`, starting with a letter or digit; found \"{}\"", s.escape_debug()),
            fix(),
        ));
    }
    if s.len() > 63 {
        return Err(Problem::new(format!("`name` is {} characters long; the limit is 63", s.len()), fix()));
    }
    Ok(())
}

/// A valid profile name close to `s`, to suggest.
fn slug(s: &str) -> String {
    let lowered: String = s.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let words: Vec<&str> = lowered.split('-').filter(|w| !w.is_empty()).collect();
    let joined: String = words.join("-").chars().take(63).collect();
    if joined.is_empty() { "my-lab".into() } else { joined.trim_end_matches('-').into() }
}

fn binary(s: &str) -> Result<(), Problem> {
    no_control("binaries", s)?;
    if s.is_empty() {
        return Err(Problem::new("an entry of `binaries` is empty", "remove the empty string \"\""));
    }
    if s.split_whitespace().nth(1).is_some() {
        let one_each = s.split_whitespace().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(", ");
        return Err(Problem::new(
            format!("`binaries` entry \"{s}\" contains a space"),
            format!("write one program per string: {one_each}"),
        ));
    }
    if s.contains('/') && !s.starts_with('/') {
        let program = s.rsplit('/').next().unwrap_or(s);
        return Err(Problem::new(
            format!("`binaries` entry \"{s}\" is neither a program name nor an absolute path"),
            format!("write \"{program}\" to find it on PATH, or its absolute path, e.g. \"/usr/local/bin/{program}\""),
        ));
    }
    if s.ends_with('/') {
        return Err(Problem::new(format!("`binaries` entry \"{s}\" names a directory"), "name the program file itself"));
    }
    if s.starts_with('/') { host_path("binaries", s) } else { Ok(()) }
}

/// An absolute path on the host, taken as written (no `..` to second-guess).
fn host_path(key: &str, s: &str) -> Result<(), Problem> {
    absolute_path(key, s, "on the host")
}

/// A path inside the rootfs: absolute, so that it cannot start outside it.
fn inside_path(key: &str, s: &str) -> Result<(), Problem> {
    absolute_path(key, s, "inside the sandbox")
}

fn absolute_path(key: &str, s: &str, place: &str) -> Result<(), Problem> {
    no_nul(key, s)?;
    // Shown escaped: a newline in a message would break its one-line form.
    let shown = s.escape_debug();
    if !s.starts_with('/') {
        return Err(Problem::new(
            format!("`{key}` must be an absolute path {place}, found \"{shown}\""),
            format!("start it with `/`: \"/{}\"", s.trim_start_matches("./").escape_debug()),
        ));
    }
    if s.split('/').any(|part| part == "..") {
        return Err(Problem::new(
            format!("`{key}` must not contain `..`, found \"{shown}\""),
            format!("write the path it means without `..`: \"{}\"", normalize(s).escape_debug()),
        ));
    }
    Ok(())
}

/// `/a/./b/../c` -> `/a/c`, by the text alone: `..` at the root stays at the root.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `[[rootfs.copy]] from`: lab files, always beneath the profile file's folder.
fn lab_source(s: &str, dir: Option<&Path>) -> Result<PathBuf, Problem> {
    no_nul("from", s)?;
    if s.is_empty() {
        return Err(Problem::new("`from` is empty", "name a file or directory, relative to this profile file"));
    }
    if Path::new(s).is_absolute() {
        return Err(Problem::new(
            format!("`from` must be relative to the profile file's folder, found \"{}\"", s.escape_debug()),
            "put the lab's files beside the profile; host files and trees go in `files = [...]`, host directories in [[mounts]]",
        ));
    }
    let Some(dir) = dir else {
        return Err(Problem::new("`from` is relative, but a ready profile has no folder", "copy the profile into a folder with its files"));
    };
    beneath::resolve("from", dir, s)
}

/// `[[mounts]] source`: an absolute host path as written, or a path beneath
/// the profile file's folder.
fn mount_source(s: &str, dir: Option<&Path>) -> Result<PathBuf, Problem> {
    no_nul("source", s)?;
    if s.is_empty() {
        return Err(Problem::new("`source` is empty", "name a directory, relative to this profile file, or an absolute path"));
    }
    if Path::new(s).is_absolute() {
        let path = PathBuf::from(s);
        if path.exists() {
            return Ok(path);
        }
        return Err(Problem::new(format!("`source` names `{}`, which does not exist", s.escape_debug()), "create it, or correct the path"));
    }
    match dir {
        Some(dir) => beneath::resolve("source", dir, s),
        None => Err(Problem::new("`source` is relative, but a ready profile has no folder", "use an absolute path")),
    }
}

fn no_nul(key: &str, s: &str) -> Result<(), Problem> {
    if s.contains('\0') {
        return Err(Problem::new(format!("`{key}` contains a NUL character"), "remove the \\u0000 from the string"));
    }
    Ok(())
}

fn no_control(key: &str, s: &str) -> Result<(), Problem> {
    match s.chars().find(|c| c.is_control()) {
        Some(c) => Err(Problem::new(
            format!("`{key}` entry \"{}\" contains the control character {}", s.escape_debug(), c.escape_unicode()),
            "remove it",
        )),
        None => Ok(()),
    }
}

/// `ko_KR.UTF-8`, `C.UTF-8`, `de_DE@euro`, `POSIX`: the shape only; whether
/// the host has it is found out when the rootfs is built.
fn locale(s: &str) -> Result<(), Problem> {
    let (rest, modifier) = split_off(s, '@');
    let (rest, codeset) = split_off(rest, '.');
    let (language, territory) = split_off(rest, '_');
    let shaped = s == "POSIX"
        || ((1..=3).contains(&language.len())
            && language.chars().all(|c| c.is_ascii_alphabetic())
            && territory.is_none_or(|t| t.len() == 2 && t.chars().all(|c| c.is_ascii_uppercase()))
            && codeset.is_none_or(|c| !c.is_empty() && c.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            && modifier.is_none_or(|m| !m.is_empty() && m.chars().all(|c| c.is_ascii_lowercase())));
    if shaped {
        return Ok(());
    }
    Err(Problem::new(
        format!("\"{}\" is not a locale name", s.escape_debug()),
        "write it as language_TERRITORY.codeset, e.g. \"ko_KR.UTF-8\", or \"C.UTF-8\"",
    ))
}

fn split_off(s: &str, separator: char) -> (&str, Option<&str>) {
    match s.split_once(separator) {
        Some((head, tail)) => (head, Some(tail)),
        None => (s, None),
    }
}

/// A zoneinfo name such as `Asia/Seoul`: relative to /usr/share/zoneinfo, so
/// it must not climb out of it.
fn zone(key: &str, s: &str) -> Result<(), Problem> {
    let part_ok = |p: &str| !p.is_empty() && p != "." && p != ".." && p.chars().all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c));
    if s.split('/').all(part_ok) {
        return Ok(());
    }
    Err(Problem::new(
        format!("`{key}` entry \"{}\" is not a time zone name", s.escape_debug()),
        "write a name from /usr/share/zoneinfo, e.g. \"Asia/Seoul\" or \"UTC\" (no leading `/`, no `..`)",
    ))
}

fn file_mode(s: &str) -> Result<u32, Problem> {
    let fix = "write the permission bits as an octal string, e.g. mode = \"0644\" (rw-r--r--) or \"0755\" (rwxr-xr-x)";
    let octal = !s.is_empty() && s.chars().all(|c| ('0'..='7').contains(&c));
    match u32::from_str_radix(s, 8) {
        Ok(bits) if octal && bits <= 0o7777 => Ok(bits),
        Ok(_) if octal => Err(Problem::new(format!("`mode` \"{s}\" is larger than \"7777\""), fix)),
        _ => Err(Problem::new(format!("`mode` must be an octal string like \"0644\", found \"{}\"", s.escape_debug()), fix)),
    }
}

fn user_name(s: &str) -> Result<(), Problem> {
    let shaped =
        charset(s, |c| c.is_ascii_lowercase() || c == '_', |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if shaped && s.len() <= 32 {
        return Ok(());
    }
    Err(Problem::new(
        format!("\"{}\" is not a valid user name", s.escape_debug()),
        "use lowercase letters, digits, `_` and `-`, starting with a letter or `_`, at most 32 characters, e.g. \"student\"",
    ))
}

fn id(key: &str, n: i64) -> Result<u32, Problem> {
    match u32::try_from(n) {
        Ok(id) if id <= 65534 => Ok(id),
        _ => Err(Problem::new(
            format!("`{key}` must be between 0 and 65534, found {n}"),
            format!("use a number in that range, e.g. {key} = 1000 (0 is root)"),
        )),
    }
}

fn env_name(s: &str) -> Result<(), Problem> {
    if charset(s, |c| c.is_ascii_alphabetic() || c == '_', |c| c.is_ascii_alphanumeric() || c == '_') {
        return Ok(());
    }
    Err(Problem::new(
        format!("\"{}\" is not a valid environment variable name", s.escape_debug()),
        "use letters, digits and `_`, not starting with a digit, e.g. MY_VAR",
    ))
}

fn run_mode(s: &str) -> Result<Mode, Problem> {
    match s {
        "namespace" => Ok(Mode::Namespace),
        "chroot" => Ok(Mode::Chroot),
        _ => Err(Problem::new(
            format!("`mode` in [run] must be \"namespace\" or \"chroot\", found \"{}\"", s.escape_debug()),
            "write mode = \"namespace\" (full isolation) or mode = \"chroot\" (the classic jail)",
        )),
    }
}

fn network_mode(s: &str) -> Result<NetworkMode, Problem> {
    match s {
        "none" => Ok(NetworkMode::None),
        "loopback" => Ok(NetworkMode::Loopback),
        "host" => Ok(NetworkMode::Host),
        _ => Err(Problem::new(
            format!("`mode` in [network] must be \"none\", \"loopback\" or \"host\", found \"{}\"", s.escape_debug()),
            "write mode = \"loopback\" (only 127.0.0.1), \"none\" (no interface up) or \"host\" (the host's network)",
        )),
    }
}

fn command_word(s: &str) -> Result<(), Problem> {
    no_nul("command", s)?;
    if s.is_empty() {
        return Err(Problem::new("an entry of `command` is empty", "remove the empty string \"\""));
    }
    Ok(())
}

/// RFC 1123: dot-separated labels of letters, digits and inner `-`.
fn hostname(s: &str) -> Result<(), Problem> {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len()) && !l.starts_with('-') && !l.ends_with('-') && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if s.len() <= 64 && s.split('.').all(label_ok) {
        return Ok(());
    }
    Err(Problem::new(
        format!("\"{}\" is not a valid hostname", s.escape_debug()),
        "use letters, digits and `-` (not at either end), at most 64 characters, e.g. hostname = \"lab\"",
    ))
}

/// "256M", "1g", "512K", "1048576" or an integer: bytes, K M G being powers of 1024.
fn size(key: &str, value: &toml::Value) -> Result<u64, Problem> {
    let bytes = match value {
        toml::Value::Integer(n) => u64::try_from(*n).ok(),
        toml::Value::String(s) => parse_size(s),
        _ => None,
    };
    match bytes {
        Some(n) if n > 0 => Ok(n),
        _ => Err(Problem::new(
            format!("`{key}` must be a size like \"256M\", \"1G\" or a positive number of bytes, found {}", describe(value)),
            format!("write e.g. {key} = \"256M\" (K, M and G are powers of 1024)"),
        )),
    }
}

fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("\"{}\"", s.escape_debug()),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(_) => "a float".into(),
        toml::Value::Boolean(_) => "a boolean".into(),
        toml::Value::Datetime(_) => "a date-time".into(),
        toml::Value::Array(_) => "an array".into(),
        toml::Value::Table(_) => "a table".into(),
    }
}

fn parse_size(s: &str) -> Option<u64> {
    // "1Gi" is the same as "1G" (Kubernetes spells powers of 1024 so).
    let s = s.strip_suffix('i').filter(|rest| rest.ends_with(|c: char| c.is_ascii_alphabetic())).unwrap_or(s);
    let (digits, shift) = match s.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => {
            (&s[..i], ["K", "M", "G"].iter().position(|u| u.eq_ignore_ascii_case(&c.to_string()))? * 10 + 10)
        }
        _ => (s, 0),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// The smallest disk cap: below it ext4 has no room for its own journal and
/// tables, and the student for anything.
pub const DISK_MIN: u64 = 16 << 20;

fn disk(value: &toml::Value) -> Result<u64, Problem> {
    let bytes = size("disk", value)?;
    if bytes < DISK_MIN {
        return Err(Problem::new(
            format!("`disk` must be at least 16M (the instance's filesystem needs room of its own), found {}", describe(value)),
            "write e.g. disk = \"1G\"",
        ));
    }
    Ok(bytes)
}

fn pids(n: i64) -> Result<u64, Problem> {
    match u64::try_from(n) {
        Ok(pids) if pids >= 1 => Ok(pids),
        _ => Err(Problem::new(format!("`pids` must be at least 1, found {n}"), "give the most processes at once, e.g. pids = 128")),
    }
}

fn cpu(n: f64) -> Result<f64, Problem> {
    if n > 0.0 && n <= 1024.0 {
        return Ok(n);
    }
    Err(Problem::new(
        format!("`cpu` must be a number of cores above 0 and at most 1024, found {n}"),
        "write e.g. cpu = 0.5 for half a core, cpu = 2 for two",
    ))
}

/// True when `s` is non-empty, starts with a `first` character and continues with `rest` ones.
fn charset(s: &str, first: impl Fn(char) -> bool, rest: impl Fn(char) -> bool) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(first) && chars.all(rest)
}
