#!/bin/bash
# Model solution of lab 10, run inside the student's instance as the student:
#   sandbox exec lab10-NAME -- /bin/bash -s < solution/solve.sh
set -u
cd /home/student
loops=$(sed -n 's/^loops: *//p' lab-info.txt)
mkdir -p answers

# The host's kernel and the host's hardware.
uname -r | tee answers/kernel
cat /proc/version
head -3 /proc/meminfo
sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\) kB$/\1/p' /proc/meminfo > answers/memtotal-kib
grep -m1 'model name' /proc/cpuinfo
nproc

# Starting a process inside costs what it costs on the host: a fork and an exec.
TIMEFORMAT=%R
t=$( { time (for i in $(seq 100); do /bin/true; done) ; } 2>&1 )
python3 -c "print(round(float('$t') * 1000 / 100, 2))" | tee answers/process-ms

# CPU-bound code runs directly on the CPU, with no emulation: its user time is
# the host's (real is longer: the instance has half a core).
TIMEFORMAT=%U
t=$( { time python3 -c "for i in range($loops): pass" ; } 2>&1 )
echo "$t" | tee answers/loop-seconds

# A VM runs a kernel of its own; containers share the host's.
echo "the kernel: each VM boots its own kernel, all containers share the host's" > answers/vm-isolates

cat >> .bash_history <<HIST
uname -r
head -1 /proc/meminfo
time (for i in \$(seq 100); do /bin/true; done)
time python3 -c 'for i in range($loops): pass'
HIST
