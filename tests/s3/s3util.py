"""Seeds and changes buckets of the test S3 server (tests/s3/swift.sh) with Debian's boto3.

Run with /usr/bin/python3 (python3 on PATH may lack python3-boto3). As a module: client().
As a command:
  s3util.py mkbucket ENDPOINT BUCKET
  s3util.py put ENDPOINT BUCKET KEY FILE         multipart from 8 MB, so the ETag ends in -N
  s3util.py putdir ENDPOINT BUCKET PREFIX DIR    DIR/a/b goes to PREFIX/a/b ("" for none)
  s3util.py rm ENDPOINT BUCKET KEY
  s3util.py rmprefix ENDPOINT BUCKET PREFIX
  s3util.py ls ENDPOINT BUCKET PREFIX            key, size, ETag (quoted, as S3 sends it)
ENDPOINT is http://127.0.0.1:PORT; the credentials default to swift.sh's user.
"""
import argparse
import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def client(endpoint, key="test:tester", secret="testing"):
    """A SigV4, path-style client for us-east-1 (the region swift.sh's s3api has)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def mkbucket(s3, bucket):
    """Creates the bucket; one that already exists is fine."""
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as e:
        if e.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise


def put(s3, bucket, key, path):
    s3.upload_file(path, bucket, key)


def putdir(s3, bucket, prefix, folder):
    """Uploads every file under folder, keys joined with '/'; returns the keys, sorted."""
    keys = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder).replace(os.sep, "/")
            key = f"{prefix.rstrip('/')}/{rel}" if prefix else rel
            s3.upload_file(path, bucket, key)
            keys.append(key)
    return keys


def ls(s3, bucket, prefix=""):
    """[(key, size, etag)] under prefix, over all pages; the ETag keeps its quotes."""
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [(o["Key"], o["Size"], o["ETag"]) for o in page.get("Contents", [])]
    return out


def rm(s3, bucket, key):
    s3.delete_object(Bucket=bucket, Key=key)


def rmprefix(s3, bucket, prefix):
    """Deletes every key under prefix (a multi-object delete per 1,000); returns how many."""
    keys = [k for k, _, _ in ls(s3, bucket, prefix)]
    for i in range(0, len(keys), 1000):
        batch = [{"Key": k} for k in keys[i:i + 1000]]
        r = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        if r.get("Errors"):
            raise RuntimeError(f"delete failed: {r['Errors']}")
    return len(keys)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, args in (("mkbucket", ()), ("put", ("key", "file")), ("putdir", ("prefix", "dir")),
                       ("rm", ("key",)), ("rmprefix", ("prefix",)), ("ls", ("prefix",))):
        sp = sub.add_parser(name)
        for a in ("endpoint", "bucket") + args:
            sp.add_argument(a)
    a = p.parse_args(argv)
    s3 = client(a.endpoint)
    try:
        if a.cmd == "mkbucket":
            mkbucket(s3, a.bucket)
        elif a.cmd == "put":
            put(s3, a.bucket, a.key, a.file)
        elif a.cmd == "putdir":
            putdir(s3, a.bucket, a.prefix, a.dir)
        elif a.cmd == "rm":
            rm(s3, a.bucket, a.key)
        elif a.cmd == "rmprefix":
            rmprefix(s3, a.bucket, a.prefix)
        elif a.cmd == "ls":
            for key, size, etag in ls(s3, a.bucket, a.prefix):
                print(f"{key}\t{size}\t{etag}")
    except ClientError as e:
        err = e.response.get("Error", {})
        sys.exit(f"s3util {a.cmd}: {err.get('Code')}: {err.get('Message')}")


if __name__ == "__main__":
    main()
