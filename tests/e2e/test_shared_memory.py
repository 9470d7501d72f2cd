#!/usr/bin/python3
"""End-to-end: system shared memory (Triton's extension) on HTTP and gRPC, with the QA identity and
add/sub models of tests/e2e/qa_models.py. Regions are POSIX shared-memory objects the test creates
with Python's multiprocessing.shared_memory (keys "/<name>" in /dev/shm); the server maps them once
registered, reads inputs from them and writes outputs into them; results are compared with NumPy.

- register, status (all and one), unregister (one and all) on both protocols; a region registered
  at an offset into its object; inputs and outputs at unaligned offsets; every datatype through the
  identity models (BYTES in the binary layout: 4-byte length, bytes); add/sub with both inputs in one
  region, with inputs and outputs mixed between regions and the request, and with the outputs
  written over the inputs (the inputs were read first); a model with the response cache answering
  new region contents for the same request bytes;
- every refusal with its message: the feature off (a server without --allow-shared-memory), bad keys
  ('..', '/' in the key, no leading '/'), an object that does not exist, a range outside the object
  at registration, a name registered twice, an unknown region, an offset or size outside the region,
  a region too small or too large for the tensor, an output region too small, data and a region for
  one input, a CUDA shared memory register (no GPU; status answers none and unregister has nothing
  to do, as Triton built without GPUs answers);
- an object truncated by its client after registration: an error, and the server goes on;
- unregistering while clients loop on inference with the region, on both protocols at once: every
  request succeeds with the right result or fails with a clear message, the server does not crash
  (run it against an ASan build too), exits 0 on SIGTERM with no sanitizer report.

usage: test_shared_memory.py CELER_BIN EXAMPLE_REPOSITORY (the second is unused)"""
import os
import shutil
import sys
import tempfile
import threading
import time
from multiprocessing import shared_memory

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc_stubs  # noqa: E402
import qa_models  # noqa: E402
from test_server import Server, check, check_stopped, free_port, summary  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TAG = f"celer_e2e_shm_{os.getpid()}"
DTYPES = list(qa_models.DTYPES)
NP = {dt: qa_models.DTYPES[dt][2] for dt in DTYPES}


def serialize_bytes(a):
    """BYTES elements in the binary layout: a 4-byte little-endian length, then the bytes."""
    return b"".join(len(x).to_bytes(4, "little") + x for x in a.flatten())


def deserialize_bytes(buf, n):
    out, p = [], 0
    for _ in range(n):
        size = int.from_bytes(buf[p:p + 4], "little")
        out.append(bytes(buf[p + 4:p + 4 + size]))
        p += 4 + size
    return np.array(out, dtype=np.object_)


def tensor_bytes(a):
    return serialize_bytes(a) if a.dtype == np.object_ else a.tobytes()


class Region:
    """A shared-memory object of the test's own, named /<TAG>_<name>."""

    def __init__(self, name, size):
        self.name = name
        self.shm = shared_memory.SharedMemory(f"{TAG}_{name}", create=True, size=size)
        self.key = "/" + self.shm.name.lstrip("/")

    def write(self, offset, data):
        self.shm.buf[offset:offset + len(data)] = data

    def read(self, offset, n):
        return bytes(self.shm.buf[offset:offset + n])

    def close(self):
        self.shm.close()
        self.shm.unlink()


def shm_params(region, size, offset=None):
    p = {"shared_memory_region": region, "shared_memory_byte_size": size}
    if offset is not None:
        p["shared_memory_offset"] = offset
    return p


def http_register(srv, name, key, byte_size, offset=0):
    return srv.json("POST", f"/v2/systemsharedmemory/region/{name}/register",
                    {"key": key, "offset": offset, "byte_size": byte_size})


def error_of(doc):
    return doc.get("error", "") if isinstance(doc, dict) else str(doc)


def grpc_mods(tmp):
    """(grpc, pb2, stub class) from tests/grpc/proto, generated into `tmp`; None (reported) otherwise."""
    got = grpc_stubs.load(tmp)
    return (got[0], got[1], got[2].GRPCInferenceServiceStub) if got else None


