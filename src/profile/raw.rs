//! The profile file as written: every value with its byte span, nothing checked
//! beyond TOML types. `deny_unknown_fields` turns typos into errors.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

type Text = Spanned<String>;
type Texts = Option<Vec<Text>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    pub name: Option<Text>,
    pub description: Option<Text>,
    pub extends: Option<Text>,
    pub rootfs: Option<RawRootfs>,
    pub user: Option<RawUser>,
    pub env: Option<BTreeMap<Text, Text>>,
    pub run: Option<RawRun>,
    pub limits: Option<RawLimits>,
    pub network: Option<RawNetwork>,
    pub mounts: Option<Vec<Spanned<RawMount>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRootfs {
    pub binaries: Texts,
    pub files: Texts,
    pub locales: Texts,
    pub timezones: Texts,
    pub timezone: Option<Text>,
    pub copy: Option<Vec<Spanned<RawCopy>>>,
    pub write: Option<Vec<Spanned<RawWrite>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCopy {
    pub from: Text,
    pub to: Text,
    pub keep_special_bits: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWrite {
    pub path: Text,
    pub content: Text,
    pub mode: Option<Text>,
}

// Numbers are read as i64 so that ranges are checked here, with our messages,
// rather than by serde ("invalid value: integer `-1`, expected u32").
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    pub name: Option<Text>,
    pub uid: Option<Spanned<i64>>,
    pub gid: Option<Spanned<i64>>,
    pub home: Option<Text>,
    pub shell: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRun {
    pub mode: Option<Text>,
    pub command: Option<Spanned<Vec<Text>>>,
    pub workdir: Option<Text>,
    pub hostname: Option<Text>,
}

// A size is either a string ("256M") or an integer of bytes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub memory: Option<Spanned<toml::Value>>,
    pub pids: Option<Spanned<i64>>,
    pub cpu: Option<Spanned<f64>>,
    pub tmp: Option<Spanned<toml::Value>>,
    pub disk: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    pub mode: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMount {
    pub source: Text,
    pub target: Text,
    pub readonly: Option<bool>,
}
