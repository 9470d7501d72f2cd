#!/usr/bin/python3
"""Exports real PyTorch models to ONNX (opset 17) with inputs and PyTorch reference outputs, for
tests/models/check_real_models.sh. Run with /usr/bin/python3 (python3-torch 1.13, torchvision 0.14,
python3-onnx); no network: every weight is random from a fixed seed.

  export_models.py OUTDIR [--force] [--only NAME[,NAME...]] [--list]

writes, for each model NAME in resnet50, bert_tiny, mlp:
  OUTDIR/NAME/model.onnx
  OUTDIR/NAME/inputs/<onnx input name>.npy
  OUTDIR/NAME/expected/<onnx output name>.npy   (PyTorch eager, float32)
  OUTDIR/NAME/inputs_K/, expected_K/            (K = 1, ...: more input sets with other batch or
                                                 sequence sizes, exercising the dynamic axes)
  OUTDIR/NAME/ops.txt                           (op histogram of model.onnx)
A model whose directory is complete is skipped unless --force. Each model is built in a temporary
directory and renamed into place, so an interrupted run never leaves a half-written model behind."""
import argparse
import collections
import os
import shutil
import sys
import warnings

import numpy as np
import onnx
import torch
from torch import nn

OPSET = 17


def seeded(seed):
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


# ---- models ----

def randomize_batchnorm(model, seed):
    """Non-trivial BatchNorm statistics and affine parameters, so that folding or running BN is
    actually exercised. Scales stay near 1 so activations keep a sane range through 50 layers
    (instead of drifting towards denormals or overflow, which would also distort timings)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(c, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)


def build_resnet50():
    import torchvision

    seeded(50)
    model = torchvision.models.resnet50(weights=None)
    randomize_batchnorm(model, 51)
    model.eval()
    x = torch.from_numpy(np.random.default_rng(52).standard_normal((1, 3, 224, 224)).astype(np.float32))
    # TrainingMode.PRESERVE (the model is in eval mode) keeps BatchNormalization nodes in the file,
    # as in published ResNet-50 ONNX models; TrainingMode.EVAL would fold them into the convs.
    export = {"training": torch.onnx.TrainingMode.PRESERVE}
    return model, [{"input": x}], ["logits"], {"input": {0: "batch"}, "logits": {0: "batch"}}, export


class BertEncoder(nn.Module):
    """Token + learned positional embeddings, a post-norm encoder (GELU) and a final LayerNorm; the
    defaults are the tests' tiny one (bench/engine_models.py builds BERT-base with it)."""

    def __init__(self, vocab=1000, d=64, heads=4, ff=128, layers=2, max_len=128):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(1, max_len, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, activation="gelu", batch_first=True)
        # enable_nested_tensor=False and grad-enabled parameters keep torch 1.13 off its fused
        # fast path, which the ONNX exporter cannot translate.
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)

    def forward(self, input_ids):
        x = self.tok(input_ids) + self.pos[:, : input_ids.shape[1]]
        return self.norm(self.encoder(x))


def build_bert_tiny():
    seeded(64)
    model = BertEncoder()
    with torch.no_grad():  # LayerNorm affine parameters away from the 1/0 defaults
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(m.bias.shape) * 0.1)
    model.train(False)
    rng = np.random.default_rng(65)
    ids = torch.from_numpy(rng.integers(0, 1000, size=(2, 16), dtype=np.int64))
    ids_1 = torch.from_numpy(rng.integers(0, 1000, size=(3, 7), dtype=np.int64))  # other batch and seq
    axes = {"input_ids": {0: "batch", 1: "seq"}, "hidden_states": {0: "batch", 1: "seq"}}
    return model, [{"input_ids": ids}, {"input_ids": ids_1}], ["hidden_states"], axes, {}


