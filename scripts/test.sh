#!/usr/bin/env bash
# test.sh - build and run every test, twice:
#   1. Debug (asserts on) with the default compiler, in build/debug;
#   2. clang-14 with ASan + UBSan (leaks detected, any UB fatal), in build/asan.
# Runs both stages even if the first fails, prints ctest's summary of each and
# a total, and exits non-zero if any build or test failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
"$ROOT/scripts/deps.sh" --browser # chromium: the web demo's browser test

jobs=${QUIRE_JOBS:-2}
total_pass=0
total_fail=0
failed_stages=()

# stage NAME BUILD_DIR CMAKE_ARGS... : build, then ctest; never exits.
stage() {
	local name=$1 dir=$2 log rc=0
	shift 2
	echo "==== $name: build ($dir)"
	if ! "$ROOT/scripts/build.sh" "$dir" -DQUIRE_TESTS=ON "$@"; then
		echo "==== $name: BUILD FAILED"
		failed_stages+=("$name (build)")
		total_fail=$((total_fail + 1))
		return 0
	fi
	echo "==== $name: ctest"
	log=$(mktemp)
	ctest --test-dir "$dir" --output-on-failure --no-tests=error --timeout 300 \
		-j "$jobs" 2>&1 | tee "$log" || rc=$?
	# "100% tests passed, 0 tests failed out of 12"
	local summary
	summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
	rm -f "$log"
	if [[ $summary =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
		total_fail=$((total_fail + BASH_REMATCH[1]))
		total_pass=$((total_pass + BASH_REMATCH[2] - BASH_REMATCH[1]))
	elif (( rc != 0 )); then
		total_fail=$((total_fail + 1))
	fi
	if (( rc != 0 )); then
		failed_stages+=("$name")
	fi
}

stage debug build/debug -DCMAKE_BUILD_TYPE=Debug

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# The wasm module and its smoke test do not depend on the sanitizers: stage 1
# covers them.
stage asan build/asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang-14 \
	-DQUIRE_SANITIZE=ON -DQUIRE_WASM=OFF

echo
if (( ${#failed_stages[@]} > 0 )); then
	echo "FAILED: ${failed_stages[*]}"
fi
echo "total: $total_pass passed, $total_fail failed"
(( ${#failed_stages[@]} == 0 ))
