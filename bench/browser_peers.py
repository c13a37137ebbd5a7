"""In-browser peers: tinyrnn (Pyodide in Chromium, Trainer.step) against TensorFlow.js 4.22 and brain.js, one run.

    .venv/bin/python -m bench.browser_peers                 # every engine, B in {1, 16}, 5 s warm-up + 20 s counted
    .venv/bin/python -m bench.browser_peers --engines tinyrnn tfjs-wasm --batches 16 --secs 10

(The project's ``.venv``, which has Playwright.) The peers are installed from the npm registry by this script
(``bench/browser_peers/package.json`` -> ``.cache/browser-peers/node_modules``, git-ignored; never committed), a
tinyrnn wheel is built from this tree, and everything is served by a small server on 127.0.0.1 to Debian's
Chromium (``$TINYRNN_CHROMIUM`` overrides), one cold browser per measurement, every other host unresolvable.
The same task for every engine (``bench/browser_peers/peers.js``): the first 1 M characters of tinyshakespeare,
tanh RNN H=128, T=25, B streams, Adam 2e-3 where the engine has it; chars/s over the counted seconds after the
warm-up; with ``--rounds N`` every engine runs N times, the order rotated each round, and the median counts.
Results with machine, date and load go to ``bench/results/browser-peers.json``.
"""

from __future__ import annotations

import argparse
import functools
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

REPO = Path(__file__).resolve().parent.parent
PEERS = REPO / "bench" / "browser_peers"
CACHE = REPO / ".cache" / "browser-peers"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"
if not DEFAULT_DATA.exists():
    DEFAULT_DATA = Path("/work/shared/data/tinyshakespeare.txt")
DEFAULT_PYODIDE = REPO / ".cache" / "mirror" / "selfcontained" / "pyodide"  # make mirror
DEFAULT_JSON = REPO / "bench" / "results" / "browser-peers.json"
ENGINES = ("tinyrnn", "tfjs-wasm", "tfjs-cpu", "brainjs")
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

    def log_message(self, *args):  # quiet
        pass

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


def serve(roots: dict, text: str):
    handler = type("PeersHandler", (Handler,), {"roots": roots, "text": text.encode("utf-8")})
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
    """Markdown: engine x B median chars/s over the rounds (range when there are several), and tinyrnn's ratio
    of medians to the best peer at each B."""
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
        peers = {e: v for (e, b), v in rate.items() if b == B and e != "tinyrnn" and v}
        if rate.get(("tinyrnn", B)) and peers:
            best = max(peers, key=peers.get)
            ratios[B] = {"best_peer": best, "ratio": rate[("tinyrnn", B)] / peers[best]}
    return "\n".join(lines), ratios


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    ap.add_argument("--warm", type=float, default=5.0, help="seconds of training before counting")
    ap.add_argument("--secs", type=float, default=20.0, help="seconds counted (steady state)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds over every engine, the order rotated each round")
    ap.add_argument("--chars", type=int, default=1_000_000, help="characters of the text used")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--pyodide-dir", type=Path, default=DEFAULT_PYODIDE, help="Pyodide 0.27.7 (the offline mirror)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args(argv)
    exe = os.environ.get("TINYRNN_CHROMIUM", "/usr/bin/chromium")
    for need, what in ((Path(exe), "Chromium"), (args.data, "the text"), (args.pyodide_dir / "pyodide.js", "Pyodide")):
        if not need.exists():
            print(f"{what} not found at {need}", file=sys.stderr)
            return 2
    from playwright.sync_api import sync_playwright

    from bench.throughput import machine_info

    text = args.data.read_text(encoding="utf-8")[: args.chars]
    node_modules = install_peers()
    wheels = build_wheels(args.pyodide_dir)
    server = serve({"peers": PEERS, "node_modules": node_modules, "pyodide": args.pyodide_dir, "wheels": wheels}, text)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    info = machine_info()
    info["chromium"] = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"{info['date_utc']}  {info['cpu']}  {info['chromium']}  load {info['loadavg_1_5_15']}", flush=True)
    cells = [(e, B) for B in args.batches for e in args.engines if not (e == "brainjs" and B != 1)]
    results = []
    order = [cells[(i + r) % len(cells)] for r in range(args.rounds) for i in range(len(cells))]
    with sync_playwright() as pw:
        for engine, B in order:
            try:
                r = measure(pw, exe, base, engine, B, args.warm, args.secs)
            except Exception as exc:  # a peer that fails to start is reported, the others still run
                r = {"ok": False, "engine_id": engine, "B": B, "error": str(exc)}
            r.setdefault("B", B)
            results.append(r)
            print(f"  {engine:10s} B={B:<3d} " + (f"{r['chars_per_sec']:>10,.0f} chars/s  ({r['engine']})"
                  if r.get("ok") else f"FAILED: {r.get('error', '')[:300]}"), flush=True)
    server.shutdown()
    md, ratios = table(results, args.batches)
    load = list(os.getloadavg())
    print("\n" + md)
    for B, r in ratios.items():
        print(f"B={B}: tinyrnn / best peer ({r['best_peer']}) = {r['ratio']:.2f}×")
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
