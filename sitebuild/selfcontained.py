"""The Pyodide folder the site serves (``selfcontained/pyodide/`` in the mirror): the core, the site's lock and
exactly the packages the app loads, with three start-up optimizations (docs/deploy.md, "Start-up time"): our pure
wheels and the standard library compiled to .pyc (``pyodide py-compile``), the dependencies panel and bokeh declare
but the app never imports left out of the lock (``NOT_LOADED``), and panel's and bokeh's wheels slimmed
(``SLIM_WHEELS``). The official package files keep their verified bytes.
"""
from __future__ import annotations

import json
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from sitebuild.common import canon, link_or_copy, log, sha256, stamp, write_atomic
from sitebuild.pins import CORE_FILES, NOT_LOADED, PYODIDE_BUILD, PYODIDE_VERSION, ROOTS, SLIM_WHEELS
from sitebuild.pyodide_build import pyodide


@dataclass(frozen=True)
class Options:
    """The start-up optimizations (each can be turned off to measure what it gains)."""

    py_compile: bool = True
    slim: bool = True
    load_all: bool = False

    @property
    def not_loaded(self) -> frozenset[str]:
        return frozenset() if self.load_all else NOT_LOADED

    @property
    def slim_wheels(self) -> dict:
        return SLIM_WHEELS if self.slim else {}


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
        zout.writestr(zin.getinfo(record), "\n".join(lines) + "\n")
    tmp.replace(path)
    return {"dropped_files": dropped, "dropped_bytes": dropped_bytes, "drop": list(drop), "keep": list(keep)}


def closure(lock: dict, roots: list[str]) -> list[str]:
    """The canonical names of ``roots`` and everything they depend on in ``lock``, sorted."""
    pkgs = lock["packages"]
    seen, todo = set(), list(roots)
    while todo:
        n = canon(todo.pop())
        if n in seen:
            continue
        if n not in pkgs:
            raise SystemExit(f"package {n!r} needed by the app is not in the lock")
        seen.add(n)
        todo.extend(pkgs[n]["depends"])
    return sorted(seen)


def site_lock(merged: dict, not_loaded: frozenset[str]) -> dict:
    """The site's lock: the merged lock, with the dependencies Panel and Bokeh declare but this app never imports
    removed, so ``loadPackage`` does not fetch and link them (pandas alone is ~6 MB and dozens of wasm modules)."""
    lock = json.loads(json.dumps(merged))
    for name in ("panel", "bokeh"):
        entry = lock["packages"][name]
        entry["depends"] = [d for d in entry["depends"] if d not in not_loaded]
    return lock


def _write_lock(folder: Path, lock: dict) -> None:
    write_atomic(folder / "pyodide-lock.json", json.dumps(lock, indent=1, sort_keys=True) + "\n")


def layout_selfcontained(dest: Path, full: Path, merged: dict, official: dict[str, str], ours: list[Path],
                         standin_names: set[str], options: Options) -> None:
    """selfcontained/pyodide: core + site lock + the app's packages, flat (the site's indexURL), and
    ``manifest.json`` (each package's version, file, sha256 and origin)."""
    sc = dest / "selfcontained" / "pyodide"
    lock = site_lock(merged, options.not_loaded)
    need = closure(lock, ROOTS)
    done = stamp(sc.parent / ".stamp", layout_selfcontained,
                 {"lock": lock, "need": need, "pyodide-build": PYODIDE_BUILD, "core": CORE_FILES,
                  "py_compile": options.py_compile, "slim_wheels": options.slim_wheels})
    if done.fresh(sc / "pyodide-lock.json", dest / "manifest.json"):
        log(f"cached self-contained Pyodide ({len(need)} packages)")
        return
    shutil.rmtree(sc, ignore_errors=True)
    sc.mkdir(parents=True)
    for f in CORE_FILES:
        if f == "python_stdlib.zip" and options.py_compile:
            shutil.copy2(full / f, sc / f)  # a real copy: py-compile rewrites it (never the mirror's official file)
        elif f != "pyodide-lock.json":
            link_or_copy(full / f, sc / f)
    ours_files = {p.name: p for p in ours}
    origins = {}
    for n in need:
        fn = lock["packages"][n]["file_name"]
        if fn in ours_files:
            src = ours_files[fn]
            origins[n] = "stand-in (local build)" if fn in standin_names else "PyPI"
        elif fn in official:
            src = full / fn
            origins[n] = "official (sha256 = npm lock)"
        else:
            raise SystemExit(f"{n}: no file for {fn}")
        if sha256(src) != lock["packages"][n]["sha256"]:
            raise SystemExit(f"{fn}: sha256 does not match the merged lock")
        link_or_copy(src, sc / fn)
    _write_lock(sc, lock)
    if options.py_compile:
        # Our pure wheels and the standard library (python_stdlib.zip, shipped as .py like Pyodide's "full"
        # distribution; its "pyc" variant compiles it the same way). Official package files keep their bytes.
        keep = [lock["packages"][n]["file_name"] for n in need if origins[n].startswith("official")]
        t = time.monotonic()
        pyodide("py-compile", "--silent", "--exclude", ",".join(keep), sc)
        lock = json.loads((sc / "pyodide-lock.json").read_text())
        with zipfile.ZipFile(sc / "python_stdlib.zip") as z:
            if any(n.endswith(".py") for n in z.namelist()):
                raise SystemExit("py-compile left .py files in python_stdlib.zip")
        log(f"py-compiled {len(need) - len(keep)} pure wheels and python_stdlib.zip (official package files "
            f"untouched) in {time.monotonic() - t:.1f}s")
    slimmed = {}
    for n, spec in options.slim_wheels.items():
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
        _write_lock(sc, lock)
    manifest = {"pyodide": PYODIDE_VERSION, "packages": {}, "not_loaded": sorted(options.not_loaded),
                "python_stdlib.zip": "py-compiled" if options.py_compile else "official", "slimmed": slimmed}
    for n in need:
        e = lock["packages"][n]
        if not (sc / e["file_name"]).is_file() or sha256(sc / e["file_name"]) != e["sha256"]:
            raise SystemExit(f"{n}: {e['file_name']} is missing or does not match the site lock")
        compiled = "-cp312-none-any.whl" in e["file_name"]
        manifest["packages"][n] = {"version": e["version"], "file": e["file_name"], "sha256": e["sha256"],
                                   "origin": origins[n] + (", py-compiled" if compiled else "")
                                   + (", slimmed" if n in slimmed else "")}
    write_atomic(dest / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    done.done()
    size = sum(p.stat().st_size for p in sc.iterdir()) / 1e6
    log(f"self-contained Pyodide: {len(need)} packages + core, {size:.1f} MB in {sc.relative_to(dest)}")
    for n in need:
        m = manifest["packages"][n]
        log(f"  {n:22s} {m['version']:16s} {m['origin']}")
    log(f"not loaded by the site (declared by panel/bokeh, never imported): {sorted(options.not_loaded)}")
