#!/usr/bin/python3
"""The container image (Containerfile, scripts/image.sh) end to end with podman: built from the
build folder of the celer given, run as a deployment runs it (read-only root, uid 65532, every
capability dropped, no new privileges, the repository mounted read-only, one CPU), it answers
/v2/health/ready and an inference, counts one worker under --cpus 1, turns unready on SIGTERM
(podman stop) and exits 0; the image stays under its size target.

usage: test_image.py CELER_BIN EXAMPLE_REPOSITORY
Skips (exit 77, ctest's SKIP_RETURN_CODE) with the reason where podman is missing, where the
kernel or sandbox refuses containers, and for sanitizer builds (the image is made from a release
build: the release pass of scripts/test.sh runs it). Removes the image and containers it makes."""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import check, free_port, infer_body, mlp_reference, summary  # noqa: E402

CELER, REPO = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SKIP = 77
MAX_IMAGE_BYTES = 110_000_000  # the target with S3 support (docs/deploy.md, "Image")
ENV = dict(os.environ, CONTAINERS_CONF=os.path.join(SRC, "scripts", "containers.conf"))


def skip(why):
    print(f"SKIP test_image: {why}", flush=True)
    sys.exit(SKIP)


def podman(*args, timeout=120, check_rc=False):
    r = subprocess.run(["podman", *args], env=ENV, capture_output=True, text=True, timeout=timeout)
    if check_rc and r.returncode:
        raise RuntimeError(f"podman {' '.join(args)} exited {r.returncode}: {r.stderr.strip()[-2000:]}")
    return r


