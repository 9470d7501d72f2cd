#!/usr/bin/env bash
# The stack celer's remote models replace (issue 22), side by side in one run: example pipelines as
# a FastAPI middleware in front of a KServe v2 upstream that runs their model, against the client
# calling the upstream directly. One command:
#
#   bench/middleware_bench.sh
#
# The upstream is a real `celer serve` on examples/repository (it speaks Triton's protocol; in
# production it would be Triton on its own machine, here it shares the cores). Pipelines
# (BENCH_PIPELINES, default both): classify (a JPEG, tests/data/pipeline/cat.jpg, base64 in
# {"image": ...} -> tiny_cnn -> top-5 labels) and recommend (one user's fields -> user_tower -> top
# 10 of 10,000 items). Rows for each, at concurrency BENCH_CONCURRENCY (64) with wrk
# (bench/post.lua, keep-alive, -t2):
#   (a) upstream-json, upstream-bin: the client calls the model on the upstream directly with the
#       tensor the pre-processing gives (JSON, and Triton's binary tensors): the floor, with no
#       pre/post-processing at all;
#   (b) fastapi: bench/fastapi_middleware.py (uvicorn with uvloop + httptools, workers = CPUs, an
#       httpx.AsyncClient keep-alive pool per worker, JSON tensors to the upstream; binary with
#       BENCH_FASTAPI_BINARY=1): pre-processing in PIL/numpy, the upstream call, post-processing;
#   (c) celer-remote: celer serving the pipeline with its model as a remote model on the same
#       upstream, the same body byte for byte. Skipped until celer has remote models: issue 22
#       enables it by writing the remote repository and calling bench_celer_remote with the celer
#       command (below).
# Before anything is timed, the answers must agree: (a)'s output post-processed in Python (the
# middleware's own functions) against (b)'s answer, for JSON and binary; and (c) against (b)
# (classify: the same top-5 labels, probabilities within 1e-2 as PIL's resize antialiases and
# celer's does not; recommend: the same items, scores within 1e-4 relative).
# Then BENCH_ROUNDS rounds (3) of BENCH_SECONDS (10) per row, the order rotated every round so that
# a drift of the shared machine falls on every row. Prints the medians: requests/s, p50/p99,
# errors, the tier's peak RSS (VmRSS summed over its process tree; the upstream's is the floor's)
# and the CPU per request of the tier plus the upstream. Env: BENCH_SECONDS, BENCH_WARMUP_SECONDS
# (2), BENCH_ROUNDS, BENCH_CONCURRENCY, BENCH_PIPELINES, BENCH_PORT_BASE (18481: upstream, +1
# FastAPI, +2 celer-remote), BENCH_BUILD_DIR, BENCH_WORKERS (FastAPI's workers, default nproc),
# BENCH_FASTAPI_BINARY=1. Raw output: BUILD/middleware-bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
BASE=${BENCH_PORT_BASE:-18481}
P_UP=$BASE P_FAST=$((BASE + 1)) P_REMOTE=$((BASE + 2))
ROUNDS=${BENCH_ROUNDS:-3}
C=${BENCH_CONCURRENCY:-64}
WORKERS=${BENCH_WORKERS:-$(nproc)}
FASTAPI_BINARY=${BENCH_FASTAPI_BINARY:-0}
PIPES=(${BENCH_PIPELINES:-classify recommend})
OUT=$BUILD/middleware-bench
BODIES=$OUT/bodies
RUN=$OUT/run
RESULTS=$RUN/results.tsv

log() { echo "middleware-bench: $*" >&2; }

# ---- tools: wrk, FastAPI + uvicorn's fast loop/parser, httpx, PIL
missing=()
command -v wrk >/dev/null || missing+=(wrk)
$PY -c 'import uvloop, httptools' 2>/dev/null || missing+=(python3-uvloop python3-httptools)
$PY -c 'import fastapi, uvicorn' 2>/dev/null || missing+=(python3-fastapi python3-uvicorn)
$PY -c 'import httpx' 2>/dev/null || missing+=(python3-httpx)
$PY -c 'import PIL' 2>/dev/null || missing+=(python3-pil)
install_missing "${missing[@]}"

