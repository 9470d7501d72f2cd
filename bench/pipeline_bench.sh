#!/usr/bin/env bash
# The recommendation pipeline (examples/repository/recommend) served by celer vs the same service
# written as a typical FastAPI + uvicorn + PyTorch + numpy app (bench/fastapi_pipeline.py, 1 and 2
# workers), side by side in one run. One command:
#
#   bench/pipeline_bench.sh
#
# Builds celer (Release, BENCH_BUILD_DIR, default build-bench) if needed, writes the benchmark's
# repository (scripts/make_pipeline_examples.py --bench: 100,000 x 64 item matrix, a user tower
# with a 64-d embedding) and request bodies, checks that celer and FastAPI return the same items
# for several users, then loads each server in turn with wrk at concurrency 1, 8 and 64 for
# BENCH_SECONDS (default 10), and prints one table and the ratios. Both servers get the same
# request body, byte for byte: one user's fields and 20 excluded item ids as a plain JSON object
# (celer: POST /v2/models/recommend/infer, FastAPI: POST /recommend). Everything listens on and
# targets 127.0.0.1 only; every server started here is stopped on exit. Logs, bodies and raw
# results stay in BUILD/pipeline-bench/. Env: BENCH_SECONDS, BENCH_WARMUP_SECONDS (2),
# BENCH_PORT_BASE (18451: celer, +1 FastAPI 1 worker, +2 FastAPI 2 workers), BENCH_BUILD_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
BASE=${BENCH_PORT_BASE:-18451}
P_CELER=$BASE P_FAST1=$((BASE + 1)) P_FAST2=$((BASE + 2))
OUT=$BUILD/pipeline-bench
REPO=$OUT/repo
BODIES=$OUT/bodies
RUN=$OUT/run
RESULTS=$RUN/results.tsv

log() { echo "pipeline-bench: $*" >&2; }

# ---- tools: wrk, and uvicorn's fast loop/parser (what `pip install uvicorn[standard]` gives)
missing=()
command -v wrk >/dev/null || missing+=(wrk)
$PY -c 'import uvloop, httptools' 2>/dev/null || missing+=(python3-uvloop python3-httptools)
$PY -c 'import fastapi, uvicorn' 2>/dev/null || missing+=(python3-fastapi python3-uvicorn)
install_missing "${missing[@]}"

# ---- celer (Release), the repository and the bodies
build_celer pipeline-bench
rm -rf "$RUN" && mkdir -p "$RUN" "$BODIES"
$PY scripts/make_pipeline_examples.py --bench "$REPO" >/dev/null

# bench.json: the timed body. check-N.json: users whose answers must agree before timing.
$PY - "$REPO" "$BODIES" <<'EOF'
import json, os, sys
import numpy as np
repo, bodies = sys.argv[1:]
ids = np.load(os.path.join(repo, "recommend", "item_ids.npy"))
rng = np.random.default_rng(5)
excluded = [int(i) for i in rng.choice(ids, 20, replace=False)]  # e.g. items already bought
users = [
    {"user_id": 42, "age": 31, "income": 52000, "country": "de", "device": "ios", "exclude": excluded},
    {"user_id": 7, "age": 58, "income": 120000, "country": "us", "device": "web", "exclude": []},
    {"user_id": 8, "age": 19, "income": 0, "country": "br", "device": "android", "exclude": excluded[:3]},
    {"user_id": 9, "age": 44.5, "country": "jp"},
    {"user_id": 10},
]
with open(os.path.join(bodies, "bench.json"), "w") as f:
    json.dump(users[0], f)
for n, u in enumerate(users):
    with open(os.path.join(bodies, f"check-{n}.json"), "w") as f:
        json.dump(u, f)
EOF

# ---- ports (every server started below is stopped on exit: bench/lib.sh)
for p in $P_CELER $P_FAST1 $P_FAST2; do
  port_free "$p" || { log "port $p on $HOST is taken; set BENCH_PORT_BASE"; exit 1; }
done

start_celer() {
  "$BUILD/celer" serve --model-repository "$REPO" --http-address $HOST \
    --http-port "$P_CELER" --grpc-port 0 --quiet >"$RUN/celer.log" 2>&1 &
  CELER=$!; PIDS+=("$CELER")
  wait_ready "$CELER" "http://$HOST:$P_CELER/v2/health/ready" celer "$RUN/celer.log"
}

start_fastapi() {  # start_fastapi WORKERS PORT: sets FASTAPI
  PIPELINE_REPO=$REPO $PY -m uvicorn fastapi_pipeline:app --app-dir "$ROOT/bench" --host $HOST --port "$2" \
    --workers "$1" --loop uvloop --http httptools --no-access-log >"$RUN/fastapi-$1w.log" 2>&1 &
  FASTAPI=$!; PIDS+=("$FASTAPI")
  wait_ready "$FASTAPI" "http://$HOST:$2/health" "FastAPI ($1 workers)" "$RUN/fastapi-$1w.log"
}


