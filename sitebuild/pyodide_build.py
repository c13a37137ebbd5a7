"""The Python 3.12 venv with pyodide-build (``pyodide lockfile add-wheels``, ``pyodide py-compile``).

    python -m sitebuild.pyodide_build      # make (or check) the venv and say where it is

Pyodide 0.27.7 runs CPython 3.12, and pyodide-build needs Python >= 3.12, so the build tools run it in a venv of
their own: ``$TINYRNN_PYODIDE_BUILD_VENV``, else ``.cache/pyodide-build-venv``. Its Python is ``$PYTHON312``, else
pyenv's 3.12, else ``python3.12`` on PATH. A venv that already holds the pinned versions is used as it is.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from sitebuild.common import REPO, log, run
from sitebuild.pins import PYODIDE_BUILD

# Runs in the venv: exit 0 if every requirement given is installed at a version it allows.
_CHECK = """\
import sys, importlib.metadata as md
from packaging.requirements import Requirement
try:
    ok = all(Requirement(r).specifier.contains(md.version(Requirement(r).name), prereleases=True) for r in sys.argv[1:])
except md.PackageNotFoundError:
    ok = False
sys.exit(0 if ok else 1)
"""


def _has_pins(venv: Path) -> bool:
    python = venv / "bin" / "python"
    if not (python.exists() and (venv / "bin" / "pyodide").exists()):
        return False
    return subprocess.run([python, "-c", _CHECK, *PYODIDE_BUILD], capture_output=True).returncode == 0


def _python312() -> str:
    py = os.environ.get("PYTHON312")
    if not py:  # pyenv's own install first (its shim fails unless 3.12 is selected), then PATH
        root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
        cands = sorted(root.glob("3.12*/bin/python3.12")) if root.exists() else []
        py = str(cands[-1]) if cands else shutil.which("python3.12")
    if not py:
        raise SystemExit("Python 3.12 is needed for pyodide-build: set PYTHON312=/path/to/python3.12")
    return py


def pyodide_build_venv() -> Path:
    """The venv's path, after creating it or installing the pins (PYODIDE_BUILD) if it lacks them."""
    venv = Path(os.environ.get("TINYRNN_PYODIDE_BUILD_VENV", REPO / ".cache" / "pyodide-build-venv"))
    if _has_pins(venv):
        return venv
    if not (venv / "bin" / "pip").exists():
        run([_python312(), "-m", "venv", venv])
    run([venv / "bin" / "pip", "install", "-q", *PYODIDE_BUILD])
    if not _has_pins(venv):
        raise SystemExit(f"{venv}: installing {PYODIDE_BUILD} did not give those versions")
    return venv


def pyodide(*args) -> None:
    """Run the ``pyodide`` command line of the venv."""
    run([pyodide_build_venv() / "bin" / "pyodide", *args])


def py_compile_wheel(wheel: Path) -> Path:
    """``pyodide py-compile`` (Python 3.12 bytecode, as Pyodide 0.27.7 runs): the same wheel with .pyc instead of
    .py, written beside it as ``<name>-<version>-cp312-none-any.whl``; returns that file."""
    pyodide("py-compile", "--silent", wheel)
    name, version = wheel.name.split("-")[:2]
    compiled = wheel.with_name(f"{name}-{version}-cp312-none-any.whl")
    if not compiled.is_file():
        raise SystemExit(f"pyodide py-compile did not write {compiled.name}")
    log(f"py-compiled {compiled.name}")
    return compiled


if __name__ == "__main__":
    log(f"pyodide-build venv ready: {pyodide_build_venv()}")
    sys.exit(0)
