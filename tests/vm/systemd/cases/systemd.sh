# Cases on a cgroup v2 machine with systemd as PID 1; tests/vm_systemd.rs
# asserts on their output. This shell runs in system.slice/vm-cases.service
# beside other processes, so no limit could hold in its own cgroup: each run
# asks systemd for a delegated scope of its own.
. /vm/cases/lib.sh
P=/vm/profiles/limits.toml
cg=/sys/fs/cgroup
alloc="busybox dd if=/dev/zero of=/dev/null bs=128M count=1"
# Prints each fork's number before it: the last number is how far it got.
forks='for i in $(busybox seq 100); do echo $i; busybox sleep 20 & done'
# The unprivileged user, with the bus of its own service manager.
student="/usr/bin/setpriv --reuid=1000 --regid=1000 --clear-groups env HOME=/home/student XDG_RUNTIME_DIR=/run/user/1000 XDG_DATA_HOME=/home/student/.local/share"

# The store on ext4, as in the other VM: idmapped mounts need a filesystem that has them.
mkdir -p /var/lib/sandbox
busybox truncate -s 2G /run/store.img
busybox losetup /dev/loop0 /run/store.img
busybox mke2fs -q /dev/loop0
mount -t ext4 /dev/loop0 /var/lib/sandbox

# A run that lasts, seen from outside while it does: its cgroup, the scope
# above it, the supervisor leaf beside it, and what systemd says of the scope.
where_it_runs() {
    $1 sandbox run $2 -- busybox sleep 6 > /tmp/where.out 2>&1 &
    run=$!
    dir=
    for i in $(busybox seq 150); do
        dir=$(find $cg -type d -name 'sandbox-run-*' | head -n1)
        [ -n "$dir" ] && [ -f "$dir/memory.max" ] && break
        busybox sleep 0.2
    done
    scope=$(dirname "$dir")
    echo "run pid: $run"
    echo "sandbox cgroup: ${dir#$cg}"
    echo "supervisor leaf: $(cat "$scope/supervisor/cgroup.procs" | tr '\n' ' ')"
    echo "scope subtree_control: $(cat "$scope/cgroup.subtree_control")"
    echo "memory.max: $(cat "$dir/memory.max") pids.max: $(cat "$dir/pids.max")"
    $3 systemctl $4 show -p Transient -p Delegate -p ActiveState "$(basename "$scope")"
    wait $run
    echo "run exit: $?"
    cat /tmp/where.out
}

# No sandbox unit or cgroup left; systemd collects an emptied scope shortly after.
leftovers() {
    for i in $(busybox seq 50); do
        units=$(systemctl list-units --all --plain --no-legend 'sandbox-*'; $student systemctl --user list-units --all --plain --no-legend 'sandbox-*' 2>/dev/null)
        dirs=$(find $cg -name 'sandbox-*')
        [ -z "$units$dirs" ] && break
        busybox sleep 0.2
    done
    echo "$units$dirs"
}

check setup sh -c "cat /proc/1/comm /proc/self/cgroup; cat $cg/system.slice/cgroup.controllers"
check build sandbox build $P
check doctor sandbox doctor --json

# As root: in a scope of its own from PID 1, the limits hold.
check run-memory sandbox run $P -- $alloc
check run-pids sandbox run $P -- sh -c "$forks"
check run-where where_it_runs "" $P "" ""
check run-left leftovers

# Without a bus to ask: one line saying so, then as without systemd (here: refused).
check no-bus env DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/no-such-bus sandbox run $P -- true

# Rootless: the user's own manager (user@1000.service) makes the scope.
check user-manager sh -c "systemctl start user@1000.service && cat $cg/user.slice/user-1000.slice/user@1000.service/cgroup.controllers"
mkdir -p /tmp/student && cp $P /tmp/student/ && chown -R 1000:1000 /tmp/student
U=/tmp/student/limits.toml
check rootless-build $student sandbox build $U
check rootless-memory $student sandbox run $U -- $alloc
check rootless-pids $student sandbox run $U -- sh -c "$forks"
check rootless-where where_it_runs "$student" $U "$student" --user

# Instances, started from the service's cgroup: `start` asks for one
# delegated scope, its supervisors are born in it, and it outlives `start`;
# exec joins the instance's cgroup.
instance_cgroups() {
    for dir in $(find $cg -type d -name 'sandbox-inst-*' | sort); do
        echo "${dir#$cg} $(cat "$dir/memory.max") $(cat "$dir/pids.max")"
    done
    for scope in $(find $cg -type d -name 'sandbox-inst-*' -exec dirname {} \; | sort -u); do
        systemctl show -p Transient -p Delegate -p ActiveState "$(basename "$scope")"
    done
}
check start sandbox start $P --name a --name b
check start-where instance_cgroups
check exec-memory sandbox exec a -- $alloc
check exec-cgroup sandbox exec a -- busybox cat /proc/self/cgroup
check exec-pids sandbox exec a -- sh -c "$forks"
check ps sandbox ps --json
check stop sandbox stop a
check kill9 sh -c "kill -9 $(supervisor_of b); sleep 1"
check gc sandbox gc
check rm sandbox rm a b
check instances-left leftovers

check left leftovers