build_celer middleware-bench
rm -rf "$RUN" "$BODIES" && mkdir -p "$RUN" "$BODIES"
for p in $P_UP $P_FAST $P_REMOTE; do
  port_free "$p" || { log "port $p on $HOST is taken; set BENCH_PORT_BASE"; exit 1; }
done
export PIPELINE_REPO=$ROOT/examples/repository

# ---- bodies, in BODIES/PIPELINE/: request.json for the tiers; the floor's tensor as JSON and as
# binary (tensor.bin, its JSON header's length in tensor.bin.hlen)
$PY - "$ROOT/tests/data/pipeline/cat.jpg" "$BODIES" "${PIPES[@]}" <<'EOF'
import base64, json, os, sys
sys.path.insert(0, "bench")
import fastapi_middleware as m
jpeg, bodies, *pipes = sys.argv[1:]
requests = {"classify": {"image": base64.b64encode(open(jpeg, "rb").read()).decode()},
            "recommend": {"user_id": 42, "age": 31, "income": 52000, "country": "de", "device": "ios",
                          "exclude": [int(i) for i in m.top_k.__globals__["ITEM_IDS"][::997][:10]]}}
for p in pipes:
    os.makedirs(os.path.join(bodies, p))
    req_model, pre, _, input_name, _ = m.PIPELINES[p]
    with open(os.path.join(bodies, p, "request.json"), "w") as f:
        json.dump(requests[p], f)
    x = pre(req_model(**requests[p]))
    for binary, name in ((False, "tensor.json"), (True, "tensor.bin")):
        m.BINARY = binary
        body, headers = m.upstream_request(input_name, x)
        open(os.path.join(bodies, p, name), "wb").write(body)
        if binary:
            open(os.path.join(bodies, p, "tensor.bin.hlen"), "w").write(headers["Inference-Header-Content-Length"])
EOF

# ---- servers (every one started here is stopped on exit: bench/lib.sh)
START=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
"$BUILD/celer" serve --model-repository "$ROOT/examples/repository" --http-address $HOST --http-port "$P_UP" \
  --grpc-port 0 --quiet >"$RUN/upstream.log" 2>&1 &
UPSTREAM=$!; PIDS+=("$UPSTREAM")
wait_ready "$UPSTREAM" "http://$HOST:$P_UP/v2/health/ready" upstream "$RUN/upstream.log"

UPSTREAM_BINARY=$FASTAPI_BINARY UPSTREAM_URL=http://$HOST:$P_UP $PY -m uvicorn fastapi_middleware:app \
  --app-dir "$ROOT/bench" --host $HOST --port "$P_FAST" --workers "$WORKERS" --loop uvloop --http httptools \
  --no-access-log >"$RUN/fastapi.log" 2>&1 &
FASTAPI=$!; PIDS+=("$FASTAPI")
wait_ready "$FASTAPI" "http://$HOST:$P_FAST/health" "FastAPI ($WORKERS workers)" "$RUN/fastapi.log"

model_of() { case $1 in classify) echo tiny_cnn ;; recommend) echo user_tower ;; esac; }

# ---- (a) + Python post-processing against (b): the same answers before anything is timed
$PY - "http://$HOST:$P_UP" "http://$HOST:$P_FAST" "$BODIES" "${PIPES[@]}" <<'EOF' || { log "answers differ: nothing timed"; exit 1; }
import json, sys, urllib.request
sys.path.insert(0, "bench")
import fastapi_middleware as m
upstream, fastapi, bodies, *pipes = sys.argv[1:]

