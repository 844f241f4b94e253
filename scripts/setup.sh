#!/usr/bin/env bash
# Installs what Plumb's build, tests and benchmarks need on a fresh Debian machine of this
# kind (Swift toolchain already present), then builds. Safe to run again.
set -euo pipefail
need=()
command -v bpftool >/dev/null 2>&1 || [ -x /usr/sbin/bpftool ] || need+=(bpftool)
[ -f /usr/include/bpf/libbpf.h ] || need+=(libbpf-dev)
[ -f /usr/include/libelf.h ] || need+=(libelf-dev)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
# Debian puts sdt.h under the multiarch folder.
[ -f /usr/include/sys/sdt.h ] || [ -f "/usr/include/$(uname -m)-linux-gnu/sys/sdt.h" ] || need+=(systemtap-sdt-dev)
# PostgreSQL 15 carries 71 USDT sites: the USDT tests parse and attach them all.
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
# DWARF tests read libc's separate debug file (DWARF 5, compressed, found by build id).
dpkg -s libc6-dbg >/dev/null 2>&1 || need+=(libc6-dbg)
command -v dwz >/dev/null 2>&1 || need+=(dwz)   # DWARF tests: dwz common files (.gnu_debugaltlink)
command -v bpftrace >/dev/null 2>&1 || need+=(bpftrace)
command -v hyperfine >/dev/null 2>&1 || need+=(hyperfine)
command -v strace >/dev/null 2>&1 || need+=(strace)   # bench/tracer.sh times the kernel's uprobe registration
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
cd "$(dirname "$0")/.."
swift build
