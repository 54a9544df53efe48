#!/bin/bash
# Cheat (issue 16): plausible numbers and a `time` line in the history, no limit reached.
cd /home/student
mib=$(sed -n 's/^hold-mib: *//p' lab-info.txt)
mkdir -p answers
echo $((mib * 1024 + 9000)) > answers/hwm-kib
echo 137 > answers/oom-status
echo 90 > answers/oom-mib
echo 58 > answers/pids-reached
echo 0.5 > answers/cpu-ratio
echo "time python3 -c 'for i in range(30_000_000): pass'" >> .bash_history
