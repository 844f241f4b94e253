#!/usr/bin/env bash
# The main job, a real trace: set up, build, then count every openat(2) on the machine by
# process name for 3 seconds with a bpftrace one-liner that Plumb parses, type-checks against
# the kernel's BTF, compiles to BPF itself and loads, then prints the map as bpftrace would.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
# A little activity so there is something to count.
( sleep 0.5; for _ in 1 2 3; do cat /etc/hostname /etc/os-release >/dev/null; ls / >/dev/null; done ) &
exec .build/debug/plumb -e 'tracepoint:syscalls:sys_enter_openat { @[comm] = count(); } interval:s:3 { exit(); }'
