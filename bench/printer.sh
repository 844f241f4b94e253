#!/usr/bin/env bash
# Record printing rate, Plumb beside bpftrace, on one flood: bench/printer.bpf.c (for
# `plumb object run`) and bench/printer.bt (for bpftrace 0.17) both print a 48-byte,
# six-field record BURST times per getppid() of the trigger (bench/flood.c), which calls
# getppid N/BURST times. Each tracer writes to a file; the rate is N records over the time
# from the trigger's start to the output file's last write (its mtime, taken once the file
# has stopped growing), so it is the printer's drain rate when the kernel produces faster.
# RUNS runs each, alternating; prints median and best records/s and the ratio.
#   N=250000 BURST=1000 RUNS=3 bash bench/printer.sh
#   PLUMB=/path/to/another/plumb bash bench/printer.sh   # measure another build (before/after)
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out
mkdir -p "$out"
n=${N:-250000}
burst=${BURST:-1000}
runs=${RUNS:-3}
calls=$(( (n + burst - 1) / burst ))
n=$(( calls * burst ))
clang=${CLANG:-$(dirname "$(readlink -f "$(command -v swift)")")/clang}
bpftrace=${BPFTRACE:-/usr/bin/bpftrace}
"$clang" -g -O2 -target bpf -I"/usr/include/$(uname -m)-linux-gnu" -c bench/printer.bpf.c -o "$out/printer.bpf.o"
cc -O2 -Wall -o "$out/flood" bench/flood.c
if [ -z "${PLUMB:-}" ]; then
  swift build -c release --product plumb >/dev/null
  PLUMB=$(swift build -c release --show-bin-path)/plumb
fi
# bpftrace prints through per-CPU perf buffers: make them hold the whole flood (no drops).
# 8192 pages (32 MiB a CPU): larger rings exceed the locked-memory limit here (bpftrace
# then prints nothing, silently). A run that printed nothing is retried.
export BPFTRACE_PERF_RB_PAGES=${BPFTRACE_PERF_RB_PAGES:-8192}

fifo=$out/printer.fifo
text=$out/printer.txt
cleanup() { rm -f "$fifo"; }
trap cleanup EXIT

# One run: TRACER is plumb or bpftrace; prints "<records/s> <records printed>".
run() {
  local tracer=$1
  rm -f "$fifo" "$text"; mkfifo "$fifo"
  "$out/flood" "$calls" <"$fifo" >"$out/printer.start" &
  local trigger=$!
  local ready readyfile
  if [ "$tracer" = plumb ]; then
    "$PLUMB" object run "$out/printer.bpf.o" --set "target_pid=$trigger" --set "burst=$burst" >"$text" 2>"$out/printer.err" &
    ready="^attached flood_burst"; readyfile="$out/printer.err"   # status lines go to stderr
  else
    "$bpftrace" bench/printer.bt "$trigger" "$burst" >"$text" 2>"$out/printer.err" &
    ready="^Attaching"; readyfile=$text
  fi
  local tracer_pid=$!
  for _ in $(seq 300); do grep -q "$ready" "$readyfile" 2>/dev/null && break; sleep 0.05; done
  grep -q "$ready" "$readyfile" || { echo "$tracer did not attach: $(cat "$out/printer.err")" >&2; kill "$tracer_pid" "$trigger" 2>/dev/null; exit 1; }
  # bpftrace says "Attaching" before it attaches: give both a moment (not timed).
  sleep 1
  echo go >"$fifo"
  wait "$trigger"
  # Done when the file has not grown for 0.5 s; its mtime is then the last record's write.
  local last=-1 size
  while :; do
    size=$(stat -c %s "$text")
    [ "$size" = "$last" ] && break
    last=$size
    sleep 0.5
  done
  local end start
  end=$(date -r "$text" +%s.%N)
  start=$(cat "$out/printer.start")
  kill -INT "$tracer_pid"; wait "$tracer_pid" || true
  local printed
  printed=$(grep -c '^flood: {' "$text" || true)
  if [ "$printed" -eq 0 ] && [ "${2:-0}" -lt 3 ]; then
    echo "$tracer printed nothing (perf ring not mapped?); again" >&2
    run "$tracer" $(( ${2:-0} + 1 )); return
  fi
  [ "$printed" -eq "$n" ] || echo "warning: $tracer printed $printed of $n records" >&2
  awk -v n="$printed" -v s="$start" -v e="$end" 'BEGIN { printf "%.0f %d\n", n / (e - s), n }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

: >"$out/printer.plumb"; : >"$out/printer.bpftrace"
for i in $(seq "$runs"); do
  if [ $((i % 2)) -eq 1 ]; then
    run plumb >>"$out/printer.plumb"; run bpftrace >>"$out/printer.bpftrace"
  else
    run bpftrace >>"$out/printer.bpftrace"; run plumb >>"$out/printer.plumb"
  fi
done
p=$(cut -d' ' -f1 "$out/printer.plumb" | median)
b=$(cut -d' ' -f1 "$out/printer.bpftrace" | median)
pb=$(cut -d' ' -f1 "$out/printer.plumb" | sort -n | tail -1)
bb=$(cut -d' ' -f1 "$out/printer.bpftrace" | sort -n | tail -1)
awk -v n="$n" -v r="$runs" -v p="$p" -v b="$b" -v pb="$pb" -v bb="$bb" -v bin="$PLUMB" 'BEGIN {
  printf "%d records x %d runs, printed to a file: plumb (%s) median %.3f best %.3f M records/s; bpftrace median %.3f best %.3f M records/s\n", n, r, bin, p / 1e6, pb / 1e6, b / 1e6, bb / 1e6
  printf "ratio plumb/bpftrace = %.2f median, %.2f best\n", p / b, pb / bb }'
