"""The static-site build itself (no browser): what `python -m sitebuild.build` writes.

There is one site: the one `make run` serves, the browser tests drive and GitHub Pages publishes
(.github/workflows/pages.yml runs `make pages-site`, the same mirror and build). It must pin Pyodide 0.27.7, carry
the jsnull shim, install our wheels by a relative URL, show status messages as text and load nothing from another
host. Building it needs the offline mirror, so those tests are marked `browser` like the browser tests.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

from sitebuild import selfcontained
from sitebuild.patches import external_urls
from sitebuild.pins import SLIM_WHEELS

REPO = Path(__file__).resolve().parents[2]
NH3_STANDIN = REPO / "sitebuild" / "standin_src" / "nh3" / "nh3" / "__init__.py"


def build(out: Path, *extra: str) -> tuple[str, str, dict]:
    subprocess.run([sys.executable, "-m", "sitebuild.build", "--out", str(out), *extra],
                   check=True, capture_output=True, text=True, cwd=REPO)
    return ((out / "index.html").read_text(), (out / "app.js").read_text(),
            json.loads((out / "BUILD-INFO.json").read_text()))


@pytest.fixture(scope="module")
def site(tmp_path_factory, mirror_dir):
    """The site, built into a scratch folder from the offline mirror ($TINYRNN_MIRROR, else .cache/mirror)."""
    out = tmp_path_factory.mktemp("site") / "site"
    return out, *build(out, "--mirror", str(mirror_dir))


@pytest.mark.browser  # needs the offline mirror (python -m sitebuild.mirror)
def test_build_pins_pyodide_0277_and_loads_our_wheels_relatively(site):
    out, page, worker, info = site
    assert info["pyodide"] == "0.27.7"
    assert not re.search(r"pyodide/v0\.(2[89]|[3-9]\d)", worker + page), "a newer Pyodide URL is left"
    for wheel, package in ((info["wheel"], "tinyrnn"), (info["app_wheel"], "tinyrnn_app")):
        assert f'"./wheels/{wheel}"' in worker
        assert (out / "wheels" / wheel).is_file()
        with zipfile.ZipFile(out / "wheels" / wheel) as z:
            assert f"{package}/__init__.pyc" in z.namelist()


@pytest.mark.browser
def test_the_site_loads_nothing_from_another_host(site):
    """No jsDelivr, no Panel/Bokeh CDN, no PyPI, no font host: the only other hosts the page and worker name are
    Panel's and Bokeh's CDNs, as the strings js/localize.js rewrites to the site's own static/."""
    _, page, worker, _ = site
    assert external_urls(page) == []
    assert external_urls(worker) == ["https://cdn.bokeh.org/bokeh/release/",
                                     "https://cdn.holoviz.org/panel/1.9.4/dist/"]
    assert "TINYRNN_CDN_MAP" in worker and "jsdelivr" not in worker + page and "pypi" not in worker.lower()
    assert "micropip" not in worker and "fonts.googleapis.com" not in page


@pytest.mark.browser
def test_build_adds_the_jsnull_shim_before_the_app_runs(site):
    _, _, worker, _ = site
    shim = worker.index("pyodide.ffi.jsnull = _JsNullSentinel()")
    app = worker.index("const [docs_json, render_items, root_ids] = await self.pyodide.runPythonAsync(")
    assert 'if sys.platform == "emscripten":' in worker and 'hasattr(pyodide.ffi, "jsnull")' in worker
    assert shim < app


@pytest.mark.browser
def test_build_shows_status_as_text_and_serializes_patches(site):
    _, page, worker, _ = site
    assert "loading_msg.innerHTML" not in page and "loading_msg.textContent = msg.msg" in page
    assert "self.tinyrnnPatchChain" in worker
    # `from __future__` is hoisted in front of the converter's preamble (else: SyntaxError in the worker).
    code_start = worker[worker.index("const [docs_json"):]
    assert "init_doc()" in code_start
    future = code_start.find("from __future__")
    if future != -1:
        assert future < code_start.index("import asyncio")