class Grpc:
    def __init__(self, mods, port):
        self.grpc, self.pb2, stub = mods
        self.channel = self.grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = stub(self.channel)

    def call(self, method, **fields):
        """(response, None) or (None, (code name, details))."""
        req = getattr(self.pb2, method + "Request")(**fields)
        try:
            return getattr(self.stub, method)(req, timeout=30), None
        except self.grpc.RpcError as e:
            return None, (e.code().name, e.details() or "")

    def infer(self, model, inputs, outputs=(), raw=()):
        """inputs: (name, datatype, shape, shm params dict or None); outputs: (name, params or None)."""
        pb2 = self.pb2
        req = pb2.ModelInferRequest(model_name=model)
        for name, dt, shape, params in inputs:
            t = req.inputs.add(name=name, datatype=dt, shape=shape)
            for k, v in (params or {}).items():
                if isinstance(v, str):
                    t.parameters[k].string_param = v
                else:
                    t.parameters[k].int64_param = v
        for name, params in outputs:
            o = req.outputs.add(name=name)
            for k, v in (params or {}).items():
                if isinstance(v, str):
                    o.parameters[k].string_param = v
                else:
                    o.parameters[k].int64_param = v
        req.raw_input_contents.extend(raw)
        try:
            return self.stub.ModelInfer(req, timeout=30), None
        except self.grpc.RpcError as e:
            return None, (e.code().name, e.details() or "")


def write_repository(repo):
    made = qa_models.write_repository(repo, batching=(True,))
    # the float32 identity with the response cache on: the same request bytes must still read the
    # region's new contents
    src, dst = os.path.join(repo, "onnx_zero_1_float32"), os.path.join(repo, "cached_zero_1_float32")
    shutil.copytree(src, dst)
    with open(os.path.join(dst, "config.pbtxt")) as f:
        cfg = f.read().replace('name: "onnx_zero_1_float32"', 'name: "cached_zero_1_float32"')
    with open(os.path.join(dst, "config.pbtxt"), "w") as f:
        f.write(cfg + "response_cache { enable: true }\n")
    return made


def http_identity_every_dtype(srv, rng):
    inr, outr = Region("id_in", 1 << 16), Region("id_out", 1 << 16)
    try:
        check("HTTP: register an input region", http_register(srv, "id_in", inr.key, 1 << 16)[0] == 200)
        check("HTTP: register an output region", http_register(srv, "id_out", outr.key, 1 << 16)[0] == 200)
        for i, dt in enumerate(DTYPES):
            a = qa_models.inputs(dt, 2, rng)[0]
            data = tensor_bytes(a)
            off_in, off_out = 1000 * i + 3, 1000 * i + 5  # unaligned on purpose
            inr.write(off_in, data)
            doc = {"inputs": [{"name": "INPUT0", "datatype": dt, "shape": [2, 16],
                               "parameters": shm_params("id_in", len(data), off_in)}],
                   "outputs": [{"name": "OUTPUT0", "parameters": shm_params("id_out", 900, off_out)}]}
            status, resp, _ = srv.json("POST", f"/v2/models/onnx_zero_1_{qa_models.DTYPES[dt][3]}/infer", doc)
            out = resp["outputs"][0] if status == 200 else {}
            got_n = out.get("parameters", {}).get("shared_memory_byte_size")
            raw = outr.read(off_out, len(data))
            got = deserialize_bytes(raw, a.size).reshape(a.shape) if dt == "BYTES" else \
                np.frombuffer(raw, dtype=NP[dt]).reshape(a.shape)
            check(f"HTTP identity {dt}: input read from a region, output written into one, as NumPy",
                  status == 200 and "data" not in out and out.get("shape") == [2, 16] and got_n == len(data)
                  and np.array_equal(got, a), (status, resp))
    finally:
        srv.json("POST", "/v2/systemsharedmemory/unregister")
        inr.close()
        outr.close()


