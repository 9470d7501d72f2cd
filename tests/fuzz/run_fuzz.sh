#!/bin/sh
# Fuzzes the ONNX reader for SECONDS (default 60): configures a clang build in build-fuzz, builds
# fuzz_onnx, seeds a corpus from the conformance models and runs libFuzzer on one core.
# Exits non-zero when a crash (or leak, timeout, OOM) is found; artifacts go to build-fuzz/artifacts.
set -eu
SECS=${1:-60}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${CELER_FUZZ_BUILD:-$ROOT/build-fuzz}
DATA=${ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCELER_FUZZ=ON >/dev/null
ninja -C "$BUILD" -j2 fuzz_onnx

CORPUS=$(mktemp -d "${TMPDIR:-/tmp}/celer-fuzz-corpus.XXXXXX")
LOG="$BUILD/fuzz_onnx.log"
trap 'rm -rf "$CORPUS"' EXIT
for m in "$DATA"/node/*/model.onnx "$DATA"/simple/*/model.onnx "$DATA"/pytorch-*/*/model.onnx; do
    [ -f "$m" ] || continue
    case_dir=$(dirname "$m")
    cp "$m" "$CORPUS/$(basename "$(dirname "$case_dir")")_$(basename "$case_dir").onnx"
done
echo "fuzz_onnx: $(ls "$CORPUS" | wc -l) seed models, running ${SECS}s"

mkdir -p "$BUILD/artifacts"
START=$(date +%s)
set +e
"$BUILD/tests/fuzz/fuzz_onnx" -max_total_time="$SECS" -max_len=1048576 -rss_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/" "$CORPUS" >"$LOG" 2>&1
RC=$?
set -e
END=$(date +%s)
RUNS=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOG" | tail -n 1)
if [ "$RC" -ne 0 ]; then
    tail -n 40 "$LOG"
    echo "fuzz_onnx: CRASH (exit $RC) after $((END - START)) s; log $LOG, artifacts in $BUILD/artifacts"
    exit 1
fi
echo "fuzz_onnx: ${RUNS:-?} runs in $((END - START)) s, no crash"
