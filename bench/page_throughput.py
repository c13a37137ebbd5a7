"""The page's own overhead (issue 12): the built site training in Chromium against the same engine in Pyodide
under Node.js, one run, interleaved.

    .venv/bin/python -m bench.page_throughput                      # B in {1, 16}, 3 rounds, 5 s warm-up + 20 s
    .venv/bin/python -m bench.page_throughput --batches 1 --rounds 5

(The project's ``.venv``, which has Playwright.) The page: ``build/site`` (``python -m sitebuild.build``) served by
``sitebuild.serve`` on 127.0.0.1 (not cross-origin isolated: one worker, as under Node) to Debian's Chromium (``$TINYRNN_CHROMIUM`` overrides), one cold browser per
measurement, every other host unresolvable. As a user would: upload the first ``--chars`` characters of
tinyshakespeare as a ``.txt`` file, choose tanh RNN, H=128, T=25, B, press Train; after ``--warm`` seconds count
the page's own "Chars seen" readout over at least ``--secs`` seconds of wall time (from one change of the readout to
the first change after the counted time: the page's chars/s, not its chars/s readout). Meanwhile the page's
``LoopClock`` (``tinyrnn_app.loop``, read from the page's worker) says where the loop's wall time went.

Node: ``Trainer.step()`` (``bench/harness.py``'s ``tinyrnn-trainer``: the app's path, validation pushed out of
range) in one Node.js process hosting Pyodide 0.27.7 with the site's own tinyrnn wheel (``bench/pyodide_bench.mjs``),
H=128, T=25, V=65, the same B, timed for ``--secs`` seconds in each round right beside the page's measurement
(the order alternates each round). The ratio is page chars/s / Node chars/s of each round, median over ``--rounds``
(the ratio of the medians beside it). Machine, date,
load and every round go to ``bench/results/page-throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import threading
import time
from pathlib import Path

from bench.harness import shared_data
from bench.pyodide_bench import BENCH, find_autograd_wheel, find_pyodide_dir
from bench.startup_browser import CHROMIUM_ARGS, machine_info
from bench.workers import REPO, Worker

DEFAULT_SITE = REPO / "build" / "site"
DEFAULT_DATA = shared_data()  # ../shared/data/tinyshakespeare.txt (never copied into the repository)
DEFAULT_JSON = REPO / "bench" / "results" / "page-throughput.json"
H, T, V = 128, 25, 65
READY_TIMEOUT_S = 240
# Python run in the page's worker between two ticks: the loop's clock (tinyrnn_app.loop.LoopClock) as JSON
CLOCK_JS = """() => self.pyodide.runPython(`
import json
from panel.io.state import state
json.dumps(state.cache["tinyrnn_session"].run.gatherer.clock.snapshot())
`)"""


def _count(text: str) -> int:
    m = re.search(r"([\d,]+)", text)
    if not m:
        raise ValueError(f"no number in {text!r}")
    return int(m.group(1).replace(",", ""))


def _set_number(page, selector: str, value) -> None:
    box = page.locator(f"{selector} input").first
    box.fill(str(value))
    box.dispatch_event("change")
    box.press("Enter")


def _app_worker(page):
    for w in page.workers:
        if w.url.split("?", 1)[0].endswith("/app.js"):
            return w
    raise RuntimeError(f"no app worker among {[w.url for w in page.workers]}")


def read_clock(worker) -> dict | None:
    """The page loop's ``LoopClock.snapshot()``, or None for a build without one (an older site, for comparison)."""
    try:
        return json.loads(worker.evaluate(CLOCK_JS))
    except Exception:  # noqa: BLE001 - no clock in that build
        return None


def clock_delta(before: dict, after: dict) -> dict:
    """The loop's phases between two ``LoopClock.snapshot()``s: seconds, counts, and the wall time between them."""
    return {"wall": after["now"] - before["now"],
            "seconds": {k: after["seconds"][k] - before["seconds"].get(k, 0.0) for k in after["seconds"]},
            "counts": {k: after["counts"][k] - before["counts"].get(k, 0) for k in after["counts"]}}


def start_training(browser, url: str, text: bytes, n_chars: int, B: int, cell: str = "rnn", settings=None):
    """In a new context of ``browser``: open the page, upload the text, set the model (``cell``, H, T, B and any
    other ``settings`` {selector: value}), press Train and wait for the first characters; (page, page errors)."""
    context = browser.new_context(service_workers="block", viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url, wait_until="domcontentloaded")
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not page.locator(".tr-status pre").first.inner_text().startswith("Ready"):
        if time.monotonic() > deadline:
            raise TimeoutError("the page did not become ready")
        page.wait_for_timeout(250)
    page.locator(".tr-tabs .bk-tab", has_text="Text and settings").first.click()  # the text and the settings
    page.locator(".tr-upload-text input[type=file]").first.set_input_files(
        files=[{"name": "tinyshakespeare.txt", "mimeType": "text/plain", "buffer": text}])
    page.locator(".tr-text-info pre").filter(has_text=f"{n_chars:,} characters").first.wait_for(timeout=60_000)
    page.locator(".tr-cell select").first.select_option(cell)
    for selector, value in {".tr-hidden-size": H, ".tr-seq-len": T, ".tr-batch-size": B, **(settings or {})}.items():
        _set_number(page, selector, value)
    page.wait_for_timeout(500)  # the form's values reach Python
    page.locator(".tr-train button").first.click()
    chars = page.locator(".tr-chars .tr-kv").first
    deadline = time.monotonic() + 60
    while _count(chars.inner_text()) == 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"training did not start: {page.locator('.tr-status pre').first.inner_text()}")
        page.wait_for_timeout(100)
    return page, errors


