#!/usr/bin/python3
"""End-to-end: the server reads nothing outside a model's folder, and says so without its paths.

Builds a repository in a temporary folder whose models name files outside themselves (a pipeline
with `labels: /etc/passwd` or `../` names or a symlinked labels file, a config.pbtxt, a version
folder, a model.onnx and a whole model folder symlinked to outside) and one with 300 version
folders under `version_policy: all`: the server must start, serve the good models, report each bad
one UNAVAILABLE with a reason that names files relative to the repository and quotes nothing it
was not allowed to read, and keep a model's /metrics series across a reload of the same version.

usage: test_repository_files.py CELER_BIN EXAMPLE_REPOSITORY"""
import os
import re
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_server import Server, check, summary  # noqa: E402

SECRET = "SECRETTOKEN4711"  # in every outside file: must never appear in an answer


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def labels_pipeline(labels):
    return ("inputs: [{name: x, dtype: FP32, shape: [3]}]\n"
            "steps:\n"
            f"  - top_k: {{input: x, k: 1, labels: {labels}, output: [ids, scores, names]}}\n"
            "outputs: [names]\n")


def main():
    tmp = tempfile.mkdtemp(prefix="celer-repo-files-")
    real_tmp = os.path.realpath(tmp)
    repo = os.path.join(tmp, "repository")
    outside = os.path.join(tmp, "outside")
    os.makedirs(repo)
    shutil.copytree(os.path.join(sys.argv[2], "mlp"), os.path.join(repo, "mlp"))
    mlp_onnx = os.path.join(sys.argv[2], "mlp", "1", "model.onnx")
    identity_onnx = os.path.join(sys.argv[2], "identity", "1", "model.onnx")

    # files outside the repository
    write(os.path.join(outside, "secret.txt"), SECRET + "\nsecond line\n")
    write(os.path.join(outside, "config.pbtxt"), SECRET + " is not a config\n")
    shutil.copytree(os.path.join(sys.argv[2], "mlp", "1"), os.path.join(outside, "version"))
    shutil.copytree(os.path.join(sys.argv[2], "mlp"), os.path.join(outside, "model_folder"))

    # pipelines naming files: inside (served), absolute, ../, a symlink to outside
    write(os.path.join(repo, "labels_ok", "labels.txt"), "a\nb\nc\n")
    write(os.path.join(repo, "labels_ok", "pipeline.yaml"), labels_pipeline("labels.txt"))
    write(os.path.join(repo, "labels_abs", "pipeline.yaml"), labels_pipeline("/etc/passwd"))
    write(os.path.join(repo, "labels_abs_secret", "pipeline.yaml"),
          labels_pipeline(os.path.join(outside, "secret.txt")))
    write(os.path.join(repo, "labels_dotdot", "pipeline.yaml"), labels_pipeline("../../outside/secret.txt"))
    write(os.path.join(repo, "labels_link", "pipeline.yaml"), labels_pipeline("labels.txt"))
    os.symlink(os.path.join(outside, "secret.txt"), os.path.join(repo, "labels_link", "labels.txt"))
    # model folders with files linked to outside
    os.makedirs(os.path.join(repo, "config_link", "1"))
    shutil.copy(mlp_onnx, os.path.join(repo, "config_link", "1", "model.onnx"))
    os.symlink(os.path.join(outside, "config.pbtxt"), os.path.join(repo, "config_link", "config.pbtxt"))
    os.makedirs(os.path.join(repo, "version_link"))
    os.symlink(os.path.join(outside, "version"), os.path.join(repo, "version_link", "1"))
    os.makedirs(os.path.join(repo, "onnx_link", "1"))
    os.symlink(os.path.join(outside, "version", "model.onnx"), os.path.join(repo, "onnx_link", "1", "model.onnx"))
    os.symlink(os.path.join(outside, "model_folder"), os.path.join(repo, "folder_link"))
    # a symlink inside the model folder is fine
    os.makedirs(os.path.join(repo, "inner_link", "1"))
    shutil.copy(mlp_onnx, os.path.join(repo, "inner_link", "1", "real.onnx"))
    os.symlink("real.onnx", os.path.join(repo, "inner_link", "1", "model.onnx"))
    # a broken model: its reason names the file relative to the repository
    write(os.path.join(repo, "broken", "1", "model.onnx"), "not an onnx file")
    # more version folders than a model may have (a stack overflow at start before)
    many = os.path.join(repo, "many")
    write(os.path.join(many, "config.pbtxt"), "version_policy: { all {} }\n")
    for v in range(1, 301):
        os.makedirs(os.path.join(many, str(v)))
        os.link(identity_onnx, os.path.join(many, str(v), "model.onnx"))

    srv = Server(repo, "--quiet")
    try:
        status, index, _ = srv.json("POST", "/v2/repository/index")
        check("the server starts and lists the repository", status == 200 and isinstance(index, list), (status, index))
        state = {e["name"]: (e["state"], e.get("reason", "")) for e in index or []}
        print("\n".join(f"  {n}: {s} {r}" for n, (s, r) in sorted(state.items())))
        for name in ("mlp", "labels_ok", "inner_link"):
            check(f"{name} is READY", state.get(name, ("",))[0] == "READY", state.get(name))
        refused = {
            "labels_abs": "'labels': an absolute path is refused",
            "labels_abs_secret": "'labels': an absolute path is refused",
            "labels_dotdot": "'labels': '../../outside/secret.txt' resolves outside its folder",
            "labels_link": "'labels': 'labels.txt' resolves outside its folder",
            "config_link": "'config.pbtxt' resolves outside its folder",
            "version_link": "'1/model.onnx' resolves outside its folder",
            "onnx_link": "'1/model.onnx' resolves outside its folder",
            "folder_link": "the model folder 'folder_link' resolves outside the repository",
            "many": "'many' has 300 version folders, at most 256",
        }
        for name, reason in refused.items():
            st, why = state.get(name, ("absent", ""))
            check(f"{name} is UNAVAILABLE: {reason}", st == "UNAVAILABLE" and reason in why, (st, why))
        st, why = state.get("broken", ("absent", ""))
        check("a load error names the file relative to the repository",
              st == "UNAVAILABLE" and "broken/1/model.onnx" in why, why)
        text = str(index)
        check("no reason carries a server path", tmp not in text and real_tmp not in text, text)
        check("no reason quotes a file outside", SECRET not in text and "root:" not in text, text)
        check("pipeline reasons name pipeline.yaml relative to the repository",
              "labels_abs/pipeline.yaml:" in state.get("labels_abs", ("", ""))[1], state.get("labels_abs"))

        # answers for the refused models say the same, without paths
        status, doc, _ = srv.json("POST", "/v2/models/labels_abs/infer",
                                  {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]})
        check("inference on a refused pipeline is 503 without a server path",
              status == 503 and tmp not in str(doc) and real_tmp not in str(doc), (status, doc))
        status, doc, _ = srv.json("POST", "/v2/repository/models/config_link/load")
        check("loading a refused model through the API: 400 naming the file, no path, nothing quoted",
              status == 400 and "'config.pbtxt' resolves outside" in str(doc) and tmp not in str(doc)
              and real_tmp not in str(doc) and SECRET not in str(doc), (status, doc))
        status, doc, _ = srv.json("POST", "/v2/repository/models/many/load")
        check("loading the model with 300 versions: 413 with the reason", status == 413 and "300 version" in str(doc),
              (status, doc))
        status, doc, _ = srv.json("POST", "/v2/models/labels_ok/infer",
                                  {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 5, 3]}]})
        check("a pipeline with its labels inside its folder answers", status == 200
              and doc["outputs"][0]["data"] == ["b"], (status, doc))
        log = "\n".join(line for line in srv.output().splitlines() if not line.startswith("celer: serving"))
        check("the log names no server path", tmp not in log and real_tmp not in log, log[:2000])

        # metrics survive a reload of the same version
        body = {"inputs": [{"name": "features", "shape": [1, 16], "datatype": "FP32", "data": [0.5] * 16}]}
        status, _, _ = srv.json("POST", "/v2/models/mlp/infer", body)
        check("mlp answers", status == 200, status)

        def series():
            _, text, _ = srv.request("GET", "/metrics")
            text = text.decode()
            found = {}
            for name in ('celer_inference_requests_total{model="mlp",version="1",protocol="http",outcome="success"}',
                         'celer_inference_queue_depth{model="mlp",version="1"}',
                         'celer_model_load_duration_seconds{model="mlp",version="1"}',
                         'celer_inference_request_duration_seconds_count{model="mlp",version="1",protocol="http"}'):
                m = re.search(re.escape(name) + r" (\S+)", text)
                found[name] = float(m.group(1)) if m else None
            return found

        before = series()
        check("mlp's series are in /metrics", all(v is not None for v in before.values()), before)
        for _ in range(2):
            status, doc, _ = srv.json("POST", "/v2/repository/models/mlp/load")
            check("reload of the same version", status == 200, (status, doc))
        after = series()
        check("mlp's series are still in /metrics after reloading the same version",
              all(v is not None for v in after.values()), after)
        status, _, _ = srv.json("POST", "/v2/models/mlp/infer", body)
        later = series()
        key = 'celer_inference_requests_total{model="mlp",version="1",protocol="http",outcome="success"}'
        check("the request counter goes on counting after the reload", (before[key] or 0) >= 1
              and later[key] == before[key] + 1, (before, later))
        # a reload that fails keeps the serving version's series too
        write(os.path.join(repo, "mlp", "config.pbtxt"), "max_batch_size: \"not a number\"\n")
        status, doc, _ = srv.json("POST", "/v2/repository/models/mlp/load")
        check("a failed reload is an error naming mlp/config.pbtxt", status >= 400 and "mlp/config.pbtxt" in str(doc)
              and tmp not in str(doc), (status, doc))
        kept = series()
        check("the serving version keeps its series after a failed reload", all(v is not None for v in kept.values()),
              kept)
        status, _, _ = srv.json("POST", "/v2/models/mlp/infer", body)
        check("mlp still answers", status == 200, status)
        # unloading removes them
        status, _, _ = srv.json("POST", "/v2/repository/models/mlp/unload")
        gone = series()
        check("unloading removes the series", status == 200 and all(v is None for v in gone.values()), (status, gone))
    finally:
        code = srv.stop()
        check("clean shutdown", code == 0, code)
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(summary())


if __name__ == "__main__":
    main()
