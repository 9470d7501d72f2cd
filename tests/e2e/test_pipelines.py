#!/usr/bin/python3
"""End-to-end tests of the example pipelines (examples/repository/{recommend,classify,route},
written by scripts/make_pipeline_examples.py): starts the real server on loopback on a copy of the
example repository and compares every answer with the same pipeline recomputed in numpy from the
pipeline's files and the ONNX initializers (numpy, onnx and python3-pil only).

usage: test_pipelines.py CELER_BIN EXAMPLE_REPOSITORY
Prints one line per check and "N passed, M failed"; exits non-zero when any failed."""
import base64
import io
import json
import os
import shutil
import sys
import tempfile
import threading

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_server import Server, check, summary  # noqa: E402

PICTURES = os.path.join(os.path.dirname(HERE), "data", "pipeline")
K = 10
DEFAULTS = {"user_id": 0, "age": 35.0, "income": 0.0, "country": "other", "device": "web", "exclude": []}
COUNTRIES = ["us", "de", "fr", "gb", "jp"]
DEVICES = ["ios", "android", "web"]


def initializers(repo, model):
    m = onnx.load(os.path.join(repo, model, "1", "model.onnx"))
    return {t.name: numpy_helper.to_array(t).astype(np.float64) for t in m.graph.initializer}


def one_hot(index, depth):
    out = np.zeros(depth)
    if 0 <= index < depth:
        out[index] = 1
    return out


# ---- recommend: numpy reference ---------------------------------------------------------------------


class Recommend:
    """recommend/pipeline.yaml in numpy (float64; the server computes in float32)."""

    def __init__(self, repo):
        folder = os.path.join(repo, "recommend")
        self.items = np.load(os.path.join(folder, "items.npy")).astype(np.float64)
        self.ids = np.load(os.path.join(folder, "item_ids.npy"))
        sample = np.load(os.path.join(folder, "age_sample.npy")).astype(np.float64)
        # bucketize with sample + bins 8: the 7 inner quantiles (numpy's default, linear)
        self.bounds = np.quantile(sample, [i / 8 for i in range(1, 8)])
        self.w = initializers(repo, "user_tower")

    def features(self, row):
        r = dict(DEFAULTS, **{k: v for k, v in row.items() if v is not None})
        age_bin = int(np.searchsorted(self.bounds, r["age"], side="right"))
        income = float(r["income"])
        income = 0.0 if np.isnan(income) else max(income, 0.0)
        income = (np.log1p(income) - 10.0) / 1.5
        country = COUNTRIES.index(r["country"]) if r["country"] in COUNTRIES else 5
        device = DEVICES.index(r["device"]) if r["device"] in DEVICES else 3
        return np.concatenate([one_hot(age_bin, 8), [income], one_hot(country, 6), one_hot(device, 4)])

    def embed(self, row):
        w = self.w
        h = np.maximum(w["tower.fc1.weight"] @ self.features(row) + w["tower.fc1.bias"], 0)
        return w["tower.fc2.weight"] @ h + w["tower.fc2.bias"]

    def scores(self, row):
        return self.items @ self.embed(row)

    def top(self, row, k=K):
        s = self.scores(row).copy()
        s[np.isin(self.ids, row.get("exclude") or [])] = -np.inf
        order = np.lexsort((self.ids, -s))[:k]  # best first, ties to the lower id
        return self.ids[order], s[order]

    def verify(self, row, got_ids, got_scores):
        """'' when (got_ids, got_scores) is a correct top-k for row, else what is wrong. Exact ids
        are required where the reference's scores are clearly apart; near-ties may swap."""
        want_ids, want_scores = self.top(row)
        got_ids, got_scores = np.asarray(got_ids), np.asarray(got_scores, dtype=np.float64)
        if got_ids.shape != (K,) or got_scores.shape != (K,):
            return f"shapes {got_ids.shape} {got_scores.shape}, want ({K},)"
        excluded = set(row.get("exclude") or [])
        if excluded & set(got_ids.tolist()):
            return f"excluded ids returned: {sorted(excluded & set(got_ids.tolist()))}"
        if len(set(got_ids.tolist())) != K:
            return f"duplicate ids {got_ids.tolist()}"
        pos = {int(i): n for n, i in enumerate(self.ids)}
        if any(int(i) not in pos for i in got_ids):
            return f"unknown ids in {got_ids.tolist()}"
        all_scores = self.scores(row)
        ref_of_got = np.array([all_scores[pos[int(i)]] for i in got_ids])
        tol = 1e-4 * max(1.0, np.abs(want_scores).max())
        if np.abs(ref_of_got - got_scores).max() > tol:
            return f"scores {got_scores.tolist()} differ from the reference {ref_of_got.tolist()}"
        if np.any(np.diff(got_scores) > tol):
            return f"scores not descending: {got_scores.tolist()}"
        if ref_of_got.min() < want_scores[-1] - tol:
            return f"missed a better item: got {got_ids.tolist()}, want {want_ids.tolist()}"
        if np.all(np.abs(np.diff(self.top(row, K + 1)[1])) > 10 * tol) and not np.array_equal(got_ids, want_ids):
            return f"ids {got_ids.tolist()}, want {want_ids.tolist()}"
        return ""


