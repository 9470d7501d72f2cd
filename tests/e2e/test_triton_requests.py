#!/usr/bin/python3
"""End-to-end: what Triton's clients send that decides how a request is read and answered, on HTTP
and gRPC alike, against models in Triton's QA layout (tests/e2e/qa_models.py, opset 14), every
answer compared with NumPy:

- the classification extension: the top K of an output per batch row as "value:index[:label]"
  strings (labels from the config's label_filename), for every numeric datatype, batching and not,
  in JSON, in binary and over gRPC; K above the class count gives all; BYTES refused;
- raw bodies (Inference-Header-Content-Length: 0): [1, n] deduced for a batching model of one
  variable dim, [n] without batching, a BYTES body as one element, chunked bodies the same;
- JSON data nested in any way that flattens to the right count, up to Triton's depth of 100;
- config `reshape`: the client sends and receives the config's dims, the model sees its own;
  metadata and config say what Triton says;
- Triton's words at the start of the messages its clients and QA tests match, celer's detail after.

gRPC goes through Debian's python3-grpcio with stubs generated from Triton's protos
(tests/grpc/proto) by grpc_tools.protoc. If grpc cannot be imported the test fails.

usage: test_triton_requests.py CELER_BIN EXAMPLE_REPOSITORY (the second is unused)"""
import http.client
import json
import os
import shutil
import struct
import sys
import tempfile
import threading

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc_stubs  # noqa: E402
import qa_models  # noqa: E402
from test_server import Server, check, free_port, summary  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_BODY = 1 << 20
NP = {dt: v[2] for dt, v in qa_models.DTYPES.items()}


# ---- clients ----

def grpc_stub(tmp, port):
    """(grpc, grpc_service_pb2, stub) over a channel to port, or None (reported)."""
    got = grpc_stubs.load(tmp)
    if not got:
        return None
    grpc, pb, pbg = got
    return grpc, pb, pbg.GRPCInferenceServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))


def chunked(port, path, chunks, headers):
    """POSTs `chunks` with Transfer-Encoding: chunked; (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", path, body=iter(chunks), headers=dict(headers, **{"Transfer-Encoding": "chunked"}),
                     encode_chunked=True)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def error_of(body):
    try:
        return json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace") if isinstance(body, bytes) else str(body)


def bytes_elements(raw, n):
    """n BYTES elements in binary form (4-byte little-endian length, then the bytes)."""
    out, off = [], 0
    for _ in range(n):
        (ln,) = struct.unpack_from("<I", raw, off)
        out.append(raw[off + 4:off + 4 + ln])
        off += 4 + ln
    return out, off == len(raw)


def tensor_json(name, dt, arr):
    data = [v.decode() for v in arr.ravel()] if dt == "BYTES" else arr.ravel().tolist()
    return {"name": name, "datatype": dt, "shape": list(arr.shape), "data": data}


def http_infer(srv, model, inputs, outputs=None, binary_out=False):
    """JSON request; (status, {output name: (datatype, shape, values or raw bytes)}, error text)."""
    doc = {"inputs": inputs}
    if outputs is not None:
        doc["outputs"] = outputs
    status, body, headers = srv.request("POST", f"/v2/models/{model}/infer", json.dumps(doc).encode())
    if status != 200:
        return status, None, error_of(body)
    hl = int(headers.get("Inference-Header-Content-Length", len(body)))
    meta = json.loads(body[:hl])
    tail, outs = body[hl:], {}
    for o in meta["outputs"]:
        if "data" in o:
            outs[o["name"]] = (o["datatype"], o["shape"], o["data"])
        else:
            size = o["parameters"]["binary_data_size"]
            outs[o["name"]] = (o["datatype"], o["shape"], tail[:size])
            tail = tail[size:]
    return status, outs, ""


def grpc_infer(g, model, arrays, outputs=None):
    """arrays: [(name, dt, ndarray)]; outputs: [(name, {param: int})]; (code name, {name: (dt, shape,
    raw)}, details)."""
    grpc, pb, stub = g
    req = pb.ModelInferRequest(model_name=model)
    for name, dt, arr in arrays:
        t = req.inputs.add(name=name, datatype=dt, shape=list(arr.shape))
        del t
        if dt == "BYTES":
            req.raw_input_contents.append(b"".join(struct.pack("<I", len(v)) + v for v in arr.ravel()))
        else:
            req.raw_input_contents.append(np.ascontiguousarray(arr).tobytes())
    for name, params in outputs or []:
        o = req.outputs.add(name=name)
        for k, v in params.items():
            if isinstance(v, str):
                o.parameters[k].string_param = v
            else:
                o.parameters[k].int64_param = v
    try:
        resp = stub.ModelInfer(req, timeout=30)
    except grpc.RpcError as e:
        return e.code().name, None, e.details()
    outs = {o.name: (o.datatype, list(o.shape), resp.raw_output_contents[i]) for i, o in enumerate(resp.outputs)}
    return "OK", outs, ""


# ---- references ----

def cxx_to_string(v, dt):
    """A value as C++'s std::to_string writes it (what Triton prints): %f for floating types."""
    return "%f" % float(v) if dt.startswith("FP") else str(int(v))


