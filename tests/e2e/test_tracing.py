#!/usr/bin/python3
"""Tracing end to end: W3C trace context on HTTP and gRPC, the spans celer exports over OTLP/HTTP
to a small OTLP receiver of our own on loopback (Python's http.server: it decodes protobuf with
stubs generated at test time from the OTLP .proto files under tests/otlp, reads JSON, checks the
OTLP rules and can answer 503 or be down), sampling, the exporter's retries and drops, Triton's
trace settings API on both protocols, the protocol's selection (flag and OTEL_* variables), and a
field-by-field comparison with what the official exporters (npm, pinned, via node_cache:
@opentelemetry/exporter-trace-otlp-proto and -http) send to the same receiver.

usage: test_tracing.py CELER_BIN EXAMPLE_REPOSITORY"""
import http.client
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc_stubs  # noqa: E402
from node_cache import node_modules  # noqa: E402
from test_server import Server, check, check_stopped, free_port, summary  # noqa: E402

CELER, REPO_SRC = sys.argv[1], sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
OTEL = ["@opentelemetry/exporter-trace-otlp-http@0.223.1", "@opentelemetry/exporter-trace-otlp-proto@0.223.1",
        "@opentelemetry/sdk-trace-base@2.12.1", "@opentelemetry/resources@2.12.1", "@opentelemetry/api@1.9.0"]
OTLP_PROTO = os.path.join(HERE, "..", "otlp")
OTLP_FILES = ["opentelemetry/proto/collector/trace/v1/trace_service.proto", "opentelemetry/proto/trace/v1/trace.proto",
              "opentelemetry/proto/common/v1/common.proto", "opentelemetry/proto/resource/v1/resource.proto"]
PB = None  # the generated trace_service_pb2 module (load_otlp)


def load_otlp(tmp):
    """Generates the OTLP stubs into tmp with grpc_tools.protoc (python3-grpc-tools) and imports them
    (python3-protobuf); False (a failed check) when that fails."""
    global PB
    out = os.path.join(tmp, "otlp")
    os.makedirs(out, exist_ok=True)
    r = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", OTLP_PROTO, "--python_out=" + out] + OTLP_FILES,
                       capture_output=True, text=True, timeout=120)
    check("OTLP stubs generated from tests/otlp with grpc_tools.protoc", r.returncode == 0, r.stderr[-1000:])
    if r.returncode:
        return False
    sys.path.insert(0, out)
    import importlib
    PB = importlib.import_module("opentelemetry.proto.collector.trace.v1.trace_service_pb2")
    return True


def proto_to_doc(msg):
    """An ExportTraceServiceRequest as OTLP/JSON has it (protobuf's JSON mapping with hex ids, integer
    enums, 64-bit integers as decimal strings), so that every check reads both encodings alike."""
    import base64
    from google.protobuf import json_format
    doc = json_format.MessageToDict(msg, use_integers_for_enums=True)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                for x in [s] + s.get("links", []):
                    for k in ("traceId", "spanId", "parentSpanId"):
                        if k in x:
                            x[k] = base64.b64decode(x[k]).hex()
                if "status" in s:
                    s["status"].setdefault("code", 0)  # UNSET, left out as proto3 does
    return doc
PARENT_TRACE, PARENT_SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
SAMPLED = f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"
HEX = re.compile(r"^[0-9a-f]+$")
NANOS = re.compile(r"^[0-9]{19}$")
EVENTS = ["queued", "batch formed", "compute start", "compute end", "response sent"]


class Receiver:
    """An OTLP/HTTP receiver on loopback: keeps every POST (path, headers, decoded JSON) and answers
    with the statuses queued in `answers` first (then 200)."""

    def __init__(self):
        self.posts, self.answers, self.lock, self.undecodable = [], [], threading.Lock(), 0
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def read_body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        n = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if n == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(n)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def do_POST(self):
                body = self.read_body()
                ctype = self.headers.get("Content-Type", "")
                with rec.lock:
                    status = rec.answers.pop(0) if rec.answers else 200
                    msg, doc = None, None
                    try:
                        if ctype == "application/x-protobuf":
                            msg = PB.ExportTraceServiceRequest()
                            msg.ParseFromString(body)
                            doc = proto_to_doc(msg)
                        else:
                            doc = json.loads(body)
                    except Exception:  # noqa: BLE001 (a body that does not decode is kept and counted)
                        msg = doc = None
                        rec.undecodable += 1
                    rec.posts.append({"path": self.path, "headers": dict(self.headers), "doc": doc, "msg": msg,
                                      "body": body, "status": status})
                out = b"{}"
                self.send_response(status)
                if status != 200:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1/traces"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def spans(self):
        """Every span accepted so far, with its resource attached as "_resource"."""
        out = []
        with self.lock:
            for p in self.posts:
                if p["status"] != 200 or not p["doc"]:
                    continue
                for rs in p["doc"].get("resourceSpans", []):
                    for ss in rs.get("scopeSpans", []):
                        for s in ss.get("spans", []):
                            out.append(dict(s, _resource=rs.get("resource"), _scope=ss.get("scope")))
        return out

    def wait_for(self, pred, timeout=15):
        """The spans once pred(spans) holds, or the last ones after timeout."""
        deadline = time.time() + timeout
        while True:
            s = self.spans()
            if pred(s) or time.time() > deadline:
                return s
            time.sleep(0.1)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def infer_doc(rows=1):
    return {"inputs": [{"name": "features", "shape": [rows, 16], "datatype": "FP32", "data": [0.25] * (16 * rows)}]}


