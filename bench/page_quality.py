"""Learning in the page: the built site trains on tinyshakespeare in Chromium for 5 minutes of wall clock, and the
model it has then is scored on the held-out tenth (issue 17's target: the best cell ≤ 1.65 nats/char).

    .venv/bin/python -m bench.page_quality                       # GRU, the page's defaults, 300 s
    .venv/bin/python -m bench.page_quality --cells rnn gru lstm --seconds 300 --lr 0.003

(The project's ``.venv``, which has Playwright; the built site, ``python -m sitebuild.build``.) The real page,
not its runtime under Node: one cold Chromium, the site served cross-origin isolated (``bench.page_workers``:
the state after the site's isolating reload, so the page trains on every core it starts workers for), the whole
of tinyshakespeare (resolved as ``../shared/data/tinyshakespeare.txt`` from the repository) uploaded as a file,
the cell chosen, H=128, T=25, B=16 (the page's defaults) unless given, Train. Every ``--every`` seconds the
page's model is scored where it lives, in the page's worker between two ticks of its loop: ``tinyrnn.evaluate_loss``
over the page's own validation text — the text's last tenth (the page's ``val_fraction``, 0.1), one stream with
the state carried, the same measure as ``bench/quality.py``. The time scoring takes (the loop waits for it) is
not counted in the budget. Results with machine, date and load go to ``bench/results/page-quality.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from bench.page_throughput import DEFAULT_DATA, DEFAULT_SITE, _count, start_training
from bench.page_workers import isolated_server
from bench.startup_browser import CHROMIUM_ARGS, machine_info

REPO = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO / "bench" / "results" / "page-quality.json"
TARGET_NATS = 1.65  # issue 17: the page's best cell within 5 minutes on this machine
# Python run in the page's worker: the session's model scored on the page's held-out text
SCORE_JS = """() => self.pyodide.runPython(`
import json, time
import tinyrnn
from panel.io.state import state
session = state.cache["tinyrnn_session"]
trainer = getattr(session, "run", session).trainer
started = time.perf_counter()
nats = tinyrnn.evaluate_loss(trainer.params, trainer.val_ids, cell=trainer.config.cell)
json.dumps({"val_nats": nats, "val_chars": int(trainer.val_ids.size), "step": trainer.step_count,
            "chars_seen": trainer.chars_seen, "score_seconds": time.perf_counter() - started,
            "config": trainer.config.to_dict()})
`)"""


def train_and_score(pw, exe: str, url: str, text: str, cell: str, seconds: float, every: float,
                    settings: dict) -> dict:
    """One cold browser: the page trains ``cell`` for ``seconds`` of wall clock (scoring excluded), scored every
    ``every`` seconds and at the end."""
    from bench.page_throughput import _app_worker

    browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
    try:
        page, errors = start_training(browser, url, text.encode("utf-8"), len(text), 16, cell, settings)
        worker = _app_worker(page)
        log, trained, last = [], 0.0, time.monotonic()
        while True:
            page.wait_for_timeout(min(every, seconds - trained) * 1000)
            trained += time.monotonic() - last
            row = json.loads(worker.evaluate(SCORE_JS))  # the page's loop waits while this runs
            last = time.monotonic()
            row.update(train_seconds=round(trained, 1), load=os.getloadavg()[0])
            log.append(row)
            print(f"    {cell} t={trained:5.0f}s step {row['step']:6d} chars {row['chars_seen']:>11,} "
                  f"val {row['val_nats']:.4f} nats/char (scored in {row['score_seconds']:.1f} s, load "
                  f"{row['load']:.1f})", flush=True)
            if trained >= seconds - 0.5:
                break
        backend = page.locator(".tr-backend pre").first.inner_text()
        status = page.locator(".tr-status pre").first.inner_text()
        final = log[-1]
        return {"ok": f"({cell}, H=" in status or "Training" in status, "cell": cell, "log": log,
                "final_val_nats": final["val_nats"], "best_val_nats": min(r["val_nats"] for r in log),
                "chars_per_sec": final["chars_seen"] / max(trained, 1e-9), "backend": backend, "status": status,
                "config": final["config"], "page_errors": errors,
                "chars_in_page": _count(page.locator(".tr-chars .tr-kv").first.inner_text())}
    finally:
        browser.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--site", type=Path, default=DEFAULT_SITE)
    ap.add_argument("--cells", nargs="+", default=["gru"], choices=["rnn", "gru", "lstm"])
    ap.add_argument("--seconds", type=float, default=300.0, help="wall-clock training budget per cell")
    ap.add_argument("--every", type=float, default=60.0, help="seconds of training between scores")
    ap.add_argument("--hidden-size", type=int, default=128)
    ap.add_argument("--seq-len", type=int, default=25)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=None, help="the page's learning rate (default: the page's)")
    ap.add_argument("--workers", type=int, default=None, help="?workers=N (default: the page's, one per core)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args(argv)
    exe = os.environ.get("TINYRNN_CHROMIUM", "/usr/bin/chromium")
    for ok, what in ((Path(exe).exists(), f"Chromium at {exe}"), (args.data.is_file(), f"the text at {args.data}"),
                     ((args.site / "index.html").exists(), f"the built site at {args.site}")):
        if not ok:
            print(f"not found: {what}", file=sys.stderr)
            return 2
    from playwright.sync_api import sync_playwright

    text = args.data.read_text(encoding="utf-8")
    settings = {".tr-hidden-size": args.hidden_size, ".tr-seq-len": args.seq_len, ".tr-batch-size": args.batch_size,
                **({".tr-lr": args.lr} if args.lr is not None else {})}
    server, base = isolated_server(args.site)
    url = base + (f"?workers={args.workers}" if args.workers else "")
    info = machine_info(exe)
    print(f"{info['date_utc']}  {info['cpu']}  {info['chromium']}  load {info['loadavg_start']}\n"
          f"the page at {url}, {len(text):,} characters of {args.data.name}, {args.seconds:.0f} s per cell", flush=True)
    results = []
    with sync_playwright() as pw:
        for cell in args.cells:
            try:
                r = train_and_score(pw, exe, url, text, cell, args.seconds, args.every, settings)
            except Exception as exc:  # noqa: BLE001 - a failed run is reported, the other cells still run
                r = {"ok": False, "cell": cell, "error": f"{type(exc).__name__}: {exc}"}
            results.append(r)
    server.shutdown()
    server.server_close()
    load_end = list(os.getloadavg())
    print(f"\nthe page after {args.seconds:.0f} s of training (held-out tenth, nats/char); load "
          f"{info['loadavg_start']} -> {load_end}")
    for r in results:
        if not r.get("ok"):
            print(f"  {r['cell']}: FAILED {r.get('error', r.get('status', ''))[:300]}")
            continue
        training = r["backend"].partition("Training:")[2].strip()
        print(f"  {r['cell']}: {r['final_val_nats']:.4f} (best {r['best_val_nats']:.4f}), "
              f"{r['chars_per_sec']:,.0f} chars/s [{training}]")
    done = [r for r in results if r.get("ok")]
    if done:
        best = min(done, key=lambda r: r["final_val_nats"])
        verdict = "✓" if best["final_val_nats"] <= TARGET_NATS else "✗"
        print(f"best cell: {best['cell']} {best['final_val_nats']:.4f} nats/char {verdict} (target ≤ {TARGET_NATS})")
    info["loadavg_end"] = load_end
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": info, "settings": {k: str(v) for k, v in vars(args).items()},
                                     "target_nats": TARGET_NATS, "results": results}, indent=1, default=str))
    print(f"wrote {args.json}")
    return 0 if done and len(done) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
