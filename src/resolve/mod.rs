//! Resolution: from a profile to the exact list of files the rootfs will hold.