def plain_rows(doc, names):
    """A plain-form response for one object ({name: row value}) -> {name: value}; errors -> None."""
    if not isinstance(doc, dict) or any(n not in doc for n in names):
        return None
    return doc


def kserve_outputs(doc):
    """A KServe v2 response -> ([names in order], {name: np.array shaped})."""
    outs = doc["outputs"]
    arrays = {}
    for o in outs:
        data = np.array(o["data"], dtype=object if o["datatype"] == "BYTES" else None)
        arrays[o["name"]] = data.reshape(o["shape"])
    return [o["name"] for o in outs], arrays


def test_recommend(srv, ref):
    user = {"user_id": 42, "age": 31, "income": 52000, "country": "de", "device": "ios"}
    # the ages used here must not sit on a quantile boundary (float32 vs float64 would decide)
    ages = [31, 23, 35, 47, 62, 18.5]
    check("recommend: test ages are clear of the quantile boundaries",
          min(abs(a - b) for a in ages for b in ref.bounds) > 1e-3, ref.bounds)

    status, doc, _ = srv.json("POST", "/v2/models/recommend/infer", dict(user, exclude=[]))
    got = plain_rows(doc, ["item_ids", "scores"]) if status == 200 else None
    err = ref.verify(user, got["item_ids"], got["scores"]) if got else "no plain response"
    check("recommend: plain JSON object -> plain object, top 10 as numpy", status == 200 and not err,
          (status, err, doc))
    top = got["item_ids"] if got else [0] * K
    check("recommend: plain response has exactly item_ids and scores", got is not None
          and sorted(doc) == ["item_ids", "scores"], doc)

    row = dict(user, exclude=[top[0], top[3], 12345])
    status, doc, _ = srv.json("POST", "/v2/models/recommend/infer", row)
    got = plain_rows(doc, ["item_ids", "scores"]) if status == 200 else None
    err = ref.verify(row, got["item_ids"], got["scores"]) if got else "no plain response"
    check("recommend: excluded ids are absent, the next ones move up", status == 200 and not err
          and top[0] not in got["item_ids"] and top[3] not in got["item_ids"], (status, err, doc))

    # absent fields take the defaults; so does null, except that a null number is NaN (missing
    # value: fill_missing's business), so only fields where both readings agree are nulled here
    for name, row in (("only age", {"age": 47}), ("nulls", {"income": None, "country": None, "device": None}),
                      ("empty object", {})):
        status, doc, _ = srv.json("POST", "/v2/models/recommend/infer", row)
        got = plain_rows(doc, ["item_ids", "scores"]) if status == 200 else None
        err = ref.verify(row, got["item_ids"], got["scores"]) if got else "no plain response"
        check(f"recommend: defaults ({name})", status == 200 and not err, (status, err, doc))

    # a JSON array of objects: N rows, an array of plain objects back
    rows = [dict(user, exclude=[top[1], top[2]]),
            {"user_id": 5, "age": 62, "income": 150000, "country": "br", "device": "android", "exclude": [1, 2]},
            {"user_id": 6, "age": 18.5, "income": -5, "country": "jp", "device": "tv", "exclude": [top[5], top[6]]}]
    status, doc, _ = srv.json("POST", "/v2/models/recommend/infer", rows)
    ok = status == 200 and isinstance(doc, list) and len(doc) == 3
    errs = [ref.verify(r, d["item_ids"], d["scores"]) if plain_rows(d, ["item_ids", "scores"]) else "not plain"
            for r, d in zip(rows, doc)] if ok else ["bad response"]
    check("recommend: JSON array of 3 objects -> array of 3 objects", ok and not any(errs), (status, errs, doc))
    # objects that leave out different fields, excludes of different lengths: either each row
    # right with its own defaults, or a 400 saying what to change; never a wrong answer
    rows = [dict(user, exclude=[top[1], top[2]]), {"age": 62, "country": "br"}, {"age": 23, "exclude": [top[5]]}]
    status, doc, _ = srv.json("POST", "/v2/models/recommend/infer", rows)
    if status == 200:
        ok = isinstance(doc, list) and len(doc) == 3
        errs = [ref.verify(r, d["item_ids"], d["scores"]) if plain_rows(d, ["item_ids", "scores"]) else "not plain"
                for r, d in zip(rows, doc)] if ok else ["bad response"]
        ok = ok and not any(errs)
    else:
        errs = None
        ok = status == 400 and isinstance(doc, dict) and isinstance(doc.get("error"), str)
    check("recommend: array of objects with different fields -> right rows or a clear 400", ok, (status, errs, doc))

    # KServe v2 tensors, 2 rows; user_id, device and exclude absent -> defaults
    body = {"id": "k1", "inputs": [
        {"name": "age", "shape": [2], "datatype": "FP32", "data": [23, 47]},
        {"name": "income", "shape": [2], "datatype": "FP32", "data": [31000, 87000]},
        {"name": "country", "shape": [2], "datatype": "BYTES", "data": ["us", "gb"]},
    ]}
    rows = [{"age": 23, "income": 31000, "country": "us"}, {"age": 47, "income": 87000, "country": "gb"}]
    status, doc, _ = srv.json("POST", "/v2/models/recommend/infer", body)
    err = "bad response"
    if status == 200 and isinstance(doc, dict) and "outputs" in doc:
        names, arrays = kserve_outputs(doc)
        if names != ["item_ids", "scores"]:
            err = f"outputs {names}"
        elif arrays["item_ids"].shape != (2, K) or arrays["scores"].shape != (2, K):
            err = f"shapes {arrays['item_ids'].shape} {arrays['scores'].shape}"
        elif doc["outputs"][0]["datatype"] != "INT64" or doc["outputs"][1]["datatype"] != "FP32":
            err = f"datatypes {[o['datatype'] for o in doc['outputs']]}"
        else:
            err = "; ".join(e for e in (ref.verify(r, arrays["item_ids"][i], arrays["scores"][i])
                                        for i, r in enumerate(rows)) if e)
        if not err and (doc.get("model_name") != "recommend" or doc.get("id") != "k1"):
            err = f"model_name/id {doc.get('model_name')} {doc.get('id')}"
    check("recommend: KServe v2 tensors, 2 rows, absent inputs defaulted", status == 200 and not err,
          (status, err, doc))

    # KServe with an exclude tensor [2, 2]
    body["inputs"].append({"name": "exclude", "shape": [2, 2], "datatype": "INT64",
                           "data": [top[0], top[1], top[0], 7]})
    rows[0]["exclude"], rows[1]["exclude"] = [top[0], top[1]], [top[0], 7]
    status, doc, _ = srv.json("POST", "/v2/models/recommend/infer", body)
    err = "bad response"
    if status == 200 and isinstance(doc, dict) and "outputs" in doc:
        _, arrays = kserve_outputs(doc)
        err = "; ".join(e for e in (ref.verify(r, arrays["item_ids"][i], arrays["scores"][i])
                                    for i, r in enumerate(rows)) if e)
    check("recommend: KServe v2 with an exclude tensor [2, 2]", status == 200 and not err, (status, err, doc))

    # concurrent clients: requests of the model step batch together; every answer stays right
    failures = []

    def client(seed):
        r = np.random.default_rng(seed)
        for _ in range(15):
            row = {"age": float(r.choice(ages)), "income": float(r.integers(0, 200000)),
                   "country": str(r.choice(COUNTRIES + ["xx"])), "device": str(r.choice(DEVICES)),
                   "exclude": [int(x) for x in r.choice(ref.ids[:50], 3)]}
            st, d, _ = srv.json("POST", "/v2/models/recommend/infer", row)
            e = ref.verify(row, d["item_ids"], d["scores"]) if st == 200 and plain_rows(d, ["item_ids", "scores"]) \
                else f"status {st}"
            if e:
                failures.append((row, e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check("recommend: 6 concurrent clients x 15 requests", not failures, failures[:2])


# ---- classify: numpy reference ------------------------------------------------------------------------


def resize_bilinear(img, out_h, out_w):
    """[H, W, C] -> [out_h, out_w, C] float64; half-pixel centres, edges clamped, no antialias."""
    def axis(n_out, n_in):
        src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
        i0 = np.floor(src).astype(np.int64)
        return i0, np.minimum(i0 + 1, n_in - 1), src - i0

    y0, y1, fy = axis(out_h, img.shape[0])
    x0, x1, fx = axis(out_w, img.shape[1])
    img = img.astype(np.float64)
    fx = fx[None, :, None]
    top = img[y0][:, x0] * (1 - fx) + img[y0][:, x1] * fx
    bottom = img[y1][:, x0] * (1 - fx) + img[y1][:, x1] * fx
    return top * (1 - fy[:, None, None]) + bottom * fy[:, None, None]


def conv2d(x, w, b, stride=2, pad=1):
    """NCHW convolution, square kernel, symmetric padding."""
    k = w.shape[-1]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("ncijkl,ockl->noij", win, w) + b[None, :, None, None]


class Classify:
    """classify/pipeline.yaml in numpy. The resize may keep floats or round back to uint8: both are
    computed, and an answer must match one of them."""

    def __init__(self, repo):
        self.w = initializers(repo, "tiny_cnn")
        with open(os.path.join(repo, "classify", "labels.txt")) as f:
            self.labels = [line.rstrip("\n") for line in f if line.strip()]

    def probabilities(self, pixels, round_resize):
        h, w = pixels.shape[:2]
        s = 72 / min(h, w)
        out_h, out_w = (72, int(round(w * s))) if h <= w else (int(round(h * s)), 72)
        img = resize_bilinear(pixels, out_h, out_w)
        if round_resize:
            img = np.clip(np.floor(img + 0.5), 0, 255)
        top, left = (out_h - 64) // 2, (out_w - 64) // 2
        img = img[top:top + 64, left:left + 64]
        x = img.transpose(2, 0, 1)[None] / 255.0
        x = (x - np.array([0.485, 0.456, 0.406])[None, :, None, None]) / np.array([0.229, 0.224, 0.225])[None, :, None, None]
        w = self.w
        r = np.maximum(conv2d(x, w["conv1.weight"], w["conv1.bias"]), 0)
        r = np.maximum(conv2d(r, w["conv2.weight"], w["conv2.bias"]), 0)
        logits = r.mean(axis=(2, 3)) @ w["fc.weight"].T + w["fc.bias"]
        e = np.exp(logits[0] - logits[0].max())
        return e / e.sum()

    def verify(self, pixels, ids, probs, labels, tol):
        """'' when the top-5 answer fits the reference (either resize convention) within tol."""
        ids, probs = np.asarray(ids), np.asarray(probs, dtype=np.float64)
        if ids.shape != (5,) or probs.shape != (5,) or len(labels) != 5:
            return f"shapes {ids.shape} {probs.shape} {len(labels)}"
        if list(labels) != [self.labels[int(i)] if 0 <= int(i) < len(self.labels) else None for i in ids]:
            return f"labels {labels} do not name ids {ids.tolist()}"
        if np.any(np.diff(probs) > 1e-6) or probs.sum() > 1 + 1e-5 or probs.min() < 0:
            return f"probabilities not descending or summing over 1: {probs.tolist()}"
        errs = []
        for round_resize in (False, True):
            p = self.probabilities(pixels, round_resize)
            want = np.argsort(-p, kind="stable")[:5]
            if np.abs(p[ids] - probs).max() > tol:
                errs.append(f"probs {probs.tolist()} vs reference {p[ids].tolist()}")
            elif np.all(np.abs(np.diff(np.sort(p)[::-1][:6])) > 2 * tol) and not np.array_equal(ids, want):
                errs.append(f"ids {ids.tolist()}, want {want.tolist()}")
            elif p[ids].min() < p[want].min() - tol:
                errs.append(f"ids {ids.tolist()} miss a likelier class {want.tolist()}")
            else:
                return ""
        return " / ".join(errs)


def classify_answer(doc):
    """(class_ids, probabilities, labels, output names) from a KServe or a plain response."""
    if isinstance(doc, dict) and "outputs" in doc:
        names, arrays = kserve_outputs(doc)
        return arrays["class_ids"][0], arrays["probabilities"][0], list(arrays["labels"][0]), names
    if isinstance(doc, dict) and {"class_ids", "probabilities", "labels"} <= set(doc):
        return doc["class_ids"], doc["probabilities"], doc["labels"], list(doc)
    raise ValueError("no class_ids/probabilities/labels")


def test_classify(srv, ref):
    from PIL import Image  # Debian python3-pil

    for ext, ctype, tol in (("jpg", "image/jpeg", 1e-2), ("png", "image/png", 2e-3)):
        data = open(os.path.join(PICTURES, "cat." + ext), "rb").read()
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        for form in ("raw body", "base64 in a KServe BYTES input"):
            if form == "raw body":
                status, body, _ = srv.request("POST", "/v2/models/classify/infer", data, {"Content-Type": ctype})
            else:
                doc = {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                                   "data": [base64.b64encode(data).decode()]}]}
                status, body, _ = srv.request("POST", "/v2/models/classify/infer", json.dumps(doc).encode(),
                                              {"Content-Type": "application/json"})
            try:
                doc = json.loads(body)
                ids, probs, labels, names = classify_answer(doc)
                err = ref.verify(pixels, ids, probs, labels, tol)
                if not err and names != ["labels", "probabilities", "class_ids"]:
                    err = f"outputs in the order {names}"
            except (ValueError, KeyError, TypeError, IndexError) as e:
                err = f"{type(e).__name__}: {e}"
            check(f"classify: {ext.upper()} as {form} -> top-5 labels as numpy", status == 200 and not err,
                  (status, err, body[:400]))


