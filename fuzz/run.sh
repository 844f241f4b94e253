#!/usr/bin/env bash
# Builds a libFuzzer target with coverage and AddressSanitizer, seeds its corpus, and fuzzes
# for a while: fuzz/run.sh btf|elf|object|usdt|lang|dwarf|demangle [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: fuzz/run.sh btf|elf|object|usdt|lang|dwarf|demangle [seconds]}
secs=${2:-60}
# Inputs longer than max_len are cut: btf's holds the whole vmlinux seed (~5.5 MB), the
# others the fixture objects or scripts.
extra=()
case $target in
  btf) product=FuzzBTF; max_len=$((8 << 20)) ;;
  elf) product=FuzzELF; max_len=$((1 << 20)) ;;
  object) product=FuzzObject; max_len=$((1 << 20)) ;;
  usdt) product=FuzzUSDT; max_len=$((1 << 20)) ;;
  lang) product=FuzzLang; max_len=65536; extra=(-dict=fuzz/lang.dict) ;;
  dwarf) product=FuzzDWARF; max_len=$((1 << 20)) ;;
  demangle) product=FuzzDemangle; max_len=4096 ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
swift build -c release --product "$product" --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
corpus=fuzz/out/$target-corpus
mkdir -p "$corpus"
case $target in
  usdt)
    # Binaries with stapsdt notes (the USDT fixtures) and an argument string.
    src=Tests/Fixtures/usdt out=.build/fixtures/usdt
    mkdir -p "$out"
    gcc -g -O2 -fPIC -shared -o "$out/libplumbusdt.so" "$src/lib.c"
    gcc -g -O2 -fPIE -pie -o "$out/target-pie" "$src/target.c" "$src/gated.c" -L "$out" -lplumbusdt
    cp "$out/libplumbusdt.so" "$out/target-pie" "$corpus/"
    printf '%s' '-4@40+CheckpointStats(%rip) -4@(%rax,%rdx,4) 1@%ah 8@$0x10 -4@g_table(,%rax,4)' > "$corpus/specs.txt"
    ;;
  demangle)
    # Seeds: mangled names of every flavour the demanglers read, plus real symbol tables' names.
    cp fuzz/seeds/demangle/* "$corpus/"
    n=0
    for lib in /usr/lib/x86_64-linux-gnu/libstdc++.so.6; do
      [ -r "$lib" ] || continue
      { nm -D --defined-only "$lib" 2>/dev/null || true; } | awk '$3 ~ /^_Z/ && n++ < 300 {print $3}' > "$corpus/.names"
      while read -r s; do n=$((n + 1)); printf '%s' "$s" > "$corpus/cxx-$n.txt"; done < "$corpus/.names"
      rm -f "$corpus/.names"
    done
    ;;
  lang)
    # Seeds: the scripts in the repository and the parser tests' corpus.
    find Tests/Scripts fuzz/seeds/lang -name '*.bt' -exec cp {} "$corpus/" \; 2>/dev/null || true
    ;;
  *)
    bash Tests/Fixtures/build.sh .build/fixtures
    if [ "$target" = dwarf ]; then
      # Small programs with every debug-info flavour the reader handles, besides the BPF objects.
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
    ;;
esac
exec ".build-fuzz/release/$product" -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 ${extra[@]+"${extra[@]}"} "$corpus"
