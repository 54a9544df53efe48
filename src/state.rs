//! Where the tool keeps its state: `SANDBOX_HOME`, else `/var/lib/sandbox` for
//! root, else `$XDG_DATA_HOME/sandbox` (`~/.local/share/sandbox`).

use std::path::PathBuf;

pub fn home() -> PathBuf {
    if let Some(dir) = std::env::var_os("SANDBOX_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/sandbox");
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    data.join("sandbox")
}
