"""Render the results in bench/results/*.json as Markdown tables (for docs/performance.md).

    python -m bench.report [--results bench/results]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHORT = {"tinyrnn-fused": "tinyrnn fused", "tinyrnn-trainer": "Trainer.step", "tinyrnn-autograd": "tinyrnn autograd",
         "numpy-minchar": "numpy min-char", "torch": "PyTorch"}


def _k(x):
    return "—" if x is None else (f"{x / 1000:,.1f}k" if x >= 1000 else f"{x:,.0f}")


def _r(x):
    return "—" if x is None else f"{x:.2f}×"


def _table(head, rows) -> str:
    """A Markdown table: a header row, the separator, one row per list of cells."""
    def row(cells):
        return "| " + " | ".join(str(c) for c in cells) + " |"

    return "\n".join([row(head), "|" + "---|" * len(head), *map(row, rows)])


def throughput_md(data: dict, key: str) -> str:
    res = [r for r in data["results"] if "error" not in r]
    impls = [i for i in SHORT if any(r["impl"] == i for r in res)]
    by = {(r["impl"], r["H"], r["B"]): r.get(key) for r in res}
    rows = []
    for B, H in sorted({(r["B"], r["H"]) for r in res}):
        f = by.get(("tinyrnn-fused", H, B))
        ratios = [f / by[(o, H, B)] if f and by.get((o, H, B)) else None
                  for o in ("torch", "numpy-minchar", "tinyrnn-autograd")]
        rows.append([H, B] + [_k(by.get((i, H, B))) for i in impls] + [_r(x) for x in ratios])
    return _table(["H", "B"] + [SHORT[i] for i in impls] + ["fused / torch", "fused / numpy", "fused / autograd"], rows)


def memory_md(data: dict) -> str:
    res = [r for r in data["results"] if "error" not in r]
    impls = [i for i in SHORT if any(r["impl"] == i for r in res)]
    by = {(r["impl"], r["H"], r["B"]): r for r in res}

    def cell(r):
        t = r.get("traced_step_peak_mib") if r else None
        return "—" if r is None else f"{r['peak_rss_mib']:.0f}" + ("" if t is None else f" ({t:.1f})")

    rows = [[H, B] + [cell(by.get((i, H, B))) for i in impls] for B, H in sorted({(r["B"], r["H"]) for r in res})]
    return _table(["H", "B"] + [SHORT[i] for i in impls], rows)


def pyodide_md(data: dict) -> str:
    rows = [[r["H"], r["B"], _k(r["native_chars_per_sec"]), _k(r["pyodide_chars_per_sec"]), _r(r["ratio"]),
             _r(r.get("ratio_cpu"))] for r in data["rows"]]
    return _table(["H", "B", "native chars/s", "Pyodide chars/s", "ratio", "ratio (CPU time)"], rows)


def quality_md(data: dict) -> str:
    rows = [[f"{r['train_seconds']:.0f}", r["steps"], f"{r['chars_seen']:,}", f"{r['val_nats']:.3f}",
             f"{r['val_bits']:.3f}"] for r in data["log"]]
    return _table(["training s", "steps", "chars seen", "val nats/char", "val bits/char"], rows)


def startup_md(data: dict) -> str:
    rows = [[name, f"{s['cold_s']:.1f}", f"{s['warm_median_s']:.1f} ({min(s['warm_s']):.1f}–{max(s['warm_s']):.1f}), "
             f"{s['warm_n']}"] for name, s in ((n, site["summary"]) for n, site in data["sites"].items())]
    return _table(["site", "cold s", "warm median s (range), n"], rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = ap.parse_args(argv)
    for path in sorted(args.results.glob("*.json")):
        data = json.loads(path.read_text())
        print(f"\n### {path.name}  ({data.get('machine', {}).get('date_utc', '?')})\n")
        if "results" in data:
            print("By wall clock:\n\n" + throughput_md(data, "chars_per_sec"))
            print("\nBy CPU time:\n\n" + throughput_md(data, "cpu_chars_per_sec"))
            print("\nPeak RSS MiB (numpy heap peak of one step):\n\n" + memory_md(data))
        elif "rows" in data:
            print(pyodide_md(data))
        elif "sites" in data:
            print(startup_md(data))
        elif "log" in data:
            s = data["summary"]
            print(f"config {json.dumps(data['config'])}\n")
            print(quality_md(data))
            print(f"\nfinal {s['final_val_nats']:.4f} nats/char = {s['final_val_bits']:.4f} bits/char after "
                  f"{s['train_seconds']:.0f} s, {s['chars_seen']:,} chars ({s['train_chars_per_sec']:,.0f} chars/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
