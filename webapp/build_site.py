#!/usr/bin/env python3
"""Build the tinyrnn in-browser trainer as a static site.

    python webapp/build_site.py --mode self-contained --out build/site   # local serving and the browser tests
    python webapp/build_site.py --mode cdn --out build/site              # GitHub Pages

Steps: build the tinyrnn wheel (``python -m build --wheel``), convert ``webapp/app.py`` with
``panel convert --to pyodide-worker``, then post-process the two generated files:

* **Pin Pyodide to 0.27.7.** Panel 1.9.4's converter emits URLs for Pyodide v0.29.3, but the only Pyodide whose
  wasm packages (numpy, pandas, ...) we can assemble offline from registries is 0.27.7 (npm ``pyodide@0.27.7`` plus
  sha256-verified wheels, see ``webapp/mirror.py``). The tests must drive the site that ships, so both modes load
  0.27.7: the official jsDelivr copy (cdn) or the mirrored copy on the site's own origin (self-contained).
* **jsnull shim.** Panel 1.9.4 compares values with ``pyodide.ffi.jsnull``, which Pyodide 0.27 lacks (JS null
  already converts to None there). Before the app runs, the worker defines it as a never-matching sentinel when
  running under emscripten and it is missing; otherwise every browser-to-Python update raises AttributeError.
* **Our wheel by relative URL** (``./wheels/tinyrnn-....whl``), resolved against the worker script, so the site
  works at any path (a GitHub Pages project site lives under ``/<repo>/``).
* Loading-status messages are set with ``textContent`` instead of ``innerHTML``.
* ``index.html`` is the converted page.

``--mode self-contained`` additionally serves everything from the site's own origin: Pyodide core, the merged
``pyodide-lock.json`` and every package the app needs (``pyodide/``), Bokeh's and Panel's JS/CSS
(``static/``), and rewrites the page, the worker and the stylesheet URLs Panel computes at run time to point there.
Its worker installs everything with one ``pyodide.loadPackage`` call (every package is in the site's lock, our
wheel by URL) instead of loading micropip first, and the mirror's panel and bokeh wheels are slimmed (see
``SLIM_WHEELS`` in ``webapp/mirror.py``). It needs ``python webapp/mirror.py`` first and carries the mirror's
*stand-ins* (pure-Python markupsafe and pyyaml, an nh3 that sanitizes with bleach). ``--mode cdn`` loads the
official Pyodide 0.27.7 distribution from jsDelivr, Panel's stock wheels and JS from Panel's and Bokeh's CDNs and the
remaining pure wheels from PyPI (with micropip, as the converter emits), so GitHub Pages never serves a stand-in.
See docs/deploy.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import mirror  # noqa: E402  (versions and layout of the offline mirror)

PYODIDE = mirror.PYODIDE_VERSION
PANEL = mirror.PANEL_VERSION
BOKEH = mirror.BOKEH_VERSION
JSDELIVR_PYODIDE = f"https://cdn.jsdelivr.net/pyodide/v{PYODIDE}/full/"
PANEL_CDN = f"https://cdn.holoviz.org/panel/{PANEL}/dist/"
BOKEH_CDN = "https://cdn.bokeh.org/bokeh/release/"
PANEL_WHEEL_URL = f"https://cdn.holoviz.org/panel/{PANEL}/dist/wheels/panel-{PANEL}-py3-none-any.whl"
BOKEH_WHEEL_URL = f"https://cdn.holoviz.org/panel/wheels/bokeh-{BOKEH}-py3-none-any.whl"

JSNULL_SHIM = """\
  // tinyrnn build: Panel 1.9.4 expects pyodide.ffi.jsnull (Pyodide >= 0.28). On Pyodide 0.27 JS null already
  // converts to None, so a never-matching sentinel keeps Panel's JS->Python sync working.
  await self.pyodide.runPythonAsync(`
import sys
if sys.platform == "emscripten":
    import pyodide.ffi
    if not hasattr(pyodide.ffi, "jsnull"):
        class _JsNullSentinel:
            __slots__ = ()
            def __repr__(self):
                return "jsnull (tinyrnn shim: never matches on Pyodide 0.27)"
        pyodide.ffi.jsnull = _JsNullSentinel()
`);
"""

# Self-contained mode: Panel computes stylesheet URLs (CDN paths) in Python at run time and ships them to the page
# in the document JSON and patches; the worker rewrites them to the site's own copy before posting.
LOCALIZE_JS = """\
// tinyrnn build (self-contained): Panel/Bokeh resources come from this site, not from their CDNs.
const TINYRNN_CDN_MAP = [
  [%(panel_cdn)s, new URL("./static/panel/%(panel)s/dist/", self.location.href).href],
  [%(bokeh_cdn)s, new URL("./static/bokeh/release/", self.location.href).href],
];
function tinyrnnLocalize(value) {
  // Strings anywhere in the document JSON (a string) or in a patch (nested JS objects and arrays).
  if (typeof value === "string") {
    for (const [cdn, local] of TINYRNN_CDN_MAP) value = value.split(cdn).join(local);
    return value;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = tinyrnnLocalize(value[i]);
  } else if (value instanceof Map) {
    for (const [k, v] of value) value.set(k, tinyrnnLocalize(v));
  } else if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    for (const k of Object.keys(value)) value[k] = tinyrnnLocalize(value[k]);
  }
  return value;
}
const tinyrnnPostMessage = self.postMessage.bind(self);
self.postMessage = (msg, ...rest) => {
  if (msg && typeof msg === "object") {
    for (const key of ["docs_json", "patch"]) {
      if (key in msg) msg[key] = tinyrnnLocalize(msg[key]);
    }
  }
  return tinyrnnPostMessage(msg, ...rest);
};

