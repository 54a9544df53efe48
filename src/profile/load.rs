//! Finding profile files, following `extends`, and putting the layers together.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::de::DeTable;

use super::diagnose::{closest, schema_error, syntax_error};
use super::error::{ProfileError, ProfileText};
use super::merge::{self, Layer};
use super::raw::RawProfile;
use super::ready;
use super::types::{Located, Profile, Source};
use super::validate;

/// A profile is a short text; this bounds what `sandbox check /dev/zero` reads.
const MAX_PROFILE_BYTES: u64 = 1 << 20;

/// Load a profile by spec: a ready profile's name (embedded in the binary, e.g. "shell")
/// or a path to a .toml file (anything containing '/' or ending in ".toml"), relative to `cwd`.
/// Merges `extends` (parent first), validates everything, returns the merged Profile.
pub fn load(spec: &str, cwd: &Path) -> Result<Profile, ProfileError> {
    let top = open_spec(spec, cwd)?;
    let source = top.source.clone();
    // Child first; each entry is (where it came from, its name) for cycle reports.
    let mut visited: Vec<(Source, String)> = Vec::new();
    let mut layers: Vec<Layer> = Vec::new();
    let mut next = Some(top);
    // What the profile says, exactly: every file of the chain, where it came from and its text.
    let mut fingerprint = Sha256::new();
    while let Some(file) = next.take() {
        let layer = parse(&file)?;
        let from = match &file.source {
            Source::Embedded(name) => format!("ready:{name}"),
            Source::File(path) => format!("file:{}", path.display()),
            Source::Image(name) => format!("image:{name}"),
        };
        for part in [from.as_bytes(), file.text.as_bytes()] {
            fingerprint.update((part.len() as u64).to_le_bytes());
            fingerprint.update(part);
        }
        visited.push((file.source.clone(), layer.name.clone()));
        if let Some(extends) = &layer.extends {
            let parent = open_parent(extends, &file)?;
            if let Some(repeat) = visited.iter().find(|(source, _)| *source == parent.source) {
                return Err(cycle(extends, &visited, &repeat.1));
            }
            next = Some(parent);
        }
        layers.push(layer);
    }
    let names = layers.iter().rev().map(|l| l.name.clone()).collect();
    let mut base_first = layers.into_iter().rev();
    let base = base_first.next().ok_or_else(|| ProfileError::new(spec, None, "empty profile chain".into(), "report this bug".into()))?;
    let mut profile = merge::finish(base_first.fold(base, merge::merge), source, names)?;
    // An image imported again under the same name is another rootfs.
    if let Some(image) = &profile.image {
        fingerprint.update(image.digest.as_bytes());
    }
    profile.fingerprint = hex::encode(fingerprint.finalize());
    Ok(profile)
}

fn parse(file: &ProfileText) -> Result<Layer, ProfileError> {
    let doc = DeTable::parse(&file.text).map_err(|e| syntax_error(file, &e))?;
    let raw = RawProfile::deserialize(toml::de::Deserializer::from(doc.clone())).map_err(|e| schema_error(file, doc.get_ref(), &e))?;
    validate::layer(file, raw)
}

/// The rule of the command line and of `extends`: a path names a file, anything else a ready profile.
fn is_path(spec: &str) -> bool {
    spec.contains('/') || spec.ends_with(".toml")
}

fn open_spec(spec: &str, cwd: &Path) -> Result<ProfileText, ProfileError> {
    if let Some(name) = spec.strip_prefix(IMAGE_PREFIX) {
        return open_image(name, None)?.ok_or_else(|| no_image(spec, None));
    }
    if is_path(spec) {
        return read_file(spec.to_owned(), &cwd.join(spec)).map_err(|reason| {
            ProfileError::new(
                spec,
                None,
                format!("cannot read the profile: {reason}"),
                "check the path: it is relative to the current directory".into(),
            )
        });
    }
    if let Some(ready) = open_ready(spec) {
        return Ok(ready);
    }
    // `sandbox run NAME` for a name `sandbox import` gave.
    open_image(spec, None)?.ok_or_else(|| {
        ProfileError::new(spec, None, format!("no ready profile is named `{}`", spec.escape_debug()), unknown_ready_fix(spec))
    })
}

use crate::export::imported::PREFIX as IMAGE_PREFIX;

