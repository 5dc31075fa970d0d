#!/usr/bin/env bash
# run.sh - the side-by-side benchmark (issue 6): the same scenarios of the
# load generator in ../shared/peers against Hocuspocus (+SQLite), y-websocket
# and quire-server, back to back in one run, on 127.0.0.1. Each server is
# started and stopped here (quire-server on a fresh temporary database).
# Whole-machine CPU (/proc/stat) and the load average are recorded around
# every scenario, next to its result.
#
#   ./scripts/build.sh build/release -DCMAKE_BUILD_TYPE=Release   # first
#   bench/peers/run.sh                      # all three servers, the floor, quire-load: ~8 minutes
#   SERVERS="quire" S3_CONNS="2000 10000" bench/peers/run.sh
#
# Nothing is built here. The load generator is copied from ../shared/peers to
# build/peers-cache (PEERS_CACHE) and `npm install`ed there once; it is never
# part of the repository. Results: build/peers-results/run-<time>.jsonl and
# .md (RESULTS_DIR); bench/peers/report.mjs prints the tables again.
#
# Environment (defaults in brackets):
#   SERVERS [hocuspocus ywebsocket quire floor quire-load]   which servers, in
#               this order; floor: quire-server again, S1, S1 max and S4 only,
#               with clients that do no work (floor.mjs): what the load
#               generator's process itself allows; quire-load: quire-server
#               again, S1 at the fixed rate and S4 with the C load generator
#               (bench/quire-load fanout and catchup), the server's own figures
#               in the same run
#   RATE [200]  S1_EDITS [3000]  S1_NS [100 500]   S1 at a fixed rate
#   MAX_EDITS [20000]  MAX_N [100]                 S1 at the maximum rate (as run-all.sh)
#   S2_DOCS [1000]  S2_EDITS [50]                  S2, 2 writers per document
#   S3_CONNS [2000]  S3_HOLD [10]                  S3, a fresh server per count
#   SCENARIOS [s3 s1 s1max s2 s4 s5]
#   QUIRE_BUILD [build/release]  QUIRE_FLAGS [--max-msgs-per-s 0 --max-bytes-per-s 0]
#   TL [45]  time limit of one scenario (s)
#   CLIENT [commit]  the Quire client: the committed one, or `worktree`
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
shared=${SHARED:-$(cd "$repo/.." && pwd)/shared}
PEERS_SRC=${PEERS_SRC:-$shared/peers}
TRACE=${TRACE:-$shared/traces/automerge-paper.json.gz}
PEERS_CACHE=${PEERS_CACHE:-$repo/build/peers-cache}
RESULTS_DIR=${RESULTS_DIR:-$repo/build/peers-results}
QUIRE_BUILD=${QUIRE_BUILD:-$repo/build/release}
QUIRE_BIN=$QUIRE_BUILD/server/quire-server
QUIRE_LOAD=$QUIRE_BUILD/bench/quire-load/quire-load
export QUIRE_WASM_FILE=${QUIRE_WASM_FILE:-$QUIRE_BUILD/web-demo/quire.wasm}
QUIRE_FLAGS=${QUIRE_FLAGS:---max-msgs-per-s 0 --max-bytes-per-s 0}
SERVERS=${SERVERS:-hocuspocus ywebsocket quire floor quire-load}
SCENARIOS=${SCENARIOS:-s3 s1 s1max s2 s4 s5}
RATE=${RATE:-200}; S1_EDITS=${S1_EDITS:-3000}; S1_NS=${S1_NS:-100 500}
MAX_EDITS=${MAX_EDITS:-20000}; MAX_N=${MAX_N:-100}
S2_DOCS=${S2_DOCS:-1000}; S2_EDITS=${S2_EDITS:-50}
S3_CONNS=${S3_CONNS:-2000}; S3_HOLD=${S3_HOLD:-10}
TL=${TL:-45}

die() { echo "run.sh: $*" >&2; exit 1; }
[ -x "$QUIRE_BIN" ] || die "no $QUIRE_BIN: ./scripts/build.sh build/release -DCMAKE_BUILD_TYPE=Release"
[ -f "$QUIRE_WASM_FILE" ] || die "no $QUIRE_WASM_FILE (the web demo's engine; built with the server)"
[ -f "$PEERS_SRC/loadgen.mjs" ] || die "no load generator in $PEERS_SRC"
case " $SERVERS " in *" quire-load "*) [ -x "$QUIRE_LOAD" ] || die "no $QUIRE_LOAD (built with the server)" ;; esac
[ -f "$TRACE" ] || die "no trace $TRACE"
ulimit -n 20000 || die "cannot raise the file-descriptor limit to 20000"

