"""``make bench``: every benchmark, one table, ratios against baselines measured in this run.

Usage: python -m benchmarks [--quick] [--only store,catalog,engine,data,optimizer,flows,portfolio,ui,dask]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time

from benchmarks._report import BenchResult

MODULES = ("store", "catalog", "engine", "data", "optimizer", "flows", "portfolio", "ui", "dask")


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"
    return f"{value:,.0f} {unit}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--only", default=",".join(MODULES))
    parser.add_argument("--json", dest="json_out", help="also write results to this JSON file")
    args = parser.parse_args()
    results: list[BenchResult] = []
    for name in args.only.split(","):
        try:
            module = importlib.import_module(f"benchmarks.bench_{name}")
        except ModuleNotFoundError as err:
            if err.name == f"benchmarks.bench_{name}":
                continue
            raise
        t0 = time.perf_counter()
        print(f"# running {name} ...", file=sys.stderr, flush=True)
        results.extend(module.collect(quick=args.quick))
        print(f"# {name} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    header = f"{'benchmark':<58} {'measured':>12} {'baseline':>12} {'ratio':>7}  {'target':<26} ok"
    print(header)
    print("-" * len(header))
    for r in results:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        print(f"{r.name:<58} {_fmt(r.measured, r.unit):>12} {_fmt(r.baseline_measured, r.unit):>12} "
              f"{ratio:>7}  {r.target:<26} {'yes' if r.ok else 'NO'}")
        if r.baseline:
            print(f"{'':<4}baseline: {r.baseline}" + (f"; {r.note}" if r.note else ""))
        elif r.note:
            print(f"{'':<4}{r.note}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump([{**r.__dict__, "ratio": r.ratio} for r in results], f, indent=2)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