def route_doc():
    return {"inputs": [{"name": "segment", "shape": [1], "datatype": "BYTES", "data": ["premium"]},
                       {"name": "features", "shape": [1, 16], "datatype": "FP32", "data": [0.5] * 16}]}


def post(srv, path, doc, headers=None):
    status, body, hdrs = srv.request("POST", path, json.dumps(doc).encode(),
                                     dict({"Content-Type": "application/json"}, **(headers or {})))
    return status, body, {k.lower(): v for k, v in hdrs.items()}


def attrs(span):
    return {a["key"]: list(a["value"].values())[0] for a in span.get("attributes", [])}


def metric(srv, name):
    _, body, _ = srv.request("GET", "/metrics")
    m = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", body.decode(), re.M)
    return float(m.group(1)) if m else None


def check_span_shape(span, what):
    """The OTLP JSON rules: hex ids of the right length, 19-digit decimal-string times, integer kind
    and flags, status, events and links shaped as protobuf's JSON mapping says."""
    ok = (HEX.match(span.get("traceId", "")) and len(span["traceId"]) == 32 and HEX.match(span.get("spanId", ""))
          and len(span["spanId"]) == 16 and ("parentSpanId" not in span or (HEX.match(span["parentSpanId"])
                                                                             and len(span["parentSpanId"]) == 16))
          and isinstance(span.get("kind"), int) and isinstance(span.get("flags"), int)
          and NANOS.match(span.get("startTimeUnixNano", "")) and NANOS.match(span.get("endTimeUnixNano", ""))
          and int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"])
          and isinstance(span.get("status", {}).get("code"), int)
          and all(NANOS.match(e.get("timeUnixNano", "")) and isinstance(e.get("name"), str) for e in span.get("events", []))
          and all(len(lk["traceId"]) == 32 and len(lk["spanId"]) == 16 for lk in span.get("links", [])))
    check(f"{what}: OTLP JSON shape (hex ids, decimal-string nanoseconds, integer kind)", ok, json.dumps(span)[:1500])


def test_http_propagation(srv, rec):
    status, _, h = post(srv, "/v2/models/mlp/infer", infer_doc(), {"traceparent": SAMPLED, "tracestate": "vendor=x1,b=2"})
    tp = h.get("traceparent", "")
    parts = tp.split("-")
    check("HTTP: a sampled traceparent is answered 200 with a traceparent of the same trace and a span id of "
          "its own", status == 200 and len(tp) == 55 and parts[0] == "00" and parts[1] == PARENT_TRACE
          and parts[2] != PARENT_SPAN and parts[3] == "01", f"{status} {h}")
    check("HTTP: tracestate passed back unchanged", h.get("tracestate") == "vendor=x1,b=2", h)
    span_id = parts[2] if len(parts) == 4 else ""
    spans = rec.wait_for(lambda s: any(x["spanId"] == span_id for x in s))
    server = [x for x in spans if x["spanId"] == span_id]
    check("HTTP: the request's span arrives at the receiver", len(server) == 1, len(spans))
    if not server:
        return
    s = server[0]
    check_span_shape(s, "HTTP request span")
    check("HTTP: span keeps the propagated trace id and parent, kind SERVER (2), flags sampled and remote parent",
          s["traceId"] == PARENT_TRACE and s.get("parentSpanId") == PARENT_SPAN and s["kind"] == 2
          and s["flags"] == 0x301, s)
    check("HTTP: span carries the tracestate", s.get("traceState") == "vendor=x1,b=2", s.get("traceState"))
    names = [e["name"] for e in s["events"]]
    check("HTTP: events queued, batch formed, compute start, compute end, response sent in order",
          names == EVENTS, names)
    times = [int(e["timeUnixNano"]) for e in s["events"]]
    check("HTTP: event times within the span and in order", times == sorted(times) and
          int(s["startTimeUnixNano"]) <= times[0] and times[-1] <= int(s["endTimeUnixNano"]), times)
    bf = [e for e in s["events"] if e["name"] == "batch formed"]
    bsize = {a["key"]: a["value"] for a in bf[0]["attributes"]} if bf else {}
    check("HTTP: batch formed carries celer.batch_size", "celer.batch_size" in bsize and
          int(bsize["celer.batch_size"]["intValue"]) >= 1, bsize)
    a = attrs(s)
    check("HTTP: attributes model, version, protocol, HTTP status", a.get("celer.model") == "mlp" and
          a.get("celer.model_version") == "1" and a.get("celer.protocol") == "http"
          and int(a.get("http.response.status_code", 0)) == 200, a)
    res = {x["key"]: x["value"].get("stringValue") for x in s["_resource"]["attributes"]}
    check("resource: service.name from OTEL_SERVICE_NAME, telemetry.sdk.*, OTEL_RESOURCE_ATTRIBUTES",
          res.get("service.name") == "celer-under-test" and res.get("telemetry.sdk.name") == "celer"
          and res.get("telemetry.sdk.language") and res.get("telemetry.sdk.version")
          and res.get("deployment.environment") == "e2e test", res)
    time.sleep(0.2)
    log = srv.output()
    check("HTTP: access log names the trace id", f"trace={PARENT_TRACE}" in log, log[-600:])
    check("HTTP: a request ends in a batch span linking it", bool(rec.wait_for(
        lambda sp: any(lk["spanId"] == span_id for x in sp for lk in x.get("links", [])), 10)))
    batch = [x for x in rec.spans() if any(lk["spanId"] == span_id for lk in x.get("links", []))]
    if batch:
        b = batch[0]
        check_span_shape(b, "batch span")
        check("batch span: INTERNAL (1), its own trace, named for the model, celer.batch_size, link to the "
              "request's trace", b["kind"] == 1 and b["name"].startswith("batch ") and b["traceId"] != PARENT_TRACE
              and "celer.batch_size" in attrs(b) and b["links"][0]["traceId"] == PARENT_TRACE, b)


