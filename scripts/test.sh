#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: install, C kernel tests (GoogleTest via ctest),
# then the Swift tests. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh

echo "== C kernels (GoogleTest)"
build=.build/ckernels-tests
cmake -S Tests/CKernelsTests -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 >/dev/null
(cd "$build" && ctest --output-on-failure)

echo "== Swift tests"
set +e
swift test > .build/swift-test.log 2>&1
rc=$?
set -e
grep -E "error:|: error|failed \(|warning:" .build/swift-test.log | grep -v "/.build/" | head -40 || true
grep -E "Executed [0-9]+ tests" .build/swift-test.log | tail -1 || true
echo "swift test exit status: $rc"
exit $rc
