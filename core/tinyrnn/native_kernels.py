"""The optional native fast path: a whole training window in compiled SIMD code, one flat parameter buffer.

Off by default, and an explicit opt-in: ``use_native_kernels()`` (or ``TINYRNN_NATIVE_KERNELS=1`` in the
environment) after ``pip install 'tinyrnn[native]'``, which brings the compiled ``tinyrnn_native`` package
(``native/`` in the repository: C with AVX-512, AVX2 and baseline variants in one build). Without it everything
runs in numpy as before; the default wheel stays pure Python.

What it changes, for float32 training of the tanh RNN with Adam (``Trainer`` asks ``flat_trainer``):
- the parameters live in one flat buffer (``FlatLayout``: W_hx, W_hh, b_h, W_yh, b_y in ``model.PARAM_NAMES``
  order); ``trainer.params`` is a dict of views into it, so checkpoints and sampling see the usual arrays;
- the loss of a window is one autograd primitive of that buffer (``window_loss``): its forward runs the whole
  forward pass (embedding, every time step, output layer, softmax cross-entropy) in one native call, its VJP the
  whole backward pass in another, so autograd differentiates one node instead of a tuple of six arrays;
- the global norm is one call over the flat gradient, clipping and Adam together another.
The numpy code (``ops.py``, ``optim.py``) stays the reference: tests/test_native_kernels.py compares every piece
with it to float32 rounding, and the gradients with the traced autograd engine and finite differences.
"""

from __future__ import annotations

import ctypes
import math
import os
from typing import NamedTuple

import numpy as np
from autograd import value_and_grad
from autograd.extend import defvjp, primitive

from .errors import TinyRNNError
from .model import PARAM_NAMES

ENV_VAR = "TINYRNN_NATIVE_KERNELS"
_F32P = ctypes.POINTER(ctypes.c_float)
_I32P = ctypes.POINTER(ctypes.c_int32)
_L, _F, _D, _P = ctypes.c_long, ctypes.c_float, ctypes.c_double, ctypes.c_void_p


class NativeKernelsUnavailable(TinyRNNError, ImportError):
    """The native kernels were asked for, but the optional ``tinyrnn_native`` package is not installed."""


def _load_library():
    try:
        import tinyrnn_native
    except ImportError as exc:
        raise NativeKernelsUnavailable(
            f"the native kernels need the optional package tinyrnn-native (pip install 'tinyrnn[native]'): {exc}"
        ) from exc
    lib = ctypes.CDLL(tinyrnn_native.LIBRARY)
    signatures = {
        "tinyrnn_window_forward": (_D, [_L, _L, _L, _L, _P, _P, _P, _P, _P, _P]),
        "tinyrnn_window_backward": (None, [_L, _L, _L, _L, _P, _P, _P, _P, _F, _P, _P, _P, _P]),
        "tinyrnn_adam": (_L, [_L, _P, _P, _P, _P, _F, _F, _F, _F, _F, _F, _F, _P, _P, _P]),
        "tinyrnn_sum_squares": (_D, [_L, _P]),
        "tinyrnn_gemm": (None, [_L, _L, _L, _P, _L, _L, _P, _L, _P, _L, ctypes.c_int]),
        "tinyrnn_select": (ctypes.c_int, [ctypes.c_int]),
        "tinyrnn_variant": (ctypes.c_char_p, []),
    }
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


_LIB = None
_ENABLED = False


def library():
    """The loaded native library (ctypes); raises ``NativeKernelsUnavailable`` without tinyrnn-native."""
    global _LIB
    if _LIB is None:
        _LIB = _load_library()
    return _LIB


def available() -> bool:
    """True when the optional native kernels are installed and load."""
    try:
        library()
    except (NativeKernelsUnavailable, OSError):
        return False
    return True


def use_native_kernels(enabled: bool = True) -> str:
    """Opt in (or out) of the native fast path for the trainers built from now on; returns what computes.
    Raises ``NativeKernelsUnavailable`` if they are asked for and not installed."""
    global _ENABLED
    if enabled:
        library()
    _ENABLED = bool(enabled)
    return backend()


def enabled() -> bool:
    """Whether new trainers use the native fast path (``use_native_kernels`` or the environment variable)."""
    global _ENABLED
    if not _ENABLED and os.environ.get(ENV_VAR, "") == "1":
        use_native_kernels()
    return _ENABLED


def backend() -> str:
    """What computes a float32 training step when the native path is in use, e.g. for the benchmarks."""
    if not _ENABLED:
        return "off"
    return f"native kernels ({library().tinyrnn_variant().decode()}): whole window per call, flat Adam"


def _at(a, _float=ctypes.c_float, _address=ctypes.addressof) -> int:
    """Where a (C-contiguous, writable, non-empty) array's data starts; 3x cheaper than ``a.ctypes.data``."""
    return _address(_float.from_buffer(a))


