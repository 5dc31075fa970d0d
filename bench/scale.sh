#!/usr/bin/env bash
# scale.sh - the scale figures of BENCHMARKS.md (issue 6), measured with the
# C load generator (bench/quire-load) against a Release quire-server, on
# 127.0.0.1 only. Each scenario gets a fresh server on a fresh temporary
# database; every result is one JSON line appended to
# build/scale-results/scale-<time>.jsonl (RESULTS), which bench/plot.mjs reads.
#
#   ./scripts/build.sh build/release -DCMAKE_BUILD_TYPE=Release   # first
#   bench/scale.sh                  # all scenarios once, ~5 minutes
#   RUNS=3 SCENARIOS="fanout rate" bench/scale.sh
#
# Environment (defaults in brackets):
#   SCENARIOS [idle fanout rate docs catchup]   RUNS [1]   BUILD [build/release]
#   IDLE_CONNS [19000]  FANOUT_NS [500 1000 5000]  RATE [200]  FANOUT_EDITS [2000]
#   RATE_N [100]  RATE_EDITS [20000]  RATE_WINDOW [64]
#   CATCHUP_ROUNDS [20]  CATCHUP_PRE [5000]  CATCHUP_GAP [10000]  CATCHUP_PAUSE_MS [20]
# The writer of fanout/rate/docs/catchup sends one Update per edit, over the default
# per-connection rate limit, so those servers run with
# --max-msgs-per-s 0 --max-bytes-per-s 0; idle uses the defaults but
# --prefault-bytes 0 (see there).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
BUILD=${BUILD:-$repo/build/release}
SERVER=$BUILD/server/quire-server
LOAD=$BUILD/bench/quire-load/quire-load
SCENARIOS=${SCENARIOS:-idle fanout rate docs catchup}
RUNS=${RUNS:-1}
IDLE_CONNS=${IDLE_CONNS:-19000}
FANOUT_NS=${FANOUT_NS:-500 1000 5000}; RATE=${RATE:-200}; FANOUT_EDITS=${FANOUT_EDITS:-2000}
RATE_N=${RATE_N:-100}; RATE_EDITS=${RATE_EDITS:-20000}; RATE_WINDOW=${RATE_WINDOW:-64}
CATCHUP_ROUNDS=${CATCHUP_ROUNDS:-20}; CATCHUP_PRE=${CATCHUP_PRE:-5000}; CATCHUP_GAP=${CATCHUP_GAP:-10000}
CATCHUP_PAUSE_MS=${CATCHUP_PAUSE_MS:-20}
mkdir -p "$repo/build/scale-results"
RESULTS=${RESULTS:-$repo/build/scale-results/scale-$(date +%s).jsonl}

die() { echo "scale.sh: $*" >&2; exit 1; }
[[ -x $SERVER && -x $LOAD ]] || die "build first: ./scripts/build.sh build/release -DCMAKE_BUILD_TYPE=Release"
ulimit -n 20000 || die "cannot raise the file-descriptor limit to 20000"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/quire-scale-XXXXXX")
pid=
stop_server() {
	if [[ -n $pid ]]; then
		kill -TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		pid=
	fi
}
trap 'stop_server; rm -rf "$tmp"' EXIT

# start_server FLAGS...: a fresh server; sets pid and port
start_server() {
	rm -f "$tmp"/q.db*
	"$SERVER" --listen 127.0.0.1:0 --db "$tmp/q.db" "$@" >"$tmp/server.log" 2>&1 &
	pid=$!
	port=
	for _ in $(seq 1 300); do
		port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$tmp/server.log" | head -n 1)
		[[ -n $port ]] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$tmp/server.log" >&2
	die "quire-server did not start"
}

unlimited=(--max-msgs-per-s 0 --max-bytes-per-s 0)
for ((run = 1; run <= RUNS; run++)); do
	for sc in $SCENARIOS; do
		case $sc in
		idle)
			# no prefaulted heap: connections would reuse its 4 MiB and
			# the RSS growth per connection would understate their cost
			start_server --prefault-bytes 0
			echo "== idle $IDLE_CONNS (run $run)"
			timeout 600 "$LOAD" idle --port "$port" --conns "$IDLE_CONNS" --docs $((IDLE_CONNS / 100)) \
				--batch 200 --hold 10 --server-pid "$pid" --json "$RESULTS"
			stop_server ;;
		fanout)
			for n in $FANOUT_NS; do
				start_server "${unlimited[@]}"
				echo "== fanout $n observers, $RATE edits/s (run $run)"
				timeout 300 "$LOAD" fanout --port "$port" --observers "$n" --rate "$RATE" \
					--edits "$FANOUT_EDITS" --json "$RESULTS"
				stop_server
			done ;;
		rate)
			start_server "${unlimited[@]}"
			echo "== rate $RATE_N observers, window $RATE_WINDOW (run $run)"
			timeout 300 "$LOAD" rate --port "$port" --observers "$RATE_N" --edits "$RATE_EDITS" \
				--window "$RATE_WINDOW" --json "$RESULTS"
			stop_server ;;
		docs)
			start_server "${unlimited[@]}"
			echo "== docs 100 x 4 writers (run $run)"
			timeout 300 "$LOAD" docs --port "$port" --docs 100 --writers-per-doc 4 --edits 500 \
				--window 8 --json "$RESULTS"
			stop_server ;;
		catchup)
			# S4 with C clients: the node harness's connection setup left out
			start_server "${unlimited[@]}"
			echo "== catchup $CATCHUP_ROUNDS rounds, $CATCHUP_PRE seen + $CATCHUP_GAP missed (run $run)"
			timeout 300 "$LOAD" catchup --port "$port" --rounds "$CATCHUP_ROUNDS" --pre "$CATCHUP_PRE" \
				--gap "$CATCHUP_GAP" --pause-ms "$CATCHUP_PAUSE_MS" --json "$RESULTS"
			stop_server ;;
		*) die "unknown scenario $sc" ;;
		esac
	done
done
echo "results: $RESULTS"
