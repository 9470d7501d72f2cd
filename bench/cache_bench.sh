#!/usr/bin/env bash
# Cache hits: the recommendation MLP served by celer with its result cache vs the same MLP behind
# FastAPI + uvicorn + PyTorch with a Redis cache keyed by a hash of the body (bench/fastapi_cache.py,
# 1 and 2 workers), side by side in one run, both on hits. One command:
#
#   bench/cache_bench.sh
#
# Builds celer (Release, BENCH_BUILD_DIR, default build-bench) if needed, writes the models and
# bodies (bench/make_bench_models.py) and a repository holding run_bench.sh's mlp with
# response_cache on (TTL 600 s, so the run stays on hits), and starts one redis-server that both
# sides use: celer with --cache-redis (its hits come from its in-process tier, in front of Redis),
# FastAPI as its only cache (its hits are a GET to Redis). Each side sends one body on every
# request (run_bench.sh's: KServe v2 JSON for celer, {"features": [...]} for FastAPI, the same
# 1000 numbers): warmed up with it, checked to be a hit (X-Celer-Cache: hit, X-Cache: hit), the
# two answers checked to agree, then loaded with wrk at concurrency 1, 8 and 64 for BENCH_SECONDS
# (default 10). The hit counts over the timed runs (celer's metrics, Redis's INFO) show that they
# were hits. Last, two servers that answer the same POSTs with celer's cached answer and do nothing
# else give the ceiling, what any HTTP server reaches with this client on this machine: nginx
# (`return 200`), and bench/fixed_answer.c, a bare epoll loop. Prints one table and the ratios.
# Everything listens on and targets 127.0.0.1 only; every process started here is stopped on exit.
# Logs and raw results stay in BUILD/cache-bench/.
# Env: BENCH_SECONDS, BENCH_WARMUP_SECONDS (2), BENCH_PORT_BASE (18471: celer, +1 FastAPI 1 worker,
# +2 FastAPI 2 workers, +3 redis-server, +4 nginx, +5 fixed_answer), BENCH_BUILD_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
BASE=${BENCH_PORT_BASE:-18471}
P_CELER=$BASE P_FAST1=$((BASE + 1)) P_FAST2=$((BASE + 2)) P_REDIS=$((BASE + 3)) P_NGINX=$((BASE + 4))
P_FIXED=$((BASE + 5))
TTL=600
OUT=$BUILD/cache-bench
REPO=$OUT/repo
RUN=$OUT/run
RESULTS=$RUN/results.tsv
BODIES=$BUILD/bodies
REDIS_URL=redis://$HOST:$P_REDIS/0

log() { echo "cache-bench: $*" >&2; }

# ---- tools: wrk, redis-server, nginx, uvicorn's fast loop/parser, and the redis client (redis.asyncio)
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[[ -x /usr/sbin/nginx ]] || missing+=(nginx)
[[ -x /usr/bin/redis-server && -x /usr/bin/redis-cli ]] || missing+=(redis-server redis-tools)
$PY -c 'import uvloop, httptools' 2>/dev/null || missing+=(python3-uvloop python3-httptools)
$PY -c 'import fastapi, uvicorn' 2>/dev/null || missing+=(python3-fastapi python3-uvicorn)
$PY -c 'import redis.asyncio' 2>/dev/null || missing+=(python3-redis)
install_missing "${missing[@]}"

# ---- celer (Release), the models, and the caching repository
build_celer cache-bench
cc -O2 -std=gnu17 -Wall -Wextra -Werror -pthread -o "$BUILD/fixed_answer" bench/fixed_answer.c
rm -rf "$OUT" && mkdir -p "$RUN" "$REPO/mlp/1"
$PY bench/make_bench_models.py "$BUILD" >/dev/null
# run_bench.sh's mlp (dynamic batching up to 64 rows), with its results cached for TTL seconds
cp "$BUILD/bench-repo/mlp/1/model.onnx" "$REPO/mlp/1/model.onnx"
{
  cat "$BUILD/bench-repo/mlp/config.pbtxt"
  echo 'response_cache { enable: true }'
  echo "parameters { key: \"cache_ttl_seconds\" value: { string_value: \"$TTL\" } }"
} >"$REPO/mlp/config.pbtxt"

# ---- ports (every process started below is stopped on exit: bench/lib.sh)
for p in $P_CELER $P_FAST1 $P_FAST2 $P_REDIS $P_NGINX $P_FIXED; do
  port_free "$p" || { log "port $p on $HOST is taken; set BENCH_PORT_BASE"; exit 1; }
done

start_redis() {  # no persistence; its own directory and log
  mkdir -p "$RUN/redis"
  /usr/bin/redis-server --bind $HOST --port "$P_REDIS" --save '' --appendonly no --dir "$RUN/redis" \
    --logfile "$RUN/redis.log" --daemonize no >/dev/null 2>&1 &
  REDIS=$!; PIDS+=("$REDIS")
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$REDIS" 2>/dev/null || { log "redis-server exited at start:"; tail -n 30 "$RUN/redis.log" >&2; exit 1; }
    [[ $(redis-cli -h $HOST -p "$P_REDIS" ping 2>/dev/null) == PONG ]] && return 0
    sleep 0.1
  done
  log "redis-server not ready after 10 s:"; tail -n 30 "$RUN/redis.log" >&2; exit 1
}

