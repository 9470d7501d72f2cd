#!/usr/bin/env bash
# Runs real PyTorch-exported models (scripts/export_models.py) through `celer run` and compares
# every output with PyTorch's: max|y-ref|/max|ref| <= 1e-4; then each again converted from its
# opset 17 to opset 23 (scripts/upgrade_opset.py), against the same outputs and against ONNX
# Runtime's on the converted model (tests/models/ort_reference.py: npm onnxruntime-node, installed
# into a cache folder when missing; its outputs are kept in OUTDIR beside the model).
# Usage: check_real_models.sh CELER_BIN OUTDIR   (OUTDIR caches the exported models between runs;
# CELER_REAL_MODELS_DIR, when set, takes its place so several builds share one export)
# Prints one line per model and "N passed, M failed"; exits non-zero when any failed.
set -u

CELER=${1:?usage: check_real_models.sh CELER_BIN OUTDIR}
OUTDIR=${CELER_REAL_MODELS_DIR:-${2:?usage: check_real_models.sh CELER_BIN OUTDIR}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
TOL=${CELER_MODEL_TOL:-1e-4}
NEW_OPSET=23 # each model runs again converted to it (scripts/upgrade_opset.py)

passed=0
failed=0

if [ ! -x "$CELER" ]; then
    echo "celer binary not found: $CELER"
    echo "0 passed, 1 failed"
    exit 1
fi

# Export (cached: models already in OUTDIR are skipped).
mkdir -p "$OUTDIR"
if ! "$PY" "$ROOT/scripts/export_models.py" "$OUTDIR" >"$OUTDIR/export.log" 2>&1; then
    echo "FAIL export: scripts/export_models.py failed; last lines of $OUTDIR/export.log:"
    tail -n 5 "$OUTDIR/export.log"
    echo "0 passed, 1 failed"
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/celer-models.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# check_model NAME MODEL DIR [LABEL=REFDIR...]: every input set of DIR through MODEL, compared with
# DIR's expected outputs (PyTorch's), and with REFDIR's (expected/, expected_K/) for each one given
check_model() {
    local name=$1 model=$2 dir=$3
    shift 3
    # one run per input set: inputs/ + expected/, then inputs_K/ + expected_K/ (other batch or
    # sequence sizes); the model passes when every set does
    ok=1
    summary=""
    for inputs in "$dir"/inputs "$dir"/inputs_*; do
        [ -d "$inputs" ] || continue
        set_name=$(basename "$inputs")
        expected="$dir/expected${set_name#inputs}"
        args=()
        for f in "$inputs"/*.npy; do
            args+=(--input "$(basename "$f" .npy)=$f")
        done
        out="$tmp/$name/$set_name"
        mkdir -p "$out"
        start=$EPOCHREALTIME
        if ! "$CELER" run "$model" "${args[@]}" --output-dir "$out" >"$tmp/$name.log" 2>&1; then
            ok=0
            summary="$summary [$set_name] celer run exited non-zero: $(head -c 400 "$tmp/$name.log" | tr '\n' ' ')"
            continue
        fi
        secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
        if result=$("$PY" "$HERE/compare.py" "$expected" "$out" --tol "$TOL" 2>&1); then
            summary="$summary [$set_name] $result (${secs} s)"
        else
            ok=0
            summary="$summary [$set_name] $result"
        fi
        for ref in "$@"; do
            if result=$("$PY" "$HERE/compare.py" "${ref#*=}/expected${set_name#inputs}" "$out" --tol "$TOL" 2>&1); then
                summary="$summary [$set_name vs ${ref%%=*}] $result"
            else
                ok=0
                summary="$summary [$set_name vs ${ref%%=*}] $result"
            fi
        done
    done
    if [ "$ok" -eq 1 ]; then
        passed=$((passed + 1))
        echo "PASS $name:$summary"
    else
        failed=$((failed + 1))
        echo "FAIL $name:$summary"
    fi
}

for dir in "$OUTDIR"/*/; do
    dir=${dir%/}
    name=$(basename "$dir")
    case $name in *.tmp) continue ;; esac
    [ -f "$dir/model.onnx" ] || continue
    check_model "$name" "$dir/model.onnx" "$dir"
    # the same model as exporters of today write it, at the newest opset celer runs (the
    # differences converted by scripts/upgrade_opset.py), against the same expected outputs
    if "$PY" "$ROOT/scripts/upgrade_opset.py" "$dir/model.onnx" "$tmp/$name-opset$NEW_OPSET.onnx" "$NEW_OPSET" \
        >"$tmp/$name-upgrade.log" 2>&1; then
        # and against ONNX Runtime's outputs on the converted model (Triton's ONNX backend)
        if "$PY" "$HERE/ort_reference.py" "$tmp/$name-opset$NEW_OPSET.onnx" "$dir" "$dir/ort-opset$NEW_OPSET" \
            >"$tmp/$name-ort.log" 2>&1; then
            check_model "$name@opset$NEW_OPSET" "$tmp/$name-opset$NEW_OPSET.onnx" "$dir" \
                "onnxruntime=$dir/ort-opset$NEW_OPSET"
        else
            failed=$((failed + 1))
            echo "FAIL $name@opset$NEW_OPSET: ort_reference.py: $(tail -n 3 "$tmp/$name-ort.log" | tr '\n' ' ')"
        fi
    else
        failed=$((failed + 1))
        echo "FAIL $name@opset$NEW_OPSET: upgrade_opset.py: $(tail -n 2 "$tmp/$name-upgrade.log" | tr '\n' ' ')"
    fi
done

if [ $((passed + failed)) -eq 0 ]; then
    echo "FAIL: no models found in $OUTDIR"
    failed=1
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
