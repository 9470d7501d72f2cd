#!/usr/bin/env bash
# CLI behaviour of `celer run` and `celer inspect` on the checked-in example MLP.
# Usage: test_cli.sh CELER_BIN EXAMPLES_DIR   (ctest passes both)
# Reference outputs are computed here with numpy from the model's initializers, so the test
# checks celer against an independent implementation. Prints "N passed, M failed".
set -u

CELER=${1:?usage: test_cli.sh CELER_BIN EXAMPLES_DIR}
EXAMPLES=${2:?usage: test_cli.sh CELER_BIN EXAMPLES_DIR}
PY=/usr/bin/python3
MODEL=$EXAMPLES/mlp/model.onnx
INPUT=$EXAMPLES/mlp/input.npy

tmp=$(mktemp -d "${TMPDIR:-/tmp}/celer-cli-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }

# Computes the MLP with numpy: reference.py MODEL INPUT.npy OUT.npy
cat >"$tmp/reference.py" <<'EOF'
import sys
import numpy as np
import onnx
from onnx import numpy_helper

model = onnx.load(sys.argv[1])
w = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
x = np.load(sys.argv[2]).astype(np.float64)
h = np.maximum(x @ w["fc1.weight"].astype(np.float64).T + w["fc1.bias"], 0)
y = h @ w["fc2.weight"].astype(np.float64) + w["fc2.bias"]
np.save(sys.argv[3], y)
EOF

# compare.py GOT.npy REF.npy: exit 0 when shapes agree, dtype is float32 and values are close.
cat >"$tmp/compare.py" <<'EOF'
import sys
import numpy as np

got, ref = np.load(sys.argv[1]), np.load(sys.argv[2])
if got.dtype != np.float32:
    sys.exit(f"dtype {got.dtype}, want float32")
if got.shape != ref.shape:
    sys.exit(f"shape {got.shape}, want {ref.shape}")
err = np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-30) if ref.size else 0.0
if not err <= 1e-5:
    sys.exit(f"max relative error {err:.3g} > 1e-5")
EOF

# A successful run: run_ok NAME INPUT.npy
run_ok() {
    local name=$1 input=$2 out="$tmp/out-$1"
    mkdir -p "$out"
    if ! "$CELER" run "$MODEL" --input "features=$input" --output-dir "$out" >"$tmp/log" 2>&1; then
        fail "$name" "celer run exited non-zero: $(head -c 300 "$tmp/log")"
        return
    fi
    if [ ! -f "$out/scores.npy" ]; then
        fail "$name" "no $out/scores.npy written (have: $(ls "$out" | tr '\n' ' '))"
        return
    fi
    "$PY" "$tmp/reference.py" "$MODEL" "$input" "$tmp/ref-$name.npy" || { fail "$name" "reference failed"; return; }
    local why
    if why=$("$PY" "$tmp/compare.py" "$out/scores.npy" "$tmp/ref-$name.npy" 2>&1); then
        pass "$name"
    else
        fail "$name" "$why"
    fi
}

# A failing run: run_err NAME EXPECTED_WORD celer-args...
# Expects a non-zero exit, exactly one line of output, and EXPECTED_WORD in that line.
run_err() {
    local name=$1 word=$2
    shift 2
    "$CELER" "$@" >"$tmp/stdout" 2>"$tmp/stderr"
    local rc=$?
    local lines
    lines=$(cat "$tmp/stdout" "$tmp/stderr" | grep -c .)
    if [ "$rc" -eq 0 ]; then
        fail "$name" "exited 0"
    elif [ "$rc" -ge 128 ]; then
        fail "$name" "killed by signal $((rc - 128)): $(head -c 300 "$tmp/stderr")"
    elif [ "$lines" -ne 1 ]; then
        fail "$name" "expected one line of output, got $lines: $(cat "$tmp/stdout" "$tmp/stderr" | head -c 400)"
    elif ! grep -qF -- "$word" "$tmp/stdout" "$tmp/stderr"; then
        fail "$name" "message does not mention '$word': $(cat "$tmp/stderr" "$tmp/stdout")"
    else
        pass "$name"
    fi
}