def classes(arr, dt, batched, k, labels):
    """The shape and strings Triton's classification gives for output `arr`."""
    rows = arr.reshape(arr.shape[0], -1) if batched and arr.ndim and arr.shape[0] else arr.reshape(1, -1)
    strs = []
    for r in rows:
        vals = [float(v) if dt.startswith("FP") else int(v) for v in r]
        for i in sorted(range(len(vals)), key=lambda i: (-vals[i], i))[:k]:
            s = cxx_to_string(r[i], dt) + f":{i}"
            if labels and i < len(labels) and labels[i]:
                s += ":" + labels[i]
            strs.append(s)
    top = min(k, rows.shape[1])
    return ([rows.shape[0], top] if batched and arr.ndim and arr.shape[0] else [top]), strs


# ---- the parts ----

def classification(srv, g, rng):
    for name, (kind, dt, batching) in sorted(srv.models.items()):
        if kind != "addsub":
            continue
        a, b = qa_models.inputs(dt, 2 if batching else 1, rng)
        if not batching:
            a, b = a[0], b[0]
        want_out = qa_models.reference(kind, a, b)
        ok_http = ok_bin = ok_grpc = True
        detail = ""
        for k in (1, 3, 16, 100):
            refs = [classes(want_out[0], dt, batching, k, qa_models.LABELS), classes(want_out[1], dt, batching, k, None)]
            ins = [tensor_json("INPUT0", dt, a), tensor_json("INPUT1", dt, b)]
            st, outs, err = http_infer(srv, name, ins, [{"name": "OUTPUT0", "parameters": {"classification": k}},
                                                        {"name": "OUTPUT1", "parameters": {"classification": k}}])
            for o, (shape, strs) in zip(("OUTPUT0", "OUTPUT1"), refs):
                good = st == 200 and outs[o][0] == "BYTES" and outs[o][1] == shape and outs[o][2] == strs
                if not good and ok_http:
                    detail = f"HTTP K={k} {o}: {st} {err} {outs and outs.get(o)} want {shape} {strs[:4]}"
                ok_http &= good
            # binary output, as tritonclient.http asks with binary_data=True
            st, outs, err = http_infer(srv, name, ins, [{"name": "OUTPUT0", "parameters": {"classification": k,
                                                                                           "binary_data": True}}])
            shape, strs = refs[0]
            got, whole = bytes_elements(outs["OUTPUT0"][2], len(strs)) if st == 200 else ([], False)
            good = st == 200 and list(outs) == ["OUTPUT0"] and outs["OUTPUT0"][1] == shape and whole and \
                [s.decode() for s in got] == strs
            if not good and ok_bin:
                detail += f" binary K={k}: {st} {err} {got[:3]}"
            ok_bin &= good
            if g:
                code, gouts, details = grpc_infer(g, name, [("INPUT0", dt, a), ("INPUT1", dt, b)],
                                                  [("OUTPUT0", {"classification": k}), ("OUTPUT1", {"classification": k})])
                for o, (shape, strs) in zip(("OUTPUT0", "OUTPUT1"), refs):
                    got, whole = bytes_elements(gouts[o][2], len(strs)) if code == "OK" else ([], False)
                    good = code == "OK" and gouts[o][0] == "BYTES" and gouts[o][1] == shape and whole and \
                        [s.decode() for s in got] == strs
                    if not good and ok_grpc:
                        detail += f" gRPC K={k} {o}: {code} {details} {got[:3]}"
                    ok_grpc &= good
        b_txt = "batching" if batching else "no batching"
        check(f"classification {dt} ({b_txt}) over HTTP JSON: the top K as Triton writes them, labels on OUTPUT0",
              ok_http, detail)
        check(f"classification {dt} ({b_txt}) over HTTP binary", ok_bin, detail)
        check(f"classification {dt} ({b_txt}) over gRPC", g and ok_grpc, detail)
    # classification 0 on HTTP is the tensor itself (Triton's reading); gRPC refuses 0
    a, b = qa_models.inputs("FP32", 1, rng)
    ins = [tensor_json("INPUT0", "FP32", a), tensor_json("INPUT1", "FP32", b)]
    st, outs, err = http_infer(srv, "onnx_float32_float32_float32", ins,
                               [{"name": "OUTPUT0", "parameters": {"classification": 0}}])
    check("HTTP classification 0: the tensor itself", st == 200 and outs["OUTPUT0"][0] == "FP32"
          and np.allclose(outs["OUTPUT0"][2], (a + b).ravel()), (st, err))
    # BYTES outputs cannot be classified: Triton's words on both protocols
    s = np.array([[b"x%d" % i for i in range(16)]], dtype=np.object_)
    st, _, err = http_infer(srv, "onnx_zero_1_object", [tensor_json("INPUT0", "BYTES", s)],
                            [{"name": "OUTPUT0", "parameters": {"classification": 2}}])
    check("HTTP classification of a BYTES output: 400, Triton's words first", st == 400 and err.startswith(
        "class result not available for output due to unsupported type 'BYTES'"), (st, err))
    if g:
        code, _, details = grpc_infer(g, "onnx_zero_1_object", [("INPUT0", "BYTES", s)],
                                      [("OUTPUT0", {"classification": 2})])
        check("gRPC classification of a BYTES output: INVALID_ARGUMENT, Triton's words first",
              code == "INVALID_ARGUMENT" and details.startswith("class result not available for output"),
              (code, details))
        for value, words in ((0, "invalid value for 'classification' parameter, expected >= 0"),
                             ("3", "invalid value type for 'classification' parameter, expected int64_param")):
            code, _, details = grpc_infer(g, "onnx_float32_float32_float32", [("INPUT0", "FP32", a), ("INPUT1", "FP32", b)],
                                          [("OUTPUT0", {"classification": value})])
            check(f"gRPC classification {value!r}: INVALID_ARGUMENT with Triton's words",
                  code == "INVALID_ARGUMENT" and details.startswith(words), (code, details))
    # a reshaped output is classified per row of the client's shape
    x = rng.uniform(-1, 1, (3, 16)).astype(np.float32)
    st, outs, err = http_infer(srv, "onnx_reshape_float32", [tensor_json("INPUT0", "FP32", x)],
                               [{"name": "OUTPUT1", "parameters": {"classification": 2}}])
    shape, strs = classes(x.reshape(3, 4, 4).sum(-1, dtype=np.float32).reshape(3, 2, 2), "FP32", True, 2, None)
    check("classification of a reshaped output: per row of its config dims", st == 200 and outs["OUTPUT1"][1] == shape
          and outs["OUTPUT1"][2] == strs, (st, err, outs, strs))
    status, meta, _ = srv.json("GET", "/v2")
    check("the server metadata lists the classification extension", status == 200
          and "classification" in meta.get("extensions", []), meta)
    status, doc, _ = srv.json("GET", "/v2/models/onnx_float32_float32_float32/openapi.json")
    schemas = doc["components"]["schemas"] if status == 200 else {}
    req = schemas.get("onnx_float32_float32_float32.1.InferRequest", {})
    resp = json.dumps(schemas.get("onnx_float32_float32_float32.1.InferResponse", {}))
    params = req.get("properties", {}).get("outputs", {}).get("items", {}).get("properties", {}).get("parameters", {})
    check("OpenAPI: an output may ask classification, and its answer is a BYTES branch",
          "classification" in params.get("properties", {}) and "value:index" in resp, (status, params))


