"""Render the results in bench/results/*.json as Markdown tables (for docs/performance.md).

    python -m bench.report [--results bench/results]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHORT = {"tinyrnn-api": "tinyrnn", "tinyrnn-api 1 thread": "tinyrnn 1 thread",
         "tinyrnn-api-native": "tinyrnn+native", "tinyrnn-api-native 1 thread": "tinyrnn+native 1 thread",
         "jax": "JAX jit", "torch": "PyTorch",
         "tinyrnn-fused": "tinyrnn fused", "tinyrnn-trainer": "Trainer.step", "tinyrnn-native": "Trainer.step native",
         "tinyrnn-autograd": "tinyrnn autograd", "numpy-minchar": "numpy min-char"}
# (numerator, denominator, target or None) columns of the throughput table, shown when both were measured
RATIOS = (("tinyrnn-api", "tinyrnn-api 1 thread", 0.9), ("tinyrnn-api-native", "tinyrnn-api-native 1 thread", 0.9),
          ("tinyrnn-api", "jax", None), ("tinyrnn-api-native", "jax", 1.0), ("tinyrnn-api-native", "torch", None),
          ("tinyrnn-native", "jax", None), ("tinyrnn-native", "torch", None), ("tinyrnn-trainer", "jax", None),
          ("tinyrnn-trainer", "torch", None), ("tinyrnn-fused", "numpy-minchar", None),
          ("tinyrnn-fused", "tinyrnn-autograd", None))
# issue 17: each gated cell's chars/s against the tanh RNN's (H=128, B=32), per tinyrnn column
CELL_TARGETS = {"gru": 0.33, "lstm": 0.25}
CELL_TARGET_B = 32
def _k(x):
    return "—" if x is None else (f"{x / 1000:,.1f}k" if x >= 1000 else f"{x:,.0f}")


def _r(x):
    return "—" if x is None else f"{x:.2f}×"


def _table(head, rows) -> str:
    """A Markdown table: a header row, the separator, one row per list of cells."""
    def row(cells):
        return "| " + " | ".join(str(c) for c in cells) + " |"

    return "\n".join([row(head), "|" + "---|" * len(head), *map(row, rows)])


def plain_table(head, rows) -> str:
    """The same cells as right-aligned plain text (for the terminal)."""
    widths = [max([len(str(h))] + [len(str(r[i])) for r in rows]) for i, h in enumerate(head)]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(cells, widths)) for cells in [head, *rows]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def _shape(r) -> tuple:
    return r.get("cell", "rnn"), r["H"], r["B"]


def cells_of(results: list[dict]) -> list[tuple]:
    """The measured (cell, H, B) in the order they ran."""
    return list(dict.fromkeys(_shape(r) for r in results))


def _verdict(x, target) -> str:
    if x is None or target is None:
        return _r(x)
    return f"{x:.2f}× {'✓' if x >= target else '✗'}"


def throughput_rows(results: list[dict], key: str = "chars_per_sec"):
    """(header, rows, summary records) of chars/s per implementation and the ratios in ``RATIOS`` (a ✓/✗ against
    the target where there is one)."""
    res = [r for r in results if "error" not in r]
    impls = [i for i in SHORT if any(r["impl"] == i for r in res)]
    ratios = [(a, b, t) for a, b, t in RATIOS if a in impls and b in impls]
    by = {(r["impl"], *_shape(r)): r.get(key) for r in res}
    rows, summary = [], []
    for shape in cells_of(res):
        values = {(a, b): by[(a, *shape)] / by[(b, *shape)] if by.get((a, *shape)) and by.get((b, *shape)) else None
                  for a, b, _ in ratios}
        rows.append(list(shape) + [_k(by.get((i, *shape))) for i in impls]
                    + [_verdict(values[(a, b)], t) for a, b, t in ratios])
        summary.append({"cell": shape[0], "H": shape[1], "B": shape[2], **{f"{key}[{i}]": by.get((i, *shape))
                        for i in impls}, **{f"{a}/{b}": x for (a, b), x in values.items()}})
    head = ["cell", "H", "B"] + [SHORT[i] for i in impls] + [
        f"{SHORT[a]} / {SHORT[b]}" + (f" (≥ {t})" if t else "") for a, b, t in ratios]
    return head, rows, summary


def cell_ratio_rows(results: list[dict], key: str = "chars_per_sec"):
    """(header, rows): each gated cell's chars/s / the tanh RNN's at the same H and B, per tinyrnn column."""
    res = [r for r in results if "error" not in r]
    by = {(r["impl"], *_shape(r)): r.get(key) for r in res}
    impls = [i for i in SHORT if i.startswith("tinyrnn") and any(r["impl"] == i for r in res)]
    rows = []
    for cell, H, B in cells_of(res):
        if cell not in CELL_TARGETS:
            continue
        for i in impls:
            a, b = by.get((i, cell, H, B)), by.get((i, "rnn", H, B))
            target = CELL_TARGETS[cell] if B == CELL_TARGET_B else None  # the targets are set at B=32
            rows.append([cell, H, B, SHORT[i], _verdict(a / b if a and b else None, target)])
    return ["cell", "H", "B", "column", "÷ tanh RNN (target at B=32: GRU ≥ 0.33, LSTM ≥ 0.25)"], rows


def memory_rows(results: list[dict]):
    """(header, rows): peak RSS MiB per implementation, with the numpy heap peak of one step in brackets."""
    res = [r for r in results if "error" not in r]
    impls = [i for i in SHORT if any(r["impl"] == i for r in res)]
    by = {(r["impl"], *_shape(r)): r for r in res}

    def cell(r):
        t = r.get("traced_step_peak_mib") if r else None
        return "—" if r is None else f"{r['peak_rss_mib']:.0f}" + ("" if t is None else f" ({t:.1f})")

    rows = [list(shape) + [cell(by.get((i, *shape))) for i in impls] for shape in cells_of(res)]
    return ["cell", "H", "B"] + [SHORT[i] for i in impls], rows


def throughput_md(data: dict, key: str) -> str:
    head, rows, _ = throughput_rows(data["results"], key)
    return _table(head, rows)


def memory_md(data: dict) -> str:
    return _table(*memory_rows(data["results"]))


def pyodide_md(data: dict) -> str:
    rows = [[r["H"], r["B"], _k(r["native_chars_per_sec"]), _k(r["pyodide_chars_per_sec"]), _r(r["ratio"]),
             _r(r.get("ratio_cpu"))] for r in data["rows"]]
    return _table(["H", "B", "native chars/s", "Pyodide chars/s", "ratio", "ratio (CPU time)"], rows)


def quality_md(data: dict) -> str:
    rows = [[f"{r['train_seconds']:.0f}", r["steps"], f"{r['chars_seen']:,}", f"{r['val_nats']:.3f}",
             f"{r['val_bits']:.3f}"] for r in data["log"]]
    return _table(["training s", "steps", "chars seen", "val nats/char", "val bits/char"], rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = ap.parse_args(argv)
    for path in sorted(args.results.glob("*.json")):
        data = json.loads(path.read_text())
        print(f"\n### {path.name}  ({data.get('machine', {}).get('date_utc', '?')})\n")
        if "table_md" in data:  # bench.browser_peers
            print(data["table_md"])
        elif data.get("results") and "impl" in data["results"][0]:  # bench.throughput
            print("By wall clock:\n\n" + throughput_md(data, "chars_per_sec"))
            print("\nBy CPU time:\n\n" + throughput_md(data, "cpu_chars_per_sec"))
            print("\nEach cell against the tanh RNN (wall clock):\n\n" + _table(*cell_ratio_rows(data["results"])))
            print("\nPeak RSS MiB (numpy heap peak of one step):\n\n" + memory_md(data))
        elif "rows" in data:
            print(pyodide_md(data))
        elif "log" in data:
            s = data["summary"]
            print(f"config {json.dumps(data['config'])}\n")
            print(quality_md(data))
            print(f"\nfinal {s['final_val_nats']:.4f} nats/char = {s['final_val_bits']:.4f} bits/char after "
                  f"{s['train_seconds']:.0f} s, {s['chars_seen']:,} chars ({s['train_chars_per_sec']:,.0f} chars/s)")
        else:
            print("(no table here: the script that wrote it prints its own)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
