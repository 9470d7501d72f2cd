#!/usr/bin/env bash
# celer vs FastAPI + uvicorn + PyTorch on the same recommendation MLP, and celer's trivial model vs
# nginx answering a static 200. One command:
#
#   bench/run_bench.sh
#
# Builds celer (Release, BENCH_BUILD_DIR, default build-bench) if needed, writes the models, checks
# that celer and FastAPI agree, then loads each server in turn with wrk at concurrency 1, 8 and 64
# for BENCH_SECONDS (default 10) and prints one table and the ratios. Everything listens on and
# targets 127.0.0.1 only; every server started here is stopped on exit. Logs, bodies and raw
# results stay in BUILD/bench-run/. Env: BENCH_SECONDS, BENCH_WARMUP_SECONDS (2),
# BENCH_PORT_BASE (18431: celer, +1 FastAPI 1 worker, +2 FastAPI 2 workers, +3 nginx),
# BENCH_BUILD_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
BASE=${BENCH_PORT_BASE:-18431}
P_CELER=$BASE P_FAST1=$((BASE + 1)) P_FAST2=$((BASE + 2)) P_NGINX=$((BASE + 3))
RUN=$BUILD/bench-run
RESULTS=$RUN/results.tsv

log() { echo "bench: $*" >&2; }

# ---- tools: wrk, nginx, and uvicorn's fast loop/parser (what `pip install uvicorn[standard]` gives)
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[[ -x /usr/sbin/nginx ]] || missing+=(nginx)
$PY -c 'import uvloop, httptools' 2>/dev/null || missing+=(python3-uvloop python3-httptools)
$PY -c 'import fastapi, uvicorn' 2>/dev/null || missing+=(python3-fastapi python3-uvicorn)
install_missing "${missing[@]}"

# ---- celer (Release) and the models
build_celer bench
rm -rf "$RUN" && mkdir -p "$RUN"
$PY bench/make_bench_models.py "$BUILD" >/dev/null
BODIES=$BUILD/bodies

# ---- ports (every server started below is stopped on exit: bench/lib.sh)
for p in $P_CELER $P_FAST1 $P_FAST2 $P_NGINX; do
  port_free "$p" || { log "port $p on $HOST is taken; set BENCH_PORT_BASE"; exit 1; }
done

start_celer() {
  "$BUILD/celer" serve --model-repository "$BUILD/bench-repo" --http-address $HOST \
    --http-port $P_CELER --grpc-port 0 --quiet >"$RUN/celer.log" 2>&1 &
  CELER=$!; PIDS+=("$CELER")
  wait_ready "$CELER" "http://$HOST:$P_CELER/v2/health/ready" celer "$RUN/celer.log"
}

start_fastapi() {  # start_fastapi WORKERS PORT: sets FASTAPI
  $PY -m uvicorn fastapi_service:app --app-dir "$ROOT/bench" --host $HOST --port "$2" \
    --workers "$1" --no-access-log >"$RUN/fastapi-$1w.log" 2>&1 &
  FASTAPI=$!; PIDS+=("$FASTAPI")
  wait_ready "$FASTAPI" "http://$HOST:$2/health" "FastAPI ($1 workers)" "$RUN/fastapi-$1w.log"
}

# ---- one wrk run; appends a line to RESULTS
load() {  # load SERVER MODEL PID URL BODY CONCURRENCY
  local server=$1 model=$2 pid=$3 c=$6
  printf '%s\t%s\t%s\t%s\n' "$server" "$model" "$c" "$(wrk_run "$server-$model" "$pid" "$4" "$5" "$c")" >>"$RESULTS"
  kill -0 "$pid" 2>/dev/null || { log "$server DIED during c=$c; its log:"; tail -n 50 "$RUN/$server.log" >&2; }
}

bench_server() {  # bench_server SERVER MODEL PID URL BODY: warm up, then each concurrency
  log "$1 $2: warm-up ${WARMUP}s, then ${DURATION}s at each of concurrency ${CONCURRENCY[*]}"
  wrk -t1 -c8 -d"${WARMUP}s" -s bench/post.lua "$4" -- "$5" >/dev/null 2>&1 || true
  local c
  for c in "${CONCURRENCY[@]}"; do load "$1" "$2" "$3" "$4" "$5" "$c"; done
}

# ---- the run
START=$(date -u '+%Y-%m-%d %H:%M UTC')
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
start_fastapi 1 $P_FAST1
start_celer
$PY bench/check_same.py "http://$HOST:$P_CELER" "http://$HOST:$P_FAST1" "$BODIES"

bench_server celer mlp "$CELER" "http://$HOST:$P_CELER/v2/models/mlp/infer" "$BODIES/celer_mlp.json"
bench_server celer mlp-nobatch "$CELER" "http://$HOST:$P_CELER/v2/models/mlp_nobatch/infer" "$BODIES/celer_mlp.json"
bench_server celer identity "$CELER" "http://$HOST:$P_CELER/v2/models/identity/infer" "$BODIES/identity.json"
stop "$CELER"
bench_server fastapi-1w mlp "$FASTAPI" "http://$HOST:$P_FAST1/predict" "$BODIES/fastapi_mlp.json"
stop "$FASTAPI"
start_fastapi 2 $P_FAST2
bench_server fastapi-2w mlp "$FASTAPI" "http://$HOST:$P_FAST2/predict" "$BODIES/fastapi_mlp.json"
stop "$FASTAPI"
start_nginx "$P_NGINX" '{"model_name":"identity","outputs":[{"name":"y","datatype":"FP32","shape":[1,4],"data":[0.5,-1.25,2.0,3.75]}]}'
bench_server nginx static "$NGINX" "http://$HOST:$P_NGINX/" "$BODIES/identity.json"
stop "$NGINX"

echo
echo "celer benchmark, $START, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(uname -sr)"
echo "celer $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?') (Release, default flags: one worker per core, 2 HTTP threads)," \
  "FastAPI $($PY -c 'import fastapi; print(fastapi.__version__)'), uvicorn" \
  "$($PY -c 'import uvicorn; print(uvicorn.__version__)') (uvloop, httptools), torch $($PY -c 'import torch; print(torch.__version__)'), $(/usr/sbin/nginx -v 2>&1 | cut -d' ' -f3)"
echo "wrk on the same $(nproc) cores as the servers (nothing pinned; -t1 at c=1, -t2 otherwise), ${DURATION}s per row;" \
  "1 row of 1000 features per request (JSON); access logs off everywhere;"
echo "mlp-nobatch: the same model with max_batch_size 0 (dynamic batching off)"
echo "load average before the run: $LOADAVG (the machine may be shared); logs and raw wrk output: $RUN"
echo "errors = HTTP >= 400 + socket errors; peak RSS = VmRSS summed over the server's process tree, sampled every 100 ms;" \
  "CPU us/req = CPU time of the server's process tree during the run, per request (wrk's excluded)"
echo
$PY bench/report.py "$RESULTS"
