"""In-browser peers: the page (each cell) against jax-js, TensorFlow.js 4.22 and brain.js on the same task, one run.

    .venv/bin/python -m bench.browser_peers          # the peers at B in {1, 16}, the page's cells at B=16
    .venv/bin/python -m bench.browser_peers --engines tfjs-wasm jaxjs-wasm page-rnn --batches 16 --secs 10

(The project's ``.venv``, which has Playwright; the page's engines need the built site, ``python -m
sitebuild.build``.) The peers are installed from the npm registry by this script (``bench/browser_peers/
package.json`` -> ``.cache/browser-peers/node_modules``, git-ignored; never committed) and served with
``peers.html`` by a small server on 127.0.0.1 to Debian's Chromium (``$TINYRNN_CHROMIUM`` overrides), one cold
browser per measurement, every other host unresolvable. The same task for every peer (``bench/browser_peers/
peers.js``): the first 1 M characters of tinyshakespeare, tanh RNN H=128, T=25, B streams, Adam 2e-3 and global-norm
clipping 5.0 where the engine has them, on the page's main thread; chars/s over the counted seconds after the
warm-up. jax-js (``jaxjs_rnn.mjs``: the whole step under its ``jit``) runs on one thread, and as
``jaxjs-wasm-threads`` on its own pool of worker threads (served cross-origin isolated, which its threads need).

``page-rnn``, ``page-gru``, ``page-lstm``: the built site itself (``bench.page_throughput``'s measurement, served
cross-origin isolated as after its isolating reload, so on every core), the cell chosen, H=128, T=25, B=16.
``tinyrnn``: tinyrnn's ``Trainer.step`` in Pyodide on the main thread of ``peers.html`` (a wheel built from this
tree). With ``--rounds N`` every measurement runs N times, the order rotated, and the median counts. Targets
(issue 17), printed as ratios: the page's tanh RNN ≥ 8× the best peer at B=16, every page cell ≥ 2× the best
peer's tanh RNN. Results with machine, date and load go to ``bench/results/browser-peers.json``.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.harness import shared_data

REPO = Path(__file__).resolve().parent.parent
PEERS = REPO / "bench" / "browser_peers"
CACHE = REPO / ".cache" / "browser-peers"
DEFAULT_DATA = shared_data()  # ../shared/data/tinyshakespeare.txt (never copied into the repository)
DEFAULT_PYODIDE = REPO / ".cache" / "mirror" / "selfcontained" / "pyodide"  # make mirror
DEFAULT_JSON = REPO / "bench" / "results" / "browser-peers.json"
PEERS_ENGINES = ("jaxjs-wasm", "jaxjs-wasm-threads", "tfjs-wasm", "tfjs-cpu", "brainjs")
PAGE_ENGINES = {"page-rnn": "rnn", "page-gru": "gru", "page-lstm": "lstm"}
ENGINES = PEERS_ENGINES + tuple(PAGE_ENGINES) + ("tinyrnn",)
ISOLATED = ("jaxjs-wasm-threads",)  # served with COOP/COEP (threads need SharedArrayBuffer)
PAGE_TARGET, CELL_TARGET = 8.0, 2.0  # issue 17: page tanh RNN vs the best peer at B=16; every page cell vs it
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


def install_peers() -> Path:
    """npm-install bench/browser_peers/package.json into the ignored cache (once per change of package.json)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    wanted = (PEERS / "package.json").read_text()
    if (CACHE / "package.json").exists() and (CACHE / "package.json").read_text() == wanted \
            and (CACHE / "node_modules").is_dir():
        return CACHE / "node_modules"
    (CACHE / "package.json").write_text(wanted)
    subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=CACHE, check=True,
                   timeout=600)
    return CACHE / "node_modules"


def build_wheels(pyodide_dir: Path) -> Path:
    """This tree's tinyrnn wheel and Pyodide's autograd wheel, in one folder the page lists."""
    out = CACHE / "wheels"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)], check=True,
                   capture_output=True, timeout=600, env=env)
    (autograd,) = pyodide_dir.glob("autograd-*.whl")
    shutil.copy(autograd, out / autograd.name)
    return out


