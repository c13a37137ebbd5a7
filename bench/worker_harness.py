"""A page that runs a Python script in Pyodide in a Web Worker, as the app does, with a built site's own Pyodide and
wheels, optionally cross-origin isolated (COOP/COEP sent by this server, where the shipped site gets them from its
service worker). Used by tests/browser/test_shards.py and bench/browser_workers.py.

    with harness_server(site_dir, scripts={"name": "python source"}, isolate=True) as base:
        result = run_script(browser, base, "name")
        # {"ok": <the script's last expression, JSON>, "isolated": bool, "pageStarted": helpers the page started}
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from pathlib import Path

HARNESS = Path(__file__).resolve().parent / "worker_harness"
PAGE_HELPERS = Path(__file__).resolve().parent.parent / "sitebuild" / "js" / "helpers.js"  # the site's page's own


class HarnessHandler(http.server.SimpleHTTPRequestHandler):
    """The harness, the site's pyodide/ and wheels/, the site's page's /helpers.js, /wheels.json, /scripts/NAME and
    /text.txt; COOP/COEP if ``isolate``."""

    site: Path
    scripts: dict
    isolate: bool

    def log_message(self, *args):
        pass

    def end_headers(self):
        if self.isolate:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def _send(self, body: bytes, kind: str):
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/wheels.json":
            wheels = sorted(p.name for p in (self.site / "wheels").glob("tinyrnn-*.whl"))
            autograd = sorted(p.name for p in (self.site / "pyodide").glob("autograd-*.whl"))
            return self._send(json.dumps([f"/wheels/{w}" for w in wheels] + [f"/pyodide/{a}" for a in autograd])
                              .encode(), "application/json")
        if path == "/text.txt" and getattr(self, "text", None) is not None:
            return self._send(self.text.encode("utf-8"), "text/plain; charset=utf-8")
        if path.startswith("/scripts/"):
            return self._send(self.scripts[path[len("/scripts/"):]].encode(), "text/x-python")
        return super().do_GET()

    def translate_path(self, path):
        path = path.split("?")[0]
        if path == "/helpers.js":
            return str(PAGE_HELPERS)
        for prefix in ("/pyodide/", "/wheels/"):
            if path.startswith(prefix):
                return str(self.site / path.lstrip("/"))
        return str(HARNESS / path.lstrip("/"))


HarnessHandler.extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                                 ".wasm": "application/wasm", ".js": "text/javascript", ".mjs": "text/javascript"}


@contextlib.contextmanager
def harness_server(site_dir: Path, scripts: dict, isolate: bool, text: str | None = None):
    """Serves the harness on a free port of 127.0.0.1 (and ``text`` at /text.txt); yields its base URL."""
    handler = type("Handler", (HarnessHandler,), {"site": Path(site_dir), "scripts": scripts, "isolate": isolate,
                                                  "text": text})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def run_script(browser, base: str, script: str, timeout_s: float = 240, helpers: str = "worker") -> dict:
    """Opens the harness on ``script`` in a new context of the Playwright ``browser``; the worker's answer.
    ``helpers``: who starts the helper workers, the Pyodide ``"worker"`` itself or the ``"page"`` (as the site's)."""
    context = browser.new_context()
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{base}index.html?script={script}&helpers={helpers}")
        page.wait_for_function("window.result !== undefined", timeout=timeout_s * 1000)
        result = page.evaluate("window.result")
    finally:
        context.close()
    if "error" in result:
        raise RuntimeError(f"the script failed in the worker: {result['error'][-3000:]}")
    if errors:
        raise RuntimeError(f"errors in the harness page: {errors}")
    return result