def measure_page(pw, exe: str, url: str, text: bytes, n_chars: int, B: int, warm: float, secs: float,
                 cell: str = "rnn") -> dict:
    """One cold browser: upload the text, set the model (``cell``, H, T, B), train, count the page's chars over
    ``secs`` seconds; the record says what the page's backend readout said (the engine and its workers)."""
    browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
    try:
        page, errors = start_training(browser, url, text, n_chars, B, cell)
        chars = page.locator(".tr-chars .tr-kv").first
        page.wait_for_timeout(warm * 1000)
        worker = _app_worker(page)

        def next_change(after: int) -> tuple[float, int]:
            while True:
                n = _count(chars.inner_text())
                if n != after:
                    return time.monotonic(), n
                page.wait_for_timeout(20)

        _, c = next_change(-1)
        t0, c0 = next_change(c)
        clock0 = read_clock(worker)
        page.wait_for_timeout(secs * 1000)
        clock1 = read_clock(worker)
        t1, c1 = next_change(_count(chars.inner_text()))
        status = page.locator(".tr-status pre").first.inner_text()
        backend = page.locator(".tr-backend pre").first.inner_text()
        page.locator(".tr-pause button").first.click()
        config = f"({cell}, H={H})" in status
        return {"ok": config, "B": B, "cell": cell, "chars_per_sec": (c1 - c0) / (t1 - t0), "chars": c1 - c0,
                "seconds": t1 - t0, "status": status, "backend": backend,
                "clock": clock_delta(clock0, clock1) if clock0 and clock1 else None,
                "page_errors": errors,
                **({} if config else {"error": f"the page did not train the model asked for: {status}"})}
    finally:
        browser.close()


def measure_node(node: Worker, index: int, B: int, secs: float) -> dict:
    """``Trainer.step()`` in Pyodide under Node for at least ``secs`` seconds (calls of ``n`` calibrated steps)."""
    n = node.ready["cells"][index]["n"]
    steps, seconds = 0, 0.0
    while seconds < secs:
        r = node.call(f"run {index}", 600)
        if r is None:
            return {"ok": False, "B": B, "error": node.error}
        steps, seconds = steps + n, seconds + r["dt"]
    return {"ok": True, "B": B, "chars_per_sec": steps * B * T / seconds, "steps": steps, "seconds": seconds}


PHASE_NAMES = {"step": "trainer.step (no validation)", "validating_step": "trainer.step with validation",
               "flush": "readouts + loss chart (flush)", "flow": "gradient flow", "sample": "live sample",
               "views": "memory readout", "keep": "keep (IndexedDB record)",
               "tick_other": "rest of the tick (document changes sent, bookkeeping)",
               "gap": "gap between ticks (event loop)"}


def breakdown(rounds: list[dict]) -> dict:
    """The phases' share of the loop's wall time over all rounds of one B, and the validating steps' extra cost."""
    wall = sum(r["clock"]["wall"] for r in rounds)
    sec = {k: sum(r["clock"]["seconds"][k] for r in rounds) for k in rounds[0]["clock"]["seconds"]}
    cnt = {k: sum(r["clock"]["counts"][k] for r in rounds) for k in rounds[0]["clock"]["counts"]}
    share = {k: v / wall for k, v in sec.items()}
    share["unaccounted"] = 1 - sum(share.values())
    plain = sec["step"] / cnt["step"] if cnt["step"] else 0.0
    extra = (sec["validating_step"] - cnt["validating_step"] * plain) / wall
    return {"share": share, "counts": cnt, "wall": wall, "ms_per_plain_step": 1000 * plain,
            "validation_share": extra, "ticks": cnt["tick_other"]}