def test_batch_links(srv, rec):
    """Concurrent sampled requests to a batching model: some batch span links several of them."""
    ids, lock = [], threading.Lock()

    def one(i):
        tp = f"00-{'%032x' % (0xabc000 + i)}-{'%016x' % (0x1000 + i)}-01"
        _, _, h = post(srv, "/v2/models/mlp/infer", infer_doc(), {"traceparent": tp})
        with lock:
            ids.append(h.get("traceparent", "---").split("-")[2])
    for _ in range(5):
        ts = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        spans = rec.wait_for(lambda s: any(len([lk for lk in x.get("links", []) if lk["spanId"] in ids]) >= 2
                                           for x in s), 8)
        multi = [x for x in spans if len([lk for lk in x.get("links", []) if lk["spanId"] in ids]) >= 2]
        if multi:
            break
    check("a batch of several requests is one span linking each of them", bool(multi),
          [len(x.get("links", [])) for x in spans if x["name"].startswith("batch")])
    if multi:
        b = multi[0]
        check("the batch span's celer.batch_size covers its links", int(attrs(b)["celer.batch_size"]) >= len(b["links"]),
              b)


def test_pipeline(srv, rec):
    status, _, h = post(srv, "/v2/models/route/infer", route_doc(), {"traceparent": SAMPLED})
    span_id = h.get("traceparent", "---").split("-")[2]
    spans = rec.wait_for(lambda s: len([x for x in s if x.get("parentSpanId") == span_id]) >= 3)
    children = [x for x in spans if x.get("parentSpanId") == span_id]
    names = sorted(x["name"] for x in children)
    check("pipeline: answered, its span has child spans per step and per model call", status == 200 and
          any(n.startswith("step ") for n in names) and "model mlp" in names, names)
    for c in children:
        check_span_shape(c, f"pipeline child span '{c['name']}'")
    model = [x for x in children if x["name"] == "model mlp"]
    if model:
        ev = [e["name"] for e in model[0]["events"]]
        check("pipeline: the model call's span has queued, batch formed, compute start and end", ev == EVENTS[:4], ev)
        check("pipeline: children are INTERNAL spans of the request's trace", all(
            x["kind"] == 1 and x["traceId"] == PARENT_TRACE for x in children), children)
    server = [x for x in spans if x["spanId"] == span_id]
    check("pipeline: the request's span has queued, compute start, compute end, response sent",
          server and [e["name"] for e in server[0]["events"]] == ["queued", "compute start", "compute end",
                                                                 "response sent"], server)


def test_grpc(srv, rec, gport, tmp):
    got = grpc_stubs.load(tmp)
    if not got:
        return
    grpc, pb, pb_grpc = got
    stub = pb_grpc.GRPCInferenceServiceStub(grpc_stubs.channel(grpc, gport))
    import struct
    req = pb.ModelInferRequest(model_name="mlp")
    t = req.inputs.add(name="features", datatype="FP32", shape=[1, 16])
    req.raw_input_contents.append(struct.pack("<16f", *([0.5] * 16)))
    del t
    resp, call = stub.ModelInfer.with_call(req, metadata=[("traceparent", SAMPLED), ("tracestate", "g=1")], timeout=10)
    md = dict(call.initial_metadata())
    tp = md.get("traceparent", "")
    parts = tp.split("-")
    check("gRPC: initial metadata carries a traceparent of the same trace with the call's span id",
          len(parts) == 4 and parts[1] == PARENT_TRACE and parts[2] != PARENT_SPAN, md)
    check("gRPC: tracestate passed back", md.get("tracestate") == "g=1", md)
    span_id = parts[2] if len(parts) == 4 else ""
    spans = rec.wait_for(lambda s: any(x["spanId"] == span_id for x in s))
    s = [x for x in spans if x["spanId"] == span_id]
    check("gRPC: the call's span arrives with the propagated trace id and parent, kind SERVER", s and
          s[0]["traceId"] == PARENT_TRACE and s[0].get("parentSpanId") == PARENT_SPAN and s[0]["kind"] == 2, s)
    if s:
        check_span_shape(s[0], "gRPC span")
        check("gRPC: events and attributes (protocol grpc, rpc.grpc.status_code 0)",
              [e["name"] for e in s[0]["events"]] == EVENTS and attrs(s[0]).get("celer.protocol") == "grpc"
              and int(attrs(s[0]).get("rpc.grpc.status_code", -1)) == 0, s[0])
    # an unknown model is refused before tracing: no traceparent back
    try:
        stub.ModelInfer(pb.ModelInferRequest(model_name="nope"), metadata=[("traceparent", SAMPLED)], timeout=10)
    except grpc.RpcError:
        pass
    # settings on gRPC
    r = stub.TraceSetting(pb.TraceSettingRequest(), timeout=10)
    got = {k: list(v.value) for k, v in r.settings.items()}
    check("gRPC TraceSetting: reads the global settings as strings", got.get("trace_level") == ["TIMESTAMPS"] and
          got.get("trace_rate") == ["1"] and got.get("trace_count") == ["-1"] and got.get("trace_file") == [""]
          and "log_frequency" in got, got)
    req = pb.TraceSettingRequest(model_name="mlp_basic")
    req.settings["trace_rate"].value.append("7")
    got = {k: list(v.value) for k, v in stub.TraceSetting(req, timeout=10).settings.items()}
    check("gRPC TraceSetting: a model's own trace_rate", got.get("trace_rate") == ["7"], got)
    req = pb.TraceSettingRequest(model_name="mlp_basic")
    req.settings["trace_rate"]  # no value: null
    got = {k: list(v.value) for k, v in stub.TraceSetting(req, timeout=10).settings.items()}
    check("gRPC TraceSetting: an empty value reverts the model's setting to the global one",
          got.get("trace_rate") == ["1"], got)
    for key, vals, word in [("trace_level", ["TENSORS"], "TENSORS"), ("trace_rate", ["x"], "trace_rate"),
                            ("bogus", ["1"], "unknown trace setting")]:
        req = pb.TraceSettingRequest()
        req.settings[key].value.extend(vals)
        try:
            stub.TraceSetting(req, timeout=10)
            check(f"gRPC TraceSetting: {key}={vals} refused", False, "accepted")
        except grpc.RpcError as e:
            check(f"gRPC TraceSetting: {key}={vals} refused INVALID_ARGUMENT naming it",
                  e.code() == grpc.StatusCode.INVALID_ARGUMENT and word in e.details(), (e.code(), e.details()))
    r = stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=10)
    check("gRPC: server metadata lists the trace extension", "trace" in r.extensions, r.extensions)


