#!/usr/bin/python3
"""Prints run_bench.sh's table and the ratios against the issue's targets.

    report.py RESULTS.tsv

RESULTS.tsv: one line per load run, tab-separated:
server model concurrency requests seconds p50_ms p99_ms http_errors socket_errors peak_rss_kib
cpu_ms ("-" where a run produced no numbers; cpu_ms: the server's CPU time during the run).
"""
import sys

COLS = ["server", "model", "conc", "requests", "seconds", "p50", "p99", "http_err", "sock_err", "rss", "cpu"]
LOAD = 64  # the concurrency the targets are stated at


def num(v):
    return None if v == "-" else float(v)


def load(path):
    rows = []
    for line in open(path):
        r = dict(zip(COLS, line.rstrip("\n").split("\t")))
        for k in COLS[2:]:
            r[k] = num(r.get(k, "-"))
        r["rps"] = r["requests"] / r["seconds"] if r["requests"] is not None and r["seconds"] else None
        r["cpu_us"] = r["cpu"] * 1e3 / r["requests"] if r["cpu"] is not None and r["requests"] else None
        rows.append(r)
    return rows


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def table(rows):
    print(f"{'server':<12}{'model':<13}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'errors':>8}{'peak RSS MiB':>14}{'CPU us/req':>12}")
    for r in rows:
        errs = None if r["http_err"] is None else int(r["http_err"] + r["sock_err"])
        rss = None if r["rss"] is None else r["rss"] / 1024
        print(f"{r['server']:<12}{r['model']:<13}{int(r['conc']):>5}{fmt(r['rps'], '.0f'):>10}"
              f"{fmt(r['p50'], '.2f'):>9}{fmt(r['p99'], '.2f'):>9}{fmt(errs, 'd'):>8}{fmt(rss, '.1f'):>14}"
              f"{fmt(r['cpu_us'], '.1f'):>12}")


def at_load(rows, server, model):
    for r in rows:
        if r["server"] == server and r["model"] == model and r["conc"] == LOAD:
            return r
    return None


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def verdict(value, target, higher_is_better):
    if value is None:
        return "n/a"
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "NOT met"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rows = load(sys.argv[1])
    table(rows)

    celer = at_load(rows, "celer", "mlp")
    fastapi = [r for r in (at_load(rows, s, "mlp") for s in ("fastapi-1w", "fastapi-2w")) if r and r["rps"]]
    best = max(fastapi, key=lambda r: r["rps"]) if fastapi else None
    trivial, nginx = at_load(rows, "celer", "identity"), at_load(rows, "nginx", "static")
    get = lambda r, k: r[k] if r else None  # noqa: E731

    print(f"\nratios at concurrency {LOAD} (FastAPI best = {best['server'] if best else 'n/a'}, by throughput):")
    checks = [
        ("throughput celer / FastAPI-best", ratio(get(celer, "rps"), get(best, "rps")), 20, True, ">= 20"),
        ("p99 celer / FastAPI-best", ratio(get(celer, "p99"), get(best, "p99")), 0.1, False, "<= 0.10"),
        ("peak RSS celer / FastAPI-best", ratio(get(celer, "rss"), get(best, "rss")), 0.2, False, "<= 0.20"),
        ("throughput celer identity / nginx static", ratio(get(trivial, "rps"), get(nginx, "rps")), 0.5, True,
         ">= 0.50"),
    ]
    for name, value, target, higher, shown in checks:
        print(f"  {name:<42}{fmt(value, '.3g'):>8}   target {shown:<8} {verdict(value, target, higher)}")


if __name__ == "__main__":
    main()
