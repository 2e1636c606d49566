#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: install, C kernel tests (GoogleTest via ctest),
# the Swift tests (XCTest), then `space parity` on the reference's recorded training steps.
# Exits non-zero if anything fails; the last line counts everything that ran.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
mkdir -p .build

echo "== C kernels (GoogleTest)"
build=.build/ckernels-tests
# The kernels are compiled by the Swift toolchain's clang, as `swift build` compiles them: GCC leaves
# their 16-lane loops scalar, so testing its build would not test the code that ships.
cc=$(command -v clang || command -v cc)
grep -qx "CMAKE_C_COMPILER:[A-Z]*=$cc" "$build/CMakeCache.txt" 2>/dev/null || rm -rf "$build"
cmake -S Tests/CKernelsTests -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER="$cc" >/dev/null
cmake --build "$build" -j2 >/dev/null
(cd "$build" && ctest --output-on-failure) | tee .build/ctest.log
c_total=$(grep -oE "tests failed out of [0-9]+" .build/ctest.log | grep -oE "[0-9]+$")
c_failed=$(grep -oE "[0-9]+ tests failed" .build/ctest.log | grep -oE "^[0-9]+")

echo "== Swift tests (XCTest)"
set +e
swift build --build-tests 2>&1 | grep -E "warning:|error:" | grep -v "/.build/"
swift test > .build/swift-test.log 2>&1
rc=$?
set -e
grep -E "error:|: error|failed \(" .build/swift-test.log | grep -v "/.build/" | head -40 || true
summary=$(grep -E "Executed [0-9]+ tests?," .build/swift-test.log | tail -1 || true)
echo "${summary:-XCTest printed no summary}"
echo "swift test exit status: $rc"
s_total=$(echo "$summary" | grep -oE "Executed [0-9]+" | grep -oE "[0-9]+" || echo 0)
s_failed=$(echo "$summary" | grep -oE "[0-9]+ failures?" | grep -oE "^[0-9]+" || echo 0)
[ $rc -eq 0 ] || { echo "summary: $((c_total - c_failed + s_total - s_failed)) passed, $((c_failed + s_failed + 1)) failed"; exit $rc; }

echo "== space parity (the reference's recorded training steps)"
set +e
.build/debug/space parity Tests/Fixtures/parity/atari_si_b2_s100 Tests/Fixtures/parity/room_small_b2_s12000 > .build/parity.log 2>&1
prc=$?
set -e
grep -E "^(==|output|gradient|after-step|forward|PASS|FAIL)|FAIL" .build/parity.log || true
p_passed=$(grep -c "^PASS" .build/parity.log || true)
p_failed=$((2 - p_passed))

echo "summary: $((c_total - c_failed + s_total - s_failed + p_passed)) passed, $((c_failed + s_failed + p_failed)) failed"
[ $prc -eq 0 ] && [ "$p_failed" -eq 0 ]
