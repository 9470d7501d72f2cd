#!/usr/bin/python3
"""End-to-end: compressed requests and answers on both protocols, checked against NumPy with the
example MLP and Triton-QA add/sub models of several datatypes (qa_models.py).

HTTP (http.client): Content-Encoding gzip, deflate (zlib) and raw deflate bodies, JSON and binary,
whole and chunked; Accept-Encoding answered with Content-Encoding and Vary for answers of
--compress-min-bytes or more (Inference-Header-Content-Length still counts uncompressed bytes);
q-values; an unknown coding 415 with Accept-Encoding; truncated, garbage and trailing bytes 400;
gzip bombs 413 at --max-body-bytes without the server's memory growing.
gRPC (Debian's python3-grpcio, stubs from tests/grpc/proto): grpc-encoding gzip and deflate both
ways for ModelInfer and ModelStreamInfer; and by hand-built HTTP/2 frames (test_grpc_abuse.Conn)
what grpcio hides: the answer's compressed flag and grpc-encoding (only when the request was
compressed and grpc-accept-encoding takes it), an unknown coding UNIMPLEMENTED with
grpc-accept-encoding, a compressed flag without grpc-encoding INTERNAL, garbage and truncated
streams INVALID_ARGUMENT, bombs RESOURCE_EXHAUSTED at --grpc-max-message-bytes.

usage: test_compression.py CELER_BIN EXAMPLE_REPOSITORY"""
import gzip
import http.client
import json
import os
import shutil
import struct
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc_stubs  # noqa: E402
import qa_models  # noqa: E402
from test_grpc_abuse import HEADERS, END_HEADERS, Conn, frame, request_block  # noqa: E402
from test_server import Server, check, check_stopped, free_port, mlp_reference  # noqa: E402

CELER, REPO_SRC = sys.argv[1], sys.argv[2]
MiB = 1 << 20
QA_DTYPES = ["INT32", "FP32", "FP64", "UINT8", "INT64", "FP16"]
SERVICE = "/inference.GRPCInferenceService/"


def raw_deflate(b):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(b) + c.flush()


CODERS = {"gzip": ("gzip", gzip.compress), "deflate": ("deflate", zlib.compress), "raw deflate": ("deflate", raw_deflate)}


def inflate(coding, b):
    return gzip.decompress(b) if coding == "gzip" else zlib.decompress(b)


