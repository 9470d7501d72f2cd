#!/usr/bin/python3
"""Compares celer's outputs with reference outputs: compare.py EXPECTED_DIR GOT_DIR [--tol 1e-4]

Every EXPECTED_DIR/<name>.npy must have a GOT_DIR/<name>.npy of the same shape and dtype with
max|got - ref| / max|ref| <= tol. Prints one line (the worst error, or what is wrong) and exits
non-zero on any failure."""
import argparse
import os
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("expected")
    ap.add_argument("got")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    names = sorted(f for f in os.listdir(a.expected) if f.endswith(".npy"))
    if not names:
        print(f"no reference outputs in {a.expected}")
        return 1
    problems, worst = [], []
    for f in names:
        ref = np.load(os.path.join(a.expected, f))
        path = os.path.join(a.got, f)
        if not os.path.exists(path):
            problems.append(f"{f}: not written")
            continue
        try:
            got = np.load(path)
        except Exception as e:  # a malformed file is a failure to report, not a crash
            problems.append(f"{f}: unreadable ({e})")
            continue
        if got.dtype != ref.dtype or got.shape != ref.shape:
            problems.append(f"{f}: got {got.dtype}{list(got.shape)}, want {ref.dtype}{list(ref.shape)}")
            continue
        r, g = ref.astype(np.float64), got.astype(np.float64)
        scale = np.max(np.abs(r)) if r.size else 0.0
        err = float(np.max(np.abs(g - r)) / max(scale, 1e-30)) if r.size else 0.0
        if not np.all(np.isfinite(g)) and np.all(np.isfinite(r)):
            err = float("inf")
        worst.append(f"{f[:-4]} {err:.2e}")
        if not err <= a.tol:
            problems.append(f"{f}: max|y-ref|/max|ref| = {err:.3g} > {a.tol:g}")
    if problems:
        print("; ".join(problems))
        return 1
    print("max rel err: " + ", ".join(worst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
