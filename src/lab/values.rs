//! Per-student values: derived from the course secret and the student's name
//! with HMAC-SHA256, so a neighbour's answer is wrong for you, and any
//! student's lab can be rebuilt exactly for regrading.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use hmac::{KeyInit, Mac};

use super::format::ValueSpec;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// `SANDBOX_COURSE_SECRET`, else `<state>/course-secret` (made on first use, 0600).
pub fn course_secret(state: &Path) -> std::io::Result<Vec<u8>> {
    if let Some(secret) = std::env::var_os("SANDBOX_COURSE_SECRET").filter(|s| !s.is_empty()) {
        return Ok(secret.into_encoded_bytes());
    }
    let path = state.join("course-secret");
    if let Ok(secret) = std::fs::read(&path) {
        return Ok(secret);
    }
    std::fs::create_dir_all(state)?;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let secret = hex::encode(bytes).into_bytes();
    use std::os::unix::fs::OpenOptionsExt;
    // create_new: two first uses at once keep the same secret.
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
        Ok(mut file) => std::io::Write::write_all(&mut file, &secret)?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return std::fs::read(&path),
        Err(e) => return Err(e),
    }
    Ok(secret)
}

fn mac(secret: &[u8], lab: &str, student: &str, name: &str) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    for part in [lab, student, name] {
        mac.update(part.as_bytes());
        mac.update(&[0]);
    }
    mac.finalize().into_bytes().into()
}

pub fn derive(secret: &[u8], lab: &str, student: &str, specs: &BTreeMap<String, ValueSpec>) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    values.insert("student".to_string(), student.to_string());
    for (name, spec) in specs {
        let bytes = mac(secret, lab, student, name);
        let value = match spec {
            ValueSpec::Hex { length } => hex::encode(bytes).chars().take((*length).clamp(1, 64)).collect(),
            ValueSpec::Number { min, max } => {
                let n = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
                (min + n % (max - min + 1)).to_string()
            }
            ValueSpec::Choice { options } => {
                let n = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
                options.get((n % options.len().max(1) as u64) as usize).cloned().unwrap_or_default()
            }
            ValueSpec::Word { length } => {
                const CONSONANTS: &[u8] = b"bdfgklmnprstvz";
                const VOWELS: &[u8] = b"aeiou";
                (0..(*length).clamp(1, 32))
                    .map(|i| {
                        let b = bytes[i % 32] as usize + i / 32;
                        let set = if i % 2 == 0 { CONSONANTS } else { VOWELS };
                        set[b % set.len()] as char
                    })
                    .collect()
            }
        };
        values.insert(name.clone(), value);
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_differ_between_students_and_repeat_for_one() {
        let specs: BTreeMap<String, ValueSpec> = [
            ("flag".to_string(), ValueSpec::Hex { length: 12 }),
            ("port".to_string(), ValueSpec::Number { min: 20000, max: 29999 }),
            ("word".to_string(), ValueSpec::Word { length: 6 }),
        ]
        .into();
        let alice = derive(b"s", "01", "alice", &specs);
        assert_eq!(alice, derive(b"s", "01", "alice", &specs));
        assert_ne!(alice["flag"], derive(b"s", "01", "bob", &specs)["flag"]);
        assert_ne!(alice["flag"], derive(b"other", "01", "alice", &specs)["flag"]);
        assert_eq!(alice["flag"].len(), 12);
        let port: u64 = alice["port"].parse().unwrap();
        assert!((20000..=29999).contains(&port));
        assert!(alice["word"].chars().all(|c| c.is_ascii_lowercase()) && alice["word"].len() == 6);
        assert_eq!(alice["student"], "alice");
    }
}