def test_settings_http(srv):
    st, doc, _ = srv.json("GET", "/v2/trace/setting")
    check("HTTP GET /v2/trace/setting: Triton's settings, strings and trace_level an array", st == 200 and doc == {
        "trace_file": "", "trace_level": ["TIMESTAMPS"], "trace_rate": "1", "trace_count": "-1",
        "log_frequency": "0"}, doc)
    st, doc, _ = srv.json("POST", "/v2/models/mlp_basic/trace/setting", {"trace_rate": "9", "log_frequency": "3"})
    check("HTTP POST a model's settings: only the keys given change", st == 200 and doc["trace_rate"] == "9" and
          doc["log_frequency"] == "3" and doc["trace_level"] == ["TIMESTAMPS"], doc)
    st, doc, _ = srv.json("GET", "/v2/trace/setting")
    check("HTTP: the global settings are not changed by a model's", doc["trace_rate"] == "1", doc)
    st, doc, _ = srv.json("POST", "/v2/models/mlp_basic/trace/setting", {"trace_rate": None, "log_frequency": None})
    check("HTTP: null reverts a model's setting to the global value", st == 200 and doc["trace_rate"] == "1" and
          doc["log_frequency"] == "0", doc)
    for body, word in [({"trace_level": ["TENSORS"]}, "TENSORS"), ({"trace_rate": "-3"}, "trace_rate"),
                       ({"trace_rate": 5}, "a string"), ({"trace_count": "x"}, "trace_count"),
                       ({"trace_file": "/tmp/t.json"}, "trace file"), ({"nope": "1"}, "unknown trace setting"),
                       ({"trace_level": ["OFF", "TIMESTAMPS"]}, "OFF")]:
        st, doc, _ = srv.json("POST", "/v2/trace/setting", body)
        check(f"HTTP POST {body}: 400 naming what is wrong", st == 400 and word in (doc or {}).get("error", ""), (st, doc))
    st, doc, _ = srv.json("GET", "/v2/trace/setting")
    check("HTTP: a refused change changes nothing", doc["trace_rate"] == "1" and doc["trace_level"] == ["TIMESTAMPS"], doc)
    st, doc, _ = srv.json("GET", "/v2")
    check("HTTP: server metadata lists the trace extension", "trace" in doc.get("extensions", []), doc)


def test_sampling(srv, rec):
    def server_spans():
        return [x for x in rec.spans() if x["kind"] == 2]

    # rate 4 on mlp_basic alone: about 1 in 4 of its unsampled requests
    srv.json("POST", "/v2/models/mlp_basic/trace/setting", {"trace_rate": "4"})
    before = len(server_spans())
    for _ in range(40):
        post(srv, "/v2/models/mlp_basic/infer", infer_doc())
    got = len(rec.wait_for(lambda s: len([x for x in s if x["kind"] == 2]) >= before + 10, 10)) and \
        len(server_spans()) - before
    check("trace_rate 4: about 1 in 4 unsampled requests traced (8 to 12 of 40)", 8 <= got <= 12, got)
    # rate 0: only requests with a sampled parent
    srv.json("POST", "/v2/models/mlp_basic/trace/setting", {"trace_rate": "0"})
    time.sleep(0.3)
    before = len(server_spans())
    traced = 0
    for i in range(12):
        tp = f"00-{'%032x' % (0xfeed00 + i)}-{'%016x' % (0x77 + i)}-{'01' if i % 3 == 0 else '00'}"
        _, _, h = post(srv, "/v2/models/mlp_basic/infer", infer_doc(), {"traceparent": tp} if i % 2 == 0 else {})
        traced += "traceparent" in h
    time.sleep(6)
    new = server_spans()[before:]
    check("trace_rate 0: only the requests with a sampled parent (flags & 1) are traced",
          len(new) == 2 and traced == 2 and {x["traceId"] for x in new} == {'%032x' % 0xfeed00, '%032x' % 0xfeed06},
          (len(new), traced))
    srv.json("POST", "/v2/models/mlp_basic/trace/setting", {"trace_rate": None})
    # trace_level OFF: nothing, even with a sampled parent
    srv.json("POST", "/v2/models/mlp_basic/trace/setting", {"trace_level": ["OFF"]})
    _, _, h = post(srv, "/v2/models/mlp_basic/infer", infer_doc(), {"traceparent": SAMPLED})
    check("trace_level OFF for a model: not traced even with a sampled parent", "traceparent" not in h, h)
    srv.json("POST", "/v2/models/mlp_basic/trace/setting", {"trace_level": None})


