#!/usr/bin/python3
"""Helpers of bench/run: the parts that are easier in Python than in bash.

    helpers.py cgroups                      the cgroup hierarchies and this process's cgroup in each (JSON)
    helpers.py cgroup-dirs                  every cgroup directory on the machine, one a line
    helpers.py crun-path NAME               a cgroupsPath for crun under our own cgroups, and the
                                            directories crun will create that do not exist yet (JSON)
    helpers.py oci-config ROOTFS OUT CGPATH [LIMITS.toml]
                                            an OCI config.json for runc/crun (limits from the profile)
    helpers.py treesum DIR                  one digest of a tree's paths, kinds, modes, sizes, times
    helpers.py sizes OUT PROFILE NAME=DIR... bytes (du -sb), entries, the profile's programs found by name
    helpers.py concurrent SANDBOX PROFILE N SECONDS OUT
                                            measure 3: N `sandbox run` at once
    helpers.py strace-phases FULL OUT LIGHT...  where the start time goes, from `strace -f -ttt` traces
    helpers.py before-exec TRACE OUT        the system calls of a start before the command's execve
    helpers.py report WORK OUT              bench/RESULTS.md from everything in WORK

Nothing here asserts a timing: the numbers are reported, never judged.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib

# ---------------------------------------------------------------- cgroups


def hierarchies():
    """The cgroup mounts of this mount namespace and our cgroup in each.

    v1: one hierarchy per mount, named by its controllers (or name=...);
    v2: the "" hierarchy. Paths come from /proc/self/cgroup, mount points and
    their roots from /proc/self/mountinfo.
    """
    own = {}
    for line in open("/proc/self/cgroup"):
        num, ctrls, path = line.rstrip("\n").split(":", 2)
        own[ctrls] = path
    out = []
    for line in open("/proc/self/mountinfo"):
        left, right = line.split(" - ", 1)
        fields = left.split()
        fstype, _source, opts = right.split()[:3]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        mountpoint, root = fields[4], fields[3]
        if fstype == "cgroup2":
            key = ""
        else:
            names = [o for o in opts.split(",") if o not in ("rw", "ro") and "=" not in o or o.startswith("name=")]
            keys = [k for k in own if k and set(k.split(",")) == set(names)]
            key = keys[0] if keys else ",".join(names)
        out.append({"mount": mountpoint, "root": root, "kind": "v2" if fstype == "cgroup2" else "v1",
                    "controllers": key, "own": own.get(key)})
    return out


def cgroup_dirs():
    dirs = []
    for h in hierarchies():
        for top, subdirs, _files in os.walk(h["mount"]):
            dirs.append(top)
    return sorted(dirs)


def components(path):
    return [c for c in path.split("/") if c]


def crun_path(name):
    """crun reads cgroupsPath as absolute in every hierarchy (a relative one is
    taken from the root). On a v1 machine our own cgroup can differ between
    hierarchies (here memory is /process_api/<id>, the rest /). A path under
    the deepest of them is under ours in every hierarchy as long as the others
    are its prefixes; crun then creates the missing intermediate directories,
    which bench/run removes afterwards (the list is returned)."""
    hs = [h for h in hierarchies() if h["own"] is not None and h["kind"] == "v1"] or \
         [h for h in hierarchies() if h["own"] is not None]
    deepest = max((components(h["own"]) for h in hs), key=len)
    for h in hs:
        mine = components(h["own"])
        if deepest[: len(mine)] != mine:
            return {"error": f"our cgroups differ between hierarchies ({h['controllers']}: {h['own']}); "
                             "no single cgroupsPath is under all of them"}
    path = "/" + "/".join(deepest + [name])
    create = []
    for h in hs:
        mine = components(h["own"])
        for depth in range(len(mine) + 1, len(deepest) + 1):
            d = os.path.join(h["mount"], *components(os.path.relpath("/" + "/".join(deepest[:depth]), h["root"])))
            if not os.path.isdir(d):
                create.append(d)
    return {"cgroupsPath": path, "intermediate": sorted(create, key=lambda p: -p.count("/"))}


# ---------------------------------------------------------------- OCI bundle


def parse_size(s):
    if isinstance(s, int):
        return s
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * units[s[-1].upper()] if s[-1].upper() in units else int(s)


def oci_config(rootfs, out, cgroups_path, limits_profile=None):
    """What the sandbox profile does, said to runc/crun: the same rootfs read-only,
    the student's uid 1000 with no capabilities and no_new_privs, a new user
    namespace mapping root to an unprivileged range, pid/net/ipc/uts/mount/cgroup
    namespaces, /proc, a tmpfs /dev and /tmp, read-only /sys, and, for the limits
    variant, the profile's memory/pids/cpu as linux.resources."""
    config = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 1000, "gid": 1000},
            "args": ["/bin/true"],
            "env": ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/student", "TERM=xterm", "LANG=C.UTF-8"],
            "cwd": "/home/student",
            "capabilities": {"bounding": [], "effective": [], "permitted": [], "inheritable": [], "ambient": []},
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": True},
        "hostname": "lab",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("user", "pid", "network", "ipc", "uts", "mount", "cgroup")],
            "uidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}],
            "cgroupsPath": cgroups_path,
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                            "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }
    if limits_profile:
        limits = tomllib.load(open(limits_profile, "rb")).get("limits", {})
        resources = {}
        if "memory" in limits:
            resources["memory"] = {"limit": parse_size(limits["memory"])}
        if "pids" in limits:
            resources["pids"] = {"limit": int(limits["pids"])}
        if "cpu" in limits:
            resources["cpu"] = {"quota": int(float(limits["cpu"]) * 100000), "period": 100000}
        config["linux"]["resources"] = resources
    with open(out, "w") as f:
        json.dump(config, f, indent=1)


