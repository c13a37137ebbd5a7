"""The wheel people install (and the browser loads) is pure Python, small, and carries the corpus and the
browser kernels."""

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
    # the browser's WebAssembly kernels, byte for byte the module in the source tree, with their sources and the
    # helper workers' script
    kernels = ROOT / "core" / "tinyrnn" / "engines" / "kernels"
    for source in ("simd.wasm", "simd.c", "vector.h", "window_impl.h", "window_cells.h", "shards.js"):
        shipped = zipfile.ZipFile(wheel).read(f"tinyrnn/engines/kernels/{source}")
        assert shipped == (kernels / source).read_bytes(), source
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist") and "extra" not in line]
    assert sorted(requires) == ["Requires-Dist: autograd>=1.7.0", "Requires-Dist: numpy>=2.0.2",
                                'Requires-Dist: threadpoolctl>=3.5; sys_platform != "emscripten"']


def test_import_does_not_need_tqdm_or_ui_packages():
    code = ("import sys; sys.modules['tqdm'] = None; sys.modules['panel'] = None; sys.modules['bokeh'] = None; "
            "import tinyrnn; print(len(tinyrnn.default_corpus()))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_installed_wheel_trains_and_samples_outside_the_source_tree(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=600)
    code = ("import tinyrnn, pathlib; assert 'site-packages' in tinyrnn.__file__, tinyrnn.__file__; "
            "t = tinyrnn.Trainer(tinyrnn.default_corpus(), tinyrnn.TrainConfig(hidden_size=8, batch_size=2)); "
            "t.run(3); print(len(t.sample(20, seed=0))); "
            "from tinyrnn.engines import wasm_module, workers; from importlib import resources; "
            "assert wasm_module.wasm_bytes()[:4] == b'\\0asm'; "
            "assert 'MAX_HELPERS' in resources.files('tinyrnn.engines').joinpath(workers.HOST_FILE).read_text()")
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "20"  # and the kernels' files load from the installed package
