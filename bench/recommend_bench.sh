#!/usr/bin/env bash
# The recommend step (src/pipeline/recommend.c) against one plain read of its item matrix, side by
# side in one run (target: at most 1.5x). One command:
#
#   bench/recommend_bench.sh [ITEMS] [DIM]      (default 100000 x 64 float32)
#
# Builds celer's library (Release, build-bench/) and bench/recommend_bench.c, writes a random item
# matrix with numpy into build-bench/recommend/, and prints both medians and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
ITEMS=${1:-100000}
DIM=${2:-64}
BUILD=${BENCH_BUILD_DIR:-$PWD/build-bench}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$BUILD" -j2 recommend_bench >"$BUILD/recommend-build.log" 2>&1 || { cat "$BUILD/recommend-build.log"; exit 1; }
mkdir -p "$BUILD/recommend"
MATRIX=$BUILD/recommend/items_${ITEMS}x${DIM}.npy
[[ -f $MATRIX ]] || /usr/bin/python3 -c "
import numpy as np, sys
np.save(sys.argv[1], np.random.default_rng(5).standard_normal((int(sys.argv[2]), int(sys.argv[3])), dtype=np.float32))
" "$MATRIX" "$ITEMS" "$DIM"
"$BUILD/recommend_bench" "$MATRIX" 200
