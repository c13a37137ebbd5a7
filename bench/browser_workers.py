"""In-browser training on k workers (tinyrnn.engines.workers): Trainer.step in Pyodide in a Web Worker in Chromium, with
1, 2 (and more) workers on shared memory, in one run.

    .venv/bin/python -m bench.browser_workers                        # B in {1, 16, 32}, workers 1 and 2, 3 rounds
    .venv/bin/python -m bench.browser_workers --batches 16 --workers 1 2 3 --secs 10
    .venv/bin/python -m bench.browser_workers --cell gru --batches 16    # a gated cell (default: the tanh RNN)

(The project's ``.venv``, which has Playwright; a built site: ``make site``.) The engine alone, without the page's
own work (bench/page_throughput.py measures the page): bench/worker_harness.py runs the script below in the built
site's Pyodide with its wheels, cross-origin isolated by the harness's server. The task is the in-browser peers'
(bench/browser_peers.py): the first 1 M characters of tinyshakespeare, tanh RNN (or ``--cell``) H=128, T=25, Adam
2e-3, clip 5. With helpers, each line also says per step how long the Pyodide worker waited for them and how long a
helper worked on its slice (kernels/shards.js's ``stats``).
chars/s over ``--secs`` seconds after a ``--warm``-second warm-up; every configuration in a new browser context
(a new Pyodide), the order rotated each round, the median of ``--rounds``. Results with machine, date and load
go to ``bench/results/browser-workers.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from bench.browser_peers import CHROMIUM_ARGS, DEFAULT_DATA
from bench.worker_harness import harness_server, run_script

REPO = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO / "bench" / "results" / "browser-workers.json"

SCRIPT = r'''
import json, time
import tinyrnn
from pyodide.http import pyfetch

text = await (await pyfetch("/text.txt")).string()
status = await tinyrnn.start_workers(WORKERS)
trainer = tinyrnn.Trainer(text, tinyrnn.TrainConfig(cell="CELL", hidden_size=HIDDEN, batch_size=BATCH, seq_len=25,
                                                    lr=2e-3, clip_norm=5.0, eval_every=10**9))
end = time.perf_counter() + WARM
while time.perf_counter() < end:
    trainer.step()
host = tinyrnn.engines.workers.POOL.host
stats0 = host.stats.to_py() if host is not None else None
steps0, chars0, t0, c0 = trainer.step_count, trainer.chars_seen, time.perf_counter(), time.process_time()
while time.perf_counter() - t0 < SECS:
    trainer.step()
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
stats1 = host.stats.to_py() if host is not None else None
stats = {k: stats1[k] - stats0[k] for k in stats0} if host is not None else None
json.dumps({"status": status, "engine": trainer.engine_choice.backend, "workers": trainer.engine_choice.workers,
            "chars": trainer.chars_seen - chars0, "wall": wall, "chars_per_sec": (trainer.chars_seen - chars0) / wall,
            "steps": trainer.step_count - steps0, "loss": trainer.history[-1].train_loss, "host_stats": stats})
'''


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", type=Path, default=REPO / "build" / "site")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16, 32])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--cell", default="rnn", choices=("rnn", "gru", "lstm"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warm", type=float, default=3.0)
    ap.add_argument("--secs", type=float, default=10.0)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    text = args.data.read_text(encoding="utf-8")[:1_000_000]
    configs = [(b, w) for b in args.batches for w in args.workers if w == 1 or b >= 2]
    scripts = {f"b{b}w{w}": SCRIPT.replace("WORKERS", str(w)).replace("BATCH", str(b))
               .replace("HIDDEN", str(args.hidden)).replace("CELL", args.cell).replace("WARM", str(args.warm)).replace("SECS", str(args.secs))
               for b, w in configs}
    exe = os.environ.get("TINYRNN_CHROMIUM", "/usr/bin/chromium")
    runs: dict = {c: [] for c in configs}
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with harness_server(args.site, scripts, isolate=True, text=text) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        for r in range(args.rounds):
            order = configs[r % len(configs):] + configs[:r % len(configs)]
            for b, w in order:
                out = run_script(browser, base, f"b{b}w{w}")["ok"]
                runs[(b, w)].append(out)
                stats, per_step = out["host_stats"], ""
                if stats and stats["windows"]:  # the host's time per sharded window: waiting for, and inside, the helpers
                    per_step = (f", per step {1e3 * out['wall'] / out['steps']:.2f} ms: waited "
                                f"{stats['waitMs'] / stats['windows']:.2f} ms, helper worked {stats['helperMs'] / stats['windows']:.2f} ms")
                print(f"round {r + 1}: B={b:>3} workers={w}: {out['chars_per_sec']:>9,.0f} chars/s  ({out['status']}"
                      f"{per_step})", flush=True)
        browser.close()
    load_after = os.getloadavg()
    print(f"\n{started}, nproc={os.cpu_count()}, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
          f"{args.cell}, H={args.hidden} T=25, median of {args.rounds} rounds, chars/s")
    print(f"{'B':>4} " + "".join(f"{f'{w} worker' + ('s' if w > 1 else ''):>14}" for w in args.workers)
          + "".join(f"{f'{w} vs 1':>10}" for w in args.workers if w > 1))
    table = []
    for b in args.batches:
        med = {w: statistics.median(o["chars_per_sec"] for o in runs[(b, w)]) for w in args.workers if (b, w) in runs}
        row = {"B": b, **{f"workers_{w}": v for w, v in med.items()}}
        line = f"{b:>4} " + "".join(f"{med[w]:>14,.0f}" if w in med else f"{'-':>14}" for w in args.workers)
        for w in args.workers:
            if w > 1 and w in med:
                row[f"ratio_{w}"] = med[w] / med[1]
                line += f"{med[w] / med[1]:>9.2f}×"
        print(line)
        table.append(row)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"started": started, "nproc": os.cpu_count(), "load_before": load_before,
                                     "load_after": load_after, "hidden": args.hidden, "table": table,
                                     "runs": {f"B={b} workers={w}": v for (b, w), v in runs.items()}}, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
