"""Start-up of the built site in a real browser, as visitors meet it: navigation -> ready (``body`` loses
``pn-loading``), with the site's service worker allowed.

Run from the repository root with the project's venv (it has Playwright)::

    .venv/bin/python -m bench.startup [--site build/site] [--rounds N] [--json bench/results/startup.json]

Each round, with Debian's Chromium (``$TINYRNN_CHROMIUM`` overrides) and the site served by ``sitebuild.serve``
on 127.0.0.1 (gzip on, as GitHub Pages compresses text):

* **first**: a visit with an empty browser profile; then the wait until the service worker has cached the site and
  controls the page (``precache_s``, after ready);
* **return-1**, **return-2**: the same profile navigates again, twice (served by the service worker, cache first;
  the first return visit also compiles the WebAssembly again, now from the service worker's cache);
* **return-no-sw**: between the two, a return visit of a profile with service workers blocked (the browser's HTTP
  cache warm, every file revalidated with ``304``: a return visit as it was before the service worker);
* **offline**: the same profile with the network cut (``context.set_offline(True)``);
* **first-20mbit**: another empty profile, over an emulated network (CDP ``Network.emulateNetworkConditions``:
  20 Mbit/s down, 40 ms round trip, on the page's target; the page's worker's downloads are slowed too: its
  "Installing packages" phase grows by about the transfer time).

Reported per scenario: median (range) of the ready times, the bytes the server sent (bodies, after compression),
the requests it answered, and the page's phases; machine, date and load average go to the JSON file. The
A/B comparison of two builds with a warm HTTP cache (service workers blocked) is ``bench.startup_compare``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.startup_browser import (CHROMIUM_ARGS, INIT_SCRIPT, KNOWN_PAGE_ERROR, PHASES, VISIT_TIMEOUT_S,
                                   is_outside, machine_info, median_range)
from sitebuild import serve

REPO = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO / "bench" / "results" / "startup.json"
SCENARIOS = ["first", "return-1", "return-2", "return-no-sw", "offline", "first-20mbit"]
NETWORK_20MBIT = {"offline": False, "latency": 40, "downloadThroughput": 20e6 / 8, "uploadThroughput": 20e6 / 8}
TARGETS = {"return-1": ("ready_s", 4.0), "return-2": ("ready_s", 4.0), "first-20mbit": ("ready_s", 15.0),
           "first": ("bytes_sent", 20e6)}


class CountingServer:
    """The site on 127.0.0.1 with ``sitebuild.serve``, counting what it sends: (path, status, body bytes,
    seconds spent writing the body) per response since ``reset()``."""

    def __init__(self, site: Path):
        self.server = serve.make_server(site, "127.0.0.1", 0)
        self.lock = threading.Lock()
        self.log: list[tuple[str, int, int, float]] = []
        outer = self

        class Handler(serve.SiteHandler):
            def copyfile(self, source, outputfile):
                n, t0 = 0, time.monotonic()
                while chunk := source.read(1 << 16):
                    outputfile.write(chunk)
                    n += len(chunk)
                with outer.lock:
                    outer.log.append((self.path, 200, n, time.monotonic() - t0))

            def log_request(self, code="-", size="-"):
                if str(code) != "200":
                    with outer.lock:
                        outer.log.append((self.path, int(code), 0, 0.0))

        self.server.RequestHandlerClass = functools.partial(Handler, directory=str(site))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def reset(self) -> list[tuple[str, int, int, float]]:
        with self.lock:
            log, self.log = self.log, []
        return log

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Visitor:
    """One browser profile (persistent, empty at first), the site's service worker allowed unless told."""

    def __init__(self, pw, exe: str, server: CountingServer, network: dict | None = None,
                 service_workers: str = "allow"):
        self.profile = tempfile.TemporaryDirectory(prefix="tinyrnn-startup-profile-")
        self.server = server
        self.context = pw.chromium.launch_persistent_context(
            self.profile.name, executable_path=exe, args=CHROMIUM_ARGS, headless=True, service_workers=service_workers,
            viewport={"width": 1280, "height": 1000})
        self.context.add_init_script(INIT_SCRIPT)
        self.page = self.context.pages[0] if self.context.pages else self.context.new_page()
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.context.on("request", lambda r: self.outside.append(r.url) if is_outside(r.url) else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        if network:
            cdp = self.context.new_cdp_session(self.page)
            cdp.send("Network.enable")
            cdp.send("Network.emulateNetworkConditions", network)

    def visit(self, scenario: str) -> dict:
        self.server.reset()
        self.outside.clear()
        self.errors.clear()
        self.page.goto(self.server.url, wait_until="commit")
        try:
            self.page.wait_for_function("() => window.__startup && window.__startup.ready !== null", polling=100,
                                        timeout=VISIT_TIMEOUT_S * 1000)
            t = self.page.evaluate("() => window.__startup")
        except Exception:  # noqa: BLE001 - a page that never becomes ready is a result, not a crash
            t = {"phases": {}, "ready": None}
        log = self.server.reset()
        return {"scenario": scenario, "ready_s": None if t["ready"] is None else t["ready"] / 1000,
                "phases_s": {k: v / 1000 for k, v in t["phases"].items() if k in PHASES},
                "bytes_sent": sum(n for _, _, n, _ in log), "requests": len(log),
                "status": {str(c): sum(1 for _, s, _, _ in log if s == c) for c in {s for _, s, _, _ in log}},
                "largest_bodies": sorted(((n, p) for p, _, n, _ in log), reverse=True)[:8],
                "outside": list(self.outside), "load1": os.getloadavg()[0],
                "page_errors": [e for e in self.errors if not KNOWN_PAGE_ERROR.match(e.strip())]}

    def wait_until_cached(self) -> float | None:
        """Seconds until the service worker has cached the site and controls the page (None: it never did)."""
        t0 = time.monotonic()
        try:
            self.page.wait_for_function("() => navigator.serviceWorker.controller !== null", polling=100,
                                        timeout=VISIT_TIMEOUT_S * 1000)
        except Exception:  # noqa: BLE001
            return None
        return time.monotonic() - t0

    def close(self) -> None:
        self.context.close()
        self.profile.cleanup()


def run_round(pw, exe: str, server: CountingServer) -> list[dict]:
    visitor = Visitor(pw, exe, server)
    no_sw = Visitor(pw, exe, server, service_workers="block")  # a return visit as it was before the service worker
    try:
        first = visitor.visit("first")
        first["precache_s"] = visitor.wait_until_cached()
        # what the service worker fetched while caching (revalidations of what the visit loaded, and the rest)
        first["precache_bytes"] = sum(n for _, _, n, _ in server.reset())
        no_sw.visit("first-no-sw")  # fills that profile's HTTP cache; not reported
        results = [first, visitor.visit("return-1"), no_sw.visit("return-no-sw"), visitor.visit("return-2")]
        visitor.context.set_offline(True)
        results.append(visitor.visit("offline"))
    finally:
        visitor.close()
        no_sw.close()
    slow = Visitor(pw, exe, server, NETWORK_20MBIT)
    try:
        results.append(slow.visit("first-20mbit"))
    finally:
        slow.close()
    return results


def summarize(visits: list[dict]) -> dict:
    out = {}
    for name in SCENARIOS:
        vs = [v for v in visits if v["scenario"] == name]
        ready = [v["ready_s"] for v in vs if v["ready_s"] is not None]
        out[name] = {"ready_s": ready, "ready_median_s": statistics.median(ready) if ready else None,
                     "n": len(vs), "not_ready": len(vs) - len(ready),
                     "bytes_median": statistics.median(v["bytes_sent"] for v in vs) if vs else None,
                     "requests_median": statistics.median(v["requests"] for v in vs) if vs else None}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", type=Path, default=Path("build/site"), help="a built site (default: build/site)")
    ap.add_argument("--rounds", type=int, default=3, metavar="N", help="rounds of the four scenarios (3)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON,
                    help=f"results file (default: {DEFAULT_JSON.relative_to(REPO)})")
    args = ap.parse_args(argv)
    if not (args.site / "sw.js").exists():
        print(f"no site with a service worker at {args.site}: build one with  make site", file=sys.stderr)
        return 2
    exe = os.environ.get("TINYRNN_CHROMIUM", "/usr/bin/chromium")
    if not Path(exe).exists():
        print(f"Chromium not found at {exe}: run scripts/install_browser_deps.sh", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    info = machine_info(exe)
    print(f"{info['date_utc']}  {info['cpu']}  nproc={info['nproc']}  {info['chromium']}  load average "
          f"{' '.join(f'{x:.2f}' for x in info['loadavg_start'])}", flush=True)
    server = CountingServer(args.site.resolve())
    visits = []
    try:
        with sync_playwright() as pw:
            for r in range(args.rounds):
                for v in run_round(pw, exe, server):
                    v["round"] = r
                    visits.append(v)
                    ready = "NOT READY" if v["ready_s"] is None else f"ready {v['ready_s']:.2f} s"
                    extra = f", cached for offline use {v['precache_s']:.1f} s later" if "precache_s" in v else ""
                    print(f"round {r} {v['scenario']:<13} {ready}{extra}  {v['bytes_sent'] / 1e6:.1f} MB in "
                          f"{v['requests']} responses  load {v['load1']:.2f}"
                          + (f"\n  requests leaving 127.0.0.1: {v['outside']}" if v["outside"] else "")
                          + (f"\n  page errors: {v['page_errors']}" if v["page_errors"] else ""), flush=True)
    finally:
        server.close()
    info["loadavg_end"] = list(os.getloadavg())
    summary = summarize(visits)
    print(f"\n{'scenario':<14} {'ready: median (range), n':>32} {'sent (median)':>14}  target")
    for name, sm in summary.items():
        metric, goal = TARGETS.get(name, (None, None))
        if metric == "ready_s":
            target = f"ready <= {goal:.0f} s: {'reached' if (sm['ready_median_s'] or 1e9) <= goal else 'NOT reached'}"
        elif metric == "bytes_sent":
            target = f"<= {goal / 1e6:.0f} MB: {'reached' if sm['bytes_median'] <= goal else 'NOT reached'}"
        else:
            target = ""
        print(f"{name:<14} {median_range(sm['ready_s']):>32} {sm['bytes_median'] / 1e6:>11.1f} MB  {target}")
    print(f"load average (1, 5, 15 min) at start {' '.join(f'{x:.2f}' for x in info['loadavg_start'])}, at end "
          f"{' '.join(f'{x:.2f}' for x in info['loadavg_end'])} on {info['nproc']} CPUs")
    build = json.loads((args.site / "BUILD-INFO.json").read_text())
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "machine": info, "settings": {"rounds": args.rounds, "chromium_args": CHROMIUM_ARGS, "network": NETWORK_20MBIT,
                                      "timeout_s": VISIT_TIMEOUT_S, "gzip": True},
        "site": {"path": str(args.site.resolve()), "offline": build.get("offline"), "wheel": build.get("wheel")},
        "summary": summary, "visits": visits}, indent=1))
    print(f"wrote {args.json}")
    return 0 if all(v["ready_s"] is not None for v in visits) else 1


if __name__ == "__main__":
    sys.exit(main())
