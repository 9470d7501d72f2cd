#!/usr/bin/python3
"""End-to-end: HTTP/2 abuse against the gRPC port must not take the server down. Hand-built
frames over raw sockets (a 9-byte frame header; HPACK literals without indexing or Huffman,
written here; the server's header blocks are read with Debian's python3-hpack): rapid reset
(CVE-2023-44487), CONTINUATION floods (CVE-2024-28182), huge header lists, more streams than
SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS and PING floods nobody reads, a slow reader of large
ModelInfer answers, a ModelStreamInfer client that writes without reading, malformed frames,
and a connection flood past --max-connections. After each:
the server answered as it should (GOAWAY with its code, RST_STREAM, or the connection closed), a
fresh ServerLive call still succeeds, and its resident memory stays bounded. SIGTERM exits 0 with
no sanitizer report.

usage: test_grpc_abuse.py CELER_BIN EXAMPLE_REPOSITORY"""
import os
import socket
import struct
import sys
import threading
import time

import numpy as np
from hpack import Decoder

# under ASan, freed memory waits in a quarantine (256 MiB by default) before it is reused, which
# would read as growth here; a small one keeps the memory bounds meaningful
if "quarantine_size_mb" not in os.environ.get("ASAN_OPTIONS", ""):
    os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=16"]))

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import Server, check, summary  # noqa: E402