# ---------------------------------------------------------------- trees


def treesum(root):
    import hashlib
    h = hashlib.sha256()
    for top, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            p = os.path.join(top, name)
            st = os.lstat(p)
            link = os.readlink(p) if os.path.islink(p) else ""
            h.update(f"{os.path.relpath(p, root)}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0{link}\n".encode())
    return h.hexdigest()


def resolve_inside(root, path, depth=0):
    """Follow symlinks as the kernel would after chroot(root); None if dangling."""
    if depth > 40:
        return None
    parts = components(path)
    cur = "/"
    for i, part in enumerate(parts):
        nxt = os.path.join(cur, part)
        host = os.path.join(root, nxt.lstrip("/"))
        if os.path.islink(host):
            target = os.readlink(host)
            base = target if target.startswith("/") else os.path.join(cur, target)
            rest = "/".join(parts[i + 1:])
            return resolve_inside(root, os.path.normpath(os.path.join(base, rest)), depth + 1)
        if not os.path.lexists(host):
            return None
        cur = nxt
    return os.path.join(root, cur.lstrip("/"))


def sizes(out, pairs, programs):
    result = {}
    for pair in pairs:
        name, d = pair.split("=", 1)
        du = int(subprocess.run(["du", "-sb", d], capture_output=True, text=True, check=True).stdout.split()[0])
        entries = sum(len(ds) + len(fs) for _t, ds, fs in os.walk(d))
        found = [p for p in programs
                 if any((r := resolve_inside(d, f"{b}/{p}")) and os.path.isfile(r) and os.access(r, os.X_OK)
                        for b in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"))]
        result[name] = {"bytes": du, "entries": entries, "programs_by_name": len(found),
                        "programs": len(programs), "missing": sorted(set(programs) - set(found))}
    json.dump(result, open(out, "w"), indent=1)


# ---------------------------------------------------------------- measure 3


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def status_kb(pid, key):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def pss_kb(pid):
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def mem_available_kb():
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])


