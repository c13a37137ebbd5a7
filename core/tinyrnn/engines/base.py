"""The records every engine shares: the interface (``Engine``), what a step did (``StepResult``) and which engine
runs and why (``EngineChoice``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np


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
    "native kernels (avx2)", "WebAssembly SIMD kernels"); ``workers``: how many Web Workers share a window;
    ``not_faster``: why each faster engine does not run, fastest first (e.g. "native kernels not installed",
    "not cross-origin isolated", "batch size 1 is not split"); empty when this is the fastest there is."""

    engine: str
    backend: str
    workers: int = 1
    not_faster: tuple[str, ...] = ()