CELER, REPO_SRC = sys.argv[1], sys.argv[2]

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR = 0, 1, 2, 3, 6
REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 7, 8, 9, 11
SETTINGS_INITIAL_WINDOW_SIZE = 4
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SERVICE = "/inference.GRPCInferenceService/"
LIVE_ANSWER = bytes.fromhex("00000000020801")  # ServerLiveResponse{live: true}
MAX_STREAMS = 256                               # grpc.c MAX_STREAMS
MAX_CONNECTIONS = 50
MAX_BODY_TOTAL = 48 << 20  # --max-body-total-bytes: request messages all streams hold
MiB = 1 << 20


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = bytearray([first | limit]), value - limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hpack_literal(name, value):
    """A literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    name, value = name.encode(), value.encode() if isinstance(value, str) else value
    return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def request_block(path, extra=()):
    fields = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1"),
              ("content-type", "application/grpc"), ("te", "trailers")] + list(extra)
    return b"".join(hpack_literal(n, v) for n, v in fields)


def grpc_message(body):
    return b"\x00" + struct.pack(">I", len(body)) + body


def pb_varint(v):
    out = bytearray()
    while v >= 128:
        out.append(v % 128 + 128)
        v //= 128
    out.append(v)
    return bytes(out)


def pb_bytes(field, b):
    return pb_varint(field << 3 | 2) + pb_varint(len(b)) + b


def infer_request(x):
    """ModelInferRequest{model_name "identity", inputs [{x, FP32, shape}], raw_input_contents}."""
    shape = b"".join(pb_varint(d) for d in x.shape)
    tensor = pb_bytes(1, b"x") + pb_bytes(2, b"FP32") + pb_bytes(3, shape)
    return grpc_message(pb_bytes(1, b"identity") + pb_bytes(5, tensor) + pb_bytes(7, x.tobytes()))


class Conn:
    """One HTTP/2 connection spoken by hand. A thread reads frames (unless `reader` is False), decodes
    header blocks, answers SETTINGS with an ACK (unless `ack` is False), and keeps per stream what
    came back. Sending respects the server's flow-control windows."""

    def __init__(self, port, settings=(), reader=True, ack=True, rcvbuf=None, preface=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:  # set before connect: the window the kernel advertises follows it
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.ack = ack
        self.send_lock = threading.Lock()  # the reader's ACKs must not land inside our frames
        self.decoder = Decoder()
        self.lock = threading.Condition()
        self.streams = {}    # id -> {"headers": [...], "data": b"", "trailers": [...], "rst": code, "end": bool}
        self.goaway = None   # (last stream id, code)
        self.closed = False  # EOF or reset read
        self.server_settings_seen = False
        self.send_conn_window = 65535
        self.send_initial_window = 65535
        self.send_windows = {}
        self.block = None    # (stream id, bytes so far, end_stream) of a header block in CONTINUATIONs
        if preface:
            self.send(PREFACE + frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in settings)))
        self.thread = None
        if reader:
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()

    def send(self, data):
        with self.send_lock:
            self.sock.sendall(data)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self.thread:
            self.thread.join(5)

    def _stream(self, sid):
        return self.streams.setdefault(sid, {"headers": None, "data": b"", "trailers": None, "rst": None,
                                             "end": False})

    def _read(self):
        buf = b""
        try:
            while True:
                while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
                    chunk = self.sock.recv(1 << 16)
                    if not chunk:
                        raise ConnectionResetError
                    buf += chunk
                n = int.from_bytes(buf[:3], "big")
                ftype, flags, sid = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                payload, buf = buf[9:9 + n], buf[9 + n:]
                with self.lock:
                    self._on_frame(ftype, flags, sid, payload)
                    self.lock.notify_all()
        except (OSError, ValueError):
            pass
        with self.lock:
            self.closed = True
            self.lock.notify_all()

    def _on_frame(self, ftype, flags, sid, payload):
        if ftype == SETTINGS and not flags & ACK:
            for k in range(0, len(payload), 6):
                ident, value = struct.unpack(">HI", payload[k:k + 6])
                if ident == SETTINGS_INITIAL_WINDOW_SIZE:
                    for s in self.send_windows:
                        self.send_windows[s] += value - self.send_initial_window
                    self.send_initial_window = value
            self.server_settings_seen = True
            if self.ack:
                self.send(frame(SETTINGS, ACK, 0))
        elif ftype == GOAWAY:
            self.goaway = struct.unpack(">II", payload[:8])
        elif ftype == RST_STREAM:
            self._stream(sid)["rst"] = struct.unpack(">I", payload[:4])[0]
        elif ftype == WINDOW_UPDATE:
            inc = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
            if sid == 0:
                self.send_conn_window += inc
            else:
                self.send_windows[sid] = self.send_windows.get(sid, self.send_initial_window) + inc
        elif ftype == DATA:
            s = self._stream(sid)
            s["data"] += payload[1 + payload[0]:] if flags & 0x8 else payload
            s["end"] |= bool(flags & END_STREAM)
        elif ftype in (HEADERS, CONTINUATION):
            if ftype == HEADERS:
                if flags & 0x8:
                    payload = payload[1:len(payload) - payload[0]]
                if flags & 0x20:
                    payload = payload[5:]
                self.block = (sid, b"", bool(flags & END_STREAM))
            sid0, block, end = self.block
            block += payload
            self.block = (sid0, block, end)
            if flags & END_HEADERS:
                fields = self.decoder.decode(block, raw=False)
                s = self._stream(sid0)
                s["trailers" if s["headers"] is not None else "headers"] = fields
                s["end"] |= end

    def wait(self, cond, timeout=10):
        """Waits until cond() (called under the lock) is true; returns whether it became true."""
        with self.lock:
            return self.lock.wait_for(cond, timeout)

    def _answered(self, sid):
        s = self.streams.get(sid)
        return s is not None and (s["end"] or s["rst"] is not None)

    def send_data(self, sid, data, end_stream=True, max_frame=16384):
        """DATA frames within the server's windows (waits for its WINDOW_UPDATEs)."""
        off = 0
        while True:
            with self.lock:
                self.lock.wait_for(lambda: self.closed or self._answered(sid) or (
                    self.send_conn_window > 0 and self.send_windows.setdefault(sid, self.send_initial_window) > 0)
                    or off == len(data), 10)
                if self.closed:
                    raise ConnectionResetError("the server closed the connection")
                if self._answered(sid):  # answered early (an error) and reset: the rest is not wanted
                    return
                n = min(len(data) - off, max_frame, self.send_conn_window, self.send_windows.get(sid, self.send_initial_window))
                if n <= 0 and off < len(data):
                    raise TimeoutError("no window to send in")
                self.send_conn_window -= n
                self.send_windows[sid] = self.send_windows.get(sid, self.send_initial_window) - n
            last = off + n == len(data)
            self.send(frame(DATA, END_STREAM if last and end_stream else 0, sid, data[off:off + n]))
            off += n
            if last:
                return

    def call(self, sid, path, body, extra=()):
        """Sends one unary call on stream `sid` (HEADERS, then the message in DATA with END_STREAM)."""
        self.send(frame(HEADERS, END_HEADERS, sid, request_block(path, extra)))
        self.send_data(sid, body)

    def answer(self, sid, timeout=10):
        """(grpc-status or None, response bytes, RST_STREAM code or None) of stream `sid`, once it ended."""
        self.wait(lambda: self.closed or (sid in self.streams and (self.streams[sid]["end"]
                                                                   or self.streams[sid]["rst"] is not None)), timeout)
        s = self.streams.get(sid, {})
        fields = dict((s.get("trailers") or []) + (s.get("headers") or []))
        status = fields.get("grpc-status")
        return (None if status is None else int(status)), s.get("data", b""), s.get("rst")

    def ended(self, timeout=5):
        """Whether the server ended the connection (GOAWAY, or EOF/reset) within `timeout`."""
        return self.wait(lambda: self.closed or self.goaway is not None, timeout)


