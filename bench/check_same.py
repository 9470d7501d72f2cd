#!/usr/bin/python3
"""Checks that celer and the FastAPI service return the same MLP scores for the same row, and that
celer's trivial model echoes its input, before anything is measured.

    check_same.py CELER_URL FASTAPI_URL BODIES_DIR      (URLs like http://127.0.0.1:18431)
"""
import json
import sys
import urllib.request

MAX_REL_DIFF = 1e-4


def post(url, path):
    with open(path, "rb") as f:
        body = f.read()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    celer, fastapi, bodies = sys.argv[1:]
    got = post(celer + "/v2/models/mlp/infer", bodies + "/celer_mlp.json")["outputs"][0]["data"]
    want = post(fastapi + "/predict", bodies + "/fastapi_mlp.json")["scores"]
    if len(got) != len(want):
        sys.exit(f"check: celer returned {len(got)} scores, FastAPI {len(want)}")
    # relative to the output's scale, so that scores near 0 do not blow the ratio up
    scale = max(abs(w) for w in want)
    rel = max(abs(g - w) for g, w in zip(got, want)) / scale
    print(f"check: mlp, celer vs FastAPI: {len(got)} scores, max diff / max |score| = {rel:.2e}")
    if not rel <= MAX_REL_DIFF:
        sys.exit(f"check: FAILED, limit {MAX_REL_DIFF:g}")

    sent = json.load(open(bodies + "/identity.json"))["inputs"][0]["data"]
    echo = post(celer + "/v2/models/identity/infer", bodies + "/identity.json")["outputs"][0]["data"]
    if echo != sent:
        sys.exit(f"check: identity returned {echo}, sent {sent}")
    print("check: identity echoes its input")


if __name__ == "__main__":
    main()
