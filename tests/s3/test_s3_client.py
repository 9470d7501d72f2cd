#!/usr/bin/python3
"""The S3 client against a real S3 that checks signatures: starts OpenStack Swift with s3api
(tests/s3/swift.sh) on loopback, seeds a bucket with boto3 (tests/s3/s3util.py), then runs the
client's unit test binary (tests/unit/test_s3.c) with CELER_S3_ENDPOINT set, so that its live cases
run. Usage: test_s3_client.py TEST_S3_BINARY"""
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import s3util  # noqa: E402


def free_port_block(n=4):
    """A port p with p .. p+n-1 free now (Swift's proxy and its three servers), below the ephemeral
    range: there, a busy test's client connections in TIME_WAIT hold ports a server cannot bind."""
    low = 32768
    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    rng = random.Random(os.getpid() ^ int(time.time() * 1000))
    for _ in range(200):
        p = rng.randrange(10000, max(low - n, 10001))
        ok = True
        for q in range(p, p + n):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", q))
                except OSError:
                    ok = False
                    break
        if ok:
            return p
    raise SystemExit("no block of free ports")


def main():
    binary = sys.argv[1]
    work = tempfile.mkdtemp(prefix="celer-s3-")
    swift_dir, copy_dir = os.path.join(work, "swift"), os.path.join(work, "copy")
    os.makedirs(copy_dir)
    port = free_port_block()
    endpoint = "http://127.0.0.1:%d" % port
    subprocess.run([os.path.join(HERE, "swift.sh"), "start", swift_dir, str(port)], check=True)
    try:
        c = s3util.client(endpoint)
        bucket = "celer-test"
        c.create_bucket(Bucket=bucket)
        c.put_object(Bucket=bucket, Key="repo/small.txt", Body=b"hello s3\n")
        c.put_object(Bucket=bucket, Key="repo/a&b c.txt", Body=b"amp")
        for i in range(12):
            c.put_object(Bucket=bucket, Key="repo/many/k%03d" % i, Body=b"%d" % i)
        big = os.path.join(work, "big.bin")
        with open(big, "wb") as f:
            f.write(os.urandom(20 << 20))
        c.upload_file(big, bucket, "repo/big.bin")  # multipart from 8 MB: 3 parts
        c.put_object(Bucket=bucket, Key="other/x", Body=b"outside the prefix")
        # a repository without READY markers for the copy's case
        c.put_object(Bucket=bucket, Key="mirror/m/config.pbtxt", Body=b"name: \"m\"\n")
        for i in range(12):
            c.put_object(Bucket=bucket, Key="mirror/m/1/k%03d" % i, Body=b"v0-%d" % i)
        env = dict(os.environ, CELER_S3_ENDPOINT=endpoint, CELER_S3_BUCKET=bucket, CELER_S3_TMPDIR=copy_dir,
                   CELER_S3_UTIL="/usr/bin/python3 " + os.path.join(HERE, "s3util.py"))
        r = subprocess.run([binary], env=env)
        if r.returncode:
            raise SystemExit("test_s3 against Swift failed (%d)" % r.returncode)
        print("S3 client against Swift s3api: ok")
    finally:
        subprocess.run([os.path.join(HERE, "swift.sh"), "stop", swift_dir])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
