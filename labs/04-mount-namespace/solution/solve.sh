#!/bin/bash
# Model solution of lab 04, run inside the student's instance as the student:
#   sandbox exec lab04-NAME -- /bin/bash -s < solution/solve.sh
set -u
cd /home/student
word=$(sed -n 's/^word: *//p' lab-info.txt)
mkdir -p answers

# The mount table: ID, parent ID, major:minor, root, mount point, options,
# optional tags (shared:N, master:N), " - ", type, source, super options.
cat /proc/self/mountinfo
findmnt -o TARGET,SOURCE,FSTYPE,PROPAGATION

# The mount ID of /: the line whose fifth field is "/".
grep -E '^[0-9]+ [0-9]+ [0-9]+:[0-9]+ [^ ]+ / ' /proc/self/mountinfo | tail -1 | cut -d' ' -f1 > answers/root-mount-id

# No shared:/master: tags anywhere: every mount is private.
if grep -Eq ' (shared|master):[0-9]+' /proc/self/mountinfo; then echo shared; else echo private; fi > answers/propagation

# /tmp is a mount of its own, a tmpfs (memory), not part of the overlay root.
touch "/tmp/$word"
findmnt -n -o FSTYPE -T "/tmp/$word" > answers/tmp-fstype

# pivot_root moves mounts: the new root must be a mount point.
echo a > answers/pivot-root

cat >> .bash_history <<HIST
cat /proc/self/mountinfo
findmnt -o TARGET,SOURCE,FSTYPE,PROPAGATION
touch /tmp/$word
findmnt -T /tmp/$word
HIST
