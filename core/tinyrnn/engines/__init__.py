"""What computes a training step: one interface (``Engine``), three implementations, and ``pick``, which chooses
the fastest one that applies here and records why as data (``EngineChoice``).

- ``reference``: numpy + autograd (the traced or the fused engine of ``model.py``), every cell, dtype and
  optimiser; the reference every other engine is tested against.
- ``kernel``: whole windows in compiled kernels on one flat float32 buffer (``flat.FlatLayout``), natively
  (``native``, the optional ``tinyrnn-native`` package) or inside Pyodide (``wasm``).
- ``sharded``: the kernel engine with each window's streams split across Web Workers (``workers``).

An engine owns the parameters and the optimiser's state; ``Trainer`` only calls ``step`` and reads ``params()``
and ``optimizer_state()`` (or ``load``\\ s them, from a checkpoint). A step whose loss, gradient norm or new
parameters are not finite is never committed: the engine keeps what it had and says so (``StepResult.finite``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from . import wasm, wasm_module
from ..optim import make_optimizer
from .base import Engine, EngineChoice, StepResult  # noqa: F401  (the records, one home: base.py)
from .kernel import KernelEngine, kernel_problem
from .reference import ReferenceEngine
from .sharded import ShardedKernels
from .threads import blas_threads  # noqa: F401  (Trainer.run and the CLI bound BLAS with it)

NATIVE_SWITCH = "TINYRNN_NATIVE_KERNELS"  # "0" in the environment: the installed native kernels are not used


@dataclass(frozen=True)
class Platform:
    """What this process can run: a kernel set for whole windows (or None, and why not) and Web Workers to share
    them (``pool``: ``workers.POOL`` with helpers running, or None, and why not)."""

    kernels: object | None
    backend: str = ""  # what the kernels are, e.g. "native kernels (avx2)"
    no_kernels: str = ""
    pool: object | None = None
    no_pool: str = ""

    @classmethod
    def here(cls) -> "Platform":
        if sys.platform == "emscripten":
            from . import workers

            pool = workers.POOL if workers.POOL.host is not None else None
            if wasm.ACTIVE is None:
                return cls(None, "", "the WebAssembly kernels did not load", None, workers.POOL.reason)
            name = "WebAssembly SIMD kernels" + (" (relaxed SIMD)" if wasm_module.VARIANT == "relaxed" else "")
            return cls(wasm.ACTIVE, name, "", pool, "" if pool else workers.POOL.reason)
        return cls(*native_kernel_set())


def native_kernel_set() -> tuple[object | None, str, str]:
    """(the native kernel set, its name, "") when ``tinyrnn-native`` is installed and not switched off, else
    (None, "", why not)."""
    if os.environ.get(NATIVE_SWITCH, "").strip() == "0":
        return None, "", f"native kernels turned off ({NATIVE_SWITCH}=0)"
    from . import native

    if not native.available():
        return None, "", "native kernels not installed (pip install ./native)"
    return native.NATIVE, f"native kernels ({native.library().tinyrnn_variant().decode()})", ""


def pick(config, model_config, params: dict, platform: Platform | None = None) -> Engine:
    """The fastest engine that trains ``config`` here, holding ``params`` (copied) and an empty optimiser state;
    ``engine.choice`` records which and why."""
    platform = platform if platform is not None else Platform.here()
    optimizer = make_optimizer(config.optimizer, config.lr)
    kernels, pool = platform.kernels, platform.pool
    problem = platform.no_kernels or kernel_problem(config, kernels)
    if problem:
        backend = f"numpy ({'traced autograd' if config.engine == 'autograd' else 'fused'} engine)"
        return ReferenceEngine(EngineChoice("reference", backend, 1, (problem,)), model_config, config, optimizer,
                               params)
    if pool is not None and config.batch_size >= 2:
        choice = EngineChoice("sharded", platform.backend, pool.workers)
        return KernelEngine(choice, model_config, config, optimizer, ShardedKernels(kernels, pool), params)
    why_one = "batch size 1 is not split" if pool is not None else platform.no_pool
    choice = EngineChoice("kernel", platform.backend, 1, (why_one,) if why_one else ())
    return KernelEngine(choice, model_config, config, optimizer, kernels, params)
