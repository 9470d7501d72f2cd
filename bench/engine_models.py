#!/usr/bin/python3
"""The models of the engine benchmark (bench/engine_bench.sh), built in PyTorch and exported to ONNX.
Run with Debian's /usr/bin/python3 (python3-torch 1.13, torchvision 0.14, python3-onnx); no network:
every weight is random from a fixed seed, so bench/engine_torch.py rebuilds exactly the same network.

  engine_models.py OUTDIR [--only NAME[,NAME...]] [--force]

writes OUTDIR/NAME/model.onnx (opset 17) for NAME in resnet50, bert_base, mlp; a model already
exported is skipped unless --force. Each file is written under a temporary name and renamed into
place, so an interrupted export never leaves a truncated model behind. No TorchScript file is
saved: bench/engine_torch.py re-traces and freezes the model at the exact shape it times.

  resnet50   torchvision resnet50, eval mode; input [batch,3,224,224], BatchNormalization kept
  bert_base  BERT-base-shaped encoder (vocab 30522, width 768, 12 layers, 12 heads, ff 3072, GELU,
             post-norm, final LayerNorm); input_ids int64 [batch,seq], timed at seq 128
  mlp        the recommendation MLP of bench/fastapi_service.py; features [batch,1000]
"""
import argparse
import os
import sys
import time
import warnings

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from export_models import BertEncoder, randomize_batchnorm  # noqa: E402  (the tests' models, same code)

OPSET = 17
BERT_SEQ = 128  # the sequence length the benchmark times BERT at


def build_resnet50():
    import torchvision

    torch.manual_seed(50)
    model = torchvision.models.resnet50(weights=None)
    randomize_batchnorm(model, 51)
    return model.eval()


def build_bert_base():
    torch.manual_seed(768)
    # BertEncoder keeps torch 1.13 off its fused fast path for export; eager timing under
    # inference_mode still takes it, as a PyTorch user would get.
    model = BertEncoder(vocab=30522, d=768, heads=12, ff=3072, layers=12, max_len=512)
    # nn.TransformerEncoder deep-copies one layer, so all 12 start with the same weights, and the
    # ONNX exporter would then store one copy shared by every layer (a 124 MB file whose weights
    # fit the caches better than a real BERT's). Give each layer weights of its own.
    with torch.no_grad():
        for name, p in model.encoder.named_parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
            elif "norm" in name:
                p.copy_(torch.rand(p.shape) * 0.5 + 0.75 if name.endswith("weight") else torch.randn(p.shape) * 0.1)
            else:
                p.copy_(torch.randn(p.shape) * 0.02)
    return model.eval()


def build_mlp():
    # the very network the FastAPI baseline serves (same seed, same layers)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from fastapi_service import build_model

    return build_model().eval()


# name -> (builder, ONNX input name, output name, example input for a given batch, dynamic axes)
MODELS = {
    "resnet50": (build_resnet50, "input", "logits",
                 lambda b: torch.randn(b, 3, 224, 224, generator=torch.Generator().manual_seed(52)),
                 {"input": {0: "batch"}, "logits": {0: "batch"}}),
    "bert_base": (build_bert_base, "input_ids", "hidden_states",
                  lambda b: torch.randint(0, 30522, (b, BERT_SEQ), generator=torch.Generator().manual_seed(769)),
                  {"input_ids": {0: "batch", 1: "seq"}, "hidden_states": {0: "batch", 1: "seq"}}),
    "mlp": (build_mlp, "features", "output",
            lambda b: torch.randn(b, 1000, generator=torch.Generator().manual_seed(1001)),
            {"features": {0: "batch"}, "output": {0: "batch"}}),
}


def build(name):
    """The eval-mode PyTorch model NAME (same weights on every call)."""
    return MODELS[name][0]()


def example_input(name, batch):
    return MODELS[name][3](batch)


def export(name, outdir):
    builder, in_name, out_name, example, axes = MODELS[name]
    model = builder()
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    final = os.path.join(d, "model.onnx")
    tmp = final + ".tmp"
    # batch 2 in the traced example so no dimension of size 1 gets baked into a Reshape
    args = (example(2),)
    kw = {}
    if name == "resnet50":
        # PRESERVE (the model is in eval mode) keeps BatchNormalization nodes in the file, as in
        # published ResNet-50 ONNX models; the default would fold them into the convolutions.
        kw["training"] = torch.onnx.TrainingMode.PRESERVE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, tmp, opset_version=OPSET, input_names=[in_name],
                          output_names=[out_name], dynamic_axes=axes, do_constant_folding=True, **kw)
    import onnx

    onnx.checker.check_model(tmp)  # by path: no second in-memory copy of BERT-base's 440 MB
    os.replace(tmp, final)
    return final


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--only", help="comma-separated subset of: " + ", ".join(MODELS))
    ap.add_argument("--force", action="store_true", help="re-export models that already exist")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(MODELS)
    for n in names:
        if n not in MODELS:
            sys.exit(f"unknown model '{n}' (have: {', '.join(MODELS)})")
    torch.set_num_threads(1)  # gentle on a shared 2-core machine; export is not timed
    for name in names:
        path = os.path.join(args.outdir, name, "model.onnx")
        if os.path.isfile(path) and not args.force:
            print(f"{name}: cached in {path}")
            continue
        t0 = time.time()
        export(name, args.outdir)
        size = os.path.getsize(path) / 1e6
        print(f"{name}: exported to {path} ({size:.0f} MB, {time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
