#!/usr/bin/python3
"""The PyTorch side of the engine benchmark (bench/engine_bench.sh): times one model in eager mode
and as frozen TorchScript, with the same protocol as `celer bench`. Run with Debian's /usr/bin/python3.

  OMP_NUM_THREADS=T engine_torch.py NAME --batch B --threads T --iterations N --warmup W [--modes eager,script]

NAME is resnet50, bert_base (seq 128) or mlp; the network and its weights come from
bench/engine_models.py (fixed seeds), so they equal the ONNX file celer times. For each mode, in
order: W warm-up runs, then N timed runs under torch.inference_mode(); prints one JSON line per mode
with median/p90/min ms. TorchScript is re-traced here (torch.jit.trace on the eval model, then
torch.jit.freeze) at the exact input shape being timed, rather than loaded from a saved file, so it
can never be stale or specialised to another shape; trace + freeze time is reported as load_ms.
"""
import argparse
import json
import os
import resource
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engine_models  # noqa: E402


def time_runs(fn, x, warmup, iterations):
    for _ in range(warmup):
        fn(x)
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    # the same order statistics as celer bench
    return times[iterations // 2], times[int((iterations - 1) * 0.9)], times[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", choices=sorted(engine_models.MODELS))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--modes", default="eager,script", help="comma-separated, run in this order: eager, script")
    args = ap.parse_args()
    modes = args.modes.split(",")
    if any(m not in ("eager", "script") for m in modes):
        sys.exit(f"unknown mode in '{args.modes}' (have: eager, script)")
    # before any parallel work, or the interop setting is refused
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    t0 = time.perf_counter()
    model = engine_models.build(args.name)
    build_ms = (time.perf_counter() - t0) * 1e3
    x = engine_models.example_input(args.name, args.batch)
    base = {"model": args.name, "batch": args.batch, "threads": args.threads, "iterations": args.iterations,
            "warmup": args.warmup, "torch": torch.__version__, "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    for mode in modes:
        with torch.inference_mode():
            if mode == "eager":
                fn, load_ms = model, build_ms
            else:
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # tracer warnings about python ints in shapes
                    fn = torch.jit.freeze(torch.jit.trace(model, (x,)).eval())
                load_ms = (time.perf_counter() - t0) * 1e3
            median, p90, low = time_runs(fn, x, args.warmup, args.iterations)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MB, whole process so far
        print(json.dumps(dict(base, engine="eager" if mode == "eager" else "torchscript", load_ms=round(load_ms, 3),
                              median_ms=round(median, 4), p90_ms=round(p90, 4), min_ms=round(low, 4),
                              throughput_per_s=round(1e3 / median * args.batch, 2),
                              peak_rss_mb_so_far=round(rss, 1))), flush=True)


if __name__ == "__main__":
    main()
