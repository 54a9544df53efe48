//! Opening the host file behind a manifest entry for reading, and nothing else:
//! never a device or a fifo swapped in since the resolver looked (a fifo would
//! block the build forever), and for lab files never through a symbolic link
//! (their paths hold none once resolved, so a link there is a swap).

use std::fs::File;
use std::io;
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};

use crate::resolve::{Entry, Reason};

/// The entry's source, open for reading; `Err` unless it is a regular file.
pub fn open(source: &Path, entry: &Entry) -> io::Result<File> {
    open_regular(source, matches!(entry.reason, Reason::LabFile { .. }))
}

/// `strict`: no symbolic link anywhere in the path.
pub fn open_regular(path: &Path, strict: bool) -> io::Result<File> {
    // O_NONBLOCK: opening a fifo returns at once instead of waiting for a writer.
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let resolve = if strict { ResolveFlag::RESOLVE_NO_SYMLINKS } else { ResolveFlag::RESOLVE_NO_MAGICLINKS };
    let fd = openat2(nix::fcntl::AT_FDCWD, path, OpenHow::new().flags(flags).resolve(resolve)).map_err(|errno| {
        let error = io::Error::from(errno);
        if errno == nix::errno::Errno::ELOOP {
            io::Error::new(error.kind(), "it became a symbolic link after it was resolved; build again")
        } else {
            error
        }
    })?;
    let file = File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "it is no longer a regular file; build again"));
    }
    Ok(file)
}
