"""The wheel people install (and the browser loads) is pure Python, small, and carries the corpus."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)], check=True,
                   capture_output=True, timeout=600)
    (path,) = out.glob("*.whl")
    return path


def test_wheel_is_pure_small_and_complete(wheel):
    assert wheel.name.endswith("-py3-none-any.whl") and wheel.name.startswith("tinyrnn-")
    assert wheel.stat().st_size <= 200 * 1024
    names = zipfile.ZipFile(wheel).namelist()
    assert "tinyrnn/corpora/macbeth.txt" in names
    assert "tinyrnn/model.py" in names and "tinyrnn/cli.py" in names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist") and "extra" not in line]
    assert sorted(requires) == ["Requires-Dist: autograd>=1.7.0", "Requires-Dist: numpy>=2.0.2"]


def test_import_does_not_need_tqdm_or_ui_packages():
    code = ("import sys; sys.modules['tqdm'] = None; sys.modules['panel'] = None; sys.modules['bokeh'] = None; "
            "import tinyrnn; print(len(tinyrnn.default_corpus()))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
