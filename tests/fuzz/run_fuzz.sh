#!/bin/sh
# Fuzzes the ONNX reader for SECONDS (default 60), then what pipelines take from outside
# (pipeline.yaml, image bytes, business-object JSON: fuzz_pipeline) for PIPELINE_SECONDS (default
# 30), then the KServe request decoders (fuzz_kserve) for KSERVE_SECONDS (default 30), then the
# gRPC ModelInferRequest decoder (fuzz_grpc_infer) for GRPC_SECONDS (default 30), then the gRPC
# front end's HTTP/2 and gRPC framing on an in-process server (fuzz_grpc_frames) for
# GRPC_FRAMES_SECONDS (default 30), then the S3 client's listing and error XML and repository URLs
# (fuzz_s3) for S3_SECONDS (default 15), then the inflaters of compressed bodies and messages
# (fuzz_inflate) for INFLATE_SECONDS (default 15), then the system shared memory requests and ranges
# (fuzz_shm) for SHM_SECONDS (default 15), then a load's JSON config, base64 files and file paths
# (fuzz_load) for LOAD_SECONDS (default 15), then API keys' Authorization values and key files
# (fuzz_auth) for AUTH_SECONDS (default 15), then the trace context and trace settings
# (fuzz_traceparent) for TRACE_SECONDS (default 15), then a remote model's remote.yaml and what its
# upstream answers (fuzz_remote) for REMOTE_SECONDS (default 15): configures a clang build in build-fuzz, builds the targets,
# seeds corpora from the conformance models, the example pipelines and a few valid requests, and
# runs libFuzzer on one core.
# Exits non-zero when a crash (or leak, timeout, OOM) is found; artifacts go to build-fuzz/artifacts.
set -eu
SECS=${1:-60}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${CELER_FUZZ_BUILD:-$ROOT/build-fuzz}
DATA=${ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCELER_FUZZ=ON >/dev/null
ninja -C "$BUILD" -j2 fuzz_onnx fuzz_pipeline fuzz_kserve fuzz_grpc_infer fuzz_grpc_frames fuzz_s3 fuzz_inflate fuzz_shm \
  fuzz_load fuzz_auth fuzz_traceparent fuzz_remote

CORPUS=$(mktemp -d "${TMPDIR:-/tmp}/celer-fuzz-corpus.XXXXXX")
PCORPUS=$(mktemp -d "${TMPDIR:-/tmp}/celer-fuzz-pipeline.XXXXXX")
KCORPUS=$(mktemp -d "${TMPDIR:-/tmp}/celer-fuzz-kserve.XXXXXX")
GCORPUS=$(mktemp -d "${TMPDIR:-/tmp}/celer-fuzz-grpc.XXXXXX")
FCORPUS=$(mktemp -d "${TMPDIR:-/tmp}/celer-fuzz-grpc-frames.XXXXXX")
SCORPUS=$(mktemp -d "${TMPDIR:-/tmp}/celer-fuzz-s3.XXXXXX")
ZCORPUS=$(mktemp -d "${TMPDIR:-/tmp}/celer-fuzz-inflate.XXXXXX")
MCORPUS=$(mktemp -d "${TMPDIR:-/tmp}/celer-fuzz-shm.XXXXXX")
LCORPUS=$(mktemp -d "${TMPDIR:-/tmp}/celer-fuzz-load.XXXXXX")
ACORPUS=$(mktemp -d "${TMPDIR:-/tmp}/celer-fuzz-auth.XXXXXX")
TCORPUS=$(mktemp -d "${TMPDIR:-/tmp}/celer-fuzz-trace.XXXXXX")
RCORPUS=$(mktemp -d "${TMPDIR:-/tmp}/celer-fuzz-remote.XXXXXX")
trap 'rm -rf "$CORPUS" "$PCORPUS" "$KCORPUS" "$GCORPUS" "$FCORPUS" "$SCORPUS" "$ZCORPUS" "$MCORPUS" "$LCORPUS" "$ACORPUS" "$TCORPUS" "$RCORPUS"' EXIT
mkdir -p "$BUILD/artifacts"

# fuzz TARGET SECONDS MAX_LEN CORPUS [DICT]: runs one target; a crash prints the log's tail and exits 1.
fuzz() {
    log="$BUILD/$1.log"
    start=$(date +%s)
    set +e
    "$BUILD/tests/fuzz/$1" -max_total_time="$2" -max_len="$3" -rss_limit_mb=2048 ${5:+-dict="$5"} \
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

# fuzz_kserve: byte 0 picks the decoder (% 3: infer, predict, objects) and the spec set (/ 3: the
# model sets x/y, img [1,3], mixed dtypes; for objects the pipeline sets tabular, image), bytes 1-2
# are Inference-Header-Content-Length little-endian (0xffff: absent), then the body.
# kseed NAME BYTE0 HEADER: writes the seed from the body on stdin.
kseed() {
    { printf "\\$(printf %03o "$2")\\$(printf %03o $(($3 & 255)))\\$(printf %03o $(($3 >> 8)))"; cat; } \
        >"$KCORPUS/$1"
}
ABSENT=65535
printf '%s' '{"id":"r1","parameters":{"binary_data_output":true,"timeout":2500},"inputs":[{"name":"y","shape":[2],"datatype":"INT64","data":[7,-9000000000]},{"name":"x","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4.5,-0.25,1e-3]]}],"outputs":[{"name":"z","parameters":{"binary_data":true}}]}' |
    kseed infer_json 0 $ABSENT
json='{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","parameters":{"binary_data_size":24}},{"name":"y","shape":[2],"datatype":"INT64","parameters":{"binary_data_size":16}}]}'
{ printf '%s' "$json"; printf '\000\000\200\077\000\000\000\100\000\000\100\100\000\000\200\100\000\000\240\100\000\000\300\100'
  printf '\013\000\000\000\000\000\000\000\364\377\377\377\377\377\377\377'; } |
    kseed infer_binary 0 "$(printf '%s' "$json" | wc -c)"
printf '\000\000\200\077\000\000\000\100\000\000\100\100' | kseed infer_raw 3 0
printf '%s' '{"inputs":[{"name":"s","shape":[2],"datatype":"BYTES","data":["a","bc"]},{"name":"b","shape":[1,2],"datatype":"BOOL","data":[true,false]},{"name":"h","shape":[2,1],"datatype":"FP16","data":[1.5,-2]},{"name":"u","shape":[1,3],"datatype":"UINT8","data":[1,2,255]},{"name":"n","shape":[],"datatype":"INT32","data":[7]}]}' |
    kseed infer_mixed 6 $ABSENT
json='{"inputs":[{"name":"s","shape":[3],"datatype":"BYTES","parameters":{"binary_data_size":17}},{"name":"b","shape":[0,2],"datatype":"BOOL","data":[]},{"name":"h","shape":[2,0],"datatype":"FP16","data":[]},{"name":"u","shape":[1,1],"datatype":"UINT8","data":[[9]]},{"name":"n","shape":[],"datatype":"INT32","data":7}]}'
{ printf '%s' "$json"; printf '\002\000\000\000hi\000\000\000\000\003\000\000\000abc'; } |
    kseed infer_bytes 6 "$(printf '%s' "$json" | wc -c)"
printf '%s' '{"inputs":[{"name":"y","shape":[2],"datatype":"INT64","data":[1,2]},{"name":"x","shape":[2,3],"datatype":"FP32","parameters":{"shared_memory_region":"in","shared_memory_offset":8,"shared_memory_byte_size":24}}],"outputs":[{"name":"z","parameters":{"binary_data":false,"shared_memory_region":"out","shared_memory_byte_size":64}}]}' |
    kseed infer_shm 0 $ABSENT
printf '%s' '{"instances":[[1,2,3]]}' | kseed predict_img 4 $ABSENT
printf '%s' '{"instances":[{"x":[1,2,3],"y":[4,5]},{"x":[6,7,8],"y":[9,10]}]}' | kseed predict_xy 1 $ABSENT
printf '%s' '{"instances":[{"s":"a","b":[true,false],"u":[1],"n":3}]}' | kseed predict_mixed 7 $ABSENT
printf '%s' '[{"age":31,"id":7,"country":"de","exclude":[1,2],"v":[1,2,3],"flag":true},{"age":null,"id":8,"exclude":[3,4],"flag":false}]' |
    kseed object_tabular 2 $ABSENT
printf '%s' '[{"image":"aGk=","score":[0.5,1]},{"image":"x"}]' | kseed object_image 5 $ABSENT
echo "fuzz_kserve: $(ls "$KCORPUS" | wc -l) seed requests, running ${KSERVE_SECONDS:-30}s"
fuzz fuzz_kserve "${KSERVE_SECONDS:-30}" 65536 "$KCORPUS"

# fuzz_grpc_infer: byte 0 picks the spec set (x/y, mixed dtypes, every datatype), then the
# ModelInferRequest; the seeds (raw and typed contents) come from grpc_seeds.py.
/usr/bin/python3 "$ROOT/tests/fuzz/grpc_seeds.py" "$GCORPUS"
echo "fuzz_grpc_infer: $(ls "$GCORPUS" | wc -l) seed requests, running ${GRPC_SECONDS:-30}s"
fuzz fuzz_grpc_infer "${GRPC_SECONDS:-30}" 65536 "$GCORPUS"

# fuzz_grpc_frames: byte 0 bit 0 picks whether the answers are read before the client's EOF, then
# the frames after the HTTP/2 preface; the seeds (calls of every RPC, CONTINUATION, padding,
# resets, GOAWAY, what must be refused) come from grpc_frame_seeds.py, header names, values and RPC
# paths from grpc_frames.dict. The target starts the server in-process on a free loopback port and
# copies the identity and mlp models into a temporary folder.
/usr/bin/python3 "$ROOT/tests/fuzz/grpc_frame_seeds.py" "$FCORPUS"
echo "fuzz_grpc_frames: $(ls "$FCORPUS" | wc -l) seed connections, running ${GRPC_FRAMES_SECONDS:-30}s"
fuzz fuzz_grpc_frames "${GRPC_FRAMES_SECONDS:-30}" 65536 "$FCORPUS" "$ROOT/tests/fuzz/grpc_frames.dict"

# fuzz_shm: byte 0 picks (% 3) a register body (JSON), a SystemSharedMemoryRegisterRequest or a
# status/unregister request; the decoded offset and size are asked of the target's own region.
printf '\000{"key":"/input0","offset":16,"byte_size":4080}' >"$MCORPUS/json"
printf '\000{"key":"/a/../b","byte_size":18446744073709551615}' >"$MCORPUS/json_bad"
printf '\001\012\001r\022\007/input0\030\020\040\200\040' >"$MCORPUS/register"
printf '\002\012\001r' >"$MCORPUS/name"
echo "fuzz_shm: $(ls "$MCORPUS" | wc -l) seeds, running ${SHM_SECONDS:-15}s"
fuzz fuzz_shm "${SHM_SECONDS:-15}" 65536 "$MCORPUS"

# fuzz_s3: byte 0 picks (% 3) a ListObjectsV2 page, an error body or a repository URL.
printf '\000<ListBucketResult><Name>b1</Name><IsTruncated>true</IsTruncated><Contents><Key>repo/m/a&amp;b&#x41;</Key><ETag>&quot;9e10-3&quot;</ETag><Size>43</Size></Contents><Contents><Key>repo/m/1/model.onnx</Key><ETag>"x"</ETag><Size>7</Size></Contents><NextContinuationToken>cmVw+/=</NextContinuationToken></ListBucketResult>' >"$SCORPUS/list"
printf '\001<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error>' >"$SCORPUS/error"
printf '\002s3://https://host.example:8443/bucket1/a/b' >"$SCORPUS/url1"
printf '\002s3://bucket1/models/prod' >"$SCORPUS/url2"
echo "fuzz_s3: $(ls "$SCORPUS" | wc -l) seeds, running ${S3_SECONDS:-15}s"
fuzz fuzz_s3 "${S3_SECONDS:-15}" 65536 "$SCORPUS"

# fuzz_inflate: byte 0 the coding (bit 0: gzip, deflate), the piece size (bits 1-3) and a round
# trip (bit 7), bytes 1-2 the cap; seeds: gzip (two members), zlib and raw deflate streams, and a
# bomb (1 MiB of zeros against a 4 KiB cap), written by Python's zlib.
/usr/bin/python3 - "$ZCORPUS" <<'EOF'
import gzip, os, sys, zlib
d = sys.argv[1]
text = b"celer inflates gzip and deflate bodies " * 40
raw = zlib.compressobj(6, zlib.DEFLATED, -15)
seeds = {"gzip": b"\x00\x00\x00" + gzip.compress(text) + gzip.compress(b"!"),
         "zlib": b"\x05\x00\x00" + zlib.compress(text),
         "raw": b"\x07\x00\x00" + raw.compress(text) + raw.flush(),
         "bomb": b"\x0c\x00\x10" + gzip.compress(bytes(1 << 20)),
         "trip": b"\x82\x10\x00" + text}
for name, b in seeds.items():
    open(os.path.join(d, name), "wb").write(b)
EOF
echo "fuzz_inflate: $(ls "$ZCORPUS" | wc -l) seeds, running ${INFLATE_SECONDS:-15}s"
fuzz fuzz_inflate "${INFLATE_SECONDS:-15}" 65536 "$ZCORPUS"
# fuzz_load: byte 0 picks (% 3) a JSON model config, base64 text or a file path.
printf '\000{"name":"m","maxBatchSize":"8","input":[{"name":"x","data_type":"type_fp32","dims":[16],"reshape":{"shape":[4,4]}}],"output":[{"name":"y","label_filename":"l.txt"}],"version_policy":{"specific":{"versions":[1,"3"]}},"dynamic_batching":{"preferred_batch_size":[2,4],"default_queue_policy":{"max_queue_size":9}},"instance_group":[{"kind":"KIND_CPU","count":2}],"parameters":{"k":{"string_value":"v"}},"response_cache":{"enable":true},"optimization":null}' >"$LCORPUS/config"
printf '\001TWFu\nYQ==' >"$LCORPUS/b64"
printf '\0021/model.onnx' >"$LCORPUS/path"
printf '\002a/../b' >"$LCORPUS/path_bad"
echo "fuzz_load: $(ls "$LCORPUS" | wc -l) seeds, running ${LOAD_SECONDS:-15}s"
fuzz fuzz_load "${LOAD_SECONDS:-15}" 65536 "$LCORPUS"
# fuzz_auth: byte 0 picks (% 2) a key file or an Authorization value.
printf '\000# keys\ninfer,metrics k1-aaaaaaaaaaaaaaaaaaaa one\r\nadmin\tk2-bbbbbbbbbbbbbbbbbbbb\n\ninfer short\n' >"$ACORPUS/file"
printf '\001Bearer k1-aaaaaaaaaaaaaaaaaaaa' >"$ACORPUS/known"
printf '\001bearer   k2-bbbbbbbbbbbbbbbbbbbb \t' >"$ACORPUS/lower"
printf '\001Basic dXNlcjpwYXNz' >"$ACORPUS/basic"
echo "fuzz_auth: $(ls "$ACORPUS" | wc -l) seeds, running ${AUTH_SECONDS:-15}s"
fuzz fuzz_auth "${AUTH_SECONDS:-15}" 4096 "$ACORPUS"

# fuzz_traceparent: byte 0 picks (% 3) a traceparent (a NUL, then a tracestate), a
# TraceSettingRequest or a trace settings JSON body.
printf '\00000-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\000rojo=00f067aa0ba902b7,congo=t61rcWkgMzE' >"$TCORPUS/tp"
printf '\000cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-more' >"$TCORPUS/tp_future"
printf '\001\012\022\012\012trace_rate\022\004\012\00210\022\003mlp' >"$TCORPUS/grpc"
printf '\002{"trace_level":["TIMESTAMPS"],"trace_rate":"5","trace_count":"-1","log_frequency":null,"trace_file":""}' >"$TCORPUS/json"
echo "fuzz_traceparent: $(ls "$TCORPUS" | wc -l) seeds, running ${TRACE_SECONDS:-15}s"
fuzz fuzz_traceparent "${TRACE_SECONDS:-15}" 4096 "$TCORPUS"

# fuzz_remote: byte 0 picks (% 6) remote.yaml, metadata HTTP / gRPC, max_batch_size, an HTTP infer
# answer (bytes 1-2: Inference-Header-Content-Length, little-endian, 0xffff absent) or a gRPC one,
# against the batched outputs when (byte 0 / 6) is odd (prob FP32 [-1,3], idx INT64 [-1], label
# BYTES [-1], h FP16 [-1,2]; 2 rows), else y FP32 [2,2], s BYTES [-1], v FP32 [-1], b BOOL [],
# d FP64 [-1,-1]. The seeds: valid files and answers, written here (protobuf by hand).
/usr/bin/python3 - "$RCORPUS" <<'EOF'
import json, os, struct, sys
d = sys.argv[1]
def varint(v):
    v &= (1 << 64) - 1
    out = b""
    while v >= 0x80:
        out += bytes([v & 0x7F | 0x80])
        v >>= 7
    return out + bytes([v])
def field(n, v):  # int: varint; str or bytes: length-delimited
    if isinstance(v, int):
        return varint(n << 3) + varint(v)
    if isinstance(v, str):
        v = v.encode()
    return varint(n << 3 | 2) + varint(len(v)) + v
def frame(msg):
    return b"\0" + struct.pack(">I", len(msg)) + msg
def tensor(n, name, dt, shape, packed=True):
    body = field(1, name) + field(2, dt)
    body += field(3, b"".join(varint(x) for x in shape)) if packed else b"".join(field(3, x) for x in shape)
    return field(n, body)
def strs(*v):
    return b"".join(struct.pack("<I", len(x)) + x for x in v)
def http(byte0, outputs, parts, absent=False):
    head = json.dumps({"model_name": "m", "model_version": "1", "outputs": outputs}).encode()
    return bytes([byte0]) + struct.pack("<H", 0xFFFF if absent else len(head)) + head + b"".join(parts)
def binout(name, dt, shape, data):
    return {"name": name, "datatype": dt, "shape": shape, "parameters": {"binary_data_size": len(data)}}
prob = struct.pack("<6f", 1, 2, 3, 4.5, -5, 0.25)
idx = struct.pack("<2q", 7, -9000000000)
label = strs(b"a", b"b\0c")
half = struct.pack("<4H", 0x3C00, 0xC000, 0x3800, 0x7C00)
y = struct.pack("<4f", 1, 2, 3, 4)
dd = struct.pack("<3d", 0.5, -1, 1e300)
seeds = {
    "yaml_min": b"\0url: http://127.0.0.1:8000\n",
    "yaml_full": b"\0url: grpcs://triton.example:8001/\nmodel: densenet_onnx\nversion: \"3\"\ntimeout_ms: 2500\n"
                 b"connect_timeout_ms: 300\nhealth_interval_ms: 250\nmax_inflight: 8\nmax_queue_size: 100\nretries: 0\nretry_budget: 0.25\n"
                 b"circuit_breaker: {failures: 3, open_ms: 2000}\nmax_batch_size: 16\ncache: {ttl: 5}\n"
                 b"bearer_token_file: token.txt\nheaders: {X-Tenant: shop}\nheaders_env: {X-Api-Key: FUZZ_KEY}\n"
                 b"ca_file: ca.pem\n",
    "yaml_env": b"\0url: grpc://h:8001\nbearer_token_env: FUZZ_TOKEN\ncache: true\n",
    "yaml_outside": b"\0url: http://h:8000\nca_file: link\nbearer_token_file: ../outside.txt\n",
    "meta_http": b"\1" + json.dumps({"name": "m", "versions": ["1"], "platform": "onnxruntime_onnx",
                                    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}],
                                    "outputs": [{"name": "y", "datatype": "BYTES", "shape": [-1]},
                                                {"name": "z", "datatype": "FP16", "shape": []}]}).encode(),
    "meta_grpc": b"\2" + frame(field(1, "m") + field(2, "1") + field(3, "onnxruntime_onnx")
                              + tensor(4, "x", "FP32", [-1, 3]) + tensor(5, "y", "BYTES", [-1], False)
                              + tensor(5, "z", "FP16", [])),
    "config_http": b"\3" + json.dumps({"name": "m", "max_batch_size": 4, "input": []}).encode(),
    "config_grpc": b"\3" + frame(field(1, field(1, "m") + field(2, "onnxruntime_onnx") + field(4, 4))),
    "infer_http_batched": http(10, [binout("label", "BYTES", [2], label), binout("prob", "FP32", [2, 3], prob),
                                    binout("idx", "INT64", [2], idx), binout("h", "FP16", [2, 2], half)],
                               [label, prob, idx, half]),
    "infer_http_json": http(4, [{"name": "y", "datatype": "FP32", "shape": [2, 2], "data": [[1, 2], [3, 4]]},
                                {"name": "s", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]},
                                {"name": "v", "datatype": "FP32", "shape": [0], "data": []},
                                {"name": "b", "datatype": "BOOL", "shape": [], "data": [True]},
                                {"name": "d", "datatype": "FP64", "shape": [1, 3], "data": [0.5, -1, 1e300]}],
                            [], absent=True),
    "infer_http_mixed": http(4, [binout("d", "FP64", [3, 1], dd),
                                 {"name": "b", "datatype": "BOOL", "shape": [], "data": [False]},
                                 binout("s", "BYTES", [2], label), binout("y", "FP32", [2, 2], y),
                                 binout("v", "FP32", [1], y[:4])],
                             [dd, label, y, y[:4]]),
    "infer_grpc_batched": b"\13" + frame(field(1, "m") + field(2, "1") + field(3, "r1")
                                        + tensor(5, "idx", "INT64", [2]) + tensor(5, "label", "BYTES", [2], False)
                                        + tensor(5, "prob", "FP32", [2, 3]) + tensor(5, "h", "FP16", [2, 2])
                                        + field(6, idx) + field(6, label) + field(6, prob) + field(6, half)),
    "infer_grpc": b"\5" + frame(field(1, "m") + tensor(5, "y", "FP32", [2, 2]) + tensor(5, "s", "BYTES", [2])
                               + tensor(5, "v", "FP32", [1]) + tensor(5, "b", "BOOL", [])
                               + tensor(5, "d", "FP64", [3, 1], False)
                               + field(6, y) + field(6, label) + field(6, y[:4]) + field(6, b"\1") + field(6, dd)),
}
# sizes that wrap around size_t (2^62 FP32 elements in 0 bytes; 2^60 BYTES elements with JSON data):
# once accepted, and a heap overflow
fixed = [{"name": "y", "datatype": "FP32", "shape": [2, 2], "data": [1, 2, 3, 4]},
         {"name": "b", "datatype": "BOOL", "shape": [], "data": [True]},
         {"name": "d", "datatype": "FP64", "shape": [0, 0], "data": []}]
seeds["infer_http_wrap"] = http(4, fixed + [{"name": "s", "datatype": "BYTES", "shape": [1], "data": ["a"]},
                                            binout("v", "FP32", [1 << 62], b"")], [], absent=True)
seeds["infer_http_wrap_json"] = http(4, fixed + [{"name": "v", "datatype": "FP32", "shape": [1], "data": [1]},
                                                 {"name": "s", "datatype": "BYTES", "shape": [1 << 60],
                                                  "data": ["x"] * 400}], [], absent=True)
for name, b in seeds.items():
    with open(os.path.join(d, name), "wb") as f:
        f.write(b)
EOF
echo "fuzz_remote: $(ls "$RCORPUS" | wc -l) seeds, running ${REMOTE_SECONDS:-15}s"
fuzz fuzz_remote "${REMOTE_SECONDS:-15}" 65536 "$RCORPUS"