# ---- one wrk run (bench/post.lua: POSTs the body, prints one BENCH line); appends to RESULTS
load() {  # load SERVER PID URL CONCURRENCY
  local server=$1 pid=$2 c=$4
  printf '%s\t%s\t%s\n' "$server" "$c" "$(wrk_run "$server" "$pid" "$3" "$BODIES/bench.json" "$c")" >>"$RESULTS"
  kill -0 "$pid" 2>/dev/null || { log "$server DIED during c=$c; its log:"; tail -n 50 "$RUN/${server%%-*}"*.log >&2; }
}

bench_server() {  # bench_server SERVER PID URL: warm up, then each concurrency
  log "$1: warm-up ${WARMUP}s, then ${DURATION}s at each of concurrency ${CONCURRENCY[*]}"
  wrk -t1 -c8 -d"${WARMUP}s" -s bench/post.lua "$3" -- "$BODIES/bench.json" >/dev/null 2>&1 || true
  local c
  for c in "${CONCURRENCY[@]}"; do load "$1" "$2" "$3" "$c"; done
}

# ---- both answer the same before anything is timed
check_same() {  # check_same CELER_URL FASTAPI_URL
  $PY - "$1" "$2" "$BODIES" <<'EOF'
import glob, json, sys, urllib.request
celer, fastapi, bodies = sys.argv[1:]

def post(url, body):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())

failed = 0
for path in sorted(glob.glob(bodies + "/check-*.json")):
    body = open(path, "rb").read()
    a, b = post(celer, body), post(fastapi, body)
    if not isinstance(a, dict) or "item_ids" not in a:
        sys.exit(f"check: celer's answer is not {{item_ids, scores}}: {str(a)[:300]}")
    scale = max(abs(s) for s in b["scores"])
    diff = max(abs(x - y) for x, y in zip(a["scores"], b["scores"])) / scale if len(a["scores"]) == len(b["scores"]) else 1
    same = a["item_ids"] == b["item_ids"] and diff <= 1e-4
    print(f"check: {path.rsplit('/', 1)[1]}: {'same' if same else 'DIFFERENT'} "
          f"{len(a['item_ids'])} ids, max score diff / max |score| = {diff:.1e}")
    if not same:
        print(f"  celer   {a['item_ids']}\n  FastAPI {b['item_ids']}")
        failed += 1
sys.exit(1 if failed else 0)
EOF
}

# ---- the run
START=$(date -u '+%Y-%m-%d %H:%M UTC')
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
start_fastapi 1 $P_FAST1
start_celer
check_same "http://$HOST:$P_CELER/v2/models/recommend/infer" "http://$HOST:$P_FAST1/recommend" ||
  { log "celer and FastAPI disagree: nothing timed"; exit 1; }

bench_server celer "$CELER" "http://$HOST:$P_CELER/v2/models/recommend/infer"
stop "$CELER"
bench_server fastapi-1w "$FASTAPI" "http://$HOST:$P_FAST1/recommend"
stop "$FASTAPI"
start_fastapi 2 $P_FAST2
bench_server fastapi-2w "$FASTAPI" "http://$HOST:$P_FAST2/recommend"
stop "$FASTAPI"

echo
echo "celer pipeline benchmark, $START, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(uname -sr)"
echo "celer $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?') (Release, default flags)," \
  "FastAPI $($PY -c 'import fastapi; print(fastapi.__version__)'), uvicorn" \
  "$($PY -c 'import uvicorn; print(uvicorn.__version__)') (uvloop, httptools), torch $($PY -c 'import torch; print(torch.__version__)')," \
  "numpy $($PY -c 'import numpy; print(numpy.__version__)')"
echo "pipeline: recommend (age quantile bins, log income, one-hot country/device -> 19 -> 64 -> 64 user tower" \
  "-> top 10 of 100,000 x 64 items, 20 excluded ids), one user per request as a plain JSON object"
echo "wrk on the same $(nproc) cores as the servers (nothing pinned; -t1 at c=1, -t2 otherwise), ${DURATION}s per row"
echo "load average before the run: $LOADAVG (the machine may be shared); logs and raw wrk output: $RUN"
echo "errors = HTTP >= 400 + socket errors; peak RSS = VmRSS summed over the server's process tree," \
  "sampled every 100 ms (celer's includes the mapped item matrix pages it touched);" \
  "CPU us/req = CPU time of the server's process tree during the run, per request (wrk's excluded)"
echo
$PY bench/report_vs_fastapi.py "$RESULTS"
