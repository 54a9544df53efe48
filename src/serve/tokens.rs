//! Login tokens and sessions, kept hashed in `<state>/serve/` (root only).
//!
//! A token or a session cookie is 32 random bytes (hex): far too many to
//! guess, so a plain SHA-256 is enough to keep the files useless to a reader
//! (a slow password hash protects guessable secrets; these are not). A session
//! remembers the hash of the token it was made from: rotating a person's token
//! ends every session it opened, in a running serve too, because the helper
//! reads the tokens file again whenever it changed.
//!
//! ```text
//! serve/tokens.json    {"alice": "<sha256 of alice's token>", "teacher": "..."}
//! serve/sessions.json  {"<sha256 of a cookie>": {"who": "alice", "from": "<token hash>", "expires": 1767225600}}
//! serve/url            the address the last serve printed its links with
//! serve/progress.json  the last check of every student
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The teacher's key in the tokens file (no student may have this name).
pub const TEACHER: &str = "teacher";

/// How long a session lasts without logging in again.
const SESSION_SECONDS: u64 = 14 * 24 * 3600;
/// Sessions kept at most (oldest dropped first): a bound on the file.
const MAX_SESSIONS: usize = 4096;
/// Sessions one person may hold (their oldest go first), so that logging in
/// again and again never pushes anyone else's session out.
const SESSIONS_PER_PERSON: usize = 32;

pub fn dir(state: &Path) -> PathBuf {
    state.join("serve")
}

/// The directory, root's alone (0700).
pub fn ensure_dir(state: &Path) -> io::Result<PathBuf> {
    let dir = dir(state);
    fs::create_dir_all(&dir)?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}

/// 32 random bytes from the kernel, as 64 hex digits.
pub fn random_secret() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: getrandom writes at most the given length into the buffer.
        let n = unsafe { libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0) };
        if n < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        filled += n as usize;
    }
    Ok(hex::encode(bytes))
}

pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A secret as the tokens and cookies are: 64 lowercase hex digits. Anything
/// else is refused before it is hashed or looked up.
pub fn well_formed(secret: &str) -> bool {
    secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Writes root-only (0600) JSON, atomically.
pub fn write_private(path: &Path, value: &impl Serialize) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o600))?;
    serde_json::to_writer(&mut tmp, value).map_err(io::Error::other)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> io::Result<T> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| io::Error::other(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
}