def _require(ok: bool, what) -> None:
    """Raise ValueError naming ``what()`` (a callable: the message is only built when needed) unless ``ok``."""
    if not ok:
        raise ValueError(f"native kernel called with {what()}")


def _f32(a) -> bool:
    return a.dtype == np.float32 and a.flags.c_contiguous


# --- one flat buffer for all parameters ------------------------------------------------------------------

class FlatLayout:
    """Where each parameter lives in the flat buffer: (H, V) fix every shape (``ModelConfig.param_shapes``)."""

    def __init__(self, hidden_size: int, vocab_size: int):
        H, V = self.H, self.V = int(hidden_size), int(vocab_size)
        self.V_padded = (V + 15) // 16 * 16  # the kernels' row stride of logits: whole 16-float vectors
        shapes = {"W_hx": (H, V), "W_hh": (H, H), "b_h": (H,), "W_yh": (V, H), "b_y": (V,)}
        self.shapes = {k: shapes[k] for k in PARAM_NAMES}
        self.slices, start = {}, 0
        for k, shape in self.shapes.items():
            size = int(np.prod(shape))
            self.slices[k] = slice(start, start + size)
            start += size
        self.size = start

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


# --- the window's loss as one autograd primitive ---------------------------------------------------------

class Window:
    """One (B, T) window's fixed inputs (time-major int32 ids, h0) and, after the forward pass, what its backward
    pass reads: ``hs`` (T + 1, B, H) with hs[0] = h0 and ``dlogits`` (T·B, V padded to whole vectors); after the
    backward pass ``dh0`` (B, H). Every float buffer is a view of one allocation (``arena``, whose address is
    taken once: a numpy array's address costs more than most kernels here at B = 1)."""

    def __init__(self, layout: FlatLayout, inputs, targets, h0):
        inputs, targets = np.asarray(inputs), np.asarray(targets)
        _require(inputs.ndim == 2 and inputs.shape == targets.shape,
                 lambda: f"inputs {inputs.shape}, targets {targets.shape}")
        B, T = inputs.shape
        H, V, Vp = layout.H, layout.V, layout.V_padded
        _require(np.shape(h0) == (B, H), lambda: f"h0 of shape {np.shape(h0)}, expected {(B, H)}")
        if inputs.size and (min(inputs.min(), targets.min()) < 0 or max(inputs.max(), targets.max()) >= V):
            raise IndexError(f"ids must lie in [0, {V}), got {min(inputs.min(), targets.min())}.."
                             f"{max(inputs.max(), targets.max())}")
        self.layout, self.T, self.B = layout, T, B
        self.id_arena = np.empty((2, T, B), np.int32)
        self.id_arena[0], self.id_arena[1] = inputs.T, targets.T
        sizes = {"hs": (T + 1) * B * H, "dlogits": T * B * Vp, "dh0": B * H, "das": T * B * H,
                 "work": (V + H + Vp) * H, "grad": layout.size}
        self.arena = np.empty(sum(sizes.values()), np.float32)
        self.at, start = {}, 0
        base, id_base = _at(self.arena), _at(self.id_arena)
        for name, size in sizes.items():
            self.at[name] = base + 4 * start
            setattr(self, name, self.arena[start:start + size])
            start += size
        self.at["ids"], self.at["targets"] = id_base, id_base + 4 * T * B
        self.hs = self.hs.reshape(T + 1, B, H)
        self.hs[0] = h0
        self.dh0 = self.dh0.reshape(B, H)

    @property
    def h_last(self) -> np.ndarray:
        return self.hs[-1]


@primitive
def window_loss(flat, window: Window) -> float:
    """Mean cross-entropy (nats/char) of ``window`` under the flat float32 parameters ``flat`` (one native call)."""
    layout = window.layout
    _require(_f32(flat) and flat.shape == (layout.size,), lambda: f"parameters {flat.shape} {flat.dtype}")
    T, B, at = window.T, window.B, window.at
    total = library().tinyrnn_window_forward(T, B, layout.H, layout.V, _at(flat), at["ids"], at["targets"],
                                             at["hs"], at["dlogits"], at["work"])
    return total / (T * B)


def _window_loss_vjp(ans, flat, window):
    layout, at = window.layout, window.at
    T, B, H, V = window.T, window.B, layout.H, layout.V

    def vjp(g):  # once per forward pass: its buffers (hs, dlogits) are read, the gradient written in the arena
        library().tinyrnn_window_backward(T, B, H, V, _at(flat), at["ids"], at["hs"], at["dlogits"], float(g),
                                          at["grad"], at["dh0"], at["das"], at["work"])
        return window.grad

    return vjp


defvjp(window_loss, _window_loss_vjp)


class FlatLossAndGrad(NamedTuple):
    loss: float
    grad: np.ndarray  # (layout.size,), the layout of the parameters
    h_last: np.ndarray  # (B, H)
    dh0: np.ndarray  # (B, H)


