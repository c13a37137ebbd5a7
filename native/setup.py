"""The one compiled module of tinyrnn-native (metadata in pyproject.toml).

Its arithmetic is the header core/tinyrnn/engines/kernels/window_impl.h (shared with the browser's WebAssembly build),
found relative to this file: build from the repository (``pip install ./native``, an in-tree build)."""

from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent / "core" / "tinyrnn" / "engines" / "kernels"  # vector.h, window_impl.h, window_cells.h
if not (SHARED / "window_impl.h").is_file():
    raise SystemExit(f"tinyrnn-native builds from the tinyrnn repository: {SHARED}/window_impl.h is missing")

setup(ext_modules=[Extension(
    "tinyrnn_native._kernels",
    sources=["tinyrnn_native/kernels.c"],
    include_dirs=[str(SHARED)],
    depends=[str(SHARED / name) for name in ("vector.h", "window_impl.h", "window_cells.h")],
    # -fno-math-errno lets sqrtf vectorise; no -ffast-math: the float32 arithmetic stays IEEE (Adam bit for bit)
    extra_compile_args=["-O3", "-fno-math-errno", "-std=gnu11"],
)])