def http_add_sub(srv, rng):
    model = "onnx_int32_int32_int32"
    r = Region("as", 1 << 14)
    try:
        # the region starts 4096 bytes into its object: tensor offsets count from there
        check("HTTP: register a region at an offset into its object",
              http_register(srv, "as", r.key, 8192, offset=4096)[0] == 200)
        status, doc, _ = srv.json("GET", "/v2/systemsharedmemory/status")
        check("HTTP: status lists it with its key, offset and size",
              status == 200 and doc == [{"name": "as", "key": r.key, "offset": 4096, "byte_size": 8192}], doc)
        status, doc, _ = srv.json("GET", "/v2/systemsharedmemory/region/as/status")
        check("HTTP: status of the one region", status == 200 and len(doc) == 1 and doc[0]["name"] == "as", doc)
        a, b = qa_models.inputs("INT32", 3, rng)
        n = a.nbytes
        r.write(4096 + 0, a.tobytes())
        r.write(4096 + n, b.tobytes())
        body = {"inputs": [{"name": "INPUT0", "datatype": "INT32", "shape": [3, 16], "parameters": shm_params("as", n)},
                           {"name": "INPUT1", "datatype": "INT32", "shape": [3, 16], "parameters": shm_params("as", n, n)}],
                "outputs": [{"name": "OUTPUT0", "parameters": shm_params("as", n, 2 * n)},
                            {"name": "OUTPUT1", "parameters": shm_params("as", n, 3 * n)}]}
        status, doc, _ = srv.json("POST", f"/v2/models/{model}/infer", body)
        s0 = np.frombuffer(r.read(4096 + 2 * n, n), np.int32).reshape(3, 16)
        s1 = np.frombuffer(r.read(4096 + 3 * n, n), np.int32).reshape(3, 16)
        check("HTTP add/sub: both inputs and both outputs in one region, as NumPy",
              status == 200 and np.array_equal(s0, a + b) and np.array_equal(s1, a - b), (status, doc))
        # mixed: INPUT1 in the request, OUTPUT1 answered in the response
        r.write(4096 + 2 * n, bytes(n))
        body["inputs"][1] = {"name": "INPUT1", "datatype": "INT32", "shape": [3, 16], "data": b.flatten().tolist()}
        body["outputs"][1] = {"name": "OUTPUT1"}
        status, doc, _ = srv.json("POST", f"/v2/models/{model}/infer", body)
        s0 = np.frombuffer(r.read(4096 + 2 * n, n), np.int32).reshape(3, 16)
        outs = {o["name"]: o for o in doc["outputs"]} if status == 200 else {}
        check("HTTP add/sub: inputs and outputs mixed between a region and the request",
              status == 200 and np.array_equal(s0, a + b) and "data" not in outs["OUTPUT0"]
              and np.array_equal(np.array(outs["OUTPUT1"]["data"]).reshape(3, 16), a - b), (status, doc))
        # outputs written over the inputs: the inputs were read before
        body = {"inputs": [{"name": "INPUT0", "datatype": "INT32", "shape": [3, 16], "parameters": shm_params("as", n)},
                           {"name": "INPUT1", "datatype": "INT32", "shape": [3, 16], "parameters": shm_params("as", n, n)}],
                "outputs": [{"name": "OUTPUT0", "parameters": shm_params("as", n, n)},
                            {"name": "OUTPUT1", "parameters": shm_params("as", n, 0)}]}
        status, doc, _ = srv.json("POST", f"/v2/models/{model}/infer", body)
        s0 = np.frombuffer(r.read(4096 + n, n), np.int32).reshape(3, 16)
        s1 = np.frombuffer(r.read(4096, n), np.int32).reshape(3, 16)
        check("HTTP add/sub: outputs written over the inputs (in place) hold a + b and a - b",
              status == 200 and np.array_equal(s0, a + b) and np.array_equal(s1, a - b), (status, doc))
        # a response cache in front: the same bytes, new region contents, a new answer
        x1, x2 = (rng.uniform(-5, 5, (1, 16)).astype(np.float32) for _ in range(2))
        body = {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 16], "parameters": shm_params("as", 64)}],
                "outputs": [{"name": "OUTPUT0", "parameters": shm_params("as", 64, 64)}]}
        got = []
        for x in (x1, x2):
            r.write(4096, x.tobytes())
            status, doc, headers = srv.json("POST", "/v2/models/cached_zero_1_float32/infer", body)
            got.append((status, np.frombuffer(r.read(4096 + 64, 64), np.float32).reshape(1, 16).copy()))
        check("HTTP: a model with the response cache reads the region anew for the same request bytes",
              got[0][0] == 200 and got[1][0] == 200 and np.array_equal(got[0][1], x1) and np.array_equal(got[1][1], x2),
              got)
    finally:
        srv.json("POST", "/v2/systemsharedmemory/region/as/unregister")
        r.close()


def refused(what, status, doc, want_status, *words):
    msg = error_of(doc)
    check(f"{what}: {want_status}, the message says {words[0]!r}",
          status == want_status and all(w in msg for w in words), (status, doc))


