#!/bin/bash
# Cheat: a zombie, but under a parent that is not the student's own
# `sleep ZOMBIE-PARENT-SECONDS` (the values are per student), and the answers.
cd /home/student
# Job control, as in the student's own interactive shell: each background
# job gets a process group of its own, so it outlives this script even when
# `sandbox exec` ran it on a terminal (the hangup at the end of the session
# goes to the script's own group only).
set -m
sig=$(sed -n 's/^signal: *//p' lab-info.txt)
mkdir -p answers
echo 1 > answers/init-pid; echo Z > answers/zombie-state; echo b > answers/pid1-exit
echo $((128 + sig)) > answers/signal-status
echo "kill -s $sig %1" >> .bash_history
(sleep 1 & exec sleep 8999) </dev/null >/dev/null 2>&1 &
sleep 2
