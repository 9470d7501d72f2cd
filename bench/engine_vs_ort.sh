#!/usr/bin/env bash
# celer's engine side by side with ONNX Runtime (onnxruntime-node 1.31.1, CPU) on a zoo of models
# (bench/engine_models.py), at batch 1 and 8, 1 and 2 threads. One command:
#
#   bench/engine_vs_ort.sh
#
# Installs onnxruntime-node into bench/ort/ (git-ignored; reused when there), builds celer
# (Release) into build-vsort/ (keeping the existing binary if the build fails), exports the zoo
# once into build-vsort/vs-ort-models/NAME/ (model.onnx + a batch-1 input; batch 8 tiles it), then:
#  - checks celer's outputs against ONNX Runtime's on that input (celer run, bench/ort_time.js
#    --output-dir; max|diff|/max|ref| <= 1e-4): a model celer fails to load or gets wrong shows as
#    a row saying so, the run goes on;
#  - times both on each configuration in fresh processes (celer bench; bench/ort_time.js: session
#    with intraOpNumThreads N, 1 inter-op thread, all graph optimizations, sequential), the same
#    number of calls K for both (calibrated to about ENGINE_VS_ORT_SECONDS on celer), in
#    ENGINE_VS_ORT_ROUNDS alternating rounds (celer first in odd rounds, ONNX Runtime first in even
#    ones), each run optionally after waiting for a quiet half-second (capped);
#  - prints one table: per row the celer/ORT ratio of medians and of minimum times (judge on the
#    minimum: load from other work only adds time), peak RSS of both (and of each runtime alone,
#    with a one-Identity model: node itself takes ~40 MB), geometric means of the ratios.
# Raw JSON lines: build-vsort/vs-ort-run/results.jsonl; the table: build-vsort/vs-ort-run/table.md.
#
# Env (comma-separated lists):
#   ENGINE_VS_ORT_MODELS   the zoo (engine_models.py --list, less identity)
#   ENGINE_VS_ORT_BATCHES  1,8        ENGINE_VS_ORT_THREADS  1,2        ENGINE_VS_ORT_ROUNDS  3
#   ENGINE_VS_ORT_SECONDS  1          (target time of one measurement; K >= ENGINE_VS_ORT_MIN_CALLS, 5)
#   ENGINE_VS_ORT_QUIET    1          (max seconds to wait for a quiet half-second before a run; 0: never)
#   ENGINE_VS_ORT_BUSY     0.25       (quiet = CPUs busy less than this fraction of all of them)
# e.g. a quick run: ENGINE_VS_ORT_MODELS=mlp,lstm,resnet18 ENGINE_VS_ORT_ROUNDS=1 \
#   ENGINE_VS_ORT_SECONDS=0.3 bench/engine_vs_ort.sh
set -euo pipefail
log() { echo "vs-ort: $*" >&2; }
BENCH_BUILD_DIR=${BENCH_BUILD_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build-vsort}
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"  # ROOT, PY, BUILD, build_celer
cd "$ROOT"
ORT_VERSION=1.31.1
ORT_DIR=$ROOT/bench/ort
MODELS_DIR=$BUILD/vs-ort-models
RUN=$BUILD/vs-ort-run
RESULTS=$RUN/results.jsonl
REPORT=(env "$PY" "$ROOT/bench/vs_ort_report.py")
ZOO=$($PY bench/engine_models.py --list | grep -vx identity | paste -sd,)
IFS=, read -ra MODELS <<<"${ENGINE_VS_ORT_MODELS:-$ZOO}"
IFS=, read -ra BATCHES <<<"${ENGINE_VS_ORT_BATCHES:-1,8}"
IFS=, read -ra THREADS <<<"${ENGINE_VS_ORT_THREADS:-1,2}"
ROUNDS=${ENGINE_VS_ORT_ROUNDS:-3}
SECONDS_PER=${ENGINE_VS_ORT_SECONDS:-1}
MIN_CALLS=${ENGINE_VS_ORT_MIN_CALLS:-5}
QUIET=${ENGINE_VS_ORT_QUIET:-1}
BUSY=${ENGINE_VS_ORT_BUSY:-0.25}

is_count() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
is_number() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
for m in "${MODELS[@]}"; do
  [[ ,$ZOO,identity, == *,$m,* ]] || { log "unknown model '$m' (have: $ZOO)"; exit 2; }
done
for v in "${BATCHES[@]}" "${THREADS[@]}" "$ROUNDS" "$MIN_CALLS"; do
  is_count "$v" || { log "'$v' is not a positive integer (check the ENGINE_VS_ORT_* variables)"; exit 2; }