def http_refusals(srv, rng):
    r = Region("ref", 4096)
    try:
        for key, why in (("/..", "'.' and '..' name no object"), ("/a/b", "a '/' after the first"),
                         ("noslash", "'/' and then the object's name"), ("/", "names no object"),
                         ("/" + "k" * 300, "at most 255")):
            status, doc, _ = http_register(srv, "bad", key, 64)
            refused(f"HTTP register with key {key[:12]!r}", status, doc, 400, "invalid shm key", why)
        status, doc, _ = http_register(srv, "gone", f"/{TAG}_does_not_exist", 64)
        refused("HTTP register of a key with no object", status, doc, 400, "Unable to open shared memory region")
        status, doc, _ = http_register(srv, "big", r.key, 4097)
        refused("HTTP register past the object's end", status, doc, 400, "failed to register shared memory region 'big'",
                "invalid args", "4096 bytes")
        status, doc, _ = http_register(srv, "big", r.key, 1, offset=4096)
        refused("HTTP register at the object's end", status, doc, 400, "invalid args")
        status, doc, _ = srv.json("POST", "/v2/systemsharedmemory/region/ref/register", {"key": r.key})
        refused("HTTP register without byte_size", status, doc, 400, "no 'byte_size' field")
        check("HTTP register", http_register(srv, "ref", r.key, 4096)[0] == 200)
        status, doc, _ = http_register(srv, "ref", r.key, 4096)
        refused("HTTP register of a name registered already", status, doc, 400, "shared memory region 'ref' already in manager")
        status, doc, _ = srv.json("GET", "/v2/systemsharedmemory/region/nope/status")
        refused("HTTP status of an unknown region", status, doc, 404, "Unable to find system shared memory region: 'nope'")

        model = "/v2/models/onnx_zero_1_float32/infer"

        def infer(in_params, out_params=None, data=None):
            inp = {"name": "INPUT0", "datatype": "FP32", "shape": [1, 16], "parameters": in_params}
            if data is not None:
                inp["data"] = data
            body = {"inputs": [inp]}
            if out_params:
                body["outputs"] = [{"name": "OUTPUT0", "parameters": out_params}]
            return srv.json("POST", model, body)

        status, doc, _ = infer(shm_params("nope", 64))
        refused("HTTP infer from an unknown region", status, doc, 404, "Unable to find shared memory region: 'nope'",
                "input 'INPUT0'")
        status, doc, _ = infer(shm_params("ref", 64, 4096))
        refused("HTTP infer at an offset outside the region", status, doc, 400,
                "Invalid offset for shared memory region: 'ref'")
        status, doc, _ = infer(shm_params("ref", 64, 4064))
        refused("HTTP infer with offset + size outside the region", status, doc, 400,
                "Invalid offset + byte size for shared memory region: 'ref'", "offset 4064 + byte_size 64")
        status, doc, _ = infer(shm_params("ref", 60))
        refused("HTTP infer with a region range too small for the tensor", status, doc, 400,
                "input byte size mismatch for input 'INPUT0' for model 'onnx_zero_1_float32'. Expected 64, got 60")
        status, doc, _ = infer(shm_params("ref", 128))
        refused("HTTP infer with a region range too large for the tensor", status, doc, 400,
                "input byte size mismatch", "Expected 64, got 128")
        status, doc, _ = infer(shm_params("ref", 64), shm_params("ref", 32, 64))
        refused("HTTP infer with an output region too small", status, doc, 400,
                "shared memory size specified with the request for output 'OUTPUT0' (32 bytes) should be at least 64 bytes")
        status, doc, _ = infer(shm_params("ref", 64), shm_params("nope", 64))
        refused("HTTP infer into an unknown output region", status, doc, 404, "Unable to find shared memory region: 'nope'",
                "output 'OUTPUT0'")
        status, doc, _ = infer(shm_params("ref", 64), data=[0.0] * 16)
        refused("HTTP infer with data and a region for one input", status, doc, 400,
                "Input must set only one of the following fields")
        status, doc, _ = infer({"shared_memory_region": "ref"})
        refused("HTTP infer with a region and no byte size", status, doc, 400, "needs 'shared_memory_byte_size'")
        status, doc, _ = infer(shm_params("ref", 64), dict(shm_params("ref", 64, 64), binary_data=True))
        refused("HTTP infer with an output in a region and binary_data", status, doc, 400,
                "Output can't set both 'shared_memory_region' and 'binary_data'")
        # CUDA shared memory: no GPU, so none is ever registered; status and unregister answer as
        # Triton built without GPUs does (Triton's shm examples unregister CUDA regions first)
        status, doc, _ = srv.json("POST", "/v2/cudasharedmemory/region/g/register",
                                  {"raw_handle": {"b64": "AAAA"}, "device_id": 0, "byte_size": 64})
        refused("HTTP CUDA shared memory register", status, doc, 400,
                "failed to register CUDA shared memory region: 'g', GPUs not supported", "no GPU",
                "use system shared memory")
        status, doc, _ = srv.json("GET", "/v2/cudasharedmemory/status")
        check("HTTP CUDA shared memory status: an empty list", status == 200 and doc == [], (status, doc))
        status, doc, _ = srv.json("GET", "/v2/cudasharedmemory/region/g/status")
        refused("HTTP CUDA shared memory status of a region", status, doc, 404,
                "Unable to find cuda shared memory region: 'g'", "no GPU")
        for path in ("unregister", "region/g/unregister"):
            status, doc, _ = srv.json("POST", f"/v2/cudasharedmemory/{path}")
            check(f"HTTP CUDA shared memory {path}: 200, nothing to do", status == 200, (status, doc))
        # an object its client truncates after registering it: an error, no SIGBUS
        path = f"/dev/shm/{TAG}_trunc"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, 8192)
            os.pwrite(fd, np.arange(16, dtype=np.float32).tobytes(), 4096)
            check("HTTP register a region to truncate", http_register(srv, "trunc", f"/{TAG}_trunc", 8192)[0] == 200)
            status, doc, _ = infer(shm_params("trunc", 64, 4096))
            check("HTTP infer from it before the truncation", status == 200 and doc["outputs"][0]["data"] == list(range(16)),
                  (status, doc))
            os.ftruncate(fd, 100)
            status, doc, _ = infer(shm_params("trunc", 64, 4096))
            refused("HTTP infer from a region whose object was truncated", status, doc, 400,
                    "shared memory region 'trunc' could not be read", "was truncated after it was registered")
            status, doc, _ = infer(shm_params("ref", 64), shm_params("trunc", 64, 4096))
            refused("HTTP infer into a region whose object was truncated", status, doc, 400, "could not be written")
            check("the server is alive after both", srv.request("GET", "/v2/health/live")[0] == 200)
        finally:
            os.close(fd)
            os.unlink(path)
        status, doc, _ = srv.json("POST", "/v2/systemsharedmemory/region/ref/unregister", {"x": 1})
        refused("HTTP unregister with a body", status, doc, 400, "an unregister request has no body")
        check("HTTP unregister of a name not registered: 200, as Triton",
              srv.json("POST", "/v2/systemsharedmemory/region/never/unregister")[0] == 200)
        metrics = srv.request("GET", "/metrics")[1].decode()
        check("metrics: celer_shared_memory_regions counts the registered regions",
              "celer_shared_memory_regions 2" in metrics, [l for l in metrics.splitlines() if "shared_memory" in l])
        check("HTTP unregister one", srv.json("POST", "/v2/systemsharedmemory/region/ref/unregister")[0] == 200)
        status, doc, _ = srv.json("GET", "/v2/systemsharedmemory/status")
        check("HTTP status lists the other", status == 200 and [d["name"] for d in doc] == ["trunc"], doc)
        check("HTTP unregister all", srv.json("POST", "/v2/systemsharedmemory/unregister")[0] == 200)
        status, doc, _ = srv.json("GET", "/v2/systemsharedmemory/status")
        check("HTTP status: none left", status == 200 and doc == [], doc)
    finally:
        r.close()