def post(srv, path, body, headers=None, chunked=False):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    try:
        if chunked:
            conn.request("POST", path, body=iter([body[i:i + 1000] for i in range(0, len(body), 1000)]),
                         headers=headers or {}, encode_chunked=True)
        else:
            conn.request("POST", path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read(), {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()


def decode_answer(body, headers):
    """The KServe answer as {output name: ndarray}, through Content-Encoding and the binary extension."""
    if headers.get("content-encoding"):
        body = inflate(headers["content-encoding"], body)
    hl = int(headers.get("inference-header-content-length", len(body)))
    doc = json.loads(body[:hl])
    out, off = {}, hl
    for o in doc["outputs"]:
        dt = qa_models.DTYPES[o["datatype"]][2]
        size = (o.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            out[o["name"]] = np.frombuffer(body[off:off + size], dtype=dt).reshape(o["shape"])
            off += size
        else:
            out[o["name"]] = np.array(o["data"], dtype=dt).reshape(o["shape"])
    return out


def qa_body(dt, a, b, binary):
    """An add/sub request: JSON data, or the binary extension (inputs and outputs)."""
    if not binary:
        ins = [{"name": n, "datatype": dt, "shape": list(x.shape), "data": x.flatten().tolist()}
               for n, x in (("INPUT0", a), ("INPUT1", b))]
        return json.dumps({"inputs": ins}).encode(), {}
    ins = [{"name": n, "datatype": dt, "shape": list(x.shape), "parameters": {"binary_data_size": x.nbytes}}
           for n, x in (("INPUT0", a), ("INPUT1", b))]
    head = json.dumps({"inputs": ins, "parameters": {"binary_data_output": True}}).encode()
    return head + a.tobytes() + b.tobytes(), {"Inference-Header-Content-Length": str(len(head))}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS"))


def main():
    return grpc_stubs.main("celer-e2e-compress-", run)


def run(tmp, grpc, pb, pb_grpc):
    repo = os.path.join(tmp, "repository")
    shutil.copytree(REPO_SRC, repo)
    qa_models.write_repository(repo, dtypes=QA_DTYPES, batching=(True,))
    rng = np.random.default_rng(19)
    gport = free_port()
    srv = Server(repo, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1", "--max-body-bytes", str(MiB),
                 "--grpc-max-message-bytes", str(MiB), "--compress-min-bytes", "64")
    channel = grpc.insecure_channel(f"127.0.0.1:{gport}", options=[("grpc.max_receive_message_length", -1),
                                                                    ("grpc.max_send_message_length", -1)])
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    try:
        http_part(srv, rng, repo)
        grpc_part(srv, gport, rng, repo, grpc, pb, stub)
    finally:
        channel.close()
        check_stopped(srv)
    # the default threshold (1024 bytes): a small answer goes as it is, a larger one compressed
    srv = Server(repo)
    try:
        def mlp(rows):
            return json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [rows, 16],
                                           "data": [0.25] * (16 * rows)}]}).encode()
        st, body, h = post(srv, "/v2/models/mlp/infer", mlp(1), {"Accept-Encoding": "gzip"})
        check(f"default --compress-min-bytes: a {len(body)}-byte answer is not compressed",
              st == 200 and len(body) < 1024 and "content-encoding" not in h and "vary" not in h, (st, h))
        st, body, h = post(srv, "/v2/models/mlp/infer", mlp(64), {"Accept-Encoding": "gzip"})
        check("default --compress-min-bytes: a 64-row answer is gzipped", st == 200
              and h.get("content-encoding") == "gzip" and decode_answer(body, h)["scores"].shape == (64, 8), (st, h))
    finally:
        check_stopped(srv, "default threshold")