done
for v in "$SECONDS_PER" "$QUIET" "$BUSY"; do
  is_number "$v" || { log "'$v' is not a number >= 0 (check the ENGINE_VS_ORT_* variables)"; exit 2; }
done
T_START=$(date +%s)
START=$(date -u '+%Y-%m-%d %H:%M UTC')
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- ONNX Runtime, in a folder of its own (the package's own install script is skipped: the npm
# tarball carries the CPU binaries, and the script would download CUDA ones)
if [[ $(node -p "require('$ORT_DIR/node_modules/onnxruntime-node/package.json').version" 2>/dev/null) != "$ORT_VERSION" ]]; then
  log "installing onnxruntime-node@$ORT_VERSION into $ORT_DIR"
  mkdir -p "$ORT_DIR"
  printf 'onnxruntime-node-install=skip\nsave-exact=true\n' >"$ORT_DIR/.npmrc"
  [[ -f $ORT_DIR/package.json ]] || echo '{"private": true}' >"$ORT_DIR/package.json"
  (cd "$ORT_DIR" && npm install --no-audit --no-fund "onnxruntime-node@$ORT_VERSION" >&2)
fi
export NODE_PATH=$ORT_DIR/node_modules
ORT_TIME=(node "$ROOT/bench/ort_time.js")

# ---- celer (Release)
mkdir -p "$BUILD"
build_celer vs-ort
CELER=$BUILD/celer
BUILT="at HEAD $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
grep -q FAILED "$BUILD/vs-ort-build.log" 2>/dev/null && BUILT="an earlier binary: the build at $BUILT FAILED"
rm -rf "$RUN" && mkdir -p "$RUN/out" "$RUN/inputs" "$RUN/logs"
: >"$RESULTS"

# ---- the zoo (exported once; delete build-vsort/vs-ort-models/NAME to re-export)
(IFS=,; $PY bench/engine_models.py "$MODELS_DIR" --only "${MODELS[*]},identity") >&2

input_args() {  # input_args DIR: --input NAME=DIR/NAME.npy for every .npy in DIR
  local f
  for f in "$1"/*.npy; do printf -- '--input\n%s=%s\n' "$(basename "$f" .npy)" "$f"; done
}
fail_row() {  # fail_row ENGINE NAME BATCH THREADS ERRFILE
  local why
  why=$(grep -v '^\s*$' "$5" 2>/dev/null | tail -n1 | tr -d '"\\' | cut -c1-200)
  log "  $1 failed on $2 b$3 t$4: ${why:-no message}"
  echo "{\"kind\": \"fail\", \"engine\": \"$1\", \"name\": \"$2\", \"batch\": $3, \"threads\": $4, \"error\": \"${why:-exit status}\"}" >>"$RESULTS"
}
# run_one ENGINE NAME BATCH THREADS K W INPUTDIR KIND [TAGS...]: one fresh process; appends its
# JSON line to RESULTS (or a fail row) and prints its median ms (nothing on failure)
run_one() {
  local engine=$1 name=$2 b=$3 nt=$4 k=$5 w=$6 dir=$7 kind=$8 out line
  shift 8
  out=$RUN/logs/$engine-$name-b$b-t$nt-$kind-$(date +%s%N)
  local -a in
  mapfile -t in < <(input_args "$dir")
  if [[ $engine == celer ]]; then
    "$CELER" bench "$MODELS_DIR/$name/model.onnx" --threads "$nt" --iterations "$k" --warmup "$w" "${in[@]}" \
      >"$out.txt" 2>"$out.err" || true
  else
    "${ORT_TIME[@]}" "$MODELS_DIR/$name/model.onnx" --threads "$nt" --iterations "$k" --warmup "$w" "${in[@]}" \
      >"$out.txt" 2>"$out.err" || true
  fi
  if ! line=$("${REPORT[@]}" record kind="$kind" engine="$engine" name="$name" batch="$b" threads="$nt" "$@" <"$out.txt"); then
    fail_row "$engine" "$name" "$b" "$nt" "$out.err"
    return 0
  fi
  echo "$line" >>"$RESULTS"
  $PY -c 'import json, sys; print(json.loads(sys.argv[1])["median_ms"])' "$line"
}

# ---- the runtimes alone: peak RSS with a one-Identity model
run_one celer identity 1 1 10 1 "$MODELS_DIR/identity/inputs" baseline >/dev/null
run_one ort identity 1 1 10 1 "$MODELS_DIR/identity/inputs" baseline >/dev/null

for name in "${MODELS[@]}"; do
  # ---- outputs: celer against ONNX Runtime on the batch-1 input
  model=$MODELS_DIR/$name/model.onnx
  mapfile -t in < <(input_args "$MODELS_DIR/$name/inputs")
  o=$RUN/out/$name
  mkdir -p "$o"
  celer_ok=1
  if ! "$CELER" run "$model" "${in[@]}" --output-dir "$o/celer" >"$o.celer.log" 2>&1; then
    result="FAIL celer: $(grep -v '^\s*$' "$o.celer.log" | tail -n1 | tr -d '"\\' | cut -c1-100)"
    celer_ok=0
  elif ! "${ORT_TIME[@]}" "$model" "${in[@]}" --output-dir "$o/ort" >"$o.ort.log" 2>&1; then
    result="FAIL ONNX Runtime: $(grep -v '^\s*$' "$o.ort.log" | tail -n1 | tr -d '"\\' | cut -c1-100)"
  else
    result=$("${REPORT[@]}" check "$o/celer" "$o/ort")
  fi
  log "$name: outputs $result"
  echo "{\"kind\": \"check\", \"name\": \"$name\", \"result\": \"$result\"}" >>"$RESULTS"

  for b in "${BATCHES[@]}"; do
    dir=$MODELS_DIR/$name/inputs
    if ((b != 1)); then
      dir=$RUN/inputs/$name-b$b
      "${REPORT[@]}" tile "$MODELS_DIR/$name/inputs" "$dir" "$b"
    fi
    for t in "${THREADS[@]}"; do
      # ---- K calls for about SECONDS_PER seconds, from a short run (celer's, ONNX Runtime's if
      # celer cannot run the model); the same K for both
      engines=(celer ort)
      ((celer_ok)) || engines=(ort)  # the output check's row says why
      med=$(run_one "${engines[0]}" "$name" "$b" "$t" 3 1 "$dir" calibrate)
      [[ -n $med ]] || { log "$name b$b t$t: no calibration run; skipped"; continue; }
      k=$($PY -c 'import math, sys; s, m, lo = map(float, sys.argv[1:]); print(int(max(lo, min(100000, math.ceil(s * 1000 / max(m, 1e-3))))))' \
        "$SECONDS_PER" "$med" "$MIN_CALLS")
      w=$((k / 10 < 2 ? 2 : (k / 10 > 50 ? 50 : k / 10)))
      log "$name batch $b threads $t: $ROUNDS round(s) of $k calls after $w warm-up (calibration median $med ms)"
      for ((r = 1; r <= ROUNDS; r++)); do
        order=("${engines[@]}")
        ((r % 2 == 0 && ${#engines[@]} == 2)) && order=(ort celer)
        meds=()
        for e in "${order[@]}"; do
          tags=(round="$r" first="${order[0]}")
          [[ $QUIET == 0 ]] || tags+=(busy_before="$("${REPORT[@]}" quiet "$QUIET" "$BUSY")")
          meds+=("$e $(run_one "$e" "$name" "$b" "$t" "$k" "$w" "$dir" timed "${tags[@]}")")
        done
        log "  round $r: median ms ${meds[*]}"
      done
    done
  done
done

# ---- report
ELAPSED=$(($(date +%s) - T_START))
VS_ORT_HEADER="celer vs ONNX Runtime, $START; $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), \
$(nproc) cores; load average $LOADAVG_START at start, $(cut -d' ' -f1-3 /proc/loadavg) at end; \
celer Release ($BUILT), onnxruntime-node $ORT_VERSION (node $(node --version)); run took $((ELAPSED / 60)) min $((ELAPSED % 60)) s"
VS_ORT_PROTOCOL="each row: ${ROUNDS} round(s), each a fresh celer bench and a fresh ONNX Runtime process (order swapped \
every round), the same K calls (about ${SECONDS_PER} s) after K/10 (2-50) warm-up on the same input; waiting up to \
${QUIET} s for a half-second with the CPUs < ${BUSY} busy before each run. median = median of the round medians, \
min = lowest call of all rounds; ratios are celer/ORT (< 1: celer faster): judge on the min ratio (bold), the \
medians carry the load of the shared machine. Output check: max|celer-ORT|/max|ORT| on the batch-1 input (<= 1e-4)."
export VS_ORT_HEADER VS_ORT_PROTOCOL
echo
"${REPORT[@]}" report "$RESULTS" "$RUN/table.md"
echo
echo "raw JSON: $RESULTS; table: $RUN/table.md; logs: $RUN/logs"