def test_invalid_parent(srv, rec):
    bad = [SAMPLED.upper().replace("0AF", "0AF"), "00-" + "0" * 32 + "-" + PARENT_SPAN + "-01",
           f"00-{PARENT_TRACE}-{'0' * 16}-01", f"ff-{PARENT_TRACE}-{PARENT_SPAN}-01", SAMPLED + "-extra",
           f"00-{PARENT_TRACE}-{PARENT_SPAN}-0", "garbage"]
    ok = True
    for tp in bad:
        _, _, h = post(srv, "/v2/models/mlp/infer", infer_doc(), {"traceparent": tp, "tracestate": "k=v"})
        got = h.get("traceparent", "")
        # rate 1: traced anyway, as a new trace; the invalid context and its tracestate are ignored
        if len(got) != 55 or got.split("-")[1] == PARENT_TRACE or "tracestate" in h:
            ok = False
            print("  invalid traceparent", tp, "->", h)
    check("invalid traceparents (uppercase, zero ids, version ff, 00 with a tail, short) are ignored: a new "
          "trace, no tracestate", ok)
    _, _, h = post(srv, "/v2/models/mlp/infer", infer_doc(), {"traceparent": f"01-{PARENT_TRACE}-{PARENT_SPAN}-01-more"})
    check("a higher version with more fields: its first four are read", h.get("traceparent", "").split("-")[1:2] ==
          [PARENT_TRACE], h)


def official_post(rec, fmt):
    """Has the official exporter (otel_export.mjs, `fmt` "json" or "proto") send its span for
    SAMPLED to the receiver: its post, None when none arrived, False when npm could not install it."""
    cache = node_modules(OTEL)
    check("npm: the official OTLP exporters are installed (node_cache)", cache is not None)
    if not cache:
        return False
    n0 = len(rec.posts)
    r = subprocess.run(["node", os.path.join(HERE, "otel_export.mjs"), rec.url, SAMPLED, fmt], capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, NODE_PATH=os.path.join(cache, "node_modules")))
    check(f"the official exporter ran ({fmt})", r.returncode == 0, r.stderr[-1500:])
    deadline = time.time() + 10
    while len(rec.posts) == n0 and time.time() < deadline:
        time.sleep(0.1)
    return rec.posts[n0] if len(rec.posts) > n0 else None


