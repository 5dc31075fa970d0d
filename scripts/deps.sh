#!/usr/bin/env bash
# deps.sh [--browser] - install everything Quire needs on Debian 12 (idempotent).
#
# --browser also installs chromium (about 400 MB, without recommends) and
# fonts-noto-cjk (about 90 MB, for CJK glyphs in screenshots) for the
# web demo's browser test; scripts/test.sh passes it, scripts/run.sh does not.
#
# Installs the C toolchain, the WebAssembly toolchain (clang-14 + wasi-libc)
# and the libraries of every layer with apt. When every package is already
# installed it does nothing, so scripts/run.sh and scripts/test.sh can call it
# on every run; QUIRE_FORCE_DEPS=1 forces `apt-get update` + install anyway.
# Node.js 20 and npm come with the machine image: they are checked, not
# installed (Debian's nodejs package would conflict with them).
set -euo pipefail

packages=(
	# build
	build-essential cmake ninja-build pkg-config
	# clang: sanitizers, libFuzzer and the wasm32-wasi build of crdt/
	clang-14 lld-14 libclang-rt-14-dev wasi-libc libclang-rt-14-dev-wasm32
	# libraries of the layers (bench: zlib; proto: protobuf-c; storage:
	# sqlite3 + zstd; server: libwebsockets; tests: cmocka)
	zlib1g-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libssl-dev
	libsqlite3-dev sqlite3 libzstd-dev libwebsockets-dev libcmocka-dev
	# server: lws's libev event-loop plugin (epoll) and libev's header
	# (quire-server falls back to poll() when the plugin is missing)
	libwebsockets-evlib-ev libev-dev
	# test drivers: quire-dump tests use python3 (standard library only)
	python3
	# tools
	valgrind
)

if [[ ${1:-} == --browser ]]; then
	packages+=(chromium fonts-noto-cjk) # CJK glyphs in the test screenshots (~56 MB)
fi

installed=" $(dpkg-query -W -f='${db:Status-Status}:${Package} ' "${packages[@]}" 2>/dev/null || true) "
missing=()
for pkg in "${packages[@]}"; do
	[[ $installed == *" installed:$pkg "* ]] || missing+=("$pkg")
done

if (( ${#missing[@]} > 0 )) || [[ ${QUIRE_FORCE_DEPS:-0} == 1 ]]; then
	sudo=()
	if (( EUID != 0 )); then
		if command -v sudo >/dev/null 2>&1; then
			sudo=(sudo)
		else
			echo "deps.sh: not root and no sudo; install these by hand: ${missing[*]}" >&2
			exit 1
		fi
	fi
	echo "deps.sh: installing ${missing[*]:-(forced) ${packages[*]}}"
	"${sudo[@]}" apt-get update
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "${packages[@]}"
else
	echo "deps.sh: all ${#packages[@]} packages already installed"
fi

if command -v node >/dev/null 2>&1; then
	major=$(node -p 'process.versions.node.split(".")[0]')
	if (( major < 18 )); then
		echo "deps.sh: warning: node $(node --version) is old; the wasm and web tests want node >= 18" >&2
	fi
else
	echo "deps.sh: warning: node not found; the wasm smoke test and web tools are skipped" >&2
fi
