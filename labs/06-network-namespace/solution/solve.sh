#!/bin/bash
# Model solution of lab 06, run inside the student's instance as the student:
#   sandbox exec lab06-NAME -- /bin/bash -s < solution/solve.sh
# The server gets its own stdin/stdout/stderr so that it does not hold the pipe
# of `sandbox exec` open; it keeps running after this script (PID 1 adopts it).
set -u
# Job control, as in the student's own interactive shell: each background
# job gets a process group of its own, so it outlives this script even when
# `sandbox exec` ran it on a terminal (the hangup at the end of the session
# goes to the script's own group only).
set -m
cd /home/student
port=$(sed -n 's/^port: *//p' lab-info.txt)
mkdir -p answers

# One interface: lo.
ip -brief link
cat /proc/net/dev
tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > answers/interfaces

# A web server on our port, in the background.
cd www
python3 -m http.server "$port" --bind 127.0.0.1 </dev/null > ../server.log 2>&1 &
cd ..
for _ in $(seq 100); do
    ss -Hltn | grep -q ":$port " && break
    sleep 0.1
done
ss -ltn

# A client: urllib, and bash's /dev/tcp.
python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/hello.txt').read().decode(), end='')" | tee answers/reply
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /hello.txt HTTP/1.0\r\n\r\n' >&3
cat <&3
exec 3<&-

# The host's lo is another interface, in another network namespace.
echo b > answers/host-loopback

cat >> .bash_history <<HIST
ip -brief link
cd ~/www && python3 -m http.server $port --bind 127.0.0.1 > ~/server.log 2>&1 &
python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/hello.txt').read().decode())"
exec 3<>/dev/tcp/127.0.0.1/$port
HIST