def concurrent(sandbox, profile, n, seconds, out):
    """Start N `sandbox run PROFILE -- /bin/sleep SECONDS` at once, as a teacher's
    script would (each a background process), and poll until every one has its
    sleep running inside. The process tree of one instance is
    supervisor -> init (PID 1 inside) -> sleep. With SANDBOX `bwrap` and
    PROFILE a rootfs directory: N bubblewrap sandboxes of the same rootfs,
    bwrap -> bwrap (PID 1 inside) -> sleep. Then read VmRSS of the two
    wrapper processes and PSS (shared pages counted once) of the whole tree,
    stop every first process by its PID (SIGTERM; it forwards the signal
    inside), and check nothing is left."""
    if sandbox == "bwrap":
        argv = ["bwrap", "--unshare-all", "--unshare-user", "--uid", "1000", "--gid", "1000", "--die-with-parent",
                "--ro-bind", profile, "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "/bin/sleep", str(seconds)]
    else:
        argv = [sandbox, "run", profile, "--", "/bin/sleep", str(seconds)]
    before = mem_available_kb()
    t0 = time.monotonic()
    procs = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(n)]
    spawned = time.monotonic() - t0
    trees = {}
    first = None
    finished_early = 0
    try:
        while len(trees) < n and time.monotonic() - t0 < 60:
            for p in procs:
                if p.pid in trees:
                    continue
                if p.poll() is not None:
                    finished_early += 1
                    trees[p.pid] = None
                    continue
                chain = [p.pid]
                while len(chain) < 3:
                    k = children(chain[-1])
                    if not k:
                        break
                    chain.append(k[0])
                if len(chain) == 3 and comm(chain[2]) == "sleep":
                    trees[p.pid] = chain
            if trees and first is None:
                first = time.monotonic() - t0
            time.sleep(0.002)
        all_running = time.monotonic() - t0
        live = [c for c in trees.values() if c]
        mem = {
            "supervisor_rss_kb": [status_kb(c[0], "VmRSS") for c in live],
            "init_rss_kb": [status_kb(c[1], "VmRSS") for c in live],
            "instance_pss_kb": [sum(pss_kb(x) for x in c) for c in live],
            "wrapper_pss_kb": [sum(pss_kb(x) for x in c[:2]) for c in live],
        }
        during = mem_available_kb()
    finally:
        # Stop by PID only: the supervisors we started. SIGTERM is forwarded to
        # the command; a supervisor that does not end gets SIGKILL, and its
        # sandbox dies with it (parent-death signal).
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        codes = []
        for p in procs:
            try:
                codes.append(p.wait(timeout=max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait())
    time.sleep(0.2)
    leftover = [x for c in trees.values() if c for x in c[1:] if comm(x) in ("sandbox", "sleep", "bwrap")]
    # The supervisor names its cgroup sandbox-run-<its pid>-...: none may stay.
    import glob
    leftover_cgroups = []
    for h in hierarchies():
        if h["own"] is None:
            continue
        mine = os.path.join(h["mount"], os.path.relpath(h["own"], h["root"]))
        for p in procs:
            leftover_cgroups += glob.glob(os.path.join(mine, f"sandbox-run-{p.pid}-*"))
    result = {
        "n": n, "seconds": seconds, "spawned_s": spawned, "first_running_s": first,
        "all_running_s": all_running if len(live) == n else None, "running": len(live),
        "finished_early": finished_early, "mem_available_drop_kb": before - during,
        "exit_codes": sorted(set(codes)), "leftover_pids": leftover, "leftover_cgroups": leftover_cgroups, **mem,
    }
    json.dump(result, open(out, "w"), indent=1)


# ---------------------------------------------------------------- strace


LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(?:<\.\.\. )?(\w+)")


def events_of(trace):
    out = []
    for line in open(trace):
        m = LINE.match(line)
        if m:
            out.append((int(m.group(1)), float(m.group(2)), m.group(3), line))
    return out


def boundaries(events):
    """Start, the supervisor's first fork, the execve of the command, the end."""
    sup, start = events[0][0], events[0][1]
    fork = next(t for pid, t, call, _ in events if pid == sup and call in ("clone", "clone3", "fork", "vfork"))
    exe = next((t for pid, t, call, line in events if call == "execve" and pid != sup and '"/bin/true"' in line), fork)
    return start, fork, exe, events[-1][1]


PHASES = ["supervisor before its first fork (profile, resolve, store lookup, cgroup)",
          "first fork to execve of the command (namespaces, mounts, pivot_root, seccomp)",
          "execve of the command to the supervisor's exit (the command, teardown)"]


def strace_phases(full, out, light):
    """Split `sandbox run -- /bin/true` into three phases at the supervisor's
    first fork and the command's execve. Durations: the median over several
    runs traced with `strace -f --seccomp-bpf -e trace=process`, which stops
    only at those few calls and leaves the others at full speed. Counts of
    each phase's system calls: one run traced in full (`strace -f`)."""
    durations = [[], [], []]
    for trace in light:
        b = boundaries(events_of(trace))
        for i in range(3):
            durations[i].append(b[i + 1] - b[i])
    ev = events_of(full)
    b = boundaries(ev)
    result = []
    for i, name in enumerate(PHASES):
        calls = {}
        for _pid, t, call, _ in ev:
            if b[i] <= t < b[i + 1] or (i == 2 and t == b[3]):
                calls[call] = calls.get(call, 0) + 1
        top = sorted(calls.items(), key=lambda kv: -kv[1])[:5]
        d = sorted(durations[i])
        result.append({"phase": name, "median_s": d[len(d) // 2], "syscalls": sum(calls.values()), "top": top})
    json.dump({"runs": len(light), "phases": result}, open(out, "w"), indent=1)


def before_exec(trace, out):
    """The system calls of every process of a start before the command's
    execve, from one `strace -f` trace ("resumed" lines are halves of one call)."""
    calls = {}
    for line in open(trace):
        if 'execve("/bin/true"' in line:
            break
        m = re.match(r"^(\d+)\s+(\w+)\(", line)
        if m and "resumed>" not in line:
            calls[m.group(2)] = calls.get(m.group(2), 0) + 1
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:10]
    json.dump({"calls": sum(calls.values()), "top": top}, open(out, "w"), indent=1)


# ---------------------------------------------------------------- report


def load(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def results(hf):
    """hyperfine JSON -> {name: (mean, stddev, min, max, runs)} in seconds."""
    out = {}
    for r in (hf or {}).get("results", []):
        out[r["command"]] = (r["mean"], r["stddev"] or 0.0, r["min"], r["max"], len(r["times"]))
    return out


def ratio(a, b):
    """a/b with the relative errors added in quadrature, as hyperfine does."""
    (ma, sa), (mb, sb) = a[:2], b[:2]
    r = ma / mb
    return r, r * ((sa / ma) ** 2 + (sb / mb) ** 2) ** 0.5


def fr(rr):
    """A ratio and its spread: three digits where they mean something."""
    r, e = rr
    return f"{r:.2f} ± {e:.2f}" if r < 10 else f"{r:.1f} ± {e:.1f}"


def net_ratio(work_in, start_in, work_out, start_out):
    """(work_in - start_in) / (work_out - start_out): the workload's own time
    inside against outside, each side's start time taken away; the spread
    adds the four standard deviations in quadrature."""
    a, b = work_in[0] - start_in[0], work_out[0] - start_out[0]
    sa = (work_in[1] ** 2 + start_in[1] ** 2) ** 0.5
    sb = (work_out[1] ** 2 + start_out[1] ** 2) ** 0.5
    r = a / b
    return r, r * ((sa / a) ** 2 + (sb / b) ** 2) ** 0.5


def ms(r):
    return f"{r[0] * 1000:.1f} ± {r[1] * 1000:.1f}"


def run_cmd(args):
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=20)
        return (p.stdout + p.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"({e})"


def first_line(args):
    text = run_cmd(args)
    return text.splitlines()[0] if text else ""


def tsv(path):
    try:
        return [line.rstrip("\n").split("\t", 1) for line in open(path) if line.strip()]
    except OSError:
        return []


def headline(t1, t2, t4, t5, ph, work):
    """The few ratios worth quoting, each from one table's single run."""
    H = ["## Headline", ""]

    def r(a, b):
        if not (a and b):
            return "n/a"
        x = ratio(a, b)[0]
        return f"{x:.2f}×" if x < 1 else f"{x:.1f}×"
    ns, lim = t1.get("sandbox namespace"), t1.get("sandbox namespace +limits")
    given, given_lim = t1.get("sandbox namespace, store path given"), t1.get("sandbox namespace, store path given +limits")
    if given:
        H.append(f"- The launch itself (given the store path, as the store record will give it): "
                 f"{given[0] * 1000:.1f} ms, {r(given, t1.get('bwrap'))} bwrap, {r(given, t1.get('unshare + chroot'))} "
                 f"unshare+chroot; with limits {r(given_lim, t1.get('crun +limits'))} crun with the same limits; "
                 f"chroot mode {r(t1.get('sandbox chroot, store path given'), t1.get('chroot'))} plain chroot.")
    if ns:
        peers = ", ".join(f"{r(ns, t1.get(p))} {p}" for p in ("bwrap", "crun", "runc", "systemd-nspawn") if t1.get(p))
        H.append(f"- Start to exit of `/bin/true`: `sandbox run` (namespace) takes {ns[0] * 1000:.0f} ms, "
                 f"{peers}; with cgroup limits {r(lim, t1.get('runc +limits'))} runc and "
                 f"{r(lim, t1.get('crun +limits'))} crun with the same limits.")
    if ph:
        total = sum(p["median_s"] for p in ph["phases"])
        pre = ph["phases"][0]
        H.append(f"- Where it goes: {pre['median_s'] / total * 100:.0f}% of a start is the supervisor before its "
                 f"first fork, re-resolving the profile ({pre['syscalls']} system calls, mostly statx); "
                 f"the isolation itself (namespaces to exec) takes {ph['phases'][1]['median_s'] * 1000:.0f} ms.")
    cold, warm, jk = t2.get("sandbox build, cold"), t2.get("sandbox build, warm"), t2.get("jailkit (jk_init + jk_cp)")
    if cold and jk:
        H.append(f"- Building the rootfs: cold {r(cold, jk)} jailkit's time, warm {r(warm, jk)} "
                 f"(with every runtime file jailkit leaves out).")
    c50 = load(os.path.join(work, "concurrent-50.json"))
    if c50 and c50.get("all_running_s"):
        pss = [x for x in c50["instance_pss_kb"] if x]
        H.append(f"- 50 `sandbox run` started at once are all running after {c50['all_running_s']:.1f} s; "
                 f"one instance costs about {sum(pss) / len(pss) / 1024:.1f} MiB (PSS of its processes, sleep included).")
    parts = []
    for wl, label in (("sha256sum 128 MiB", "CPU-bound"), ("dd bs=1 x 2M", "syscall-bound")):
        h, n = t4.get(f"host: {wl}"), t4.get(f"namespace: {wl}")
        ht, nt = t4.get("host: /bin/true"), t4.get("namespace: /bin/true")
        if h and n and ht and nt:
            parts.append(f"{label} {fr(net_ratio(n, nt, h, ht))}× the host")
    if parts:
        H.append(f"- Inside the sandbox, start time subtracted: {', '.join(parts)} "
                 "(a ratio whose spread includes 1 is no measurable difference).")
    t6 = results(load(os.path.join(work, "t6.json")))
    if t6.get("sandbox exec") and t6.get("nsenter --all"):
        H.append(f"- `sandbox exec` into a running instance: {r(t6['sandbox exec'], t6['nsenter --all'])} "
                 f"`nsenter --all` into the same PID 1 (which joins no cgroup and drops nothing).")
    b50 = load(os.path.join(work, "concurrent-bwrap-50.json"))
    if c50 and b50 and c50.get("all_running_s") and b50.get("all_running_s"):
        H.append(f"- 50 at once: all running in {c50['all_running_s'] / b50['all_running_s']:.2f}× the time of 50 bwrap.")
    be = load(os.path.join(work, "before-exec.json"))
    if be:
        H.append(f"- A warm start makes {be['calls']} system calls before the command's execve (store path given).")
    chk, dry = t5.get("sandbox check large.toml"), t5.get("sandbox explain large.toml --dry-run")
    if chk and dry:
        H.append(f"- `sandbox check` of the largest profile: {chk[0] * 1000:.0f} ms; "
                 f"`explain --dry-run`: {dry[0] * 1000:.1f} ms.")
    H.append("")
    return H


def report(work, out):
    L = []
    w = L.append
    info = dict(r for r in tsv(os.path.join(work, "info.tsv")) if len(r) == 2)
    build = load(os.path.join(work, "build.json"), {})
    w("# Benchmarks: `sandbox` against the tools users would otherwise pick")
    w("")
    w("Generated by `bench/run` from one real run (do not edit by hand; run `bench/run` as root to regenerate).")
    w(f"Every table is ONE hyperfine run (`-N`, `--warmup 3`, `--runs {info.get('runs', '?')}`), so the tools "
      "in it share the same machine state; ratios are computed from its JSON export (ratio ± the relative "
      "standard deviations added in quadrature). Timings on this kind of VM move by up to a quarter between "
      "runs: compare the ratios, not the absolute times.")
    w("")
    headline_at = len(L)
    w("## Machine")
    w("")
    w(f"- date: {info.get('date')}")
    w(f"- kernel: `{info.get('uname')}`; {info.get('nproc')} CPUs ({info.get('cpu')}); memory {info.get('mem')}")
    w(f"- load average (1, 5, 15 min) at the start: {info.get('loadavg')}, at the end: {info.get('loadavg_end')} "
      "(other work on this machine shares its CPUs; a busy moment widens every σ)")
    w(f"- OS: {info.get('os')}; PID 1: `{info.get('pid1')}`")
    w(f"- cgroups: {info.get('cgroup_layout')}")
    for h in hierarchies():
        w(f"  - `{h['mount']}` ({h['kind']}{', ' + h['controllers'] if h['controllers'] else ''}): "
          f"this script's cgroup `{h['own']}`")
    w(f"- sandbox: commit `{info.get('commit')}` ({info.get('dirty')}), `cargo build --release`")
    w(f"- rootfs: `bench/profile.toml`, digest `{build.get('digest', '?')[:16]}…`, {build.get('entries')} entries, "
      f"{build.get('bytes', 0) / 2**20:.1f} MiB; every tool runs this same tree (`sandbox build --out` made the "
      "copy the others use; `sandbox run` uses the store entry of the same digest)")
    w("")
    w("Tool versions:")
    w("")
    for row in tsv(os.path.join(work, "versions.tsv")):
        w(f"- {row[0]}: `{row[1] if len(row) > 1 else ''}`")
    w("")
    skipped = tsv(os.path.join(work, "skipped.tsv"))
    if skipped:
        w("Not measured here, and why:")
        w("")
        for row in skipped:
            w(f"- **{row[0]}**: {row[1] if len(row) > 1 else ''}")
        w("")
    notes = tsv(os.path.join(work, "notes.tsv"))
    if notes:
        w("How the peers were run on this machine:")
        w("")
        for row in notes:
            w(f"- **{row[0]}**: {row[1] if len(row) > 1 else ''}")
        w("")

    # ---- 1
    t1 = results(load(os.path.join(work, "t1.json")))
    cmds = dict(tsv(os.path.join(work, "t1.commands")))
    w("## 1. Start-to-exit latency of `/bin/true` in the rootfs")
    w("")
    w("All as uid 1000 inside where the tool can change user (the profile's student). "
      "`+limits` rows apply memory 256M, pids 128, cpu 1.0 core (sandbox from `bench/profile-limits.toml`, "
      "runc/crun from `linux.resources`); bubblewrap, chroot and unshare have no cgroup support, and "
      "systemd-nspawn applies limits only through systemd.")
    w("")
    w("| tool | limits | mean ± σ (ms) | min (ms) | ratio to bwrap |")
    w("|---|---|---:|---:|---:|")
    base = t1.get("bwrap")
    for name, r in t1.items():
        rr = ratio(r, base) if base else None
        w(f"| {name.replace(' +limits', '')} | {'yes' if '+limits' in name else 'no'} | {ms(r)} | "
          f"{r[2] * 1000:.1f} | {fr(rr) if rr else '-'} |")
    w("")
    w("<details><summary>The exact commands</summary>")
    w("")
    for name, c in cmds.items():
        w(f"- {name}: `{c}`")
    w("")
    w("</details>")
    w("")
    integrity = tsv(os.path.join(work, "integrity.tsv"))
    if integrity:
        w("Rootfs unchanged by every tool (digest of paths, modes, sizes and times before and after): "
          + ", ".join(f"{a}: {b}" for a, b in integrity) + ".")
        w("")

    # ---- 2
    t2 = results(load(os.path.join(work, "t2.json")))
    sz = load(os.path.join(work, "sizes.json"), {})
    w("## 2. Building the rootfs for the same programs")
    w("")
    w("`sandbox build bench/profile.toml`: cold = an empty `SANDBOX_HOME` every run (hyperfine `--prepare`), "
      "warm = the store already holds it (the digest is recomputed from the host files' cached hashes); "
      "`--out` also writes the plain copy other tools use. jailkit: `jk_init uidbasics` then `jk_cp` of the "
      "same programs (given as the real files, not their symlinks) and the C.UTF-8 locale into a fresh directory.")
    w("")
    w("| method | mean ± σ (ms) | ratio to jailkit | bytes (du -sb) | entries | programs found by name |")
    w("|---|---:|---:|---:|---:|---:|")
    base = t2.get("jailkit (jk_init + jk_cp)")
    keymap = {"sandbox build, cold": "sandbox store", "sandbox build --out, cold": "sandbox --out",
              "sandbox build, warm": "sandbox store", "jailkit (jk_init + jk_cp)": "jailkit"}
    for name, r in t2.items():
        rr = ratio(r, base) if base else None
        s = sz.get(keymap.get(name, ""), {})
        w(f"| {name} | {ms(r)} | {fr(rr) if rr else '-'} | {s.get('bytes', '-')} | "
          f"{s.get('entries', '-')} | {s.get('programs_by_name', '-')}/{s.get('programs', '-')} |")
    w("")
    for name, s in sz.items():
        if s.get("missing"):
            w(f"- {name}: not reachable by name inside: {', '.join(s['missing'])}")
    w("- the sandbox tree is larger because it also holds what the programs load at run time (vim's runtime, "
      "terminfo, NSS modules, locale, gconv) and the skeleton (`/proc`, `/dev`, `/tmp`, passwd, group, hosts); "
      "the store copy's files are hard links into `store/blobs`, so a second profile sharing them costs no bytes.")
    w("")

    # ---- 3
    w("## 3. 30 and 50 concurrent `sandbox run` (a class starting at once), and 50 bwrap")
    w("")
    w("Each instance: `sandbox run bench/profile-limits.toml -- /bin/sleep 5` (the build given the store path, "
      "see table 1), started as background processes in one loop; *all running* = until every instance's "
      "`sleep` runs inside (polled through `/proc/PID/task/PID/children`). Per instance: supervisor -> init "
      "(PID 1) -> sleep; bubblewrap's: bwrap -> bwrap (PID 1) -> sleep, the same rootfs, no limits. RSS counts "
      "the shared pages of the binary in every process; PSS (from `smaps_rollup`, shared pages divided among "
      "their users) is the fair per-instance cost, of the two wrapper processes and of the whole tree.")
    w("")
    w("| tool | N | all spawned (s) | first running (s) | all running (s) | supervisor RSS (KiB) | "
      "init RSS (KiB) | PSS of the wrappers (KiB) | PSS with sleep (KiB) | MemAvailable drop per instance (KiB) | exit codes |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for tool, n, f in (("sandbox", 30, "concurrent-30.json"), ("sandbox", 50, "concurrent-50.json"),
                       ("bwrap", 50, "concurrent-bwrap-50.json")):
        c = load(os.path.join(work, f))
        if not c:
            w(f"| {tool} | {n} | not measured | | | | | | | | |")
            continue

        def avg(k):
            v = [x for x in c.get(k, []) if x]
            return f"{sum(v) / len(v):.0f}" if v else "-"
        allr = f"{c['all_running_s']:.2f}" if c["all_running_s"] is not None else \
            f"not all: {c['running']}/{n} ({c['finished_early']} ended first)"
        w(f"| {tool} | {n} | {c['spawned_s']:.2f} | {c['first_running_s'] or 0:.2f} | {allr} | "
          f"{avg('supervisor_rss_kb')} | {avg('init_rss_kb')} | {avg('wrapper_pss_kb')} | {avg('instance_pss_kb')} | "
          f"{c['mem_available_drop_kb'] / n:.0f} | {', '.join(map(str, c['exit_codes']))} |")
    c50, b50 = load(os.path.join(work, "concurrent-50.json")), load(os.path.join(work, "concurrent-bwrap-50.json"))
    if c50 and b50 and c50.get("all_running_s") and b50.get("all_running_s"):
        def mean(c, k):
            v = [x for x in c.get(k, []) if x]
            return sum(v) / len(v) if v else None
        pr = mean(c50, "wrapper_pss_kb") / mean(b50, "wrapper_pss_kb") if mean(b50, "wrapper_pss_kb") else None
        w("")
        w(f"50 at once: all running after {c50['all_running_s'] / b50['all_running_s']:.2f}× bwrap's time; "
          f"PSS of the resident processes {pr:.2f}× bwrap's." if pr else "")
    w("")
    w("Exit code 143 = 128 + SIGTERM: the instances were stopped by their first processes' PIDs, which forward "
      "the signal to the command inside.")
    w("")

    # ---- 4
    t4 = results(load(os.path.join(work, "t4.json")))
    w("## 4. Workloads inside `sandbox run` against the host")
    w("")
    w("CPU-bound: `sh -c 'head -c 128M /dev/zero > F && sha256sum F'` (F on a tmpfs: `/tmp` inside, "
      "`/dev/shm` on the host). Syscall-bound: `dd if=/dev/zero of=/dev/null bs=1 count=2000000` "
      "(4 million read/write calls; namespace mode runs them through its seccomp filter, chroot mode has none). "
      "The second ratio subtracts each side's `/bin/true` start time from the same run.")
    w("")
    w("| workload | host (ms) | sandbox namespace (ms) | sandbox chroot (ms) | namespace / host | "
      "namespace / host, start subtracted | chroot / host |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    for wl in ("sha256sum 128 MiB", "dd bs=1 x 2M", "/bin/true"):
        h, n_, c_ = t4.get(f"host: {wl}"), t4.get(f"namespace: {wl}"), t4.get(f"chroot: {wl}")
        if not h:
            continue
        r1 = ratio(n_, h) if n_ else None
        r3 = ratio(c_, h) if c_ else None
        sub = "-"
        if n_ and wl != "/bin/true" and t4.get("host: /bin/true") and t4.get("namespace: /bin/true"):
            sub = fr(net_ratio(n_, t4["namespace: /bin/true"], h, t4["host: /bin/true"]))
        w(f"| {wl} | {ms(h)} | {ms(n_) if n_ else '-'} | {ms(c_) if c_ else '-'} | "
          f"{fr(r1) if r1 else '-'} | {sub} | {fr(r3) if r3 else '-'} |")
    w("")

    # ---- 5
    t5 = results(load(os.path.join(work, "t5.json")))
    w("## 5. `sandbox check` and `sandbox explain --dry-run`")
    w("")
    big = load(os.path.join(work, "large-check.json"), {})
    w(f"`bench/large.toml`: the shell lab plus python3, perl, gcc, make, vim, ping, ip, CA certificates and "
      f"three time zones ({big.get('summary', '')}).")
    w("")
    w("| command | mean ± σ (ms) | min (ms) |")
    w("|---|---:|---:|")
    for name, r in t5.items():
        w(f"| {name} | {ms(r)} | {r[2] * 1000:.1f} |")
    w("")

    # ---- 6
    t6 = results(load(os.path.join(work, "t6.json")))
    if t6:
        w("## 6. `sandbox exec` into a running instance against `nsenter --all`")
        w("")
        w("The instance: `sandbox start bench/profile-limits.toml`; `nsenter --all --target PID1 /bin/true` enters "
          "the same namespaces (no cgroup join, no user change, no seccomp); `sandbox exec` also joins the "
          "instance's cgroup and applies the same restrictions as its own command (user, capabilities, "
          "no_new_privs, seccomp).")
        w("")
        w("| command | mean ± σ (ms) | min (ms) | ratio to nsenter |")
        w("|---|---:|---:|---:|")
        base = t6.get("nsenter --all")
        for name, r in t6.items():
            rr = ratio(r, base) if base else None
            w(f"| {name} | {ms(r)} | {r[2] * 1000:.1f} | {fr(rr) if rr else '-'} |")
        w("")

    # ---- where the start time goes
    w("## Where the start time goes (`sandbox run --mode namespace -- /bin/true`)")
    w("")
    ph = load(os.path.join(work, "strace-phases.json"))
    sandbox_run = t1.get("sandbox namespace")
    warm = t2.get("sandbox build, warm")
    if sandbox_run and warm:
        w(f"- `sandbox run` resolves the profile again and recomputes its digest to find the rootfs in the store "
          f"on every start, as a warm `sandbox build` does ({warm[0] * 1000:.1f} ms in table 2, which also writes "
          f"the lock file), against {sandbox_run[0] * 1000:.1f} ms for the whole `sandbox run` in table 1.")
    if ph:
        total = sum(p["median_s"] for p in ph["phases"])
        w(f"- Phases of one start (median of {ph['runs']} runs under `strace -f --seccomp-bpf -e trace=process`, "
          "which stops only at fork/exec/exit/wait and lets every other call run at full speed; the system "
          "calls counted in one fully traced run):")
        w("")
        w("| phase | median ms | share | system calls | most frequent |")
        w("|---|---:|---:|---:|---|")
        for p in ph["phases"]:
            w(f"| {p['phase']} | {p['median_s'] * 1000:.1f} | {p['median_s'] / total * 100:.0f}% | "
              f"{p['syscalls']} | {', '.join(f'{k} {v}' for k, v in p['top'])} |")
        w("")
    be = load(os.path.join(work, "before-exec.json"))
    if be:
        w(f"- A warm start given the store path (`sandbox-given run bench/profile.toml -- /bin/true`) makes "
          f"{be['calls']} system calls, in all its processes, before the command's execve "
          f"(`strace -f`; most frequent: {', '.join(f'{k} {v}' for k, v in be['top'])}).")
        w("")
    try:
        summary = open(os.path.join(work, "strace-c.txt")).read().rstrip().splitlines()
    except OSError:
        summary = []
    if summary:
        w("`strace -c -f` (system time per call, all processes; the 12 costliest):")
        w("")
        w("```")
        head = [l for l in summary if l.startswith(("% time", "------"))][:2]
        rows = [l for l in summary if l and l[0] in " 0123456789" and not l.strip().startswith("100.00")
                and "total" not in l]
        total = [l for l in summary if l.rstrip().endswith("total")]
        for l in head + rows[:12] + total:
            w(l)
        w("```")
        w("")
    perf = None
    try:
        perf = open(os.path.join(work, "perf-stat.txt")).read().strip()
    except OSError:
        pass
    if perf:
        w("`perf stat -r 30` (software counters; this VM exposes no hardware ones):")
        w("")
        w("```")
        for l in perf.splitlines():
            if l.strip() and not l.startswith("#"):
                w(l.rstrip().replace(work, "$WORK"))
        w("```")
        w("")

    # ---- targets
    w("## The targets of issue 14, and how far each is")
    w("")
    raw = {r["command"]: r for r in (load(os.path.join(work, "t1.json")) or {}).get("results", [])}

    def cpu(name):
        r = raw.get(name)
        return f"user {r['user'] * 1000:.1f} ms, system {r['system'] * 1000:.1f} ms" if r else "-"

    def line(label, a, b, target, why):
        if not (t1.get(a) and t1.get(b)):
            return
        x = ratio(t1[a], t1[b])
        met = "met" if x[0] <= target else f"not met ({x[0] / target:.2f}× the target)"
        w(f"- {label}: {fr(x)}× (target ≤ {target}×): {met}. {why}")
    line("`run` start against bwrap (store path given)", "sandbox namespace, store path given", "bwrap", 1.0,
         f"CPU per start: sandbox {cpu('sandbox namespace, store path given')}; bwrap {cpu('bwrap')}. The system "
         "time is near bwrap's (one clone3, the same mounts, plus the throwaway overlay); the difference is user "
         "time in the supervisor before its clone3: loading a larger binary (ld.so maps three libraries), "
         "parsing and validating the profile and its parent (TOML), building the plan with its step texts, and "
         "reading the cgroup layout (/proc/self/mountinfo and cgroup files read in small pieces).")
    line("`run` with memory and pids limits against crun with the same limits", "sandbox namespace, store path given +limits",
         "crun +limits", 0.5, "Both make cgroup directories on this v1 hybrid (three hierarchies here); "
         "cgroup mkdir and rmdir dominate and vary widely between runs (see σ), crun's as much as ours.")
    line("chroot mode against plain chroot (store path given)", "sandbox chroot, store path given", "chroot", 1.1,
         f"CPU: sandbox {cpu('sandbox chroot, store path given')}; chroot {cpu('chroot')}: the same user-space "
         "start of the tool (profile, plan) on top of a private mount namespace, three mounts and chroot in its own process.")
    if be:
        w(f"- A warm `run -- /bin/true` makes {be['calls']} system calls before the command's execve (target < 300): "
          f"{'met' if be['calls'] < 300 else 'not met'} (most frequent: {', '.join(f'{k} {v}' for k, v in be['top'][:4])}: "
          "the prctl calls are the capability bounding set, one per capability as bubblewrap drops it, and "
          "the mounts are those of the new root, /dev and the throwaway layer). A profile with [limits] adds "
          "the cgroup detection, which reads /proc/self/mountinfo and the cgroup files a few bytes at a time.")
    c50, b50 = load(os.path.join(work, "concurrent-50.json")), load(os.path.join(work, "concurrent-bwrap-50.json"))
    if c50 and b50 and c50.get("all_running_s") and b50.get("all_running_s"):
        def mean(c, k):
            v = [x for x in c.get(k, []) if x]
            return sum(v) / len(v) if v else 0
        tr = c50["all_running_s"] / b50["all_running_s"]
        pr = mean(c50, "wrapper_pss_kb") / (mean(b50, "wrapper_pss_kb") or 1)
        w(f"- 50 at once, all running: {tr:.2f}× 50 bwrap (target ≤ 2×): {'met' if tr <= 2 else 'not met'}; "
          f"PSS of the resident processes {pr:.2f}× bwrap's (target ≤ 2×): {'met' if pr <= 2 else 'not met'} "
          f"({mean(c50, 'wrapper_pss_kb'):.0f} KiB against {mean(b50, 'wrapper_pss_kb'):.0f} KiB: the supervisor and "
          "PID 1 are copies of a 10 MiB Rust binary whose touched pages and heap (the parsed profile, the plan) stay "
          "resident, where bubblewrap is a small C program).")
    w("")

    # ---- cleanup
    w("## Cleanup check")
    w("")
    for row in tsv(os.path.join(work, "cleanup.tsv")):
        w(f"- {row[0]}: {row[1] if len(row) > 1 else ''}")
    w("")
    L[headline_at:headline_at] = headline(t1, t2, t4, t5, ph, work)
    with open(out, "w") as f:
        f.write("\n".join(L) + "\n")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "cgroups":
        print(json.dumps(hierarchies(), indent=1))
    elif cmd == "cgroup-dirs":
        print("\n".join(cgroup_dirs()))
    elif cmd == "crun-path":
        print(json.dumps(crun_path(args[0])))
    elif cmd == "oci-config":
        oci_config(args[0], args[1], args[2], args[3] if len(args) > 3 else None)
    elif cmd == "treesum":
        print(treesum(args[0]))
    elif cmd == "sizes":
        programs = tomllib.load(open(args[1], "rb"))["rootfs"]["binaries"]
        sizes(args[0], args[2:], programs)
    elif cmd == "concurrent":
        concurrent(args[0], args[1], int(args[2]), args[3], args[4])
    elif cmd == "before-exec":
        before_exec(args[0], args[1])
    elif cmd == "strace-phases":
        strace_phases(args[0], args[1], args[2:])
    elif cmd == "report":
        report(args[0], args[1])
    else:
        sys.exit(f"unknown helper {cmd}")


if __name__ == "__main__":
    main()
