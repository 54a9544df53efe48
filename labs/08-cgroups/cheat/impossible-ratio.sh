#!/bin/bash
# Cheat: every limit really reached, but a CPU ratio no half core can give.
cd /home/student
mib=$(sed -n 's/^hold-mib: *//p' lab-info.txt)
mkdir -p answers
python3 -c "x = b'x' * ($mib << 20); print(open('/proc/self/status').read())" | sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' > answers/hwm-kib
python3 hog.py > hog.log
echo $? > answers/oom-status
tail -1 hog.log | cut -d' ' -f1 > answers/oom-mib
python3 forks.py > forks.log
sed -n 's/^fork failed after \([0-9]*\) children.*/\1/p' forks.log > answers/pids-reached
python3 -c 'for i in range(30_000_000): pass'
echo 7 > answers/cpu-ratio
echo "time python3 -c 'for i in range(30_000_000): pass'" >> .bash_history
