#!/bin/bash
# Model solution of lab 03, run inside the student's instance as the student:
#   sandbox exec lab03-NAME -- /bin/bash -s < solution/solve.sh
# Background processes get their own stdin/stdout/stderr so that they do not
# hold the pipe of `sandbox exec` open.
set -u
# Job control, as in the student's own interactive shell: each background
# job gets a process group of its own, so it outlives this script even when
# `sandbox exec` ran it on a terminal (the hangup at the end of the session
# goes to the script's own group only).
set -m
cd /home/student
secs=$(sed -n 's/^sleep-seconds: *//p' lab-info.txt)
zsecs=$(sed -n 's/^zombie-parent-seconds: *//p' lab-info.txt)
sig=$(sed -n 's/^signal: *//p' lab-info.txt)
mkdir -p answers

# Who is PID 1?
ps -eo pid,ppid,comm,args
echo "my shell is PID $$"
ps -o ppid= -p 1 >/dev/null
echo 1 > answers/init-pid

# An orphan: the subshell starts sleep and ends at once; init adopts the sleep.
(sleep "$secs" </dev/null >/dev/null 2>&1 &)
sleep 0.5
ps -eo pid,ppid,args | grep "sleep $secs" | grep -v grep

# A zombie: the subshell forks `sleep 1` and then becomes `sleep 5`, which never
# calls wait(); after a second the child is a zombie (state Z).
(sleep 1 & exec sleep 30) </dev/null >/dev/null 2>&1 &
parent=$!
for _ in $(seq 100); do
    ps -o stat= --ppid "$parent" | grep -q '^Z' && break
    sleep 0.1
done
ps -o pid,ppid,stat,comm --ppid "$parent"
ps -o stat= --ppid "$parent" | head -1 | cut -c1 > answers/zombie-state
kill "$parent"     # its child is reparented to PID 1, which reaps it
wait "$parent" 2>/dev/null

# The zombie the check looks for: the child of a `sleep ZSECS` that never waits.
(sleep 1 & exec sleep "$zsecs") </dev/null >/dev/null 2>&1 &
for _ in $(seq 100); do
    ps -eo stat=,args= | grep -q '^Z' && break
    sleep 0.1
done

# A death by signal N: the shell reports 128 + N.
sleep 300 </dev/null >/dev/null 2>&1 &
kill -s "$sig" $!
wait $!
echo $? > answers/signal-status

# When PID 1 exits, the kernel kills every other process of the namespace.
echo b > answers/pid1-exit

cat >> .bash_history <<HIST
ps -eo pid,ppid,comm
sleep $secs &
exit
(sleep 1 & exec sleep $zsecs) &
sleep 300 &
kill -s $sig %1
wait %1; echo \$?
HIST
