#!/usr/bin/env bash
# Builds every Tests/Fixtures/*.bpf.c with the toolchain's clang, once little- and once
# big-endian: OUT/NAME.bpfel.o and OUT/NAME.bpfeb.o. Rebuilds only what changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../.build/fixtures}
mkdir -p "$out"
bin=${PLUMB_TOOLCHAIN_BIN:-$(dirname "$(readlink -f "$(command -v swift)")")}
clang="$bin/clang"
# <linux/bpf.h> reaches <asm/types.h>, which Debian keeps in the multiarch folder.
multiarch=/usr/include/$(uname -m)-linux-gnu
shopt -s nullglob
# Headers count too: the newest of them is compared with each object.
newest_header=$(ls -t "$here"/include/*.h 2>/dev/null | head -1)
for src in "$here"/*.bpf.c; do
  name=$(basename "$src" .bpf.c)
  for arch in bpfel bpfeb; do
    obj="$out/$name.$arch.o"
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$here/build.sh" -nt "$obj" ] \
       || { [ -n "$newest_header" ] && [ "$newest_header" -nt "$obj" ]; }; then
      "$clang" -g -O2 -target "$arch" -mcpu=v3 -Wno-visibility -I"$here/include" -idirafter "$multiarch" -c "$src" -o "$obj.tmp"
      mv "$obj.tmp" "$obj"
    fi
  done
done