def post(url, body, headers):
    req = urllib.request.Request(url, data=body, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()

for p in pipes:
    req_model, _, model, _, post_fn = m.PIPELINES[p]
    doc = json.load(open(f"{bodies}/{p}/request.json"))
    want = json.loads(post(f"{fastapi}/{p}", json.dumps(doc).encode(), {"Content-Type": "application/json"})[2])
    for name, headers in (("tensor.json", {"Content-Type": "application/json"}),
                          ("tensor.bin", {"Inference-Header-Content-Length": open(f"{bodies}/{p}/tensor.bin.hlen").read()})):
        got = post_fn(m.upstream_output(*post(f"{upstream}/v2/models/{model}/infer",
                                              open(f"{bodies}/{p}/{name}", "rb").read(), headers)), req_model(**doc))
        nums, keys = ("probabilities", "labels") if p == "classify" else ("scores", "item_ids")
        diff = max(abs(a - b) for a, b in zip(got[nums], want[nums]))
        same = got[keys] == want[keys] and len(got[nums]) == len(want[nums]) and diff <= 1e-6 * max(1, *map(abs, want[nums]))
        print(f"check: {p}: upstream {model} ({name}) + Python post-processing vs FastAPI: "
              f"{'same' if same else 'DIFFERENT'} {keys} {got[keys]}, max {nums} diff {diff:.1e}")
        if not same:
            print(f"  direct  {got}\n  FastAPI {want}")
            sys.exit(1)
EOF

# ---- (c) celer with a remote model in front of the same upstream (issue 22)
# bench_celer_remote CMD...: starts CMD, a `celer serve` listening on $P_REMOTE whose pipelines
# (classify, recommend) call their model (tiny_cnn, user_tower) as a remote model on
# http://$HOST:$P_UP; checks its answers against FastAPI's and adds it to the timed rows. Issue 22:
# write that repository into $OUT/remote-repo and replace the `log ... skipped` line below by
#   bench_celer_remote "$BUILD/celer" serve --model-repository "$OUT/remote-repo" --http-address $HOST \
#     --http-port "$P_REMOTE" --grpc-port 0 --quiet
ROWS=(upstream-json upstream-bin fastapi)
CELER_REMOTE=
bench_celer_remote() {
  "$@" >"$RUN/celer-remote.log" 2>&1 &
  CELER_REMOTE=$!; PIDS+=("$CELER_REMOTE")
  wait_ready "$CELER_REMOTE" "http://$HOST:$P_REMOTE/v2/health/ready" celer-remote "$RUN/celer-remote.log"
  $PY - "http://$HOST:$P_REMOTE" "http://$HOST:$P_FAST" "$BODIES" "${PIPES[@]}" <<'EOF' ||
import json, sys, urllib.request
celer, fastapi, bodies, *pipes = sys.argv[1:]
def post(url, body):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())
for p in pipes:
    body = open(f"{bodies}/{p}/request.json", "rb").read()
    a, b = post(f"{celer}/v2/models/{p}/infer", body), post(f"{fastapi}/{p}", body)
    nums, keys, tol = ("probabilities", "labels", 1e-2) if p == "classify" else ("scores", "item_ids", 1e-4)
    diff = max(abs(x - y) for x, y in zip(a[nums], b[nums])) / (1 if p == "classify" else max(map(abs, b[nums])))
    same = a[keys] == b[keys] and diff <= tol
    print(f"check: {p}: celer-remote vs FastAPI: {'same' if same else 'DIFFERENT'} {keys}, {nums} diff {diff:.1e}")
    if not same:
        print(f"  celer   {a}\n  FastAPI {b}")
        sys.exit(1)
EOF
    { log "celer-remote and FastAPI disagree: nothing timed"; exit 1; }
  ROWS+=(celer-remote)
}
log "(c) celer with a remote model: skipped, celer has no remote models yet (issue 22 enables bench_celer_remote)"

