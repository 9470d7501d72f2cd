#!/usr/bin/env bash
# celer's engine against PyTorch (eager and frozen TorchScript) on ResNet-50, a BERT-base-shaped
# encoder (seq 128) and the recommendation MLP, at 1 and 2 threads, batch 1 and 8. One command:
#
#   bench/engine_bench.sh
#
# Builds celer (Release) into build-enginebench/ (keeping the existing binary if the build fails),
# exports the models with Debian's torch (bench/engine_models.py, fixed seeds, no network) into
# build-enginebench/engine-models/NAME/model.onnx unless already there, times single-thread OpenBLAS
# SGEMM (bench/sgemm_gflops.c) as the yardstick for convolution GFLOP/s, then for each
# configuration runs `celer bench`, then PyTorch eager, then TorchScript (bench/engine_torch.py;
# one process for both, same thread count, OMP_NUM_THREADS=T), so that load from other work on the
# machine hits all three alike. Prints a table and the performance targets (met / NOT met); keeps
# the raw JSON lines in build-enginebench/engine-run/results.jsonl and the table as markdown in
# build-enginebench/engine-run/table.md. Everything is local; nothing touches the network.
#
# Env (comma-separated lists):
#   ENGINE_BENCH_MODELS      resnet50,bert_base,mlp    ENGINE_BENCH_BATCHES  1,8
#   ENGINE_BENCH_THREADS     1,2                       ENGINE_BENCH_ITERATIONS  20 (>= 20 on target rows)
#   ENGINE_BENCH_WARMUP      3                         ENGINE_BENCH_MLP_ITERATIONS 200, _MLP_WARMUP 20
# e.g. a quick run: ENGINE_BENCH_MODELS=resnet50,mlp ENGINE_BENCH_BATCHES=1 bench/engine_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3
BUILD=$ROOT/build-enginebench
MODELS_DIR=$BUILD/engine-models
RUN=$BUILD/engine-run
RESULTS=$RUN/results.jsonl
IFS=, read -ra MODELS <<<"${ENGINE_BENCH_MODELS:-resnet50,bert_base,mlp}"
IFS=, read -ra BATCHES <<<"${ENGINE_BENCH_BATCHES:-1,8}"
IFS=, read -ra THREADS <<<"${ENGINE_BENCH_THREADS:-1,2}"
ITERATIONS=${ENGINE_BENCH_ITERATIONS:-20}
WARMUP=${ENGINE_BENCH_WARMUP:-3}
MLP_ITERATIONS=${ENGINE_BENCH_MLP_ITERATIONS:-200}
MLP_WARMUP=${ENGINE_BENCH_MLP_WARMUP:-20}
BERT_SEQ=128  # must match BERT_SEQ in bench/engine_models.py (the torch side's input)

log() { echo "engine-bench: $*" >&2; }
is_count() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }

for m in "${MODELS[@]}"; do
  case $m in resnet50 | bert_base | mlp) ;; *) log "unknown model '$m' (have: resnet50, bert_base, mlp)"; exit 2 ;; esac
done
for v in "${BATCHES[@]}" "${THREADS[@]}" "$ITERATIONS" "$MLP_ITERATIONS"; do
  is_count "$v" || { log "'$v' is not a positive integer (check the ENGINE_BENCH_* variables)"; exit 2; }
done
[[ $WARMUP =~ ^[0-9]+$ && $MLP_WARMUP =~ ^[0-9]+$ ]] || { log "warm-up counts must be integers >= 0"; exit 2; }
T_START=$(date +%s)
START=$(date -u '+%Y-%m-%d %H:%M UTC')
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- celer (Release)
mkdir -p "$BUILD"
if ! { cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -j2 -C "$BUILD" celer; } \
  >"$BUILD/engine-build.log" 2>&1; then
  [[ -x $BUILD/celer ]] || { cat "$BUILD/engine-build.log" >&2; exit 1; }
  log "build failed (see $BUILD/engine-build.log); using the existing $BUILD/celer"
  BUILT="build FAILED, so an earlier binary ($(date -u -r "$BUILD/celer" '+%Y-%m-%d %H:%M UTC'), built at HEAD \
$(cat "$BUILD/engine-build.commit" 2>/dev/null || echo '?')); HEAD now $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
else
  # the tree may hold uncommitted changes: this names the commit it was at, not its exact state
  git rev-parse --short HEAD >"$BUILD/engine-build.commit" 2>/dev/null || echo '?' >"$BUILD/engine-build.commit"
  BUILT="built now at HEAD $(cat "$BUILD/engine-build.commit")"
