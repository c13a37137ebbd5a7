"""The native kernel set: a whole training window of any cell in compiled SIMD code, on one flat buffer.

It needs the optional compiled package ``tinyrnn_native`` (``pip install ./native`` from the repository: C with
AVX-512, AVX2 and baseline variants in one build, whose arithmetic is ``kernels/window_impl.h``, shared with the
browser's WebAssembly module). Where it is installed, ``engines.pick`` trains float32 Adam models of every cell on
it (``TINYRNN_NATIVE_KERNELS=0`` turns it off); without it everything runs in numpy.

This module is the native set of flat kernels (``NATIVE``; the protocol is flat.py's): ``supports(cell)``,
``window(layout, inputs, targets, state0, scale)`` (one native call forward: embedding, every time step, output
layer, softmax cross-entropy; one backward: the whole BPTT into the flat gradient), ``sum_squares`` and clipping
+ Adam in one call (``adam``). The numpy code (``ops.py``, ``gru.py``, ``lstm.py``, ``optim.py``) stays the
reference: tests/test_native_kernels.py compares every piece with it to float32 rounding, and the gradients with
the traced autograd engine and finite differences.
"""

from __future__ import annotations

import ctypes
import math
import os

import numpy as np

from ..cells import CELL_NAMES
from ..errors import TinyRNNError
from .flat import FlatAdamResult, FlatLayout, check_flat, check_window

ENV_VAR = "TINYRNN_NATIVE_KERNELS"
_L, _F, _D, _P, _I = ctypes.c_long, ctypes.c_float, ctypes.c_double, ctypes.c_void_p, ctypes.c_int


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
        "tinyrnn_window_size": (_L, [_I, _L, _L, _L, _L]),
        "tinyrnn_window_forward": (_D, [_I, _L, _L, _L, _L, _P, _P, _P, _P, _P, _P]),
        "tinyrnn_window_backward": (None, [_I, _L, _L, _L, _L, _P, _P, _F, _P, _P, _P]),
        "tinyrnn_adam": (_L, [_L, _P, _P, _P, _P, _F, _F, _F, _F, _F, _F, _F, _F, _P, _P, _P]),
        "tinyrnn_sum_squares": (_D, [_L, _P, _F]),
        "tinyrnn_gemm": (None, [_L, _L, _L, _P, _L, _L, _P, _L, _P, _L, _I]),
        "tinyrnn_select": (_I, [_I]),
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
    """The switch bench/ still flips (``engines.pick`` decides what trains: it uses the kernels wherever they are
    installed); returns ``backend()``. Raises ``NativeKernelsUnavailable`` if they are asked for and not
    installed."""
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


# --- the native set of flat kernels (flat.py holds the layout and the protocol) -------------------------------

def clip_bound(clip_value) -> float:
    """The kernels' clipping bound: ``clip_value`` (> 0), or infinity for no clipping by value."""
    return math.inf if clip_value is None else float(clip_value)


class Window:
    """One (B, T) window of the layout's cell: time-major int32 ids and targets, the state it starts from (B, S),
    and one work buffer (``arena``; its size is the kernels' ``tinyrnn_window_size``, its layout theirs) that the
    forward pass fills and the backward pass reads. Every float buffer is a view of one allocation whose address
    is taken once (a numpy array's address costs more than most kernels here at B = 1). After ``forward``:
    ``h_last`` (B, S), the state to carry on; after ``backward``: ``dh0`` (B, S), the gradient of the state it
    started from. ``scale``: the factor from summed nats to the loss (default 1 / (T·B), the window's mean)."""

    def __init__(self, layout: FlatLayout, inputs, targets, state0, scale: float | None = None):
        inputs, targets = np.asarray(inputs), np.asarray(targets)
        B, T = check_window(layout, inputs, targets, state0)
        lib = library()
        self.layout, self.T, self.B, self.cell = layout, T, B, CELL_NAMES.index(layout.cell)
        self.scale = 1.0 / max(T * B, 1) if scale is None else float(scale)
        self.id_arena = np.empty((2, T, B), np.int32)
        self.id_arena[0], self.id_arena[1] = inputs.T, targets.T
        S = layout.S
        sizes = {"work": lib.tinyrnn_window_size(self.cell, T, B, layout.H, layout.V), "state0": B * S,
                 "state_last": B * S, "dstate0": B * S, "grad": layout.size}
        self.arena = np.empty(sum(sizes.values()) + 16, np.float32)
        skip = (-_at(self.arena) // 4) % 16  # the work buffer starts on a 64-byte boundary
        self.at, start = {}, skip
        base, id_base = _at(self.arena), _at(self.id_arena)
        for name, size in sizes.items():
            self.at[name] = base + 4 * start
            setattr(self, name, self.arena[start:start + size])
            start += size
        self.at["ids"], self.at["targets"] = id_base, id_base + 4 * T * B
        self.state0[:] = np.asarray(state0, np.float32).reshape(-1)
        self.h_last, self.dh0 = self.state_last.reshape(B, S), self.dstate0.reshape(B, S)

    def forward(self, flat_params) -> float:
        """Summed nats of the window (one native call); fills the work buffer for ``backward``."""
        layout, at = self.layout, self.at
        check_flat(flat_params, layout)
        return library().tinyrnn_window_forward(self.cell, self.T, self.B, layout.H, layout.V, _at(flat_params),
                                                at["ids"], at["targets"], at["state0"], at["state_last"], at["work"])

    def backward(self, flat_params) -> np.ndarray:
        """The flat gradient of scale × summed nats (one native call), in this window's own buffer."""
        layout, at = self.layout, self.at
        library().tinyrnn_window_backward(self.cell, self.T, self.B, layout.H, layout.V, _at(flat_params),
                                          at["ids"], self.scale, at["grad"], at["dstate0"], at["work"])
        return self.grad


def sum_squares(x, clip_value=None) -> float:
    """sum of x² over a float32 array, each entry first clipped into [-clip_value, clip_value] if given; one
    native call."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    return library().tinyrnn_sum_squares(x.size, _at(x), clip_bound(clip_value)) if x.size else 0.0


def adam(flat_params, grad, m, v, scale, beta1, beta2, step, eps, clip_value=None) -> FlatAdamResult:
    """One Adam step of size ``step`` on clip(grad, ±clip_value) × scale over flat float32 buffers (optim's
    clip_by_value, then clip_by_global_norm's scale, then Adam.compute, in float32 as numpy rounds them), in one
    native call; new arrays, the inputs are not modified."""
    _require(all(_f32(a) and a.shape == flat_params.shape for a in (flat_params, grad, m, v)),
             lambda: "mismatched Adam buffers")
    n = flat_params.size
    out = np.empty((3, n), np.float32)
    base = _at(out)
    bad = library().tinyrnn_adam(n, _at(flat_params), _at(grad), _at(m), _at(v), clip_bound(clip_value), scale,
                                 beta1, 1 - beta1, beta2, 1 - beta2, step, eps, base, base + 4 * n, base + 8 * n)
    return FlatAdamResult(out[0], out[1], out[2], bad == 0)


class _NativeKernels:
    """The native package as a set of flat kernels (flat.py's protocol)."""

    window = Window
    sum_squares = staticmethod(sum_squares)
    adam = staticmethod(adam)

    @staticmethod
    def supports(cell: str) -> bool:
        """Whether these kernels train ``cell`` here: every cell, once the package is installed."""
        return cell in CELL_NAMES and available()

    @property
    def name(self) -> str:
        return f"native kernels ({library().tinyrnn_variant().decode()})"


NATIVE = _NativeKernels()