def live_ok(port, conn=None, sid=1):
    """A well-formed ServerLive call (on a fresh connection unless `conn`): live=true, grpc-status 0.
    False when the port refuses the connection (the gRPC listener starts just after HTTP's)."""
    try:
        c = conn or Conn(port)
    except OSError:
        return False
    try:
        c.call(sid, SERVICE + "ServerLive", grpc_message(b""))
        status, data, rst = c.answer(sid)
        return status == 0 and data == LIVE_ANSWER and rst is None
    except OSError:
        return False
    finally:
        if conn is None:
            c.close()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def inference_count(srv):
    _, doc, _ = srv.json("GET", "/v2/models/identity/stats")
    return sum(m.get("inference_count", 0) for m in doc["model_stats"])


def send_until_closed(c, chunks, seconds):
    """Writes the chunks in turn, without reading, until the server closes the connection, the
    chunks run out or `seconds` pass; returns how many were written."""
    deadline, n = time.time() + seconds, 0
    c.sock.settimeout(2)
    try:
        for chunk in chunks:
            if time.time() > deadline:
                break
            c.send(chunk)
            n += 1
    except OSError:
        pass
    return n


def closed_by_server(c, seconds=5):
    """Reads (and drops) what the server sent until EOF or a reset; True if that came in time."""
    if c.thread:
        return c.wait(lambda: c.closed, seconds)
    deadline = time.time() + seconds
    c.sock.settimeout(0.5)
    while time.time() < deadline:
        try:
            if not c.sock.recv(1 << 16):
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


class Memory:
    """The server's VmRSS against a bound above the one measured after warming up."""

    def __init__(self, srv):
        self.pid, self.base = srv.proc.pid, rss_kib(srv.proc.pid)
        # ThreadSanitizer's shadow of every byte touched counts in VmRSS too (scripts/test.sh sets
        # TSAN_OPTIONS when it runs this test on build-tsan)
        self.factor = 3 if "TSAN_OPTIONS" in os.environ else 1
        print(f"server VmRSS after warm-up: {self.base // 1024} MiB", flush=True)

    def check(self, what, slack_mib):
        slack_mib *= self.factor
        rss = rss_kib(self.pid)
        check(f"{what}: memory bounded (VmRSS {rss // 1024} MiB, warm-up {self.base // 1024} MiB, "
              f"at most +{slack_mib} MiB)", 0 < rss <= self.base + slack_mib * 1024, rss)