class Handler(http.server.SimpleHTTPRequestHandler):
    """/peers/, /node_modules/, /pyodide/, /wheels/ (a JSON listing at /wheels/) and /text."""

    roots: dict = {}
    text: bytes = b""
    isolated = False

    def log_message(self, *args):  # quiet
        pass

    def end_headers(self):
        if self.isolated:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def translate_path(self, path):
        path = path.split("?", 1)[0]
        prefix, _, rest = path.lstrip("/").partition("/")
        root = self.roots.get(prefix)
        if root is None:
            return "/nonexistent"
        target = (root / rest).resolve()
        return str(target) if target.is_relative_to(root.resolve()) else "/nonexistent"

    def do_GET(self):
        route = self.path.split("?", 1)[0]
        if route == "/text":
            return self._send(self.text, "text/plain; charset=utf-8")
        if route == "/wheels/":
            names = sorted(p.name for p in self.roots["wheels"].glob("*.whl"))
            return self._send(json.dumps(names).encode(), "application/json")
        return super().do_GET()

    def _send(self, body: bytes, content_type: str):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


Handler.extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                          ".js": "text/javascript", ".mjs": "text/javascript"}


def serve(roots: dict, text: str, isolated: bool = False):
    handler = type("PeersHandler", (Handler,), {"roots": roots, "text": text.encode("utf-8"), "isolated": isolated})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def measure(pw, exe: str, base: str, engine: str, B: int, warm: float, secs: float) -> dict:
    """One cold browser, one run of peers.js; the page's result record."""
    browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
    try:
        page = browser.new_page()
        foreign = []
        page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(base) else None)
        t0 = time.perf_counter()
        page.goto(f"{base}/peers/peers.html?engine={engine}&B={B}&warm={warm}&secs={secs}")
        page.wait_for_function("window.__result !== undefined", timeout=(warm + secs + 240) * 1000)
        result = page.evaluate("window.__result")
        result.update({"engine_id": engine, "wall_s": time.perf_counter() - t0, "foreign_requests": foreign})
        return result
    finally:
        browser.close()


def _k(x):
    return "—" if x is None else f"{x / 1000:,.1f}k" if x >= 1000 else f"{x:,.0f}"


def table(results: list[dict], batches) -> tuple[str, dict]:
    """Markdown: engine x B median chars/s over the rounds (range when there are several), and the targets as
    ratios of medians: each page cell and tinyrnn against the best peer at each B."""
    runs = {}
    for r in results:
        if r.get("ok"):
            runs.setdefault((r["engine_id"], r["B"]), []).append(r["chars_per_sec"])
    rate = {key: statistics.median(v) for key, v in runs.items()}
    names = {r["engine_id"]: r.get("engine", r["engine_id"]) for r in results if r.get("ok")}

    def cell(key):
        if key not in runs:
            return "—"
        v = runs[key]
        return _k(rate[key]) + (f" ({_k(min(v))}–{_k(max(v))})" if len(v) > 1 else "")

    lines = ["| engine | " + " | ".join(f"B={B}" for B in batches) + " |", "|---|" + "---|" * len(batches)]
    for engine in dict.fromkeys(r["engine_id"] for r in results):
        lines.append(f"| {names.get(engine, engine)} | " + " | ".join(cell((engine, B)) for B in batches) + " |")
    ratios = {}
    for B in batches:
        peers = {e: v for (e, b), v in rate.items() if b == B and e in PEERS_ENGINES and v}
        if not peers:
            continue
        best = max(peers, key=peers.get)
        ratios[B] = {"best_peer": best, "best_peer_chars_per_sec": peers[best],
                     **{e: rate[(e, B)] / peers[best] for e in (*PAGE_ENGINES, "tinyrnn") if rate.get((e, B))}}
    return "\n".join(lines), ratios


