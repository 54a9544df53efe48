# Helpers of the case files. A case's result goes to fd 3 (the results port):
#   BEGIN <name>
#   <its output, stdout and stderr>
#   END <name> <exit status>
# tests/vm/rig.rs parses exactly this.

export NO_COLOR=1 TERM=dumb

# check NAME COMMAND...: run it and report.
check() {
    name=$1
    shift
    echo "BEGIN $name" >&3
    "$@" >&3 2>&1 </dev/null
    status=$?
    echo "END $name $status" >&3
    return 0
}

# The unprivileged user `student` (uid 1000): "$student" COMMAND... (unquoted).
student="/usr/bin/setpriv --reuid=1000 --regid=1000 --clear-groups env HOME=/home/student XDG_DATA_HOME=/home/student/.local/share"

# The sandbox cgroups anywhere in the tree (none may be left behind).
sandbox_cgroups() {
    find /sys/fs/cgroup -type d -name 'sandbox-*'
    return 0
}