def grpc_checks(g, rng):
    r = Region("g", 1 << 14)
    try:
        _, err = g.call("SystemSharedMemoryRegister", name="g", key=r.key, offset=0, byte_size=1 << 14)
        check("gRPC SystemSharedMemoryRegister", err is None, err)
        _, err = g.call("SystemSharedMemoryRegister", name="g2", key=r.key, offset=8192, byte_size=4096)
        check("gRPC SystemSharedMemoryRegister at an offset into the object", err is None, err)
        resp, err = g.call("SystemSharedMemoryStatus")
        regions = dict(resp.regions) if resp else {}
        check("gRPC SystemSharedMemoryStatus lists both with key, offset and size",
              set(regions) == {"g", "g2"} and regions["g2"].key == r.key and regions["g2"].offset == 8192
              and regions["g2"].byte_size == 4096 and regions["g"].name == "g", (resp, err))
        resp, err = g.call("SystemSharedMemoryStatus", name="g2")
        check("gRPC SystemSharedMemoryStatus of one region", resp is not None and list(resp.regions) == ["g2"], err)
        _, err = g.call("SystemSharedMemoryStatus", name="nope")
        check("gRPC status of an unknown region: NOT_FOUND", err and err[0] == "NOT_FOUND"
              and "Unable to find system shared memory region: 'nope'" in err[1], err)

        # every datatype through the identity models, outputs into the region registered at 8192
        for i, dt in enumerate(DTYPES):
            a = qa_models.inputs(dt, 2, rng)[0]
            data = tensor_bytes(a)
            r.write(600 * i + 7, data)
            resp, err = g.infer(f"onnx_zero_1_{qa_models.DTYPES[dt][3]}",
                                [("INPUT0", dt, [2, 16], shm_params("g", len(data), 600 * i + 7))],
                                [("OUTPUT0", shm_params("g2", 4096 - 9, 9))])
            raw = r.read(8192 + 9, len(data))
            got = deserialize_bytes(raw, a.size).reshape(a.shape) if dt == "BYTES" else \
                np.frombuffer(raw, dtype=NP[dt]).reshape(a.shape)
            ok = err is None and len(resp.raw_output_contents) == 1 and resp.raw_output_contents[0] == b"" \
                and resp.outputs[0].parameters["shared_memory_byte_size"].int64_param == len(data)
            check(f"gRPC identity {dt}: input from a region, output into one (an empty raw entry), as NumPy",
                  ok and np.array_equal(got, a), err)

        # add/sub: INPUT0 in the region, INPUT1 raw; OUTPUT0 in the region, OUTPUT1 raw
        a, b = qa_models.inputs("FP32", 2, rng)
        r.write(0, a.tobytes())
        resp, err = g.infer("onnx_float32_float32_float32",
                            [("INPUT0", "FP32", [2, 16], shm_params("g", a.nbytes)), ("INPUT1", "FP32", [2, 16], None)],
                            [("OUTPUT0", shm_params("g", a.nbytes, 256)), ("OUTPUT1", None)], raw=[b.tobytes()])
        s0 = np.frombuffer(r.read(256, a.nbytes), np.float32).reshape(2, 16)
        s1 = np.frombuffer(resp.raw_output_contents[1], np.float32).reshape(2, 16) if resp else None
        check("gRPC add/sub: inputs and outputs mixed between a region and the message, as NumPy",
              err is None and np.array_equal(s0, a + b) and np.array_equal(s1, a - b), err)
        # in place: outputs over the inputs
        r.write(0, a.tobytes())
        r.write(128, b.tobytes())
        resp, err = g.infer("onnx_float32_float32_float32",
                            [("INPUT0", "FP32", [2, 16], shm_params("g", 128)),
                             ("INPUT1", "FP32", [2, 16], shm_params("g", 128, 128))],
                            [("OUTPUT0", shm_params("g", 128, 128)), ("OUTPUT1", shm_params("g", 128, 0))])
        s0 = np.frombuffer(r.read(128, 128), np.float32).reshape(2, 16)
        s1 = np.frombuffer(r.read(0, 128), np.float32).reshape(2, 16)
        check("gRPC add/sub: outputs written over the inputs hold a + b and a - b",
              err is None and np.array_equal(s0, a + b) and np.array_equal(s1, a - b), err)

        # refusals, Triton's words first
        def fp32(params, outputs=(), raw=()):
            return g.infer("onnx_zero_1_float32", [("INPUT0", "FP32", [1, 16], params)], outputs, raw)

        for what, (resp, err), code, words in (
                ("an unknown region", fp32(shm_params("nope", 64)), "NOT_FOUND",
                 ("Unable to find shared memory region: 'nope'",)),
                ("an offset outside the region", fp32(shm_params("g2", 64, 4096)), "INVALID_ARGUMENT",
                 ("Invalid offset for shared memory region: 'g2'",)),
                ("offset + size outside the region", fp32(shm_params("g2", 64, 4090)), "INVALID_ARGUMENT",
                 ("Invalid offset + byte size for shared memory region: 'g2'",)),
                ("a range too small for the tensor", fp32(shm_params("g", 32)), "INVALID_ARGUMENT",
                 ("input byte size mismatch for input 'INPUT0'", "Expected 64, got 32")),
                ("a range too large for the tensor", fp32(shm_params("g", 65)), "INVALID_ARGUMENT",
                 ("input byte size mismatch", "Expected 64, got 65")),
                ("an output region too small", fp32(shm_params("g", 64), [("OUTPUT0", shm_params("g", 63, 64))]),
                 "INVALID_ARGUMENT", ("should be at least 64 bytes to hold the results",)),
                ("a raw entry for an input in a region", fp32(shm_params("g", 64), raw=[bytes(64)]), "INVALID_ARGUMENT",
                 ("0 inputs outside shared memory but 1 raw_input_contents",)),
                ("an offset without a region", fp32({"shared_memory_offset": 4}, raw=[bytes(64)]), "INVALID_ARGUMENT",
                 ("'shared_memory_offset' can not be specified without 'shared_memory_region'",))):
            check(f"gRPC infer with {what}: {code}", err and err[0] == code and all(w in err[1] for w in words),
                  (err, words))
        for key, why in (("/..", "'.' and '..'"), ("/a/b", "after the first"), ("x", "'/' and then")):
            _, err = g.call("SystemSharedMemoryRegister", name="bad", key=key, byte_size=64)
            check(f"gRPC register with key {key!r}: INVALID_ARGUMENT", err and err[0] == "INVALID_ARGUMENT"
                  and "invalid shm key" in err[1] and why in err[1], err)
        _, err = g.call("SystemSharedMemoryRegister", name="big", key=r.key, offset=1, byte_size=1 << 14)
        check("gRPC register past the object's end: INVALID_ARGUMENT",
              err and err[0] == "INVALID_ARGUMENT" and "invalid args" in err[1], err)
        _, err = g.call("SystemSharedMemoryRegister", name="g", key=r.key, byte_size=64)
        check("gRPC register of a name registered already", err and "already in manager" in err[1], err)
        _, err = g.call("CudaSharedMemoryRegister", name="c", raw_handle=b"\0" * 64, byte_size=64)
        check("gRPC CudaSharedMemoryRegister: UNIMPLEMENTED, no GPU", err and err[0] == "UNIMPLEMENTED"
              and "GPUs not supported" in err[1] and "celer runs on the CPU only" in err[1], err)
        resp, err = g.call("CudaSharedMemoryStatus")
        check("gRPC CudaSharedMemoryStatus: no regions", err is None and len(resp.regions) == 0, err)
        _, err = g.call("CudaSharedMemoryStatus", name="c")
        check("gRPC CudaSharedMemoryStatus of a region: NOT_FOUND", err and err[0] == "NOT_FOUND"
              and "Unable to find cuda shared memory region: 'c'" in err[1], err)
        _, err = g.call("CudaSharedMemoryUnregister", name="c")
        check("gRPC CudaSharedMemoryUnregister: OK, nothing to do", err is None, err)
        _, err = g.call("SystemSharedMemoryUnregister", name="g")
        resp, _ = g.call("SystemSharedMemoryStatus")
        check("gRPC SystemSharedMemoryUnregister of one", err is None and list(resp.regions) == ["g2"], err)
        _, err = g.call("SystemSharedMemoryUnregister")
        resp, _ = g.call("SystemSharedMemoryStatus")
        check("gRPC SystemSharedMemoryUnregister of all", err is None and len(resp.regions) == 0, err)
    finally:
        r.close()


