#!/usr/bin/env bash
# The tracer beside bpftrace 0.17 on the same five scripts (bench/tracer.py lists them):
# start-to-attached time (goal: >= 10x faster by geometric mean, >= 5x on each), peak RSS (goal:
# <= 1/4 of bpftrace's) and the kernel's translated instruction count (goal: <= bpftrace's).
# RUNS runs each (median), tools alternating. Needs root, bpftrace and bpftool (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
# The build users are told to install (README): a static executable, no dynamic loader at exec.
plumb=$(bash scripts/build-release.sh 2>/dev/null)
out=bench/out; mkdir -p "$out"
printf "%-14s %12s %12s %8s %10s %10s %6s %8s %8s %6s\n" script plumb_ms bpftrace_ms speedup plumb_kB bpftr_kB rss% plumb_in bpftr_in insn%
: >"$out/tracer_summary"
# measure SCRIPT TAG: RUNS runs of each tool (alternating who goes first) into
# $out/tracer_SCRIPT[TAG].{plumb,bpftrace}, then one summary line (medians and ratios).
measure() {
  local s=$1 f="$out/tracer_$1$2"
  : >"$f.plumb"; : >"$f.bpftrace"
  for i in $(seq "$runs"); do
    if [ $((i % 2)) -eq 1 ]; then
      SCRIPT=$s python3 bench/tracer.py "$plumb" >>"$f.plumb"
      SCRIPT=$s python3 bench/tracer.py bpftrace >>"$f.bpftrace"
    else
      SCRIPT=$s python3 bench/tracer.py bpftrace >>"$f.bpftrace"
      SCRIPT=$s python3 bench/tracer.py "$plumb" >>"$f.plumb"
    fi
  done
  python3 - "$f.plumb" "$f.bpftrace" "$s" <<'PY'
import json, statistics, sys
def load(p):
    rows = [json.loads(l) for l in open(p) if l.strip()]
    ok = [r for r in rows if r["attach_s"] is not None]
    if not ok: return None
    return (statistics.median(r["attach_s"] for r in ok) * 1000, statistics.median(r["rss_kb"] for r in ok),
            statistics.median(r["insns"] for r in ok))
p, b = load(sys.argv[1]), load(sys.argv[2])
if p is None or b is None:
    print(f"{sys.argv[3]:<14} failed: plumb={p} bpftrace={b}"); sys.exit(0)
print(f"{sys.argv[3]:<14} {p[0]:12.1f} {b[0]:12.1f} {b[0]/p[0]:8.1f} {p[1]:10.0f} {b[1]:10.0f} {100*p[1]/b[1]:6.0f} {p[2]:8.0f} {b[2]:8.0f} {100*p[2]/max(b[2],1):6.0f}")
PY
}
for s in syscalls sched_switch interval libc_uprobe latency_hist; do
  line=$(measure "$s" "")
  echo "$line"
  echo "$line" >>"$out/tracer_summary"
done
# Geometric mean of the start-to-attached speedup (column 4) over the scripts that ran.
awk '$4 ~ /^[0-9.]+$/ { s += log($4); n++ } END { if (n) printf "geometric mean speedup: %.1fx over %d scripts\n", exp(s / n), n }' "$out/tracer_summary"

# A uprobe's attach time is mostly the kernel's: registering it writes the breakpoint into every
# process mapping libc, after an RCU grace period, for either tool. Shown apart (strace -T of the
# longest perf_event_open), with the ratio of what each tool spends besides it.
if command -v strace >/dev/null && [ -s "$out/tracer_libc_uprobe.plumb" ]; then
  : >"$out/tracer_kopen"
  for i in $(seq "$runs"); do
    for t in "$plumb" bpftrace; do
      echo "$t $(SCRIPT=libc_uprobe KERNEL_OPEN=1 python3 bench/tracer.py "$t")" >>"$out/tracer_kopen"
    done
  done
  python3 - "$out/tracer_kopen" "$out/tracer_libc_uprobe.plumb" "$out/tracer_libc_uprobe.bpftrace" <<'PY'
import json, statistics, sys
rows = [l.split(" ", 1) for l in open(sys.argv[1]) if l.strip()]
def kopen(tool):
    v = [json.loads(j)["kernel_open_ms"] for t, j in rows if (t == "bpftrace") == (tool == "bpftrace")]
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None
def attach(p):
    v = [json.loads(l)["attach_s"] * 1000 for l in open(p) if l.strip() and json.loads(l)["attach_s"] is not None]
    return statistics.median(v) if v else None
kp, kb = kopen("plumb"), kopen("bpftrace")  # registration
ap, ab = attach(sys.argv[2]), attach(sys.argv[3])
if None in (kp, kb, ap, ab):
    print("libc_uprobe: kernel uprobe registration not measured"); sys.exit(0)
# Medians of separate runs (strace slows a run down): the registration's share, not an exact split.
print(f"libc_uprobe: the kernel's uprobe registration (perf_event_open, strace -T) takes {kp:.1f} ms under plumb, {kb:.1f} ms under bpftrace")
print(f"             (start-to-attached medians: plumb {ap:.1f} ms, bpftrace {ab:.1f} ms); it waits for an RCU grace period,")
print(f"             which RCU_EXPEDITED=1 takes out of both tools' runs")
PY
fi

# RCU_EXPEDITED=1: libc_uprobe again with the kernel's RCU grace periods expedited for both tools
# (/sys/kernel/rcu_expedited, put back afterwards). The uprobe registration's wait for a grace
# period then takes well under a millisecond, so the ratio is what the tools themselves cost.
# Opt-in: it changes a system-wide setting while it runs.
if [ "${RCU_EXPEDITED:-0}" = 1 ]; then
  old=$(cat /sys/kernel/rcu_expedited)
  trap 'echo "$old" >/sys/kernel/rcu_expedited' EXIT
  echo 1 >/sys/kernel/rcu_expedited
  echo "with /sys/kernel/rcu_expedited=1 for both tools:"
  measure libc_uprobe .expedited
  echo "$old" >/sys/kernel/rcu_expedited
  trap - EXIT
fi
