#!/usr/bin/python3
"""Every method of Triton's own Python client (tritonclient.http and tritonclient.grpc) against
celer, run by hand: the client is not part of this repository (issue 19 asks to run it from its
own repository, not to commit it). Set it up once outside the repository:

    fetch triton-inference-server/client; copy src/python/library/tritonclient to DIR; generate
    DIR/tritonclient/grpc/{service,model_config}_pb2*.py from tests/grpc/proto with grpc_tools
    (service.proto importing "tritonclient/grpc/model_config.proto"); it runs on Debian's
    python3-geventhttpclient, python3-rapidjson and python3-grpcio.

then: PYTHONPATH=DIR /usr/bin/python3 tests/triton_client/check_methods.py build/celer

It starts celer on a temporary repository (the example models and Triton QA-layout models from
tests/e2e/qa_models.py) with shared memory allowed and explicit model control, calls each method
on both protocols with the arguments a Triton user passes, checks the answers (inference against
NumPy), and prints one line per method: pass, or fail with the client's exception. CUDA shared
memory answers as Triton built without GPUs does (register refused: no GPU; status empty; unregister
has nothing to do); generate is not tried (celer serves no LLM endpoint). Trace settings are read
and changed as Triton's (celer exports the spans over OTLP: docs/server.md, "Tracing")."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import qa_models  # noqa: E402

import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

RESULTS = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record(proto, method, fn):
    try:
        note = fn()
        RESULTS.append((proto, method, True, note or ""))
    except Exception as e:  # noqa: BLE001: every failure is reported, whatever it is
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        RESULTS.append((proto, method, False, msg[:300]))
        if os.environ.get("VERBOSE"):
            traceback.print_exc()


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def refused(fn, *words):
    """Calls fn, which must raise with all of `words` in the message; returns the message."""
    try:
        fn()
    except InferenceServerException as e:
        msg = str(e)
        expect(all(w.lower() in msg.lower() for w in words), f"refused, but the message lacks {words}: {msg}")
        return "refused: " + msg.splitlines()[0][:120]
    raise AssertionError("accepted, expected a refusal")


def run(mod, proto, url, repo):
    c = mod.InferenceServerClient(url)
    rng = np.random.default_rng(7)
    a, b = qa_models.inputs("FP32", 2, rng)

    def infer_addsub(**kw):
        ins = [mod.InferInput("INPUT0", [2, 16], "FP32"), mod.InferInput("INPUT1", [2, 16], "FP32")]
        ins[0].set_data_from_numpy(a, **kw)
        ins[1].set_data_from_numpy(b, **kw)
        outs = [mod.InferRequestedOutput("OUTPUT0", **kw), mod.InferRequestedOutput("OUTPUT1", **kw)]
        r = c.infer("onnx_float32_float32_float32", ins, outputs=outs)
        expect(np.allclose(r.as_numpy("OUTPUT0"), a + b) and np.allclose(r.as_numpy("OUTPUT1"), a - b), "wrong sums")

    record(proto, "is_server_live", lambda: expect(c.is_server_live(), "not live"))
    record(proto, "is_server_ready", lambda: expect(c.is_server_ready(), "not ready"))
    record(proto, "is_model_ready", lambda: expect(c.is_model_ready("mlp"), "mlp not ready"))
    record(proto, "get_server_metadata", lambda: expect(c.get_server_metadata() is not None, "none"))
    record(proto, "get_model_metadata", lambda: expect(c.get_model_metadata("mlp") is not None, "none"))
    record(proto, "get_model_config", lambda: expect(c.get_model_config("mlp") is not None, "none"))
    record(proto, "get_model_repository_index", lambda: expect(
        len(c.get_model_repository_index() if proto == "http" else c.get_model_repository_index().models) > 0, "empty"))
    record(proto, "infer (JSON / contents)", lambda: infer_addsub(**({"binary_data": False} if proto == "http" else {})))
    if proto == "http":
        record(proto, "infer (binary data)", lambda: infer_addsub(binary_data=True))
        record(proto, "infer (request and response gzip)", lambda: expect(
            c.infer("onnx_zero_1_float32", [_in(mod, "INPUT0", a, "FP32")], request_compression_algorithm="gzip",
                    response_compression_algorithm="gzip").as_numpy("OUTPUT0").shape == (2, 16), "shape"))
    else:
        record(proto, "infer (gzip)", lambda: expect(c.infer("onnx_zero_1_float32", [_in(mod, "INPUT0", a, "FP32")],
                                                             compression_algorithm="gzip").as_numpy("OUTPUT0").shape
                                                     == (2, 16), "shape"))

    def classification():
        ins = [_in(mod, "INPUT0", a, "FP32"), _in(mod, "INPUT1", b, "FP32")]
        out = mod.InferRequestedOutput("OUTPUT0", class_count=3)
        r = c.infer("onnx_float32_float32_float32", ins, outputs=[out])
        top = r.as_numpy("OUTPUT0")
        expect(top.shape == (2, 3), f"shape {top.shape}")
        s = a + b
        want = [np.argsort(-row)[:3] for row in s]
        got = [[int(x.decode().split(":")[1]) for x in row] for row in top]
        expect([list(w) for w in want] == got, f"top-3 {got} != {want}")
        expect(top[0][0].decode().split(":")[2] == qa_models.LABELS[want[0][0]], f"label {top[0][0]}")
    record(proto, "infer (classification)", classification)

    def async_infer():
        ins = [_in(mod, "INPUT0", a, "FP32")]
        if proto == "http":
            r = c.async_infer("onnx_zero_1_float32", ins).get_result()
        else:
            box = []
            c.async_infer("onnx_zero_1_float32", ins, callback=lambda result, error: box.append((result, error)))
            for _ in range(200):
                if box:
                    break
                time.sleep(0.02)
            expect(box and box[0][1] is None, f"callback {box}")
            r = box[0][0]
        expect(np.array_equal(r.as_numpy("OUTPUT0"), a), "identity differs")
    record(proto, "async_infer", async_infer)

    if proto == "grpc":
        def stream():
            box = []
            c.start_stream(callback=lambda result, error: box.append((result, error)))
            for _ in range(3):
                c.async_stream_infer("onnx_zero_1_float32", [_in(mod, "INPUT0", a, "FP32")])
            for _ in range(200):
                if len(box) == 3:
                    break
                time.sleep(0.02)
            c.stop_stream()
            expect(len(box) == 3 and all(e is None for _, e in box), f"{box}")
        record(proto, "start_stream / async_stream_infer / stop_stream", stream)

    def stats():
        s = c.get_inference_statistics("onnx_float32_float32_float32")
        st = s["model_stats"][0] if proto == "http" else s.model_stats[0]
        n = st["inference_stats"]["success"]["count"] if proto == "http" else st.inference_stats.success.count
        expect(int(n) >= 1, f"success count {n}")
    record(proto, "get_inference_statistics", stats)

    def load_unload():
        c.unload_model("mlp_basic")
        expect(not c.is_model_ready("mlp_basic"), "still ready after unload")
        c.load_model("mlp_basic")
        expect(c.is_model_ready("mlp_basic"), "not ready after load")
    record(proto, "load_model / unload_model", load_unload)

    def load_with_config():
        cfg = '{"name": "mlp_basic", "max_batch_size": 4}'
        c.load_model("mlp_basic", config=cfg)
        conf = c.get_model_config("mlp_basic")
        mbs = conf["max_batch_size"] if proto == "http" else conf.config.max_batch_size
        expect(int(mbs) == 4, f"max_batch_size {mbs}")
    record(proto, "load_model (config override)", load_with_config)

    def load_with_files():
        with open(os.path.join(repo, "mlp", "1", "model.onnx"), "rb") as f:
            model = f.read()
        cfg = '{"name": "uploaded", "backend": "onnxruntime"}'
        c.load_model("uploaded", config=cfg, files={"file:1/model.onnx": model})
        expect(c.is_model_ready("uploaded"), "uploaded model not ready")
    record(proto, "load_model (config and files)", load_with_files)

    record(proto, "get_log_settings", lambda: expect(c.get_log_settings() is not None, "none"))
    record(proto, "update_log_settings", lambda: expect(c.update_log_settings({"log_verbose_level": 1}) is not None,
                                                        "none"))
    record(proto, "get_trace_settings", lambda: expect(c.get_trace_settings() is not None, "none"))
    record(proto, "update_trace_settings", lambda: expect(
        c.update_trace_settings(settings={"trace_level": ["TIMESTAMPS"]}) is not None, "none"))

    def system_shm():
        from tritonclient.utils import shared_memory as shm
        key = f"/celer_tc_{proto}_{os.getpid()}"
        h = shm.create_shared_memory_region(f"in_{proto}", key, a.nbytes * 2)
        try:
            shm.set_shared_memory_region(h, [a, b])
            c.register_system_shared_memory(f"in_{proto}", key, a.nbytes * 2)
            st = c.get_system_shared_memory_status()
            expect(len(st) >= 1 if proto == "http" else len(st.regions) >= 1, f"status {st}")
            ins = [mod.InferInput("INPUT0", [2, 16], "FP32"), mod.InferInput("INPUT1", [2, 16], "FP32")]
            ins[0].set_shared_memory(f"in_{proto}", a.nbytes, 0)
            ins[1].set_shared_memory(f"in_{proto}", b.nbytes, a.nbytes)
            r = c.infer("onnx_float32_float32_float32", ins)
            expect(np.allclose(r.as_numpy("OUTPUT0"), a + b), "sum from shared memory differs")
            c.unregister_system_shared_memory(f"in_{proto}")
        finally:
            shm.destroy_shared_memory_region(h)
    record(proto, "register / status / infer / unregister system shared memory", system_shm)
    # as Triton built without GPUs: registering is refused, the status lists none, unregistering
    # has nothing to do (Triton's own shm examples unregister CUDA regions before they start)
    def cuda_status():
        st = c.get_cuda_shared_memory_status()
        expect(len(st) == 0 if proto == "http" else len(st.regions) == 0, f"regions {st}")
        return "no regions"
    record(proto, "get_cuda_shared_memory_status", cuda_status)
    record(proto, "register_cuda_shared_memory",
           lambda: refused(lambda: c.register_cuda_shared_memory("x", b"\0" * 64, 0, 16), "gpu"))
    record(proto, "unregister_cuda_shared_memory", lambda: c.unregister_cuda_shared_memory() and None)
    c.close()


def _in(mod, name, x, dt):
    i = mod.InferInput(name, list(x.shape), dt)
    i.set_data_from_numpy(x)
    return i


def main():
    celer = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="celer-tritonclient-")
    repo = os.path.join(tmp, "repository")
    shutil.copytree(os.path.join(HERE, "..", "..", "examples", "repository"), repo)
    qa_models.write_repository(repo, ["FP32"])
    http_port, grpc_port = free_port(), free_port()
    log = open(os.path.join(tmp, "celer.log"), "w")
    args = [celer, "serve", "--model-repository", repo, "--http-port", str(http_port), "--grpc-port", str(grpc_port),
            "--quiet", "--drain-delay-secs", "0", "--allow-shared-memory", "--model-control-mode", "explicit", "--load-model", "*"]
    proc = subprocess.Popen(args, stderr=log)
    try:
        for _ in range(200):
            try:
                if httpclient.InferenceServerClient(f"127.0.0.1:{http_port}").is_server_ready():
                    break
            except Exception:  # noqa: BLE001
                pass
            if proc.poll() is not None:
                raise SystemExit("celer exited: " + open(os.path.join(tmp, "celer.log")).read()[-2000:])
            time.sleep(0.1)
        run(httpclient, "http", f"127.0.0.1:{http_port}", repo)
        run(grpcclient, "grpc", f"127.0.0.1:{grpc_port}", repo)
    finally:
        proc.terminate()
        proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(m) for _, m, _, _ in RESULTS)
    for proto, method, ok, note in RESULTS:
        print(f"{proto:4} {method:{width}}  {'pass' if ok else 'FAIL'}  {note}")
    failed = sum(1 for r in RESULTS if not r[2])
    print(f"{len(RESULTS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