/// Holds `serve/lock` while a file here is read and written again.
pub fn lock(state: &Path) -> io::Result<fs::File> {
    let dir = ensure_dir(state)?;
    let file = fs::File::options().create(true).truncate(false).write(true).open(dir.join("lock"))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// Person -> token hash.
pub type TokenFile = BTreeMap<String, String>;

pub fn read_tokens(state: &Path) -> io::Result<TokenFile> {
    read_json(&dir(state).join("tokens.json"))
}

/// New tokens for the people in `names` who have none yet (a restarted serve
/// keeps the links it handed out). Returns (name, token) of the new ones.
pub fn issue_missing(state: &Path, names: &[String]) -> io::Result<Vec<(String, String)>> {
    let _lock = lock(state)?;
    let mut tokens = read_tokens(state)?;
    let mut issued = Vec::new();
    for name in names {
        if !tokens.contains_key(name) {
            let token = random_secret()?;
            tokens.insert(name.clone(), hash(&token));
            issued.push((name.clone(), token));
        }
    }
    write_private(&dir(state).join("tokens.json"), &tokens)?;
    Ok(issued)
}

/// A new token for `name`, replacing the old one (whose sessions end with it).
pub fn rotate(state: &Path, name: &str) -> io::Result<String> {
    let _lock = lock(state)?;
    let mut tokens = read_tokens(state)?;
    let token = random_secret()?;
    tokens.insert(name.to_string(), hash(&token));
    write_private(&dir(state).join("tokens.json"), &tokens)?;
    Ok(token)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionRecord {
    pub who: String,
    /// The hash of the token the session was opened with.
    pub from: String,
    pub expires: u64,
    /// When it was made (nanoseconds), to find a person's oldest.
    #[serde(default)]
    pub created: u128,
}

/// The helper's view of tokens and sessions: the files, cached and re-read
/// when the tokens file changes.
pub struct Store {
    state: PathBuf,
    tokens: TokenFile,
    /// The tokens file's (modification time, inode) when it was read: every
    /// write replaces the file, so a new inode means new contents.
    tokens_seen: Option<(SystemTime, u64)>,
    sessions: BTreeMap<String, SessionRecord>,
}

impl Store {
    pub fn open(state: &Path) -> io::Result<Store> {
        ensure_dir(state)?;
        let sessions = read_json(&dir(state).join("sessions.json"))?;
        let mut store = Store { state: state.to_path_buf(), tokens: TokenFile::new(), tokens_seen: None, sessions };
        store.refresh()?;
        Ok(store)
    }

    fn refresh(&mut self) -> io::Result<()> {
        let path = dir(&self.state).join("tokens.json");
        let seen = fs::metadata(&path).ok().and_then(|m| Some((m.modified().ok()?, std::os::unix::fs::MetadataExt::ino(&m))));
        if seen != self.tokens_seen || seen.is_none() {
            self.tokens = read_tokens(&self.state)?;
            self.tokens_seen = seen;
        }
        Ok(())
    }

    /// Whose token this is.
    pub fn person_of_token(&mut self, token: &str) -> io::Result<Option<String>> {
        if !well_formed(token) {
            return Ok(None);
        }
        self.refresh()?;
        let hashed = hash(token);
        Ok(self.tokens.iter().find(|(_, h)| **h == hashed).map(|(name, _)| name.clone()))
    }

    /// A new session for the holder of `token`: the cookie to hand out.
    pub fn open_session(&mut self, token: &str) -> io::Result<Option<(String, String)>> {
        let Some(person) = self.person_of_token(token)? else { return Ok(None) };
        let cookie = random_secret()?;
        let now = now();
        self.sessions.retain(|_, s| s.expires > now);
        let mut own: Vec<(u128, String)> =
            self.sessions.iter().filter(|(_, s)| s.who == person).map(|(k, s)| (s.created, k.clone())).collect();
        own.sort();
        for (_, key) in own.iter().take((own.len() + 1).saturating_sub(SESSIONS_PER_PERSON)) {
            self.sessions.remove(key);
        }
        while self.sessions.len() >= MAX_SESSIONS {
            let oldest = self.sessions.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone());
            oldest.map(|k| self.sessions.remove(&k));
        }
        self.sessions.insert(
            hash(&cookie),
            SessionRecord {
                who: person.clone(),
                from: hash(token),
                expires: now + SESSION_SECONDS,
                created: SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0),
            },
        );
        self.save_sessions()?;
        Ok(Some((cookie, person)))
    }

    /// Whose session this is: unexpired, and its token not rotated since.
    pub fn person_of_session(&mut self, cookie: &str) -> io::Result<Option<String>> {
        if !well_formed(cookie) {
            return Ok(None);
        }
        self.refresh()?;
        let Some(session) = self.sessions.get(&hash(cookie)) else { return Ok(None) };
        let current = self.tokens.get(&session.who);
        Ok((session.expires > now() && current == Some(&session.from)).then(|| session.who.clone()))
    }

    pub fn close_session(&mut self, cookie: &str) -> io::Result<()> {
        if self.sessions.remove(&hash(cookie)).is_some() {
            self.save_sessions()?;
        }
        Ok(())
    }

    fn save_sessions(&self) -> io::Result<()> {
        write_private(&dir(&self.state).join("sessions.json"), &self.sessions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_hashed_and_rotation_ends_sessions() {
        let state = tempfile::tempdir().unwrap();
        let issued = issue_missing(state.path(), &["alice".into(), TEACHER.into()]).unwrap();
        assert_eq!(issued.len(), 2);
        let (_, alice_token) = issued.iter().find(|(n, _)| n == "alice").unwrap().clone();
        let file = fs::read_to_string(state.path().join("serve/tokens.json")).unwrap();
        assert!(!file.contains(&alice_token), "only hashes are stored");
        let mode = fs::metadata(state.path().join("serve/tokens.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "root only");
        assert!(issue_missing(state.path(), &["alice".into()]).unwrap().is_empty(), "kept on restart");

        let mut store = Store::open(state.path()).unwrap();
        let (cookie, person) = store.open_session(&alice_token).unwrap().unwrap();
        assert_eq!(person, "alice");
        assert_eq!(store.person_of_session(&cookie).unwrap().as_deref(), Some("alice"));
        assert!(store.open_session(&"0".repeat(64)).unwrap().is_none(), "a wrong token opens nothing");
        assert!(store.person_of_session(&alice_token).unwrap().is_none(), "a token is not a cookie");

        // A second store (a restarted serve) knows the session.
        let mut again = Store::open(state.path()).unwrap();
        assert_eq!(again.person_of_session(&cookie).unwrap().as_deref(), Some("alice"));

        // Rotation ends it; the new token works, the old one does not.
        let new_token = rotate(state.path(), "alice").unwrap();
        assert!(store.person_of_session(&cookie).unwrap().is_none());
        assert!(store.person_of_token(&alice_token).unwrap().is_none());
        assert_eq!(store.person_of_token(&new_token).unwrap().as_deref(), Some("alice"));
    }

    #[test]
    fn one_person_logging_in_again_and_again_keeps_others_sessions() {
        let state = tempfile::tempdir().unwrap();
        let issued = issue_missing(state.path(), &["alice".into(), "bob".into()]).unwrap();
        let token = |name: &str| issued.iter().find(|(n, _)| n == name).unwrap().1.clone();
        let mut store = Store::open(state.path()).unwrap();
        let (bob, _) = store.open_session(&token("bob")).unwrap().unwrap();
        let mut alice = Vec::new();
        for _ in 0..(SESSIONS_PER_PERSON + 5) {
            alice.push(store.open_session(&token("alice")).unwrap().unwrap().0);
        }
        assert!(store.person_of_session(&bob).unwrap().is_some(), "bob's session stays");
        assert!(store.person_of_session(alice.last().unwrap()).unwrap().is_some());
        let live = alice.iter().filter(|c| store.person_of_session(c).unwrap().is_some()).count();
        assert_eq!(live, SESSIONS_PER_PERSON);
    }

    #[test]
    fn malformed_secrets_are_refused_before_lookup() {
        for bad in ["", "abc", &"G".repeat(64), &"A".repeat(64), &"a".repeat(65)] {
            assert!(!well_formed(bad), "{bad}");
        }
        assert!(well_formed(&random_secret().unwrap()));
    }
}
