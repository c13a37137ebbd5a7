"""The browser's flat kernels: a whole tanh-RNN window per WebAssembly call (``window_forward``/``window_backward``
in kernels/simd.c), so that a training step inside Pyodide is a handful of calls instead of autograd's graph over
T small products. ``flat.py`` holds the flat buffer, the autograd primitive and the trainer; ``shards.py`` splits
the window across Web Workers. Inside Pyodide the trainer takes this path by itself where ``flat.applies``.
"""

from __future__ import annotations

import numpy as np

from . import flat, wasm_kernels
from .flat import FlatAdamResult, FlatLayout


class WasmWindow:
    """One (B, T) window on the WebAssembly kernels ``simd`` (a ``wasm_kernels.SimdKernels``): time-major int32
    ids, ``hs`` (T + 1, B, H) with hs[0] = h0, ``logits`` (T·B, V) that become dL/dlogits, the per-row softmax
    terms (float64), and after ``backward`` the flat gradient and ``dh0`` (B, H). ``scale``: summed nats -> loss
    (1 / (T·B) for the window's mean; 1 / (all streams' T·B) for one shard of a window)."""

    def __init__(self, simd, layout: FlatLayout, inputs, targets, h0, scale: float):
        inputs, targets = np.asarray(inputs), np.asarray(targets)
        B, T = flat.check_window(layout, inputs, targets, h0)
        H, V = layout.H, layout.V
        self.simd, self.layout, self.T, self.B, self.scale = simd, layout, T, B, float(scale)
        self.ids = np.ascontiguousarray(inputs.T, dtype=np.int32)
        self.targets = np.ascontiguousarray(targets.T, dtype=np.int32)
        self.hs = np.empty((T + 1, B, H), np.float32)
        self.hs[0] = h0
        self.logits = np.empty((T * B, V), np.float32)
        self.target_terms, self.sums = np.empty(T * B), np.empty(T * B)
        self.work = np.empty((H + V) * H, np.float32)
        self.dh0 = np.zeros((B, H), np.float32)
        self.grad = np.empty(layout.size, np.float32)

    @property
    def h_last(self) -> np.ndarray:
        return self.hs[-1]

    def forward(self, flat_params) -> float:
        """Summed nats of the window (one call); keeps hs and dlogits for ``backward``."""
        flat.check_flat(flat_params, self.layout)
        at, T, B, L = self.simd.address, self.T, self.B, self.layout
        self.simd.exports.window_forward(T, B, L.H, L.V, at(flat_params), at(self.ids), at(self.targets),
                                         at(self.hs), at(self.logits), self.scale, at(self.target_terms),
                                         at(self.sums), at(self.work))
        return float(np.sum(np.log(self.sums) - self.target_terms))

    def backward(self, flat_params) -> np.ndarray:
        """The flat gradient of scale × summed nats (one call)."""
        at, T, B, L = self.simd.address, self.T, self.B, self.layout
        das = np.empty((T, B, L.H), np.float32)
        self.dh0[:] = 0
        self.simd.exports.window_backward(T, B, L.H, L.V, at(flat_params), at(self.ids), at(self.hs),
                                          at(self.logits), at(self.grad), at(self.dh0), at(das))
        return self.grad


class WasmFlatKernels:
    """The WebAssembly module as a set of flat kernels (see flat.py)."""

    name = "WebAssembly SIMD kernels (float32): whole window per call, flat Adam"

    def __init__(self, simd):
        self.simd = simd

    def window(self, layout, inputs, targets, h0, scale) -> WasmWindow:
        return WasmWindow(self.simd, layout, inputs, targets, h0, scale)

    @staticmethod
    def sum_squares(x) -> float:
        return float(np.vdot(x, x))

    def adam(self, flat_params, grad, m, v, scale, beta1, beta2, step, eps) -> FlatAdamResult:
        """Clipping (grad × scale, as optim.clip_by_global_norm rounds it) and the Adam kernel."""
        if scale != 1.0:
            grad = grad * np.float32(scale)
        p, m, v = self.simd.adam(flat_params, grad, m, v, beta1, beta2, step, eps)
        return FlatAdamResult(p, m, v, bool(np.isfinite(p).all()))


ACTIVE = WasmFlatKernels(wasm_kernels.ACTIVE) if wasm_kernels.ACTIVE is not None else None  # None outside Pyodide