# ---- route -------------------------------------------------------------------------------------------


def test_route(srv, repo):
    premium, basic = initializers(repo, "mlp"), initializers(repo, "mlp_basic")

    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    def want(segment, x):
        if segment == "premium":
            h = np.maximum(x @ premium["fc1.weight"].T + premium["fc1.bias"], 0)
            return sigmoid(h @ premium["fc2.weight"] + premium["fc2.bias"])
        return sigmoid(x @ basic["basic.weight"].T + basic["basic.bias"])

    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 16)).astype(np.float32)
    check("route: the two branches differ", np.abs(want("premium", x) - want("basic", x)).max() > 0.05)
    for segment in ("premium", "basic", "gold"):
        # plain object, one row
        status, doc, _ = srv.json("POST", "/v2/models/route/infer", {"segment": segment, "features": x[0].tolist()})
        ok = status == 200 and isinstance(doc, dict) and "scores" in doc
        ok = ok and np.allclose(np.array(doc["scores"], dtype=np.float64), want(segment, x[:1].astype(np.float64))[0],
                                atol=1e-5)
        branch = "default (basic)" if segment == "gold" else segment
        check(f"route: plain object, segment {segment!r} -> {branch}", ok, (status, doc))
        # KServe tensors, 3 rows of the same segment
        body = {"inputs": [{"name": "segment", "shape": [3], "datatype": "BYTES", "data": [segment] * 3},
                           {"name": "features", "shape": [3, 16], "datatype": "FP32", "data": x.flatten().tolist()}]}
        status, doc, _ = srv.json("POST", "/v2/models/route/infer", body)
        try:
            _, arrays = kserve_outputs(doc)
            ok = status == 200 and np.allclose(arrays["scores"].astype(np.float64), want(segment, x.astype(np.float64)),
                                               atol=1e-5)
        except (KeyError, TypeError, ValueError):
            ok = False
        check(f"route: KServe 3 rows, segment {segment!r} -> {branch}", ok, (status, doc))


