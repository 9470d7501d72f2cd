#!/usr/bin/python3
"""End-to-end: deploy/'s Kubernetes and KServe manifests, validated without a cluster, then run.
tests/deploy/check.mjs (node, npm packages installed into a cache folder outside the repository
when missing) reads the files every kustomization.yaml under deploy/ lists and checks them with
kubernetes-models (types, required fields, enums), tsc on kubernetes-types typed literals (unknown
fields at any depth) and KServe's CRD schemas made strict (ajv); a broken copy of each manifest,
made at test time, must be refused; and it cross-checks them against celer: the flags and CELER_*
variables exist (from `celer serve --help`), probes and ports, grace period, security context,
worker count. `kubectl kustomize` runs on each kustomization when kubectl is installed (skipped
otherwise: no Debian 12 package has a recent one). Then celer runs with each celer container's
args and environment as the kubelet would give them (ports moved to free ones, path flags to the
folders standing for their volumes, CELER_WORKERS from the CPU request, the ConfigMap volume laid
out as the kubelet does, with its ..data symlinks): ready, an inference on mlp, the drain on SIGTERM
and exit 0 within the grace period; the S3 variant against Swift's s3api (tests/s3/swift.sh); the
Deployment with its Redis variables uncommented against a real redis-server with a password. If the npm packages
cannot be installed the test fails: it never passes without having run.

usage: test_manifests.py CELER_BIN EXAMPLE_REPOSITORY
environment: CELER_NODE_CACHE, the folder holding node_modules (default ~/.cache/celer-test/node)"""
import base64
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from node_cache import NODE_CACHE, node_modules, run_checks  # noqa: E402
from test_server import check, free_port, summary  # noqa: E402

CELER = sys.argv[1]
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CHECK_JS = os.path.join(ROOT, "tests", "deploy", "check.mjs")
REDIS_PASSWORD = "0123456789abcdef0123456789abcdef"  # as `openssl rand -hex 16` gives
NODE_PACKAGES = ["ajv@8.20.0", "ajv-formats@3.0.1", "js-yaml@4.3.2", "typescript@5.9.3",
                 "kubernetes-models@5.1.0",  # ajv validators from the Kubernetes 1.34 OpenAPI
                 "kubernetes-types@1.30.0"]  # TypeScript interfaces of the API objects


def serve_flags():
    """celer serve's flags from its --help: {name: {env, default}}."""
    r = subprocess.run([CELER, "serve", "--help"], capture_output=True, text=True, timeout=30)
    flags, last = {}, None
    for line in (r.stdout + r.stderr).splitlines():
        m = re.match(r"^  --([a-z0-9-]+)\s", line)
        if m:
            last = flags[m.group(1)] = {"env": None, "default": None}
            continue
        m = re.match(r"^\s+env (CELER_[A-Z0-9_]+), default ?(.*)$", line)
        if m and last is not None:
            last["env"], last["default"] = m.group(1), m.group(2)
    return flags


def run_check(tmp, flags_json):
    return run_checks(["node", CHECK_JS, os.path.join(NODE_CACHE, "node_modules"), ROOT, tmp, flags_json], check)


def kustomize():
    kubectl = shutil.which("kubectl")
    if not kubectl:
        print("SKIP kubectl kustomize: kubectl is not installed (no Debian 12 package has a recent one; "
              "check.mjs read the files the kustomizations list)", flush=True)
        return
    for dirpath, _, files in sorted(os.walk(os.path.join(ROOT, "deploy"))):
        if "kustomization.yaml" in files:
            r = subprocess.run([kubectl, "kustomize", dirpath], capture_output=True, text=True, timeout=60)
            kinds = re.findall(r"^kind: (\w+)$", r.stdout, re.M)
            check(f"kubectl kustomize {os.path.relpath(dirpath, ROOT)}: builds ({', '.join(kinds)})",
                  r.returncode == 0 and kinds, r.stderr[-1000:])