# The load generator, installed once outside the sources.
if [ ! -f "$PEERS_CACHE/.installed" ]; then
	mkdir -p "$PEERS_CACHE"
	cp -r "$PEERS_SRC/." "$PEERS_CACHE/" && chmod -R u+w "$PEERS_CACHE"
	(cd "$PEERS_CACHE" && timeout 600 npm install --no-audit --no-fund) || die "npm install failed in $PEERS_CACHE"
	touch "$PEERS_CACHE/.installed"
fi

# The client, as committed (CLIENT=worktree: this checkout's web-demo/src/client
# as it is): a copy with its own node_modules, so that work in web-demo/ (an
# `npm ci`, an edit) does not change the client in the middle of a run.
if [ "${CLIENT:-commit}" = commit ]; then
	crev=$(git -C "$repo" log -1 --format=%h -- web-demo/src/client web-demo/package-lock.json proto/quire.proto)
	CLIENT_COPY=$repo/build/peers-client/$crev
	if [ ! -f "$CLIENT_COPY/.installed" ]; then
		rm -rf "$CLIENT_COPY" && mkdir -p "$CLIENT_COPY"
		git -C "$repo" archive "$crev" web-demo/src/client web-demo/package.json web-demo/package-lock.json web-demo/.npmrc |
			tar -x -C "$CLIENT_COPY" || die "git archive of the client failed"
		# src/gen is generated from proto/quire.proto by the build, not committed
		cp -r "$repo/web-demo/src/gen" "$CLIENT_COPY/web-demo/src/" || die "no web-demo/src/gen: build the web demo first"
		(cd "$CLIENT_COPY/web-demo" && timeout 600 npm ci --omit=dev --no-audit --no-fund) || die "npm ci of the client failed"
		touch "$CLIENT_COPY/.installed"
	fi
	export QUIRE_CLIENT_DIR=$CLIENT_COPY/web-demo/src/client
fi

RUN=$(date +%s)
mkdir -p "$RESULTS_DIR"
OUT=$RESULTS_DIR/run-$RUN.jsonl
WORK=$(mktemp -d /tmp/quire-peers-run.XXXXXX)
SPID=
cleanup() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# machine facts, once
node -e '
const os = require("os"), fs = require("fs");
const git = (a) => { try { return require("child_process").execSync("git -C " + process.argv[1] + " " + a).toString().trim() } catch { return null } };
const pkg = JSON.parse(fs.readFileSync(process.argv[2] + "/package.json"));
console.log(JSON.stringify({ scenario: "machine", cpus: os.cpus().length, cpuModel: os.cpus()[0].model, memGB: +(os.totalmem() / 2 ** 30).toFixed(1),
  kernel: os.release(), node: process.version, commit: git("rev-parse --short HEAD"), dirty: !!git("status --porcelain"),
  loadavg: os.loadavg(), peersDeps: pkg.dependencies, started: new Date().toISOString() }))' "$repo" "$PEERS_CACHE" >> "$OUT"

# /proc/stat busy and total jiffies of the whole machine
stat_busy() { awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t-$5-$6, t; exit}' /proc/stat; }