# ---- errors ------------------------------------------------------------------------------------------


def test_errors(srv, repo):
    jpeg_ct = {"Content-Type": "image/jpeg"}
    json_ct = {"Content-Type": "application/json"}
    x = [0.5] * 16
    cases = [
        ("recommend: malformed JSON", "/v2/models/recommend/infer", b'{"age": 31, "country": ', json_ct, 400),
        ("recommend: age is a string", "/v2/models/recommend/infer", json.dumps({"age": "abc"}).encode(), json_ct, 400),
        ("recommend: exclude is not a list of integers", "/v2/models/recommend/infer",
         json.dumps({"exclude": ["x"]}).encode(), json_ct, 400),
        ("recommend: KServe age as BYTES", "/v2/models/recommend/infer", json.dumps(
            {"inputs": [{"name": "age", "shape": [1], "datatype": "BYTES", "data": ["abc"]}]}).encode(), json_ct, 400),
        ("classify: garbage image bytes", "/v2/models/classify/infer", bytes(range(256)) * 8, jpeg_ct, 400),
        ("classify: JPEG cut inside its header", "/v2/models/classify/infer",
         open(os.path.join(PICTURES, "cat.jpg"), "rb").read()[:100], jpeg_ct, 400),
        ("classify: base64 that is no image", "/v2/models/classify/infer", json.dumps(
            {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                         "data": [base64.b64encode(b"not an image at all").decode()]}]}).encode(), json_ct, 400),
        ("route: segments of the rows differ", "/v2/models/route/infer", json.dumps(
            {"inputs": [{"name": "segment", "shape": [2], "datatype": "BYTES", "data": ["premium", "basic"]},
                        {"name": "features", "shape": [2, 16], "datatype": "FP32", "data": x * 2}]}).encode(),
         json_ct, 400),
        ("route: segment missing (no default)", "/v2/models/route/infer", json.dumps({"features": x}).encode(),
         json_ct, 400),
        ("route: features of the wrong length", "/v2/models/route/infer",
         json.dumps({"segment": "basic", "features": x[:15]}).encode(), json_ct, 400),
        ("unknown pipeline", "/v2/models/no_such_pipeline/infer", json.dumps({"age": 31}).encode(), json_ct, 404),
    ]
    for name, path, body, headers, want in cases:
        status, resp, _ = srv.request("POST", path, body, headers)
        try:
            doc = json.loads(resp)
            ok = status == want and list(doc) == ["error"] and isinstance(doc["error"], str) and doc["error"]
        except (ValueError, TypeError):
            ok = False
        check(f"error: {name} -> {want} with {{\"error\": ...}}", ok, (status, resp[:300]))
    status, _, _ = srv.request("GET", "/v2/health/live")
    status2, doc, _ = srv.json("POST", "/v2/models/recommend/infer", {"age": 31})
    check("the server stays up after the errors", status == 200 and status2 == 200 and "item_ids" in (doc or {}),
          (status, status2, doc))


