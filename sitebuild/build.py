"""Build the tinyrnn in-browser trainer as a static site.

    python -m sitebuild.build --mirror .cache/mirror --out build/site

One site: the one ``make run`` serves, the browser tests drive and GitHub Pages publishes; every file it loads comes
from its own origin (the build fails if the page or the worker would load anything from another host).

Steps: build our two wheels (tinyrnn from the repository root, tinyrnn-app from ``webapp/``), compile them to .pyc,
convert the entry script ``webapp/app.py`` with ``panel convert --to pyodide-worker`` (it pre-renders the page by
running the script, importing this tree's tinyrnn and tinyrnn_app), fix the generated page and worker
(sitebuild/patches.py), and write the site: ``index.html``, ``app.js``, ``wheels/``, the mirror's Pyodide folder
(``pyodide/``), Bokeh's and Panel's JS/CSS (``static/``), and the web app's manifest, icons and service worker
(sitebuild/pwa.py). ``BUILD-INFO.json`` says what went in. See docs/deploy.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from sitebuild.common import REPO, build_wheel, canon, link_tree, log, run, write_atomic
from sitebuild.patches import foreign_urls, patch_page, patch_worker
from sitebuild.pins import BOKEH_VERSION, PANEL_VERSION, PYODIDE_VERSION
from sitebuild.pwa import ICON_SIZES, icon_png, manifest, precache_list, service_worker
from sitebuild.pyodide_build import py_compile_wheel

# Our wheels, in the order the page installs them: (project folder, what its build reads, copied to a scratch
# folder so that the build leaves nothing in the source tree; None: built in place, its leftovers are ignored).
OUR_WHEELS = [(REPO, None), (REPO / "webapp", ["pyproject.toml", "tinyrnn_app"])]


def wheel_deps(wheel: Path) -> list[str]:
    """The unconditional ``Requires-Dist`` names of a wheel (canonical)."""
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    return [canon(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line.split(":", 1)[1]).group(1))
            for line in text.splitlines() if line.startswith("Requires-Dist:") and ";" not in line]


def convert(app: Path, workdir: Path, title: str) -> tuple[str, str]:
    """``panel convert`` the entry script; returns the page and the worker script. The converter runs the script to
    pre-render the page, so it imports this tree's tinyrnn and tinyrnn_app (whatever else is installed)."""
    path = os.pathsep.join(p for p in [str(REPO / "core"), str(REPO / "webapp"), os.environ.get("PYTHONPATH")] if p)
    run([sys.executable, "-m", "panel", "convert", app, "--to", "pyodide-worker", "--out", workdir,
         "--title", title], env=dict(os.environ, PYTHONPATH=path))
    return (workdir / f"{app.stem}.html").read_text(), (workdir / f"{app.stem}.js").read_text()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "build" / "site")
    ap.add_argument("--mirror", type=Path, default=REPO / ".cache" / "mirror",
                    help="offline mirror made by python -m sitebuild.mirror")
    ap.add_argument("--app", type=Path, default=REPO / "webapp" / "app.py")
    ap.add_argument("--title", default="tinyrnn: train a character-level RNN in your browser")
    ap.add_argument("--no-py-compile", action="store_true",
                    help="ship our wheels as .py (to measure the start-up gain)")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    out = args.out.resolve()
    mirror_dir = args.mirror.resolve()
    sc_pyodide = mirror_dir / "selfcontained" / "pyodide"
    if not (sc_pyodide / "pyodide-lock.json").exists():
        raise SystemExit(f"no offline mirror at {mirror_dir}: run  python -m sitebuild.mirror --dest {args.mirror}")

    with tempfile.TemporaryDirectory(prefix="tinyrnn-site-") as tmp:
        wheels = []
        for project, sources in OUR_WHEELS:
            wheel = build_wheel(project, Path(tmp) / "wheels", sources)
            log(f"built {wheel.name}")
            wheels.append(wheel if args.no_py_compile else py_compile_wheel(wheel))
        page, worker = convert(args.app.resolve(), Path(tmp) / "convert", args.title)
        wheel_bytes = {w.name: w.read_bytes() for w in wheels}
        deps = [d for w in wheels for d in wheel_deps(w)]

    site_packages = set(json.loads((sc_pyodide / "pyodide-lock.json").read_text())["packages"])
    worker = patch_worker(worker, list(wheel_bytes), site_packages, deps)
    page = patch_page(page)
    foreign = foreign_urls(page, worker)
    if foreign:
        raise SystemExit(f"sitebuild: the page would load files from other hosts: {foreign}")

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    write_atomic(out / "index.html", page)
    write_atomic(out / f"{args.app.stem}.js", worker)
    for name, data in wheel_bytes.items():
        write_atomic(out / "wheels" / name, data)
    write_atomic(out / ".nojekyll", "")  # GitHub Pages: serve files as they are
    n = link_tree(sc_pyodide, out / "pyodide")
    n += link_tree(mirror_dir / "cdn.bokeh.org" / "bokeh" / "release", out / "static" / "bokeh" / "release")
    n += link_tree(mirror_dir / "cdn.holoviz.org" / "panel" / PANEL_VERSION / "dist",
                   out / "static" / "panel" / PANEL_VERSION / "dist", skip={"wheels"})
    write_atomic(out / "manifest.webmanifest", manifest())
    for size in ICON_SIZES:
        write_atomic(out / f"icon-{size}.png", icon_png(size))
    offline = precache_list(out, page, worker)
    write_atomic(out / "sw.js", service_worker(offline))
    mirror_manifest = json.loads((mirror_dir / "manifest.json").read_text())
    packages = mirror_manifest["packages"]
    stand_ins = sorted(k for k, v in packages.items() if v["origin"].startswith("stand-in"))
    info = {"mode": "self-contained", "pyodide": PYODIDE_VERSION, "panel": PANEL_VERSION, "bokeh": BOKEH_VERSION,
            "wheel": wheels[0].name, "app_wheel": wheels[1].name, "packages": packages,
            "stand_ins": stand_ins, "slimmed": mirror_manifest.get("slimmed", {}),
            "offline": {"files": len(offline), "bytes": sum((out / f).stat().st_size for f, _ in offline[1:])}}
    write_atomic(out / "BUILD-INFO.json", json.dumps(info, indent=1) + "\n")
    log(f"{n} files from the mirror (Pyodide core, {len(packages)} packages, Bokeh/Panel JS); "
        f"stand-ins included: {', '.join(stand_ins)}")
    log(f"service worker: {len(offline)} files ({info['offline']['bytes'] / 1e6:.1f} MB) cached for offline use")
    log(f"wrote {out} in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
