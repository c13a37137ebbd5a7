"""The contract between the kernel engine (``engines.kernel``) and a set of kernels: one flat float32 buffer for
all parameters (``FlatLayout``), and what a kernel set provides. Two sets exist: the optional native package
(``native``) and, inside Pyodide, the browser's WebAssembly module (``wasm``); ``engines.sharded``
splits a window across Web Workers on top.

What a set of kernels provides:
- ``window(layout, inputs, targets, state0, scale)`` -> a window object holding the kernels' buffers, with
  ``forward(flat) -> summed nats``, ``backward(flat) -> flat gradient`` (of the summed nats times ``scale``),
  ``h_last`` (B, S) and ``dh0`` (B, S), for ids (B, T) and a state ``state0`` (B, S);
- ``sum_squares(x) -> float`` and ``adam(flat, grad, m, v, scale, b1, b2, step, eps) -> FlatAdamResult``: one
  Adam step of size ``step`` on ``grad × scale`` (with a keyword ``clip_value``, if the set takes it: on
  ``clip(grad, -clip_value, clip_value) × scale``);
- optionally ``supports(cell) -> bool``: the cells it has whole-window kernels for (without it: the tanh RNN).
The numpy code (``ops.py``, ``optim.py``) stays the reference; every set of kernels is tested against it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..model import ModelConfig


class FlatLayout:
    """Where each parameter lives in the flat buffer: every parameter of a ``cell`` model, row-major, concatenated
    in ``ModelConfig.param_shapes()`` order (the cell's ``param_names``); (H, V, cell) fix every shape.
    S (``state_size``) is the width of the state carried between windows: H, or 2H for the LSTM's [h | c]."""

    def __init__(self, hidden_size: int, vocab_size: int, cell: str = "rnn"):
        H, V = self.H, self.V = int(hidden_size), int(vocab_size)
        config = ModelConfig(V, H, cell)
        self.cell, self.S = cell, config.state_size()
        self.shapes = config.param_shapes()
        self.slices, start = {}, 0
        for k, shape in self.shapes.items():
            size = int(np.prod(shape))
            self.slices[k] = slice(start, start + size)
            start += size
        self.size = start

    @classmethod
    def of(cls, model_config: ModelConfig) -> "FlatLayout":
        return cls(model_config.hidden_size, model_config.vocab_size, model_config.cell)

    def flatten(self, arrays: dict, prefix: str = "") -> np.ndarray:
        """A new float32 buffer (size,) holding ``arrays[prefix + name]`` for every parameter (zeros if absent)."""
        flat = np.zeros(self.size, np.float32)
        for k, s in self.slices.items():
            if prefix + k in arrays:
                flat[s] = np.asarray(arrays[prefix + k], dtype=np.float32).reshape(-1)
        return flat

    def views(self, flat: np.ndarray, prefix: str = "") -> dict:
        """``{prefix + name: view}`` of ``flat``: the parameters (or Adam's slots) without copying."""
        return {prefix + k: flat[s].reshape(self.shapes[k]) for k, s in self.slices.items()}


def check_window(layout: FlatLayout, inputs, targets, h0) -> tuple[int, int]:
    """(B, T) of a window after checking it: ids (B, T) in [0, V), the state h0 (B, S). The kernels trust their arguments."""
    if not (inputs.ndim == 2 and inputs.shape == targets.shape):
        raise ValueError(f"flat kernels called with inputs {inputs.shape}, targets {targets.shape}")
    B, T = inputs.shape
    if np.shape(h0) != (B, layout.S):
        raise ValueError(f"flat kernels called with h0 of shape {np.shape(h0)}, expected {(B, layout.S)} (B, S)")
    if inputs.size and (min(inputs.min(), targets.min()) < 0 or max(inputs.max(), targets.max()) >= layout.V):
        raise IndexError(f"ids must lie in [0, {layout.V}), got {min(inputs.min(), targets.min())}.."
                         f"{max(inputs.max(), targets.max())}")
    return B, T


def check_flat(flat, layout: FlatLayout) -> None:
    if not (flat.dtype == np.float32 and flat.flags.c_contiguous and flat.shape == (layout.size,)):
        raise ValueError(f"flat kernels called with parameters {flat.shape} {flat.dtype}")


class FlatAdamResult(NamedTuple):
    params: np.ndarray
    m: np.ndarray
    v: np.ndarray
    finite: bool  # every new parameter is finite


def adam_step_size(lr: float, beta1: float, beta2: float, t: int) -> float:
    """Adam's bias-corrected step at step ``t`` >= 1, as optim.Adam computes it."""
    return lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
