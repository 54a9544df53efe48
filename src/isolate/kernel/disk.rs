//! An instance's disk image made a mount, without a mount anywhere: a loop
//! device that clears itself (LO_FLAGS_AUTOCLEAR) carries the image, and the
//! new API (fsopen, fsconfig, fsmount) makes a detached ext4 mount of it. The
//! mount is in no mount namespace until someone attaches it (PID 1 of the
//! sandbox, in its own); when the last reference to it goes (the sandbox's
//! mount namespace, the supervisor's descriptor), the filesystem is unmounted
//! and the loop device, no longer open, detaches itself. A killed supervisor
//! leaks nothing: its descriptors close with it.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, SysError, SysResult, fail};

// From <linux/loop.h> and <linux/mount.h>, spelled out as the rest of the kernel module does.
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

fn open(path: &Path, flags: OFlag) -> SysResult<OwnedFd> {
    nix::fcntl::open(path, flags | OFlag::O_CLOEXEC, Mode::empty()).map_err(fail(format!("open({})", path.display())))
}

/// A free loop device carrying `image`, cleared when its last opener closes
/// it. Another process may take the free device first (EBUSY): ask again.
fn attach_loop(image: &Path, readonly: bool) -> SysResult<(OwnedFd, String)> {
    let file = open(image, if readonly { OFlag::O_RDONLY } else { OFlag::O_RDWR })?;
    let control = open(Path::new("/dev/loop-control"), OFlag::O_RDWR)?;
    // Thirty instances started at once all get the same lowest free device,
    // and only one of them wins it each round: sandboxes take turns (a lock
    // on the control device, held until this returns); losetup and others
    // may still race, hence the rounds.
    // SAFETY: flock on a descriptor we own; released when `control` closes.
    let _ = Errno::result(unsafe { libc::flock(control.as_raw_fd(), libc::LOCK_EX) });
    let mut last = Errno::EBUSY;
    for _ in 0..64 {
        // SAFETY: an ioctl without argument on the loop control device.
        let number = Errno::result(unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) })
            .map_err(fail("ioctl(/dev/loop-control, LOOP_CTL_GET_FREE)"))?;
        let name = format!("/dev/loop{number}");
        let device = open(Path::new(&name), if readonly { OFlag::O_RDONLY } else { OFlag::O_RDWR })?;
        // SAFETY: plain old data; zero is a valid value of every field.
        let mut config: LoopConfig = unsafe { std::mem::zeroed() };
        config.fd = file.as_raw_fd() as u32;
        config.info.lo_flags = LO_FLAGS_AUTOCLEAR | if readonly { LO_FLAGS_READ_ONLY } else { 0 };
        for (dst, src) in config.info.lo_file_name.iter_mut().zip(image.as_os_str().as_encoded_bytes().iter().take(63)) {
            *dst = *src;
        }
        // SAFETY: LOOP_CONFIGURE reads a loop_config of the kernel's layout.
        match Errno::result(unsafe { libc::ioctl(device.as_raw_fd(), LOOP_CONFIGURE, &config as *const LoopConfig) }) {
            Ok(_) => return Ok((device, name)),
            Err(Errno::EBUSY) => last = Errno::EBUSY,
            Err(errno) => return Err(SysError { call: format!("ioctl({name}, LOOP_CONFIGURE, {})", image.display()), errno }),
        }
    }
    Err(SysError {
        call: format!("ioctl(/dev/loopN, LOOP_CONFIGURE, {}): every free loop device was taken meanwhile", image.display()),
        errno: last,
    })
}

fn fsconfig(fs: RawFd, cmd: libc::c_uint, key: Option<&str>, value: Option<&str>) -> SysResult {
    let key_c = key.map(|k| CString::new(k).unwrap_or_default());
    let value_c = value.map(|v| CString::new(v).unwrap_or_default());
    let ptr = |c: &Option<CString>| c.as_ref().map(|c| c.as_ptr()).unwrap_or(std::ptr::null());
    // SAFETY: fsconfig with NUL-terminated strings (or NULL) that outlive the call.
    let rc = unsafe { libc::syscall(libc::SYS_fsconfig, fs, cmd, ptr(&key_c), ptr(&value_c), 0) };
    Errno::result(rc).map(drop).map_err(fail(format!("fsconfig(FS, {}, {:?}, {:?})", cmd, key.unwrap_or(""), value.unwrap_or(""))))
}

/// The detached ext4 mount of `image` (nosuid, nodev; `readonly`: read-only,
/// and nothing written to the image, not even its journal).
pub(super) fn mount_image(image: &Path, readonly: bool) -> SysResult<OwnedFd> {
    let (device, name) = attach_loop(image, readonly)?;
    // SAFETY: fsopen with a NUL-terminated name; the result is a new fd we own.
    let fs =
        Errno::result(unsafe { libc::syscall(libc::SYS_fsopen, c"ext4".as_ptr(), FSOPEN_CLOEXEC) }).map_err(fail("fsopen(\"ext4\")"))?;
    // SAFETY: fd just returned by fsopen.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as RawFd) };
    fsconfig(fs.as_raw_fd(), FSCONFIG_SET_STRING, Some("source"), Some(&name))?;
    if readonly {
        fsconfig(fs.as_raw_fd(), FSCONFIG_SET_FLAG, Some("ro"), None)?;
        fsconfig(fs.as_raw_fd(), FSCONFIG_SET_FLAG, Some("noload"), None)?;
    } else {
        // Deleted files give their blocks back to the host (the loop device punches holes).
        fsconfig(fs.as_raw_fd(), FSCONFIG_SET_FLAG, Some("discard"), None)?;
    }
    fsconfig(fs.as_raw_fd(), FSCONFIG_CMD_CREATE, None, None)
        .map_err(|e| SysError { call: format!("{} (the disk image {} on {name})", e.call, image.display()), errno: e.errno })?;
    let attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | if readonly { MOUNT_ATTR_RDONLY } else { 0 };
    // SAFETY: fsmount of a created context; the result is a new fd we own.
    let mount = Errno::result(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs as libc::c_uint) })
        .map_err(fail("fsmount(FS, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID|MOUNT_ATTR_NODEV)"))?;
    // The filesystem holds the loop device open now: our descriptor may go,
    // and with the mount's end the device clears itself.
    drop(device);
    // SAFETY: fd just returned by fsmount.
    Ok(unsafe { OwnedFd::from_raw_fd(mount as RawFd) })
}
