#!/usr/bin/env bash
# run_soak.sh --server BIN --load BIN [--dump BIN] --out DIR [--server-arg ARG]... -- SOAK_FLAGS...
#
# One soak run against a fresh server: start quire-server on a free loopback
# port with a new temporary database, run `quire-load soak` against it
# (CSV, JSON line and log into DIR), stop the server with SIGTERM, then
# `quire-dump --db DB verify` the database, and write DIR/summary.txt.
# Exit status 0 only if the soak passed, the server exited 0 and verify
# passed. Used by scripts/soak.sh and the ctest test_soak_short.
set -uo pipefail

server='' load='' dump='' out=''
server_args=()
while (( $# > 0 )); do
	case $1 in
	--server) server=$2; shift 2 ;;
	--load) load=$2; shift 2 ;;
	--dump) dump=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--server-arg) server_args+=("$2"); shift 2 ;;
	--) shift; break ;;
	*) echo "run_soak.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
if [[ -z $server || -z $load || -z $out ]]; then
	echo "run_soak.sh: --server, --load and --out are required" >&2
	exit 2
fi
mkdir -p "$out"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/quire-soak-XXXXXX")
db=$tmp/q.db
log=$out/server.log
pid=
cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

"$server" --listen 127.0.0.1:0 --db "$db" "${server_args[@]}" >"$log" 2>&1 &
pid=$!
port=
for _ in $(seq 1 600); do
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$log" | head -n 1)
	[[ -n $port ]] && break
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "run_soak.sh: quire-server exited during start:" >&2
		cat "$log" >&2
		exit 1
	fi
	sleep 0.1
done
if [[ -z $port ]]; then
	echo "run_soak.sh: quire-server did not say where it listens" >&2
	exit 1
fi
echo "run_soak.sh: quire-server pid $pid on 127.0.0.1:$port, db $db"

rm -f "$out/soak.jsonl"
"$load" soak --url "ws://127.0.0.1:$port/sync" --server-pid "$pid" \
	--csv "$out/soak.csv" --json "$out/soak.jsonl" "$@" 2>&1 | tee "$out/soak.log"
soak_rc=${PIPESTATUS[0]}

kill -TERM "$pid"
server_rc=
for _ in $(seq 1 300); do
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid"
		server_rc=$?
		break
	fi
	sleep 0.1
done
if [[ -z $server_rc ]]; then
	echo "run_soak.sh: quire-server did not stop within 30 s of SIGTERM" >&2
	kill -KILL "$pid"
	wait "$pid"
	server_rc=timeout
fi
pid=

verify_rc=skipped
if [[ -n $dump ]]; then
	"$dump" --db "$db" verify >"$out/verify.log" 2>&1
	verify_rc=$?
	tail -n 3 "$out/verify.log"
fi

{
	echo "soak run $(date -u +%Y-%m-%dT%H:%M:%SZ): quire-load soak $*"
	echo "quire-load exit status: $soak_rc"
	echo "quire-server exit status after SIGTERM: $server_rc"
	echo "quire-dump verify exit status: $verify_rc"
	grep -E '^(soak|FAIL|note)' "$out/soak.log"
	echo "CSV: $out/soak.csv (columns: bench/README.md, quire-load soak)"
} >"$out/summary.txt"
cat "$out/summary.txt"

[[ $soak_rc == 0 && $server_rc == 0 && ( $verify_rc == 0 || $verify_rc == skipped ) ]]
