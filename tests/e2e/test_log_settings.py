#!/usr/bin/python3
"""End-to-end: Triton's log settings on both protocols, GET/POST /v2/logging (urllib) and gRPC
LogSettings (Debian's python3-grpcio on stubs generated from tests/grpc/proto), one table behind
them: what one protocol changes the other reads, and the server's log lines follow at once
(log_info silences the access log, log_warning and log_error their lines, log_verbose_level 1
adds a line per gRPC call and the message of each failed request, log_format changes the lines'
shape). Refusals: an unknown setting, a value of the wrong kind, an unknown format, a log file
(400 / INVALID_ARGUMENT or UNIMPLEMENTED, Triton's words first), and nothing of a refused change
applies. The flags --log-info/--log-warning/--log-error/--log-verbose/--log-format set the start.

usage: test_log_settings.py CELER_BIN EXAMPLE_REPOSITORY"""
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc_stubs  # noqa: E402
from test_server import Server, check, check_stopped, free_port  # noqa: E402

CELER, REPO_SRC = sys.argv[1], sys.argv[2]
DEFAULTS = {"log_file": "", "log_info": True, "log_warning": True, "log_error": True, "log_verbose_level": 0,
            "log_format": "default"}


def http(srv, method, path, doc=None, raw=None, rid=None):
    """(status, parsed JSON or text) of a request made with urllib (X-Request-Id `rid`: a mark to
    find its access line by)."""
    data = raw if raw is not None else (None if doc is None else json.dumps(doc).encode())
    req = urllib.request.Request(f"http://127.0.0.1:{srv.port}{path}", data=data, method=method,
                                 headers={"X-Request-Id": rid} if rid else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, body


def wait_log(srv, pred, secs=5.0):
    """Whether pred(log) holds within secs (lines are written after the answer went out)."""
    end = time.time() + secs
    while time.time() < end:
        if pred(srv.output()):
            return True
        time.sleep(0.05)
    return pred(srv.output())


def main():
    return grpc_stubs.main("celer-e2e-log-", run)


def run(tmp, grpc, pb, pb_grpc):
    repo = os.path.join(tmp, "repository")
    shutil.copytree(REPO_SRC, repo)
    gport = free_port()
    srv = Server(repo, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1", "--repository-poll-secs", "1",
                 "--docs", "--docs-assets", os.path.join(tmp, "no-such-folder"))
    channel = grpc.insecure_channel(f"127.0.0.1:{gport}")
    stub = pb_grpc.GRPCInferenceServiceStub(channel)

    def grpc_settings(**changes):
        """LogSettings with `changes` (name: value typed as Triton's client types it; None: an empty
        SettingValue); the settings answered as a dict, or the error's (code, details)."""
        req = pb.LogSettingsRequest()
        for k, v in changes.items():
            if v is None:
                req.settings[k].SetInParent()
            elif isinstance(v, bool):
                req.settings[k].bool_param = v
            elif isinstance(v, int):
                req.settings[k].uint32_param = v
            else:
                req.settings[k].string_param = v
        try:
            r = stub.LogSettings(req, timeout=10)
        except grpc.RpcError as e:
            return e.code(), e.details()
        return {k: getattr(v, v.WhichOneof("parameter_choice")) for k, v in r.settings.items()}

    try:
        # the defaults, as Triton's QA test (L0_logging) expects them, on both protocols
        status, doc = http(srv, "GET", "/v2/logging")
        check("GET /v2/logging: Triton's defaults", status == 200 and doc == DEFAULTS, (status, doc))
        r = stub.LogSettings(pb.LogSettingsRequest(), timeout=10)
        oneofs = {k: v.WhichOneof("parameter_choice") for k, v in r.settings.items()}
        check("gRPC LogSettings: the same settings, each oneof set (false and 0 too)",
              grpc_settings() == DEFAULTS and oneofs == {"log_file": "string_param", "log_info": "bool_param",
                                                         "log_warning": "bool_param", "log_error": "bool_param",
                                                         "log_verbose_level": "uint32_param",
                                                         "log_format": "string_param"}, (r, oneofs))

        # log_info: the access log follows at once
        status, _ = http(srv, "GET", "/v2/health/live", rid="mark-one")
        check("the access log has a request", wait_log(srv, lambda log: "id=mark-one" in log), srv.output()[-500:])
        status, doc = http(srv, "POST", "/v2/logging", {"log_info": False})
        check("POST log_info false: answered with every setting", status == 200 and doc == dict(DEFAULTS, log_info=False),
              (status, doc))
        http(srv, "GET", "/v2/health/live", rid="mark-two")
        time.sleep(0.3)
        check("log_info false: no access line", "id=mark-two" not in srv.output(), srv.output()[-500:])
        check("gRPC reads what HTTP changed", grpc_settings().get("log_info") is False, grpc_settings())
        check("gRPC changes log_info back", grpc_settings(log_info=True).get("log_info") is True)
        http(srv, "GET", "/v2/health/live", rid="mark-three")
        check("log_info true again: access lines again", wait_log(srv, lambda log: "id=mark-three" in log))

        # log_verbose_level 1: a line per gRPC call, the message of a failed request
        stub.ServerLive(pb.ServerLiveRequest(), timeout=10)
        http(srv, "GET", "/v2/models/no_such_model_a")
        time.sleep(0.3)
        log = srv.output()
        check("verbose 0: no gRPC call line, no failure message",
              "ServerLive" not in log and "unknown model 'no_such_model_a'" not in log, log[-800:])
        check("gRPC sets log_verbose_level 1", grpc_settings(log_verbose_level=1).get("log_verbose_level") == 1)
        stub.ServerLive(pb.ServerLiveRequest(), timeout=10)
        try:
            stub.ModelMetadata(pb.ModelMetadataRequest(name="no_such_model_b"), timeout=10)
        except grpc.RpcError:
            pass
        http(srv, "GET", "/v2/models/no_such_model_c")
        check("verbose 1: a line per gRPC call with its status",
              wait_log(srv, lambda log: "grpc /inference.GRPCInferenceService/ServerLive OK" in log
                       and "ModelMetadata NOT_FOUND" in log and "no_such_model_b" in log), srv.output()[-1500:])
        check("verbose 1: the message of a failed HTTP request",
              wait_log(srv, lambda log: "GET /v2/models/no_such_model_c answered 404: Request for unknown model" in log),
              srv.output()[-800:])

        # log_warning: the warning of an unreadable --docs-assets file
        http(srv, "POST", "/v2/logging", {"log_warning": False})
        http(srv, "GET", "/docs/assets/swagger-ui.css")
        time.sleep(0.3)
        check("log_warning false: no warning line", "cannot read" not in srv.output(), srv.output()[-500:])
        http(srv, "POST", "/v2/logging", {"log_warning": True})
        http(srv, "GET", "/docs/assets/swagger-ui.css")
        check("log_warning true: the warning line", wait_log(srv, lambda log: "--docs-assets: cannot read" in log),
              srv.output()[-500:])

        # log_error: a model that fails to load at a poll
        def broken(name):
            os.makedirs(os.path.join(repo, name, "1"))
            with open(os.path.join(repo, name, "1", "model.onnx"), "wb") as f:
                f.write(b"not an onnx model")
        http(srv, "POST", "/v2/logging", {"log_error": False})
        broken("broken_quiet")
        time.sleep(2.5)  # two polls
        check("log_error false: no error line for a model failing to load", "broken_quiet" not in srv.output(),
              srv.output()[-500:])
        http(srv, "POST", "/v2/logging", {"log_error": True})
        broken("broken_loud")
        check("log_error true: the error line", wait_log(srv, lambda log: "broken_loud" in log), srv.output()[-500:])

        # log_format: ISO8601 puts a timestamp and level letter before every line; json an object
        status, doc = http(srv, "POST", "/v2/logging", {"log_format": "ISO8601", "log_verbose_level": 0})
        check("POST log_format ISO8601", status == 200 and doc["log_format"] == "ISO8601", doc)
        http(srv, "GET", "/v2/health/live", rid="mark-iso")
        check("ISO8601: '<time>Z I <remote> ...'",
              wait_log(srv, lambda log: any(ln[:4].isdigit() and ln[19:23] == "Z I " and "id=mark-iso" in ln
                                            for ln in log.splitlines())), srv.output()[-500:])
        check("gRPC sets log_format json", grpc_settings(log_format="json").get("log_format") == "json")
        http(srv, "GET", "/v2/health/live", rid="mark-json")

        def json_line(log):
            for ln in log.splitlines():
                if ln.startswith("{") and "\"mark-json\"" in ln:
                    doc = json.loads(ln)
                    return doc.get("level") == "info" and doc.get("status") == 200
            return False
        check("json: one object per access line", wait_log(srv, json_line), srv.output()[-500:])
        http(srv, "POST", "/v2/logging", {"log_format": "default"})

        # refusals, the same on both protocols; nothing of a refused change applies
        before = http(srv, "GET", "/v2/logging")[1]
        cases = [
            ({"log_info": "no"}, 400, "expect boolean for 'log_info'"),
            ({"log_verbose_level": -1}, 400, "expect int32 for 'log_verbose_level'"),
            ({"log_verbose_level": 1.5}, 400, "expect int32 for 'log_verbose_level'"),
            ({"log_verbose_level": True}, 400, "expect int32 for 'log_verbose_level'"),
            ({"log_format": "xml"}, 400, "invalid argument for log_format, got: xml"),
            ({"log_format": 3}, 400, "expect string for 'log_format'"),
            ({"log_colour": True}, 400, "unknown log setting 'log_colour'"),
            ({"log_file": "log_file.log"}, 400, "log file location can not be updated through network protocol"),
            ({"log_info": False, "log_warning": "x"}, 400, "expect boolean for 'log_warning'"),
        ]
        for body, want, words in cases:
            status, doc = http(srv, "POST", "/v2/logging", body)
            check(f"POST {json.dumps(body)}: {want}, '{words}'", status == want and isinstance(doc, dict)
                  and doc.get("error", "").startswith(words), (status, doc))
        for raw in (b"[1]", b"{", b"\"x\""):
            status, doc = http(srv, "POST", "/v2/logging", raw=raw)
            check(f"POST {raw!r}: 400", status == 400 and "error" in doc, (status, doc))
        check("nothing of a refused change applied", http(srv, "GET", "/v2/logging")[1] == before)
        status, doc = http(srv, "POST", "/v2/logging", {"log_file": "", "log_error": None})
        check("log_file \"\" (the current) and null values are taken", status == 200 and doc == before, (status, doc))
        status, doc = http(srv, "POST", "/v2/logging", raw=b"")
        check("POST with no body answers the settings", status == 200 and doc == before, (status, doc))
        status, _ = http(srv, "PUT", "/v2/logging", {})
        check("PUT /v2/logging: 405", status == 405, status)

        gcases = [
            ({"log_info": "no"}, grpc.StatusCode.INVALID_ARGUMENT, "expect boolean for 'log_info'"),
            ({"log_verbose_level": True}, grpc.StatusCode.INVALID_ARGUMENT, "expect int32 for 'log_verbose_level'"),
            ({"log_format": "xml"}, grpc.StatusCode.INVALID_ARGUMENT, "invalid argument for log_format, got: xml"),
            ({"log_colour": True}, grpc.StatusCode.INVALID_ARGUMENT, "unknown log setting 'log_colour'"),
            ({"log_file": "log_file.log"}, grpc.StatusCode.UNIMPLEMENTED,
             "log file location can not be updated through network protocol"),
            ({"log_warning": False, "log_info": 3}, grpc.StatusCode.INVALID_ARGUMENT, "expect boolean for 'log_info'"),
        ]
        for changes, code, words in gcases:
            got = grpc_settings(**changes)
            check(f"gRPC LogSettings {changes}: {code.name}, '{words}'", isinstance(got, tuple) and got[0] == code
                  and (got[1] or "").startswith(words), got)
        check("gRPC: nothing of a refused change applied", grpc_settings() == before, grpc_settings())
        check("gRPC: an empty SettingValue changes nothing", grpc_settings(log_info=None) == before)
        check("gRPC: a malformed request is INVALID_ARGUMENT",
              _raw_call(channel, b"\x0a\x05\x0a\x08") == grpc.StatusCode.INVALID_ARGUMENT)
    finally:
        channel.close()
        check_stopped(srv)

    # the flags set where the settings start
    srv = Server(repo, "--log-info=false", "--log-verbose", "2", "--log-format", "ISO8601", "--log-error=false")
    try:
        status, doc = http(srv, "GET", "/v2/logging")
        check("the flags set the start", doc == dict(DEFAULTS, log_info=False, log_error=False, log_verbose_level=2,
                                                     log_format="ISO8601"), doc)
        check("--log-info=false: no serving line", "serving" not in srv.output(), srv.output()[-300:])
    finally:
        check_stopped(srv, "flags")
    import subprocess
    bad = subprocess.run([CELER, "serve", "--model-repository", repo, "--log-format", "xml"], capture_output=True,
                         text=True, timeout=30)
    check("--log-format xml refused naming the flag", bad.returncode != 0 and "--log-format" in bad.stderr, bad.stderr)


def _raw_call(channel, body):
    """The status code of LogSettings called with raw bytes `body`."""
    import grpc
    call = channel.unary_unary("/inference.GRPCInferenceService/LogSettings",
                               request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        call(body, timeout=10)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


if __name__ == "__main__":
    sys.exit(main())