PORT=
start_server() { # $1 kind, then extra quire-server flags
	local kind=$1
	SPID=
	case $kind in
	hocuspocus)
		PORT=18231
		(cd "$PEERS_CACHE" && PORT=$PORT DB=$WORK/hocuspocus.sqlite exec node --expose-gc servers/hocuspocus-server.mjs) >> "$WORK/server-$kind.log" 2>&1 &
		SPID=$! ;;
	ywebsocket)
		PORT=18232
		(cd "$PEERS_CACHE" && PORT=$PORT exec node --expose-gc servers/ywebsocket-server.mjs) >> "$WORK/server-$kind.log" 2>&1 &
		SPID=$! ;;
	quire | floor | quire-load)
		PORT=18233
		# shellcheck disable=SC2086
		"$QUIRE_BIN" --listen 127.0.0.1:$PORT --db "$WORK/quire/quire.db" $QUIRE_FLAGS "${@:2}" >> "$WORK/server-$kind.log" 2>&1 &
		SPID=$! ;;
	esac
	local i
	for i in $(seq 1 100); do
		curl -s -o /dev/null "http://127.0.0.1:$PORT/" && return 0
		sleep 0.1
	done
	die "$kind did not start; log: $(tail -5 "$WORK/server-$kind.log")"
}
stop_server() {
	[ -n "$SPID" ] || return 0
	kill -TERM "$SPID" 2>/dev/null
	local i
	for i in $(seq 1 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$SPID" 2>/dev/null
	wait "$SPID" 2>/dev/null
	SPID=
}
fresh_db() { rm -rf "$WORK/quire" "$WORK"/hocuspocus.sqlite*; mkdir -p "$WORK/quire"; }

# Whole-machine CPU and the load average around one run: cpu_begin, the run,
# cpu_end LABEL (appends the record).
cpu_begin() {
	read -r cpu_b0 cpu_t0 < <(stat_busy)
	cpu_la0=$(cut -d' ' -f1-3 /proc/loadavg)
	cpu_ts=$(date +%s.%N)
}
cpu_end() {
	local b1 t1 te ncpu
	read -r b1 t1 < <(stat_busy)
	te=$(date +%s.%N)
	ncpu=$(nproc)
	echo "{\"scenario\":\"CPU\",\"server\":\"$KIND\",\"label\":\"$1\",\"wallSec\":$(awk "BEGIN{printf \"%.2f\", $te - $cpu_ts}"),\"machineBusyPct\":$(awk "BEGIN{printf \"%.1f\", 100 * $ncpu * ($b1 - $cpu_b0) / ($t1 - $cpu_t0)}"),\"loadavgBefore\":\"$cpu_la0\",\"loadavgAfter\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >> "$OUT"
}

# One load-generator run. $1 label, then loadgen options.
lg() {
	local label=$1; shift
	local adapter=$KIND
	[ "$KIND" = quire ] && adapter=$here/quire.mjs
	[ "$KIND" = floor ] && adapter=$here/floor.mjs
	local n0; n0=$(wc -l < "$OUT")
	cpu_begin
	(cd "$PEERS_CACHE" && timeout $((TL + 150)) node loadgen.mjs --adapter "$adapter" \
		--url ws://127.0.0.1:$PORT --pid "$SPID" --run "${LG_RUN:-$RUN}" --trace "$TRACE" --out "$OUT" \
		--label "$label" "$@") 2>&1 | cut -c1-400
	# no result line: killed by the timeout or crashed
	[ "$(wc -l < "$OUT")" -gt "$n0" ] ||
		echo "{\"scenario\":\"$label\",\"server\":\"$KIND\",\"error\":\"no result (timeout after $((TL + 150)) s or crash)\",\"args\":{\"label\":\"$label\"}}" >> "$OUT"
	cpu_end "$label"
}

# One run of the C load generator (quire-load MODE ...) in place of lg: its
# JSON result line gets the server kind and the label. $1 label, $2 mode,
# then quire-load options.
ql() {
	local label=$1 mode=$2; shift 2
	local one="$WORK/ql.jsonl"
	rm -f "$one"
	cpu_begin
	timeout $((TL + 150)) "$QUIRE_LOAD" "$mode" --port "$PORT" --trace "$TRACE" --json "$one" "$@" 2>&1 | cut -c1-400
	if [ -s "$one" ]; then
		sed "s/^{/{\"server\":\"quire-load\",\"label\":\"$label\",/" "$one" >> "$OUT"
	else
		echo "{\"mode\":\"$mode\",\"server\":\"quire-load\",\"label\":\"$label\",\"error\":\"no result (timeout after $((TL + 150)) s or crash)\"}" >> "$OUT"
	fi
	cpu_end "$label"
}

# wants SCENARIO: asked for in SCENARIOS; has SCENARIO: and run by the node
# load generator for this KIND
wants() { case " $SCENARIOS " in *" $1 "*) return 0 ;; esac; return 1; }
has() {
	# quire-load runs none of them (its own S1 and S4 below)
	[ "$KIND" = quire-load ] && return 1
	# the floor's clients are no replicas: S1, S1 max and S4 only
	[ "$KIND" = floor ] && case $1 in s1 | s1max | s4) ;; *) return 1 ;; esac
	wants "$1"
}