def unregister_while_running(srv, g, rng):
    """Clients loop on inference with a region (HTTP and gRPC) while another thread unregisters and
    registers it again: each answer is right or a clear refusal; the server stays up."""
    r = Region("hot", 4096)
    a, b = qa_models.inputs("FP32", 1, rng)
    r.write(0, a.tobytes())
    r.write(64, b.tobytes())
    stop = threading.Event()
    results = {"ok": 0, "refused": 0, "wrong": []}
    lock = threading.Lock()

    def note(ok, detail):
        with lock:
            if ok is True:
                results["ok"] += 1
            elif ok == "refused":
                results["refused"] += 1
            else:
                results["wrong"].append(detail)

    clear = ("Unable to find shared memory region: 'hot'",)

    def http_client(k):
        body = {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 16], "parameters": shm_params("hot", 64)},
                           {"name": "INPUT1", "datatype": "FP32", "shape": [1, 16],
                            "parameters": shm_params("hot", 64, 64)}],
                "outputs": [{"name": "OUTPUT0"}, {"name": "OUTPUT1", "parameters": shm_params("hot", 64, 128 + 64 * k)}]}
        while not stop.is_set():
            status, doc, _ = srv.json("POST", "/v2/models/onnx_float32_float32_float32/infer", body)
            if status == 200:
                o0 = np.array(doc["outputs"][0]["data"], np.float32).reshape(1, 16)
                note(np.array_equal(o0, a + b) or "wrong", doc)
            else:
                note("refused" if status in (400, 404) and any(w in error_of(doc) for w in clear) else "wrong",
                     (status, doc))

    def grpc_client():
        while not stop.is_set():
            resp, err = g.infer("onnx_float32_float32_float32",
                                [("INPUT0", "FP32", [1, 16], shm_params("hot", 64)),
                                 ("INPUT1", "FP32", [1, 16], shm_params("hot", 64, 64))],
                                [("OUTPUT0", shm_params("hot", 64, 1024)), ("OUTPUT1", None)])
            if err is None:
                o1 = np.frombuffer(resp.raw_output_contents[1], np.float32).reshape(1, 16)
                note(np.array_equal(o1, a - b) or "wrong", resp)
            else:
                note("refused" if err[0] == "NOT_FOUND" and any(w in err[1] for w in clear) else "wrong", err)

    def churn():
        i = 0
        while not stop.is_set():
            if i % 2:
                g.call("SystemSharedMemoryUnregister", name="hot" if i % 4 == 1 else "")
                g.call("SystemSharedMemoryRegister", name="hot", key=r.key, byte_size=4096)
            else:
                srv.json("POST", "/v2/systemsharedmemory/region/hot/unregister" if i % 4 == 0
                         else "/v2/systemsharedmemory/unregister")
                http_register(srv, "hot", r.key, 4096)
            i += 1
            time.sleep(0.002)

    http_register(srv, "hot", r.key, 4096)
    threads = [threading.Thread(target=http_client, args=(k,)) for k in range(2)]
    threads += [threading.Thread(target=grpc_client), threading.Thread(target=churn)]
    for t in threads:
        t.start()
    time.sleep(6)
    stop.set()
    for t in threads:
        t.join(60)
    print(f"     ({results['ok']} answered, {results['refused']} refused, {len(results['wrong'])} wrong)")
    check("unregistering while requests run: every answer right or a clear refusal, both seen",
          not results["wrong"] and results["ok"] > 0 and results["refused"] > 0,
          (results["ok"], results["refused"], results["wrong"][:3]))
    check("the server is alive after it", srv.request("GET", "/v2/health/live")[0] == 200)
    srv.json("POST", "/v2/systemsharedmemory/unregister")
    r.close()


