#!/usr/bin/env bash
# Builds a libFuzzer target with coverage and AddressSanitizer, seeds its corpus from the
# fixtures, and fuzzes for a while: fuzz/run.sh btf|elf|object [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: fuzz/run.sh btf|elf|object [seconds]}
secs=${2:-60}
# Inputs longer than max_len are cut: btf's holds the whole vmlinux seed (~5.5 MB), the
# others the fixture objects.
case $target in
  btf) product=FuzzBTF; max_len=$((8 << 20)) ;;
  elf) product=FuzzELF; max_len=$((1 << 20)) ;;
  object) product=FuzzObject; max_len=$((1 << 20)) ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
swift build -c release --product "$product" --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
bash Tests/Fixtures/build.sh .build/fixtures
corpus=fuzz/out/$target-corpus
mkdir -p "$corpus"
for o in .build/fixtures/*.o; do
  if [ "$target" = btf ]; then
    "$(dirname "$(readlink -f "$(command -v swift)")")/llvm-objcopy" --dump-section .BTF="$corpus/$(basename "$o").btf" "$o" 2>/dev/null || true
  else
    cp "$o" "$corpus/"
  fi
done
[ "$target" = btf ] && [ -r /sys/kernel/btf/vmlinux ] && cp /sys/kernel/btf/vmlinux "$corpus/vmlinux.btf" || true
exec ".build-fuzz/release/$product" -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 "$corpus"