def test_rapid_reset(srv, mem):
    port = srv.grpc_port
    n = 10000
    # HEADERS that open a stream, then RST_STREAM at once: nghttp2 counts the resets (burst 1000,
    # then 33/s) and answers GOAWAY past them
    c = Conn(port)
    c.wait(lambda: c.server_settings_seen)
    block = request_block(SERVICE + "ServerLive")
    burst = b"".join(frame(HEADERS, END_HEADERS, 2 * k + 1, block) + frame(RST_STREAM, 0, 2 * k + 1,
                                                                           struct.pack(">I", CANCEL))
                     for k in range(n))
    sent = send_until_closed(c, [burst[k:k + 65536] for k in range(0, len(burst), 65536)], 20)
    ended = c.ended(10)
    check(f"rapid reset: {n} HEADERS+RST_STREAM end the connection (GOAWAY {c.goaway})",
          ended and (c.goaway is None or c.goaway[1] in (INTERNAL_ERROR, ENHANCE_YOUR_CALM)), (sent, c.goaway, c.closed))
    c.close()
    check("rapid reset: a fresh ServerLive call succeeds", live_ok(port))
    mem.check("rapid reset", 64)

    # the same with ModelInfer messages: the server must not run all of them
    before = inference_count(srv)
    c = Conn(port)
    c.wait(lambda: c.server_settings_seen)
    body = infer_request(np.arange(4, dtype=np.float32).reshape(1, 4))  # one inference per call
    block = request_block(SERVICE + "ModelInfer")
    burst = b"".join(frame(HEADERS, END_HEADERS, 2 * k + 1, block) + frame(DATA, END_STREAM, 2 * k + 1, body)
                     + frame(RST_STREAM, 0, 2 * k + 1, struct.pack(">I", CANCEL)) for k in range(n))
    sent = send_until_closed(c, [burst[k:k + 65536] for k in range(0, len(burst), 65536)], 20)
    ended = c.ended(10)
    c.close()
    time.sleep(0.5)  # calls a worker held finish
    ran = inference_count(srv) - before
    # nghttp2 takes 1000 resets at once, and new streams until its GOAWAY is sent: at most one read
    # turn (64 KiB, some 300 calls) later
    check(f"rapid reset with ModelInfer: the connection ended (GOAWAY {c.goaway}) and {ran} of {n} calls ran",
          ended and ran <= 2000, (sent, c.goaway, ran))
    check("rapid reset with ModelInfer: a fresh ServerLive call succeeds", live_ok(port))
    mem.check("rapid reset with ModelInfer", 64)


def test_continuation_flood(srv, mem):
    port = srv.grpc_port
    for what, piece in (("header fields", hpack_literal("x-flood", "a" * 1000)), ("empty frames", b"")):
        c = Conn(port)
        c.wait(lambda: c.server_settings_seen)
        first = frame(HEADERS, 0, 1, request_block(SERVICE + "ServerLive"))  # no END_HEADERS
        cont = frame(CONTINUATION, 0, 1, piece)
        t0 = time.time()
        sent = send_until_closed(c, [first] + [cont] * 200000, 10)
        ended = closed_by_server(c, 5)
        took = time.time() - t0
        check(f"CONTINUATION flood ({what}): connection ended after {sent - 1} frames in {took:.2f} s "
              f"(GOAWAY {c.goaway})", ended and sent < 200001 and took < 8,
              (sent, c.goaway, c.closed, took))
        c.close()
        check(f"CONTINUATION flood ({what}): a fresh ServerLive call succeeds", live_ok(port))
        mem.check(f"CONTINUATION flood ({what})", 64)


def split_block(sid, block, end_stream=False, max_frame=16384):
    """A header block as HEADERS + CONTINUATION frames of at most max_frame bytes."""
    pieces = [block[k:k + max_frame] for k in range(0, len(block), max_frame)] or [b""]
    out = b""
    for k, p in enumerate(pieces):
        flags = (END_HEADERS if k == len(pieces) - 1 else 0) | (END_STREAM if k == 0 and end_stream else 0)
        out += frame(HEADERS if k == 0 else CONTINUATION, flags, sid, p)
    return out


def test_huge_headers(srv, mem):
    port = srv.grpc_port
    cases = (("one header value of 60 KiB", [("x-big", "v" * (60 << 10))]),
             ("400 headers summing 32 KiB", [(f"x-h-{k:03d}", "v" * 40) for k in range(400)]))
    for what, extra in cases:
        c = Conn(port)
        c.wait(lambda: c.server_settings_seen)
        c.send(split_block(1, request_block(SERVICE + "ServerLive", extra)))
        try:
            c.send_data(1, grpc_message(b""))
        except OSError:
            pass
        status, data, rst = c.answer(1)
        check(f"{what}: the stream is reset or refused (RST_STREAM {rst}, grpc-status {status})",
              rst is not None or (status not in (None, 0)), (status, data, rst, c.goaway))
        check(f"{what}: the same connection still serves ServerLive", live_ok(port, c, 3), (c.goaway, c.closed))
        c.close()
        check(f"{what}: a fresh ServerLive call succeeds", live_ok(port))
        mem.check(what, 64)


