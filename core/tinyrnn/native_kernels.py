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
That machinery is ``flat.py``, shared with the browser's WebAssembly kernels; this module is the native set of
kernels behind it (``NATIVE``) and the switch. The numpy code (``ops.py``, ``optim.py``) stays the reference: tests/test_native_kernels.py compares every piece
with it to float32 rounding, and the gradients with the traced autograd engine and finite differences.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

from .errors import TinyRNNError
from .flat import FlatAdamResult, FlatLayout, adam_step_size, check_flat, check_window  # noqa: F401

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


# --- the native set of flat kernels (flat.py holds the layout, the autograd primitive and the trainer) ------

class Window:
    """One (B, T) window's fixed inputs (time-major int32 ids, h0) and, after the forward pass, what its backward
    pass reads: ``hs`` (T + 1, B, H) with hs[0] = h0 and ``dlogits`` (T·B, V padded to whole vectors); after the
    backward pass ``dh0`` (B, H). Every float buffer is a view of one allocation (``arena``, whose address is
    taken once: a numpy array's address costs more than most kernels here at B = 1). ``scale``: the factor from
    summed nats to the loss (1 / (T·B) for the window's mean)."""

    def __init__(self, layout: FlatLayout, inputs, targets, h0, scale: float | None = None):
        inputs, targets = np.asarray(inputs), np.asarray(targets)
        B, T = check_window(layout, inputs, targets, h0)
        H, V, Vp = layout.H, layout.V, padded(layout.V)
        self.layout, self.T, self.B = layout, T, B
        self.scale = 1.0 / max(T * B, 1) if scale is None else float(scale)
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

    def forward(self, flat) -> float:
        """Summed nats of the window (one native call); keeps hs and dlogits for ``backward``."""
        layout, at = self.layout, self.at
        check_flat(flat, layout)
        return library().tinyrnn_window_forward(self.T, self.B, layout.H, layout.V, _at(flat), at["ids"],
                                                at["targets"], at["hs"], at["dlogits"], at["work"])

    def backward(self, flat) -> np.ndarray:
        """The flat gradient of scale × summed nats (the kernel's dlogits are the mean's: g rescales them)."""
        layout, at = self.layout, self.at
        g = self.scale * self.T * self.B
        library().tinyrnn_window_backward(self.T, self.B, layout.H, layout.V, _at(flat), at["ids"], at["hs"],
                                          at["dlogits"], g, at["grad"], at["dh0"], at["das"], at["work"])
        return self.grad


def padded(V: int) -> int:
    """The native kernels' row stride of logits: whole 16-float vectors."""
    return (V + 15) // 16 * 16


def sum_squares(x) -> float:
    """sum of x² over a float32 array, in one native call."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    return library().tinyrnn_sum_squares(x.size, _at(x))


def adam(flat, grad, m, v, scale, beta1, beta2, step, eps) -> FlatAdamResult:
    """One Adam step of size ``step`` on ``grad * scale`` over flat float32 buffers, in one native call."""
    _require(all(_f32(a) and a.shape == flat.shape for a in (flat, grad, m, v)), lambda: "mismatched Adam buffers")
    n = flat.size
    out = np.empty((3, n), np.float32)
    base = _at(out)
    bad = library().tinyrnn_adam(n, _at(flat), _at(grad), _at(m), _at(v), scale, beta1, 1 - beta1, beta2,
                                 1 - beta2, step, eps, base, base + 4 * n, base + 8 * n)
    return FlatAdamResult(out[0], out[1], out[2], bad == 0)


class _NativeKernels:
    """The native package as a set of flat kernels (flat.FlatKernels)."""

    window = Window
    sum_squares = staticmethod(sum_squares)
    adam = staticmethod(adam)

    @property
    def name(self) -> str:
        return backend()


NATIVE = _NativeKernels()


def gemm(a, b) -> np.ndarray:
    """``a @ b`` for float32 a (M, K), b (K, N) with the native product (for the tests)."""
    _require(a.ndim == b.ndim == 2 and a.shape[1] == b.shape[0] and _f32(a) and _f32(b),
             lambda: f"{a.shape} @ {b.shape}")
    (M, K), N = a.shape, b.shape[1]
    out = np.zeros((M, N), np.float32)
    if out.size and K:
        library().tinyrnn_gemm(M, N, K, _at(a), K, 1, _at(b), N, _at(out), N, 0)
    return out


def flat_adam(flat, grad, m, v, t: int, lr: float, beta1: float, beta2: float, eps: float,
              grad_scale: float = 1.0) -> FlatAdamResult:
    """One Adam step (``optim.Adam``'s float32 arithmetic, step ``t`` >= 1) on ``grad * grad_scale`` over flat
    buffers, in one native call; returns new arrays, the inputs are not modified."""
    return adam(flat, grad, m, v, grad_scale, beta1, beta2, adam_step_size(lr, beta1, beta2, t), eps)

