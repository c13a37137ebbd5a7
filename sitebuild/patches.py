"""Fixes applied to what ``panel convert --to pyodide-worker`` writes (the page and its worker script).

* **Everything from the site's own origin.** Pyodide 0.27.7 from ``./pyodide/`` (Panel 1.9.4's converter emits
  jsDelivr URLs for Pyodide v0.29.3, but the only Pyodide whose wasm packages we can assemble from registries is
  0.27.7, sitebuild/mirror.py); Bokeh's and Panel's JS/CSS from ``./static/``, in the page and in what the worker
  posts (js/localize.js); no micropip and no PyPI: one ``pyodide.loadPackage`` call installs every package (all are
  in the site's lock).
* **jsnull shim** (js/jsnull_shim.js). Panel 1.9.4 compares values with ``pyodide.ffi.jsnull``, which Pyodide 0.27
  lacks (JS null already converts to None there); without it every browser-to-Python update raises AttributeError.
* **Our wheels by relative URL** (``./wheels/...``), resolved against the worker script, so the site works at any
  path (a GitHub Pages project site lives under ``/<repo>/``).
* **Patches from the page one at a time** (two in quick succession lost the first, e.g. a Pause click).
* Loading-status messages are set with ``textContent`` instead of ``innerHTML``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from sitebuild.common import canon
from sitebuild.pins import BOKEH_VERSION, PANEL_VERSION, PYODIDE_VERSION

JS = Path(__file__).resolve().parent / "js"
PANEL_CDN = f"https://cdn.holoviz.org/panel/{PANEL_VERSION}/dist/"
BOKEH_CDN = "https://cdn.bokeh.org/bokeh/release/"
PANEL_LOCAL = f"./static/panel/{PANEL_VERSION}/dist/"
BOKEH_LOCAL = "./static/bokeh/release/"
PANEL_WHEEL_URL = f"https://cdn.holoviz.org/panel/{PANEL_VERSION}/dist/wheels/panel-{PANEL_VERSION}-py3-none-any.whl"
BOKEH_WHEEL_URL = f"https://cdn.holoviz.org/panel/wheels/bokeh-{BOKEH_VERSION}-py3-none-any.whl"


def must_sub(pattern: str, repl, text: str, what: str, count: int = 0, flags: int = 0) -> str:
    """``re.subn`` that fails the build when the converter's output no longer has ``pattern``."""
    new, n = re.subn(pattern, repl, text, count=count, flags=flags)
    if n == 0:
        raise SystemExit(f"sitebuild: could not {what} (pattern {pattern!r} not found in the converter output)")
    return new


def must_insert_before(anchor: str, insert: str, text: str, what: str) -> str:
    if anchor not in text:
        raise SystemExit(f"sitebuild: could not {what} (no {anchor!r} in the converter output)")
    return text.replace(anchor, insert + anchor, 1)