fi
CELER=$BUILD/celer
rm -rf "$RUN" && mkdir -p "$RUN"
: >"$RESULTS"

# ---- the models (exported once; delete build-enginebench/engine-models/NAME to re-export)
(IFS=,; $PY bench/engine_models.py "$MODELS_DIR" --only "${MODELS[*]}") >&2

# ---- profiling: only when this celer bench knows --profile
PROFILE=0
"$CELER" bench --help 2>/dev/null | grep -q -- '--profile' && PROFILE=1

# ---- runs; each appends one JSON object per engine to RESULTS, tagged with name and kind of run
SGEMM_DONE=0
run_sgemm() {
  local bin=$BUILD/sgemm_gflops line blas
  read -ra blas < <(pkg-config --cflags --libs openblas 2>/dev/null || echo -lopenblas)
  if ! gcc -O2 -std=c17 -o "$bin" bench/sgemm_gflops.c "${blas[@]}" >"$RUN/sgemm-build.log" 2>&1; then
    log "could not build bench/sgemm_gflops.c (see $RUN/sgemm-build.log); no SGEMM reference"
    return 0
  fi
  "$bin" >"$RUN/sgemm.txt" 2>&1 || { log "sgemm_gflops failed:"; cat "$RUN/sgemm.txt" >&2; return 0; }
  line=$(tail -n1 "$RUN/sgemm.txt")
  log "$(head -n1 "$RUN/sgemm.txt")"
  echo "{\"engine\": \"sgemm\", \"run\": \"reference\", ${line#\{}" >>"$RESULTS"
}

