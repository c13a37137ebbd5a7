#!/usr/bin/env python3
"""Serve the built static site on 127.0.0.1 (stdlib only; no network needed).

    python webapp/serve.py --site build/site --port 8000

The correct MIME types matter: browsers compile ``.wasm`` with streaming only when it is served as
``application/wasm``, and ``.mjs`` must be JavaScript. Responses carry ``Cache-Control: no-cache`` so a
rebuilt site is picked up on reload (the browser still revalidates and reuses unchanged files).
"""
from __future__ import annotations

import argparse
import functools
import http.server
import sys
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
}


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the page makes a few dozen requests
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **EXTRA_TYPES}

    def end_headers(self):
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format, *args):  # quiet unless asked
        if self.server.verbose:
            super().log_message(format, *args)


class SiteServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A browser that closes a connection early (reload, cancelled download) is normal: no traceback."""
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


def make_server(site: Path, host: str = "127.0.0.1", port: int = 8000, verbose: bool = False):
    """A ThreadingHTTPServer serving ``site``; port 0 picks a free port (see ``server.server_address``)."""
    handler = functools.partial(SiteHandler, directory=str(site))
    server = SiteServer((host, port), handler)
    server.daemon_threads = True
    server.verbose = verbose
    return server


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", type=Path, default=REPO / "build" / "site")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--verbose", action="store_true", help="log every request")
    args = ap.parse_args(argv)
    if not (args.site / "index.html").exists():
        print(f"no site at {args.site}: build it with  python webapp/build_site.py --mode self-contained "
              f"--out {args.site}", file=sys.stderr)
        return 2
    server = make_server(args.site.resolve(), args.host, args.port, args.verbose)
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
