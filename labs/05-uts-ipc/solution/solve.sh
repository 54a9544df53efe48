#!/bin/bash
# Model solution of lab 05, run inside the student's instance as the student:
#   sandbox exec lab05-NAME -- /bin/bash -s < solution/solve.sh
set -u
cd /home/student
size=$(sed -n 's/^segment-bytes: *//p' lab-info.txt)
mkdir -p answers

# UTS: the name is the profile's; changing it needs CAP_SYS_ADMIN.
uname -n | tee answers/hostname
readlink /proc/self/ns/uts
python3 -c 'import socket; socket.sethostname("mine")' 2>&1 | tail -1 | tee answers/sethostname-error

# IPC: an empty namespace of our own; a segment made here stays here.
ipcs -m
ipcmk -M "$size"
ipcs -m
readlink /proc/self/ns/ipc | tee answers/ipc-ns

# Each instance has its own IPC namespace: the neighbour sees only hers.
echo b > answers/neighbour

cat >> .bash_history <<HIST
uname -n
python3 -c 'import socket; socket.sethostname("mine")'
ipcs
ipcmk -M $size
ipcs -m
readlink /proc/self/ns/ipc
HIST