if [ ! -x "$CELER" ]; then
    echo "celer binary not found: $CELER"
    echo "0 passed, 1 failed"
    exit 1
fi

# inputs for the cases below
"$PY" - "$tmp" <<'EOF'
import sys
import numpy as np
d = sys.argv[1]
rng = np.random.default_rng(7)
np.save(f"{d}/batch5.npy", rng.standard_normal((5, 16)).astype(np.float32))
np.save(f"{d}/int64.npy", np.zeros((2, 16), dtype=np.int64))
np.save(f"{d}/shape15.npy", np.zeros((2, 15), dtype=np.float32))
np.save(f"{d}/rank3.npy", np.zeros((1, 2, 16), dtype=np.float32))
with open(f"{d}/bad.npy", "wb") as f:
    f.write(b"this is not a numpy file\n")
with open(f"{d}/truncated.npy", "wb") as f:
    f.write(open(f"{d}/batch5.npy", "rb").read()[:150])
EOF

# successful runs, including another batch size through the symbolic "batch" dim
run_ok run_batch2 "$INPUT"
run_ok run_batch5 "$tmp/batch5.npy"

# inspect on a model with an operator celer does not run: it names that node, its operator and
# domain, and nothing about the nodes its outputs feed (their types are not known), nor about those
# fed by a control node, whose subgraph outputs inspect does not type
"$PY" - "$tmp/gap.onnx" <<'EOF'
import sys
import onnx
from onnx import TensorProto as T, helper
body = helper.make_graph([helper.make_node("Identity", ["yi"], ["yo"]), helper.make_node("Identity", ["c_in"], ["c_out"])],
                         "body",
                         [helper.make_tensor_value_info("i", T.INT64, []), helper.make_tensor_value_info("c_in", T.BOOL, []),
                          helper.make_tensor_value_info("yi", T.INT32, [4])],
                         [helper.make_tensor_value_info("c_out", T.BOOL, []), helper.make_tensor_value_info("yo", T.INT32, [4])])
n = [helper.make_node("NoSuchOp", ["x"], ["c"], name="gap"), helper.make_node("Add", ["c", "y"], ["z"], name="after"),
     helper.make_node("Loop", ["m", "", "y"], ["w"], name="loop", body=body),
     helper.make_node("Add", ["w", "y"], ["v"], name="after_loop")]
g = helper.make_graph(n, "g", [helper.make_tensor_value_info("x", T.INT32, [4]), helper.make_tensor_value_info("y", T.INT32, [4])],
                      [helper.make_tensor_value_info("z", T.INT32, None), helper.make_tensor_value_info("v", T.INT32, None)],
                      [helper.make_tensor("m", T.INT64, [], [2])])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
m.ir_version = 10
onnx.save(m, sys.argv[1])
EOF
"$CELER" inspect "$tmp/gap.onnx" >"$tmp/gap" 2>&1
if grep -q "node 0 (NoSuchOp 'gap').*NoSuchOp (domain ai.onnx) is not supported at any version (model opset 21)" "$tmp/gap" && ! grep -q "after" "$tmp/gap"; then
    pass inspect_gap_no_cascade
else
    fail inspect_gap_no_cascade "$(tail -n 4 "$tmp/gap")"
fi

# element types of newer IR versions that celer has no kernels for are refused by name
"$PY" - "$tmp/float8.onnx" <<'EOF'
import sys
from onnx import helper
g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [helper.make_tensor_value_info("x", 17, [4])],
                      [helper.make_tensor_value_info("y", 17, None)])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
m.ir_version = 10
open(sys.argv[1], "wb").write(m.SerializeToString())
EOF
if ! "$CELER" inspect "$tmp/float8.onnx" >"$tmp/float8" 2>&1 && grep -q "element type FLOAT8E4M3FN (17) is not supported" "$tmp/float8"; then
    pass inspect_float8_named
else
    fail inspect_float8_named "$(tail -n 2 "$tmp/float8")"
fi

# inspect reports what a kernel refuses when it is set up (an attribute value celer does not
# implement), as loading would
"$PY" - "$tmp/keepdims.onnx" <<'EOF'
import sys
import onnx
from onnx import TensorProto as T, helper
g = helper.make_graph([helper.make_node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=2)], "g",
                      [helper.make_tensor_value_info("x", T.FLOAT, [4, 4])], [helper.make_tensor_value_info("y", T.FLOAT, None)])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), sys.argv[1])
