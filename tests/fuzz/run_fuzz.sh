#!/bin/sh
# Fuzzes the ONNX reader for SECONDS (default 60), then what pipelines take from outside
# (pipeline.yaml, image bytes, business-object JSON: fuzz_pipeline) for PIPELINE_SECONDS (default
# 30): configures a clang build in build-fuzz, builds the targets, seeds corpora from the
# conformance models and the example pipelines, and runs libFuzzer on one core.
# Exits non-zero when a crash (or leak, timeout, OOM) is found; artifacts go to build-fuzz/artifacts.
set -eu
SECS=${1:-60}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${CELER_FUZZ_BUILD:-$ROOT/build-fuzz}
DATA=${ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCELER_FUZZ=ON >/dev/null
ninja -C "$BUILD" -j2 fuzz_onnx fuzz_pipeline

CORPUS=$(mktemp -d "${TMPDIR:-/tmp}/celer-fuzz-corpus.XXXXXX")
LOG="$BUILD/fuzz_onnx.log"
PCORPUS=$(mktemp -d "${TMPDIR:-/tmp}/celer-fuzz-pipeline.XXXXXX")
trap 'rm -rf "$CORPUS" "$PCORPUS"' EXIT
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

# fuzz_pipeline: the first byte picks the path (0 YAML, 1 image, 2 JSON body)
PSECS=${PIPELINE_SECONDS:-30}
i=0
for y in "$ROOT"/examples/repository/*/pipeline.yaml; do
    { printf '\000'; cat "$y"; } >"$PCORPUS/yaml$i"; i=$((i + 1))
done
for img in "$ROOT"/tests/data/pipeline/*; do
    { printf '\001'; cat "$img"; } >"$PCORPUS/image$i"; i=$((i + 1))
done
printf '\002[{"age": 31, "id": 7, "country": "de", "exclude": [1, 2], "v": [1, 2, 3], "flag": true}, {"age": null}]' \
    >"$PCORPUS/json"
LOG="$BUILD/fuzz_pipeline.log"
START=$(date +%s)
set +e
"$BUILD/tests/fuzz/fuzz_pipeline" -max_total_time="$PSECS" -max_len=65536 -rss_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/" "$PCORPUS" >"$LOG" 2>&1
RC=$?
set -e
END=$(date +%s)
RUNS=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOG" | tail -n 1)
if [ "$RC" -ne 0 ]; then
    tail -n 40 "$LOG"
    echo "fuzz_pipeline: CRASH (exit $RC) after $((END - START)) s; log $LOG, artifacts in $BUILD/artifacts"
    exit 1
fi
echo "fuzz_pipeline: ${RUNS:-?} runs in $((END - START)) s, no crash"