def test_official_exporter(srv, rec):
    """The official exporter's payload for an equivalent span, captured by the same receiver, against
    celer's: the same field names and types."""
    ref_post = official_post(rec, "json")
    if ref_post is False:
        return
    if not ref_post:
        check("the official exporter's post arrived", False)
        return
    rs = ref_post["doc"]["resourceSpans"][0]
    ref = dict(rs["scopeSpans"][0]["spans"][0], _resource=rs["resource"], _scope=rs["scopeSpans"][0]["scope"])
    _, _, h = post(srv, "/v2/models/mlp/infer", infer_doc(), {"traceparent": SAMPLED})
    span_id = h.get("traceparent", "---").split("-")[2]
    mine = rec.wait_for(lambda s: any(x["spanId"] == span_id for x in s))
    mine = [x for x in mine if x["spanId"] == span_id]
    if not mine:
        check("celer's span for the comparison arrived", False)
        return
    mine = mine[0]
    mine_post = [p for p in rec.posts if p["doc"] and span_id in json.dumps(p["doc"])][0]
    check("same path and Content-Type as the official exporter", mine_post["path"] == ref_post["path"] ==
          "/v1/traces" and mine_post["headers"].get("Content-Type") == ref_post["headers"].get("Content-Type")
          == "application/json", (mine_post["path"], mine_post["headers"], ref_post["headers"]))
    ref_keys = set(ref) - {"_resource", "_scope"}
    my_keys = set(mine) - {"_resource", "_scope", "traceState"}

    def same_fields(ref, mine, ref_keys, my_keys):
        """The same field names, except that celer leaves out a field at its default (0, [], as
        protobuf's JSON mapping does and OTLP receivers read as default; it keeps the spans a
        quarter smaller) where the official exporter writes it."""
        return my_keys <= ref_keys and all(ref[k] in (0, [], "", {}) for k in ref_keys - my_keys)
    check("span: the same field names as the official exporter (celer leaves out those at their default)",
          same_fields(ref, mine, ref_keys, my_keys), (sorted(ref_keys - my_keys), sorted(my_keys - ref_keys)))

    def kind_of(v):
        return "int" if isinstance(v, int) and not isinstance(v, bool) else type(v).__name__
    same_types = {k: (kind_of(ref[k]), kind_of(mine[k])) for k in ref_keys & my_keys}
    check("span: each field of the same JSON type", all(a == b for a, b in same_types.values()),
          {k: v for k, v in same_types.items() if v[0] != v[1]})
    check("span: ids and times as the official exporter writes them (hex of 32/16, 19-digit decimal strings)",
          all(len(x["traceId"]) == 32 and len(x["spanId"]) == 16 and len(x["parentSpanId"]) == 16
              and NANOS.match(x["startTimeUnixNano"]) and NANOS.match(x["endTimeUnixNano"]) for x in (ref, mine)))
    check("span: both keep the propagated trace id and parent, kind SERVER, the same flags (sampled, remote parent)",
          ref["traceId"] == mine["traceId"] == PARENT_TRACE and ref["parentSpanId"] == mine["parentSpanId"] ==
          PARENT_SPAN and ref["kind"] == mine["kind"] == 2 and ref["flags"] == mine["flags"], (ref, mine))
    check("event: the same field names (celer leaves out those at their default)",
          same_fields(ref["events"][0], mine["events"][0], set(ref["events"][0]), set(mine["events"][0])),
          (ref["events"][0], mine["events"][0]))
    bf_ref = [e for e in ref["events"] if e["name"] == "batch formed"][0]
    bf_mine = [e for e in mine["events"] if e["name"] == "batch formed"][0]
    check("event with an attribute: the same field names (celer leaves out those at their default)",
          same_fields(bf_ref, bf_mine, set(bf_ref), set(bf_mine)), (bf_ref, bf_mine))
    check("status: the same shape", set(ref["status"]) <= set(mine["status"]) and
          kind_of(ref["status"]["code"]) == kind_of(mine["status"]["code"]), (ref["status"], mine["status"]))
    # an int attribute: the official exporter writes a JSON number, celer a decimal string (OTLP's rule for
    # int64; receivers take both)
    ri = [a for a in ref["attributes"] if "intValue" in a["value"]][0]["value"]["intValue"]
    mi = [a for a in mine["attributes"] if "intValue" in a["value"]][0]["value"]["intValue"]
    check("intValue: the official exporter's number and celer's decimal string name the same integer",
          int(ri) == 200 and str(int(mi)) == mi, (ri, mi))
    ref_res = {a["key"] for a in ref["_resource"]["attributes"]}
    my_res = {a["key"] for a in mine["_resource"]["attributes"]}
    check("resource: the official exporter's attribute names (service.name, telemetry.sdk.*) are all there",
          ref_res <= my_res, (ref_res, my_res))
    check("resource and scope: the same field names", set(ref["_resource"]) == set(mine["_resource"]) and
          set(ref["_scope"]) == set(mine["_scope"]), (ref["_resource"].keys(), mine["_scope"]))


def test_retry(repo):
    """The receiver answers 503 (Retry-After: 1) twice, then 200: the spans arrive, retried."""
    rec = Receiver()
    rec.answers = [503, 503]
    srv = Server(repo, "--trace-otlp-url", rec.url, "--trace-rate", "1")
    try:
        for _ in range(3):
            post(srv, "/v2/models/mlp/infer", infer_doc())
        spans = rec.wait_for(lambda s: len([x for x in s if x["kind"] == 2]) >= 3, 20)
        statuses = [p["status"] for p in rec.posts]
        check("503, 503, then 200: the same spans posted again after Retry-After, then accepted",
              statuses[:3] == [503, 503, 200] and len([x for x in spans if x["kind"] == 2]) == 3, statuses)
        check("retries counted", (metric(srv, "celer_trace_export_retries_total") or 0) >= 2)
        check("nothing counted failed or dropped", metric(srv, "celer_trace_spans_failed_total") == 0 and
              metric(srv, "celer_trace_spans_dropped_total") == 0)
        rec.answers = [400]
        post(srv, "/v2/models/mlp/infer", infer_doc())
        deadline = time.time() + 12
        while (metric(srv, "celer_trace_spans_failed_total") or 0) < 1 and time.time() < deadline:
            time.sleep(0.2)
        check("a 400 from the receiver: the spans are dropped and counted failed, not retried",
              (metric(srv, "celer_trace_spans_failed_total") or 0) >= 1 and [p["status"] for p in rec.posts][-1] == 400,
              [p["status"] for p in rec.posts])
    finally:
        check_stopped(srv, "retry")
        rec.close()


