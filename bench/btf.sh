#!/usr/bin/env bash
# BTF speed, Plumb beside libbpf, on this kernel's vmlinux BTF:
#  1. library: parse + find task_struct (goal: Plumb <= 0.5x libbpf's time)
#  2. whole process: `plumb btf show task_struct` vs a C program doing the same with libbpf
#     (goal: Plumb <= 1.0x)
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out
mkdir -p "$out"
n=${N:-100}
swift build -c release --product BenchBTF >/dev/null
swift build -c release --product plumb >/dev/null
bin=$(swift build -c release --show-bin-path)
# The way a CLI ships on Linux: one static executable (scripts/build-release.sh).
static_plumb=$(bash scripts/build-release.sh 2>/dev/null)
cc -O2 -o "$out/btf_parse" bench/btf_parse.c -lbpf
cc -O2 -o "$out/btf_show" bench/btf_show.c -lbpf

plumb_ms=$("$bin/BenchBTF" "$n")
libbpf_ms=$("$out/btf_parse" "$n")
echo "parse+find task_struct, mean of $n: plumb ${plumb_ms} ms, libbpf ${libbpf_ms} ms"
awk -v p="$plumb_ms" -v l="$libbpf_ms" 'BEGIN { printf "ratio plumb/libbpf = %.3f (goal <= 0.5)\n", p / l }'

# Whole process, best of several runs each, alternating.
time_ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
runs=${RUNS:-30}
whole_process() { # label, plumb binary
  local best_p=999999999 best_c=999999999 sum_p=0 sum_c=0 p c
  for _ in $(seq "$runs"); do
    p=$(time_ms "$2" btf show task_struct); c=$(time_ms "$out/btf_show" task_struct)
    sum_p=$((sum_p + p)); sum_c=$((sum_c + c))
    [ "$p" -lt "$best_p" ] && best_p=$p; [ "$c" -lt "$best_c" ] && best_c=$c
  done
  echo "btf show task_struct (process, $1), $runs runs: plumb best ${best_p}us mean $((sum_p / runs))us; libbpf C best ${best_c}us mean $((sum_c / runs))us"
  awk -v p="$sum_p" -v c="$sum_c" -v l="$1" 'BEGIN { printf "ratio plumb/libbpf (%s, mean) = %.3f (goal <= 1.0)\n", l, p / c }'
}
whole_process "static executable" "$static_plumb"
whole_process "dynamic Swift runtime" "$bin/plumb"