def raw_bodies(srv, rng):
    raw_h = {"Inference-Header-Content-Length": "0", "Content-Type": "application/octet-stream"}

    def raw(model, body, headers=raw_h):
        status, reply, _ = srv.request("POST", f"/v2/models/{model}/infer", body, headers)
        return status, (json.loads(reply) if status == 200 else error_of(reply))

    x = rng.uniform(-5, 5, 8).astype(np.float32)
    for how in ("in one piece", "chunked"):
        if how == "chunked":
            status, reply = chunked(srv.port, "/v2/models/onnx_var_zero_1_float32/infer",
                                    [x.tobytes()[:5], x.tobytes()[5:17], x.tobytes()[17:]], raw_h)
            doc = json.loads(reply) if status == 200 else error_of(reply)
        else:
            status, doc = raw("onnx_var_zero_1_float32", x.tobytes())
        out = doc["outputs"][0] if status == 200 else {}
        check(f"raw body {how}, batching model of dims [-1]: deduced [1, 8] as Triton does", status == 200
              and out.get("shape") == [1, 8] and np.array_equal(np.array(out["data"], np.float32), x), (status, doc))
    status, doc = raw("onnx_nobatch_var_zero_1_float32", x.tobytes())
    check("raw body, model without batching of dims [-1]: deduced [8]", status == 200
          and doc["outputs"][0]["shape"] == [8], (status, doc))
    y = rng.integers(-100, 100, 16).astype(np.int32)
    status, doc = raw("onnx_var_zero_1_int32", y.tobytes())
    check("raw body INT32: [1, 16] and its values", status == 200 and doc["outputs"][0]["shape"] == [1, 16]
          and doc["outputs"][0]["data"] == y.tolist(), (status, doc))
    status, doc = raw("onnx_var_zero_1_int32", y.tobytes()[:10])
    check("raw body not a whole number of elements: 400 naming the input", status == 400
          and "input 'INPUT0'" in doc, (status, doc))
    z = rng.uniform(-1, 1, (2, 16)).astype(np.float32)
    status, doc = raw("onnx_zero_1_float32", z[:1].tobytes())
    check("raw body, dims [16]: [1, 16]", status == 200 and doc["outputs"][0]["shape"] == [1, 16], (status, doc))
    status, doc = raw("onnx_zero_1_float32", z.tobytes())
    check("raw body of two whole rows of a fixed shape: [2, 16] (celer; Triton takes one row only)",
          status == 200 and doc["outputs"][0]["shape"] == [2, 16]
          and np.array_equal(np.array(doc["outputs"][0]["data"], np.float32).reshape(2, 16), z), (status, doc))
    text = b"any bytes\x00\xff at all"
    status, reply, headers = srv.request("POST", "/v2/models/onnx_zero_1_object_1/infer", text, raw_h)
    hl = int(headers.get("Inference-Header-Content-Length", len(reply))) if status == 200 else 0
    meta = json.loads(reply[:hl]) if status == 200 else {}
    got = bytes_elements(reply[hl:], 1)[0] if status == 200 else None
    check("raw body to a BYTES model of dims [1]: the body is the one element, as it is", status == 200
          and meta["outputs"][0]["shape"] == [1, 1] and got == [text], (status, reply[:300]))
    status, doc = raw("onnx_var2_zero_1_float16", np.ones(4, np.float16).tobytes())
    check("raw body with two variable dims: 400 with Triton's words", status == 400 and doc.startswith(
        "The shape of the raw input 'INPUT0' can not be deduced because there are more than one variable-sized "
        "dimension"), (status, doc))
    status, doc = raw("onnx_zero_1_object", b"abc")
    check("raw body to a BYTES model of dims [16]: 400 with Triton's words", status == 400 and doc.startswith(
        "For BYTE datatype raw input 'INPUT0', the model must have input shape [1]"), (status, doc))
    status, doc = raw("onnx_float32_float32_float32", np.arange(24, dtype=np.float32).tobytes())
    want = ("Raw request must only have 1 input (found 1) to be deduced but got 2 inputs in "
            "'onnx_float32_float32_float32' model configuration")
    check("raw body to a model of two inputs: 400 with Triton's words", status == 400 and doc.startswith(want),
          (status, doc))
    # as Triton's QA sends it: many one-byte chunks
    status, reply = chunked(srv.port, "/v2/models/onnx_float32_float32_float32/infer", [b"A"] * 3000, raw_h)
    check("3000 one-byte chunks to a model of two inputs: the same 400", status == 400
          and error_of(reply).startswith(want), (status, reply[:300]))