def test_receiver_down(repo):
    """No receiver: requests are answered as usual; the spans the full queue cannot hold are dropped
    and counted, the others given up after retries and counted failed; shutdown stays bounded."""
    port = free_port()  # nothing listens there
    srv = Server(repo, "--trace-otlp-url", f"http://127.0.0.1:{port}/v1/traces", "--trace-rate", "1")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        body = json.dumps(infer_doc()).encode()
        ok = 0
        t0 = time.time()
        for _ in range(2700):
            conn.request("POST", "/v2/models/mlp/infer", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            ok += r.status == 200
        conn.close()
        check("receiver down: every request answered 200", ok == 2700, ok)
        check("receiver down: requests not held up (2700 in under 120 s)", time.time() - t0 < 120, time.time() - t0)
        dropped = metric(srv, "celer_trace_spans_dropped_total") or 0
        # two spans a request (the request's, its batch's); the queue holds 3072, and each batch given
        # up after its retries (about 7.5 s) makes room for 1024 more: this bound holds while the
        # 2700 requests take under 22 s
        check("receiver down: the spans beyond the queue are dropped and counted",
              dropped >= 2 * 2700 - 3072 - 2 * 1024, dropped)
        deadline = time.time() + 30
        while (metric(srv, "celer_trace_spans_failed_total") or 0) < 1 and time.time() < deadline:
            time.sleep(0.5)
        check("receiver down: spans given up after retries are counted failed",
              (metric(srv, "celer_trace_spans_failed_total") or 0) >= 1)
        t0 = time.time()
    finally:
        check_stopped(srv, "receiver down")
    check("receiver down: shutdown within the timeout", time.time() - t0 < 20, time.time() - t0)


def test_env(repo):
    """OTEL_EXPORTER_OTLP_ENDPOINT is a base URL: /v1/traces is appended; --trace-otlp-protocol wins
    over OTEL_EXPORTER_OTLP_PROTOCOL."""
    rec = Receiver()
    srv = Server(repo, "--trace-rate", "1", "--trace-otlp-protocol", "http/protobuf",
                 env={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{rec.port}/",
                      "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
    try:
        post(srv, "/v2/models/mlp/infer", infer_doc())
        rec.wait_for(lambda s: bool(s), 12)
        check("OTEL_EXPORTER_OTLP_ENDPOINT: spans posted to <base>/v1/traces",
              rec.posts and all(p["path"] == "/v1/traces" for p in rec.posts), [p["path"] for p in rec.posts])
        check("--trace-otlp-protocol http/protobuf wins over OTEL_EXPORTER_OTLP_PROTOCOL=http/json",
              rec.posts and all(p["headers"].get("Content-Type") == "application/x-protobuf" for p in rec.posts),
              [p["headers"].get("Content-Type") for p in rec.posts])
    finally:
        check_stopped(srv, "env")
        rec.close()


def test_official_proto(srv, rec):
    """The official protobuf exporter's post and celer's, captured by the same receiver and decoded
    with the same stubs, compared field by field: ids as bytes, times as fixed64 nanoseconds, kind,
    flags, attributes' value types, events, resource."""
    ref_post = official_post(rec, "proto")
    if ref_post is False:
        return
    if not ref_post or not ref_post["msg"]:
        check("the official exporter's protobuf post arrived and decoded", False)
        return
    _, _, h = post(srv, "/v2/models/mlp/infer", infer_doc(), {"traceparent": SAMPLED})
    span_id = bytes.fromhex(h.get("traceparent", "---").split("-")[2] or "00")
    rec.wait_for(lambda s: any(x["spanId"] == span_id.hex() for x in s))
    mine_post, mine = None, None
    for p in rec.posts:
        for rs in (p["msg"].resource_spans if p["msg"] else []):
            for ss in rs.scope_spans:
                for s in ss.spans:
                    if s.span_id == span_id:
                        mine_post, mine, mine_rs, mine_scope = p, s, rs, ss.scope
    if not mine:
        check("celer's span for the comparison arrived", False)
        return
    rrs = ref_post["msg"].resource_spans[0]
    ref, ref_scope = rrs.scope_spans[0].spans[0], rrs.scope_spans[0].scope
    check("protobuf: same path and Content-Type (application/x-protobuf) as the official exporter",
          mine_post["path"] == ref_post["path"] == "/v1/traces" and mine_post["headers"].get("Content-Type")
          == ref_post["headers"].get("Content-Type") == "application/x-protobuf",
          (mine_post["headers"].get("Content-Type"), ref_post["headers"].get("Content-Type")))
    fields = {f.name for f, _ in mine.ListFields()} - {"trace_state"}
    ref_fields = {f.name for f, _ in ref.ListFields()}
    check("protobuf span: the fields the official exporter sets, and no others (proto3 defaults left out by both)",
          fields == ref_fields, (sorted(ref_fields - fields), sorted(fields - ref_fields)))
    check("protobuf span: both keep the propagated trace id and parent as 16 and 8 raw bytes, an 8-byte span id",
          ref.trace_id == mine.trace_id == bytes.fromhex(PARENT_TRACE) and ref.parent_span_id ==
          mine.parent_span_id == bytes.fromhex(PARENT_SPAN) and len(ref.span_id) == len(mine.span_id) == 8,
          (ref.trace_id, mine.trace_id))
    check("protobuf span: kind SERVER and the same flags (sampled, remote parent: 0x301) in both",
          ref.kind == mine.kind == 2 and ref.flags == mine.flags == 0x301, (ref.kind, mine.kind, ref.flags, mine.flags))
    now = time.time_ns()
    check("protobuf span: times are Unix nanoseconds (fixed64) of the last minute, end after start, in both",
          all(now - 60e9 < x.start_time_unix_nano <= x.end_time_unix_nano <= now for x in (ref, mine)),
          (ref.start_time_unix_nano, mine.start_time_unix_nano, now))
    check("protobuf span: the official exporter's events come first in celer's, with the same fields",
          [e.name for e in ref.events] == [e.name for e in mine.events][:len(ref.events)] and
          all({f.name for f, _ in a.ListFields()} == {f.name for f, _ in b.ListFields()}
              for a, b in zip(ref.events, mine.events)), ([e.name for e in ref.events], [e.name for e in mine.events]))
    ref_bs = [a for a in ref.events[1].attributes if a.key == "celer.batch_size"]
    my_bs = [a for a in mine.events[1].attributes if a.key == "celer.batch_size"]
    check("protobuf event attribute: celer.batch_size an int_value in both",
          ref_bs and my_bs and ref_bs[0].value.WhichOneof("value") == my_bs[0].value.WhichOneof("value") == "int_value",
          (ref_bs, my_bs))

    def values(span):
        return {a.key: (a.value.WhichOneof("value"), getattr(a.value, a.value.WhichOneof("value"))) for a in span.attributes}
    rv, mv = values(ref), values(mine)
    check("protobuf attributes: celer.model a string_value, http.response.status_code the int_value 200, in both",
          rv["celer.model"][0] == mv["celer.model"][0] == "string_value" and
          rv["http.response.status_code"] == mv["http.response.status_code"] == ("int_value", 200), (rv, mv))
    check("protobuf status: UNSET in both (an empty Status)", ref.status.code == mine.status.code == 0
          and not ref.status.message and not mine.status.message, (ref.status, mine.status))
    ref_res = {a.key: a.value.string_value for a in rrs.resource.attributes}
    my_res = {a.key: a.value.string_value for a in mine_rs.resource.attributes}
    check("protobuf resource: the official exporter's attribute names are all there; service.name set",
          set(ref_res) <= set(my_res) and ref_res["service.name"] == "otel-reference"
          and my_res["service.name"] == "celer-under-test", (ref_res, my_res))
    check("protobuf scope: name and version, as the official exporter's", ref_scope.name and ref_scope.version and
          mine_scope.name == "celer" and mine_scope.version, (ref_scope, mine_scope))


def test_json(repo):
    """http/json, chosen by OTEL_EXPORTER_OTLP_TRACES_PROTOCOL (which wins over
    OTEL_EXPORTER_OTLP_PROTOCOL): JSON posts, compared with the official JSON exporter's."""
    rec = Receiver()
    srv = Server(repo, "--trace-otlp-url", rec.url, "--trace-rate", "1", "--grpc-port", "0",
                 env={"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    try:
        _, _, h = post(srv, "/v2/models/mlp/infer", infer_doc(), {"traceparent": SAMPLED})
        span_id = h.get("traceparent", "---").split("-")[2]
        spans = rec.wait_for(lambda s: any(x["spanId"] == span_id for x in s))
        check("http/json: posts are application/json, the request's span among them", rec.posts and all(
            p["headers"].get("Content-Type") == "application/json" for p in rec.posts)
            and any(x["spanId"] == span_id for x in spans), [p["headers"].get("Content-Type") for p in rec.posts])
        for s in spans:
            check_span_shape(s, f"http/json span '{s['name']}'")
        test_official_exporter(srv, rec)
    finally:
        check_stopped(srv, "json")
        rec.close()


def test_protocol_refused(repo):
    """A protocol celer does not speak is refused at start, naming where it came from."""
    url = f"http://127.0.0.1:{free_port()}/v1/traces"
    for args, env, want in [(["--trace-otlp-protocol", "http/xml"], {}, "--trace-otlp-protocol must be http/protobuf "
                             "or http/json, not 'http/xml'"),
                            ([], {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL: OTLP over "
                             "gRPC is not supported"),
                            ([], {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "json"}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL "
                             "must be")]:
        r = subprocess.run([CELER, "serve", "--model-repository", repo, "--http-port", str(free_port()), "--grpc-port",
                            "0", "--trace-otlp-url", url] + args, capture_output=True, text=True, timeout=20,
                           env=dict(os.environ, **env))
        check(f"protocol {args or env}: refused at start with a clear error", r.returncode != 0 and want in r.stderr,
              (r.returncode, r.stderr[-500:]))


def main():
    tmp = tempfile.mkdtemp(prefix="celer-trace-")
    repo = os.path.join(tmp, "repository")
    shutil.copytree(REPO_SRC, repo)
    for k in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME",
              "OTEL_RESOURCE_ATTRIBUTES"):
        os.environ.pop(k, None)
    if not load_otlp(tmp):
        return summary()
    rec = Receiver()
    gport = free_port()
    os.environ["OTEL_SERVICE_NAME"] = "celer-under-test"
    os.environ["OTEL_RESOURCE_ATTRIBUTES"] = "deployment.environment=e2e%20test,service.name=ignored"
    srv = Server(repo, "--trace-otlp-url", rec.url, "--trace-rate", "1", "--grpc-port", str(gport))
    del os.environ["OTEL_SERVICE_NAME"], os.environ["OTEL_RESOURCE_ATTRIBUTES"]
    try:
        test_settings_http(srv)
        test_http_propagation(srv, rec)
        test_batch_links(srv, rec)
        test_pipeline(srv, rec)
        test_grpc(srv, rec, gport, tmp)
        test_invalid_parent(srv, rec)
        test_official_proto(srv, rec)
        test_sampling(srv, rec)
        bad = [x for x in rec.spans() if not (len(x["traceId"]) == 32 and len(x["spanId"]) == 16)]
        check("every span received has ids of 16 and 8 bytes", not bad, bad[:2])
        check("every post was protobuf (the default), and each decoded",
              rec.posts and rec.undecodable == 0 and all(p["headers"].get("Content-Type") == "application/x-protobuf"
                                                         for p in rec.posts), rec.undecodable)
        check("celer's protobuf is canonical: parsed and serialized again by protobuf, the same bytes",
              all(p["msg"].SerializeToString() == p["body"] for p in rec.posts
                  if p["msg"] and p["headers"].get("User-Agent", "").startswith("celer/")))
    finally:
        check_stopped(srv)
        rec.close()
    test_json(repo)
    test_protocol_refused(repo)
    test_retry(repo)
    test_env(repo)
    test_receiver_down(repo)
    shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
