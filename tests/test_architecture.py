"""The module rules of docs/architecture.md hold: each library module imports only the siblings its row lists
(imports inside functions count), and the library never imports UI code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "core" / "tinyrnn"
UI_PACKAGES = {"panel", "param", "bokeh", "tinyrnn_app"}


def allowed_imports() -> dict[str, set[str]]:
    """module -> siblings it may import, from the table in docs/architecture.md."""
    rows = re.findall(r"^\| (`\w+`(?:, `\w+`)*) \| [^|]* \|\s*([^|]*?)\s*\|$", (ROOT / "docs" / "architecture.md").read_text(),
                      re.M)
    return {module: {name.strip() for name in allowed.split(",") if name.strip()}
            for modules, allowed in rows for module in re.findall(r"`(\w+)`", modules)}


def module_files(name: str) -> list[Path]:
    """The files of a library module: ``name.py``, or every ``.py`` file of the package ``name/``."""
    package = PACKAGE / name
    return sorted(package.glob("*.py")) if (package / "__init__.py").exists() else [PACKAGE / f"{name}.py"]


def imports_of(path: Path, depth: int = 1) -> tuple[set[str], set[str]]:
    """(siblings imported with relative imports, top-level names of absolute imports) anywhere in the file;
    ``depth`` 2 for a file inside a package (``from ..model``: a sibling; ``from .kernel``: the package itself)."""
    siblings, absolute = set(), set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            if node.level < depth:
                continue  # a module of the same package
            if node.module:
                siblings.add(node.module.split(".")[0])
            else:
                siblings.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            absolute.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            absolute.update(alias.name.split(".")[0] for alias in node.names)
    return siblings, absolute


def library_modules() -> list[str]:
    names = {p.stem for p in PACKAGE.glob("*.py")}
    names |= {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    return sorted(names)


def test_every_library_module_has_a_row():
    assert set(library_modules()) == set(allowed_imports()), "docs/architecture.md's table and the package differ"


@pytest.mark.parametrize("module", library_modules())
def test_a_module_imports_only_what_its_row_allows(module):
    siblings, absolute = set(), set()
    for path in module_files(module):
        found = imports_of(path, depth=2 if path.parent != PACKAGE else 1)
        siblings, absolute = siblings | found[0], absolute | found[1]
    allowed = allowed_imports().get(module, set())
    assert siblings <= allowed, f"{module} imports {sorted(siblings - allowed)}, not allowed by docs/architecture.md"
    assert not absolute & UI_PACKAGES, f"{module} imports UI code: {sorted(absolute & UI_PACKAGES)}"
    assert "tinyrnn" not in absolute, f"{module} imports tinyrnn absolutely; use a relative import"


def test_the_rules_can_fail(tmp_path, monkeypatch):
    """A checkpoint module that imported the trainer would be caught."""
    fake = tmp_path / "checkpoint.py"
    fake.write_text("from .trainer import Trainer\n\ndef f():\n    import panel\n")
    siblings, absolute = imports_of(fake)
    assert siblings == {"trainer"} and "trainer" not in allowed_imports()["checkpoint"]
    assert absolute == {"panel"}
    inner = tmp_path / "engine.py"  # inside a package: ``..`` names a sibling, ``.`` the package's own modules
    inner.write_text("from ..trainer import Trainer\nfrom .kernel import KernelEngine\nfrom . import reference\n")
    assert imports_of(inner, depth=2) == ({"trainer"}, set())
