"""The memory experiment's target: per cell, the largest recall distance k at which accuracy at the recall
positions stays >= 90 % after 2 minutes of in-page training.

    nice python -m bench.recall_memory                       # cells rnn gru lstm, k in 5 10 20 40 80, 120 s each
    python -m bench.recall_memory --cells lstm --ks 5 10 --seconds 30

Each (cell, k) runs in its own Pyodide 0.27.7 (Node.js) with the site's wheels: the page's training loop without
Panel -- the app's own ``loop.StepGatherer`` in ticks of ``loop.TICK_SECONDS`` with the page's extras (a
gradient-flow snapshot every ``FLOW_EVERY`` s, a live sample every ``LIVE_SAMPLE_EVERY`` s) -- on
``tinyrnn.recall_corpus(k)`` with ``TrainConfig(cell=...)`` (the page's defaults), for ``--seconds`` of wall time.
Then the memory readout's own score (``hidden.recall_rows`` + ``hidden.recall_score``: held-out lines of the
validation text, each from a zero state). Needs a built site (``--site``, default build/site).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "webapp" / "tinyrnn_app"
RUNNER = REPO / "tests" / "browser" / "pyodide_node.mjs"

SCRIPT = r'''
import json, os, sys, time
for name, source in APP_SOURCES.items():  # the app's Panel-free modules, as a package
    os.makedirs("/tmp/app/tinyrnn_app", exist_ok=True)
    with open(f"/tmp/app/tinyrnn_app/{name}", "w") as f:
        f.write(source)
sys.path.insert(0, "/tmp/app")
import tinyrnn
from tinyrnn_app import hidden, loop

trainer = tinyrnn.Trainer(tinyrnn.recall_corpus(K), tinyrnn.TrainConfig(cell=CELL))
gatherer, scheduler = loop.StepGatherer(), loop.Scheduler()
scheduler.add("flow", loop.FLOW_EVERY, trainer.gradient_flow)
scheduler.add("sample", loop.LIVE_SAMPLE_EVERY, lambda: trainer.sample(loop.LIVE_SAMPLE_LENGTH, temperature=0.8))
scheduler.restart({"sample": 1.0})
started = time.perf_counter()
while time.perf_counter() - started < SECONDS:
    gatherer.run(trainer, loop.TICK_SECONDS)
    gatherer.take()
    scheduler.run_first_due(["flow", "sample"])
rows, k = hidden.recall_rows(trainer.vocab.decode(trainer.val_ids))
print("RESULT " + json.dumps(dict(cell=CELL, k=K, accuracy=hidden.recall_score(trainer, rows, k), lines=len(rows),
                                  steps=trainer.step_count, chars=trainer.chars_seen,
                                  train_seconds=round(trainer.elapsed, 1))))
'''


def run_one(site: Path, cell: str, k: int, seconds: float) -> dict:
    wheels = [w for w in sorted((site / "wheels").glob("tinyrnn-*.whl"))] + sorted((site / "pyodide").glob("autograd-*.whl"))
    sources = {name: (APP / name).read_text() for name in ("loop.py", "render.py", "hidden.py")}
    sources["__init__.py"] = ""
    with open(f"/tmp/recall-{os.getpid()}.py", "w") as f:
        f.write(f"APP_SOURCES = {sources!r}\nCELL = {cell!r}\nK = {k}\nSECONDS = {seconds}\n" + SCRIPT)
        script = f.name
    proc = subprocess.run([shutil.which("node") or "node", str(RUNNER), str(site / "pyodide"), script,
                           *map(str, wheels)], capture_output=True, text=True, timeout=seconds + 300)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", type=Path, default=REPO / "build" / "site")
    ap.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"])
    ap.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20, 40, 80])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()[0]:.1f}, "
          f"nproc {os.cpu_count()}, {args.seconds:g} s per run", flush=True)
    results = []
    for cell in args.cells:
        for k in args.ks:
            r = run_one(args.site, cell, k, args.seconds)
            r["load"] = round(os.getloadavg()[0], 1)
            results.append(r)
            print(f"{cell:5} k={k:<4} accuracy {r['accuracy']:.0%} of {r['lines']} lines  steps {r['steps']:,}  "
                  f"chars {r['chars']:,}  load {r['load']}", flush=True)
    for cell in args.cells:
        ok = [r["k"] for r in results if r["cell"] == cell and r["accuracy"] >= 0.9]
        print(f"{cell}: largest k with >= 90 %: {max(ok) if ok else 'none of ' + str(args.ks)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
