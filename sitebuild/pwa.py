"""The site as an installable, offline-capable web app: a manifest, an icon, and a service worker that precaches
every file the page loads after the first visit and serves them from the cache first (docs/deploy.md, "Offline").

The list of files (``precache_list``) is made at build time from what the site is: the page, the worker, our
wheels, the whole Pyodide folder (core and the packages of the site's lock) and the ``static/`` files the page names,
with the files their stylesheets name; each with its sha256, which the service worker checks. A rebuild changes the
list, so the service worker's script changes, so browsers install the new version and cache the new files.
"""
from __future__ import annotations

import hashlib
import json
import re
import struct
import zlib
from pathlib import Path, PurePosixPath

from sitebuild.common import sha256

JS = Path(__file__).resolve().parent / "js"
NAME = "tinyrnn: train a character-level RNN in your browser"
SHORT_NAME = "tinyrnn"
THEME = (0x1F, 0x6F, 0xEB)  # the page header's blue
ICON_SIZES = (192, 512)
STATIC_REF = re.compile(r"""\./(static/[^"'?#)\s&\\]+)""")
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")?#]+)""")


def icon_png(size: int) -> bytes:
    """A square PNG: three white nodes on the theme's blue, joined left to right under an arc (a recurrent network,
    unrolled)."""
    r_node, cy = size * 0.085, size * 0.56
    nodes = [size * 0.25, size * 0.5, size * 0.75]
    line = size * 0.03
    rows = []
    for y in range(size):
        row = bytearray([0])  # PNG filter type 0
        for x in range(size):
            white = (abs(y - cy) < line / 2 and nodes[0] <= x <= nodes[-1]) or any(
                (x - nx) ** 2 + (y - cy) ** 2 <= r_node ** 2 for nx in nodes)
            ring = abs(((x - nodes[1]) ** 2 + (y - (cy - size * 0.13)) ** 2) ** 0.5 - size * 0.2) < line / 2
            white = white or (ring and y < cy - r_node)
            row += bytes((255, 255, 255) if white else THEME)
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
            + chunk(b"IEND", b""))


def manifest() -> str:
    """The web app manifest (manifest.webmanifest)."""
    return json.dumps({
        "name": NAME, "short_name": SHORT_NAME, "start_url": "./", "scope": "./", "display": "standalone",
        "background_color": "#ffffff", "theme_color": "#%02x%02x%02x" % THEME,
        "description": "Train a small character-level RNN on your own text, entirely in the browser, offline.",
        "icons": [{"src": f"icon-{n}.png", "sizes": f"{n}x{n}", "type": "image/png", "purpose": "any"}
                  for n in ICON_SIZES],
    }, indent=1) + "\n"


def head_links() -> str:
    """What the page's <head> gets: the manifest, the icon, the theme colour."""
    return ('\n    <link rel="manifest" href="./manifest.webmanifest">'
            f'\n    <link rel="icon" type="image/png" sizes="192x192" href="./icon-{ICON_SIZES[0]}.png">'
            '\n    <meta name="theme-color" content="#%02x%02x%02x">\n' % THEME)


def _static_files(site: Path, text: str) -> set[str]:
    """The static/ files ``text`` names, and, for stylesheets, the files they name (recursively); site-relative."""
    todo = set(STATIC_REF.findall(text))
    found = set()
    while todo:
        rel = todo.pop()
        if rel in found or not (site / rel).is_file():
            continue
        found.add(rel)
        if rel.endswith(".css"):
            base = PurePosixPath(rel).parent
            for ref in CSS_URL.findall((site / rel).read_text(errors="replace")):
                if not ref.startswith(("data:", "http:", "https:", "/")):
                    todo.add(_normalize(base / ref))
    return found


def _normalize(path: PurePosixPath) -> str:
    parts = []
    for p in path.parts:
        if p == "..":
            parts.pop()
        elif p != ".":
            parts.append(p)
    return "/".join(parts)


def precache_list(site: Path, page: str, worker: str) -> list[list[str]]:
    """[[site-relative path, sha256], ...] of every file the page loads; ``"./"`` is the page itself."""
    files = {"index.html", "app.js", "manifest.webmanifest", *(f"icon-{n}.png" for n in ICON_SIZES)}
    files |= {p.relative_to(site).as_posix() for folder in ("wheels", "pyodide") for p in (site / folder).rglob("*")
              if p.is_file()}
    files |= _static_files(site, page + worker)
    missing = sorted(f for f in files if not (site / f).is_file())
    if missing:
        raise SystemExit(f"sitebuild: the offline list names files the site lacks: {missing}")
    entries = [[f, sha256(site / f)] for f in sorted(files)]
    return [["./", sha256(site / "index.html")], *entries]


def service_worker(entries: list[list[str]]) -> str:
    """sw.js: js/sw.js with this build's file list and version (a digest of the list)."""
    listing = json.dumps(entries, separators=(",", ":"))
    version = hashlib.sha256(listing.encode()).hexdigest()[:16]
    return ((JS / "sw.js").read_text().replace('"__TINYRNN_VERSION__"', json.dumps(version))
            .replace("[/* __TINYRNN_FILES__ */]", listing))
