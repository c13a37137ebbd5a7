"""Start-up time of the built site in a real browser: navigation -> ready (``body`` loses ``pn-loading``).

Run from the repository root with the project's venv (it has Playwright)::

    .venv/bin/python -m bench.startup_compare [--site build/site] [--compare OTHER_SITE] [--visits N]
                                              [--json bench/results/startup-compare.json]

Each site is served by ``sitebuild/serve.py`` (``make_server`` on 127.0.0.1, a free port) and visited by Debian's
Chromium (``/usr/bin/chromium``, or ``$TINYRNN_CHROMIUM``) through Playwright, with a persistent browser profile
in a temporary directory per site, as a returning visitor has: visit 0 is cold (empty profile), visits 1..N are
warm (every file in the HTTP cache, revalidated with ``304 Not Modified``).  Reported per site: the cold time,
the warm median with range and n, the page's own phases (when the worker was created and when it posted its
status messages (sitebuild.patches.LOADING_STEPS) and 'render'; milliseconds since
navigation start, from ``performance.now()`` in the page), the CPU time of the site's Chromium (all its
processes) per visit, and what the server answered.  With ``--compare`` the two sites are visited alternately,
the order flipped every round, so load from other processes hits both alike; the paired differences
(OTHER_SITE - SITE, same round) are printed too.

No Playwright request routing (it disables the HTTP cache): every host but 127.0.0.1 is made unresolvable with
``--host-resolver-rules`` instead, and any request to another host is reported (the self-contained site makes
none).  A table goes to stdout and everything, with machine information, to the JSON file.
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
from pathlib import Path

from bench.startup_browser import (CHROMIUM_ARGS, INIT_SCRIPT, KNOWN_PAGE_ERROR, PHASES, VISIT_TIMEOUT_S,
                                   browser_cpu_seconds, fmt, is_outside, machine_info, median_range)
from sitebuild import serve

REPO = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO / "bench" / "results" / "startup-compare.json"


class Site:
    """One site: its server (logging each response), its persistent browser profile and its visits."""

    def __init__(self, path: Path, label: str):
        self.path, self.label = path.resolve(), label
        self.server = serve.make_server(self.path, "127.0.0.1", 0, compress=False)  # bytes = file sizes
        self.server.responses = []  # (status, bytes) of every response, cleared before each visit

        class Handler(serve.SiteHandler):
            def log_request(self, code="-", size="-"):
                status, nbytes = int(code), 0
                if status == 200:
                    f = self.translate_path(self.path)
                    f = os.path.join(f, "index.html") if os.path.isdir(f) else f
                    nbytes = os.path.getsize(f) if os.path.isfile(f) else 0
                self.server.responses.append((status, nbytes))

        self.server.RequestHandlerClass = functools.partial(Handler, directory=str(self.path))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.profile = tempfile.TemporaryDirectory(prefix="tinyrnn-startup-profile-")
        self.visits: list[dict] = []
        self.outside: list[str] = []  # this visit's requests to another host than 127.0.0.1
        self.errors: list[str] = []  # this visit's uncaught errors in the page
        self.context = self.page = None

    def open(self, pw, exe: str) -> None:
        self.context = pw.chromium.launch_persistent_context(
            self.profile.name, executable_path=exe, args=CHROMIUM_ARGS, headless=True,
            service_workers="block", viewport={"width": 1280, "height": 1000})
        self.context.add_init_script(INIT_SCRIPT)
        self.page = self.context.pages[0] if self.context.pages else self.context.new_page()
        self.context.on("request", lambda r: self.outside.append(r.url) if is_outside(r.url) else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def visit(self, n: int) -> dict:
        self.server.responses.clear()
        self.outside.clear()
        self.errors.clear()
        cpu0 = browser_cpu_seconds(self.profile.name)
        self.page.goto(self.url, wait_until="commit")
        try:
            self.page.wait_for_function("() => window.__startup && window.__startup.ready !== null",
                                        polling=100, timeout=VISIT_TIMEOUT_S * 1000)
            ok = True
        except Exception:  # noqa: BLE001 - a page that never becomes ready is a result, not a crash
            ok = False
        try:
            t = self.page.evaluate("() => window.__startup") or {"phases": {}, "ready": None}
        except Exception:  # noqa: BLE001 - e.g. a crashed page
            t = {"phases": {}, "ready": None}
        cpu = browser_cpu_seconds(self.profile.name) - cpu0
        status: dict[str, int] = {}
        for code, _ in self.server.responses:
            status[str(code)] = status.get(str(code), 0) + 1
        phases = {k: t["phases"][k] / 1000 for k in PHASES[:-1] if t["phases"].get(k) is not None}
        res = {"visit": n, "ready_s": t["ready"] / 1000 if ok and t["ready"] is not None else None,
               "phases_s": phases, "cpu_s": round(cpu, 2), "server": status,
               "bytes_sent": sum(b for _, b in self.server.responses), "outside": list(self.outside),
               "page_errors": list(self.errors), "load1": os.getloadavg()[0]}
        self.visits.append(res)
        return res

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
        self.server.shutdown()
        self.server.server_close()
        self.profile.cleanup()




def summarize(site: Site) -> dict:
    warm = [v for v in site.visits if v["visit"] > 0 and v["ready_s"] is not None]
    ready = [v["ready_s"] for v in warm]
    phases = {}
    for k in PHASES[:-1]:
        xs = [v["phases_s"][k] for v in warm if k in v["phases_s"]]
        phases[k] = statistics.median(xs) if xs else None
    return {"cold_s": site.visits[0]["ready_s"], "cold_cpu_s": site.visits[0]["cpu_s"], "warm_s": ready,
            "warm_median_s": statistics.median(ready) if ready else None, "warm_n": len(ready),
            "warm_cpu_median_s": statistics.median(v["cpu_s"] for v in warm) if warm else None,
            "warm_phases_median_s": phases}


def paired(a: Site, b: Site) -> dict | None:
    """B - A per warm round in which both became ready."""
    ra = {v["visit"]: v for v in a.visits if v["visit"] > 0 and v["ready_s"] is not None}
    rb = {v["visit"]: v for v in b.visits if v["visit"] > 0 and v["ready_s"] is not None}
    rounds = sorted(set(ra) & set(rb))
    if not rounds:
        return None
    dt = [rb[r]["ready_s"] - ra[r]["ready_s"] for r in rounds]
    dc = [rb[r]["cpu_s"] - ra[r]["cpu_s"] for r in rounds]
    return {"ready_diff_s": dt, "cpu_diff_s": dc, "ready_diff_median_s": statistics.median(dt),
            "cpu_diff_median_s": statistics.median(dc), "b_faster_rounds": sum(x < 0 for x in dt), "n": len(rounds)}




def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", type=Path, default=Path("build/site"), help="a built site (default: build/site)")
    ap.add_argument("--compare", type=Path, metavar="OTHER_SITE", help="a second built site, visited alternately")
    ap.add_argument("--visits", type=int, default=10, metavar="N", help="warm visits after the cold one (10)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON,
                    help=f"results file (default: {DEFAULT_JSON.relative_to(REPO)})")
    args = ap.parse_args(argv)
    paths = [args.site] + ([args.compare] if args.compare else [])
    for p in paths:
        if not (p / "index.html").exists():
            print(f"no site at {p}: build one with  make site  (or python -m sitebuild.build --out {p})",
                  file=sys.stderr)
            return 2
    exe = os.environ.get("TINYRNN_CHROMIUM", "/usr/bin/chromium")
    if not Path(exe).exists():
        print(f"Chromium not found at {exe}: run scripts/install_browser_deps.sh (or set TINYRNN_CHROMIUM)",
              file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    info = machine_info(exe)
    print(f"{info['date_utc']}  {info['cpu']}  nproc={info['nproc']}  {info['chromium']}  "
          f"load average {' '.join(f'{x:.2f}' for x in info['loadavg_start'])}", flush=True)
    labels = [str(p) for p in paths]
    if len(labels) == 2 and labels[0] == labels[1]:
        labels[1] += " (2nd)"
    sites = [Site(p, label) for p, label in zip(paths, labels)]
    try:
        with sync_playwright() as pw:
            for s in sites:
                s.open(pw, exe)
            for n in range(args.visits + 1):
                for s in (sites if n % 2 == 0 else sites[::-1]):
                    r = s.visit(n)
                    ph = " ".join(f"{k.split()[0]}={v:.2f}" for k, v in r["phases_s"].items())
                    srv = " ".join(f"{c}x{k}" for k, c in sorted(r["server"].items()))
                    ready = "NOT READY" if r["ready_s"] is None else f"ready {r['ready_s']:.2f} s"
                    line = (f"visit {n} {'cold' if n == 0 else 'warm'} {s.label}: {ready}  [{ph}]  "
                            f"cpu {r['cpu_s']:.1f} s  server {srv} ({r['bytes_sent'] / 1e6:.1f} MB)  "
                            f"load {r['load1']:.2f}")
                    if r["outside"]:
                        line += f"\n  requests leaving 127.0.0.1: {r['outside']}"
                    unexpected = [e for e in r["page_errors"] if not KNOWN_PAGE_ERROR.match(e.strip())]
                    if unexpected:
                        line += f"\n  page errors: {unexpected}"
                    print(line, flush=True)
            for s in sites:
                s.context.close()
                s.context = None
    finally:
        for s in sites:
            s.close()
    info["loadavg_end"] = list(os.getloadavg())

    summaries = {s.label: summarize(s) for s in sites}
    print(f"\nnavigation -> ready, persistent profile per site; warm = visits 1..{args.visits}")
    print(f"{'site':<24} {'cold':>7} {'warm median (range), n':>30} {'warm CPU':>9}")
    for label, sm in summaries.items():
        print(f"{label:<24} {fmt(sm['cold_s']):>5} s {median_range(sm['warm_s']):>30} "
              f"{fmt(sm['warm_cpu_median_s']):>7} s")
    print("\nwarm phases, median seconds since navigation start (worker created, its status messages, ready)")
    print(f"{'site':<24} " + " ".join(f"{k.split()[0][:10]:>10}" for k in PHASES))
    for label, sm in summaries.items():
        vals = [*sm["warm_phases_median_s"].values(), sm["warm_median_s"]]
        print(f"{label:<24} " + " ".join(f"{fmt(v):>10}" for v in vals))
    pair = paired(*sites) if len(sites) == 2 else None
    if pair:
        print(f"\npaired by round, {sites[1].label} - {sites[0].label}: ready {pair['ready_diff_median_s']:+.2f} s "
              f"(range {min(pair['ready_diff_s']):+.2f}..{max(pair['ready_diff_s']):+.2f}), "
              f"{sites[1].label} faster in {pair['b_faster_rounds']}/{pair['n']} rounds; "
              f"CPU {pair['cpu_diff_median_s']:+.2f} s")
    outside = sorted({u for s in sites for v in s.visits for u in v["outside"]})
    print(f"\nrequests leaving 127.0.0.1: {len(outside)}" + "".join(f"\n  {u}" for u in outside))
    print(f"load average (1, 5, 15 min) at start {' '.join(f'{x:.2f}' for x in info['loadavg_start'])}, "
          f"at end {' '.join(f'{x:.2f}' for x in info['loadavg_end'])} on {info['nproc']} CPUs")

    builds = {}
    for s in sites:
        try:
            b = json.loads((s.path / "BUILD-INFO.json").read_text())
            builds[s.label] = {k: b.get(k) for k in ("mode", "pyodide", "panel", "bokeh", "wheel", "stand_ins")}
        except (OSError, ValueError):
            builds[s.label] = None
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "machine": info, "settings": {"visits": args.visits, "chromium_args": CHROMIUM_ARGS,
                                      "timeout_s": VISIT_TIMEOUT_S},
        "sites": {s.label: {"path": str(s.path), "build_info": builds[s.label], "summary": summaries[s.label],
                            "visits": s.visits} for s in sites},
        "paired": pair, "requests_leaving_127.0.0.1": outside}, indent=1))
    print(f"wrote {args.json}")
    return 0 if all(v["ready_s"] is not None for s in sites for v in s.visits) else 1


if __name__ == "__main__":
    sys.exit(main())
