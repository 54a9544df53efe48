# Cases on a cgroup v2 machine without systemd; tests/vm_cgroup2.rs asserts
# on their output. This shell runs in system.slice/teacher.scope beside
# another process, as a login shell sits in its session's scope.
. /vm/cases/lib.sh
P=/vm/profiles/limits.toml
cg=/sys/fs/cgroup
alloc="busybox dd if=/dev/zero of=/dev/null bs=128M count=1"
# Prints each fork's number before it (echo needs no fork): the last number
# is how far it got; the shell gives up at the first refused fork.
forks='for i in $(busybox seq 100); do echo $i; busybox sleep 20 & done'

# in CGROUP COMMAND...: the command alone in a cgroup of its own (a CI job,
# a container, a delegated scope): the shell moves itself there and execs.
in_cgroup() {
    dir=$1
    shift
    sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$dir" "$@"
}
# The state of a base cgroup after the sandboxes in it ended.
base_state() {
    echo "children: $(cd "$1" && find . -mindepth 1 -maxdepth 1 -type d | sort | tr '\n' ' ')"
    echo "subtree_control: $(cat "$1/cgroup.subtree_control")"
    echo "procs: $(cat "$1/cgroup.procs" | tr '\n' ' ')"
}

check build sandbox build $P

# From the teacher's scope: the limits cannot hold there, so no start.
check refused sandbox run $P -- true
check no-limits sandbox run --no-limits $P -- $alloc

# Alone in a cgroup: the tool moves itself into a leaf and its sandbox gets the limits.
mkdir $cg/ci.scope
check doctor-teacher sandbox doctor
check doctor-alone in_cgroup $cg/ci.scope sandbox doctor
check run-memory in_cgroup $cg/ci.scope sandbox run $P -- $alloc
check run-pids in_cgroup $cg/ci.scope sandbox run $P -- sh -c "$forks"
check run-cgroup in_cgroup $cg/ci.scope sandbox run $P -- busybox cat /proc/self/cgroup
check run-after base_state $cg/ci.scope

# In the root cgroup: children directly.
check root-memory in_cgroup $cg sandbox run $P -- $alloc

# --cgroup-parent: a cgroup an admin prepared, from the teacher's scope.
mkdir $cg/lab.slice
check parent-memory sandbox run --cgroup-parent $cg/lab.slice $P -- $alloc
check parent-pids sandbox run --cgroup-parent lab.slice $P -- sh -c "$forks"
check parent-after base_state $cg/lab.slice

# Instances: started alone in ci.scope, then used from the teacher's scope.
check start in_cgroup $cg/ci.scope sandbox start $P --name a --name b
check cpu-max cat $cg/ci.scope/sandbox-inst-*-a/cpu.max
check memory-max cat $cg/ci.scope/sandbox-inst-*-a/memory.max $cg/ci.scope/sandbox-inst-*-a/pids.max
check exec-memory sandbox exec a -- $alloc
check exec-cgroup sandbox exec a -- busybox cat /proc/self/cgroup
check exec-pids sandbox exec a -- sh -c "$forks"
check ps sandbox ps --json
check stop sandbox stop a
check kill9 sh -c "kill -9 $(supervisor_of b); sleep 1"
check gc sandbox gc
check after-gc sandbox ps --json
check instances-after base_state $cg/ci.scope

# lab start and check in an instance with limits.
export SANDBOX_LABS=/vm/labs
check lab-start in_cgroup $cg/ci.scope sandbox lab start 01-vm-limits --name alice
check lab-check sandbox lab check 01-vm-limits --name alice --json
check lab-stop sandbox stop lab01-alice
unset SANDBOX_LABS

# Rootless, in a cgroup the admin delegated to the user (owned by them).
mkdir $cg/students
echo "+memory +pids +cpu" > $cg/students/cgroup.subtree_control
mkdir $cg/students/student
# Delegation: the directory and the files that let the user manage its subtree.
chown 1000:1000 $cg/students/student $cg/students/student/cgroup.procs $cg/students/student/cgroup.subtree_control $cg/students/student/cgroup.threads
# The user's own copy: `build` writes the lock file beside the profile.
mkdir -p /tmp/student && cp $P /tmp/student/ && chown -R 1000:1000 /tmp/student
P=/tmp/student/limits.toml
check rootless-build $student sandbox build $P
check rootless-refused $student sandbox run $P -- true
check rootless-memory in_cgroup $cg/students/student $student sandbox run $P -- $alloc
check rootless-pids in_cgroup $cg/students/student $student sandbox run $P -- sh -c "$forks"
check rootless-after base_state $cg/students/student

check left sandbox_cgroups