def test_max_streams(srv, mem):
    port = srv.grpc_port
    n = MAX_STREAMS + 44
    block = request_block(SERVICE + "ServerLive")
    opens = b"".join(frame(HEADERS, END_HEADERS, 2 * k + 1, block) for k in range(n))  # open, no END_STREAM
    extra = [2 * k + 1 for k in range(MAX_STREAMS, n)]
    # before the client acknowledged the server's SETTINGS (it may not have seen the limit yet):
    # the streams past it are refused one by one, the others answered
    c = Conn(port, ack=False)
    c.send(opens)
    c.wait(lambda: c.closed or all(c.streams.get(s, {}).get("rst") is not None for s in extra), 10)
    codes = {c.streams.get(s, {}).get("rst") for s in extra}
    check(f"{n} streams at once: the {len(extra)} past {MAX_STREAMS} are refused (RST_STREAM {codes})",
          codes == {REFUSED_STREAM}, (codes, c.goaway))
    try:
        for k in range(MAX_STREAMS):
            c.send_data(2 * k + 1, grpc_message(b""))
    except OSError:
        pass
    answers = [c.answer(2 * k + 1) for k in range(MAX_STREAMS)]
    good = sum(a == (0, LIVE_ANSWER, None) for a in answers)
    check(f"{n} streams at once: the first {MAX_STREAMS} are answered ({good})", good == MAX_STREAMS,
          [a for a in answers if a != (0, LIVE_ANSWER, None)][:3])
    c.close()
    # after it acknowledged them: a connection error (RFC 9113 5.1.2 allows PROTOCOL_ERROR or
    # REFUSED_STREAM; nghttp2 ends the connection)
    c = Conn(port)
    c.wait(lambda: c.server_settings_seen)
    time.sleep(0.1)  # our SETTINGS ACK reaches the server first
    c.send(opens)
    ended = c.ended()
    codes = {c.streams.get(s, {}).get("rst") for s in extra}
    check(f"{n} streams at once after SETTINGS ACK: GOAWAY {c.goaway} or the extra ones refused ({codes})",
          (ended and c.goaway is not None and c.goaway[1] == PROTOCOL_ERROR and c.goaway[0] <= 2 * MAX_STREAMS - 1)
          or codes == {REFUSED_STREAM}, (c.goaway, codes))
    c.close()
    check("too many streams: a fresh ServerLive call succeeds", live_ok(port))
    mem.check("too many streams", 64)


def test_ack_floods(srv, mem):
    port = srv.grpc_port
    floods = (("SETTINGS", frame(SETTINGS, 0, 0)), ("PING", frame(PING, 0, 0, b"12345678")))
    for what, f in floods:
        # nobody reads: a small receive buffer stops the server's ACKs at once, which nghttp2 then
        # queues until its cap on outbound ACKs (1000)
        c = Conn(port, reader=False, rcvbuf=4096)
        t0 = time.time()
        sent = send_until_closed(c, [f * 1000] * 1000, 10)
        ended = closed_by_server(c, 5)
        took = time.time() - t0
        check(f"{what} flood without reading: connection ended after {sent * 1000} frames in {took:.2f} s",
              ended and sent < 1000, (sent, took))
        c.close()
        check(f"{what} flood: a fresh ServerLive call succeeds", live_ok(port))
        mem.check(f"{what} flood", 64)
    # a SETTINGS frame with more entries than nghttp2 takes (32)
    c = Conn(port)
    c.send(frame(SETTINGS, 0, 0, struct.pack(">HI", 0x100, 1) * 100))
    check(f"a SETTINGS frame of 100 entries: GOAWAY {c.goaway}", c.ended() and (c.goaway is None or c.goaway[1] ==
                                                                                ENHANCE_YOUR_CALM), (c.goaway, c.closed))
    c.close()