def nesting(srv, rng):
    z = rng.uniform(-1, 1, (2, 16)).astype(np.float32)
    odd = [[z[0, :3].tolist(), [z[0, 3:8].tolist()]], z[0, 8:].tolist(), [[[v] for v in z[1].tolist()]]]
    for label, data in (("nested as [2, 4, 4]", z.reshape(2, 4, 4).tolist()), ("ragged but 32 leaves", odd)):
        st, outs, err = http_infer(srv, "onnx_zero_1_float32", [{"name": "INPUT0", "datatype": "FP32", "shape": [2, 16],
                                                                 "data": data}])
        check(f"JSON data {label} for shape [2, 16]: read in row-major order", st == 200
              and np.array_equal(np.array(outs["OUTPUT0"][2], np.float32).reshape(2, 16), z), (st, err))
    st, _, err = http_infer(srv, "onnx_zero_1_float32", [{"name": "INPUT0", "datatype": "FP32", "shape": [2, 16],
                                                          "data": z.ravel().tolist()[:31]}])
    check("JSON data of 31 leaves for shape [2, 16]: 400 saying so", st == 400 and "data has 31" in err, (st, err))

    def deep(depth, leaf):
        for _ in range(depth):
            leaf = [leaf]
        return leaf
    # Triton's QA test: 50 levels pass, 120 are refused with its words
    for model, dt, leaf in (("onnx_var_zero_1_int32", "INT32", 123), ("onnx_zero_1_object_1", "BYTES", "hello")):
        for depth in (50, 99, 100, 120):
            st, outs, err = http_infer(srv, model, [{"name": "INPUT0", "datatype": dt, "shape": [1, 1],
                                                     "data": deep(depth, leaf)}])
            if depth < 100:
                check(f"{dt} data nested {depth} deep: read", st == 200 and outs["OUTPUT0"][2] == [leaf], (st, err))
            else:
                check(f"{dt} data nested {depth} deep: 400 with Triton's words", st == 400 and err.startswith(
                    "JSON nesting depth exceeds maximum allowed limit (100)"), (st, err))


