#!/usr/bin/env bash
# Builds a libFuzzer target with coverage and AddressSanitizer, seeds its corpus from the
# fixtures, and fuzzes for a while: fuzz/run.sh btf|elf|object|lang [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: fuzz/run.sh btf|elf|object|lang [seconds]}
secs=${2:-60}
case $target in
  btf) product=FuzzBTF ;;
  elf) product=FuzzELF ;;
  object) product=FuzzObject ;;
  lang) product=FuzzLang ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
swift build -c release --product "$product" --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
corpus=fuzz/out/$target-corpus
mkdir -p "$corpus"
if [ "$target" = lang ]; then
  # Seeds: the scripts in the repository and the parser tests' corpus.
  find Tests/Scripts fuzz/seeds/lang -name '*.bt' -exec cp {} "$corpus/" \; 2>/dev/null || true
  exec ".build-fuzz/release/$product" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -dict=fuzz/lang.dict "$corpus"
fi
bash Tests/Fixtures/build.sh .build/fixtures
for o in .build/fixtures/*.o; do
  if [ "$target" = btf ]; then
    "$(dirname "$(readlink -f "$(command -v swift)")")/llvm-objcopy" --dump-section .BTF="$corpus/$(basename "$o").btf" "$o" 2>/dev/null || true
  else
    cp "$o" "$corpus/"
  fi
done
[ "$target" = btf ] && [ -r /sys/kernel/btf/vmlinux ] && cp /sys/kernel/btf/vmlinux "$corpus/vmlinux.btf" || true
exec ".build-fuzz/release/$product" -max_total_time="$secs" -max_len=$((1 << 20)) -timeout=10 -rss_limit_mb=2048 "$corpus"
