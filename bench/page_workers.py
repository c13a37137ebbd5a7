"""The page per cell and worker count: the built site training in Chromium, each cell on 1 and 2 (or more) workers,
optionally beside an older build of the site, in one run, interleaved; the targets as ratios.

    .venv/bin/python -m bench.page_workers                        # rnn, gru, lstm on 1 and 2 workers, B=16, 3 rounds
    .venv/bin/python -m bench.page_workers --cells rnn --workers 1 2 --baseline-site /tmp/site-before --rounds 3

(The project's ``.venv``, which has Playwright.) The measurement is ``bench/page_throughput.py``'s: one cold
browser each time, the first 1 M characters of tinyshakespeare uploaded, the cell chosen, H=128, T=25, B, Train,
the page's own "Chars seen" over ``--secs`` after ``--warm``. The site is served cross-origin isolated by this
bench's server (COOP/COEP on every response): the state the site's service worker brings the page to with its
isolating reload on the first visit (tests/browser/test_isolation.py checks that path), here without the reload,
so every measurement starts from the same cold browser; ``?workers=N`` in the address. The page's backend readout
(what computes, on how many workers) and the page loop's time a step (its clock: steps without a validation) are
kept with every measurement. Ratios (of the medians over the rounds): each gated cell against the tanh RNN at the
same worker count (targets GRU ≥ 0.45, LSTM ≥ 0.35; beside, the ratio within each round, measured minutes apart:
how far this machine's drift moves it), and each cell's most workers against one (≥ 1.4). The baseline site
(``git worktree add /tmp/before COMMIT`` and ``python -m sitebuild.build --out ...`` there) is served the same way.
Results with machine, date and load go to ``bench/results/page-workers.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import threading
from pathlib import Path

from bench.page_throughput import DEFAULT_DATA, DEFAULT_SITE, measure_page
from bench.startup_browser import machine_info

REPO = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO / "bench" / "results" / "page-workers.json"


def isolated_server(site: Path):
    """``sitebuild.serve``'s server for ``site``, with COOP/COEP on every response; (server, base URL)."""
    from sitebuild import serve

    class Isolated(serve.SiteHandler):
        def end_headers(self):
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            super().end_headers()

    server = serve.make_server(site.resolve(), "127.0.0.1", 0)
    server.RequestHandlerClass = functools.partial(Isolated, directory=str(site.resolve()))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


CELL_TARGETS = {"gru": 0.45, "lstm": 0.35}  # issue 17: the page's gated cells against its tanh RNN
WORKERS_TARGET = 1.4  # issue 17: k workers against one, per cell, at B=16 on a 2-core machine


def ratio_lines(med: dict, cells, workers, paired: dict | None = None) -> list[str]:
    """The targets as ratios of the medians: ``med[(cell, workers)]`` chars/s; ``paired[(cell, workers)]``: the
    gated cell's ratio to the tanh RNN within each round (measured minutes apart), shown beside as their range."""
    def ratio(a, b, target):
        return "—" if not (a and b) else f"{a / b:.2f}× {'✓' if a / b >= target else '✗'} (≥ {target})"

    def rounds(key):
        got = sorted((paired or {}).get(key) or [])
        return f"; within each round {', '.join(f'{x:.3f}' for x in got)}" if got else ""

    lines = []
    for w in workers:
        lines += [f"  {cell} / rnn on {w} worker(s): {ratio(med.get((cell, w)), med.get(('rnn', w)), t)}"
                  + rounds((cell, w)) for cell, t in CELL_TARGETS.items() if cell in cells and "rnn" in cells]
    if len(workers) > 1:
        lines += [f"  {cell}: {max(workers)} workers / 1: "
                  f"{ratio(med.get((cell, max(workers))), med.get((cell, min(workers))), WORKERS_TARGET)}"
                  for cell in cells]
    return lines


def step_ms(result: dict) -> float | None:
    """Milliseconds a training step took in the page (its loop clock: steps without a validation), or None."""
    clock = result.get("clock") or {}
    steps = (clock.get("counts") or {}).get("step")
    return 1e3 * clock["seconds"]["step"] / steps if steps else None


