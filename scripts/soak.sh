#!/usr/bin/env bash
# soak.sh [SECONDS] - the soak test (issue 7): build Release into
# build/release, start quire-server on a fresh temporary database on a free
# loopback port, run `quire-load soak` (5,000 sessions on 200 documents,
# 3 writers each, drops and resumes) for SECONDS (default 600), stop the
# server with SIGTERM, `quire-dump verify` its database, and leave the CSV,
# the logs and summary.txt in build/soak/. Exit status 0 only if everything
# passed. The server runs with its default limits (the soak's clients stay
# under the per-connection rate limits). QUIRE_SOAK_FLAGS adds quire-load
# flags, e.g. QUIRE_SOAK_FLAGS="--conns 2000 --docs 100".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
seconds=${1:-600}

"$ROOT/scripts/build.sh" build/release -DCMAKE_BUILD_TYPE=Release -DQUIRE_FAULT_INJECTION=OFF
b=build/release
for f in $b/server/quire-server $b/bench/quire-load/quire-load $b/tools/quire-dump; do
	if [[ ! -x $f ]]; then
		echo "soak.sh: $f was not built" >&2
		exit 1
	fi
done
# shellcheck disable=SC2086
exec bench/quire-load/run_soak.sh --server $b/server/quire-server \
	--load $b/bench/quire-load/quire-load --dump $b/tools/quire-dump \
	--out build/soak -- --conns 5000 --docs 200 --writers-per-doc 3 --edit-rate 0.5 \
	--drop-every 30 --seconds "$seconds" ${QUIRE_SOAK_FLAGS:-}
