#!/bin/bash
# Model solution of lab 08, run inside the student's instance as the student:
#   sandbox exec lab08-NAME -- /bin/bash -s < solution/solve.sh
set -u
cd /home/student
mib=$(sed -n 's/^hold-mib: *//p' lab-info.txt)
mkdir -p answers

# What we see: the host's memory and CPUs; our cgroup is "/" (cgroup namespace).
free -m
nproc
cat /proc/self/cgroup
ls /sys/fs/cgroup

# Holding a few MiB is fine: VmHWM is the peak resident memory.
python3 -c "x = b'x' * ($mib << 20); print(open('/proc/self/status').read())" | grep -E 'VmHWM|VmRSS'
python3 -c "x = b'x' * ($mib << 20); print(open('/proc/self/status').read())" | sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' > answers/hwm-kib

# Past the limit: the OOM killer sends SIGKILL (9): status 128 + 9.
python3 hog.py > hog.log
echo $? > answers/oom-status
tail -1 hog.log | cut -d' ' -f1 > answers/oom-mib
echo "killed at $(cat answers/oom-mib) MiB, status $(cat answers/oom-status)"

# The pids limit: fork fails with EAGAIN.
python3 forks.py | tee forks.log
sed -n 's/^fork failed after \([0-9]*\) children.*/\1/p' forks.log > answers/pids-reached

# Half a CPU: real time is about twice the CPU time.
TIMEFORMAT='%R %U'
t=$( { time python3 -c 'for i in range(30_000_000): pass' ; } 2>&1 )
echo "real user: $t"
python3 -c "r, u = map(float, '$t'.split()); print(round(u / r, 2))" > answers/cpu-ratio
cat answers/cpu-ratio

cat >> .bash_history <<HIST
free -m
cat /proc/self/cgroup
python3 -c "x = b'x' * ($mib << 20); print(open('/proc/self/status').read())" | grep VmHWM
python3 hog.py > hog.log; echo \$?
python3 forks.py
time python3 -c 'for i in range(30_000_000): pass'
HIST
