#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, then `swift test`.
# With PLUMB_REQUIRE_KERNEL=1 (as .ci/run sets it) a kernel test that would skip fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build --build-tests
# The BPF fixtures once, before tests in several processes and suites look for them at once.
bash Tests/Fixtures/build.sh .build/fixtures
swift test --skip-build "$@"
