"""The one compiled module of tinyrnn-native (metadata in pyproject.toml)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "tinyrnn_native._kernels",
    sources=["tinyrnn_native/kernels.c"],
    depends=["tinyrnn_native/step_impl.h"],
    # -fno-math-errno lets sqrtf vectorise; no -ffast-math: the float32 arithmetic stays IEEE (Adam bit for bit)
    extra_compile_args=["-O3", "-fno-math-errno", "-std=gnu11"],
    libraries=["m"],
)])
