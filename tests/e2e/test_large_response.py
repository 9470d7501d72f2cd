#!/usr/bin/python3
"""End-to-end: answers over 1 GiB, sent from the output tensors as the client reads, never built in
one buffer. An Expand model (value [K] FP32 expanded to [M, K]) answers 1.25 GiB when
--max-response-bytes is raised: over HTTP (binary extension, read and checked 4 MiB at a time;
then gzipped on the way, chunked, inflated as it comes), and over gRPC by hand-built HTTP/2 frames
with a 2 GiB window (the message parsed as it comes, never held). The server's peak RSS over each
is the output itself plus a little (no second copy) and drops back once it is sent. A gRPC answer
over 2 GiB is RESOURCE_EXHAUSTED (protobuf's limit); answers over --max-response-bytes are 413 /
RESOURCE_EXHAUSTED naming the flag (the default 1 GiB too); a client that stops reading halfway
costs nothing once it is gone; ModelStreamInfer carries a large answer between small ones.
Prints the figures (seconds, MB/s, peak RSS) it measures.

usage: test_large_response.py CELER_BIN EXAMPLE_REPOSITORY"""
import http.client
import json
import os
import shutil
import socket
import struct
import sys
import time
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc_stubs  # noqa: E402
from test_grpc_abuse import (DATA, END_HEADERS, END_STREAM, HEADERS, PREFACE, RST_STREAM, SETTINGS,  # noqa: E402
                             WINDOW_UPDATE, frame, pb_bytes, pb_varint, request_block)
from test_server import Server, check, check_stopped, free_port  # noqa: E402

CELER, REPO_SRC = sys.argv[1], sys.argv[2]
# under ASan the shadow of what the answer touched (an eighth of it) stays resident after it is freed
SANITIZED = os.environ.get("CELER_SANITIZED", "").lower() in ("1", "on", "true", "yes")
MiB, GiB = 1 << 20, 1 << 30
K = 1024                        # a row: the ramp 0..1023 (4 KiB)
BIG_ROWS = 327680               # 1.25 GiB of FP32
RAMP = np.arange(K, dtype=np.float32)
PATTERN = np.tile(RAMP, 1025).tobytes()  # 4 MiB + a row: any 4 MiB window of the answer's data


