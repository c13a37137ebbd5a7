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
* **Honest loading.** Until Python is ready the page says what it is loading, with progress (``LOADING_STEPS``),
  from the moment the page is parsed; the messages are set with ``textContent``. A failure (the runtime, a package,
  the app) is shown on the page as an alert and the spinner stops; the page never becomes ready after one.
* **No silent hang.** A watchdog (js/watchdog.js) names the start-up phase that takes far longer than usual and
  offers a reload; the worker sends it a heartbeat, and when that stops (the worker's thread blocked, as Firefox
  can leave it) the page reloads itself once.
* **No worker started by a worker.** Firefox can deadlock a worker that starts a Web Worker of its own (issue 19;
  seen in the Worker constructor). The page's main thread starts the training helpers that share a window's
  streams (js/helpers.js; tinyrnn's kernels/shards.js asks for them), and pyodide-http, which Panel imports, is
  imported while the Python worker's ``crossOriginIsolated`` reads false, so that it starts no streaming worker
  (js/no_streaming_worker.js).
* **No ResizeObserver loop.** Observers' callbacks run at the next animation frame (js/resize_frames.js): BokehJS
  re-lays out the page from them, which WebKit reported as an uncaught "ResizeObserver loop" error (bokeh#14287).
* **Offline use** (sitebuild/pwa.py): the manifest and icon links, and the service worker's registration once the
  app has rendered.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

from sitebuild.common import canon
from sitebuild.pwa import head_links
from sitebuild.pins import BOKEH_VERSION, PANEL_VERSION, PYODIDE_VERSION

JS = Path(__file__).resolve().parent / "js"
PANEL_CDN = f"https://cdn.holoviz.org/panel/{PANEL_VERSION}/dist/"
BOKEH_CDN = "https://cdn.bokeh.org/bokeh/release/"
PANEL_LOCAL = f"./static/panel/{PANEL_VERSION}/dist/"
BOKEH_LOCAL = "./static/bokeh/release/"
PANEL_WHEEL_URL = f"https://cdn.holoviz.org/panel/{PANEL_VERSION}/dist/wheels/panel-{PANEL_VERSION}-py3-none-any.whl"
BOKEH_WHEEL_URL = f"https://cdn.holoviz.org/panel/wheels/bokeh-{BOKEH_VERSION}-py3-none-any.whl"

# The worker's status messages while Python starts: the converter's words -> what the page says.
LOADING_STEPS = {
    "Loading pyodide": "Loading the Python runtime (1/3)…",
    "Installing environment": "Installing packages (2/3)…",
    "Executing code": "Starting the app (3/3)…",
}
LOADING_CSS = """
<style>
  /* tinyrnn build: the loading message stays legible over the pre-rendered page; a failure reads as one. */
  .pn-loading .pn-loading-msg { background: rgba(255, 255, 255, 0.92); padding: 0.4em 1em; }
  .pn-loading .pn-loading-msg.tr-loading-error { color: #611a15; background: #fdecea; }
  /* the start-up watchdog's notice (js/watchdog.js) */
  .tr-watchdog { position: fixed; top: 0.5em; left: 50%; transform: translateX(-50%); z-index: 10000;
                 max-width: 40em; padding: 0.5em 1em; color: #663c00; background: #fff4e5;
                 border: 1px solid #ffb74d; border-radius: 4px; font: 14px/1.4 sans-serif; }
  .tr-watchdog p { margin: 0.3em 0; }
</style>
"""


def must_sub(pattern: str, repl, text: str, what: str, count: int = 0, flags: int = 0) -> str:
    """``re.subn`` that fails the build when the converter's output no longer has ``pattern``."""
    new, n = re.subn(pattern, repl, text, count=count, flags=flags)
    if n == 0:
        raise SystemExit(f"sitebuild: could not {what} (pattern {pattern!r} not found in the converter output)")
    return new


def script_first_in_head(page: str, js_file: str, what: str) -> str:
    """``page`` with js/``js_file`` as an inline script right after ``<head>`` (before any script of the page)."""
    return must_sub(r"(<head>)", lambda m: m.group(1) + "\n<script>\n" + (JS / js_file).read_text() + "</script>",
                    page, what, count=1)


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
        r"await micropip\.install\(\[.*?\]\);\s*`\);\n"
        r"  \} catch\(e\) \{\n.*?\n  \}\n",
        lambda m: (m.group(1) + "    // tinyrnn build: all in the site's lock; a package that fails stops here\n"
                   "    const failed = []\n"
                   f"    await self.pyodide.loadPackage({load}, {{errorCallback: (m) => failed.push(m)}});\n"
                   "    if (failed.length) throw new Error(failed.join(' '))\n"
                   "  } catch(e) {\n"
                   "    console.error(e)\n"
                   "    tinyrnnFailed(`Could not install the packages: ${e.message || e}`)\n"
                   "    return\n"
                   "  }\n"),
        js, "load the packages with one pyodide.loadPackage call", count=1, flags=re.DOTALL)
    # 2b. Status messages that say what is loading, with progress; failures as errors the page shows as such.
    for theirs, ours_text in LOADING_STEPS.items():
        js = must_sub(rf"msg: (['`]){re.escape(theirs)}\1", lambda m, t=ours_text: f"msg: {json.dumps(t)}", js,
                      f"reword the status {theirs!r}", count=1)
    js = must_sub(r"    self\.postMessage\(\{\n      type: 'status',\n"
                  r"      msg: tblines\[tblines\.length-2\]\n    \}\);\n",
                  lambda m: "    tinyrnnFailed(`Could not start the app: ${tblines[tblines.length-2]}`)\n", js,
                  "report the app's start-up error as an error", count=1)
    js = must_sub(r"\nstartApplication\(\)\s*$",
                  lambda m: "\n// tinyrnn build: every failure reaches the page (the runtime itself, too), once\n"
                  "function tinyrnnFailed(text) {\n  if (self.tinyrnnReported) return\n  self.tinyrnnReported = true\n"
                  "  self.postMessage({type: 'status', msg: text, error: true})\n}\n"
                  "startApplication().catch((e) => {\n  console.error(e)\n"
                  "  tinyrnnFailed(`Could not start the app: ${e.message || e}`)\n})\n",
                  js, "report start-up failures", count=1)
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
    # 4. jsnull shim, and pyodide-http imported without its streaming worker, before the app's code runs.
    js = must_insert_before("    const [docs_json, render_items, root_ids] = await self.pyodide.runPythonAsync(",
                            (JS / "jsnull_shim.js").read_text() + (JS / "no_streaming_worker.js").read_text(), js,
                            "find where the worker runs the app")
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
    # 7. The page starts the training helper workers (js/helpers.js; the other side is tinyrnn's kernels/shards.js).
    js = js[:first_newline] + "self.tinyrnnPageStartsHelpers = true  // tinyrnn build: see sitebuild/js/helpers.js\n" \
        + js[first_newline:]
    # 8. The heartbeat the page's watchdog (js/watchdog.js) tells a blocked worker thread by.
    js = js[:first_newline] + ("setInterval(() => self.postMessage({type: 'tinyrnn-alive'}), 1000)  // tinyrnn build: "
                               "the heartbeat js/watchdog.js listens to\n") + js[first_newline:]
    return f"// Built by sitebuild (Pyodide {PYODIDE_VERSION}, Panel {PANEL_VERSION}, Bokeh {BOKEH_VERSION}).\n" + js


def patch_page(page: str) -> str:
    """The converted page: status messages as text (an error as an alert, and the spinner stops), the first one
    from the moment the body is parsed, a worker that fails to load reported, Panel/Bokeh from ``static/``."""
    page = must_sub(r"loading_msg\.innerHTML = msg\.msg",
                    "loading_msg.textContent = msg.msg\n"
                    "            if (msg.error) {  // tinyrnn build: a failure, not progress\n"
                    "              loading_msg.classList.add('tr-loading-error')\n"
                    "              loading_msg.setAttribute('role', 'alert')\n"
                    "              body.classList.remove('pn-arc')\n"
                    "            }", page, "make status messages plain text")
    first = next(iter(LOADING_STEPS.values()))
    page = must_sub(r'(<body class="pn-loading[^"]*">)',
                    lambda m: (m.group(1) + '\n<div class="pn-loading-msg" role="status" aria-live="polite">'
                               f"{html.escape(first)}</div>"), page, "show the first loading step at once", count=1)
    page = must_sub(r"(\n(\s*)pyodideWorker\.onmessage = async \(event\) => \{)",
                    lambda m: ("\n" + m.group(2) + "pyodideWorker.onerror = (e) => {  // tinyrnn build: the worker "
                               "script itself failed\n" + m.group(2) + "  pyodideWorker.onmessage({data: {type: "
                               "'status', msg: `Could not start the app: ${e.message || 'the Python worker did not "
                               "load'}`, error: true}})\n" + m.group(2) + "}" + m.group(1)),
                    page, "report a worker that fails to load", count=1)
    page = must_sub(r'new Worker\("\./app\.js"\)', 'new Worker("./app.js" + location.search)', page,
                    "hand the page's query (?workers=N) to the worker, where Python reads it", count=1)
    page = must_sub(r'\s*<link rel="icon" href="\./favicon\.ico"[^>]*>', "", page,
                    "drop the favicon.ico link (the site has none; head_links names its own icon)", count=1)
    page = must_insert_before("</head>", LOADING_CSS + head_links(), page, "style the loading message")
    # The start-up watchdog (js/watchdog.js): from the top of <head>, so that it sees every phase; told each message.
    page = script_first_in_head(page, "watchdog.js", "add the start-up watchdog")
    page = must_sub(r"(pyodideWorker\.onmessage = async \(event\) => \{\n(\s*)const msg = event\.data\n)",
                    lambda m: (m.group(1) + m.group(2) + "window.tinyrnnStartup.message(msg)  // tinyrnn build\n"
                               + m.group(2) + "if (msg.type === 'tinyrnn-alive') return  // the worker's heartbeat\n"),
                    page, "tell the watchdog what the worker says", count=1)
    # Patches from the worker go through js/apply_patch.js (an unknown reference loses one event, not the patch).
    page = must_sub(r"pyodideWorker\.jsdoc\.apply_json_patch\(msg\.patch, msg\.buffers\)",
                    "tinyrnnApplyPatch(pyodideWorker.jsdoc, msg.patch, msg.buffers)  // tinyrnn build", page,
                    "apply the worker's patches an event at a time when one names an unknown model", count=1)
    page = script_first_in_head(page, "apply_patch.js", "add tinyrnnApplyPatch")
    # ResizeObserver callbacks a frame later (js/resize_frames.js): before Bokeh's scripts, which make the observers.
    page = script_first_in_head(page, "resize_frames.js", "defer ResizeObserver callbacks to the next frame")
    # The training helper workers start from here, not nested in the Python worker (js/helpers.js).
    page = script_first_in_head(page, "helpers.js", "add tinyrnnHelperWorkers")
    page = must_sub(r"(\n(\s*)pyodideWorker\.busy = false\n)",
                    lambda m: (m.group(1) + m.group(2) + "pyodideWorker.addEventListener('message', tinyrnnHelperWorkers)"
                               "  // tinyrnn build\n"), page, "start the helper workers the worker asks for", count=1)
    # Offline use: once the app has rendered (so caching does not compete with the start), the service worker is
    # registered; it precaches the site (sitebuild/pwa.py). Not being able to is no error for the app.
    page = must_sub(r"\n(\s*)pyodideWorker\.postMessage\(\{'type': 'rendered'\}\)\n",
                    lambda m: (m.group(0) + m.group(1) + "if ('serviceWorker' in navigator) {  // tinyrnn build\n"
                               + m.group(1) + "  navigator.serviceWorker.register('./sw.js').catch((e) => "
                               "console.warn('offline use is not available:', e))\n" + m.group(1) + "}\n"),
                    page, "register the service worker after the first render", count=1)
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