def reshape(srv, g, rng):
    status, meta, _ = srv.json("GET", "/v2/models/onnx_reshape_float32")
    check("metadata of a reshaped model: the config's dims, as Triton says", status == 200
          and [(t["name"], t["shape"]) for t in meta["inputs"]] == [("INPUT0", [-1, 16])]
          and [(t["name"], t["shape"]) for t in meta["outputs"]] == [("OUTPUT0", [-1, 16]), ("OUTPUT1", [-1, 2, 2])], meta)
    status, cfg, _ = srv.json("GET", "/v2/models/onnx_reshape_float32/config")
    check("config of a reshaped model: dims and reshape", status == 200
          and cfg["input"][0]["dims"] == [16] and cfg["input"][0]["reshape"] == {"shape": [4, 4]}
          and cfg["output"][1]["dims"] == [2, 2] and cfg["output"][1]["reshape"] == {"shape": [4]}, cfg)
    x = rng.uniform(-1, 1, (3, 16)).astype(np.float32)
    sums = x.reshape(3, 4, 4).sum(-1, dtype=np.float32).reshape(3, 2, 2)
    st, outs, err = http_infer(srv, "onnx_reshape_float32", [tensor_json("INPUT0", "FP32", x)])
    check("HTTP infer through a reshape: OUTPUT0 [3, 16] = INPUT0, OUTPUT1 [3, 2, 2] = the model's [3, 4] row sums",
          st == 200 and outs["OUTPUT0"][1] == [3, 16] and np.array_equal(np.array(outs["OUTPUT0"][2], np.float32), x.ravel())
          and outs["OUTPUT1"][1] == [3, 2, 2] and np.allclose(np.array(outs["OUTPUT1"][2], np.float32), sums.ravel(),
                                                               atol=1e-6), (st, err, outs))
    if g:
        grpc, pb, stub = g
        code, gouts, details = grpc_infer(g, "onnx_reshape_float32", [("INPUT0", "FP32", x)])
        ok = code == "OK" and gouts["OUTPUT0"][1] == [3, 16] and gouts["OUTPUT1"][1] == [3, 2, 2] and \
            np.array_equal(np.frombuffer(gouts["OUTPUT0"][2], np.float32), x.ravel()) and \
            np.allclose(np.frombuffer(gouts["OUTPUT1"][2], np.float32), sums.ravel(), atol=1e-6)
        check("gRPC infer through a reshape: the same", ok, (code, details))
        m = stub.ModelMetadata(pb.ModelMetadataRequest(name="onnx_reshape_float32"), timeout=10)
        check("gRPC metadata of a reshaped model: the config's dims", [list(t.shape) for t in m.inputs] == [[-1, 16]]
              and [list(t.shape) for t in m.outputs] == [[-1, 16], [-1, 2, 2]], str(m)[:300])
        c = stub.ModelConfig(pb.ModelConfigRequest(name="onnx_reshape_float32"), timeout=10).config
        check("gRPC config of a reshaped model: dims and reshape", list(c.input[0].dims) == [16]
              and list(c.input[0].reshape.shape) == [4, 4] and list(c.output[1].reshape.shape) == [4], str(c)[:300])
    # requests batched together by the scheduler keep their own rows through the reshape
    results = [None] * 8
    xs = [rng.uniform(-1, 1, (1 + i % 3, 16)).astype(np.float32) for i in range(8)]

    def one(i):
        results[i] = http_infer(srv, "onnx_reshape_float32", [tensor_json("INPUT0", "FP32", xs[i])])
    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = all(r[0] == 200 and np.allclose(np.array(r[1]["OUTPUT1"][2], np.float32),
                                         xs[i].reshape(-1, 4, 4).sum(-1, dtype=np.float32).ravel(), atol=1e-6)
             and r[1]["OUTPUT1"][1] == [len(xs[i]), 2, 2] for i, r in enumerate(results))
    check("8 concurrent requests through a reshape: each its own rows", ok, [r[0] for r in results])
    w = rng.uniform(-1, 1, (2, 8)).astype(np.float32)
    st, outs, err = http_infer(srv, "onnx_nobatch_reshape_float32", [tensor_json("INPUT0", "FP32", w)])
    check("no batching, dims [2, 8] reshape [16]: [2, 8] in and out", st == 200 and outs["OUTPUT0"][1] == [2, 8]
          and np.array_equal(np.array(outs["OUTPUT0"][2], np.float32), w.ravel()), (st, err))
    v = rng.uniform(-1, 1, (2, 3, 4)).astype(np.float32)
    st, outs, err = http_infer(srv, "onnx_reshape_var_float32", [tensor_json("INPUT0", "FP32", v)])
    check("dims [-1, 4] reshape [-1, 2, 2]: the variable dim carried both ways", st == 200
          and outs["OUTPUT0"][1] == [2, 3, 4] and np.array_equal(np.array(outs["OUTPUT0"][2], np.float32), v.ravel()),
          (st, err))
    st, _, err = http_infer(srv, "onnx_reshape_float32", [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 4, 4],
                                                           "data": x[0].tolist()}])
    check("a request in the model's own shape is refused: the client sends the config's dims", st == 400
          and "[-1,16]" in err, (st, err))