def target_lines(ratios: dict) -> list[str]:
    """Issue 17's targets at B=16, from ``table``'s ratios."""
    r = ratios.get(16)
    if not r:
        return ["targets: no peer measured at B=16"]

    def verdict(x, target):
        return "—" if x is None else f"{x:.2f}× {'✓' if x >= target else '✗'} (≥ {target:g})"

    out = [f"B=16, best peer {r['best_peer']} ({_k(r['best_peer_chars_per_sec'])} chars/s):",
           f"  the page's tanh RNN / best peer: {verdict(r.get('page-rnn'), PAGE_TARGET)}"]
    out += [f"  the page's {PAGE_ENGINES[e]} / best peer's tanh RNN: {verdict(r.get(e), CELL_TARGET)}"
            for e in PAGE_ENGINES]
    if r.get("tinyrnn"):
        out.append(f"  (tinyrnn's Trainer.step on the main thread / best peer: {r['tinyrnn']:.2f}×)")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--engines", nargs="+", default=list(PEERS_ENGINES + tuple(PAGE_ENGINES)), choices=ENGINES)
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 16], help="the peers' (and tinyrnn's) B")
    ap.add_argument("--page-batches", nargs="+", type=int, default=[16], help="the page's B")
    ap.add_argument("--warm", type=float, default=5.0, help="seconds of training before counting")
    ap.add_argument("--secs", type=float, default=15.0, help="seconds counted (steady state)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds over every engine, the order rotated each round")
    ap.add_argument("--chars", type=int, default=1_000_000, help="characters of the text used")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--site", type=Path, default=REPO / "build" / "site", help="the built site (page engines)")
    ap.add_argument("--pyodide-dir", type=Path, default=DEFAULT_PYODIDE, help="Pyodide 0.27.7 (the offline mirror)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args(argv)
    exe = os.environ.get("TINYRNN_CHROMIUM", "/usr/bin/chromium")
    needs = [(Path(exe), "Chromium"), (args.data, "the text")]
    if "tinyrnn" in args.engines:
        needs.append((args.pyodide_dir / "pyodide.js", "Pyodide"))
    if any(e in PAGE_ENGINES for e in args.engines):
        needs.append((args.site / "index.html", "the built site (python -m sitebuild.build)"))
    for need, what in needs:
        if not need.exists():
            print(f"{what} not found at {need}", file=sys.stderr)
            return 2
    from playwright.sync_api import sync_playwright

    from bench.page_throughput import measure_page
    from bench.page_workers import isolated_server
    from bench.throughput import machine_info

    text = args.data.read_text(encoding="utf-8")[: args.chars]
    roots = {"peers": PEERS, "node_modules": install_peers()}
    if "tinyrnn" in args.engines:
        roots.update(pyodide=args.pyodide_dir, wheels=build_wheels(args.pyodide_dir))
    servers = {False: serve(roots, text), True: serve(roots, text, isolated=True)}
    site_server, site_url = isolated_server(args.site) if any(e in PAGE_ENGINES for e in args.engines) else (None, "")
    info = machine_info()
    info["chromium"] = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"{info['date_utc']}  {info['cpu']}  {info['chromium']}  load {info['loadavg_1_5_15']}", flush=True)
    cells = [(e, B) for B in sorted(set(args.batches) | set(args.page_batches)) for e in args.engines
             if B in (args.page_batches if e in PAGE_ENGINES else args.batches) and not (e == "brainjs" and B != 1)]
    results = []
    order = [cells[(i + r) % len(cells)] for r in range(args.rounds) for i in range(len(cells))]
    with sync_playwright() as pw:
        for engine, B in order:
            try:
                if engine in PAGE_ENGINES:
                    r = measure_page(pw, exe, site_url, text.encode("utf-8"), len(text), B, args.warm, args.secs,
                                     cell=PAGE_ENGINES[engine])
                    r["engine"] = f"the page, {PAGE_ENGINES[engine]} ({r.get('backend', '').replace(chr(10), '; ')})"
                else:
                    server = servers[engine in ISOLATED]
                    r = measure(pw, exe, f"http://127.0.0.1:{server.server_address[1]}", engine, B, args.warm,
                                args.secs)
            except Exception as exc:  # a peer that fails to start is reported, the others still run
                r = {"ok": False, "error": str(exc)}
            r.update(engine_id=engine, B=B, load=list(os.getloadavg()))
            results.append(r)
            print(f"  {engine:18s} B={B:<3d} " + (f"{r['chars_per_sec']:>10,.0f} chars/s  ({r['engine']})"
                  if r.get("ok") else f"FAILED: {r.get('error', '')[:300]}") + f"  load {r['load'][0]:.1f}",
                  flush=True)
    for server in (*servers.values(), *([site_server] if site_server else [])):
        server.shutdown()
    batches = sorted(set(args.batches) | set(args.page_batches))
    md, ratios = table(results, batches)
    load = list(os.getloadavg())
    print("\n" + md + "\n")
    print("\n".join(target_lines(ratios)))
    print(f"load average at start {info['loadavg_1_5_15']}, at end {load}")
    info["loadavg_end"] = load
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": info, "settings": {**{k: str(v) for k, v in vars(args).items()},
                                     "chromium_args": CHROMIUM_ARGS}, "results": results, "ratios": ratios,
                                     "table_md": md}, indent=1))
    print(f"wrote {args.json}")
    return 0 if all(r.get("ok") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