def loss_and_flat_grad(flat, layout: FlatLayout, inputs, targets, h0) -> FlatLossAndGrad:
    """Loss and its gradient w.r.t. the flat parameters (autograd through ``window_loss``), for ids (B, T)."""
    window = Window(layout, inputs, targets, h0)
    loss, grad = value_and_grad(window_loss)(flat, window)
    return FlatLossAndGrad(float(loss), grad, window.h_last, window.dh0)


def sum_squares(x) -> float:
    """sum of x² over a float32 array, in one native call."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    return library().tinyrnn_sum_squares(x.size, _at(x))


def gemm(a, b) -> np.ndarray:
    """``a @ b`` for float32 a (M, K), b (K, N) with the native product (for the tests)."""
    _require(a.ndim == b.ndim == 2 and a.shape[1] == b.shape[0] and _f32(a) and _f32(b),
             lambda: f"{a.shape} @ {b.shape}")
    (M, K), N = a.shape, b.shape[1]
    out = np.zeros((M, N), np.float32)
    if out.size and K:
        library().tinyrnn_gemm(M, N, K, _at(a), K, 1, _at(b), N, _at(out), N, 0)
    return out


class FlatAdamResult(NamedTuple):
    params: np.ndarray
    m: np.ndarray
    v: np.ndarray
    finite: bool  # every new parameter is finite


def flat_adam(flat, grad, m, v, t: int, lr: float, beta1: float, beta2: float, eps: float,
              grad_scale: float = 1.0) -> FlatAdamResult:
    """One Adam step (``optim.Adam``'s float32 arithmetic, step ``t`` >= 1) on ``grad * grad_scale`` over flat
    buffers, in one native call; returns new arrays, the inputs are not modified."""
    _require(all(_f32(a) and a.shape == flat.shape for a in (flat, grad, m, v)), lambda: "mismatched Adam buffers")
    step = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
    n = flat.size
    out = np.empty((3, n), np.float32)
    base = _at(out)
    bad = library().tinyrnn_adam(n, _at(flat), _at(grad), _at(m), _at(v), grad_scale, beta1, 1 - beta1, beta2,
                                 1 - beta2, step, eps, base, base + 4 * n, base + 8 * n)
    return FlatAdamResult(out[0], out[1], out[2], bad == 0)


# --- what the Trainer uses --------------------------------------------------------------------------------

class FlatTrainer:
    """The native step for a ``Trainer``: params and Adam's slots as dicts of views into flat buffers.

    ``gradients`` then ``update`` replace loss_and_grads + global_norm + clip_by_global_norm + Adam.compute; they
    accept any params/state dicts (e.g. from a checkpoint) and flatten them once when they are not their own."""

    def __init__(self, layout: FlatLayout, optimizer, clip_norm):
        self.layout, self.optimizer, self.clip_norm = layout, optimizer, clip_norm
        self._params = self._state = None  # the dicts this object made last (their buffers below)
        self._flat = self._m = self._v = None

    @staticmethod
    def _same(made, given) -> bool:
        """Whether ``given`` still holds exactly the arrays of the dict ``made`` (views into our buffers)."""
        return made is not None and all(given.get(k) is v for k, v in made.items())

    def _flat_params(self, params: dict) -> np.ndarray:
        if not self._same(self._params, params):
            self._flat = self.layout.flatten(params)
            self._params = self.layout.views(self._flat)
        return self._flat

    def gradients(self, params: dict, inputs, targets, hidden):
        """(loss, global gradient norm, h_last) of one window; keeps the gradient for ``update``."""
        result = loss_and_flat_grad(self._flat_params(params), self.layout, inputs, targets, hidden)
        self._grad = result.grad
        return result.loss, math.sqrt(sum_squares(result.grad)), result.h_last

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
        new = flat_adam(flat, self._grad, self._m, self._v, t, opt.lr, opt.beta1, opt.beta2, opt.eps, scale)
        new_params = self.layout.views(new.params)
        new_state = {"t": t, **self.layout.views(new.m, "m/"), **self.layout.views(new.v, "v/")}
        # our own copies of the two mappings: the caller's dicts may be edited (an entry replaced) later
        self._params, self._state = dict(new_params), dict(new_state)
        self._flat, self._m, self._v = new.params, new.m, new.v
        return new_params, new_state, new.finite


def flat_trainer(config, model_config, optimizer):
    """A ``FlatTrainer`` when the native path is enabled and applies (float32, the tanh RNN, Adam, fused engine,
    no clipping by value), else None: then the numpy path trains."""
    applies = (config.dtype == "float32" and getattr(config, "cell", "rnn") == "rnn" and config.optimizer == "adam"
               and config.engine == "fused" and config.clip_value is None)
    if not (applies and enabled()):
        return None
    return FlatTrainer(FlatLayout(model_config.hidden_size, model_config.vocab_size), optimizer, config.clip_norm)
