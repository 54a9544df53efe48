# The course's ten labs on cgroup v2 without systemd; tests/vm_labs.rs
# asserts on what they printed. Each lab as tests/labs.rs runs it on the
# build machine: one instance per student (a solver and one cheater per
# file in cheat/), checked untouched, then solved or cheated, checked again,
# and removed, leaving the base cgroup as it was.
. /vm/cases/lib.sh
cg=/sys/fs/cgroup
course=/vm/course
# The instances' cgroups go under a cgroup the tool is alone in (the
# teacher's scope holds other processes, so limits could not hold there).
mkdir $cg/ci.scope

in_cgroup() {
    dir=$1
    shift
    sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$dir" "$@"
}
base_state() {
    echo "children: $(cd "$1" && find . -mindepth 1 -maxdepth 1 -type d | sort | tr '\n' ' ')"
    echo "subtree_control: $(cat "$1/cgroup.subtree_control")"
}
# as_student INSTANCE SCRIPT: the script, run by the student's shell inside.
as_student() {
    sandbox exec "$1" -- /bin/bash -s < "$2"
}
# What a neighbour's USB stick carries: every file of their home but their lab-info.txt.
copy_home() {
    sandbox exec "$1" -- /usr/bin/find /home/student -type f ! -name lab-info.txt < /dev/null | while read -r file; do
        sandbox exec "$1" -- /bin/cat "$file" < /dev/null |
            sandbox exec "$2" -- /bin/sh -c 'mkdir -p "$(dirname "$1")" && cat > "$1"' copy "$file" || return 1
    done
}

for lab in $course/[0-9]*/; do
    id=$(basename "$lab")
    n=${id%%-*}
    names=/tmp/names-$n.txt
    echo "t$n" > "$names"
    i=0
    for cheat in "$lab"cheat/*.sh; do
        echo "c$n-$i" >> "$names"
        i=$((i + 1))
    done
    check "$n-start" in_cgroup $cg/ci.scope sandbox lab start "$id" --names-from "$names"
    check "$n-untouched" sandbox lab check "$id" --json --names-from "$names"
    check "$n-solve" as_student "lab$n-t$n" "${lab}solution/solve.sh"
    i=0
    for cheat in "$lab"cheat/*.sh; do
        case "$cheat" in */neighbour.sh) check "$n-copy-$i" copy_home "lab$n-t$n" "lab$n-c$n-$i" ;; esac
        check "$n-cheat-$i" as_student "lab$n-c$n-$i" "$cheat"
        i=$((i + 1))
    done
    check "$n-checked" sandbox lab check "$id" --json --names-from "$names"
    while read -r who; do
        check "$n-rm-$who" sandbox rm "lab$n-$who"
    done < "$names"
    check "$n-after" base_state $cg/ci.scope
done

check left sandbox_cgroups
