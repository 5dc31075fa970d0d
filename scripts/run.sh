#!/usr/bin/env bash
# run.sh [QUIRE-SERVER FLAGS...] - build everything (build/release) and start
# quire-server in the foreground (Ctrl-C stops it gracefully).
#
# Defaults: listens on 127.0.0.1:8080 (WebSocket at ws://127.0.0.1:8080/sync,
# GET /healthz, GET /metrics), database ./data/quire.db (created), and the web
# demo's build (web-demo/dist) served at / when it exists. Any argument goes
# to the server (`./scripts/run.sh --help` lists them), and so do the QUIRE_*
# environment variables, e.g. QUIRE_LISTEN=0.0.0.0:9000 ./scripts/run.sh.
# The trace benchmark is build/release/bench/quire-bench (see bench/README.md).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
"$ROOT/scripts/deps.sh"
# The server people run carries no test hooks (QUIRE_FAULT_INJECTION).
"$ROOT/scripts/build.sh" build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQUIRE_FAULT_INJECTION=OFF

server=build/release/server/quire-server
if [[ ! -x $server ]]; then
	echo "run.sh: $server was not built" >&2
	exit 1
fi
web=()
if [[ -z ${QUIRE_WEB:-} ]]; then
	if [[ -d web-demo/dist ]]; then
		web=(--web web-demo/dist)
	else
		echo "run.sh: web-demo/dist is missing (the web demo is not built yet): serving the sync endpoint only" >&2
	fi
fi
exec "$server" "${web[@]}" "$@"
