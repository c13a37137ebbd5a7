"""Pure-Python wheels standing in for compiled packages that no registry serves for wasm (docs/deploy.md).

markupsafe and pyyaml: their own sdists from PyPI, built with the C extension made to fail (both fall back to pure
Python; SDIST_STANDINS in pins.py says how). nh3: the package in ``sitebuild/standin_src/nh3`` (it sanitizes with
bleach), built by this module whenever its source changes.
"""
from __future__ import annotations

import os
from pathlib import Path

from sitebuild.common import build_wheel, find_wheel, log, run, sha256, stamp
from sitebuild.pins import SDIST_STANDINS
from sitebuild.pyodide_build import pyodide_build_venv

NH3_SOURCE = Path(__file__).resolve().parent / "standin_src" / "nh3"
NH3_FILES = ["pyproject.toml", "nh3/__init__.py"]


def build_sdist_standin(wheels: Path, name: str) -> Path:
    """The pure wheel of ``name`` at its pinned version, from its sdist (kept once built)."""
    version, env = SDIST_STANDINS[name]
    wheel = find_wheel(wheels, name, version)
    if wheel is None:
        pip = pyodide_build_venv() / "bin" / "pip"
        run([pip, "wheel", "-q", "--no-deps", f"--no-binary={name}", "-w", wheels, f"{name}=={version}"],
            env=dict(os.environ, **env))
        wheel = find_wheel(wheels, name, version)
    if wheel is None or not wheel.name.endswith("-none-any.whl"):
        raise SystemExit(f"stand-in {name}: no pure-Python wheel built ({wheel and wheel.name})")
    return wheel


def build_nh3_standin(wheels: Path) -> Path:
    """The nh3 stand-in's wheel, rebuilt when its source changes."""
    done = stamp(wheels / ".nh3-standin.stamp", build_nh3_standin,
                 {f: sha256(NH3_SOURCE / f) for f in NH3_FILES})
    wheel = find_wheel(wheels, "nh3")
    if wheel is not None and done.fresh(wheel):
        return wheel
    if wheel is not None:
        wheel.unlink()
    wheel = build_wheel(NH3_SOURCE, wheels, sources=NH3_FILES, pip=pyodide_build_venv() / "bin" / "pip")
    done.done()
    log(f"built the nh3 stand-in {wheel.name}")
    return wheel


def build_standins(wheels: Path) -> list[Path]:
    """Every stand-in's wheel, in ``wheels``."""
    return [*(build_sdist_standin(wheels, name) for name in SDIST_STANDINS), build_nh3_standin(wheels)]
