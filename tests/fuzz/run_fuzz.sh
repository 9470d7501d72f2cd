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
PCORPUS=$(mktemp -d "${TMPDIR:-/tmp}/celer-fuzz-pipeline.XXXXXX")
trap 'rm -rf "$CORPUS" "$PCORPUS"' EXIT
mkdir -p "$BUILD/artifacts"

# fuzz TARGET SECONDS MAX_LEN CORPUS: runs one target; a crash prints the log's tail and exits 1.
fuzz() {
    log="$BUILD/$1.log"
    start=$(date +%s)
    set +e
    "$BUILD/tests/fuzz/$1" -max_total_time="$2" -max_len="$3" -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/" "$4" >"$log" 2>&1
    rc=$?
    set -e
    end=$(date +%s)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ "$rc" -ne 0 ]; then
        tail -n 40 "$log"
        echo "$1: CRASH (exit $rc) after $((end - start)) s; log $log, artifacts in $BUILD/artifacts"
        exit 1
    fi
    echo "$1: ${runs:-?} runs in $((end - start)) s, no crash"
}

for m in "$DATA"/node/*/model.onnx "$DATA"/simple/*/model.onnx "$DATA"/pytorch-*/*/model.onnx; do
    [ -f "$m" ] || continue
    case_dir=$(dirname "$m")
    cp "$m" "$CORPUS/$(basename "$(dirname "$case_dir")")_$(basename "$case_dir").onnx"
done
echo "fuzz_onnx: $(ls "$CORPUS" | wc -l) seed models, running ${SECS}s"
fuzz fuzz_onnx "$SECS" 1048576 "$CORPUS"

# fuzz_pipeline: the first byte picks the path (0 YAML, 1 image, 2 JSON body)
i=0
for y in "$ROOT"/examples/repository/*/pipeline.yaml; do
    { printf '\000'; cat "$y"; } >"$PCORPUS/yaml$i"; i=$((i + 1))
done
for img in "$ROOT"/tests/data/pipeline/*; do
    { printf '\001'; cat "$img"; } >"$PCORPUS/image$i"; i=$((i + 1))
done
printf '\002[{"age": 31, "id": 7, "country": "de", "exclude": [1, 2], "v": [1, 2, 3], "flag": true}, {"age": null}]' \
    >"$PCORPUS/json"
fuzz fuzz_pipeline "${PIPELINE_SECONDS:-30}" 65536 "$PCORPUS"
