"""The flat fast path: one buffer for all parameters, a window's loss as one autograd primitive, clip + Adam in one
call. Two sets of kernels run it: the optional native package (``native_kernels``, opt-in) and, inside Pyodide,
the browser's WebAssembly module (``wasm_kernels``); ``shards`` splits a window across Web Workers on top.

What a set of kernels provides (``FlatKernels``):
- ``window(layout, inputs, targets, h0, scale)`` -> a window object holding the kernels' buffers, with
  ``forward(flat) -> summed nats``, ``backward(flat) -> flat gradient`` (of the loss times ``scale``), ``h_last``;
- ``sum_squares(x) -> float`` and ``adam(flat, grad, m, v, scale, b1, b2, step, eps) -> FlatAdamResult``.
The numpy code (``ops.py``, ``optim.py``) stays the reference; every set of kernels is tested against it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from autograd import value_and_grad
from autograd.extend import defvjp, primitive

from .model import ModelConfig


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


# --- the window's loss as one autograd primitive ---------------------------------------------------------

@primitive
def window_loss(flat, window) -> float:
    """Mean cross-entropy (nats/char) of ``window`` under the flat float32 parameters ``flat`` (one kernel call)."""
    return window.forward(flat) * window.scale


def _window_loss_vjp(ans, flat, window):
    def vjp(g):  # once per forward pass: its buffers are read, the gradient written into the window's own
        grad = window.backward(flat)
        return grad if g == 1.0 else grad * np.float32(g)

    return vjp


defvjp(window_loss, _window_loss_vjp)


class FlatLossAndGrad(NamedTuple):
    loss: float
    grad: np.ndarray  # (layout.size,), the layout of the parameters
    h_last: np.ndarray  # (B, H)
    dh0: np.ndarray  # (B, H)


def window_loss_and_grad(flat, window) -> FlatLossAndGrad:
    """Loss and its gradient w.r.t. the flat parameters (autograd through ``window_loss``)."""
    loss, grad = value_and_grad(window_loss)(flat, window)
    return FlatLossAndGrad(float(loss), grad, window.h_last, window.dh0)


class FlatAdamResult(NamedTuple):
    params: np.ndarray
    m: np.ndarray
    v: np.ndarray
    finite: bool  # every new parameter is finite


def adam_step_size(lr: float, beta1: float, beta2: float, t: int) -> float:
    """Adam's bias-corrected step at step ``t`` >= 1, as optim.Adam computes it."""
    return lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)


# --- what the Trainer uses --------------------------------------------------------------------------------

def applies(config) -> bool:
    """Whether a training configuration can take the flat path: float32, the tanh RNN, Adam, the fused engine and
    no clipping by value (clipping by global norm is part of the flat Adam call)."""
    return (config.dtype == "float32" and getattr(config, "cell", "rnn") == "rnn" and config.optimizer == "adam"
            and config.engine == "fused" and config.clip_value is None)


class FlatTrainer:
    """A ``Trainer``'s step on flat buffers: params and Adam's slots as dicts of views into them.

    ``gradients`` then ``update`` replace loss_and_grads + global_norm + clip_by_global_norm + Adam.compute; they
    accept any params/state dicts (e.g. from a checkpoint) and flatten them once when they are not their own."""

    def __init__(self, layout: FlatLayout, optimizer, clip_norm, kernels):
        self.layout, self.optimizer, self.clip_norm, self.kernels = layout, optimizer, clip_norm, kernels
        self._params = self._state = None  # the dicts this object made last (their buffers below)
        self._flat = self._m = self._v = self._grad = None

    @property
    def backend(self) -> str:
        return self.kernels.name

    @staticmethod
    def _same(made, given) -> bool:
        """Whether ``given`` still holds exactly the arrays of the dict ``made`` (views into our buffers)."""
        return made is not None and all(given.get(k) is v for k, v in made.items())

    def _flat_params(self, params: dict) -> np.ndarray:
        if not self._same(self._params, params):
            self._flat = self.layout.flatten(params)
            self._params = self.layout.views(self._flat)
        return self._flat

    def window_gradient(self, flat, inputs, targets, hidden) -> FlatLossAndGrad:
        """The loss and flat gradient of one window (``shards.ShardedTrainer`` splits this across workers)."""
        inputs, targets = np.asarray(inputs), np.asarray(targets)
        window = self.kernels.window(self.layout, inputs, targets, hidden, 1.0 / max(inputs.size, 1))
        return window_loss_and_grad(flat, window)

    def gradients(self, params: dict, inputs, targets, hidden):
        """(loss, global gradient norm, h_last) of one window; keeps the gradient for ``update``."""
        result = self.window_gradient(self._flat_params(params), inputs, targets, hidden)
        self._grad = result.grad
        return result.loss, math.sqrt(self.kernels.sum_squares(result.grad)), result.h_last

    def update(self, params: dict, state: dict, norm: float):
        """(new params, new optimiser state, all finite) after clipping to ``clip_norm`` and one Adam step."""
        flat = self._flat_params(params)
        if not self._same(self._state, state):
            self._m, self._v = self.layout.flatten(state, "m/"), self.layout.flatten(state, "v/")
        opt = self.optimizer
        t = int(state.get("t", 0)) + 1
        scale = 1.0
        if self.clip_norm is not None and math.isfinite(norm) and norm > self.clip_norm:
            scale = self.clip_norm / norm
        new = self.kernels.adam(flat, self._grad, self._m, self._v, scale, opt.beta1, opt.beta2,
                                adam_step_size(opt.lr, opt.beta1, opt.beta2, t), opt.eps)
        new_params = self.layout.views(new.params)
        new_state = {"t": t, **self.layout.views(new.m, "m/"), **self.layout.views(new.v, "v/")}
        # our own copies of the two mappings: the caller's dicts may be edited (an entry replaced) later
        self._params, self._state = dict(new_params), dict(new_state)
        self._flat, self._m, self._v = new.params, new.m, new.v
        return new_params, new_state, new.finite