def test_slow_reader(srv, mem):
    port = srv.grpc_port
    rows = 4 * MiB // 16  # FP32 [rows, 4]: 4 MiB in, 4 MiB out
    x = np.ones((rows, 4), dtype=np.float32)
    body = infer_request(x)
    n = 16  # more than --max-body-total-bytes holds at once
    # the client grants 16 bytes per stream and never a WINDOW_UPDATE: every answer stays on the server
    slow = Conn(port, settings=[(SETTINGS_INITIAL_WINDOW_SIZE, 16)])
    slow.wait(lambda: slow.server_settings_seen)
    for rnd in range(2):
        sids = [2 * (rnd * n + k) + 1 for k in range(n)]
        t0 = time.time()
        for s in sids:
            slow.call(s, SERVICE + "ModelInfer", body)
        # the answers are computed, then stuck: wait until each stream got its response HEADERS
        slow.wait(lambda: all(slow.streams.get(s, {}).get("headers") is not None for s in sids), 30)
        time.sleep(0.3)
        got = sum(len(slow.streams.get(s, {}).get("data", b"")) for s in sids)
        statuses = [dict(slow.streams.get(s, {}).get("headers") or []).get("grpc-status") for s in sids]
        waiting, refused = statuses.count(None), statuses.count("14")
        print(f"slow reader round {rnd + 1}: {n} calls of 4 MiB sent in {time.time() - t0:.1f} s; {waiting} answers "
              f"waiting, {refused} refused (UNAVAILABLE); {got} answer bytes let through", flush=True)
        # a call is either held (its answer computed, waiting for the window) or refused because
        # the request messages being received would pass --max-body-total-bytes
        check(f"slow reader, round {rnd + 1}: every call held or UNAVAILABLE", waiting + refused == n and waiting >= 1,
              statuses)
        # what a held call keeps at most: its request and its answer
        mem.check(f"slow reader, round {rnd + 1}: {waiting} stuck 4 MiB calls", waiting * 8 + 48)
        check(f"slow reader, round {rnd + 1}: the answers wait for the window ({got} bytes sent)",
              got <= 16 * n, got)
        # other connections are served meanwhile
        check(f"slow reader, round {rnd + 1}: a fresh ServerLive call succeeds", live_ok(port))
        other = Conn(port)
        small = np.arange(8, dtype=np.float32).reshape(2, 4)
        other.call(1, SERVICE + "ModelInfer", infer_request(small))
        status, data, rst = other.answer(1, 30)
        check(f"slow reader, round {rnd + 1}: a small ModelInfer on another connection is answered",
              status == 0 and small.tobytes() in data, (status, len(data), rst))
        other.close()
        # the stuck calls are cancelled: their memory goes back, and the next round gets it
        for s in sids:
            slow.send(frame(RST_STREAM, 0, s, struct.pack(">I", CANCEL)))
        time.sleep(0.3)
    slow.close()
    time.sleep(0.3)
    check("slow reader: a fresh ServerLive call succeeds after it left", live_ok(port))


def grpc_messages(data):
    """The gRPC messages in a stream's DATA bytes (complete ones)."""
    out, k = [], 0
    while k + 5 <= len(data):
        n = struct.unpack(">I", data[k + 1:k + 5])[0]
        if k + 5 + n > len(data):
            break
        out.append(data[k + 5:k + 5 + n])
        k += 5 + n
    return out


def test_stream_slow_reader(srv, mem):
    """ModelStreamInfer with a client that writes requests and does not read the answers (it grants
    the server 16 bytes of window): the server stops giving back window once the stream holds 128
    calls, so the writer stalls after about its 1 MiB window instead of the server buffering every
    request; once the client opens its window, every request is answered and the stream ends OK."""
    port = srv.grpc_port
    x = np.ones((1, 1024), dtype=np.float32)  # 4 KiB per request
    n = 1000                                   # 4 MiB in all: four times the stream's window
    body = infer_request(x)
    c = Conn(port, settings=[(SETTINGS_INITIAL_WINDOW_SIZE, 16)])
    c.wait(lambda: c.server_settings_seen)
    sid = 1
    c.send(frame(HEADERS, END_HEADERS, sid, request_block(SERVICE + "ModelStreamInfer")))
    sent = [0]

    def writer():
        try:
            for _ in range(n):
                c.send_data(sid, body, end_stream=False)
                sent[0] += 1
            c.send(frame(DATA, END_STREAM, sid))
        except (OSError, TimeoutError):
            pass  # the stall this test expects (send_data gives up after 10 s without window)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    time.sleep(2.0)
    stalled = sent[0]
    print(f"stream slow reader: {stalled} of {n} requests written before the server stopped giving window",
          flush=True)
    check("stream slow reader: the writer stalls (the server holds back its window)", 128 <= stalled < n // 2, stalled)
    mem.check("stream slow reader: stalled", 64)
    check("stream slow reader: a fresh ServerLive call succeeds meanwhile", live_ok(port))
    # the client reads again: a large window for the stream and the connection
    c.send(frame(SETTINGS, 0, 0, struct.pack(">HI", SETTINGS_INITIAL_WINDOW_SIZE, 1 << 30)) +
           frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 30)))
    t.join(30)
    if sent[0] < n:  # the writer gave up while stalled: write the rest now
        for _ in range(n - sent[0]):
            c.send_data(sid, body, end_stream=False)
        c.send(frame(DATA, END_STREAM, sid))
    status, data, rst = c.answer(sid, 60)
    answers = grpc_messages(data)
    check("stream slow reader: once it reads, every request is answered and the stream ends OK",
          status == 0 and len(answers) == n and rst is None, (status, len(answers), rst))
    c.close()


