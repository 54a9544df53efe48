#!/bin/bash
# Model solution of lab 09, run inside the student's instance as the student:
#   sandbox exec lab09-NAME -- /bin/bash -s < solution/solve.sh
set -u
cd /home/student
word=$(sed -n 's/^word: *//p' lab-info.txt)
mkdir -p answers

# The root is an overlay: lowerdir (the shared rootfs), upperdir (this
# instance's layer), workdir (overlayfs's scratch space).
grep -E '^[0-9]+ [0-9]+ [0-9]+:[0-9]+ [^ ]+ / ' /proc/self/mountinfo | tail -1
grep -E '^[0-9]+ [0-9]+ [0-9]+:[0-9]+ [^ ]+ / ' /proc/self/mountinfo | tail -1 | grep -o 'upperdir=[^,]*' | cut -d= -f2- > answers/upperdir

# Files of the lower layer: hard links into the store (link count > 1).
stat -c '%n  inode %i  links %h' config.txt old-notes.txt

# Change: copy-up, then the copy in the upper layer is changed (new inode).
sed -i "s/^color = .*/color = $word/" config.txt
stat -c '%n  inode %i  links %h' config.txt

# Add: only in the upper layer.
echo "a file of my own" > "$word.txt"

# Delete: the lower file cannot be removed, so overlayfs hides it with a whiteout.
rm old-notes.txt
ls -la
echo whiteout > answers/whiteout

cat >> .bash_history <<HIST
cat /proc/self/mountinfo
vi config.txt
echo "a file of my own" > $word.txt
rm old-notes.txt
HIST
