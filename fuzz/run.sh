#!/usr/bin/env bash
# Builds a libFuzzer target with coverage and AddressSanitizer, seeds its corpus from the
# fixtures, and fuzzes for a while: fuzz/run.sh btf|elf|object|dwarf [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: fuzz/run.sh btf|elf|object|dwarf [seconds]}
secs=${2:-60}
case $target in
  btf) product=FuzzBTF ;;
  elf) product=FuzzELF ;;
  object) product=FuzzObject ;;
  dwarf) product=FuzzDWARF ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
swift build -c release --product "$product" --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
bash Tests/Fixtures/build.sh .build/fixtures
corpus=fuzz/out/$target-corpus
mkdir -p "$corpus"
if [ "$target" = dwarf ]; then
  # Small programs with every debug-info flavour the reader handles.
  src=Tests/Fixtures/dwarf/prog.c
  for f in "-g" "-gdwarf-4" "-g -gz=zlib" "-gdwarf-4 -fdebug-types-section" "-g -O0"; do
    cc $f -O2 -o "$corpus/prog$(echo "$f" | tr -c 'a-z0-9' _)" "$src"
  done
fi
for o in .build/fixtures/*.o; do
  if [ "$target" = btf ]; then
    "$(dirname "$(readlink -f "$(command -v swift)")")/llvm-objcopy" --dump-section .BTF="$corpus/$(basename "$o").btf" "$o" 2>/dev/null || true
  else
    cp "$o" "$corpus/"
  fi
done
[ "$target" = btf ] && [ -r /sys/kernel/btf/vmlinux ] && cp /sys/kernel/btf/vmlinux "$corpus/vmlinux.btf" || true
exec ".build-fuzz/release/$product" -max_total_time="$secs" -max_len=$((1 << 20)) -timeout=10 -rss_limit_mb=2048 "$corpus"
