"""The page on every core (issue 12): the built site training in Chromium on 1 and 2 (or more) workers, beside an
older build of the site (the page before, "today's in-page chars/s"), in one run, interleaved.

    .venv/bin/python -m bench.page_workers --baseline-site /tmp/site-before      # B=16, workers 1 and 2, 3 rounds
    .venv/bin/python -m bench.page_workers --batches 16 32 --workers 1 2 --rounds 5

(The project's ``.venv``, which has Playwright.) The measurement is ``bench/page_throughput.py``'s: one cold
browser each time, the first 1 M characters of tinyshakespeare uploaded, tanh RNN H=128, T=25, B, Train, the
page's own "Chars seen" over ``--secs`` after ``--warm``. The site is served cross-origin isolated by this bench's
server (COOP/COEP on every response), as the site's service worker makes it from the second visit
(tests/browser/test_isolation.py checks that path), with ``?workers=N`` in the address. The baseline site (build
it from an older commit: ``git worktree add /tmp/before COMMIT`` and ``python -m sitebuild.build --out ...`` there)
is served the same way. Results with machine, date and load go to ``bench/results/page-workers.json``.
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", type=Path, default=DEFAULT_SITE)
    ap.add_argument("--baseline-site", type=Path, default=None, help="an older build, measured beside (one worker)")
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
    variants = ([("before", None)] if args.baseline_site else []) + [("now", w) for w in args.workers]
    info = machine_info(exe)
    print(f"{info['date_utc']}  {info['cpu']}  {info['chromium']}  load {info['loadavg_start']}", flush=True)
    results = []
    with sync_playwright() as pw:
        for rnd in range(args.rounds):
            for B in args.batches:
                order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
                for site, w in order:
                    url = servers[site][1] + (f"?workers={w}" if w else "")
                    try:
                        r = measure_page(pw, exe, url, text.encode("utf-8"), len(text), B, args.warm, args.secs)
                    except Exception as exc:  # noqa: BLE001 - a failed measurement is reported, the others run
                        r = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                    r.update(site=site, workers=w, B=B, round=rnd, load=list(os.getloadavg()))
                    results.append(r)
                    what = f"{site} " + (f"workers={w}" if w else "(its own engine)")
                    print(f"  round {rnd + 1} B={B:<3d} {what:22s} " + (f"{r['chars_per_sec']:>9,.0f} chars/s"
                          if r.get("ok") else f"FAILED: {r.get('error', '')[:300]}") + f"  (load {r['load'][0]:.1f})",
                          flush=True)
    for server, _ in servers.values():
        server.shutdown()
        server.server_close()
    print(f"\nmedian chars/s of {args.rounds} rounds; load {info['loadavg_start']} -> {list(os.getloadavg())}")
    summary = {}
    for B in args.batches:
        med = {}
        for site, w in variants:
            got = [r["chars_per_sec"] for r in results if r.get("ok") and r["B"] == B and r["site"] == site
                   and r["workers"] == w]
            med[f"{site}" + (f" workers={w}" if w else "")] = statistics.median(got) if got else None
        base = med.get("before") or med.get(f"now workers={args.workers[0]}")
        print(f"B={B}: " + ", ".join(f"{k} {v / 1000:,.1f}k ({v / base:.2f}×)" if v and base else f"{k} —"
                                     for k, v in med.items()))
        summary[B] = med
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": info, "summary": summary, "results": results}, indent=1,
                                    default=str))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
