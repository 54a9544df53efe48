#!/bin/bash
# Model solution of lab 02, run inside the student's instance as the student:
#   sandbox exec lab02-NAME -- /bin/bash -s < solution/solve.sh
set -u
cd /home/student
word=$(sed -n 's/^word: *//p' lab-info.txt)
mkdir -p answers

# What may this shell do? Five capability sets, all empty, and no_new_privs.
grep -E '^(Cap|NoNewPrivs)' /proc/self/status
grep '^CapEff:' /proc/self/status | cut -f2 > answers/capeff
grep '^NoNewPrivs:' /proc/self/status | cut -f2 > answers/no-new-privs

# Try the first step of the escape: chroot needs CAP_SYS_CHROOT.
mkdir -p "/tmp/$word"
perl -e 'chroot("/tmp/'"$word"'") or print "$!\n"' | tee answers/chroot-error

# pivot_root detached the old root: .. from / is / and nothing leads to the host.
echo b > answers/why-it-holds

cat >> .bash_history <<HIST
grep Cap /proc/self/status
mkdir /tmp/$word
perl -e 'chroot("/tmp/$word") or print "\$!\n"'
HIST