def wording(srv, g, rng):
    x = rng.uniform(-1, 1, (1, 16)).astype(np.float32)
    st, _, err = http_infer(srv, "nope", [tensor_json("INPUT0", "FP32", x)])
    check("HTTP unknown model: 404 starting 'Request for unknown model'", st == 404
          and err.startswith("Request for unknown model: 'nope' is not found"), (st, err))
    status, body, _ = srv.request("POST", "/v2/models/onnx_zero_1_float32/versions/9/infer",
                                  json.dumps({"inputs": [tensor_json("INPUT0", "FP32", x)]}).encode())
    check("HTTP unknown version: 404 starting 'Request for unknown model'", status == 404 and error_of(body).startswith(
        "Request for unknown model: 'onnx_zero_1_float32' version 9 is not found"), (status, body))
    st, _, err = http_infer(srv, "onnx_zero_1_float32", [tensor_json("INPUT0", "FP32", x)],
                            [{"name": "OUTPUT0"}, {"name": "OUTPUT0"}])
    check("HTTP output asked twice: 400 with Triton's words", st == 400
          and err.startswith("output 'OUTPUT0' already exists in request"), (st, err))
    st, _, err = http_infer(srv, "onnx_zero_1_float32", [tensor_json("INPUT0", "FP32", x)] * 2)
    check("HTTP input given twice: 400 with Triton's words", st == 400
          and err.startswith("input 'INPUT0' already exists in request"), (st, err))
    status, body, _ = srv.request("POST", "/v2/repository/index", b'{"ready": [[[true]]]}')
    check("repository index with a ready that is not a boolean: 400 with Triton's words", status == 400
          and error_of(body).startswith("Invalid value for 'ready': expected a boolean"), (status, body))
    status, body, _ = srv.request("POST", "/v2/repository/models/unknown_model/load", b"")
    check("loading a model not in the repository: Triton's words first", status == 404 and error_of(body).startswith(
        "failed to load 'unknown_model', failed to poll from model repository"), (status, body))
    status, body, _ = srv.request("POST", "/v2/repository/models/broken_model/load", b"")
    check("loading a model that fails: Triton's words first", status >= 400 and error_of(body).startswith(
        "failed to load 'broken_model'"), (status, body))
    st, _, err = http_infer(srv, "broken_model", [tensor_json("INPUT0", "FP32", x)])
    check("inferring on a model that failed to load: 'Request for unknown model ... has no available versions'",
          st == 503 and err.startswith("Request for unknown model: 'broken_model' has no available versions"), (st, err))
    # the size limits: Triton's words for the form the headers say, celer's 413
    big = np.zeros(MAX_BODY // 4 + 16, np.float32).tobytes()
    status, body, _ = srv.request("POST", "/v2/models/onnx_var_zero_1_float32/infer", big,
                                  {"Inference-Header-Content-Length": "0"})
    check("raw body over --max-body-bytes: 413 with Triton's words", status == 413 and error_of(body).startswith(
        f"Raw input has a byte_size ({len(big)} bytes) that exceeds the maximum allowed value of {MAX_BODY} bytes"),
          (status, body[:300]))
    doc = json.dumps({"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 300000],
                                  "data": [0.5] * 300000}]}).encode()
    status, body, _ = srv.request("POST", "/v2/models/onnx_var_zero_1_float32/infer", doc)
    check("JSON body over --max-body-bytes: 413 with Triton's words", status == 413 and error_of(body).startswith(
        f"request JSON size of {len(doc)} bytes exceeds the maximum allowed input size of {MAX_BODY} bytes"),
          (status, body[:300]))
    status, body = chunked(srv.port, "/v2/models/onnx_var_zero_1_float32/infer",
                           [doc[i:i + 65536] for i in range(0, len(doc), 65536)], {})
    check("chunked JSON body over --max-body-bytes: 413 with Triton's words", status == 413
          and error_of(body).startswith("request JSON size of at least ")
          and f" bytes exceeds the maximum allowed input size of {MAX_BODY} bytes" in error_of(body), (status, body[:300]))
    if g:
        grpc, pb, stub = g
        code, _, details = grpc_infer(g, "nope", [("INPUT0", "FP32", x)])
        check("gRPC unknown model: NOT_FOUND starting 'Request for unknown model'", code == "NOT_FOUND"
              and details.startswith("Request for unknown model: 'nope' is not found"), (code, details))
        code, _, details = grpc_infer(g, "onnx_zero_1_float32", [("INPUT0", "FP32", x)], [("OUTPUT0", {}), ("OUTPUT0", {})])
        check("gRPC output asked twice: INVALID_ARGUMENT with Triton's words", code == "INVALID_ARGUMENT"
              and details.startswith("output 'OUTPUT0' already exists in request"), (code, details))
        try:
            stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="unknown_model"), timeout=30)
            code, details = "OK", ""
        except grpc.RpcError as e:
            code, details = e.code().name, e.details()
        check("gRPC load of a model not in the repository: Triton's words first", code == "NOT_FOUND"
              and details.startswith("failed to load 'unknown_model', failed to poll from model repository"),
              (code, details))