def patch_worker(js: str, wheel_names: list[str], site_packages: set[str], site_deps=()) -> str:
    """The converted worker, fixed for Pyodide 0.27.7 and the site's own origin. ``wheel_names``: our wheels in
    install order; ``site_packages``: the names in the site's lock; ``site_deps``: our wheels' dependencies."""
    # 1. Pyodide 0.27.7 from ./pyodide/ (the converter writes jsDelivr's .../pyodide/v0.29.3/full/pyodide.js).
    js = must_sub(r'importScripts\("https://cdn\.jsdelivr\.net/pyodide/v[0-9.]+/full/pyodide\.js"\);',
                  'importScripts("./pyodide/pyodide.js");', js, "pin the Pyodide URL", count=1)
    js = must_sub(r"await loadPyodide\(\)",
                  'await loadPyodide({indexURL: new URL("./pyodide/", self.location.href).href})',
                  js, "set Pyodide's indexURL", count=1)
    # 2. Packages: the converter's requirements (the entry script's imports and Panel's wheels) without our own
    #    packages, which come by URL; one pyodide.loadPackage call fetches and installs them all (in parallel),
    #    without loading and importing micropip first (0.3-0.7 s).
    m = re.search(r"await micropip\.install\((\[.*?\])\);", js)
    if not m:
        raise SystemExit("sitebuild: could not find micropip.install([...]) in the worker")
    reqs = json.loads(m.group(1).replace("'", '"'))
    if BOKEH_WHEEL_URL not in reqs or PANEL_WHEEL_URL not in reqs:
        raise SystemExit(f"sitebuild: unexpected requirements from the converter: {reqs}")
    ours = {canon(n.split("-")[0]) for n in wheel_names}
    reqs = [r for r in reqs if canon(r) not in ours]
    our_urls = [f"./wheels/{n}" for n in wheel_names]
    names = ["bokeh" if r == BOKEH_WHEEL_URL else "panel" if r == PANEL_WHEEL_URL else r for r in reqs]
    names = list(dict.fromkeys(canon(n) for n in [*names, *site_deps] if canon(n) not in ours))
    missing = [n for n in names if n not in site_packages]
    if missing:
        raise SystemExit(f"sitebuild: the site's pyodide-lock.json lacks {missing}: add them to ROOTS in "
                         "sitebuild/pins.py and rerun python -m sitebuild.mirror")
    load = json.dumps([*names, *our_urls])
    js = must_sub(
        r'  await self\.pyodide\.loadPackage\("micropip"\);\n'
        r"(  self\.postMessage\(\{type: 'status', msg: `Installing environment`\}\)\n  try \{\n)"
        r"    await self\.pyodide\.runPythonAsync\(`\s*import micropip\s*"
        r"await micropip\.install\(\[.*?\]\);\s*`\);\n",
        lambda m: (m.group(1) + "    // tinyrnn build: everything is in the site's lock\n"
                   f"    await self.pyodide.loadPackage({load});\n"),
        js, "load the packages with one pyodide.loadPackage call", count=1, flags=re.DOTALL)
    # 3. The converter runs the entry script after its own preamble (import asyncio; init_doc()), so a
    #    `from __future__ import ...` in it would be a SyntaxError: hoist it to the front of that code.
    prefix = "await self.pyodide.runPythonAsync(`\\nimport asyncio\\n"
    if prefix not in js:
        raise SystemExit("sitebuild: could not find the app code in the worker")
    futures = re.findall(r"(?<=\\n)from __future__ import [A-Za-z_, ]+(?=\\n)", js)
    for line in futures:
        js = js.replace("\\n" + line + "\\n", "\\n\\n", 1)
    if futures:
        js = js.replace(prefix, "await self.pyodide.runPythonAsync(`" + "\\n".join(futures)
                        + "\\nimport asyncio\\n", 1)
    # 4. jsnull shim, before the app's code runs.
    js = must_insert_before("    const [docs_json, render_items, root_ids] = await self.pyodide.runPythonAsync(",
                            (JS / "jsnull_shim.js").read_text(), js, "find where the worker runs the app")
    # 5. Apply page->Python patches one at a time. The converter stores each incoming patch in one Python global
    #    and starts runPythonAsync, which runs the code later; a second patch arriving before that (the charts send
    #    range updates while training) overwrites the first, so a click (e.g. Pause) could be lost.
    js = must_sub(
        r"self\.pyodide\.globals\.set\('patch', msg\.patch\)\n(\s*)self\.pyodide\.runPythonAsync\((`[^`]*`)\)",
        lambda m: ("// tinyrnn build: one patch at a time (see sitebuild/patches.py)\n"
                   f"{m.group(1)}const tinyrnnPatch = msg.patch\n"
                   f"{m.group(1)}self.tinyrnnPatchChain = (self.tinyrnnPatchChain || Promise.resolve()).then(() => {{\n"
                   f"{m.group(1)}  self.pyodide.globals.set('patch', tinyrnnPatch)\n"
                   f"{m.group(1)}  return self.pyodide.runPythonAsync({m.group(2)})\n"
                   f"{m.group(1)}}}).catch((e) => console.error(e))"),
        js, "serialize incoming patches", count=1)
    # 6. Rewrite the CDN URLs Panel computes at run time in what the worker sends to the page.
    consts = "".join(f"const TINYRNN_{k} = {json.dumps(v)};\n" for k, v in [
        ("PANEL_CDN", PANEL_CDN), ("PANEL_LOCAL", PANEL_LOCAL), ("BOKEH_CDN", BOKEH_CDN), ("BOKEH_LOCAL", BOKEH_LOCAL)])
    first_newline = js.index("\n") + 1  # after importScripts(...)
    js = js[:first_newline] + "\n" + consts + (JS / "localize.js").read_text() + js[first_newline:]
    return f"// Built by sitebuild (Pyodide {PYODIDE_VERSION}, Panel {PANEL_VERSION}, Bokeh {BOKEH_VERSION}).\n" + js


def patch_page(page: str) -> str:
    page = must_sub(r"loading_msg\.innerHTML = msg\.msg", "loading_msg.textContent = msg.msg", page,
                    "make status messages plain text")
    return page.replace(PANEL_CDN, PANEL_LOCAL).replace(BOKEH_CDN, BOKEH_LOCAL)


def foreign_urls(page: str, worker: str) -> list[str]:
    """URLs of other hosts the built page or worker would load: none may be left (the site serves itself). The worker
    names Panel's and Bokeh's CDNs only as what js/localize.js rewrites."""
    allowed = {PANEL_CDN, BOKEH_CDN}
    return [u for u in external_urls(page + worker) if u not in allowed]


def external_urls(text: str) -> list[str]:
    """The http(s) URLs ``text`` names (but XML namespaces)."""
    urls = set(re.findall(r"""https?://[^\s"'`)<>]+""", text))
    return sorted(u for u in urls if not u.startswith(("http://www.w3.org/",)))