def test_endless_writer(srv, mem):
    """A client that writes without pause (empty frames of an unknown type, which HTTP/2 says to
    ignore, and PRIORITY frames: cheap for the server, yet more than it reads per turn) must not
    hold the IO thread: other connections are answered meanwhile."""
    port = srv.grpc_port
    c = Conn(port)
    c.wait(lambda: c.server_settings_seen)
    chunk = (frame(0xEE, 0, 0) + frame(PRIORITY, 0, 3, struct.pack(">IB", 1, 15))) * 4096
    stop = threading.Event()
    sent = [0]

    def flood():
        try:
            while not stop.is_set():
                c.send(chunk)
                sent[0] += len(chunk)
        except OSError:
            pass

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    time.sleep(0.3)  # the server's socket buffer is full
    waits = []
    end = time.time() + 2
    while time.time() < end:  # calls on fresh connections during 2 s of flooding
        t0 = time.time()
        other = Conn(port)
        other.sock.settimeout(5)
        ok = live_ok(port, other)
        other.close()
        waits.append((ok, time.time() - t0))
        if not ok:  # held up: the rest would wait as long
            break
    stop.set()
    t.join(10)
    c.close()
    worst = max(w for _, w in waits)
    check(f"an endless writer ({sent[0] >> 20} MiB sent): other connections answered meanwhile, the slowest in "
          f"{worst * 1000:.0f} ms", all(ok for ok, _ in waits) and worst < 1.0, waits)
    mem.check("an endless writer", 64)


def test_malformed(srv, mem):
    port = srv.grpc_port
    cases = (
        ("DATA on stream 0", frame(DATA, 0, 0, b"x" * 10), {PROTOCOL_ERROR}),
        ("a frame over SETTINGS_MAX_FRAME_SIZE", frame(DATA, 0, 1, b"x" * 20000), {FRAME_SIZE_ERROR}),
        ("a header block over SETTINGS_MAX_FRAME_SIZE", frame(HEADERS, END_HEADERS, 1, request_block(
            SERVICE + "ServerLive", [("x-big", "v" * 20000)])), {FRAME_SIZE_ERROR}),
        ("HEADERS on an even stream id", frame(HEADERS, END_HEADERS, 2, request_block(SERVICE + "ServerLive")),
         {PROTOCOL_ERROR}),
        ("a CONTINUATION without HEADERS", frame(CONTINUATION, END_HEADERS, 1, b""), {PROTOCOL_ERROR}),
        ("a header block that is not HPACK", frame(HEADERS, END_HEADERS, 1, b"\xff" * 64), {COMPRESSION_ERROR}),
        ("a WINDOW_UPDATE of 0", frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0)), {PROTOCOL_ERROR}),
    )
    for what, f, codes in cases:
        c = Conn(port)
        c.wait(lambda: c.server_settings_seen)
        try:
            c.send(f)
        except OSError:
            pass
        ended = c.ended()
        code = c.goaway[1] if c.goaway else None
        check(f"{what}: GOAWAY {code} (expected {sorted(codes)})", ended and code in codes, (c.goaway, c.closed))
        c.close()
    # garbage where the client's SETTINGS must come, and instead of the preface: no GOAWAY needed,
    # the connection must end
    for what, data in (("garbage after the preface", PREFACE + os.urandom(4096)),
                       ("garbage instead of the preface", b"GET / HTTP/1.1\r\n\r\n" + os.urandom(1024))):
        c = Conn(port, preface=False)
        try:
            c.send(data)
        except OSError:
            pass
        ended = c.wait(lambda: c.closed, 5)
        code = c.goaway[1] if c.goaway else None
        check(f"{what}: the connection is closed (GOAWAY {code})", ended and code in (None, PROTOCOL_ERROR,
                                                                                      FRAME_SIZE_ERROR), (c.goaway,))
        c.close()
    check("malformed frames: a fresh ServerLive call succeeds", live_ok(port))
    mem.check("malformed frames", 64)