"""


def log(msg: str) -> None:
    print(f"[build_site] {msg}", flush=True)


def run(cmd: list, **kw) -> None:
    log("$ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def must_sub(pattern: str, repl, text: str, what: str, count: int = 0, flags: int = 0) -> str:
    new, n = re.subn(pattern, repl, text, count=count, flags=flags)
    if n == 0:
        raise SystemExit(f"build_site: could not {what} (pattern {pattern!r} not found in the converter output)")
    return new


# Our wheels, in the order the page installs them: (distribution name, project directory, what the project's build
# reads: copied to a scratch directory first so the build leaves nothing in webapp/; None: build in place).
OUR_WHEELS = [("tinyrnn", REPO, None), ("tinyrnn_app", REPO / "webapp", ["pyproject.toml", "tinyrnn_app"])]


def build_wheel(project: Path, dist: str, wheel_dir: Path, sources: list[str] | None) -> Path:
    if sources is not None:
        scratch = wheel_dir.parent / f"src-{dist}"
        for rel in sources:
            if (project / rel).is_dir():
                shutil.copytree(project / rel, scratch / rel, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                scratch.mkdir(parents=True, exist_ok=True)
                shutil.copy2(project / rel, scratch / rel)
        project = scratch
    run([sys.executable, "-m", "build", "--wheel", "--outdir", wheel_dir, project],
        stdout=subprocess.DEVNULL)
    wheels = sorted(wheel_dir.glob(f"{dist}-*-py3-none-any.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one {dist} wheel in {wheel_dir}, found {wheels}")
    return wheels[0]


def py_compile(wheel: Path) -> Path:
    """`pyodide py-compile` (Python 3.12, as Pyodide 0.27.7): ships .pyc, so the page skips compiling our code."""
    venv = mirror.pyodide_build_venv(REPO / ".cache" / "mirror")
    run([venv / "bin" / "pyodide", "py-compile", "--silent", wheel])
    dist = wheel.name.split("-")[0]
    compiled = sorted(wheel.parent.glob(f"{dist}-*-cp312-none-any.whl"))
    if len(compiled) != 1:
        raise SystemExit(f"pyodide py-compile did not produce one {dist} wheel: {compiled}")
    log(f"py-compiled {compiled[0].name}")
    return compiled[0]


def wheel_deps(wheel: Path) -> list[str]:
    """The unconditional ``Requires-Dist`` names of a wheel (canonical)."""
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    deps = []
    for line in text.splitlines():
        if line.startswith("Requires-Dist:") and ";" not in line:
            deps.append(mirror.canon(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line.split(":", 1)[1]).group(1)))
    return deps


def convert(app: Path, workdir: Path, title: str) -> tuple[str, str]:
    """``panel convert`` pre-renders the page by running the entry script, so it imports this tree's tinyrnn and
    tinyrnn_app (whatever else is installed)."""
    path = os.pathsep.join([str(REPO / "core"), str(REPO / "webapp"), os.environ.get("PYTHONPATH", "")])
    run([sys.executable, "-m", "panel", "convert", app, "--to", "pyodide-worker", "--out", workdir,
         "--title", title], env=dict(os.environ, PYTHONPATH=path.rstrip(os.pathsep)))
    stem = app.stem
    return (workdir / f"{stem}.html").read_text(), (workdir / f"{stem}.js").read_text()


def patch_worker(js: str, mode: str, wheel_names: list[str], site_packages=None, site_deps=None) -> str:
    """The converted worker, fixed for Pyodide 0.27.7 (see the module docstring). ``wheel_names``: our wheels in
    install order. Self-contained mode needs the site lock's package names (``site_packages``) and our wheels'
    dependencies (``site_deps``)."""
    # 1. Pyodide: pin to 0.27.7 (the converter writes .../pyodide/v0.29.3/full/pyodide.js).
    pyodide_base = "./pyodide/" if mode == "self-contained" else JSDELIVR_PYODIDE
    js = must_sub(r'importScripts\("https://cdn\.jsdelivr\.net/pyodide/v[0-9.]+/full/pyodide\.js"\);',
                  f'importScripts("{pyodide_base}pyodide.js");', js, "pin the Pyodide URL", count=1)
    js = must_sub(r"await loadPyodide\(\)",
                  f'await loadPyodide({{indexURL: new URL("{pyodide_base}", self.location.href).href}})',
                  js, "set Pyodide's indexURL", count=1)
    # 2. Packages. CDN mode: micropip installs the converter's list, our wheel by relative URL. Self-contained mode:
    #    every package is in the site's lock, so one pyodide.loadPackage call fetches and installs them all (in
    #    parallel) with our wheel and its dependencies, without loading and importing micropip first (0.3-0.7 s).
    m = re.search(r"await micropip\.install\((\[.*?\])\);", js)
    if not m:
        raise SystemExit("build_site: could not find micropip.install([...]) in the worker")
    reqs = json.loads(m.group(1).replace("'", '"'))
    if BOKEH_WHEEL_URL not in reqs or PANEL_WHEEL_URL not in reqs:
        raise SystemExit(f"build_site: unexpected requirements from the converter: {reqs}")
    ours = {mirror.canon(n.split("-")[0]) for n in wheel_names}
    reqs = [r for r in reqs if mirror.canon(r) not in ours]  # the entry script's imports: our wheels, by URL
    our_urls = [f"./wheels/{n}" for n in wheel_names]
    if mode == "self-contained":
        names = ["bokeh" if r == BOKEH_WHEEL_URL else "panel" if r == PANEL_WHEEL_URL else r for r in reqs]
        names = list(dict.fromkeys(mirror.canon(n) for n in [*names, *(site_deps or ())] if mirror.canon(n) not in ours))
        missing = [n for n in names if n not in (site_packages or ())]
        if missing:
            raise SystemExit(f"build_site: the site's pyodide-lock.json lacks {missing}: add them to ROOTS in "
                             "webapp/mirror.py and rerun it")
        load = json.dumps([*names, *our_urls])
        js = must_sub(
            r'  await self\.pyodide\.loadPackage\("micropip"\);\n'
            r"(  self\.postMessage\(\{type: 'status', msg: `Installing environment`\}\)\n  try \{\n)"
            r"    await self\.pyodide\.runPythonAsync\(`\s*import micropip\s*"
            r"await micropip\.install\(\[.*?\]\);\s*`\);\n",
            lambda m: (m.group(1) + "    // tinyrnn build (self-contained): everything is in the site's lock\n"
                       f"    await self.pyodide.loadPackage({load});\n"),
            js, "load the packages with one pyodide.loadPackage call", count=1, flags=re.DOTALL)
    else:
        reqs.extend(our_urls)
        reqs_py = "[" + ", ".join(repr(r) for r in reqs) + "]"
        js = js[: m.start()] + f"await micropip.install({reqs_py});" + js[m.end():]
    # 3. The converter runs the app's source after its own preamble (import asyncio; init_doc()), so a
    #    `from __future__ import ...` in app.py would be a SyntaxError: hoist it to the front of that code.
    prefix = "await self.pyodide.runPythonAsync(`\\nimport asyncio\\n"
    if prefix not in js:
        raise SystemExit("build_site: could not find the app code in the worker")
    futures = re.findall(r"(?<=\\n)from __future__ import [A-Za-z_, ]+(?=\\n)", js)
    for line in futures:
        js = js.replace("\\n" + line + "\\n", "\\n\\n", 1)
    if futures:
        js = js.replace(prefix, "await self.pyodide.runPythonAsync(`" + "\\n".join(futures)
                        + "\\nimport asyncio\\n", 1)
    # 4. jsnull shim, before the app's code runs.
    anchor = "    const [docs_json, render_items, root_ids] = await self.pyodide.runPythonAsync("
    if anchor not in js:
        raise SystemExit("build_site: could not find where the worker runs the app")
    js = js.replace(anchor, JSNULL_SHIM + anchor, 1)
    # 5. Apply page->Python patches one at a time. The converter stores each incoming patch in one Python global
    #    and starts runPythonAsync, which runs the code later; a second patch arriving before that (the charts send
    #    range updates while training) overwrites the first, so a click (e.g. Pause) could be lost.
    js = must_sub(
        r"self\.pyodide\.globals\.set\('patch', msg\.patch\)\n(\s*)self\.pyodide\.runPythonAsync\((`[^`]*`)\)",
        lambda m: ("// tinyrnn build: one patch at a time (see webapp/build_site.py)\n"
                   f"{m.group(1)}const tinyrnnPatch = msg.patch\n"
                   f"{m.group(1)}self.tinyrnnPatchChain = (self.tinyrnnPatchChain || Promise.resolve()).then(() => {{\n"
                   f"{m.group(1)}  self.pyodide.globals.set('patch', tinyrnnPatch)\n"
                   f"{m.group(1)}  return self.pyodide.runPythonAsync({m.group(2)})\n"
                   f"{m.group(1)}}}).catch((e) => console.error(e))"),
        js, "serialize incoming patches", count=1)
    # 6. Self-contained: rewrite CDN URLs in what the worker sends to the page.
    if mode == "self-contained":
        localize = LOCALIZE_JS % {"panel_cdn": json.dumps(PANEL_CDN), "bokeh_cdn": json.dumps(BOKEH_CDN),
                                  "panel": PANEL}
        first_newline = js.index("\n") + 1  # after importScripts(...)
        js = js[:first_newline] + "\n" + localize + js[first_newline:]
    header = (f"// Built by webapp/build_site.py (mode: {mode}; Pyodide {PYODIDE}, Panel {PANEL}, Bokeh {BOKEH}).\n")
    return header + js


def patch_page(page: str, mode: str) -> str:
    page = must_sub(r"loading_msg\.innerHTML = msg\.msg", "loading_msg.textContent = msg.msg", page,
                    "make status messages plain text")
    if mode == "self-contained":
        page = page.replace(PANEL_CDN, f"./static/panel/{PANEL}/dist/")
        page = page.replace(BOKEH_CDN, "./static/bokeh/release/")
        # The Fast template links a Google web font; offline, the page uses the browser's sans-serif instead.
        page = re.sub(r'\s*<link[^>]*href="https://fonts\.googleapis\.com/[^"]*"[^>]*>', "", page)
    return page


def external_urls(text: str) -> list[str]:
    urls = set(re.findall(r"""https?://[^\s"'`)<>]+""", text))
    return sorted(u for u in urls if not u.startswith(("http://www.w3.org/",)))


