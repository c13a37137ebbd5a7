"""The browser's flat kernels: a whole window of any cell per WebAssembly call (``window_forward`` /
``window_backward``, the shared arithmetic of kernels/window_impl.h compiled into kernels/simd.wasm), so that a
training step inside Pyodide is a handful of calls instead of autograd's graph over T small products. This is
the WebAssembly set of flat kernels (flat.py's protocol); ``workers.py`` splits a window across Web Workers.
"""

from __future__ import annotations

import math

import numpy as np

from . import flat, wasm_module
from ..cells import CELL_NAMES
from .flat import FlatAdamResult, FlatLayout


def clip_bound(clip_value) -> float:
    """The kernels' clipping bound: ``clip_value`` (> 0), or infinity for no clipping by value."""
    return math.inf if clip_value is None else float(clip_value)


class WasmWindow:
    """One (B, T) window of the layout's cell on the WebAssembly kernels ``simd`` (a ``wasm_module.SimdKernels``):
    time-major int32 ids and targets, the state it starts from (B, S) and one work buffer (the module's
    ``window_size`` floats, laid out by it) that ``forward`` fills and ``backward`` reads. After ``forward``:
    ``h_last`` (B, S); after ``backward``: the flat gradient and ``dh0`` (B, S). ``scale``: summed nats -> loss
    (1 / (T·B) for the window's mean; 1 / (all streams' T·B) for one shard of a window)."""

    def __init__(self, simd, layout: FlatLayout, inputs, targets, state0, scale: float):
        inputs, targets = np.asarray(inputs), np.asarray(targets)
        B, T = flat.check_window(layout, inputs, targets, state0)
        self.simd, self.layout, self.T, self.B, self.scale = simd, layout, T, B, float(scale)
        self.cell = CELL_NAMES.index(layout.cell)
        self.ids = np.ascontiguousarray(inputs.T, dtype=np.int32)
        self.targets = np.ascontiguousarray(targets.T, dtype=np.int32)
        self.state0 = np.array(state0, dtype=np.float32, order="C")
        self.h_last = np.empty((B, layout.S), np.float32)
        self.dh0 = np.empty((B, layout.S), np.float32)
        self.work = np.empty(simd.window_size(self.cell, T, B, layout.H, layout.V), np.float32)
        self.grad = np.empty(layout.size, np.float32)

    def forward(self, flat_params) -> float:
        """Summed nats of the window (one call); fills the work buffer for ``backward``."""
        flat.check_flat(flat_params, self.layout)
        at, L = self.simd.address, self.layout
        return float(self.simd.exports.window_forward(self.cell, self.T, self.B, L.H, L.V, at(flat_params),
                                                      at(self.ids), at(self.targets), at(self.state0),
                                                      at(self.h_last), at(self.work)))

    def backward(self, flat_params) -> np.ndarray:
        """The flat gradient of scale × summed nats (one call), in this window's own buffer."""
        at, L = self.simd.address, self.layout
        self.simd.exports.window_backward(self.cell, self.T, self.B, L.H, L.V, at(flat_params), at(self.ids),
                                          self.scale, at(self.grad), at(self.dh0), at(self.work))
        return self.grad


class WasmFlatKernels:
    """The WebAssembly module as a set of flat kernels (flat.py's protocol)."""

    name = "WebAssembly SIMD kernels (float32): whole window per call, flat Adam"

    def __init__(self, simd):
        self.simd = simd

    @staticmethod
    def supports(cell: str) -> bool:
        """Every cell has whole-window kernels in the module."""
        return cell in CELL_NAMES

    def window(self, layout, inputs, targets, state0, scale) -> WasmWindow:
        return WasmWindow(self.simd, layout, inputs, targets, state0, scale)

    def sum_squares(self, x, clip_value=None) -> float:
        """sum of x² over a float32 array, each entry first clipped into ±clip_value if given (one call)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        return float(self.simd.exports.sum_squares(x.size, self.simd.address(x), clip_bound(clip_value)))

    def add_into(self, x, y) -> None:
        """x += y for float32 arrays of one size (one call; the sharded engine adds the helpers' gradients)."""
        if not (x.shape == y.shape and wasm_module.usable(x, y)):
            raise ValueError(f"add_into called with {x.shape} {x.dtype} and {y.shape} {y.dtype}")
        self.simd.exports.add_into(x.size, self.simd.address(x), self.simd.address(y))

    def adam(self, flat_params, grad, m, v, scale, beta1, beta2, step, eps, clip_value=None) -> FlatAdamResult:
        """Clipping by value, the global norm's scale and one Adam step in one call (optim's arithmetic)."""
        p, m, v, bad = self.simd.clipped_adam(flat_params, grad, m, v, beta1, beta2, step, eps,
                                              clip_bound(clip_value), scale)
        return FlatAdamResult(p, m, v, bad == 0)


ACTIVE = WasmFlatKernels(wasm_module.ACTIVE) if wasm_module.ACTIVE is not None else None  # None outside Pyodide