def main():
    tmp = tempfile.mkdtemp(prefix="celer-e2e-triton-requests-")
    repo = os.path.join(tmp, "repository")
    models = qa_models.write_repository(repo)
    qa_models.write_shape_models(repo)
    # a model whose config does not fit its file: it fails to load
    os.makedirs(os.path.join(repo, "broken_model", "1"))
    shutil.copy(os.path.join(repo, "onnx_zero_1_float32", "1", "model.onnx"), os.path.join(repo, "broken_model", "1"))
    with open(os.path.join(repo, "broken_model", "config.pbtxt"), "w") as f:
        f.write('max_batch_size: 8\ninput [ { name: "INPUT0" data_type: TYPE_INT8 dims: [ 16 ] } ]\n')
    gport = free_port()
    srv = Server(repo, "--grpc-port", str(gport), "--max-body-bytes", str(MAX_BODY))
    srv.models = models
    rng = np.random.default_rng(19)
    g = None
    try:
        g = grpc_stub(tmp, gport)
        classification(srv, g, rng)
        raw_bodies(srv, rng)
        nesting(srv, rng)
        reshape(srv, g, rng)
        wording(srv, g, rng)
    finally:
        code = srv.stop()
        check("SIGTERM exits 0", code == 0, srv.output()[-2000:])
        check("no sanitizer report", "Sanitizer" not in srv.output() and "runtime error" not in srv.output(),
              srv.output()[-2000:])
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
