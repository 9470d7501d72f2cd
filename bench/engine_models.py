#!/usr/bin/python3
"""The models of the engine benchmarks (bench/engine_bench.sh against PyTorch, bench/engine_vs_ort.sh
against ONNX Runtime), built in PyTorch and exported to ONNX. Run with Debian's /usr/bin/python3
(python3-torch 1.13, torchvision 0.14, python3-onnx); no network: every weight is random from a
fixed seed, so bench/engine_torch.py rebuilds exactly the same network.

  engine_models.py OUTDIR [--only NAME[,NAME...]] [--force] [--list]

writes OUTDIR/NAME/model.onnx (opset 17) and OUTDIR/NAME/inputs/<ONNX input name>.npy (a reference
input of batch 1, from a fixed seed; a larger batch tiles it) for each NAME below; a model already
exported is skipped unless --force (its inputs are written if missing). Each file is written under a
temporary name and renamed into place, so an interrupted export never leaves a truncated model
behind. No TorchScript file is saved: bench/engine_torch.py re-traces and freezes the model at the
exact shape it times. The batch axis is dynamic in every model; --list prints the names.

  resnet50      torchvision resnet50, eval mode; input [batch,3,224,224], BatchNormalization kept
  bert_base     BERT-base-shaped encoder (vocab 30522, width 768, 12 layers, 12 heads, ff 3072, GELU,
                post-norm, final LayerNorm); input_ids int64 [batch,seq], timed at seq 128
  mlp           the recommendation MLP of bench/fastapi_service.py; features [batch,1000]
  resnet18, mobilenet_v3_small, efficientnet_b0
                torchvision, random weights, randomized BatchNorm statistics (folded into the
                convolutions by the exporter, as published exports have them); [batch,3,224,224]
  bert_tiny     the tests' BertEncoder (scripts/export_models.py: width 64, 2 layers); seq 128
  vit_small     ViT-S/16 at 224: patch 16, width 384, 6 heads, 12 pre-norm layers, ff 1536, class
                token; [batch,3,224,224]
  gpt_small     causal decoder: vocab 8192, seq 64, width 384, 6 heads, 6 pre-norm layers, ff 1536,
                logits over the vocabulary; input_ids int64 [batch,64]
  unet_small    2-level U-Net (32-64-128 channels, BatchNorm, transposed-convolution upsampling,
                skip concatenation); [batch,3,128,128] -> [batch,2,128,128]
  lstm          2-layer LSTM classifier, 64 features x 50 steps, hidden 256, 10 classes
  gru_bi        bidirectional 2-layer GRU tagger, 64 features x 50 steps, hidden 128, 20 tags per step
  conv1d_audio  1-D convolution classifier over raw audio [batch,1,16000] (M5-like: 4 blocks of
                Conv1d/BatchNorm1d/ReLU/MaxPool1d, global average, 35 classes)
  dlrm_mini     DLRM-shaped recommender: 13 dense features through a bottom MLP, 8 embedding tables
                (10000 x 16, one index each), pairwise dot interaction, top MLP; dense float
                [batch,13] and sparse int64 [batch,8]
  identity      a single Identity on [batch,1] (ONNX only): the runtimes' baseline memory
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
    distinct_layers(model.encoder)  # 12 layers of their own weights
    return model.eval()


def build_mlp():
    # the very network the FastAPI baseline serves (same seed, same layers)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from fastapi_service import build_model

    return build_model().eval()


def build_torchvision(arch, seed):
    import torchvision

    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(weights=None)
    randomize_batchnorm(model, seed + 1)
    return model.eval()


def distinct_layers(encoder):
    """nn.TransformerEncoder deep-copies one layer, so all start with the same weights, and the ONNX
    exporter would then store one copy shared by every layer (a smaller file whose weights fit the
    caches better than a real model's). Gives each layer weights of its own, norms away from 1/0."""
    with torch.no_grad():
        for name, p in encoder.named_parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
            elif "norm" in name:
                p.copy_(torch.rand(p.shape) * 0.5 + 0.75 if name.endswith("weight") else torch.randn(p.shape) * 0.1)
            else:
                p.copy_(torch.randn(p.shape) * 0.02)


def build_bert_tiny():
    torch.manual_seed(64)
    model = BertEncoder()  # the tests' tiny defaults: vocab 1000, width 64, 4 heads, 2 layers
    distinct_layers(model)
    return model.eval()


class ViT(nn.Module):
    def __init__(self, d=384, heads=6, layers=12, ff=1536, patch=16, size=224, classes=1000):
        super().__init__()
        self.patch = nn.Conv2d(3, d, patch, stride=patch)
        self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, (size // patch) ** 2 + 1, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        # enable_nested_tensor=False keeps torch 1.13 off its fused path (see BertEncoder)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.head(self.norm(self.encoder(x))[:, 0])


def build_vit_small():
    torch.manual_seed(384)
    model = ViT()
    distinct_layers(model)
    return model.eval()


GPT_SEQ = 64


class GPT(nn.Module):
    def __init__(self, vocab=8192, d=384, heads=6, layers=6, ff=1536, seq=GPT_SEQ):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(1, seq, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.decoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        # additive causal mask: a constant of the graph (the sequence length is fixed)
        self.register_buffer("mask", torch.triu(torch.full((seq, seq), float("-inf")), diagonal=1))

    def forward(self, input_ids):
        x = self.tok(input_ids) + self.pos
        return self.head(self.norm(self.decoder(x, mask=self.mask)))


def build_gpt_small():
    torch.manual_seed(256)
    model = GPT()
    distinct_layers(model)
    return model.eval()


def conv_bn_relu(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class UNet(nn.Module):
    def __init__(self, c=32, classes=2):
        super().__init__()
        self.down1 = nn.Sequential(*conv_bn_relu(3, c), *conv_bn_relu(c, c))
        self.down2 = nn.Sequential(*conv_bn_relu(c, 2 * c), *conv_bn_relu(2 * c, 2 * c))
        self.bottom = nn.Sequential(*conv_bn_relu(2 * c, 4 * c), *conv_bn_relu(4 * c, 4 * c))
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
        self.dec2 = nn.Sequential(*conv_bn_relu(4 * c, 2 * c), *conv_bn_relu(2 * c, 2 * c))
        self.up1 = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
        self.dec1 = nn.Sequential(*conv_bn_relu(2 * c, c), *conv_bn_relu(c, c))
        self.out = nn.Conv2d(c, classes, 1)

    def forward(self, x):
        s1 = self.down1(x)
        s2 = self.down2(self.pool(s1))
        x = self.bottom(self.pool(s2))
        x = self.dec2(torch.cat([self.up2(x), s2], dim=1))
        x = self.dec1(torch.cat([self.up1(x), s1], dim=1))
        return self.out(x)


def build_unet_small():
    torch.manual_seed(128)
    model = UNet()
    randomize_batchnorm(model, 129)
    return model.eval()


class RNNHead(nn.Module):
    """LSTM: the last step's state classified; GRU (bidirectional): every step tagged."""

    def __init__(self, cell, features, hidden, layers, out, bidirectional, per_step):
        super().__init__()
        self.rnn = cell(features, hidden, layers, batch_first=True, bidirectional=bidirectional)
        self.fc = nn.Linear(hidden * (2 if bidirectional else 1), out)
        self.per_step = per_step

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y if self.per_step else y[:, -1])


RNN_STEPS, RNN_FEATURES = 50, 64


def build_lstm():
    torch.manual_seed(2561)
    return RNNHead(nn.LSTM, RNN_FEATURES, 256, 2, 10, False, False).eval()


def build_gru_bi():
    torch.manual_seed(1282)
    return RNNHead(nn.GRU, RNN_FEATURES, 128, 2, 20, True, True).eval()


def build_conv1d_audio():
    torch.manual_seed(16000)
    layers, cin = [], 1
    for cout, k, stride in ((32, 80, 4), (32, 3, 1), (64, 3, 1), (64, 3, 1)):
        layers += [nn.Conv1d(cin, cout, k, stride=stride, padding=k // 2), nn.BatchNorm1d(cout), nn.ReLU(),
                   nn.MaxPool1d(4)]
        cin = cout
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(cin, 35))
    randomize_batchnorm(model, 16001)
    return model.eval()


class DLRM(nn.Module):
    def __init__(self, dense=13, tables=8, rows=10000, dim=16):
        super().__init__()
        self.bottom = nn.Sequential(nn.Linear(dense, 64), nn.ReLU(), nn.Linear(64, dim), nn.ReLU())
        self.emb = nn.ModuleList(nn.Embedding(rows, dim) for _ in range(tables))
        n = tables + 1
        iu = torch.triu_indices(n, n, offset=1)
        self.register_buffer("pairs", iu[0] * n + iu[1])  # the upper triangle of the n x n dot products
        self.top = nn.Sequential(nn.Linear(dim + n * (n - 1) // 2, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                                 nn.Linear(64, 1), nn.Sigmoid())

    def forward(self, dense, sparse):
        x = self.bottom(dense)
        t = torch.stack([x] + [e(sparse[:, i]) for i, e in enumerate(self.emb)], dim=1)
        z = torch.bmm(t, t.transpose(1, 2)).flatten(1)[:, self.pairs]
        return self.top(torch.cat([x, z], dim=1))


def build_dlrm_mini():
    torch.manual_seed(13)
    return DLRM().eval()


def seeded_randn(seed, *shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def seeded_ints(seed, high, *shape):
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


def batch_axes(inputs, outputs, extra=None):
    axes = {n: {0: "batch"} for n in inputs + outputs}
    for n, more in (extra or {}).items():
        axes[n].update(more)
    return axes


def image(seed, size=224):
    return lambda b: seeded_randn(seed, b, 3, size, size)


# name -> (builder, ONNX input names, output names, example inputs for a given batch (a tuple, one
# tensor per input), dynamic axes, extra torch.onnx.export arguments)
PRESERVE_BN = {"training": torch.onnx.TrainingMode.PRESERVE}
MODELS = {
    # PRESERVE (the model is in eval mode) keeps BatchNormalization nodes in the file, as in
    # published ResNet-50 ONNX models; the default would fold them into the convolutions.
    "resnet50": (build_resnet50, ["input"], ["logits"], lambda b: (seeded_randn(52, b, 3, 224, 224),),
                 batch_axes(["input"], ["logits"]), PRESERVE_BN),
    "bert_base": (build_bert_base, ["input_ids"], ["hidden_states"], lambda b: (seeded_ints(769, 30522, b, BERT_SEQ),),
                  batch_axes(["input_ids"], ["hidden_states"], {"input_ids": {1: "seq"}, "hidden_states": {1: "seq"}}),
                  {}),
    "mlp": (build_mlp, ["features"], ["output"], lambda b: (seeded_randn(1001, b, 1000),),
            batch_axes(["features"], ["output"]), {}),
    "resnet18": (lambda: build_torchvision("resnet18", 18), ["input"], ["logits"], lambda b: (image(19)(b),),
                 batch_axes(["input"], ["logits"]), {}),
    "mobilenet_v3_small": (lambda: build_torchvision("mobilenet_v3_small", 3), ["input"], ["logits"],
                           lambda b: (image(4)(b),), batch_axes(["input"], ["logits"]), {}),
    "efficientnet_b0": (lambda: build_torchvision("efficientnet_b0", 0), ["input"], ["logits"],
                        lambda b: (image(1)(b),), batch_axes(["input"], ["logits"]), {}),
    "bert_tiny": (build_bert_tiny, ["input_ids"], ["hidden_states"], lambda b: (seeded_ints(65, 1000, b, BERT_SEQ),),
                  batch_axes(["input_ids"], ["hidden_states"], {"input_ids": {1: "seq"}, "hidden_states": {1: "seq"}}),
                  {}),
    "vit_small": (build_vit_small, ["input"], ["logits"], lambda b: (image(385)(b),),
                  batch_axes(["input"], ["logits"]), {}),
    "gpt_small": (build_gpt_small, ["input_ids"], ["logits"], lambda b: (seeded_ints(257, 8192, b, GPT_SEQ),),
                  batch_axes(["input_ids"], ["logits"]), {}),
    "unet_small": (build_unet_small, ["input"], ["mask"], lambda b: (image(130, 128)(b),),
                   batch_axes(["input"], ["mask"]), {}),
    "lstm": (build_lstm, ["sequence"], ["logits"], lambda b: (seeded_randn(2562, b, RNN_STEPS, RNN_FEATURES),),
             batch_axes(["sequence"], ["logits"]), {}),
    "gru_bi": (build_gru_bi, ["sequence"], ["tags"], lambda b: (seeded_randn(1283, b, RNN_STEPS, RNN_FEATURES),),
               batch_axes(["sequence"], ["tags"]), {}),
    "conv1d_audio": (build_conv1d_audio, ["audio"], ["logits"], lambda b: (seeded_randn(16002, b, 1, 16000),),
                     batch_axes(["audio"], ["logits"]), {}),
    "dlrm_mini": (build_dlrm_mini, ["dense", "sparse"], ["click"],
                  lambda b: (seeded_randn(14, b, 13), seeded_ints(15, 10000, b, 8)),
                  batch_axes(["dense", "sparse"], ["click"]), {}),
    "identity": (None, ["x"], ["y"], lambda b: (seeded_randn(1, b, 1),), None, {}),
}


def build(name):
    """The eval-mode PyTorch model NAME (same weights on every call)."""
    return MODELS[name][0]()


def example_input(name, batch):
    """The example input of NAME at BATCH: a tensor, or a tuple of them for a model of several inputs."""
    x = MODELS[name][3](batch)
    return x[0] if len(x) == 1 else x


def write_identity(path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), path)


def write_inputs(name, outdir):
    """OUTDIR/NAME/inputs/<input>.npy at batch 1, unless all are there already."""
    import numpy as np

    _, in_names, _, example, _, _ = MODELS[name]
    d = os.path.join(outdir, name, "inputs")
    if all(os.path.isfile(os.path.join(d, n + ".npy")) for n in in_names):
        return
    os.makedirs(d, exist_ok=True)
    for n, x in zip(in_names, example(1)):
        tmp = os.path.join(d, n + ".tmp.npy")
        np.save(tmp, x.numpy())
        os.replace(tmp, os.path.join(d, n + ".npy"))


def export(name, outdir):
    builder, in_names, out_names, example, axes, kw = MODELS[name]
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    final = os.path.join(d, "model.onnx")
    tmp = final + ".tmp"
    if builder is None:
        write_identity(tmp)
        os.replace(tmp, final)
        return final
    model = builder()
    # batch 2 in the traced example so no dimension of size 1 gets baked into a Reshape
    args = example(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, tmp, opset_version=OPSET, input_names=in_names,
                          output_names=out_names, dynamic_axes=axes, do_constant_folding=True, **kw)
    import onnx

    onnx.checker.check_model(tmp)  # by path: no second in-memory copy of BERT-base's 440 MB
    os.replace(tmp, final)
    return final


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", nargs="?")
    ap.add_argument("--only", help="comma-separated subset of: " + ", ".join(MODELS))
    ap.add_argument("--force", action="store_true", help="re-export models that already exist")
    ap.add_argument("--list", action="store_true", help="print the model names and exit")
    args = ap.parse_args()
    if args.list:
        print("\n".join(MODELS))
        return
    if not args.outdir:
        ap.error("OUTDIR is required")
    names = args.only.split(",") if args.only else list(MODELS)
    for n in names:
        if n not in MODELS:
            sys.exit(f"unknown model '{n}' (have: {', '.join(MODELS)})")
    torch.set_num_threads(1)  # gentle on a shared 2-core machine; export is not timed
    for name in names:
        path = os.path.join(args.outdir, name, "model.onnx")
        if os.path.isfile(path) and not args.force:
            print(f"{name}: cached in {path}")
            write_inputs(name, args.outdir)
            continue
        t0 = time.time()
        export(name, args.outdir)
        write_inputs(name, args.outdir)
        size = os.path.getsize(path) / 1e6
        print(f"{name}: exported to {path} ({size:.0f} MB, {time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