# ---- metadata, repository index, metrics -------------------------------------------------------------------


def test_metadata(srv):
    status, doc, _ = srv.json("GET", "/v2/models/recommend")
    try:
        inputs = [(i["name"], i["datatype"], i["shape"]) for i in doc["inputs"]]
        outputs = [o["name"] for o in doc["outputs"]]
    except (KeyError, TypeError):
        inputs, outputs = None, None
    check("metadata: recommend lists its declared inputs", status == 200 and inputs == [
        ("user_id", "INT64", [-1]), ("age", "FP32", [-1]), ("income", "FP32", [-1]), ("country", "BYTES", [-1]),
        ("device", "BYTES", [-1]), ("exclude", "INT64", [-1, -1])], (status, doc))
    check("metadata: recommend lists its outputs", outputs == ["item_ids", "scores"], doc)
    check("metadata: name and version", status == 200 and doc.get("name") == "recommend"
          and doc.get("versions") in (None, ["1"]), doc)
    for name in ("recommend", "classify", "route"):
        status, _, _ = srv.request("GET", f"/v2/models/{name}/ready")
        check(f"ready: {name}", status == 200, status)
    status, _, _ = srv.request("GET", "/v2/health/ready")
    check("server ready with every pipeline and model loaded", status == 200, status)
    status, doc, _ = srv.json("POST", "/v2/repository/index", {})
    states = {e.get("name"): e.get("state") for e in doc} if status == 200 and isinstance(doc, list) else {}
    check("repository index lists the pipelines READY", all(states.get(n) == "READY" for n in (
        "recommend", "classify", "route", "user_tower", "tiny_cnn", "mlp", "mlp_basic")), doc)
    status, body, _ = srv.request("GET", "/metrics")
    lines = [ln for ln in body.decode(errors="replace").splitlines()
             if ln.startswith("celer_pipeline_step_duration_seconds") and 'pipeline="recommend"' in ln]
    check("metrics: celer_pipeline_step_duration_seconds{pipeline=\"recommend\"}", status == 200 and lines,
          body[:600])


