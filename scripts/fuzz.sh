#!/usr/bin/env bash
# fuzz.sh [--update] [MINUTES] [TARGET...] - run the libFuzzer targets of
# tests/fuzz/ for MINUTES each (default 10), one after the other.
#
#   scripts/fuzz.sh                      # all four targets, 10 minutes each
#   scripts/fuzz.sh 2 fuzz_crdt_ops      # one target, 2 minutes
#   scripts/fuzz.sh --update 10          # and merge new coverage into the corpus
#
# Builds with clang-14 -DQUIRE_FUZZ=ON (libFuzzer + ASan + UBSan, -O1 with
# asserts on) into build/fuzz (QUIRE_FUZZ_BUILD overrides). Each target
# starts from its committed corpus (tests/fuzz/corpus/<target>/) and its
# regression inputs; new interesting inputs go to a scratch directory,
# <build>/fuzz-work/<target>/corpus/, never to the repository unless
# --update is given, in which case they are merged (-merge=1: only inputs
# that add coverage) into tests/fuzz/corpus/<target>/. Crashes, leaks and
# timeouts are written to <build>/fuzz-work/<target>/artifacts/; copy one to
# tests/fuzz/regressions/<target>/ with the fix (tests/fuzz/README.md).
# Prints a summary per target (executions, exec/s, coverage, corpus) and
# exits 1 if any target found a problem.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

update=0
if [[ ${1:-} == --update ]]; then
	update=1
	shift
fi
minutes=10
if (( $# > 0 )) && [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; then
	minutes=$1
	shift
fi
all_targets=(fuzz_wire_client fuzz_snapshot fuzz_oppayload fuzz_crdt_ops)
targets=("$@")
(( ${#targets[@]} > 0 )) || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
	[[ " ${all_targets[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target $t (${all_targets[*]})" >&2; exit 2; }
done
seconds=$(awk -v m="$minutes" 'BEGIN { s = int(m * 60); print (s < 1 ? 1 : s) }')

build=${QUIRE_FUZZ_BUILD:-build/fuzz}
cmake -S "$ROOT" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang-14 -DQUIRE_FUZZ=ON \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" \
	-DQUIRE_TESTS=ON -DQUIRE_BENCH=OFF -DQUIRE_WASM=OFF >/dev/null
cmake --build "$build" -j "${QUIRE_JOBS:-2}" --target "${targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
work=$build/fuzz-work
failed=()
summary=()
for t in "${targets[@]}"; do
	dir=$work/$t
	mkdir -p "$dir/corpus" "$dir/artifacts" "tests/fuzz/regressions/$t"
	echo "==== $t: ${seconds}s (log: $dir/log)"
	rc=0
	"$build/tests/fuzz/$t" -max_total_time="$seconds" -print_final_stats=1 \
		-timeout=10 -rss_limit_mb=2048 -max_len=4096 \
		-artifact_prefix="$dir/artifacts/" \
		"$dir/corpus" "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t" \
		>"$dir/log" 2>&1 || rc=$?
	grep -E '^#[0-9]+.*(pulse|DONE|NEW)' "$dir/log" | tail -n 3 || true
	# "#1234567 DONE cov: 812 ft: 3001 corp: 250/40Kb lim: 4096 exec/s: 2057 rss: 90Mb"
	last=$(grep -E '^#[0-9]+' "$dir/log" | tail -n 1 || true)
	execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$dir/log" | grep -oE '[0-9]+$' || true)
	cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
	ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
	corp=$(grep -oE 'corp: [0-9]+/[0-9A-Za-z]+' <<<"$last" | cut -d' ' -f2 || true)
	eps=$(grep -oE 'exec/s: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
	status=ok
	if (( rc != 0 )); then
		status="FAILED (rc $rc): $(ls "$dir/artifacts" | head -n 3 | tr '\n' ' ')"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*fuzz check failed)' "$dir/log" | head -n 5 || true
		failed+=("$t")
	fi
	summary+=("$(printf '%-18s %6ss %12s execs %8s exec/s  cov %6s  ft %7s  corpus %-12s %s' \
		"$t" "$seconds" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$status")")
	if (( update && rc == 0 )); then
		echo "==== $t: merging new coverage into tests/fuzz/corpus/$t"
		"$build/tests/fuzz/$t" -merge=1 "tests/fuzz/corpus/$t" "$dir/corpus" \
			>"$dir/merge.log" 2>&1 || { echo "merge failed: $dir/merge.log"; failed+=("$t (merge)"); }
		grep -E 'MERGE-OUTER: [0-9]+ new files' "$dir/merge.log" || true
	fi
done

echo
echo "==== summary (${minutes} min per target; cov = edges reached, ft = features)"
printf '%s\n' "${summary[@]}"
if (( ${#failed[@]} > 0 )); then
	echo "FAILED: ${failed[*]} (inputs in $work/<target>/artifacts/)"
	exit 1
fi