start_celer() {
  "$BUILD/celer" serve --model-repository "$REPO" --http-address $HOST --http-port "$P_CELER" \
    --grpc-port 0 --cache-redis "$REDIS_URL" --quiet >"$RUN/celer.log" 2>&1 &
  CELER=$!; PIDS+=("$CELER")
  wait_ready "$CELER" "http://$HOST:$P_CELER/v2/health/ready" celer "$RUN/celer.log"
}

start_fastapi() {  # start_fastapi WORKERS PORT: sets FASTAPI
  CACHE_REDIS_URL=$REDIS_URL CACHE_TTL_SECONDS=$TTL $PY -m uvicorn fastapi_cache:app --app-dir "$ROOT/bench" \
    --host $HOST --port "$2" --workers "$1" --loop uvloop --http httptools --no-access-log \
    >"$RUN/fastapi-$1w.log" 2>&1 &
  FASTAPI=$!; PIDS+=("$FASTAPI")
  wait_ready "$FASTAPI" "http://$HOST:$2/health" "FastAPI ($1 workers)" "$RUN/fastapi-$1w.log"
}

# ---- hit counters, read before and after the timed runs
celer_hits() {  # "HITS MISSES" of celer's memory tier
  { curl -sf "http://$HOST:$P_CELER/metrics" || true; } | awk '
    /^celer_cache_hits_total\{tier="memory"\}/ { h = $2 }
    /^celer_cache_misses_total\{tier="memory"\}/ { m = $2 }
    END { printf "%d %d\n", h, m }'
}
redis_hits() {  # "HITS MISSES" of Redis's keyspace
  { redis-cli -h $HOST -p "$P_REDIS" info stats || true; } | tr -d '\r' | awk -F: '
    $1 == "keyspace_hits" { h = $2 } $1 == "keyspace_misses" { m = $2 } END { printf "%d %d\n", h, m }'
}
hits_during() {  # hits_during "H0 M0" "H1 M1": "hits/lookups"
  local h0 m0 h1 m1
  read -r h0 m0 <<<"$1"; read -r h1 m1 <<<"$2"
  echo "$((h1 - h0))/$((h1 - h0 + m1 - m0))"
}

# ---- one wrk run (bench/post.lua: POSTs the body, prints one BENCH line); appends to RESULTS
load() {  # load SERVER PID URL BODY CONCURRENCY (CPU: the server's and redis-server's)
  local server=$1 pid=$2 c=$5
  printf '%s\t%s\t%s\n' "$server" "$c" "$(wrk_run "$server" "$pid" "$3" "$4" "$c" "$REDIS")" >>"$RESULTS"
  kill -0 "$pid" 2>/dev/null || { log "$server DIED during c=$c; its log:"; tail -n 50 "$RUN/$server.log" >&2; }
}

bench_server() {  # bench_server SERVER PID URL BODY: warm up, then each concurrency
  log "$1: warm-up ${WARMUP}s, then ${DURATION}s at each of concurrency ${CONCURRENCY[*]}"
  wrk -t1 -c8 -d"${WARMUP}s" -s bench/post.lua "$3" -- "$4" >/dev/null 2>&1 || true
  local c
  for c in "${CONCURRENCY[@]}"; do load "$1" "$2" "$3" "$4" "$c"; done
}

# ---- each answer is a hit from the second request on, and both sides agree
check_hits() {  # check_hits CELER_URL FASTAPI_URL [FASTAPI_ONLY]
  $PY - "$1" "$2" "$BODIES" "${3:-}" <<'EOF'
import json, sys, urllib.request
celer, fastapi, bodies, fastapi_only = sys.argv[1:]
MAX_DIFF = 1e-5

def post(url, path, header):
    body = open(path, "rb").read()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.headers.get(header), json.loads(r.read())

def twice(name, url, path, header, scores):
    first, a = post(url, path, header)
    second, b = post(url, path, header)
    print(f"check: {name}: first request {header}: {first}, second: {second}")
    if second != "hit":
        sys.exit(f"check: FAILED, {name}'s second answer is not from its cache")
    if scores(a) != scores(b):
        sys.exit(f"check: FAILED, {name}'s cached answer differs from the computed one")
    return scores(b)

want = twice("FastAPI", fastapi, bodies + "/fastapi_mlp.json", "X-Cache", lambda r: r["scores"])
if fastapi_only:
    sys.exit(0)
got = twice("celer", celer, bodies + "/celer_mlp.json", "X-Celer-Cache", lambda r: r["outputs"][0]["data"])
if len(got) != len(want):
    sys.exit(f"check: FAILED, celer returned {len(got)} scores, FastAPI {len(want)}")
diff = max(abs(g - w) for g, w in zip(got, want))
print(f"check: cached answers, celer vs FastAPI: {len(got)} scores, max |diff| = {diff:.2e}")
if not diff <= MAX_DIFF:
    sys.exit(f"check: FAILED, limit {MAX_DIFF:g}")
EOF
}