def test_connection_flood(srv, mem):
    port = srv.grpc_port
    conns = []
    for k in range(MAX_CONNECTIONS):
        c = Conn(port)
        conns.append(c)
    # each of them answered: the server took them all
    served = sum(live_ok(port, c) for c in conns)
    check(f"{MAX_CONNECTIONS} connections (--max-connections): all served ({served})", served == MAX_CONNECTIONS)
    refused = 0
    for _ in range(10):
        c = Conn(port)
        refused += c.wait(lambda: c.closed, 5) and not c.server_settings_seen
        c.close()
    check(f"past --max-connections: {refused} of 10 more connections closed at once", refused == 10)
    check("past --max-connections: live connections still work",
          live_ok(port, conns[0], 3) and live_ok(port, conns[-1], 3))
    for c in conns[:5]:
        c.close()
    ok = False
    deadline = time.time() + 5
    while not ok and time.time() < deadline:  # the server sees the EOFs on its next turn
        ok = live_ok(port)
        time.sleep(0.05)
    check("after some connections left: a new one is served", ok)
    for c in conns[5:]:
        c.close()
    mem.check("connection flood", 64)


def main():
    import test_server
    grpc_port = test_server.free_port()
    # identity (no config) unbatched: one call may carry a 4 MiB tensor
    srv = Server(REPO_SRC, "--grpc-port", str(grpc_port), "--grpc-address", "127.0.0.1",
                 "--max-connections", str(MAX_CONNECTIONS), "--default-max-batch", "0",
                 "--max-body-total-bytes", str(MAX_BODY_TOTAL), "--max-body-bytes", str(8 << 20))
    srv.grpc_port = grpc_port
    t0 = time.time()
    try:
        deadline = time.time() + 20
        while not live_ok(grpc_port) and time.time() < deadline:
            time.sleep(0.05)
        check("a ServerLive call by hand-built frames succeeds", live_ok(grpc_port))
        for _ in range(3):  # warm up: the first ModelInfer allocates what later ones reuse
            w = Conn(grpc_port)
            w.call(1, SERVICE + "ModelInfer", infer_request(np.ones((1024, 4), dtype=np.float32)))
            warm = w.answer(1, 30)
            w.close()
        check("a ModelInfer by hand-built frames succeeds", warm[0] == 0 and len(warm[1]) > 16384, warm[0])
        mem = Memory(srv)
        for test in (test_malformed, test_huge_headers, test_max_streams, test_continuation_flood, test_ack_floods,
                     test_rapid_reset, test_endless_writer, test_slow_reader, test_stream_slow_reader,
                     test_connection_flood):
            t = time.time()
            try:
                test(srv, mem)
            except Exception as e:  # a hang or a crash shows here; the rest still runs
                check(f"{test.__name__} ran to its end", False, repr(e))
            check(f"{test.__name__}: the server is still running", srv.proc.poll() is None, srv.proc.returncode)
            print(f"  ({test.__name__}: {time.time() - t:.1f} s)", flush=True)
            if srv.proc.poll() is not None:
                break
    finally:
        code = srv.stop()
        out = srv.output()
        check("SIGTERM: exit 0", code == 0, (code, out[-3000:]))
        check("no sanitizer report", not any(k in out for k in ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                                                                "ThreadSanitizer")), out[-3000:])
    print(f"total {time.time() - t0:.1f} s")
    return summary()


if __name__ == "__main__":
    sys.exit(main())