def http_part(srv, rng, repo):
    # the MLP, every request coding, JSON and binary answers, compressed answers
    x = rng.standard_normal((16, 16)).astype(np.float32)
    ref = mlp_reference(repo, x)
    body = json.dumps({"inputs": [{"name": "features", "shape": [16, 16], "datatype": "FP32",
                                   "data": x.flatten().tolist()}]}).encode()
    for name, (coding, fn) in CODERS.items():
        for accept in (None, "gzip", "deflate"):
            for chunked in (False, True):
                headers = {"Content-Encoding": coding}
                if accept:
                    headers["Accept-Encoding"] = accept
                st, out, h = post(srv, "/v2/models/mlp/infer", fn(body), headers, chunked)
                ok = st == 200 and h.get("content-encoding") == accept
                y = decode_answer(out, h)["scores"] if ok else None
                check(f"HTTP mlp, {name} body{' chunked' if chunked else ''}, Accept-Encoding {accept}: "
                      f"matches NumPy{', answer ' + accept if accept else ''}",
                      ok and np.allclose(y, ref, atol=1e-5) and (not accept or h.get("vary") == "Accept-Encoding"),
                      (st, h, out[:200]))
    # Triton-QA add/sub models: binary request and answer, compressed both ways
    for dt in QA_DTYPES:
        qa = qa_models.DTYPES[dt][3]
        a, b = qa_models.inputs(dt, 4, rng)
        want = qa_models.reference("addsub", a, b)
        for binary in (False, True):
            req, extra = qa_body(dt, a, b, binary)
            for name, (coding, fn) in CODERS.items():
                st, out, h = post(srv, f"/v2/models/onnx_{qa}_{qa}_{qa}/infer", fn(req),
                                  dict(extra, **{"Content-Encoding": coding, "Accept-Encoding": "gzip;q=0.5, deflate"}))
                ok = st == 200 and h.get("content-encoding") == "deflate"
                got = decode_answer(out, h) if ok else {}
                same = ok and all(np.array_equal(got[k], v) for k, v in zip(("OUTPUT0", "OUTPUT1"), want))
                check(f"HTTP add/sub {dt} {'binary' if binary else 'JSON'}, {name} body, deflate answer (q-values): "
                      "matches NumPy", same, (st, h, out[:200]))

    # answers: q=0 and identity refuse compression; no Accept-Encoding: none; /metrics gzipped
    for accept in ("identity", "gzip;q=0", "br", "gzip;q=0, deflate;q=0"):
        st, out, h = post(srv, "/v2/models/mlp/infer", body, {"Accept-Encoding": accept})
        check(f"Accept-Encoding {accept!r}: not compressed, Vary set", st == 200 and "content-encoding" not in h
              and h.get("vary") == "Accept-Encoding", h)
    st, out, h = post(srv, "/v2/models/mlp/infer", body, {"Accept-Encoding": "*"})
    check("Accept-Encoding '*': gzip", st == 200 and h.get("content-encoding") == "gzip", h)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
    r = conn.getresponse()
    text = r.read()
    check("/metrics gzipped for Prometheus (Accept-Encoding: gzip)", r.status == 200 and r.getheader(
        "Content-Encoding") == "gzip" and b"celer_inference_requests_total" in gzip.decompress(text), r.getheaders())
    conn.request("GET", "/v2/health/live", headers={"Accept-Encoding": "gzip"})
    r = conn.getresponse()
    r.read()
    check("an empty answer is not compressed", r.status == 200 and r.getheader("Content-Encoding") is None)
    conn.close()

    # refusals
    st, out, h = post(srv, "/v2/models/mlp/infer", body, {"Content-Encoding": "br"})
    check("Content-Encoding br: 415 with Accept-Encoding: gzip, deflate, Triton's words first",
          st == 415 and h.get("accept-encoding") == "gzip, deflate"
          and json.loads(out)["error"].startswith("Unsupported compression type"), (st, h, out))
    for what, data, coding, words in (
            ("truncated gzip", gzip.compress(body)[:-12], "gzip", "cut short"),
            ("truncated deflate", zlib.compress(body)[:200], "deflate", "cut short"),
            ("not gzip", body, "gzip", "not valid gzip data"),
            ("bytes after the deflate stream", zlib.compress(body) + b"xyz", "deflate", "follow the end"),
            ("a gzip member then garbage", gzip.compress(body) + b"garbage!", "gzip", "not valid gzip data")):
        st, out, h = post(srv, "/v2/models/mlp/infer", data, {"Content-Encoding": coding})
        check(f"{what}: 400 naming it", st == 400 and words in json.loads(out)["error"], (st, out))
    st, out, h = post(srv, "/v2/models/mlp/infer", gzip.compress(body) + gzip.compress(b" "), {"Content-Encoding": "gzip"})
    check("two gzip members are one body", st == 200, (st, out[:200]))

    # bombs: 64 MiB of zeros in about 64 KB, twenty times: 413 at --max-body-bytes, memory flat
    bomb = gzip.compress(bytes(64 * MiB), 9)
    before = rss_kib(srv.proc.pid)
    answers = [post(srv, "/v2/models/mlp/infer", bomb, {"Content-Encoding": "gzip"}) for _ in range(20)]
    after = rss_kib(srv.proc.pid)
    check(f"gzip bombs ({len(bomb)} bytes inflating to 64 MiB) x20: 413 naming the limit",
          all(a[0] == 413 and "inflates past the limit of 1048576 bytes" in json.loads(a[1])["error"]
              for a in answers), answers[0][:2])
    check(f"... and the server's memory stays flat ({before} -> {after} KiB)", after - before < 32 * 1024,
          (before, after))
    st, out, h = post(srv, "/v2/models/mlp/infer", bomb, {"Content-Encoding": "gzip", "Expect": "100-continue"})
    check("a bomb sent after 100-continue: 413", st == 413, st)
    # a body under the limit that inflates past it, in chunks
    st, out, h = post(srv, "/v2/models/mlp/infer", gzip.compress(bytes(2 * MiB)), {"Content-Encoding": "gzip"},
                      chunked=True)
    check("a chunked body inflating past --max-body-bytes: 413", st == 413, (st, out))


