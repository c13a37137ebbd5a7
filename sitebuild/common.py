"""Helpers shared by the site build's steps: logging, subprocesses, hashes, names, files and cached steps."""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def log(msg: str) -> None:
    print(f"[sitebuild] {msg}", flush=True)


def run(cmd: list, **kw) -> None:
    """Run ``cmd`` (logged), raising on failure."""
    log("$ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def canon(name: str) -> str:
    """A distribution name in canonical form (PEP 503): ``Markdown_It.py`` -> ``markdown-it-py``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def write_atomic(path: Path, data: str | bytes, durable: bool = True) -> None:
    """Write ``path`` through a temporary file in the same folder, renamed over it (so a reader never sees half a
    file and a hard-linked old copy keeps its bytes); ``durable``: fsync before the rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` at ``dst`` (a copy across file systems); an identical ``dst`` is left alone, a different
    one is replaced (never written through, so a hard-linked original keeps its bytes)."""
    if dst.exists():
        if dst.stat().st_size == src.stat().st_size and sha256(dst) == sha256(src):
            return
        dst.unlink()
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def link_tree(src: Path, dst: Path, skip: set[str] = frozenset()) -> int:
    """Hard-link (or copy) the file tree ``src`` into ``dst``, leaving out the folders ``skip`` (relative to
    ``src``); returns the number of files."""
    n = 0
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        dirs[:] = [d for d in dirs if str(rel / d) not in skip]
        for f in files:
            link_or_copy(Path(root) / f, dst / rel / f)
            n += 1
    return n


def find_wheel(folder: Path, name: str, version: str | None = None) -> Path | None:
    """The wheel of distribution ``name`` (any spelling) in ``folder``, at ``version`` if given."""
    for p in sorted(folder.glob("*.whl")):
        parts = p.name.split("-")
        if canon(parts[0]) == canon(name) and (version is None or parts[1] == version):
            return p
    return None


def build_wheel(project: Path, out_dir: Path, sources: list[str] | None = None, pip: Path | None = None) -> Path:
    """Build the pure wheel of the Python project in ``project`` into ``out_dir`` and return it. ``sources`` (paths
    relative to ``project``): copy only these to a scratch folder first, so the build leaves nothing behind in the
    source tree; ``None`` builds in place. ``pip``: the pip to build with (default: this interpreter's)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sitebuild-wheel-") as tmp:
        if sources is not None:
            scratch = Path(tmp) / project.name
            for rel in sources:
                if (project / rel).is_dir():
                    shutil.copytree(project / rel, scratch / rel, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    (scratch / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(project / rel, scratch / rel)
            project = scratch
        built = Path(tmp) / "out"
        cmd = [pip] if pip else [sys.executable, "-m", "pip"]
        run([*cmd, "wheel", "-q", "--no-deps", "--wheel-dir", built, project])
        wheels = sorted(built.glob("*-none-any.whl"))
        if len(wheels) != 1:
            raise SystemExit(f"building {project.name}: expected one pure wheel, found {[w.name for w in wheels]}")
        target = out_dir / wheels[0].name
        shutil.move(wheels[0], target)
    return target


@dataclass(frozen=True)
class Stamp:
    """A build step's record of completion: ``fresh()`` when the step's inputs and code are what they were when
    it last finished (``done()``) and its outputs exist. See :func:`stamp`."""

    path: Path
    key: str

    def fresh(self, *outputs: Path) -> bool:
        return (self.path.is_file() and self.path.read_text() == self.key
                and all(Path(o).exists() for o in outputs))

    def done(self) -> None:
        write_atomic(self.path, self.key)


def stamp(path: Path, step, inputs) -> Stamp:
    """The stamp at ``path`` for the function ``step`` run on ``inputs`` (anything JSON can encode: versions, pins,
    sha256 of input files). The key covers the source of the module defining ``step``, so a change to a step's code
    reruns it without hand-made version keys."""
    code = Path(inspect.getsourcefile(step)).read_bytes()
    blob = json.dumps([step.__qualname__, inputs], sort_keys=True, default=str).encode()
    return Stamp(path, hashlib.sha256(hashlib.sha256(code).digest() + blob).hexdigest())