def write_expand(repo):
    graph = helper.make_graph([helper.make_node("Expand", ["value", "shape"], ["y"])], "expand",
                              [helper.make_tensor_value_info("value", TensorProto.FLOAT, [-1]),
                               helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, -1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    os.makedirs(os.path.join(repo, "expand", "1"))
    onnx.save(model, os.path.join(repo, "expand", "1", "model.onnx"))
    with open(os.path.join(repo, "expand", "config.pbtxt"), "w") as f:
        f.write('name: "expand"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 0\n'
                'input [ { name: "value" data_type: TYPE_FP32 dims: [ -1 ] },'
                ' { name: "shape" data_type: TYPE_INT64 dims: [ 2 ] } ]\n'
                'output [ { name: "y" data_type: TYPE_FP32 dims: [ -1, -1 ] } ]\n')


class Checker:
    """Checks the answer's tensor bytes as they come, against the ramp repeated (any split)."""

    def __init__(self):
        self.n, self.ok = 0, True

    def feed(self, b):
        for i in range(0, len(b), 4 * MiB):
            part = b[i:i + 4 * MiB]
            start = self.n % (4 * K)
            self.ok &= part == PATTERN[start:start + len(part)]
            self.n += len(part)


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith(key))


def reset_peak(pid):
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # VmHWM starts again from VmRSS


def slack_kib(big):
    """What RSS may exceed its idle level by once an answer of `big` bytes is gone."""
    return 64 * 1024 + (big // 8 // 1024 if SANITIZED else 0)


def settle(pid, base_kib, secs=10, big=BIG_ROWS * K * 4):
    """VmRSS once it is back within slack_kib of base (the answer's memory given back), or at the timeout."""
    end = time.time() + secs
    while time.time() < end and status_kib(pid, "VmRSS") > base_kib + slack_kib(big):
        time.sleep(0.1)
    return status_kib(pid, "VmRSS")


def http_request(rows, binary=True):
    ins = [{"name": "value", "datatype": "FP32", "shape": [K], "parameters": {"binary_data_size": 4 * K}},
           {"name": "shape", "datatype": "INT64", "shape": [2], "parameters": {"binary_data_size": 16}}]
    head = json.dumps({"inputs": ins, "parameters": {"binary_data_output": binary}}).encode()
    return head + RAMP.tobytes() + np.array([rows, K], np.int64).tobytes(), {"Inference-Header-Content-Length":
                                                                              str(len(head))}


def http_big(srv, rows, headers=None, stop_after=None):
    """(status, header JSON, Checker, headers, seconds) of an Expand answer read 4 MiB at a time
    (gzip inflated as it comes); stop_after: close the connection after that many bytes."""
    body, h = http_request(rows)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=300)
    t0 = time.time()
    conn.request("POST", "/v2/models/expand/infer", body=body, headers=dict(h, **(headers or {})))
    r = conn.getresponse()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    if r.status != 200:
        text = r.read()
        conn.close()
        return r.status, json.loads(text), None, hdrs, time.time() - t0
    inflater = zlib.decompressobj(31) if hdrs.get("content-encoding") == "gzip" else None
    hl = int(hdrs["inference-header-content-length"])
    pending, doc, chk = b"", None, Checker()
    while True:
        d = r.read(4 * MiB)
        if not d:
            break
        if inflater:
            d = inflater.decompress(d)
        if doc is None:
            pending += d
            if len(pending) < hl:
                continue
            doc, d = json.loads(pending[:hl]), pending[hl:]
        chk.feed(d)
        if stop_after and chk.n >= stop_after:
            break
    conn.close()
    return 200, doc, chk, hdrs, time.time() - t0


def grpc_big(port, rows, stop_after=None):
    """ModelInfer of an Expand answer by hand-built frames with a 2 GiB window, the message parsed as
    it comes: (grpc-status, InferOutputTensor bytes seen, Checker, seconds); stop_after: reset the
    stream after that many tensor bytes."""
    t0 = pb_bytes(1, b"value") + pb_bytes(2, b"FP32") + pb_bytes(3, pb_varint(K))
    t1 = pb_bytes(1, b"shape") + pb_bytes(2, b"INT64") + pb_bytes(3, pb_varint(2))
    msg = (pb_bytes(1, b"expand") + pb_bytes(5, t0) + pb_bytes(5, t1) + pb_bytes(7, RAMP.tobytes())
           + pb_bytes(7, np.array([rows, K], np.int64).tobytes()))
    window = (1 << 31) - 1
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(300)
    start = time.time()
    s.sendall(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HIHI", 4, window, 5, 1 << 20))
              + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", window - 65535))
              + frame(HEADERS, END_HEADERS, 1, request_block("/inference.GRPCInferenceService/ModelInfer"))
              + frame(DATA, END_STREAM, 1, b"\0" + struct.pack(">I", len(msg)) + msg))
    buf, off, ended, status = bytearray(), 0, False, None
    head, data_left, chk, outputs = bytearray(), None, Checker(), b""
    from hpack import Decoder
    dec = Decoder()
    while not ended:
        chunk = s.recv(4 * MiB)
        if not chunk:
            break
        buf += chunk
        while len(buf) - off >= 9 and not ended:
            n = int.from_bytes(buf[off:off + 3], "big")
            if len(buf) - off < 9 + n:
                break
            ftype, flags, sid = buf[off + 3], buf[off + 4], int.from_bytes(buf[off + 5:off + 9], "big")
            payload = bytes(buf[off + 9:off + 9 + n])
            off += 9 + n
            if ftype == SETTINGS and not flags & 1:
                s.sendall(frame(SETTINGS, 1, 0))
            elif ftype == HEADERS and sid == 1:
                fields = dict(dec.decode(payload, raw=False))
                if "grpc-status" in fields:
                    status, ended = int(fields["grpc-status"]), True
                    outputs = fields.get("grpc-message", "").encode() if status else outputs
            elif ftype == RST_STREAM and sid == 1:
                ended = True
            elif ftype == DATA and sid == 1:
                if data_left is None:  # the prefix and the fields up to the raw content's length
                    head += payload
                    p = 5
                    while p < len(head):
                        tag = head[p]
                        ln, q, shift = 0, p + 1, 0
                        while q < len(head):
                            ln |= (head[q] & 0x7F) << shift
                            shift += 7
                            q += 1
                            if not head[q - 1] & 0x80:
                                break
                        else:
                            break
                        if tag == 0x32:  # raw_output_contents: the tensor from here
                            data_left = ln
                            chk.feed(bytes(head[q:q + ln]))
                            data_left -= min(ln, len(head) - q)
                            break
                        if tag == 0x2A:
                            outputs = bytes(head[q:q + ln])
                        p = q + ln
                else:
                    chk.feed(payload)
                    data_left -= len(payload)
                if stop_after and chk.n >= stop_after:
                    s.sendall(frame(RST_STREAM, 0, 1, struct.pack(">I", 8)))
                    ended = True
        del buf[:off]
        off = 0
    s.close()
    return status, outputs, chk, time.time() - start


def main():
    return grpc_stubs.main("celer-e2e-large-", run)


def run(tmp, grpc, pb, pb_grpc):
    repo = os.path.join(tmp, "repository")
    shutil.copytree(REPO_SRC, repo)
    write_expand(repo)
    big = BIG_ROWS * K * 4
    gport = free_port()
    srv = Server(repo, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1", "--max-response-bytes",
                 str(4 * GiB))
    pid = srv.proc.pid
    try:
        base = status_kib(pid, "VmRSS")
        # HTTP, 1.25 GiB, binary
        reset_peak(pid)
        st, doc, chk, h, secs = http_big(srv, BIG_ROWS)
        peak = status_kib(pid, "VmHWM")
        after = settle(pid, base)
        check(f"HTTP: a {big / GiB:.2f} GiB answer streamed, every byte right ({secs:.1f} s, "
              f"{big / MiB / secs:.0f} MB/s with the compute)",
              st == 200 and doc["outputs"][0]["shape"] == [BIG_ROWS, K] and chk.n == big and chk.ok
              and int(h["content-length"]) == big + int(h["inference-header-content-length"]), (st, doc, h))
        check(f"HTTP: the server's peak RSS is the output, not two copies ({base // 1024} MB idle, peak "
              f"{peak // 1024} MB, {after // 1024} MB after)", peak - base < big // 1024 + 200 * 1024 + slack_kib(big)
              and after - base < slack_kib(big), (base, peak, after))
        # gzipped on the way: chunked, inflated as it comes
        st, doc, chk, h, secs = http_big(srv, BIG_ROWS, {"Accept-Encoding": "gzip"})
        check(f"HTTP: the same gzipped on the way, chunked ({secs:.1f} s)", st == 200 and h.get("content-encoding")
              == "gzip" and h.get("transfer-encoding") == "chunked" and chk.n == big and chk.ok, (st, h))
        # a client that stops reading after 64 MiB: nothing left behind, the server serves on
        st, doc, chk, h, secs = http_big(srv, BIG_ROWS, stop_after=64 * MiB)
        after = settle(pid, base)
        st2, doc2, chk2, _, _ = http_big(srv, 16)
        check(f"HTTP: a client gone after 64 MiB costs nothing once gone ({after // 1024} MB after)",
              st == 200 and after - base < slack_kib(big) and st2 == 200 and chk2.n == 16 * 4 * K and chk2.ok, (after, st2))

        # gRPC by hand, 1.25 GiB
        reset_peak(pid)
        st, outputs, chk, secs = grpc_big(gport, BIG_ROWS)
        peak = status_kib(pid, "VmHWM")
        after = settle(pid, base)
        out = pb.ModelInferResponse.InferOutputTensor.FromString(outputs) if st == 0 else None
        check(f"gRPC: a {big / GiB:.2f} GiB ModelInfer answer in DATA frames from the tensors, every byte right "
              f"({secs:.1f} s, {big / MiB / secs:.0f} MB/s with the compute)",
              st == 0 and out.name == "y" and list(out.shape) == [BIG_ROWS, K] and chk.n == big and chk.ok,
              (st, outputs[:200], chk.n))
        check(f"gRPC: peak RSS the output only ({peak // 1024} MB, {after // 1024} MB after)",
              peak - base < big // 1024 + 200 * 1024 + slack_kib(big) and after - base < slack_kib(big),
              (base, peak, after))
        st, _, chk, _ = grpc_big(gport, BIG_ROWS, stop_after=64 * MiB)
        after = settle(pid, base)
        channel = grpc.insecure_channel(f"127.0.0.1:{gport}", options=[("grpc.max_receive_message_length", -1)])
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        live = stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live
        check(f"gRPC: a stream reset after 64 MiB costs nothing once gone ({after // 1024} MB after)",
              after - base < slack_kib(big) and live, after)

        def infer(rows):
            return pb.ModelInferRequest(model_name="expand", inputs=[
                pb.ModelInferRequest.InferInputTensor(name="value", datatype="FP32", shape=[K]),
                pb.ModelInferRequest.InferInputTensor(name="shape", datatype="INT64", shape=[2])],
                raw_input_contents=[RAMP.tobytes(), np.array([rows, K], np.int64).tobytes()])
        # over 2 GiB: no gRPC message can carry it
        try:
            stub.ModelInfer(infer(524800), timeout=300)
            check("gRPC: an answer over 2 GiB: RESOURCE_EXHAUSTED", False, "answered")
        except grpc.RpcError as e:
            check("gRPC: an answer over 2 GiB: RESOURCE_EXHAUSTED saying why", e.code() ==
                  grpc.StatusCode.RESOURCE_EXHAUSTED and "2 GiB - 1" in (e.details() or ""), (e.code(), e.details()))
        # ModelStreamInfer: a 80 MiB answer (streamed, wrapped) between two small ones, through grpcio
        reqs = [infer(4), infer(20480), infer(2)]
        for i, q in enumerate(reqs):
            q.id = str(i)
        got = {a.infer_response.id: a for a in stub.ModelStreamInfer(iter(reqs), timeout=300)}
        ok = len(got) == 3 and not any(a.error_message for a in got.values())
        for i, rows in enumerate((4, 20480, 2)):
            y = np.frombuffer(got[str(i)].infer_response.raw_output_contents[0], np.float32) if ok else None
            ok = ok and y.size == rows * K and np.array_equal(y.reshape(rows, K)[[0, -1]], np.stack([RAMP, RAMP]))
        check("gRPC ModelStreamInfer: a 80 MiB answer from the tensors between small ones", ok,
              {k: (a.error_message, len(a.infer_response.raw_output_contents)) for k, a in got.items()})
        channel.close()

        # a 80 MiB answer in JSON: built in one buffer (binary is what streams), still answered
        body, h = http_request(20480, binary=False)
        st, text, hdrs = srv.request("POST", "/v2/models/expand/infer", body, h)
        check(f"HTTP: a 80 MiB-tensor answer asked in JSON ({len(text) // MiB} MB of text) is answered",
              st == 200 and text.startswith(b'{"model_name":"expand"') and text.endswith(b"]}]}")
              and b"1021,1022,1023,0,1,2" in text[:20000], (st, text[:200]))
    finally:
        check_stopped(srv, "cap raised")

    # the cap: --max-response-bytes 100 MiB; and the default (1 GiB) refusing 1.25 GiB
    gport = free_port()
    srv = Server(repo, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1", "--max-response-bytes",
                 str(100 * MiB))
    channel = grpc.insecure_channel(f"127.0.0.1:{gport}", options=[("grpc.max_receive_message_length", -1)])
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    try:
        st, doc, chk, _, _ = http_big(srv, 20480)
        check("--max-response-bytes 100 MiB: a 80 MiB answer streams", st == 200 and chk.n == 20480 * 4 * K and chk.ok)
        st, doc, _, _, _ = http_big(srv, 32768)
        check("--max-response-bytes 100 MiB: a 128 MiB answer is 413 naming the flag", st == 413
              and "--max-response-bytes" in doc.get("error", ""), (st, doc))
        try:
            stub.ModelInfer(pb.ModelInferRequest(model_name="expand", inputs=[
                pb.ModelInferRequest.InferInputTensor(name="value", datatype="FP32", shape=[K]),
                pb.ModelInferRequest.InferInputTensor(name="shape", datatype="INT64", shape=[2])],
                raw_input_contents=[RAMP.tobytes(), np.array([32768, K], np.int64).tobytes()]), timeout=120)
            check("gRPC: over --max-response-bytes: RESOURCE_EXHAUSTED", False, "answered")
        except grpc.RpcError as e:
            check("gRPC: over --max-response-bytes: RESOURCE_EXHAUSTED naming the flag",
                  e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "--max-response-bytes" in (e.details() or ""),
                  (e.code(), e.details()))
    finally:
        channel.close()
        check_stopped(srv, "cap 100 MiB")
    srv = Server(repo)
    try:
        st, doc, _, _, _ = http_big(srv, BIG_ROWS)
        check("the default --max-response-bytes (1 GiB): a 1.25 GiB answer is 413 naming the flag", st == 413
              and "--max-response-bytes" in doc.get("error", ""), (st, doc))
    finally:
        check_stopped(srv, "default cap")


if __name__ == "__main__":
    sys.exit(main())