run_celer() {  # run_celer NAME BATCH THREADS ITERATIONS WARMUP KIND [EXTRA ARGS...]: prints the median
  local name=$1 b=$2 t=$3 n=$4 w=$5 kind=$6 line
  shift 6
  local out=$RUN/celer-$name-b$b-t$t-$kind
  local extra=()
  [[ $name == bert_base ]] && extra=(--dim "seq=$BERT_SEQ")
  if ! "$CELER" bench "$MODELS_DIR/$name/model.onnx" --batch "$b" --threads "$t" --iterations "$n" \
    --warmup "$w" "${extra[@]}" "$@" >"$out.txt" 2>"$out.err"; then
    log "celer bench failed on $name b$b t$t ($kind):"; tail -n 20 "$out.err" >&2; echo -; return 0
  fi
  line=$(tail -n1 "$out.txt")
  [[ $line == \{* ]] || { log "celer bench on $name b$b t$t: last line is not JSON"; echo -; return 0; }
  echo "{\"engine\": \"celer\", \"name\": \"$name\", \"run\": \"$kind\", ${line#\{}" >>"$RESULTS"
  $PY -c 'import json, sys; print(json.loads(sys.argv[1])["median_ms"])' "$line"
}

run_torch() {  # run_torch NAME BATCH THREADS ITERATIONS WARMUP: prints "EAGER_MEDIAN SCRIPT_MEDIAN"
  local name=$1 b=$2 t=$3 n=$4 w=$5 out=$RUN/torch-$1-b$2-t$3 line medians=()
  if ! OMP_NUM_THREADS=$t $PY bench/engine_torch.py "$name" --batch "$b" --threads "$t" --iterations "$n" \
    --warmup "$w" >"$out.txt" 2>"$out.err"; then
    log "PyTorch failed on $name b$b t$t:"; tail -n 20 "$out.err" >&2
  fi
  while read -r line; do
    [[ $line == \{* ]] || continue
    echo "{\"name\": \"$name\", \"run\": \"timed\", ${line#\{}" >>"$RESULTS"
    medians+=("$($PY -c 'import json, sys; print(json.loads(sys.argv[1])["median_ms"])' "$line")")
  done <"$out.txt"
  echo "${medians[0]:--} ${medians[1]:--}"
}

for name in "${MODELS[@]}"; do
  if [[ $name == resnet50 && $SGEMM_DONE == 0 ]]; then run_sgemm; SGEMM_DONE=1; fi
  for b in "${BATCHES[@]}"; do
    for t in "${THREADS[@]}"; do
      n=$ITERATIONS w=$WARMUP
      [[ $name == mlp ]] && n=$MLP_ITERATIONS w=$MLP_WARMUP
      # the target rows (batch 1, 1 or 2 threads) get at least 20 timed runs whatever the env says
      ((b == 1 && t <= 2 && n < 20)) && n=20
      log "$name batch $b threads $t: $n runs after $w warm-up, celer then eager then TorchScript"
      c=$(run_celer "$name" "$b" "$t" "$n" "$w" timed)
      read -r e s < <(run_torch "$name" "$b" "$t" "$n" "$w")
      log "  median ms: celer $c, eager $e, TorchScript $s"
      # per-op profile in a run of its own, so its overhead never enters the latencies above
      if ((PROFILE && b == 1 && t == 1)) && [[ $name == resnet50 ]]; then
        log "  profile run: celer bench --profile"
        run_celer "$name" "$b" "$t" "$n" "$w" profile --profile >/dev/null
      fi
    done
  done
done

# ---- report
ELAPSED=$(($(date +%s) - T_START))
ENGINE_HEADER="celer engine benchmark, $START; $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), \
$(nproc) cores; load average $LOADAVG_START at start, $(cut -d' ' -f1-3 /proc/loadavg) at end; \
celer Release ($BUILT), \
torch $($PY -c 'import torch; print(torch.__version__)'); run took $((ELAPSED / 60)) min $((ELAPSED % 60)) s"
ENGINE_PROTOCOL="each row: celer bench, then PyTorch eager, then frozen TorchScript (torch.jit.trace + freeze), \
same threads (torch: set_num_threads(T), 1 interop thread, OMP_NUM_THREADS=T, inference_mode); \
${ITERATIONS} timed runs after ${WARMUP} warm-up (MLP: ${MLP_ITERATIONS} after ${MLP_WARMUP}); BERT at seq ${BERT_SEQ}; \
medians in ms; ratio < 1 means celer is faster"
export ENGINE_HEADER ENGINE_PROTOCOL
$PY - "$RESULTS" "$RUN/table.md" <<'EOF'
import json, os, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
LABEL = {"resnet50": "ResNet-50", "bert_base": "BERT-base (seq 128)", "mlp": "MLP 1000-512-256-64"}
RESNET_GFLOP = 8.18  # ResNet-50 at 224x224, batch 1: ~4.09 GMAC of convolution (most of the model)


def find(engine, name, batch, threads, run="timed"):
    for r in rows:
        if (r.get("engine"), r.get("name"), r.get("batch"), r.get("threads"), r.get("run")) == \
                (engine, name, batch, threads, run):
            return r
    return None


def med(r):
    return r["median_ms"] if r else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def ratio(a, b):
    return a / b if a is not None and b else None


configs = []
for r in rows:
    key = (r.get("name"), r.get("batch"), r.get("threads"))
    if r.get("run") == "timed" and key not in configs:
        configs.append(key)
head = ["model", "batch", "threads", "celer ms", "eager ms", "TorchScript ms", "celer/eager", "celer/script",
        "celer peak RSS MB"]
table = [head]
for name, b, t in configs:
    c, e, s = (find(x, name, b, t) for x in ("celer", "eager", "torchscript"))
    table.append([LABEL.get(name, name), str(b), str(t), fmt(med(c), ".3f"), fmt(med(e), ".3f"), fmt(med(s), ".3f"),
                  fmt(ratio(med(c), med(e)), ".2f"), fmt(ratio(med(c), med(s)), ".2f"),
                  fmt(c and c.get("peak_rss_mb"), ".1f")])
width = [max(len(row[i]) for row in table) for i in range(len(head))]
right = [False, True, True, True, True, True, True, True, True]
lines = []
for k, row in enumerate(table):
    cells = [cell.rjust(width[i]) if right[i] else cell.ljust(width[i]) for i, cell in enumerate(row)]
    lines.append("| " + " | ".join(cells) + " |")
    if k == 0:
        lines.append("|" + "|".join(("-" * (width[i] + 1) + ":") if right[i] else "-" * (width[i] + 2)
                                    for i in range(len(head))) + "|")

# ---- targets
targets, notes = [], []


def target(text, value, limit, cmp="<=", note=""):
    if value is None:
        verdict = "not measured"
    else:
        ok = value <= limit if cmp == "<=" else value >= limit
        verdict = "met" if ok else "NOT met"
    targets.append(f"- {text}: {fmt(value, '.3f')} (target {cmp} {limit:.2f}): **{verdict}**{note}")


def ce(name, b, t):
    return ratio(med(find("celer", name, b, t)), med(find("eager", name, b, t)))


target("ResNet-50 b1 t1, celer/eager", ce("resnet50", 1, 1), 0.80)
sgemm = next((r for r in rows if r.get("engine") == "sgemm"), None)
prof = find("celer", "resnet50", 1, 1, "profile")
conv, how = None, None
if prof and isinstance(prof.get("op_ms"), dict) and isinstance(prof.get("op_gflop"), dict):
    gflop = sum(v for k, v in prof["op_gflop"].items() if "Conv" in k)
    ms = sum(v for k, v in prof["op_ms"].items() if "Conv" in k)
    if gflop > 0 and ms > 0:
        conv = gflop / (ms / 1000)
        convs = ", ".join(sorted(k for k in prof["op_ms"] if "Conv" in k))
        how = f"from celer bench --profile: {gflop:.2f} GFLOP in {ms:.1f} ms of {convs}"
        top = sorted(prof["op_ms"].items(), key=lambda kv: -kv[1])
        notes.append("celer profile, ResNet-50 b1 t1 (median ms per op type): " +
                     ", ".join(f"{k} {v:.2f}" for k, v in top))
if conv is None and med(find("celer", "resnet50", 1, 1)):
    conv = RESNET_GFLOP / (med(find("celer", "resnet50", 1, 1)) / 1000)
    how = f"whole-model estimate: {RESNET_GFLOP} GFLOP / whole median latency"
if sgemm:
    notes.append(f"OpenBLAS sgemm 1024^3 on 1 thread: {sgemm['sgemm_gflops']:.1f} GFLOP/s (median of {sgemm['runs']})")
if conv is not None:
    notes.append(f"celer ResNet-50 b1 t1 convolution: {conv:.1f} GFLOP/s ({how})")
target("ResNet-50 b1 t1, conv GFLOP/s / sgemm GFLOP/s", ratio(conv, sgemm and sgemm["sgemm_gflops"]), 0.85, ">=",
       f" ({how.split(':')[0]})" if how else "")
target("BERT-base b1 t1 (seq 128), celer/eager", ce("bert_base", 1, 1), 0.95)
target("MLP b1 t1, celer/eager", ce("mlp", 1, 1), 0.50)
target("ResNet-50 b1, celer t2 / celer t1", ratio(med(find("celer", "resnet50", 1, 2)),
                                                  med(find("celer", "resnet50", 1, 1))), 0.60,
       note=" (needs an idle machine)")

# rows where some engine's p90 is far above its median: the machine was busy, trust them less
noisy = []
for name, b, t in configs:
    bad = [x for x in ("celer", "eager", "torchscript")
           if (r := find(x, name, b, t)) and r.get("p90_ms", 0) > 1.25 * r["median_ms"]]
    if bad:
        noisy.append(f"{LABEL.get(name, name)} b{b} t{t} ({', '.join(bad)})")
if noisy:
    notes.append("noisy rows (p90 > 1.25 x median): " + "; ".join(noisy))
out = [os.environ["ENGINE_HEADER"], "", os.environ["ENGINE_PROTOCOL"], ""] + lines + [""] + \
      [f"- {n}" for n in notes] + ([""] if notes else []) + ["Targets:", ""] + targets
text = "\n".join(out) + "\n"
open(sys.argv[2], "w").write(text)
print()
print(text, end="")
EOF
echo
echo "raw JSON: $RESULTS; table: $RUN/table.md; logs: $RUN"
