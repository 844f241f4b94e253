#!/usr/bin/env bash
# The main job, a real trace: set up, build, then run execsnoop (Tests/Fixtures/execsnoop.bpf.c)
# under `plumb object run` for 5 s while a few commands run, so there is something to see.
# Every exec on the machine prints as a BTF-typed event; the maps print at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
bash Tests/Fixtures/build.sh .build/fixtures
out=$(mktemp)
trap 'rm -f "$out"' EXIT
.build/debug/plumb object run .build/fixtures/execsnoop.bpfel.o --duration "${DURATION:-5s}" | tee "$out" &
plumb=$!
# Once it has attached, exec a few programs.
for _ in $(seq 100); do grep -q "^attached" "$out" && break; sleep 0.05; done
uname -r >/dev/null; ls / >/dev/null; /bin/true; date >/dev/null
wait "$plumb"
