#!/usr/bin/env python3
"""Serve the built static site on 127.0.0.1 (stdlib only; no network needed).

    python -m sitebuild.serve --site build/site --port 8000

The correct MIME types matter: browsers compile ``.wasm`` with streaming only when it is served as
``application/wasm``, and ``.mjs`` must be JavaScript.

Caching: every file is sent with ``Last-Modified``, a strong ``ETag`` (size and modification time) and
``Cache-Control: no-cache``, so a browser keeps each file and revalidates it on the next visit: an unchanged file
costs a ``304 Not Modified`` and no bytes, a rebuilt one is fetched again. Chromium keeps its compiled code for
``pyodide.asm.wasm`` with the cached response, so a warm visit neither downloads nor recompiles it.
``--max-age 600`` sends ``Cache-Control: max-age=600`` instead, as GitHub Pages does (no revalidation for ten
minutes, but a rebuilt file may then be served stale from the cache: a wheel whose sha256 no longer matches the
site's lock fails to load).

Compression: like GitHub Pages, text responses (HTML, JavaScript, CSS, JSON, SVG, the manifest) and WebAssembly are
sent gzip-compressed to a browser that accepts it (``Content-Encoding: gzip``, ``Vary: Accept-Encoding``, an ETag of
their own); wheels and zip files are already compressed and go as they are. ``--no-gzip`` turns it off. (Whether
GitHub Pages compresses ``application/wasm`` too was not verified from here.)
"""
from __future__ import annotations

import argparse
import functools
import gzip
import http.server
import io
import os
import threading
import sys
from http import HTTPStatus
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

EXTRA_TYPES = {
    ".wasm": "application/wasm",
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".whl": "application/zip",
    ".zip": "application/zip",
    ".json": "application/json",
    ".map": "application/json",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".svg": "image/svg+xml",
    ".webmanifest": "application/manifest+json",
}
COMPRESSIBLE = {".html", ".js", ".mjs", ".css", ".json", ".map", ".svg", ".webmanifest", ".txt", ".wasm"}


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the page makes a few dozen requests
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **EXTRA_TYPES}

    etag = None

    def send_head(self):
        """As SimpleHTTPRequestHandler, plus a strong ETag and ``If-None-Match`` (answered with 304)."""
        path = self.translate_path(self.path)
        if os.path.isdir(path) and self.path.split("?", 1)[0].endswith("/"):
            path = os.path.join(path, "index.html")
        self.etag = None
        if not os.path.isfile(path):
            return super().send_head()
        st = os.stat(path)
        compress = (self.server.gzip and os.path.splitext(path)[1] in COMPRESSIBLE
                    and "gzip" in self.headers.get("Accept-Encoding", ""))
        self.etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}{"-gzip" if compress else ""}"'
        wanted = self.headers.get("If-None-Match")
        if wanted is not None:
            tags = [t.strip().removeprefix("W/") for t in wanted.split(",")]
            if "*" in tags or self.etag in tags:
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.end_headers()
                return None
        if not compress:
            return super().send_head()
        data = self.server.gzipped(path, st)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Last-Modified", self.date_time_string(int(st.st_mtime)))
        self.end_headers()
        return io.BytesIO(data)

    def end_headers(self):
        self.send_header("Cache-Control", self.server.cache_control)
        if self.etag:
            self.send_header("ETag", self.etag)
        if self.server.gzip:
            self.send_header("Vary", "Accept-Encoding")
        super().end_headers()

    def log_message(self, format, *args):  # quiet unless asked
        if self.server.verbose:
            super().log_message(format, *args)


class SiteServer(http.server.ThreadingHTTPServer):
    gzip = False
    _gzipped: dict
    _gzip_lock: threading.Lock

    def gzipped(self, path: str, st: os.stat_result) -> bytes:
        """The file's gzip bytes, compressed once per version of the file."""
        key = (path, st.st_size, st.st_mtime_ns)
        with self._gzip_lock:
            if key not in self._gzipped:
                with open(path, "rb") as f:
                    self._gzipped[key] = gzip.compress(f.read(), compresslevel=6, mtime=0)
            return self._gzipped[key]

    def handle_error(self, request, client_address):
        """A browser that closes a connection early (reload, cancelled download) is normal: no traceback."""
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


def make_server(site: Path, host: str = "127.0.0.1", port: int = 8000, verbose: bool = False,
                max_age: int | None = None, compress: bool = True):
    """A ThreadingHTTPServer serving ``site``; port 0 picks a free port (see ``server.server_address``).
    ``max_age``: send ``Cache-Control: max-age=N`` (as GitHub Pages does with 600) instead of ``no-cache``;
    ``compress``: gzip what GitHub Pages would (see the module docstring)."""
    handler = functools.partial(SiteHandler, directory=str(site))
    server = SiteServer((host, port), handler)
    server.daemon_threads = True
    server.verbose = verbose
    server.gzip, server._gzipped, server._gzip_lock = compress, {}, threading.Lock()
    server.cache_control = "no-cache" if max_age is None else f"max-age={int(max_age)}"
    return server


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", type=Path, default=REPO / "build" / "site")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--verbose", action="store_true", help="log every request")
    ap.add_argument("--max-age", type=int, default=None, metavar="SECONDS",
                    help="Cache-Control: max-age=SECONDS (GitHub Pages sends 600) instead of no-cache")
    ap.add_argument("--no-gzip", action="store_true", help="send every file uncompressed")
    args = ap.parse_args(argv)
    if not (args.site / "index.html").exists():
        print(f"no site at {args.site}: build it with  python -m sitebuild.build --out {args.site}", file=sys.stderr)
        return 2
    server = make_server(args.site.resolve(), args.host, args.port, args.verbose, args.max_age, not args.no_gzip)
    host, port = server.server_address[:2]
    print(f"Serving {args.site} at http://{host}:{port}/  (Ctrl+C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