def containers_work():
    """(None, whether --cpus works) when this kernel runs a container, else (podman's error, False).
    Tried on a root folder of the host's /bin/true and the libraries it loads, so that a broken
    celer image is not taken for a refusing kernel. --cpus needs the cgroup cpu controller, which
    rootless podman on cgroup v2 may not be given."""
    root = tempfile.mkdtemp(prefix="celer-image-true-")
    try:
        true = shutil.which("true") or "/bin/true"
        libs = subprocess.run(["ldd", true], capture_output=True, text=True).stdout.split()
        for path in [true] + [p for p in libs if p.startswith("/")]:
            dest = os.path.join(root, path.lstrip("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy(os.path.realpath(path), dest)
        r = podman("run", "--rm", "--network", "none", "--rootfs", root, true, timeout=60)
        if r.returncode:
            return r.stderr.strip() or f"exit {r.returncode}", False
        r = podman("run", "--rm", "--network", "none", "--cpus", "1", "--rootfs", root, true, timeout=60)
        if r.returncode:
            print(f"     note: --cpus refused here, the worker count goes unchecked: {r.stderr.strip()[-300:]}")
        return None, r.returncode == 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def request(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def running(name):
    return podman("inspect", name, "--format", "{{.State.Running}}").stdout.strip() == "true"


def wait_status(port, path, want, seconds, name=None):
    """Polls until path answers want (True, want), for at most seconds, or until the container
    name stops running (False, the last status or error)."""
    deadline = time.monotonic() + seconds
    status = None
    polls = 0
    while time.monotonic() < deadline and not (name and polls % 25 == 24 and not running(name)):
        polls += 1
        try:
            status = request(port, "GET", path)[0]
            if status == want:
                return True, status
        except OSError as e:
            status = str(e)
        time.sleep(0.02)
    return False, status


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def logs(name):
    r = podman("logs", name)
    return r.stdout + r.stderr


def worker_threads(pid):
    n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                n += f.read().strip() == "celer-worker"
        except OSError:
            pass
    return n


def main():
    if os.environ.get("CELER_SANITIZED") in ("1", "ON", "TRUE", "true"):
        skip("sanitizer build; the image is made from a release build (scripts/test.sh's release pass runs this)")
    if not shutil.which("podman"):
        skip("podman is not installed (scripts/deps.sh --test installs it)")
    refused, cpus = containers_work()
    if refused:
        skip("this kernel or sandbox refuses containers: " + refused.splitlines()[-1][:500])

    tag = f"localhost/celer-test:{uuid.uuid4().hex[:12]}"
    name = "celer-test-" + uuid.uuid4().hex[:12]
    try:
        t0 = time.monotonic()
        r = subprocess.run([os.path.join(SRC, "scripts", "image.sh")], capture_output=True, text=True, timeout=300,
                           env=dict(ENV, CELER_BUILD_DIR=os.path.dirname(CELER), CELER_IMAGE=tag,
                                    CELER_IMAGE_VARIANT="scratch", CELER_IMAGE_CACHE="0"))
        check("scripts/image.sh builds the image", r.returncode == 0, r.stdout + r.stderr)
        if r.returncode:
            return summary()
        print(f"     built in {time.monotonic() - t0:.1f} s: {r.stdout.strip().splitlines()[-1]}")
        info = json.loads(podman("image", "inspect", tag, check_rc=True).stdout)[0]
        size, cfg = info["Size"], info["Config"]
        check(f"image size {size / 1e6:.1f} MB <= {MAX_IMAGE_BYTES / 1e6:.0f} MB", size <= MAX_IMAGE_BYTES, size)
        check("image config: user 65532, entrypoint celer, ports 8000-8002",
              cfg.get("User") == "65532:65532" and cfg.get("Entrypoint") == ["/usr/bin/celer"]
              and {"8000/tcp", "8001/tcp", "8002/tcp"} <= set(cfg.get("ExposedPorts", {})), cfg)

        port = free_port()
        t0 = time.monotonic()
        # the image's default drain delay (5 s) shortened to 1 s: long enough to see readiness turn
        # 503 while it still serves, short enough for CI
        r = podman("run", "-d", "--name", name, "--read-only", "--cap-drop", "ALL",
                   "--security-opt", "no-new-privileges", *(["--cpus", "1"] if cpus else []),
                   "-e", "CELER_DRAIN_DELAY_SECS=1",
                   "-v", f"{REPO}:/models:ro", "-p", f"127.0.0.1:{port}:8000", tag,
                   "serve", "--model-repository", "/models", timeout=60)
        check("podman run starts the container", r.returncode == 0, r.stderr)
        if r.returncode:
            return summary()
        ok, status = wait_status(port, "/v2/health/ready", 200, 20, name)
        ready_s = time.monotonic() - t0
        check(f"ready (/v2/health/ready 200) {ready_s:.2f} s after podman run", ok, (status, logs(name)))
        if not ok:
            return summary()

        x = np.random.default_rng(3).standard_normal((2, 16)).astype(np.float32)
        ref = mlp_reference(REPO, x)
        status, body = request(port, "POST", "/v2/models/mlp/infer", json.dumps(infer_body(x)).encode())
        doc = json.loads(body) if status == 200 else body
        got = np.array(doc["outputs"][0]["data"], dtype=np.float32).reshape(2, 8) if status == 200 else None
        check("inference in the container matches numpy",
              status == 200 and np.abs(got - ref).max() <= 1e-5 * max(1, np.abs(ref).max()), (status, doc))

        # as the container sees itself (podman top reads /proc through the container's user namespace,
        # so this holds for rootless podman too): user celer is uid 65532 in the image's /etc/passwd
        top = podman("top", name, "user", "group", "capeff", "capbnd", "seccomp").stdout.split("\n")[1].split()
        check("runs as celer (65532), no capabilities, seccomp", top == ["celer", "celer", "none", "none", "filter"],
              top)
        pid = int(podman("inspect", name, "--format", "{{.State.Pid}}", check_rc=True).stdout)
        st = proc_status(pid)
        check("no new privileges", st.get("NoNewPrivs") == "1", st.get("NoNewPrivs"))
        ro = podman("inspect", name, "--format", "{{.HostConfig.ReadonlyRootfs}}").stdout.strip()
        check("root file system read-only", ro == "true", ro)
        if cpus:
            workers = worker_threads(pid)
            check(f"--cpus 1: one inference worker (celer-worker threads: {workers})", workers == 1, workers)

        t0 = time.monotonic()
        stop = subprocess.Popen(["podman", "stop", "-t", "10", name], env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        ok, status = wait_status(port, "/v2/health/ready", 503, 5)
        check("draining after SIGTERM: ready 503 while still answering", ok, status)
        stop.wait(timeout=30)
        code = podman("inspect", name, "--format", "{{.State.ExitCode}}").stdout.strip()
        out = logs(name)
        check(f"podman stop (SIGTERM) exits 0 after {time.monotonic() - t0:.1f} s",
              stop.returncode == 0 and code == "0" and "exiting" in out, (stop.returncode, code, out[-2000:]))
    finally:
        podman("rm", "-f", "-t", "0", name, timeout=60)
        podman("rmi", "-f", tag, timeout=60)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
