"""What computes a training step: one interface (``Engine``), three implementations, and ``pick``, which chooses
the fastest one that applies here and records why as data (``EngineChoice``).

- ``reference``: numpy + autograd (the traced or the fused engine of ``model.py``), every cell, dtype and
  optimiser; the reference every other engine is tested against.
- ``kernel``: whole windows in compiled kernels on one flat float32 buffer (``flat.FlatLayout``), natively
  (``native_kernels``, the optional ``tinyrnn-native`` package) or inside Pyodide (``wasm_flat``).
- ``sharded``: the kernel engine with each window's streams split across Web Workers (``shards``).

An engine owns the parameters and the optimiser's state; ``Trainer`` only calls ``step`` and reads ``params()``
and ``optimizer_state()`` (or ``load``\\ s them, from a checkpoint). A step whose loss, gradient norm or new
parameters are not finite is never committed: the engine keeps what it had and says so (``StepResult.finite``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from .. import wasm_flat
from .kernel import KernelEngine, kernel_problem
from .reference import ReferenceEngine
from .sharded import ShardedKernels
from .threads import blas_threads  # noqa: F401  (Trainer.run and the CLI bound BLAS with it)

NATIVE_SWITCH = "TINYRNN_NATIVE_KERNELS"  # "0" in the environment: the installed native kernels are not used


class StepResult(NamedTuple):
    """What one ``Engine.step`` did: the window's mean loss (nats/char), the global gradient norm before clipping,
    the state after the window (B, S) and whether the update was committed (loss, norm and new parameters all
    finite; if not, the engine still holds the parameters and optimiser state it had before)."""

    loss: float
    grad_norm: float
    state: np.ndarray
    finite: bool


class Engine(Protocol):
    """One training step over parameters and optimiser state that the engine owns."""

    choice: "EngineChoice"

    def step(self, inputs, targets, state) -> StepResult:
        """One window (ids (B, T), state (B, S)): loss, gradients, clipping and one optimiser update."""

    def params(self) -> dict:
        """{name: array} in ``ModelConfig.param_shapes()`` order; writing into an array changes the model."""

    def optimizer_state(self) -> dict:
        """The optimiser's state as ``optim`` keeps it: {"t": int, "<slot>/<name>": array}, or {} before a step."""

    def load(self, params: dict, optimizer_state: dict) -> None:
        """Take these parameters and optimiser state (copied into the engine's own storage)."""


@dataclass(frozen=True)
class EngineChoice:
    """Which engine computes the steps and why, as data (the page and the CLI word it).

    ``engine``: "reference", "kernel" or "sharded"; ``backend``: what runs it (e.g. "numpy (fused engine)",
    "native kernels (avx2)", "WebAssembly kernels"); ``workers``: how many Web Workers share a window;
    ``not_faster``: why each faster engine does not run, fastest first (e.g. "native kernels not installed",
    "not cross-origin isolated", "batch size 1 is not split"); empty when this is the fastest there is."""

    engine: str
    backend: str
    workers: int = 1
    not_faster: tuple[str, ...] = ()


@dataclass(frozen=True)
class Platform:
    """What this process can run: a kernel set for whole windows (or None, and why not) and Web Workers to share
    them (``pool``: ``shards.POOL`` with helpers running, or None, and why not)."""

    kernels: object | None
    backend: str = ""  # what the kernels are, e.g. "native kernels (avx2)"
    no_kernels: str = ""
    pool: object | None = None
    no_pool: str = ""

    @classmethod
    def here(cls) -> "Platform":
        if sys.platform == "emscripten":
            from .. import shards

            pool = shards.POOL if shards.POOL.host is not None else None
            if wasm_flat.ACTIVE is None:
                return cls(None, "", "the WebAssembly kernels did not load", None, shards.POOL.reason)
            return cls(wasm_flat.ACTIVE, "WebAssembly kernels", "", pool, "" if pool else shards.POOL.reason)
        return cls(*native_kernel_set())


def native_kernel_set() -> tuple[object | None, str, str]:
    """(the native kernel set, its name, "") when ``tinyrnn-native`` is installed and not switched off, else
    (None, "", why not)."""
    if os.environ.get(NATIVE_SWITCH, "").strip() == "0":
        return None, "", f"native kernels turned off ({NATIVE_SWITCH}=0)"
    from .. import native_kernels

    if not native_kernels.available():
        return None, "", "native kernels not installed (pip install ./native)"
    return native_kernels.NATIVE, f"native kernels ({native_kernels.library().tinyrnn_variant().decode()})", ""


def pick(config, model_config, params: dict, platform: Platform | None = None) -> Engine:
    """The fastest engine that trains ``config`` here, holding ``params`` (copied) and an empty optimiser state;
    ``engine.choice`` records which and why."""
    from ..optim import make_optimizer

    platform = platform if platform is not None else Platform.here()
    optimizer = make_optimizer(config.optimizer, config.lr)
    why_not = []
    kernels = platform.kernels
    problem = platform.no_kernels or kernel_problem(config, kernels)
    if not problem:
        if platform.pool is not None and config.batch_size >= 2:
            sharded = ShardedKernels(kernels, platform.pool)
            choice = EngineChoice("sharded", platform.backend, platform.pool.workers)
            return KernelEngine(choice, model_config, config, optimizer, sharded, params)
        if platform.pool is not None:
            why_not.append("batch size 1 is not split")
        elif platform.no_pool:
            why_not.append(platform.no_pool)
        return KernelEngine(EngineChoice("kernel", platform.backend, 1, tuple(why_not)), model_config, config,
                            optimizer, kernels, params)
    why_not.append(problem)
    backend = f"numpy ({'traced autograd' if config.engine == 'autograd' else 'fused'} engine)"
    return ReferenceEngine(EngineChoice("reference", backend, 1, tuple(why_not)), model_config, config, optimizer,
                           params)
