#!/bin/bash
# Cheat: the answers everyone has, and a history of trying chroot, without trying it.
cd /home/student
word=$(sed -n 's/^word: *//p' lab-info.txt)
mkdir -p answers
echo 0000000000000000 > answers/capeff
echo 1 > answers/no-new-privs
echo "Operation not permitted" > answers/chroot-error
echo b > answers/why-it-holds
cat >> .bash_history <<HIST
mkdir /tmp/$word
perl -e 'chroot("/tmp/$word") or print "\$!\n"'
HIST