def build_mlp():
    seeded(1000)
    model = nn.Sequential(
        nn.Linear(1000, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 64)
    )
    model.eval()
    rng = np.random.default_rng(1001)
    x = torch.from_numpy(rng.standard_normal((2, 1000)).astype(np.float32))
    x_1 = torch.from_numpy(rng.standard_normal((5, 1000)).astype(np.float32))
    axes = {"features": {0: "batch"}, "output": {0: "batch"}}
    return model, [{"features": x}, {"features": x_1}], ["output"], axes, {}


MODELS = collections.OrderedDict(
    [("mlp", build_mlp), ("bert_tiny", build_bert_tiny), ("resnet50", build_resnet50)]
)


# ---- export ----

def op_histogram(model):
    """Op type counts over the graph and its subgraphs."""
    counts = collections.Counter()

    def walk(graph):
        for node in graph.node:
            counts[(node.domain or "") + ("." if node.domain else "") + node.op_type] += 1
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g)
                for g in attr.graphs:
                    walk(g)

    walk(model.graph)
    return counts


def is_complete(d):
    if not os.path.isfile(os.path.join(d, "model.onnx")):
        return False
    for sub in ("inputs", "expected"):
        p = os.path.join(d, sub)
        if not os.path.isdir(p) or not any(f.endswith(".npy") for f in os.listdir(p)):
            return False
    return True


def export_one(name, build, outdir):
    final = os.path.join(outdir, name)
    tmp = final + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "inputs"))
    os.makedirs(os.path.join(tmp, "expected"))

    model, input_sets, output_names, dynamic_axes, export_args = build()
    input_names = list(input_sets[0])
    args = tuple(input_sets[0][k] for k in input_names)
    path = os.path.join(tmp, "model.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            args,
            path,
            opset_version=OPSET,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
            **export_args,
        )
    m = onnx.load(path)
    onnx.checker.check_model(m)
    # the exporter may rename or drop inputs (e.g. unused); trust the file, not our list
    graph_inputs = [i.name for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}]
    graph_outputs = [o.name for o in m.graph.output]
    if graph_inputs != input_names or graph_outputs != output_names:
        sys.exit(f"{name}: exported names {graph_inputs} -> {graph_outputs}, expected {input_names} -> {output_names}")
    for i, inputs in enumerate(input_sets):
        suffix = f"_{i}" if i else ""
        os.makedirs(os.path.join(tmp, "inputs" + suffix), exist_ok=True)
        os.makedirs(os.path.join(tmp, "expected" + suffix), exist_ok=True)
        with torch.no_grad():
            outputs = model(*(inputs[k] for k in input_names))
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        for k, v in inputs.items():
            np.save(os.path.join(tmp, "inputs" + suffix, k + ".npy"), v.numpy())
        for k, v in zip(output_names, outputs):
            np.save(os.path.join(tmp, "expected" + suffix, k + ".npy"), v.detach().numpy().astype(np.float32))
    hist = op_histogram(m)
    with open(os.path.join(tmp, "ops.txt"), "w") as f:
        for op, n in sorted(hist.items()):
            f.write(f"{op} {n}\n")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return hist


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--force", action="store_true", help="re-export models that already exist")
    ap.add_argument("--only", help="comma-separated subset of: " + ", ".join(MODELS))
    args = ap.parse_args()
    names = list(MODELS) if not args.only else args.only.split(",")
    for n in names:
        if n not in MODELS:
            sys.exit(f"unknown model '{n}' (have: {', '.join(MODELS)})")
    torch.set_num_threads(1)  # deterministic reductions, and gentle on shared 2-core machines
    os.makedirs(args.outdir, exist_ok=True)
    for name in names:
        d = os.path.join(args.outdir, name)
        if is_complete(d) and not args.force:
            print(f"{name}: cached in {d}")
            continue
        hist = export_one(name, MODELS[name], args.outdir)
        ops = ", ".join(f"{op} {n}" for op, n in sorted(hist.items()))
        print(f"{name}: exported to {d} ({sum(hist.values())} nodes: {ops})", flush=True)


if __name__ == "__main__":
    main()
