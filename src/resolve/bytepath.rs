//! Paths are bytes on Linux; JSON and TOML hold text. A path is written as its
//! UTF-8 text when it is UTF-8, with `\xNN` for each byte that is not (a CP949
//! name from an unpacked zip) and `\\` for a backslash, so the text form is
//! readable and reads back byte-exact.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serializer};

pub fn escape(path: &Path) -> String {
    let mut out = String::new();
    for chunk in path.as_os_str().as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// The inverse of `escape`; a backslash that starts no escape is kept as it is.
pub fn unescape(text: &str) -> PathBuf {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
            if bytes.get(i + 1) == Some(&b'x')
                && let Some(byte) = text.get(i + 2..i + 4).and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(OsString::from_vec(out))
}

/// `#[serde(with = "bytepath::one")]` for a `PathBuf`.
pub mod one {
    use super::*;

    pub fn serialize<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&escape(path))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
        Ok(unescape(&String::deserialize(d)?))
    }
}

/// `#[serde(with = "bytepath::optional")]` for an `Option<PathBuf>`.
pub mod optional {
    use super::*;

    pub fn serialize<S: Serializer>(path: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
        match path {
            Some(path) => s.serialize_some(&escape(path)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(|t| unescape(&t)))
    }
}

/// `#[serde(with = "bytepath::keys")]` for a `BTreeMap<PathBuf, V>`.
pub mod keys {
    use super::*;
    use serde::Serialize;
    use serde::ser::SerializeMap;

    pub fn serialize<S: Serializer, V: Serialize>(map: &BTreeMap<PathBuf, V>, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(map.len()))?;
        for (path, value) in map {
            out.serialize_entry(&escape(path), value)?;
        }
        out.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>, V: Deserialize<'de>>(d: D) -> Result<BTreeMap<PathBuf, V>, D::Error> {
        let text: BTreeMap<String, V> = BTreeMap::deserialize(d)?;
        Ok(text.into_iter().map(|(path, value)| (unescape(&path), value)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip_byte_exact() {
        for bytes in [&b"/home/student/\xc7\xd1\xb1\xdb.txt"[..], b"/a\\b", b"/plain/\xed\x95\x9c", b"/x\\x41", b"/\xff\\\xfe"] {
            let path = PathBuf::from(OsString::from_vec(bytes.to_vec()));
            let text = escape(&path);
            assert_eq!(unescape(&text), path, "{text}");
        }
        assert_eq!(escape(Path::new("/usr/bin/ls")), "/usr/bin/ls");
        assert_eq!(escape(&PathBuf::from(OsString::from_vec(b"/\xc7\xd1".to_vec()))), "/\\xc7\\xd1");
    }
}