@pytest.mark.browser  # needs the offline mirror (python -m sitebuild.mirror), like the browser test
def test_the_site_serves_everything_itself(site, mirror_dir):
    mirror = mirror_dir
    out, page, worker, info = site
    assert 'importScripts("./pyodide/pyodide.js")' in worker
    lock = json.loads((out / "pyodide" / "pyodide-lock.json").read_text())
    assert lock["info"]["version"] == "0.27.7"
    for name in ("numpy", "autograd", "panel", "bokeh", "pyodide-http"):
        assert (out / "pyodide" / lock["packages"][name]["file_name"]).is_file(), name
    assert lock["packages"]["panel"]["version"] == "1.9.4" and lock["packages"]["bokeh"]["version"] == "3.9.2"
    assert "panel" not in lock["packages"]["panel-material-ui"]["depends"], "dependency cycle not broken"
    # One loadPackage call, no micropip: every name it loads is in the site's lock (else Pyodide cannot load it).
    m = re.search(r"await self\.pyodide\.loadPackage\((\[.*?\])[,)]", worker)
    assert m and "micropip" not in worker, "the self-contained worker should not use micropip"
    loaded = json.loads(m.group(1))
    # our two wheels by URL, the library first (the app imports it), everything else by name
    assert loaded[-2:] == [f"./wheels/{info['wheel']}", f"./wheels/{info['app_wheel']}"]
    assert info["app_wheel"].startswith("tinyrnn_app-0.1.0-")
    assert {"bokeh", "panel", "numpy", "autograd", "param", "pyodide-http"} <= set(loaded[:-2])
    assert set(loaded[:-2]) <= set(lock["packages"]), set(loaded[:-2]) - set(lock["packages"])
    # The page names no CDN: its scripts and styles come from ./static/.
    assert not re.search(r"https://cdn\.(bokeh|holoviz)\.org", page)
    assert "fonts.googleapis.com" not in page
    assert (out / "static" / "bokeh" / "release" / "bokeh-3.9.2.min.js").is_file()
    assert (out / "static" / "panel" / "1.9.4" / "dist" / "panel.min.js").is_file()
    assert sorted(info["stand_ins"]) == ["markupsafe", "nh3", "pyyaml"]
    # Start-up: our wheel and the pure wheels ship as .pyc; what the app never imports is not loaded.
    assert wheel_is_compiled(out / "wheels" / info["wheel"])
    assert wheel_is_compiled(out / "wheels" / info["app_wheel"])
    with zipfile.ZipFile(out / "wheels" / info["app_wheel"]) as z:
        assert "tinyrnn_app/__init__.pyc" in z.namelist()
    assert wheel_is_compiled(out / "pyodide" / lock["packages"]["panel"]["file_name"])
    assert "pandas" not in lock["packages"]["panel"]["depends"]
    assert not any(p.name.startswith("pandas-") for p in (out / "pyodide").iterdir())
    with zipfile.ZipFile(out / "pyodide" / "python_stdlib.zip") as z:
        assert "json/__init__.pyc" in z.namelist()
    # Slimmed panel and bokeh wheels: what the worker never reads is gone, the lock's sha256 (checked by
    # loadPackage) matches, and every dist/bundled/ file the page loads is still in panel's wheel, so Panel in the
    # worker resolves the same URLs for the template as with the full wheel.
    for name in ("panel", "bokeh"):
        f = out / "pyodide" / lock["packages"][name]["file_name"]
        assert hashlib.sha256(f.read_bytes()).hexdigest() == lock["packages"][name]["sha256"], name
        assert f.stat().st_size < 4_000_000, f"{name}: {f.stat().st_size} bytes, not slimmed"
    with zipfile.ZipFile(out / "pyodide" / lock["packages"]["panel"]["file_name"]) as z:
        panel_files = set(z.namelist())
    assert not any(n.startswith(("panel/dist/bundled/deckglplot/", "panel/tests/")) for n in panel_files)
    assert "panel/dist/panel.min.js" not in panel_files and "panel/__init__.pyc" in panel_files
    page_bundled = set(re.findall(r'\./static/panel/1\.9\.4/dist/(bundled/[^"?]+)', page))
    assert page_bundled, "the page loads no dist/bundled/ file?"
    missing = sorted(b for b in page_bundled if f"panel/dist/{b}" not in panel_files)
    assert not missing, f"the slim panel wheel lacks bundled files the page uses (SLIM_WHEELS keep): {missing}"
    for b in page_bundled:  # and the page gets them from the site itself
        assert (out / "static" / "panel" / "1.9.4" / "dist" / b).is_file(), b
    with zipfile.ZipFile(out / "pyodide" / lock["packages"]["bokeh"]["file_name"]) as z:
        assert not any(n.startswith("bokeh/server/static/") for n in z.namelist())
        assert "bokeh/__init__.pyc" in z.namelist()
    # Official package files keep their verified bytes.
    manifest = json.loads((mirror / "manifest.json").read_text())
    official = json.loads((mirror / "cdn.jsdelivr.net" / "pyodide" / "v0.27.7" / "full" / "pyodide-lock.json")
                          .read_text())["packages"]
    assert lock["packages"]["numpy"]["sha256"] == official["numpy"]["sha256"]
    assert manifest["packages"]["numpy"]["origin"].startswith("official")
    assert manifest["packages"]["panel"]["origin"].endswith("slimmed") and manifest["slimmed"]["panel"]["dropped_files"]
    assert sorted(info["slimmed"]) == ["bokeh", "panel"]  # BUILD-INFO.json says which wheels are not the stock ones


