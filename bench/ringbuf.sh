#!/usr/bin/env bash
# Ring buffer delivery rate, Plumb beside libbpf, on one BPF program (bench/ringbuf.bpf.c:
# a syscall program, test-run from user space, emitting 64-byte sequence-numbered records
# into a 16 MiB ring with bpf_loop + bpf_ringbuf_reserve/submit). Both consumers check
# every sequence number (in order, no gap). Two measurements, RUNS runs each (median and
# best), the two programs alternating:
#  1. stream: a producer thread emits N records (BURST per test run) while the main
#     thread polls; records/s from start to the N-th delivery. Goal: Plumb >= libbpf.
#  2. drain: the ring is filled, then one consume() empties it (repeated up to N);
#     records/s of the consumer alone (what the reader itself costs per record).
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out
mkdir -p "$out"
n=${N:-10000000}
burst=${BURST:-4096}
runs=${RUNS:-5}
clang=${CLANG:-$(dirname "$(readlink -f "$(command -v swift)")")/clang}
"$clang" -g -O2 -target bpf -I"/usr/include/$(uname -m)-linux-gnu" -c bench/ringbuf.bpf.c -o "$out/ringbuf.bpf.o"
cc -O2 -Wall -o "$out/ringbuf_libbpf" bench/ringbuf_libbpf.c -lbpf -lpthread
swift build -c release --product BenchRingbuf >/dev/null
bin=$(swift build -c release --show-bin-path)
obj=$out/ringbuf.bpf.o

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for mode in stream drain; do
  # One warm-up run each, not counted (page cache, dynamic linking, ring pages).
  "$bin/BenchRingbuf" "$obj" "$mode" 1000000 "$burst" >/dev/null
  "$out/ringbuf_libbpf" "$obj" "$mode" 1000000 "$burst" >/dev/null
  : >"$out/ringbuf_$mode.plumb"; : >"$out/ringbuf_$mode.libbpf"
  plumb() { "$bin/BenchRingbuf" "$obj" "$mode" "$n" "$burst" >>"$out/ringbuf_$mode.plumb"; }
  libbpf() { "$out/ringbuf_libbpf" "$obj" "$mode" "$n" "$burst" >>"$out/ringbuf_$mode.libbpf"; }
  for i in $(seq "$runs"); do
    # Who goes first alternates too, so neither always follows the other.
    if [ $((i % 2)) -eq 1 ]; then plumb; libbpf; else libbpf; plumb; fi
  done
  # Median, and best (max): the 2 cores are shared, and best-of is the steadier figure when
  # other work preempts a run.
  p=$(cut -d' ' -f1 "$out/ringbuf_$mode.plumb" | median)
  c=$(cut -d' ' -f1 "$out/ringbuf_$mode.libbpf" | median)
  pb=$(cut -d' ' -f1 "$out/ringbuf_$mode.plumb" | sort -n | tail -1)
  cb=$(cut -d' ' -f1 "$out/ringbuf_$mode.libbpf" | sort -n | tail -1)
  pd=$(cut -d' ' -f3 "$out/ringbuf_$mode.plumb" | median)
  cd_=$(cut -d' ' -f3 "$out/ringbuf_$mode.libbpf" | median)
  awk -v m="$mode" -v n="$n" -v r="$runs" -v p="$p" -v c="$c" -v pb="$pb" -v cb="$cb" -v pd="$pd" -v cd="$cd_" 'BEGIN {
    printf "%s, %d records x %d runs: plumb median %.2f best %.2f M records/s; libbpf median %.2f best %.2f M records/s (failed reservations, median: plumb %d, libbpf %d)\n", m, n, r, p / 1e6, pb / 1e6, c / 1e6, cb / 1e6, pd, cd
    printf "ratio plumb/libbpf (%s) = %.3f median, %.3f best (goal >= 1.0)\n", m, p / c, pb / cb }'
done