EOF
"$CELER" inspect "$tmp/keepdims.onnx" >"$tmp/keepdims" 2>&1
if grep -q "node 0 (ReduceMean).*attribute 'keepdims' = 2 is not supported" "$tmp/keepdims"; then
    pass inspect_init_refusal
else
    fail inspect_init_refusal "$(tail -n 2 "$tmp/keepdims")"
fi

# inspect names the input and the output
if "$CELER" inspect "$MODEL" >"$tmp/inspect" 2>&1 && grep -q features "$tmp/inspect" && grep -q scores "$tmp/inspect"; then
    pass inspect
else
    fail inspect "$(head -c 400 "$tmp/inspect")"
fi

# bench: random inputs through the symbolic batch dim; the last line is JSON with the figures
if "$CELER" bench "$MODEL" --batch 3 --iterations 20 --warmup 2 >"$tmp/bench" 2>&1 &&
    tail -n 1 "$tmp/bench" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["batch"] == 3 and d["iterations"] == 20 and all(k in d for k in ("model","threads","median_ms","p90_ms","min_ms","throughput_per_s","peak_rss_mb"))'; then
    pass bench
else
    fail bench "$(tail -c 400 "$tmp/bench")"
fi

# the first run of a context (its arena not yet sized) frees each activation when it dies: a
# chain of 48 Transposes of 4 MiB holds two at a time, not 192 MiB (ASan's quarantine keeps freed
# blocks, so its builds skip this)
"$PY" - "$tmp/chain.onnx" <<'EOF'
import sys
import onnx
from onnx import TensorProto as T, helper
nodes = [helper.make_node("Transpose", ["x" if k == 0 else f"t{k}"], [f"t{k + 1}" if k < 47 else "y"], perm=[1, 0])
         for k in range(48)]
g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, [1024, 1024])],
                      [helper.make_tensor_value_info("y", T.FLOAT, [1024, 1024])])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), sys.argv[1])
EOF
if ldd "$CELER" | grep -q libasan; then
    pass first_run_memory_skipped_asan
elif "$CELER" bench "$tmp/chain.onnx" --iterations 1 --warmup 0 >"$tmp/chain" 2>&1 &&
    tail -n 1 "$tmp/chain" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d["peak_rss_mb"] < 120 else 1)'; then
    pass first_run_memory
else
    fail first_run_memory "$(tail -n 1 "$tmp/chain")"
fi

# error cases: one line, non-zero exit, a message naming what to fix
out="$tmp/err-out"
mkdir -p "$out"
run_err missing_input features run "$MODEL" --output-dir "$out"
run_err unknown_input_name nosuch run "$MODEL" --input "features=$INPUT" --input "nosuch=$INPUT" --output-dir "$out"
run_err wrong_dtype features run "$MODEL" --input "features=$tmp/int64.npy" --output-dir "$out"
run_err wrong_shape features run "$MODEL" --input "features=$tmp/shape15.npy" --output-dir "$out"
run_err wrong_rank features run "$MODEL" --input "features=$tmp/rank3.npy" --output-dir "$out"
run_err missing_model no-such-model.onnx run "$tmp/no-such-model.onnx" --input "features=$INPUT" --output-dir "$out"
run_err bad_npy bad.npy run "$MODEL" --input "features=$tmp/bad.npy" --output-dir "$out"
run_err truncated_npy truncated.npy run "$MODEL" --input "features=$tmp/truncated.npy" --output-dir "$out"
run_err missing_npy missing.npy run "$MODEL" --input "features=$tmp/missing.npy" --output-dir "$out"
run_err not_a_model input.npy inspect "$INPUT"
run_err inspect_missing_model no-such-model.onnx inspect "$tmp/no-such-model.onnx"
run_err bench_bad_option iterations bench "$MODEL" --iterations 0
if [ -e "$out/scores.npy" ]; then fail no_output_on_error "$out/scores.npy written by a failed run"; else pass no_output_on_error; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