def test_reload(srv, repo):
    """Edits recommend/pipeline.yaml and reloads it through the repository API: a good edit takes
    effect, a broken one is refused with file and line while the loaded pipeline keeps serving."""
    path = os.path.join(repo, "recommend", "pipeline.yaml")
    original = open(path).read()
    body = {"age": 31, "country": "de"}
    try:
        with open(path, "w") as f:
            f.write(original.replace("k: 10,", "k: 3,"))
        code, doc, _ = srv.json("POST", "/v2/repository/models/recommend/load")
        check("reload: edited pipeline loads", code == 200, (code, doc))
        code, doc, _ = srv.json("POST", "/v2/models/recommend/infer", body)
        check("reload: the edit takes effect (k 3)", code == 200 and len(doc.get("item_ids", [])) == 3, (code, doc))
        with open(path, "w") as f:
            f.write(original.replace("one_hot: {input: age_bin, depth: 8", "one_hot: {input: age_bin, dpth: 8"))
        code, doc, _ = srv.json("POST", "/v2/repository/models/recommend/load")
        msg = doc.get("error", "") if isinstance(doc, dict) else ""
        check("reload: a broken pipeline is refused naming file, line and step",
              code == 400 and "pipeline.yaml:" in msg and "one_hot" in msg and "dpth" in msg, (code, doc))
        code, doc, _ = srv.json("POST", "/v2/models/recommend/infer", body)
        check("reload: the loaded pipeline keeps serving", code == 200 and len(doc.get("item_ids", [])) == 3,
              (code, doc))
    finally:
        with open(path, "w") as f:
            f.write(original)
        srv.json("POST", "/v2/repository/models/recommend/load")


