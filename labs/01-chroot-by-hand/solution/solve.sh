#!/bin/bash
# Model solution of lab 01, run inside the student's instance as the student:
#   sandbox exec lab01-NAME -- /bin/bash -s < solution/solve.sh
set -eu
cd /home/student

# 1. What does bash need? Its ELF interpreter (PT_INTERP) and its DT_NEEDED
#    libraries are plain strings in the file; the loader in trace mode (what
#    ldd does) says where it finds each one.
grep -a -o '/lib64/ld-linux[^[:space:]]*\.so\.2' /usr/bin/bash | head -1
grep -a -o 'lib[a-z0-9_]*\.so\.[0-9]*' /usr/bin/bash | sort -u
/lib64/ld-linux-x86-64.so.2 --list /usr/bin/bash

# 2. Copy them by hand, keeping their paths (cp follows the symbolic links).
mkdir -p jail/bin jail/lib64 jail/usr/lib/x86_64-linux-gnu
cp /usr/bin/bash jail/bin/
cp /lib64/ld-linux-x86-64.so.2 jail/lib64/
cp /usr/lib/x86_64-linux-gnu/libc.so.6 /usr/lib/x86_64-linux-gnu/libtinfo.so.6 jail/usr/lib/x86_64-linux-gnu/

# 3. Test the jail without chroot: the jail's loader, only the jail's libraries.
j=/home/student/jail
"$j/lib64/ld-linux-x86-64.so.2" --inhibit-cache --library-path "$j/usr/lib/x86_64-linux-gnu" --list "$j/bin/bash"
"$j/lib64/ld-linux-x86-64.so.2" --inhibit-cache --library-path "$j/usr/lib/x86_64-linux-gnu" "$j/bin/bash" -c 'echo the jail bash runs'

# 4. The flag: inside the jail, / is ~/jail.
cp flag.txt jail/flag.txt

# 5. The experiment: a bash whose interpreter path names a file that does not exist.
sed 's/ld-linux-x86-64\.so\.2/ld-linux-x86-64.so.9/' /usr/bin/bash > bash-broken
chmod +x bash-broken
./bash-broken -c true 2>&1 || echo "exit status $?"
mkdir -p answers
echo "/lib64/ld-linux-x86-64.so.2" > answers/missing

# The commands a student would have typed.
cat >> .bash_history <<'EOF'
/lib64/ld-linux-x86-64.so.2 --list /usr/bin/bash
mkdir -p jail/bin jail/lib64 jail/usr/lib/x86_64-linux-gnu
cp /usr/bin/bash jail/bin/
cp /lib64/ld-linux-x86-64.so.2 jail/lib64/
cp /usr/lib/x86_64-linux-gnu/libc.so.6 /usr/lib/x86_64-linux-gnu/libtinfo.so.6 jail/usr/lib/x86_64-linux-gnu/
cp flag.txt jail/flag.txt
EOF
