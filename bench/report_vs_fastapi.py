#!/usr/bin/python3
"""Prints the table and the ratios against FastAPI's best for bench/pipeline_bench.sh and
bench/cache_bench.sh.

    report_vs_fastapi.py RESULTS.tsv [--hits] [--no-p99-target] [--ceiling SERVER[,SERVER...]]

RESULTS.tsv: one line per load run, tab-separated:
server conc requests seconds p50_ms p99_ms http_errors socket_errors peak_rss_kib cpu_ms ("-" where
a run produced no numbers; cpu_ms: the CPU time the server, and what it depends on, used in the
run). Targets at concurrency 64: throughput >= 20x and (unless --no-p99-target) p99 <= 0.10x of
the best FastAPI server (fastapi-1w or fastapi-2w, by throughput). --hits labels
the ratios as measured on cache hits. --ceiling names servers that do no work (a fixed answer):
their ratio to FastAPI is the most any server reaches with this client on this machine. The
server CPU per request (the client's excluded) is what throughput would scale with if the client
ran on a machine of its own.
"""
import sys

HITS = ", on hits" if "--hits" in sys.argv else ""
P99_TARGET = "--no-p99-target" not in sys.argv
CEILINGS = sys.argv[sys.argv.index("--ceiling") + 1].split(",") if "--ceiling" in sys.argv else []

COLS = ["server", "conc", "requests", "seconds", "p50", "p99", "http_err", "sock_err", "rss", "cpu"]
rows = []
for line in open(sys.argv[1]):
    r = dict(zip(COLS, line.rstrip("\n").split("\t")))
    for k in COLS[1:]:
        r[k] = None if r.get(k, "-") == "-" else float(r[k])
    r["rps"] = r["requests"] / r["seconds"] if r["requests"] is not None and r["seconds"] else None
    r["cpu_us"] = r["cpu"] * 1e3 / r["requests"] if r["cpu"] is not None and r["requests"] else None
    rows.append(r)

def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)

print(f"{'server':<12}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'peak RSS MiB':>14}"
      f"{'CPU us/req':>12}")
for r in rows:
    errs = None if r["http_err"] is None else int(r["http_err"] + r["sock_err"])
    rss = None if r["rss"] is None else r["rss"] / 1024
    print(f"{r['server']:<12}{int(r['conc']):>5}{fmt(r['rps'], '.0f'):>10}{fmt(r['p50'], '.2f'):>9}"
          f"{fmt(r['p99'], '.2f'):>9}{fmt(errs, 'd'):>8}{fmt(rss, '.1f'):>14}{fmt(r['cpu_us'], '.1f'):>12}")

def at(server, c):
    return next((r for r in rows if r["server"] == server and r["conc"] == c), None)

def ratio(a, b, key):
    return None if not a or not b or a[key] is None or not b[key] else a[key] / b[key]

for c in sorted({int(r["conc"]) for r in rows}):
    celer = at("celer", c)
    fast = [r for r in (at("fastapi-1w", c), at("fastapi-2w", c)) if r and r["rps"]]
    best = max(fast, key=lambda r: r["rps"]) if fast else None
    tput, p99 = ratio(celer, best, "rps"), ratio(celer, best, "p99")
    print(f"\nratios at concurrency {c}{HITS} (FastAPI best = {best['server'] if best else 'n/a'}, by throughput):")
    checks = [("throughput celer / FastAPI-best", tput, 20, True, ">= 20"),
              ("p99 celer / FastAPI-best", p99, 0.1, False, "<= 0.10")]
    for name, value, target, higher, shown in checks:
        if c == 64 and (higher or P99_TARGET):
            verdict = "n/a" if value is None else ("met" if (value >= target if higher else value <= target) else "NOT met")
            print(f"  {name:<40}{fmt(value, '.3g'):>8}   target {shown:<8} {verdict}")
        else:
            print(f"  {name:<40}{fmt(value, '.3g'):>8}")
    cpu = ratio(best, celer, "cpu_us")
    print(f"  {'CPU per request FastAPI-best / celer':<40}{fmt(cpu, '.3g'):>8}   (the client excluded)")
    for name in CEILINGS:
        top = at(name, c)
        print(f"  {'throughput ' + name + ' / FastAPI-best':<40}{fmt(ratio(top, best, 'rps'), '.3g'):>8}"
              "   (no work: a ceiling)")
        print(f"  {'throughput celer / ' + name:<40}{fmt(ratio(celer, top, 'rps'), '.3g'):>8}")