def wheel_is_compiled(path: Path) -> bool:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    return any(n.endswith(".pyc") for n in names) and not any(n.endswith(".py") for n in names)


def make_wheel(path: Path, files: dict[str, bytes]) -> None:
    record = "".join(f"{name},sha256=x,{len(data)}\n" for name, data in files.items())
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr("panel-1.9.4.dist-info/RECORD", record + "panel-1.9.4.dist-info/RECORD,,\n")


def test_slim_wheel_drops_what_the_worker_never_reads_and_keeps_the_rest(tmp_path):
    files = {
        "panel/__init__.pyc": b"code",
        "panel/dist/panel.min.js": b"js" * 1000,
        "panel/dist/css/button.css": b".b{}",
        "panel/dist/bundled/deckglplot/deck.js": b"x" * 5000,
        "panel/dist/bundled/bootstrap5/css/bootstrap.min.css": b".bs{}",
        "panel/dist/bundled/bootstrap5/css/bootstrap.css": b".bs{}" * 100,
        "panel/dist/bundled/theme/default.css": b":root{}",
        "panel/tests/test_x.pyc": b"t",
        "panel-1.9.4.dist-info/METADATA": b"Name: panel\n",
    }
    original = tmp_path / "mirror-copy.whl"
    make_wheel(original, files)
    site_copy = tmp_path / "panel-1.9.4-cp312-none-any.whl"
    os.link(original, site_copy)  # the site's copy is a hard link into the mirror
    before = original.read_bytes()
    spec = SLIM_WHEELS["panel"]
    report = selfcontained.slim_wheel(site_copy, spec["drop"], spec["keep"])

    kept = {"panel/__init__.pyc", "panel/dist/css/button.css", "panel/dist/bundled/bootstrap5/css/bootstrap.min.css",
            "panel/dist/bundled/theme/default.css", "panel-1.9.4.dist-info/METADATA"}
    with zipfile.ZipFile(site_copy) as z:
        names = set(z.namelist())
        assert names == kept | {"panel-1.9.4.dist-info/RECORD"}
        for name in kept:
            assert z.read(name) == files[name]
        record = {line.split(",")[0] for line in z.read("panel-1.9.4.dist-info/RECORD").decode().splitlines()}
    assert record == names, "RECORD must list exactly the files left"
    assert report["dropped_files"] == 4 and report["dropped_bytes"] == 2000 + 5000 + 500 + 1
    assert original.read_bytes() == before, "slimming changed the hard-linked original"


