"""Fixtures for the real-browser tests: the built self-contained site, a local server, Debian's Chromium (and, for
tests/browser/test_every_browser.py, each of the three engines of tests/browser/engines.py).

The page may reach nothing but the local server and the offline mirror: every request to another origin is
answered from ``.cache/mirror/<host>/<path>`` or aborted and recorded, and the test fails on any such request.

Environment:
  TINYRNN_SITE      the built site (default: build/site; built if missing)
  TINYRNN_MIRROR    the mirror made by python -m sitebuild.mirror (default: .cache/mirror; assembled if missing)
  TINYRNN_CHROMIUM  the browser executable (default: /usr/bin/chromium); TINYRNN_FIREFOX, TINYRNN_WEBKIT_DRIVER
"""
from __future__ import annotations

import json
import mimetypes
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from engines import CHROMIUM_ARGS  # one home for how Debian's Chromium is started

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "browser"

MIME = {".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
        ".whl": "application/zip", ".zip": "application/zip", ".json": "application/json", ".css": "text/css"}


def _site_dir() -> Path:
    return Path(os.environ.get("TINYRNN_SITE", REPO / "build" / "site")).resolve()


def _mirror_dir() -> Path:
    return Path(os.environ.get("TINYRNN_MIRROR", REPO / ".cache" / "mirror")).resolve()


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    d = _mirror_dir()
    if not (d / "selfcontained" / "pyodide" / "pyodide-lock.json").exists():
        subprocess.run([sys.executable, "-m", "sitebuild.mirror", "--dest", str(d)], check=True, cwd=REPO)
    return d


@pytest.fixture(scope="session")
def site_dir(mirror_dir) -> Path:
    site = _site_dir()
    if not (site / "index.html").exists():
        subprocess.run([sys.executable, "-m", "sitebuild.build", "--out", str(site), "--mirror", str(mirror_dir)],
                       check=True, cwd=REPO)
    info = json.loads((site / "BUILD-INFO.json").read_text())
    if info.get("mode") != "self-contained":
        pytest.fail(f"{site} is a {info.get('mode')!r} build (made before there was one site): rebuild it with "
                    "python -m sitebuild.build")
    return site


@pytest.fixture(scope="session")
def site_url(site_dir):
    from sitebuild import serve

    server = serve.make_server(site_dir, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    exe = os.environ.get("TINYRNN_CHROMIUM", "/usr/bin/chromium")
    if not Path(exe).exists():
        pytest.fail(f"Chromium not found at {exe}: run scripts/install_browser_deps.sh (apt-get install chromium)")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # this run's screenshots only
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@dataclass
class NetLog:
    """What the page asked for beyond the local site."""

    mirrored: list[str] = field(default_factory=list)
    unmirrored: list[str] = field(default_factory=list)
    local_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


def mirror_path(mirror: Path, url: str) -> Path | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    path = unquote(parts.path)
    if path.endswith("/"):
        path += "index.html"
    candidate = (mirror / parts.hostname / path.lstrip("/")).resolve()
    if mirror.resolve() not in candidate.parents or not candidate.is_file():
        return None
    return candidate


def _routed_page(browser, site_url, mirror_dir, request, service_workers: str):
    """A fresh context (own cache) with the offline-mirror router; yields its page, then saves a screenshot and the
    network log."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    downloads = Path(tempfile.mkdtemp(prefix="tinyrnn-dl-"))
    context = browser.new_context(service_workers=service_workers, accept_downloads=True,
                                  viewport={"width": 1280, "height": 1000})
    net = NetLog()

    def is_foreign(url: str) -> bool:
        return not url.startswith(site_url) and not url.startswith(("data:", "blob:"))

    def handle(route):
        url = route.request.url
        f = mirror_path(mirror_dir, url)
        if f is None:
            net.unmirrored.append(url)
            route.abort("internetdisconnected")
            return
        net.mirrored.append(url)
        ctype = MIME.get(f.suffix) or mimetypes.guess_type(f.name)[0] or "application/octet-stream"
        route.fulfill(status=200, body=f.read_bytes(), headers={"Content-Type": ctype,
                                                                "Access-Control-Allow-Origin": "*"})

    context.route(is_foreign, handle)
    page = context.new_page()
    page.on("response", lambda r: net.local_errors.append(f"{r.status} {r.url}")
            if r.url.startswith(site_url) and r.status >= 400 else None)
    page.on("console", lambda m: net.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: net.page_errors.append(str(e)))

    def on_dialog(dialog):
        net.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.net = net
    page.site_url = site_url
    page.downloads = downloads
    yield page
    try:
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-final.png"), full_page=True)
    except Exception:  # noqa: BLE001 - a screenshot must not hide the test's own result
        pass
    (ARTIFACTS / f"{request.node.name}-network.json").write_text(json.dumps(net.__dict__, indent=1))
    context.close()
    shutil.rmtree(downloads, ignore_errors=True)


@pytest.fixture
def app_page(browser, site_url, mirror_dir, request):
    """A fresh context (own cache, service workers blocked) with the offline-mirror router."""
    yield from _routed_page(browser, site_url, mirror_dir, request, service_workers="block")


@pytest.fixture
def sw_page(browser, site_url, mirror_dir, request):
    """As ``app_page``, with service workers allowed (the offline tests); ``page.context.set_offline`` cuts the
    network."""
    yield from _routed_page(browser, site_url, mirror_dir, request, service_workers="allow")


@pytest.fixture(scope="session", params=["chromium", "firefox", "webkit"])
def engine(request):
    """One of the three engines (tests/browser/engines.py), started once for the session."""
    from engines import Engine

    # Chromium shares the session's Playwright browser (the `browser` fixture): one sync Playwright per thread
    started = Engine(request.param, request.getfixturevalue("browser") if request.param == "chromium" else None)
    yield started
    started.stop()


@pytest.fixture
def serve_site(site_dir):
    """Starts a server of the built site on an ephemeral port (as ``make run`` serves it); returns (url, stop).
    ``stop()`` takes the site off the network: what a visitor without a connection sees."""
    from sitebuild import serve

    servers = []

    def start():
        server = serve.make_server(site_dir, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, name="site-server", daemon=True).start()
        servers.append(server)
        host, port = server.server_address[:2]

        def stop():
            if server in servers:
                servers.remove(server)
                server.shutdown()
                server.server_close()

        return f"http://{host}:{port}/", stop

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