/// The profile of an image `sandbox import` stored: None when there is none of that name.
fn open_image(name: &str, origin: Option<&super::types::Origin>) -> Result<Option<ProfileText>, ProfileError> {
    let fail = |e: crate::export::ExportError| match origin {
        Some(origin) => ProfileError::at(origin, e.to_string(), "check `sandbox import`'s output for the image's name".into()),
        None => ProfileError::new(name, None, e.to_string(), "check `sandbox import`'s output for the image's name".into()),
    };
    let state = crate::state::home();
    let Some(record) = crate::export::imported::ImageRecord::find(&state, name).map_err(fail)? else { return Ok(None) };
    let store = crate::rootfs::Store::open(&state)
        .map_err(|e| fail(crate::export::ExportError::Io { context: state.display().to_string(), source: e }))?;
    let text = record.profile_toml(&store).map_err(fail)?;
    Ok(Some(ProfileText {
        display: format!("{IMAGE_PREFIX}{name}"),
        text,
        source: Source::Image(name.to_owned()),
        dir: None,
        image: Some(super::types::ImageBase { name: name.to_owned(), digest: record.digest }),
    }))
}

fn no_image(spec: &str, origin: Option<&super::types::Origin>) -> ProfileError {
    let cause = format!("no imported image is named `{}`", spec.trim_start_matches(IMAGE_PREFIX).escape_debug());
    let fix = "import it first: `sandbox import DIR_OR_ARCHIVE --name NAME`".to_string();
    match origin {
        Some(origin) => ProfileError::at(origin, cause, fix),
        None => ProfileError::new(spec, None, cause, fix),
    }
}

fn open_parent(extends: &Located<String>, child: &ProfileText) -> Result<ProfileText, ProfileError> {
    let spec = extends.value.as_str();
    let error = |cause: String, fix: String| ProfileError::at(&extends.origin, cause, fix);
    if spec.is_empty() {
        return Err(error("`extends` is empty".into(), format!("name a ready profile ({}) or a .toml file", ready::names())));
    }
    if let Some(name) = spec.strip_prefix(IMAGE_PREFIX) {
        return open_image(name, Some(&extends.origin))?.ok_or_else(|| no_image(spec, Some(&extends.origin)));
    }
    if !is_path(spec) {
        return open_ready(spec).ok_or_else(|| {
            error(format!("`extends` names `{}`, which is not a ready profile", spec.escape_debug()), unknown_ready_fix(spec))
        });
    }
    let Some(dir) = &child.dir else {
        return Err(error("a ready profile can only extend ready profiles".into(), "extend a ready profile by name".into()));
    };
    read_file(beside(&child.display, spec), &dir.join(spec)).map_err(|reason| {
        error(
            format!("cannot read `{}`: {reason}", spec.escape_debug()),
            format!("check the path: it is relative to the directory of this profile file; or name a ready profile ({})", ready::names()),
        )
    })
}

fn unknown_ready_fix(spec: &str) -> String {
    let names: Vec<&str> = ready::ready().iter().map(|p| p.name).collect();
    let options = format!("the ready profiles are {}; or give the path of a .toml file", ready::names());
    match closest(spec, &names) {
        Some(name) => format!("did you mean `{name}`? {options}"),
        None => options,
    }
}

fn open_ready(name: &str) -> Option<ProfileText> {
    let profile = ready::find(name)?;
    Some(ProfileText {
        display: format!("{name}.toml"),
        text: profile.source.to_owned(),
        source: Source::Embedded(name.to_owned()),
        dir: None,
        image: None,
    })
}

/// How to show a file named by `spec` from the file shown as `display`:
/// `labs/a/lab.toml` + `../base.toml` -> `labs/a/../base.toml`.
fn beside(display: &str, spec: &str) -> String {
    match display.rfind('/') {
        Some(end) if !spec.starts_with('/') => format!("{}/{spec}", &display[..end]),
        _ => spec.to_owned(),
    }
}

/// Reads a profile file; the error is the reason, to be placed by the caller.
fn read_file(display: String, path: &Path) -> Result<ProfileText, String> {
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).map_err(|e| io_reason(&e))?;
    file.take(MAX_PROFILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| io_reason(&e))?;
    if bytes.len() as u64 > MAX_PROFILE_BYTES {
        return Err("it is larger than 1 MiB, which no profile is".into());
    }
    let text = String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_owned())?;
    // Canonical, so that two spellings of one file are one file for cycle checks.
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = absolute.parent().map(PathBuf::from);
    Ok(ProfileText { display, text, source: Source::File(absolute), dir, image: None })
}

fn io_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "file not found".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::IsADirectory => "it is a directory".into(),
        _ => error.to_string(),
    }
}

fn cycle(extends: &Located<String>, visited: &[(Source, String)], repeat: &str) -> ProfileError {
    let chain: Vec<&str> = visited.iter().map(|(_, name)| name.as_str()).chain([repeat]).collect();
    ProfileError::at(
        &extends.origin,
        format!("`extends` makes a cycle: {}", chain.join(" -> ")),
        "remove `extends` from one of these profiles".into(),
    )
}
