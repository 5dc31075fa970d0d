#!/usr/bin/env bash
# run.sh - build everything (build/release) and start Quire.
#
# The server arrives with a later issue; until then this replays the real
# editing traces through the CRDT engine with the benchmark and prints its
# table. Traces are read from ../shared/traces next to the repository, or
# from the directory in QUIRE_TRACES.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
"$ROOT/scripts/deps.sh"
"$ROOT/scripts/build.sh" build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo

traces=${QUIRE_TRACES:-$ROOT/../shared/traces}
bench=build/release/bench/quire-bench
if [[ -x $bench ]]; then
	shopt -s nullglob
	files=("$traces"/*.json.gz)
	if (( ${#files[@]} == 0 )); then
		echo "run.sh: no *.json.gz traces in $traces (set QUIRE_TRACES)" >&2
		exit 1
	fi
	"$bench" trace "${files[@]}"
else
	echo "run.sh: $bench was not built (bench/ not there yet, or QUIRE_BENCH=OFF)"
fi
echo "run.sh: quire-server and the web demo arrive with a later issue; nothing to start yet."
