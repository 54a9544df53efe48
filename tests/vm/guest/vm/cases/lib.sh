# Helpers of the case files. A case's result goes to fd 3 (the results port):
#   BEGIN <name>
#   <its output, stdout and stderr>
#   END <name> <exit status>
#   TIME <name> <seconds> s   (a note, outside the case)
# tests/vm/rig.rs parses exactly this.

export NO_COLOR=1 TERM=dumb

# check NAME COMMAND...: run it and report.
check() {
    name=$1
    shift
    started=$(date +%s)
    echo "BEGIN $name" >&3
    "$@" >&3 2>&1 </dev/null
    status=$?
    echo "END $name $status" >&3
    # A note outside the case: where a slow VM spends its time.
    echo "TIME $name $(($(date +%s) - started)) s" >&3
    return 0
}

# The unprivileged user `student` (uid 1000): "$student" COMMAND... (unquoted).
student="/usr/bin/setpriv --reuid=1000 --regid=1000 --clear-groups env HOME=/home/student XDG_DATA_HOME=/home/student/.local/share"

# The sandbox cgroups anywhere in the tree (none may be left behind).
sandbox_cgroups() {
    find /sys/fs/cgroup -type d -name 'sandbox-*'
    return 0
}

# The supervisor of a running instance (root's state directory).
supervisor_of() {
    sed -n 's/.*"supervisor":\([0-9]*\).*/\1/p' /var/lib/sandbox/instances/"$1"/running.json
}
