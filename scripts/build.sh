#!/usr/bin/env bash
# build.sh [BUILD_DIR] [CMAKE_ARGS...] - configure with Ninja and build.
#
# BUILD_DIR defaults to build/ (relative paths are taken from the repo root);
# the build type defaults to RelWithDebInfo (-O2 -g, asserts off). Any extra
# arguments go to cmake's configure step and override those defaults, e.g.
#   scripts/build.sh build/debug -DCMAKE_BUILD_TYPE=Debug
#   scripts/build.sh build/asan -DCMAKE_C_COMPILER=clang-14 -DQUIRE_SANITIZE=ON
# Install the dependencies first with scripts/deps.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

build_dir=build
if (( $# > 0 )) && [[ $1 != -* ]]; then
	build_dir=$1
	shift
fi

cmake -S "$ROOT" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build "$build_dir" -j "${QUIRE_JOBS:-2}"