# ---- the run
START=$(date -u '+%Y-%m-%d %H:%M UTC')
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
start_redis
start_fastapi 1 $P_FAST1
start_celer
URL_CELER=http://$HOST:$P_CELER/v2/models/mlp/infer
check_hits "$URL_CELER" "http://$HOST:$P_FAST1/predict" || { log "not on hits, or celer and FastAPI disagree: nothing timed"; exit 1; }

h0=$(celer_hits)
bench_server celer "$CELER" "$URL_CELER" "$BODIES/celer_mlp.json"
HITS_CELER=$(hits_during "$h0" "$(celer_hits)")
ANSWER=$(curl -sf -H 'Content-Type: application/json' --data-binary "@$BODIES/celer_mlp.json" "$URL_CELER")
stop "$CELER"
h0=$(redis_hits)
bench_server fastapi-1w "$FASTAPI" "http://$HOST:$P_FAST1/predict" "$BODIES/fastapi_mlp.json"
HITS_FAST1=$(hits_during "$h0" "$(redis_hits)")
stop "$FASTAPI"
start_fastapi 2 $P_FAST2
check_hits - "http://$HOST:$P_FAST2/predict" fastapi-only || { log "FastAPI (2 workers) not on hits: not timed"; exit 1; }
h0=$(redis_hits)
bench_server fastapi-2w "$FASTAPI" "http://$HOST:$P_FAST2/predict" "$BODIES/fastapi_mlp.json"
HITS_FAST2=$(hits_during "$h0" "$(redis_hits)")
stop "$FASTAPI"
start_nginx "$P_NGINX" "$ANSWER"
bench_server nginx-fixed "$NGINX" "http://$HOST:$P_NGINX/v2/models/mlp/infer" "$BODIES/celer_mlp.json"
stop "$NGINX"
printf '%s' "$ANSWER" >"$RUN/answer.json"
"$BUILD/fixed_answer" "$P_FIXED" "$(nproc)" "$RUN/answer.json" >"$RUN/fixed-answer.log" 2>&1 &
FIXED=$!; PIDS+=("$FIXED")
wait_ready "$FIXED" "http://$HOST:$P_FIXED/" fixed_answer "$RUN/fixed-answer.log"
bench_server fixed-answer "$FIXED" "http://$HOST:$P_FIXED/v2/models/mlp/infer" "$BODIES/celer_mlp.json"
stop "$FIXED"
REDIS_PEAK=$(awk '$1 == "VmHWM:" { printf "%.1f", $2 / 1024 }' /proc/"$REDIS"/status)
stop "$REDIS"

echo
echo "celer cache-hit benchmark, $START, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(uname -sr)"
echo "celer $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?') (Release, default flags," \
  "--cache-redis; hits from its in-process tier), FastAPI $($PY -c 'import fastapi; print(fastapi.__version__)')," \
  "uvicorn $($PY -c 'import uvicorn; print(uvicorn.__version__)') (uvloop, httptools)," \
  "redis-py $($PY -c 'import redis; print(redis.__version__)') (redis.asyncio), torch $($PY -c 'import torch; print(torch.__version__)')," \
  "$(/usr/bin/redis-server --version | cut -d' ' -f1-3), $(/usr/sbin/nginx -v 2>&1 | cut -d' ' -f3)"
echo "model: the recommendation MLP of run_bench.sh (1000 -> 512 -> 256 -> 64), response_cache on, TTL ${TTL} s;" \
  "FastAPI: Redis GET of sha256(body) before parsing, SET EX ${TTL} on a miss;" \
  "nginx-fixed and fixed-answer (bench/fixed_answer.c, $(nproc) threads): celer's answer (${#ANSWER} bytes) to every POST," \
  "the request read and dropped, nothing else"
echo "one body per side on every request (1 row of 1000 features, JSON), warmed up and checked to be a hit first;" \
  "hits/lookups from warm-up to the last timed run: celer $HITS_CELER (memory tier), fastapi-1w $HITS_FAST1, fastapi-2w $HITS_FAST2 (Redis keyspace)"
echo "wrk on the same $(nproc) cores as the servers (nothing pinned; -t1 at c=1, -t2 otherwise), ${DURATION}s per row;" \
  "access logs off everywhere"
echo "load average before the run: $LOADAVG (the machine may be shared); logs and raw wrk output: $RUN"
echo "errors = HTTP >= 400 + socket errors; peak RSS = VmRSS summed over the server's process tree," \
  "sampled every 100 ms (redis-server, shared by both, not included: its own peak was ${REDIS_PEAK:-?} MiB);" \
  "CPU us/req = CPU time of the server's process tree and of redis-server during the run, per request (wrk's excluded)"
echo
$PY bench/report_vs_fastapi.py "$RESULTS" --hits --no-p99-target --ceiling nginx-fixed,fixed-answer