def link_tree(src: Path, dst: Path, skip=()) -> int:
    """Hard-link (or copy) a file tree; returns the number of files."""
    n = 0
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        dirs[:] = [d for d in dirs if str(rel / d) not in skip]
        for f in files:
            target = dst / rel / f
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(Path(root) / f, target)
            except OSError:
                shutil.copy2(Path(root) / f, target)
            n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=["self-contained", "cdn"], default="cdn")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "site")
    ap.add_argument("--mirror", type=Path, default=REPO / ".cache" / "mirror",
                    help="offline mirror made by webapp/mirror.py (self-contained mode)")
    ap.add_argument("--app", type=Path, default=REPO / "webapp" / "app.py")
    ap.add_argument("--title", default="tinyrnn: train a character-level RNN in your browser")
    ap.add_argument("--no-py-compile", action="store_true",
                    help="self-contained: ship our wheel as .py (to measure the start-up gain)")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    out = args.out.resolve()
    mirror_dir = args.mirror.resolve()
    sc_pyodide = mirror_dir / "selfcontained" / "pyodide"
    if args.mode == "self-contained" and not (sc_pyodide / "pyodide-lock.json").exists():
        raise SystemExit(f"no offline mirror at {mirror_dir}: run  python webapp/mirror.py --dest {args.mirror}")

    with tempfile.TemporaryDirectory(prefix="tinyrnn-site-") as tmp:
        wheels = []
        for dist, project, sources in OUR_WHEELS:
            wheel = build_wheel(project, dist, Path(tmp) / "wheel", sources)
            log(f"built {wheel.name}")
            if args.mode == "self-contained" and not args.no_py_compile:
                wheel = py_compile(wheel)
            wheels.append(wheel)
        page, worker = convert(args.app.resolve(), Path(tmp) / "convert", args.title)
        wheel_bytes = {w.name: w.read_bytes() for w in wheels}
        deps = [d for w in wheels for d in wheel_deps(w)]

    site_packages = None
    if args.mode == "self-contained":
        site_packages = set(json.loads((sc_pyodide / "pyodide-lock.json").read_text())["packages"])
    worker = patch_worker(worker, args.mode, list(wheel_bytes), site_packages, deps)
    page = patch_page(page, args.mode)

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "index.html").write_text(page)
    (out / f"{args.app.stem}.js").write_text(worker)
    (out / "wheels").mkdir()
    for name, data in wheel_bytes.items():
        (out / "wheels" / name).write_bytes(data)
    (out / ".nojekyll").write_text("")  # GitHub Pages: serve files as they are
    info = {"mode": args.mode, "pyodide": PYODIDE, "panel": PANEL, "bokeh": BOKEH, "wheel": wheels[0].name,
            "app_wheel": wheels[1].name}

    if args.mode == "self-contained":
        n = link_tree(sc_pyodide, out / "pyodide")
        n += link_tree(mirror_dir / "cdn.bokeh.org" / "bokeh" / "release", out / "static" / "bokeh" / "release")
        n += link_tree(mirror_dir / "cdn.holoviz.org" / "panel" / PANEL / "dist",
                       out / "static" / "panel" / PANEL / "dist", skip={"wheels"})
        manifest = json.loads((mirror_dir / "manifest.json").read_text())
        info["packages"] = manifest["packages"]
        info["stand_ins"] = sorted(k for k, v in manifest["packages"].items() if v["origin"].startswith("stand-in"))
        info["slimmed"] = manifest.get("slimmed", {})  # wheels shipped without files the worker never reads
        log(f"self-contained: {n} files from the mirror (Pyodide core, {len(manifest['packages'])} packages, "
            f"Bokeh/Panel JS); stand-ins included: {', '.join(info['stand_ins'])}")
        leftovers = [u for u in external_urls(page + worker) if u not in (PANEL_CDN, BOKEH_CDN)
                     and u.startswith(("https://cdn.", "https://unpkg", "https://fonts."))]
        if leftovers:
            log(f"WARNING: the self-contained site still names CDN URLs: {leftovers}")
    (out / "BUILD-INFO.json").write_text(json.dumps(info, indent=1) + "\n")
    log(f"wrote {out} ({args.mode}) in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
