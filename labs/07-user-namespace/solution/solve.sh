#!/bin/bash
# Model solution of lab 07, run inside the student's instance as the student:
#   sandbox exec lab07-NAME -- /bin/bash -s < solution/solve.sh
set -u
cd /home/student
mkdir -p answers

# The id map: "inside outside count".
cat /proc/self/uid_map /proc/self/gid_map
read inside outside count < /proc/self/uid_map
echo $((outside - inside)) > answers/host-root
echo $((outside + $(id -u) - inside)) > answers/host-uid
echo "root inside is $(cat answers/host-root) outside; I am $(cat answers/host-uid) outside"

# Capabilities: none, not even in the bounding set.
grep Cap /proc/self/status
setpriv -d
grep '^CapBnd:' /proc/self/status | cut -f2 > answers/capbnd

# The host's root (uid 0) is not mapped: it shows as the overflow id, nobody.
ls -ld / /etc/passwd /home/student /sys /proc
cat /proc/sys/kernel/overflowuid
stat -c %U /sys > answers/sys-owner

# A new user namespace: refused (seccomp denies unshare).
unshare --user --map-root-user id 2>&1 | tee answers/unshare-error

cat >> .bash_history <<'HIST'
cat /proc/self/uid_map
grep Cap /proc/self/status
ls -ld /sys
unshare --user --map-root-user id
HIST