def grpc_part(srv, gport, rng, repo, grpc, pb, stub):
    x = rng.standard_normal((16, 16)).astype(np.float32)
    ref = mlp_reference(repo, x)

    def mlp_request(rows):
        return pb.ModelInferRequest(model_name="mlp", inputs=[pb.ModelInferRequest.InferInputTensor(
            name="features", datatype="FP32", shape=[rows.shape[0], 16])], raw_input_contents=[rows.tobytes()])

    for comp in (grpc.Compression.NoCompression, grpc.Compression.Gzip, grpc.Compression.Deflate):
        r = stub.ModelInfer(mlp_request(x), compression=comp, timeout=30)
        y = np.frombuffer(r.raw_output_contents[0], np.float32).reshape(16, 8)
        check(f"gRPC ModelInfer mlp, compression {comp.name}: matches NumPy", np.allclose(y, ref, atol=1e-5))
    for dt in QA_DTYPES:
        npdt, qa = qa_models.DTYPES[dt][2], qa_models.DTYPES[dt][3]
        a, b = qa_models.inputs(dt, 4, rng)
        want = qa_models.reference("addsub", a, b)
        req = pb.ModelInferRequest(model_name=f"onnx_{qa}_{qa}_{qa}", inputs=[
            pb.ModelInferRequest.InferInputTensor(name=n, datatype=dt, shape=[4, 16]) for n in ("INPUT0", "INPUT1")],
            raw_input_contents=[a.tobytes(), b.tobytes()])
        for comp in (grpc.Compression.Gzip, grpc.Compression.Deflate):
            r = stub.ModelInfer(req, compression=comp, timeout=30)
            got = [np.frombuffer(c, npdt).reshape(4, 16) for c in r.raw_output_contents]
            check(f"gRPC add/sub {dt}, compression {comp.name}: matches NumPy",
                  all(np.array_equal(g, w) for g, w in zip(got, want)))
    # a stream of compressed requests
    reqs = [mlp_request(x[i:i + 1]) for i in range(16)]
    for i, q in enumerate(reqs):
        q.id = str(i)
    answers = {}
    for a in stub.ModelStreamInfer(iter(reqs), compression=grpc.Compression.Gzip, timeout=30):
        answers[a.infer_response.id] = np.frombuffer(a.infer_response.raw_output_contents[0], np.float32)
    check("gRPC ModelStreamInfer, gzip both ways: every answer matches NumPy", len(answers) == 16 and all(
        np.allclose(answers[str(i)], ref[i], atol=1e-5) for i in range(16)), len(answers))
    # a bomb through grpcio: RESOURCE_EXHAUSTED at --grpc-max-message-bytes
    bomb_req = pb.ModelInferRequest(model_name="identity", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="x", datatype="FP32", shape=[MiB, 4])], raw_input_contents=[bytes(16 * MiB)])
    try:
        stub.ModelInfer(bomb_req, compression=grpc.Compression.Gzip, timeout=30)
        check("gRPC: a message inflating past --grpc-max-message-bytes: RESOURCE_EXHAUSTED", False, "answered")
    except grpc.RpcError as e:
        check("gRPC: a message inflating past --grpc-max-message-bytes: RESOURCE_EXHAUSTED naming the flag",
              e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "--grpc-max-message-bytes" in (e.details() or ""),
              (e.code(), e.details()))

    # by hand: what grpcio does not show
    plain = mlp_request(x).SerializeToString()

    def message(body, flag=0):
        return bytes([flag]) + struct.pack(">I", len(body)) + body

    def call(conn, sid, body, headers):
        conn.send(frame(HEADERS, END_HEADERS, sid, request_block(SERVICE + "ModelInfer", headers)))
        conn.send_data(sid, body)
        status, data, rst = conn.answer(sid, 30)
        s = conn.streams.get(sid, {})
        return status, data, dict(s.get("headers") or []), dict((s.get("trailers") or []) + (s.get("headers") or []))

    conn = Conn(gport)
    try:
        sid = 1
        for coding, fn in (("gzip", gzip.compress), ("deflate", zlib.compress)):
            st, data, hd, _ = call(conn, sid, message(fn(plain), 1),
                                   [("grpc-encoding", coding), ("grpc-accept-encoding", "identity,deflate,gzip")])
            sid += 2
            ok = st == 0 and len(data) > 5 and data[0] == 1 and hd.get("grpc-encoding") == coding
            resp = pb.ModelInferResponse.FromString(inflate(coding, data[5:])) if ok else None
            check(f"by hand: a {coding} request's answer comes {coding}-compressed (flag 1, grpc-encoding {coding})",
                  ok and np.allclose(np.frombuffer(resp.raw_output_contents[0], np.float32).reshape(16, 8), ref,
                                     atol=1e-5), (st, hd, data[:8]))
        st, data, hd, _ = call(conn, sid, message(gzip.compress(plain), 1), [("grpc-encoding", "gzip")])
        sid += 2
        check("by hand: no grpc-accept-encoding: the answer goes uncompressed", st == 0 and data[:1] == b"\0"
              and "grpc-encoding" not in hd, (st, hd))
        st, data, hd, _ = call(conn, sid, message(plain), [("grpc-accept-encoding", "gzip")])
        sid += 2
        check("by hand: an uncompressed request is answered uncompressed (the answer follows the request)",
              st == 0 and data[:1] == b"\0" and "grpc-encoding" not in hd
              and "gzip" in hd.get("grpc-accept-encoding", ""), (st, hd))
        st, data, hd, fields = call(conn, sid, message(b"\x01\x02\x03", 1), [("grpc-encoding", "snappy")])
        sid += 2
        check("by hand: grpc-encoding snappy: UNIMPLEMENTED with grpc-accept-encoding listing gzip and deflate",
              st == 12 and "gzip" in fields.get("grpc-accept-encoding", "") and "deflate" in fields.get(
                  "grpc-accept-encoding", "") and "snappy" in fields.get("grpc-message", ""), fields)
        st, data, hd, fields = call(conn, sid, message(plain), [("grpc-encoding", "snappy")])
        sid += 2
        check("by hand: grpc-encoding snappy on an uncompressed message: answered", st == 0, fields)
        st, data, hd, fields = call(conn, sid, message(gzip.compress(plain), 1), [])
        sid += 2
        check("by hand: the compressed flag without grpc-encoding: INTERNAL", st == 13, fields)
        for what, body, words in (("garbage", message(b"not gzip at all", 1), "not valid gzip data"),
                                  ("truncated", message(gzip.compress(plain)[:-9], 1), "cut short")):
            st, data, hd, fields = call(conn, sid, body, [("grpc-encoding", "gzip")])
            sid += 2
            check(f"by hand: a {what} gzip message: INVALID_ARGUMENT naming it", st == 3
                  and words in fields.get("grpc-message", "").replace("%20", " "), fields)
        # bombs by hand: 20 x 64 MiB of zeros, RESOURCE_EXHAUSTED, memory flat
        bomb = message(gzip.compress(bytes(64 * MiB), 9), 1)
        before = rss_kib(srv.proc.pid)
        codes = []
        for _ in range(20):
            st, data, hd, fields = call(conn, sid, bomb, [("grpc-encoding", "gzip")])
            codes.append(st)
            sid += 2
        after = rss_kib(srv.proc.pid)
        check(f"by hand: gzip bombs x20: RESOURCE_EXHAUSTED, memory flat ({before} -> {after} KiB)",
              codes == [8] * 20 and after - before < 32 * 1024, (codes, before, after))
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