def paired_ratios(results: list, B: int) -> dict:
    """{(gated cell, workers): [its chars/s / the tanh RNN's in the same round, ...]} for this site's results."""
    ours = {(r["cell"], r["workers"], r["round"]): r["chars_per_sec"] for r in results
            if r.get("ok") and r["B"] == B and r["site"] == "now"}
    out = {}
    for (cell, w, rnd), speed in ours.items():
        rnn = ours.get(("rnn", w, rnd))
        if cell in CELL_TARGETS and rnn:
            out.setdefault((cell, w), []).append(speed / rnn)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--site", type=Path, default=DEFAULT_SITE)
    ap.add_argument("--baseline-site", type=Path, default=None, help="an older build, measured beside (its default)")
    ap.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"], choices=["rnn", "gru", "lstm"])
    ap.add_argument("--batches", nargs="+", type=int, default=[16])
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warm", type=float, default=5.0)
    ap.add_argument("--secs", type=float, default=20.0)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    exe = os.environ.get("TINYRNN_CHROMIUM", "/usr/bin/chromium")
    text = args.data.read_text(encoding="utf-8")[:1_000_000]
    servers = {"now": isolated_server(args.site)}
    if args.baseline_site:
        servers["before"] = isolated_server(args.baseline_site)
    variants = [(site, cell, w) for cell in args.cells
                for site, w in ([("before", None)] if args.baseline_site else []) + [("now", w) for w in args.workers]]
    info = machine_info(exe)
    print(f"{info['date_utc']}  {info['cpu']}  {info['chromium']}  load {info['loadavg_start']}", flush=True)
    results = []
    with sync_playwright() as pw:
        for rnd in range(args.rounds):
            for B in args.batches:
                order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
                for site, cell, w in order:
                    url = servers[site][1] + (f"?workers={w}" if w else "")
                    try:
                        r = measure_page(pw, exe, url, text.encode("utf-8"), len(text), B, args.warm, args.secs,
                                         cell=cell)
                    except Exception as exc:  # noqa: BLE001 - a failed measurement is reported, the others run
                        r = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                    r.update(site=site, cell=cell, workers=w, B=B, round=rnd, load=list(os.getloadavg()))
                    results.append(r)
                    what = f"{site} {cell} " + (f"workers={w}" if w else "(its default)")
                    training = (r.get("backend") or "").partition("Training:")[2].strip()
                    ms = step_ms(r) if r.get("ok") else None
                    print(f"  round {rnd + 1} B={B:<3d} {what:26s} " + (f"{r['chars_per_sec']:>9,.0f} chars/s"
                          if r.get("ok") else f"FAILED: {r.get('error', '')[:300]}")
                          + (f", {ms:.2f} ms a step" if ms else "") + f"  (load {r['load'][0]:.1f})"
                          + (f"  [{training}]" if training else ""), flush=True)
    for server, _ in servers.values():
        server.shutdown()
        server.server_close()
    load_end = list(os.getloadavg())
    print(f"\nmedian chars/s of {args.rounds} rounds (range); load {info['loadavg_start']} -> {load_end}")
    summary = {}
    for B in args.batches:
        med = {}
        for site, cell, w in variants:
            got = [r["chars_per_sec"] for r in results if r.get("ok") and r["B"] == B and r["site"] == site
                   and r["cell"] == cell and r["workers"] == w]
            med[(cell, w) if site == "now" else (cell, "before")] = statistics.median(got) if got else None
            print(f"  B={B} {site} {cell} " + (f"workers={w}" if w else "(its default)") + ": "
                  + (f"{statistics.median(got) / 1000:,.1f}k ({min(got) / 1000:,.1f}k–{max(got) / 1000:,.1f}k)"
                     if got else "—"))
        print(f"B={B}: targets (issue 17)")
        print("\n".join(ratio_lines(med, args.cells, args.workers, paired_ratios(results, B))))
        summary[B] = {f"{c} workers={w}": v for (c, w), v in med.items()}
    info["loadavg_end"] = load_end
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": info, "settings": {k: str(v) for k, v in vars(args).items()},
                                     "summary": summary, "results": results}, indent=1, default=str))
    print(f"wrote {args.json}")
    return 0 if all(r.get("ok") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
