//! What to do when a step fails: the fix a person needs, by step and errno.

use nix::errno::Errno;

pub fn fix(step: &str, errno: Option<i32>) -> String {
    let errno = errno.map(Errno::from_raw);
    let text = match (step, errno) {
        ("new-user-namespace", _) => {
            "user namespaces are disabled or used up: `sysctl -w user.max_user_namespaces=15000`; on Debian/Ubuntu kernels also \
             `sysctl -w kernel.unprivileged_userns_clone=1`, on Ubuntu 24.04 `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`"
        }
        ("uid-map", _) => "the kernel refused the uid map: without root only your own uid can be mapped; run `sandbox doctor`",
        (s, Some(Errno::EACCES | Errno::EPERM | Errno::EROFS)) if s.starts_with("cgroup") => {
            "the cgroup is not writable: run as root, or from a delegated cgroup (`systemd-run --user --scope -p Delegate=yes sandbox run ...`), or remove [limits]"
        }
        ("mount-proc", Some(Errno::EPERM)) => {
            "procfs cannot be mounted here: the host's /proc has hidden (overmounted) paths, as inside a Docker container; run on a host or a privileged container"
        }
        ("bind-rootfs", _) => {
            "the rootfs could not be mounted: rebuild it with `sandbox build` and check `sandbox doctor` (idmapped mounts)"
        }
        ("pivot-root", Some(Errno::EINVAL)) => {
            "pivot_root needs the new root to be a mount point with private propagation; run `sandbox doctor`"
        }
        ("new-net-namespace" | "loopback-up", _) => {
            "network namespaces are not available: set `[network] mode = \"host\"` in the profile, or enable CONFIG_NET_NS"
        }
        ("mount-sys", _) => "sysfs cannot be mounted in this namespace: set `[network] mode = \"host\"` or run `sandbox doctor`",
        ("seccomp", _) => "the kernel has no seccomp filter support (CONFIG_SECCOMP_FILTER): run `sandbox doctor`",
        ("disk-image", Some(Errno::ENOENT | Errno::ENXIO)) => {
            "no loop devices here: `modprobe loop`, or run on a host (a container without /dev/loop-control has none); \
             the instance's files are on its image, so it needs one"
        }
        ("disk-image", Some(Errno::EUCLEAN | Errno::EINVAL | Errno::EBADMSG)) => {
            "the instance's disk image is damaged: `e2fsck -f instances/ID/disk.img` in the state directory, or `sandbox reset` it (its changes are lost)"
        }
        ("disk-image" | "mount-disk", _) => {
            "the instance's disk image could not be mounted: it needs root, a loop device and ext4 (Linux 5.8+ for LOOP_CONFIGURE); \
             `sandbox doctor` shows what this machine supports"
        }
        ("chroot", Some(Errno::EPERM)) => "chroot mode needs root (CAP_SYS_CHROOT): run with sudo, or use --mode namespace",
        _ => "run `sandbox doctor` to see what this machine supports",
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