def test_nh3_stand_in_passes_plain_text_without_bleach_and_sanitizes_the_rest(monkeypatch):
    calls = []
    fake_bleach = types.ModuleType("bleach")

    def fake_clean(text, **kw):
        calls.append(text)
        return "<sanitized>"

    fake_bleach.clean = fake_clean
    monkeypatch.setitem(sys.modules, "bleach", fake_bleach)
    nh3 = types.ModuleType("nh3_standin_under_test")
    exec(compile(NH3_STANDIN.read_text(), "nh3/__init__.py", "exec"), nh3.__dict__)  # noqa: S102 (our own source)
    # what Panel cleans for the app's template: names, CSS classes, titles
    for plain in ["main-60625616", "tr-text", "tinyrnn: train a character-level RNN in your browser", "",
                  "Tab\tand\nnewline, quotes \"'\" and non-ASCII: é ∂L/∂h"]:
        assert nh3.clean(plain) == plain
    assert calls == []
    # anything ammonia or bleach could change goes through bleach
    for text in ["<img src=x onerror=alert(1)>", "a > b", "fish & chips", "line\r\nbreak", "nb\xa0sp", "ff\x0c",
                 "nul\x00"]:
        assert nh3.clean(text) == "<sanitized>", repr(text)
    assert len(calls) == 7
    with pytest.raises(NotImplementedError):
        nh3.clean("plain", allowed_classes={"a": {"b"}})


def test_the_build_refuses_a_page_that_loads_from_another_host():
    from sitebuild.patches import BOKEH_CDN, PANEL_CDN, foreign_urls

    assert foreign_urls('<link href="./static/x.css">', f'const a = "{PANEL_CDN}", b = "{BOKEH_CDN}";') == []
    page = '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">'
    worker = 'importScripts("https://cdn.jsdelivr.net/pyodide/v0.27.7/full/pyodide.js");'
    assert foreign_urls(page, worker) == ["https://cdn.jsdelivr.net/pyodide/v0.27.7/full/pyodide.js",
                                          "https://fonts.googleapis.com/css?family=Roboto"]


@pytest.mark.browser
def test_the_site_is_an_installable_app_whose_service_worker_lists_every_file_it_loads(site):
    import struct

    out, page, worker, info = site
    manifest = json.loads((out / "manifest.webmanifest").read_text())
    assert manifest["start_url"] == "./" and manifest["display"] == "standalone"
    for icon in manifest["icons"]:
        data = (out / icon["src"]).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and icon["type"] == "image/png"
        assert "%dx%d" % struct.unpack(">II", data[16:24]) == icon["sizes"]
    assert '<link rel="manifest" href="./manifest.webmanifest">' in page and "favicon.ico" not in page
    # registered once the app has rendered, so caching does not compete with the start
    assert page.index("navigator.serviceWorker.register('./sw.js')") > page.index("postMessage({'type': 'rendered'})")
    files = json.loads(re.search(r"^const FILES = (\[.*\]);", (out / "sw.js").read_text(), flags=re.M).group(1))
    listed = {path: digest for path, digest in files}
    assert listed["./"] == listed["index.html"]
    for path, digest in files[1:]:
        assert hashlib.sha256((out / path).read_bytes()).hexdigest() == digest, path
    expected = {"index.html", "app.js", "manifest.webmanifest", f"wheels/{info['wheel']}",
                f"wheels/{info['app_wheel']}",
                "pyodide/pyodide.asm.wasm", "pyodide/python_stdlib.zip", "pyodide/pyodide-lock.json",
                "static/panel/1.9.4/dist/assets/arc_spinner.svg"}  # the last one named by a stylesheet only
    expected |= {f"pyodide/{p['file']}" for p in info["packages"].values()}
    expected |= {ref for ref in re.findall(r'\./(static/[^"?]+)', page)}
    assert expected <= set(listed), sorted(expected - set(listed))
    assert "sw.js" not in listed and info["offline"]["files"] == len(files)
    assert info["offline"]["bytes"] < 40e6


def test_the_service_worker_changes_when_a_listed_file_does():
    from sitebuild.pwa import service_worker

    a = service_worker([["./", "0" * 64], ["app.js", "1" * 64]])
    b = service_worker([["./", "0" * 64], ["app.js", "2" * 64]])
    version = re.compile(r'^const VERSION = "([0-9a-f]{16})";', flags=re.M)
    assert version.search(a).group(1) != version.search(b).group(1)
    assert '["app.js","1111' in a and "__TINYRNN" not in a
