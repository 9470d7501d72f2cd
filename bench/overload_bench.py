#!/usr/bin/python3
"""Overload with large bodies: CONNS connections at once each POST a ResNet-50 input (602 KB,
binary tensor extension) to a server whose queue holds 8. Prints per server: answers by status,
503 latency (p50, p99: first byte sent to status line read), peak RSS during the burst, RSS when
idle before it and 3 s after it.

usage: bench/overload_bench.py MODEL.onnx NAME=CELER_BIN [NAME=CELER_BIN ...]
       (CONNS=2000 by default; EXPECT=1 sends Expect: 100-continue; FLOOR=1 posts to an unknown
       model instead, and the 503 columns read its 404s; run `python3 scripts/export_models.py` or the real-model test first
       for build/real-models/resnet50/model.onnx)"""
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

CONNS = int(os.environ.get("CONNS", "2000"))
EXPECT = os.environ.get("EXPECT", "0") == "1"  # send Expect: 100-continue, as curl does for large bodies
# FLOOR=1: the burst goes to a model that does not exist (404 from the headers, nothing computed):
# what this client and the accept path take alone, for reading the 503 latency
TARGET = b"nope" if os.environ.get("FLOOR", "0") == "1" else b"resnet50"
TENSOR = 3 * 224 * 224 * 4


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def request_bytes(target=b"resnet50"):
    """(headers, body) of one request."""
    head = json.dumps({"inputs": [{"name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32",
                                   "parameters": {"binary_data_size": TENSOR}}]}).encode()
    body = head + bytes(TENSOR)
    return (b"POST /v2/models/" + target + b"/infer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/octet-stream\r\n" + (b"Expect: 100-continue\r\n" if EXPECT else b"") +
            b"Inference-Header-Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (len(head), len(body))), body


async def one(port, data, out):
    t0 = time.perf_counter()
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        head, body = data
        if EXPECT:
            w.write(head)
            line = await asyncio.wait_for(r.readline(), 120)
            if b" 100 " in line:
                await r.readline()  # the blank line after the interim answer
                w.write(body)
                line = await asyncio.wait_for(r.readline(), 120)
        else:
            w.write(head + body)
            line = await asyncio.wait_for(r.readline(), 120)
        status = int(line.split()[1]) if line else "closed"
        out.append((status, time.perf_counter() - t0))
        w.close()
    except (OSError, asyncio.TimeoutError, IndexError, ValueError) as e:
        out.append((type(e).__name__, time.perf_counter() - t0))


async def warm(port, data):
    out = []
    for _ in range(3):
        await asyncio.gather(*(one(port, data, out) for _ in range(16)))


async def burst(port, data):
    out = []
    await asyncio.gather(*(one(port, data, out) for _ in range(CONNS)))
    return out


def run(name, celer, model):
    tmp = tempfile.mkdtemp(prefix="celer-overload-bench-")
    os.makedirs(os.path.join(tmp, "resnet50", "1"))
    shutil.copy(model, os.path.join(tmp, "resnet50", "1", "model.onnx"))
    port = free_port()
    proc = subprocess.Popen([celer, "serve", "--model-repository", tmp, "--http-address", "127.0.0.1",
                             "--http-port", str(port), "--grpc-port", "0", "--max-queue-size", "8", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(400):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        # warm: each worker's execution context for the model exists before "idle" is read
        asyncio.run(warm(port, request_bytes()))
        time.sleep(1)
        idle = rss_kib(proc.pid)
        peak, stop = [idle], threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kib(proc.pid))
                time.sleep(0.02)

        th = threading.Thread(target=sample)
        th.start()
        out = asyncio.run(burst(port, request_bytes(TARGET)))
        time.sleep(3)
        stop.set()
        th.join()
        after = rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
    counts = {}
    for st, _ in out:
        counts[st] = counts.get(st, 0) + 1
    lat = sorted(t for st, t in out if st in (503, 404))
    pct = (lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3) if lat else (lambda p: float("nan"))
    print(f"| {name} | {CONNS} | {counts} | {pct(0.5):.0f} | {pct(0.99):.0f} | {idle / 1024:.0f} | "
          f"{peak[0] / 1024:.0f} | {after / 1024:.0f} |", flush=True)


def main():
    model = sys.argv[1]
    print("| server | connections | answers | 503 p50 ms | 503 p99 ms | idle RSS MiB | peak RSS MiB | RSS 3 s after MiB |")
    print("|---|--:|---|--:|--:|--:|--:|--:|")
    for arg in sys.argv[2:]:
        name, celer = arg.split("=", 1)
        run(name, celer, model)


if __name__ == "__main__":
    main()
