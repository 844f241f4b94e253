#!/usr/bin/env bash
# Attach and detach time for every USDT site of PostgreSQL 15 (71 sites, 57 probes), Plumb
# beside bpftrace 0.17, both timed from outside the same way (RUNS runs each, alternating,
# median and best):
#   attach: from starting the process to its "attached" line (bpftrace prints
#           __BPFTRACE_NOTIFY_PROBES_ATTACHED when that variable is set; BenchUSDT prints
#           "attached") — startup, parsing/compiling, loading and attaching, as a user waits;
#   detach: from SIGINT to the process's exit (bpftrace also prints its map then).
#           bpftrace 0.17 now and then misses a SIGINT that lands as its event loop starts;
#           it is sent again then and detach is timed from the one it acted on.
# Plumb is bench/BenchUSDT (release build, the library's attachUSDT with one uprobe_multi
# link, and MODE=perf for one perf-event link a site); its own in-process figures are printed too.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out
mkdir -p "$out"
runs=${RUNS:-5}
mode=${MODE:-multi}
target=${TARGET:-/usr/lib/postgresql/15/bin/postgres}
[ -x "$target" ] || { echo "usdt.sh: $target missing (apt-get install postgresql-15)" >&2; exit 1; }
command -v bpftrace >/dev/null || { echo "usdt.sh: bpftrace missing" >&2; exit 1; }
swift build -c release --product BenchUSDT >/dev/null
bin=$(swift build -c release --show-bin-path)

# time_one NAME CMD...: prints "attach_ms detach_ms"; the command's stderr goes to $out/usdt_NAME.err.
time_one() {
  local name=$1; shift
  python3 - "$out/usdt_$name.err" "$@" <<'PY'
import os, signal, subprocess, sys, threading, time
err = open(sys.argv[1], "ab")
env = dict(os.environ, __BPFTRACE_NOTIFY_PROBES_ATTACHED="1")
t0 = time.monotonic()
# bpftrace prints its marker on stdout (std::cout), BenchUSDT too; stderr joins the same pipe.
# A shell's background job inherits SIGINT ignored, and exec keeps that: restore the default.
p = subprocess.Popen(sys.argv[2:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
for line in p.stdout:
    if line.strip() in (b"attached", b"__BPFTRACE_NOTIFY_PROBES_ATTACHED"):
        break
    err.write(line)
else:
    sys.exit("no attach line from " + " ".join(sys.argv[2:]))
t1 = time.monotonic()
# The rest of the output (bpftrace's map) is drained beside the wait, so a full pipe cannot stall it.
drain = threading.Thread(target=lambda: err.write(p.stdout.read()), daemon=True)
drain.start()
time.sleep(0.2)

def idle():
    # Asleep in its event loop (not detaching, which sleeps in the kernel's uprobe code).
    try:
        with open("/proc/%d/wchan" % p.pid) as f:
            return "epoll_wait" in f.read()
    except OSError:
        return False

# bpftrace 0.17 sometimes misses a SIGINT that arrives as its event loop starts and then
# waits for events forever: a process still idle in epoll_wait a second after SIGINT gets
# another one, and detach is timed from the signal it acted on (noted in the .err file).
sent = [time.monotonic()]
p.send_signal(signal.SIGINT)
def watchdog():
    start = sent[0]
    while p.poll() is None:
        time.sleep(1.0)
        if p.poll() is not None:
            return
        if time.monotonic() - start > 120:
            err.write(b"usdt.sh: killed after ignoring SIGINT for 120 s\n")
            p.kill()
            return
        if idle():
            err.write(b"usdt.sh: still idle 1 s after SIGINT; sent it again\n")
            sent[0] = time.monotonic()
            p.send_signal(signal.SIGINT)
threading.Thread(target=watchdog, daemon=True).start()
p.wait()
t3 = time.monotonic()
drain.join(timeout=5)
# Explicitly: with the watchdog thread still alive, exit may not flush it.
err.flush()
if p.returncode == -signal.SIGKILL:
    sys.exit("%s ignored SIGINT for 120 s" % sys.argv[2])
print("%.1f %.1f" % ((t1 - t0) * 1000, (t3 - sent[0]) * 1000))
PY
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
best() { sort -n | head -1; }

plumb=("$bin/BenchUSDT" "$target" "$mode")
bpft=(bpftrace -e "usdt:$target:* { @[probe] = count(); }")
: >"$out/usdt.plumb"; : >"$out/usdt.bpftrace"; : >"$out/usdt_plumb.err"; : >"$out/usdt_bpftrace.err"
# Warm-up (page cache, dynamic linking), not counted.
time_one plumb "${plumb[@]}" >/dev/null
time_one bpftrace "${bpft[@]}" >/dev/null
for i in $(seq "$runs"); do
  if [ $((i % 2)) -eq 1 ]; then
    time_one plumb "${plumb[@]}" >>"$out/usdt.plumb"; time_one bpftrace "${bpft[@]}" >>"$out/usdt.bpftrace"
  else
    time_one bpftrace "${bpft[@]}" >>"$out/usdt.bpftrace"; time_one plumb "${plumb[@]}" >>"$out/usdt.plumb"
  fi
done

sites=$(readelf -n "$target" | grep -c 'Name: ' || true)
echo "USDT attach/detach, all $sites sites of $target, $runs runs (median / best), Plumb mode: $mode"
for col in 1 2; do
  what=$([ $col -eq 1 ] && echo attach || echo detach)
  pm=$(cut -d' ' -f$col "$out/usdt.plumb" | median); pb=$(cut -d' ' -f$col "$out/usdt.plumb" | best)
  bm=$(cut -d' ' -f$col "$out/usdt.bpftrace" | median); bb=$(cut -d' ' -f$col "$out/usdt.bpftrace" | best)
  printf '%-7s plumb %8.1f / %8.1f ms   bpftrace %8.1f / %8.1f ms   bpftrace/plumb %6.1fx (median)\n' \
    "$what" "$pm" "$pb" "$bm" "$bb" "$(awk -v a="$bm" -v b="$pm" 'BEGIN { print (b > 0) ? a / b : 0 }')"
done
echo "Plumb in-process (library only, last runs):"
grep '^attach' "$out/usdt_plumb.err" | tail -3 | sed 's/^/  /'