def configmap_volume(where, cm):
    """A ConfigMap volume as the kubelet writes it: the files in a timestamped folder, ..data a
    symlink to it, and each top-level entry a symlink through ..data."""
    stamp = "..2026_01_01_00_00_00.000000001"
    for it in cm["items"]:
        key = it["key"]
        data = cm["data"][key].encode() if key in cm["data"] else base64.b64decode(cm["binaryData"][key])
        path = os.path.join(where, stamp, it["path"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    os.symlink(stamp, os.path.join(where, "..data"))
    for top in sorted({it["path"].split("/")[0] for it in cm["items"]}):
        os.symlink(os.path.join("..data", top), os.path.join(where, top))


def get(port, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body else {}
        conn.request("POST" if body else "GET", path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def run_container(c, tmp, extra_env=None, redis_port=None, full_drain=True, s3=None):
    """Starts celer with container c's args and environment (ports and paths moved), checks it
    serves and drains; without full_drain a second SIGTERM ends the drain delay early (as celer
    allows), which saves the test its seconds. s3: {url, variables} standing for the bucket the
    manifest names and the values of its Secret's keys."""
    label = c["label"] + (" (Redis variables uncommented)" if extra_env else "")
    work = tempfile.mkdtemp(prefix="run-", dir=tmp)
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    paths = {}  # mountPath -> local folder
    for name, mount in mounts.items():
        local = os.path.join(work, name)
        os.makedirs(local)
        if name in c["configMaps"]:
            configmap_volume(local, c["configMaps"][name])
            if redis_port:  # a model that caches its answers, so that celer goes to Redis
                with open(os.path.join(local, "mlp", "config.pbtxt"), "a") as f:
                    f.write("response_cache { enable: true }\n")
        paths[mount] = local
    if c["kserve"]:  # the storage initializer fills /mnt/models: the example repository's two models
        local = os.path.join(work, "mnt-models")
        os.makedirs(local)
        for m in ("identity", "mlp"):
            shutil.copytree(os.path.join(ROOT, "examples", "repository", m), os.path.join(local, m))
        paths["/mnt/models"] = local
    ports = {}
    args = []
    for a in c["args"]:
        m = re.match(r"^--(http|grpc|metrics)-port=(\d+)$", a)
        if m:
            ports[m.group(1)] = free_port()
            a = f"--{m.group(1)}-port={ports[m.group(1)]}"
        if s3 and a.startswith("--model-repository=s3://"):
            a = "--model-repository=" + s3["url"]
        m = re.match(r"^(--[a-z-]+=)(/.*)$", a)  # a path in a volume: the volume's local folder
        if m:
            within = [p for p in paths if m.group(2) == p or m.group(2).startswith(p.rstrip("/") + "/")]
            check(f"{label}: {a} is a path in one of the container's volumes", within, paths)
            if not within:
                return
            a = m.group(1) + paths[within[0]] + m.group(2)[len(within[0]):]
        args.append(a)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELER_") and k != "TMPDIR"}
    env["TMPDIR"] = paths.get("/tmp", work)
    values = {}
    for ef in c["envFrom"]:  # the Secret's keys, with the test S3 server's values
        for key in c["secrets"].get(ef.get("secretRef", {}).get("name"), []):
            values[key] = env[key] = s3["variables"][key]
    for e in c["env"] + (extra_env or []):
        if "value" in e:
            # the kubelet expands $(VAR) from the variables defined before
            v = re.sub(r"\$\((\w+)\)", lambda m: values.get(m.group(1), m.group(0)), e["value"])
            if redis_port:
                v = v.replace("@celer-redis:6379", f"@127.0.0.1:{redis_port}")
        elif "resourceFieldRef" in e.get("valueFrom", {}):
            ref = e["valueFrom"]["resourceFieldRef"]
            q = c["resources"]["requests"]["cpu"]
            cpus = int(q[:-1]) / 1000 if q.endswith("m") else float(q)
            v = str(math.ceil(cpus / float(ref["divisor"])))  # the kubelet rounds up
        elif "secretKeyRef" in e.get("valueFrom", {}):
            v = REDIS_PASSWORD
        else:
            continue
        values[e["name"]] = env[e["name"]] = v
    log_path = os.path.join(work, "log")
    with open(log_path, "wb") as log:
        t0 = time.time()
        proc = subprocess.Popen([CELER] + args, stdout=log, stderr=log, env=env)
    try:
        ready = None
        while time.time() < t0 + 30 and proc.poll() is None:
            try:
                if get(ports["http"], "/v2/health/ready")[0] == 200:
                    ready = time.time() - t0
                    break
            except OSError:
                pass
            time.sleep(0.05)
        out = lambda: open(log_path, errors="replace").read()[-3000:]  # noqa: E731
        check(f"{label}: celer starts with the manifest's args and environment and is ready", ready is not None,
              f"args {args}: {out()}")
        if ready is None:
            return
        print(f"{label}: ready {ready:.2f} s after start; CELER_WORKERS={env.get('CELER_WORKERS')}", flush=True)
        check(f"{label}: live", get(ports["http"], "/v2/health/live")[0] == 200)
        x = [float(i) / 16 for i in range(16)]
        body = json.dumps({"inputs": [{"name": "features", "shape": [1, 16], "datatype": "FP32", "data": x}]}).encode()
        status, answer = get(ports["http"], "/v2/models/mlp/infer", body)
        check(f"{label}: mlp (from the volume) answers an inference", status == 200 and b"scores" in answer,
              answer[:300])
        if s3:
            cached = [os.path.relpath(os.path.join(d, f), work) for d, _, fs in os.walk(work) for f in fs
                      if f == "model.onnx"]
            check(f"{label}: the bucket's copy is in the --model-cache-dir volume", any(
                p.startswith("model-cache" + os.sep) for p in cached), cached)
        if "metrics" in ports:
            status, text = get(ports["metrics"], "/metrics")
            check(f"{label}: /metrics on the metrics port", status == 200 and b"nv_inference" in text, text[:200])
        if "grpc" in ports:
            with socket.create_connection(("127.0.0.1", ports["grpc"]), timeout=5):
                pass
        if redis_port:  # the answer cached under celer:<key>, through the URL and password the manifest builds
            get(ports["http"], "/v2/models/mlp/infer", body)
            r = subprocess.run(["redis-cli", "-p", str(redis_port), "-a", REDIS_PASSWORD, "--no-auth-warning", "--scan",
                                "--pattern", "celer:*"], capture_output=True, text=True, timeout=10)
            check(f"{label}: the answer is cached in Redis (AUTH with the Secret's password)",
                  r.returncode == 0 and r.stdout.strip().startswith("celer:"), (r.stdout, r.stderr, out()))
        t_sig = time.time()
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        status, _ = get(ports["http"], "/v2/health/ready")
        check(f"{label}: readiness 503 at once after SIGTERM (drain)", status == 503, status)
        if not full_drain:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=c["grace"] + 5)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.time() - t_sig
        check(f"{label}: exit 0 {took:.1f} s after SIGTERM: after the drain delay ({c['drain']} s), within "
              f"terminationGracePeriodSeconds ({c['grace']} s)" if full_drain else
              f"{label}: exit 0 {took:.1f} s after SIGTERM (a second one ended the drain delay)",
              rc == 0 and (c["drain"] - 0.5 if full_drain else 0) <= took < c["grace"],
              (rc, took, out()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def run_s3(c, tmp):
    """The S3 variant against tests/s3/swift.sh (OpenStack Swift's s3api, which checks every
    signature): the bucket and prefix the manifest names, holding the ConfigMap's two models."""
    if not shutil.which("swift-proxy-server"):
        print(f"SKIP {c['label']}: OpenStack Swift is not installed (scripts/deps.sh --test); its flags were checked",
              flush=True)
        return
    sys.path.insert(0, os.path.join(ROOT, "tests", "s3"))
    import s3util  # noqa: E402 (boto3: Debian's python3-boto3)
    from test_s3_client import free_port_block  # noqa: E402
    url = next(a for a in c["args"] if a.startswith("--model-repository=s3://"))[len("--model-repository=s3://"):]
    bucket, _, prefix = url.partition("/")
    port = free_port_block()
    swift_dir = os.path.join(tempfile.mkdtemp(prefix="swift-", dir=tmp), "swift")
    swift = os.path.join(ROOT, "tests", "s3", "swift.sh")
    subprocess.run([swift, "start", swift_dir, str(port)], check=True, timeout=120)
    try:
        s3 = s3util.client(f"http://127.0.0.1:{port}")
        s3util.mkbucket(s3, bucket)
        for m in ("identity", "mlp"):
            s3util.putdir(s3, bucket, f"{prefix}/{m}", os.path.join(ROOT, "examples", "repository", m))
        run_container(c, tmp, full_drain=False, s3={
            "url": f"s3://127.0.0.1:{port}/{bucket}/{prefix}",  # s3://host:port/bucket/prefix: plain HTTP
            "variables": {"AWS_ACCESS_KEY_ID": "test:tester", "AWS_SECRET_ACCESS_KEY": "testing"}})
    finally:
        subprocess.run([swift, "stop", swift_dir], timeout=60)


def main():
    t_start = time.time()
    have = node_modules(NODE_PACKAGES)
    check("ajv, ajv-formats, js-yaml, typescript, kubernetes-models and kubernetes-types are installed (npm)",
          have is not None, f"npm could not install {NODE_PACKAGES} into {NODE_CACHE}")
    if have is None:
        return summary()
    tmp = tempfile.mkdtemp(prefix="celer-e2e-manifests-")
    try:
        flags = serve_flags()
        check("celer serve --help lists its flags with their variables", len(flags) > 40 and
              flags.get("drain-delay-secs", {}).get("env") == "CELER_DRAIN_DELAY_SECS", list(flags)[:10])
        flags_json = os.path.join(tmp, "flags.json")
        with open(flags_json, "w") as f:
            json.dump(flags, f)
        t0 = time.time()
        done = run_check(tmp, flags_json)
        print(f"check.mjs: {time.time() - t0:.1f} s", flush=True)
        kustomize()
        if not done:
            return summary()
        with open(os.path.join(tmp, "celer-containers.json")) as f:
            containers = json.load(f)
        for c in containers:
            if any(a.startswith("--model-repository=s3://") for a in c["args"]):
                run_s3(c, tmp)
                continue
            run_container(c, tmp, full_drain=c["file"] == "deploy/kubernetes/deployment.yaml")
        base = next((c for c in containers if c["file"] == "deploy/kubernetes/deployment.yaml"), None)
        redis = shutil.which("redis-server")
        if base and base["commentedEnv"] and redis:
            port = free_port()
            rdir = tempfile.mkdtemp(prefix="redis-", dir=tmp)
            rproc = subprocess.Popen([redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--requirepass", REDIS_PASSWORD,
                                      "--dir", rdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                deadline = time.time() + 10
                while time.time() < deadline:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        break
                    except OSError:
                        time.sleep(0.05)
                run_container(base, tmp, extra_env=base["commentedEnv"], redis_port=port, full_drain=False)
            finally:
                rproc.terminate()
                rproc.wait()
        elif base and base["commentedEnv"]:
            print("SKIP the Redis variant: redis-server is not installed", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"test_manifests: {time.time() - t_start:.1f} s in all", flush=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