for KIND in $SERVERS; do
	echo "== $KIND"
	fresh_db
	if has s3; then
		for C in $S3_CONNS; do
			# S3 measures RSS growth per connection: no prefaulted heap
			# for connections to reuse (it would hide 4 MiB / C each)
			start_server $KIND --prefault-bytes 0
			lg s3-c$C --scenario s3 --conns "$C" --docs 100 --hold "$S3_HOLD" --batch 200 --time-limit 120
			stop_server; fresh_db
		done
	fi
	start_server $KIND
	if [ "$KIND" = quire-load ]; then
		# S1 at the fixed rate and S4 with C clients: the server's own figures
		if wants s1; then
			for N in $S1_NS; do
				ql s1-n$N-r$RATE fanout --observers "$N" --rate "$RATE" --edits "$S1_EDITS"
			done
		fi
		# 20 rounds of S4, each reconnecting 20 ms after the burst (the
		# harness's polling gives 0-20 ms)
		wants s4 && ql s4 catchup --rounds 20 --pre 5000 --gap 10000 --pause-ms 20
	fi
	if has s1; then
		for N in $S1_NS; do
			lg s1-n$N-r$RATE --scenario s1 --observers "$N" --rate "$RATE" --edits "$S1_EDITS" --time-limit "$TL" --doc "s1-n$N-r$RATE-$RUN"
		done
	fi
	if has s1max; then
		lg s1-n$MAX_N-max --scenario s1 --observers "$MAX_N" --rate 0 --edits "$MAX_EDITS" --time-limit "$TL" --doc "s1-n$MAX_N-max-$RUN"
	fi
	if has s2; then
		lg s2 --scenario s2 --docs "$S2_DOCS" --edits "$S2_EDITS" --time-limit 120
	fi
	if has s4; then
		# the Quire adapter adds per-connection payload and socket bytes
		QUIRE_BENCH_BYTES_LOG=$OUT lg s4 --scenario s4 --pre 5000 --gap 10000 --time-limit 60
		# and again offering permessage-deflate, as browsers do (the Yjs
		# servers here do not accept it): the bytes on the wire. The load
		# generator names S4's document after the run id: another one here
		if [ $KIND = quire ]; then
			LG_RUN=${RUN}d QUIRE_BENCH_DEFLATE=1 QUIRE_BENCH_BYTES_LOG=$OUT lg s4-deflate --scenario s4 --pre 5000 --gap 10000 --time-limit 60
		fi
	fi
	if has s5; then
		DOC=s5-paper-$RUN
		lg s5replay --scenario s5replay --doc "$DOC" --time-limit 120
		if [ $KIND != ywebsocket ]; then # y-websocket's server keeps nothing
			sleep 3 # Hocuspocus stores 2 s after the last change
			stop_server
			if [ $KIND = hocuspocus ]; then
				(cd "$PEERS_CACHE" && node -e "const D=require('better-sqlite3');const f=process.argv[1];const d=new D(f,{readonly:true});
const b=d.prepare('select length(data) b from documents where name=?').get(process.argv[2])?.b;
console.log(JSON.stringify({scenario:'S5store',server:'hocuspocus',docId:process.argv[2],storedDocBytes:b,dbFileBytes:require('fs').statSync(f).size}))" "$WORK/hocuspocus.sqlite" "$DOC") >> "$OUT"
			else
				db=$WORK/quire/quire.db
				snap=$(sqlite3 "$db" "select coalesce(sum(length(s.zstd)),0) from snapshots s join documents d on d.id=s.doc where d.name='$DOC'")
				rawsnap=$(sqlite3 "$db" "select coalesce(max(s.raw_size),0) from snapshots s join documents d on d.id=s.doc where d.name='$DOC'")
				logb=$(sqlite3 "$db" "select coalesce(sum(length(c.payload)),0) from changes c join documents d on d.id=c.doc where d.name='$DOC'")
				nch=$(sqlite3 "$db" "select count(*) from changes c join documents d on d.id=c.doc where d.name='$DOC'")
				size=$(stat -c %s "$db")
				echo "{\"scenario\":\"S5store\",\"server\":\"quire\",\"docId\":\"$DOC\",\"storedDocBytes\":$((snap + logb)),\"snapshotZstdBytes\":$snap,\"snapshotRawBytes\":$rawsnap,\"logBytes\":$logb,\"logChanges\":$nch,\"dbFileBytes\":$size}" >> "$OUT"
			fi
			start_server $KIND
			lg s5verify --scenario s5verify --doc "$DOC" --edits 259778 --time-limit 60
			if [ $KIND = quire ]; then # the server logs each load (in us)
				ms=$(grep -o "document '$DOC': loaded at seq [0-9]* ([^)]*) in [0-9]* [mu]s" "$WORK/server-quire.log" | tail -1)
				echo "{\"scenario\":\"S5load\",\"server\":\"quire\",\"docId\":\"$DOC\",\"logLine\":\"$ms\"}" >> "$OUT"
			fi
		fi
	fi
	stop_server
	cp "$WORK/server-$KIND.log" "$RESULTS_DIR/run-$RUN-server-$KIND.log" 2>/dev/null
done

node "$here/report.mjs" "$OUT" | tee "${OUT%.jsonl}.md"
echo "results: $OUT"