def _k(x):
    return "—" if x is None else f"{x / 1000:,.1f}k"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warm", type=float, default=5.0, help="seconds of training before counting")
    ap.add_argument("--secs", type=float, default=20.0, help="seconds counted (steady state), page and Node")
    ap.add_argument("--chars", type=int, default=1_000_000, help="characters of the text used")
    ap.add_argument("--query", default="", help="appended to the page's URL (served without isolation: one worker whatever it asks)")
    ap.add_argument("--site", type=Path, default=DEFAULT_SITE)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--pyodide-dir", type=Path, default=None, help="Pyodide 0.27.7 for Node (the offline mirror)")
    ap.add_argument("--node", default="node")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args(argv)
    exe = os.environ.get("TINYRNN_CHROMIUM", "/usr/bin/chromium")
    wheels = sorted((args.site / "wheels").glob("tinyrnn-*.whl"))
    for ok, what in ((Path(exe).exists(), f"Chromium at {exe}"), (args.data.exists(), f"the text at {args.data}"),
                     (bool(wheels), f"the built site at {args.site} (python -m sitebuild.build)")):
        if not ok:
            print(f"not found: {what}", file=sys.stderr)
            return 2
    from playwright.sync_api import sync_playwright

    from sitebuild import serve

    text = args.data.read_text(encoding="utf-8")[: args.chars]
    pyodide_dir = find_pyodide_dir(args.pyodide_dir)
    specs = [{"impl": "tinyrnn-trainer", "H": H, "B": B, "T": T, "V": V, "min_time": 1.0, "warmup": 3}
             for B in args.batches]
    node = Worker("node", {"impl": "pyodide"}, cmd=[
        args.node, str(BENCH / "pyodide_bench.mjs"), "--index", str(pyodide_dir), "--bench-dir", str(BENCH),
        "--wheel", str(find_autograd_wheel(pyodide_dir)), "--wheel", str(wheels[-1]), "--specs", json.dumps(specs)])
    server = serve.make_server(args.site.resolve(), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{args.query}"
    info = machine_info(exe)
    print(f"{info['date_utc']}  {info['cpu']}  {info['chromium']}  load {info['loadavg_start']}\n"
          f"page {url} (wheel {wheels[-1].name}); Node: Pyodide {pyodide_dir}", flush=True)
    node.ready = node.call(None, 600)
    if node.ready is None:
        print(f"the Node.js worker failed: {node.error}", file=sys.stderr)
        return 1
    print(f"Node {node.ready.get('node')}: tinyrnn's products in Pyodide: {node.ready.get('tinyrnn_backend')}",
          flush=True)
    results = []
    with sync_playwright() as pw:
        for rnd in range(args.rounds):
            for i, B in enumerate(args.batches):
                for side in (("page", "node") if (rnd + i) % 2 == 0 else ("node", "page")):
                    try:
                        r = (measure_page(pw, exe, url, text.encode("utf-8"), len(text), B, args.warm, args.secs)
                             if side == "page" else measure_node(node, i, B, args.secs))
                    except Exception as exc:  # noqa: BLE001 - a failed measurement is reported, the others run
                        r = {"ok": False, "B": B, "error": f"{type(exc).__name__}: {exc}"}
                    r.update(side=side, round=rnd, load=list(os.getloadavg()))
                    results.append(r)
                    print(f"  round {rnd + 1} B={B:<3d} {side:4s} " + (f"{r['chars_per_sec']:>9,.0f} chars/s"
                          if r.get("ok") else f"FAILED: {r.get('error', '')[:300]}")
                          + f"  (load {r['load'][0]:.1f})", flush=True)
    node.call("finish", 60)
    node.kill()
    server.shutdown()
    server.server_close()
    load_end = list(os.getloadavg())
    lines = ["| B | page chars/s | Node chars/s | page / Node (median of rounds) | ratio of medians | per round |",
             "|---|---|---|---|---|---|"]
    summary = {}
    for B in args.batches:
        page = [r for r in results if r["B"] == B and r["side"] == "page" and r.get("ok")]
        nodes = [r for r in results if r["B"] == B and r["side"] == "node" and r.get("ok")]
        p = statistics.median(r["chars_per_sec"] for r in page) if page else None
        n = statistics.median(r["chars_per_sec"] for r in nodes) if nodes else None
        per_round = [pr["chars_per_sec"] / nr["chars_per_sec"] for pr in page for nr in nodes
                     if pr["round"] == nr["round"]]
        ratio = statistics.median(per_round) if per_round else None  # each round's pair was measured side by side
        summary[B] = {"page": p, "node": n, "ratio": ratio, "ratio_of_medians": p / n if p and n else None,
                      "round_ratios": per_round,
                      "breakdown": breakdown(page) if page and all(r["clock"] for r in page) else None}
        lines.append(f"| {B} | {_k(p)} | {_k(n)} | " + (f"{ratio:.2f}×" if ratio else "—") + " | "
                     + (f"{p / n:.2f}×" if p and n else "—") + " | " + ", ".join(f"{x:.2f}" for x in per_round) + " |")
    md = "\n".join(lines)
    print("\n" + md)
    for B, s in summary.items():
        b = s["breakdown"]
        if not b:
            continue
        print(f"\nB={B}: where the page's loop time went ({b['wall']:.0f} s over {args.rounds}"
              f" rounds, {b['ticks']} ticks, {b['ms_per_plain_step']:.2f} ms per step without validation)")
        for k, v in b["share"].items():
            print(f"  {PHASE_NAMES.get(k, k):55s} {100 * v:5.1f} %")
        print(f"  {'(of which validation itself)':55s} {100 * b['validation_share']:5.1f} %")
    print(f"\nload average at start {info['loadavg_start']}, at end {load_end}")
    info["loadavg_end"] = load_end
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": info, "settings": {k: str(v) for k, v in vars(args).items()},
                                     "node": node.ready, "results": results, "summary": summary, "table_md": md},
                                    indent=1))
    print(f"wrote {args.json}")
    return 0 if all(r.get("ok") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
