"""The static-site build itself (no browser): what `webapp/build_site.py` writes in each mode.

The CDN build is what GitHub Pages serves (.github/workflows/pages.yml runs the same command); the browser test
drives the self-contained build. Both must pin Pyodide 0.27.7, carry the jsnull shim, install our wheel by a
relative URL and show status messages as text; only the self-contained one may carry the mirror's stand-ins.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def build(mode: str, out: Path, *extra: str) -> tuple[str, str, dict]:
    subprocess.run([sys.executable, str(REPO / "webapp" / "build_site.py"), "--mode", mode, "--out", str(out),
                    *extra], check=True, capture_output=True, text=True)
    return ((out / "index.html").read_text(), (out / "app.js").read_text(),
            json.loads((out / "BUILD-INFO.json").read_text()))


@pytest.fixture(scope="module")
def cdn_site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site-cdn")
    return out, *build("cdn", out)


def test_cdn_build_pins_pyodide_0277_and_loads_our_wheel_relatively(cdn_site):
    out, page, worker, info = cdn_site
    assert info["mode"] == "cdn" and info["pyodide"] == "0.27.7"
    assert 'importScripts("https://cdn.jsdelivr.net/pyodide/v0.27.7/full/pyodide.js")' in worker
    assert not re.search(r"pyodide/v0\.(2[89]|[3-9]\d)", worker + page), "a newer Pyodide URL is left"
    wheel = info["wheel"]
    assert f"'./wheels/{wheel}'" in worker
    assert (out / "wheels" / wheel).is_file()
    with zipfile.ZipFile(out / "wheels" / wheel) as z:
        assert "tinyrnn/__init__.py" in z.namelist()
    # Official distribution only: Panel's own wheels from its CDN, no stand-ins, no local Pyodide.
    assert "https://cdn.holoviz.org/panel/1.9.4/dist/wheels/panel-1.9.4-py3-none-any.whl" in worker
    assert not (out / "pyodide").exists() and not (out / "static").exists()
    assert "standin" not in worker and "stand_ins" not in info


def test_build_adds_the_jsnull_shim_before_the_app_runs(cdn_site):
    _, _, worker, _ = cdn_site
    shim = worker.index("pyodide.ffi.jsnull = _JsNullSentinel()")
    app = worker.index("const [docs_json, render_items, root_ids] = await self.pyodide.runPythonAsync(")
    assert 'if sys.platform == "emscripten":' in worker and 'hasattr(pyodide.ffi, "jsnull")' in worker
    assert shim < app


def test_build_shows_status_as_text_and_serializes_patches(cdn_site):
    _, page, worker, _ = cdn_site
    assert "loading_msg.innerHTML" not in page and "loading_msg.textContent = msg.msg" in page
    assert "self.tinyrnnPatchChain" in worker
    # `from __future__` is hoisted in front of the converter's preamble (else: SyntaxError in the worker).
    code_start = worker[worker.index("const [docs_json"):]
    assert "init_doc()" in code_start
    future = code_start.find("from __future__")
    if future != -1:
        assert future < code_start.index("import asyncio")


@pytest.mark.browser  # needs the offline mirror (webapp/mirror.py), like the browser test
def test_self_contained_build_serves_everything_itself(tmp_path):
    mirror = REPO / ".cache" / "mirror"
    if not (mirror / "selfcontained" / "pyodide" / "pyodide-lock.json").exists():
        subprocess.run([sys.executable, str(REPO / "webapp" / "mirror.py"), "--dest", str(mirror)], check=True)
    out = tmp_path / "site"
    page, worker, info = build("self-contained", out, "--mirror", str(mirror))
    assert 'importScripts("./pyodide/pyodide.js")' in worker
    lock = json.loads((out / "pyodide" / "pyodide-lock.json").read_text())
    assert lock["info"]["version"] == "0.27.7"
    for name in ("numpy", "autograd", "panel", "bokeh", "micropip", "pyodide-http"):
        assert (out / "pyodide" / lock["packages"][name]["file_name"]).is_file(), name
    assert lock["packages"]["panel"]["version"] == "1.9.4" and lock["packages"]["bokeh"]["version"] == "3.9.2"
    assert "panel" not in lock["packages"]["panel-material-ui"]["depends"], "dependency cycle not broken"
    # The page names no CDN: its scripts and styles come from ./static/.
    assert not re.search(r"https://cdn\.(bokeh|holoviz)\.org", page)
    assert "fonts.googleapis.com" not in page
    assert (out / "static" / "bokeh" / "release" / "bokeh-3.9.2.min.js").is_file()
    assert (out / "static" / "panel" / "1.9.4" / "dist" / "panel.min.js").is_file()
    assert sorted(info["stand_ins"]) == ["markupsafe", "nh3", "pyyaml"]
    # Start-up: our wheel and the pure wheels ship as .pyc; what the app never imports is not loaded.
    assert wheel_is_compiled(out / "wheels" / info["wheel"])
    assert wheel_is_compiled(out / "pyodide" / lock["packages"]["panel"]["file_name"])
    assert "pandas" not in lock["packages"]["panel"]["depends"]
    assert not any(p.name.startswith("pandas-") for p in (out / "pyodide").iterdir())
    with zipfile.ZipFile(out / "pyodide" / "python_stdlib.zip") as z:
        assert "json/__init__.pyc" in z.namelist()
    # Official package files keep their verified bytes.
    manifest = json.loads((mirror / "manifest.json").read_text())
    official = json.loads((mirror / "cdn.jsdelivr.net" / "pyodide" / "v0.27.7" / "full" / "pyodide-lock.json")
                          .read_text())["packages"]
    assert lock["packages"]["numpy"]["sha256"] == official["numpy"]["sha256"]
    assert manifest["packages"]["numpy"]["origin"].startswith("official")


def wheel_is_compiled(path: Path) -> bool:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    return any(n.endswith(".pyc") for n in names) and not any(n.endswith(".py") for n in names)