# ---- the rounds
one() {  # one PIPELINE ROW ROUND: one wrk run, a line in RESULTS
  local p=$1 pid url body also=$UPSTREAM
  WRK_ARGS=()
  case $2 in
    upstream-json) pid=$UPSTREAM url=http://$HOST:$P_UP/v2/models/$(model_of "$p")/infer body=$BODIES/$p/tensor.json ;;
    upstream-bin) pid=$UPSTREAM url=http://$HOST:$P_UP/v2/models/$(model_of "$p")/infer body=$BODIES/$p/tensor.bin
      WRK_ARGS=("Inference-Header-Content-Length: $(cat "$BODIES/$p/tensor.bin.hlen")") ;;
    fastapi) pid=$FASTAPI url=http://$HOST:$P_FAST/$p body=$BODIES/$p/request.json ;;
    celer-remote) pid=$CELER_REMOTE url=http://$HOST:$P_REMOTE/v2/models/$p/infer body=$BODIES/$p/request.json ;;
  esac
  [[ $pid == "$UPSTREAM" ]] && also=
  printf '%s\t%s\t%s\t%s\n' "$p" "$2" "$3" "$(wrk_run "$p-$2-r$3" "$pid" "$url" "$body" "$C" $also)" >>"$RESULTS"
  WRK_ARGS=()
  kill -0 "$pid" 2>/dev/null || { log "$2 DIED in round $3"; tail -n 30 "$RUN"/*.log >&2; exit 1; }
}
for p in "${PIPES[@]}"; do
  log "$p: warm-up ${WARMUP}s, then $ROUNDS rounds of ${DURATION}s per row (${ROWS[*]}) at concurrency $C"
  wrk -t2 -c"$C" -d"${WARMUP}s" -s bench/post.lua "http://$HOST:$P_FAST/$p" -- "$BODIES/$p/request.json" >/dev/null 2>&1 || true
  for ((r = 1; r <= ROUNDS; r++)); do
    n=${#ROWS[@]}
    for ((i = 0; i < n; i++)); do one "$p" "${ROWS[$(((i + r - 1) % n))]}" "$r"; done
  done
done

echo
echo "celer middleware benchmark (issue 22), started $START, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(uname -sr)"
echo "upstream: celer $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?') (Release, default flags, --quiet) on" \
  "examples/repository; FastAPI $($PY -c 'import fastapi; print(fastapi.__version__)')," \
  "uvicorn $($PY -c 'import uvicorn; print(uvicorn.__version__)') (uvloop, httptools, $WORKERS workers," \
  "$( ((FASTAPI_BINARY)) && echo binary || echo JSON) tensors upstream)," \
  "httpx $($PY -c 'import httpx; print(httpx.__version__)'), Pillow $($PY -c 'import PIL; print(PIL.__version__)')," \
  "numpy $($PY -c 'import numpy; print(numpy.__version__)')"
for p in "${PIPES[@]}"; do
  echo "$p: request $(stat -c %s "$BODIES/$p/request.json") bytes; $(model_of "$p")'s tensor" \
    "$(stat -c %s "$BODIES/$p/tensor.json") bytes as JSON, $(stat -c %s "$BODIES/$p/tensor.bin") binary"
done
echo "wrk -t2 -c$C keep-alive on the same $(nproc) cores as the servers, ${DURATION}s x $ROUNDS rounds rotated;" \
  "load average before: $LOADAVG; raw output: $RUN"
echo
$PY - "$RESULTS" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    pipe, server, rnd, req, sec, p50, p99, herr, serr, rss, cpu = line.rstrip("\n").split("\t")
    if req == "-":
        continue
    rows.setdefault((pipe, server), []).append((int(req) / float(sec), float(p50), float(p99), int(herr) + int(serr),
                                                int(rss) / 1024, int(cpu) * 1000 / max(int(req), 1)))
med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
print("| pipeline | row | req/s median (runs) | p50 ms | p99 ms | errors | peak RSS MiB (tier) | CPU us/req (tier + upstream) |")
print("|---|---|---|---|---|---|---|---|")
for pipe in dict.fromkeys(k[0] for k in rows):
    for server in ("upstream-json", "upstream-bin", "fastapi", "celer-remote"):
        a = rows.get((pipe, server))
        if a:
            print(f"| {pipe} | {server} | {med(a, 0):.0f} ({', '.join(f'{x[0]:.0f}' for x in a)}) | {med(a, 1):.2f} "
                  f"| {med(a, 2):.2f} | {sum(x[3] for x in a)} | {max(x[4] for x in a):.0f} | {med(a, 5):.0f} |")
for pipe in dict.fromkeys(k[0] for k in rows):
    f, c, u = rows.get((pipe, "fastapi")), rows.get((pipe, "celer-remote")), rows.get((pipe, "upstream-bin"))
    if f and c:
        print(f"\n{pipe}: celer-remote / FastAPI: throughput {med(c, 0) / med(f, 0):.1f}x (target >= 10x), p99 "
              f"{med(c, 2) / med(f, 2):.3f}x (<= 0.1x), peak RSS {max(x[4] for x in c) / max(x[4] for x in f):.3f}x"
              f" (<= 0.2x); p50 over the binary floor: {med(c, 1) - med(u, 1):+.2f} ms (<= 0.2 ms)")
EOF