def feature_off(repo, mods, tmp):
    gport = free_port()
    srv = Server(repo, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1")
    r = Region("off", 4096)
    try:
        status, doc, _ = http_register(srv, "off", r.key, 64)
        refused("without --allow-shared-memory, HTTP register", status, doc, 400,
                "Client shared memory is disabled", "--allow-shared-memory")
        status, doc, _ = srv.json("POST", "/v2/systemsharedmemory/unregister")
        refused("without --allow-shared-memory, HTTP unregister", status, doc, 400, "Client shared memory is disabled")
        status, doc, _ = srv.json("GET", "/v2/systemsharedmemory/status")
        check("without --allow-shared-memory, HTTP status answers, empty", status == 200 and doc == [], doc)
        status, doc, _ = srv.json("POST", "/v2/models/onnx_zero_1_float32/infer", {"inputs": [
            {"name": "INPUT0", "datatype": "FP32", "shape": [1, 16], "parameters": shm_params("off", 64)}]})
        refused("without --allow-shared-memory, HTTP infer from a region", status, doc, 400,
                "Client shared memory is disabled")
        status, doc, _ = srv.json("GET", "/v2")
        check("server metadata lists system_shared_memory (not cuda_shared_memory)",
              "system_shared_memory" in doc.get("extensions", []) and "cuda_shared_memory" not in doc["extensions"], doc)
        if mods:
            g = Grpc(mods, gport)
            _, err = g.call("SystemSharedMemoryRegister", name="off", key=r.key, byte_size=64)
            check("without --allow-shared-memory, gRPC register: UNIMPLEMENTED",
                  err and err[0] == "UNIMPLEMENTED" and "Client shared memory is disabled" in err[1], err)
            resp, err = g.call("SystemSharedMemoryStatus")
            check("without --allow-shared-memory, gRPC status answers, empty", err is None and len(resp.regions) == 0, err)
            _, err = g.infer("onnx_zero_1_float32", [("INPUT0", "FP32", [1, 16], shm_params("off", 64))])
            check("without --allow-shared-memory, gRPC infer from a region refused",
                  err and "Client shared memory is disabled" in err[1], err)
            g.channel.close()
    finally:
        r.close()
        check_stopped(srv, "shared memory off")


def main():
    tmp = tempfile.mkdtemp(prefix="celer-e2e-shm-")
    try:
        return run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp):
    repo = os.path.join(tmp, "repository")
    write_repository(repo)
    mods = grpc_mods(tmp)
    rng = np.random.default_rng(19)
    gport = free_port()
    srv = Server(repo, "--allow-shared-memory", "--grpc-port", str(gport), "--grpc-address", "127.0.0.1")
    try:
        http_identity_every_dtype(srv, rng)
        http_add_sub(srv, rng)
        http_refusals(srv, rng)
        if mods:
            g = Grpc(mods, gport)
            grpc_checks(g, rng)
            unregister_while_running(srv, g, rng)
            g.channel.close()
        log = srv.output()
        check("no sanitizer report so far", "Sanitizer" not in log and "runtime error" not in log, log[-2000:])
    finally:
        check_stopped(srv, "shared memory on")
    feature_off(repo, mods, tmp)
    leftovers = [f for f in os.listdir("/dev/shm") if f.startswith(TAG)]
    check("every object the test made is gone from /dev/shm", not leftovers, leftovers)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