def main():
    celer, repo_src = sys.argv[1], sys.argv[2]
    if not os.path.isfile(os.path.join(repo_src, "recommend", "pipeline.yaml")):
        sys.exit(f"{repo_src} has no recommend/pipeline.yaml: run scripts/make_pipeline_examples.py")
    if not os.access(celer, os.X_OK):
        sys.exit(f"{celer} is not an executable")
    tmp = tempfile.mkdtemp(prefix="celer-e2e-pipelines-")
    repo = os.path.join(tmp, "repository")
    shutil.copytree(repo_src, repo)
    srv = Server(repo)
    try:
        for name, run in (("recommend", lambda: test_recommend(srv, Recommend(repo))),
                          ("classify", lambda: test_classify(srv, Classify(repo))),
                          ("route", lambda: test_route(srv, repo)),
                          ("errors", lambda: test_errors(srv, repo)),
                          ("metadata", lambda: test_metadata(srv)),
                          ("reload", lambda: test_reload(srv, repo))):
            try:
                run()
            except Exception as e:  # an unexpected answer shape: one failure, then the next group
                check(f"{name}: no exception in the test", False, f"{type(e).__name__}: {e}")
    finally:
        code = srv.stop()
        check("SIGTERM exits 0", code == 0, (code, srv.output()[-2000:]))
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
