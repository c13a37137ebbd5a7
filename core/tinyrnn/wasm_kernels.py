"""float32 kernels in WebAssembly SIMD for the browser (Pyodide), where numpy has no BLAS.

``kernels/simd.c``, compiled to ``kernels/simd.wasm`` by ``tools/build_kernel.py``, holds one matrix product, the
two time loops of the recurrence (ops.recurrence_forward / recurrence_backward), the softmax cross-entropy and
Adam's update. The module imports Pyodide's own linear memory, so it reads and writes numpy's buffers in place:
nothing is copied. Inside Pyodide, bptt and optim ask ``for_arrays`` and use these kernels for C-ordered float32
arrays; everything else runs their numpy code, which is also the reference the kernels are tested against
(tests/test_wasm_kernels.py runs this same ``.wasm`` natively with wasmtime). Every method checks shapes and
dtypes before the call: the kernels trust their arguments, and a wrong size would read or write outside an array.
"""

from __future__ import annotations

import sys
from importlib import resources

import numpy as np

WASM_FILE = "kernels/simd.wasm"


def wasm_bytes() -> bytes:
    """The compiled module shipped in the wheel."""
    return resources.files("tinyrnn").joinpath(WASM_FILE).read_bytes()


def usable(*arrays) -> bool:
    """True when every array is C-contiguous float32: the only layout the kernels read."""
    return all(a.dtype == np.float32 and a.flags.c_contiguous for a in arrays)


def address(a) -> int:
    """Where ``a``'s data starts in the WebAssembly memory (inside Pyodide: numpy's own pointer)."""
    return a.__array_interface__["data"][0]


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(f"WebAssembly kernel called with {what}")


class SimdKernels:
    """The module's exports with numpy-shaped signatures. ``exports`` has ``sgemm``, ``rnn_forward``,
    ``rnn_backward``, ``softmax_xent`` and ``adam``; ``address(array)`` gives an array's offset in the module's
    memory. Arrays must be C-contiguous float32 (``usable``) unless stated otherwise."""

    def __init__(self, exports, address=address):
        self._sgemm, self._forward, self._backward = exports.sgemm, exports.rnn_forward, exports.rnn_backward
        self._softmax_xent, self._adam = exports.softmax_xent, exports.adam
        self._address = address

    def _product(self, M, N, K, a, sa_i, sa_k, b):
        """C (M, N) with C[i, j] = sum_k a.flat[i*sa_i + k*sa_k] * b[k, j]."""
        _require(a.ndim == b.ndim == 2 and a.size == M * K and b.shape == (K, N) and usable(a, b),
                 f"mismatched or unusable operands {a.shape} {a.dtype}, {b.shape} {b.dtype}")
        out = np.empty((M, N), dtype=np.float32)
        if M and N:
            at = self._address
            self._sgemm(M, N, K, at(a), sa_i, sa_k, at(b), N, at(out))
        return out

    def mm(self, a, b):
        """``a @ b``: a (M, K), b (K, N)."""
        (M, K), N = a.shape, b.shape[1]
        return self._product(M, N, K, a, K, 1, b)

    def at_b(self, a, b):
        """``a.T @ b``: a (K, M), b (K, N); the transpose is read through strides, not copied."""
        (K, M), N = a.shape, b.shape[1]
        return self._product(M, N, K, a, 1, M, b)

    def a_bt(self, a, b):
        """``a @ b.T``: a (M, K), b (N, K). b (a weight matrix, small) is transposed once into a copy."""
        return self.mm(a, np.ascontiguousarray(b.T))

    def rnn_forward(self, a, W_hh_t, h0):
        """As ``ops.forward_time_loop``: in place over ``a`` (T, B, H); ``W_hh_t`` (H, H), ``h0`` (B, H)."""
        T, B, H = a.shape
        _require(W_hh_t.shape == (H, H) and h0.shape == (B, H) and usable(a, W_hh_t, h0),
                 f"shapes {a.shape}, {W_hh_t.shape}, {h0.shape}")
        at = self._address
        self._forward(T, B, H, at(a), at(W_hh_t), at(h0))
        return a

    def rnn_backward(self, das, dhs, W_hh, norms=None):
        """As ``ops.backward_time_loop``: in place over ``das`` (T, B, H); ``norms`` must be float64 (T,)."""
        T, B, H = das.shape
        norms_ok = norms is None or (norms.shape == (T,) and norms.dtype == np.float64 and norms.flags.c_contiguous)
        _require(dhs.shape == das.shape and W_hh.shape == (H, H) and usable(das, dhs, W_hh) and norms_ok,
                 f"shapes {das.shape}, {dhs.shape}, {W_hh.shape}, norms {None if norms is None else norms.shape}")
        dh = np.zeros((B, H), dtype=np.float32)
        at = self._address
        self._backward(T, B, H, at(das), at(dhs), at(W_hh), at(dh), 0 if norms is None else at(norms))
        return dh

    def adam(self, p, g, m, v, beta1, beta2, step, eps):
        """As ``optim.Adam``'s numpy update, bit for bit (same float32 operations in the same order):
        returns (new p, new m, new v) as new arrays; the inputs are not modified."""
        _require(p.shape == g.shape == m.shape == v.shape and usable(p, g, m, v), "mismatched Adam arrays")
        p_new, m_new, v_new = np.empty_like(p), np.empty_like(p), np.empty_like(p)
        at = self._address
        self._adam(p.size, at(p), at(g), at(m), at(v), beta1, 1 - beta1, beta2, 1 - beta2, step, eps,
                   at(p_new), at(m_new), at(v_new))
        return p_new, m_new, v_new

    def softmax_cross_entropy(self, logits, targets):
        """As ``ops.softmax_cross_entropy``: (mean nats, dL/dlogits (N, V)) for logits (N, V), ids targets (N,)."""
        N, V = logits.shape
        targets = np.ascontiguousarray(targets, dtype=np.int32)
        _require(targets.shape == (N,) and usable(logits), f"logits {logits.shape}, targets {targets.shape}")
        if N and (targets.min() < 0 or targets.max() >= V):  # the kernel indexes rows with them: never out of range
            raise IndexError(f"target ids must lie in [0, {V}), got {targets.min()}..{targets.max()}")
        dlogits = np.empty_like(logits)
        target_terms, sums = np.empty(N), np.empty(N)
        at = self._address
        self._softmax_xent(N, V, at(logits), at(targets), 1.0 / N, at(dlogits), at(target_terms), at(sums))
        return -float(np.mean(target_terms - np.log(sums))), dlogits


def load_in_pyodide() -> SimdKernels:
    """The kernels bound to Pyodide's heap; raises RuntimeError (or ImportError outside Pyodide) if they cannot be."""
    import pyodide_js  # only exists inside Pyodide
    from js import Object, WebAssembly
    from pyodide.ffi import to_js

    module = pyodide_js._module  # the Emscripten module: Pyodide's own WebAssembly instance
    try:
        memory = getattr(module.LDSO.loadedLibsByName, "__main__").exports.memory
    except Exception as exc:  # Pyodide's internals moved: numpy alone computes everything
        raise RuntimeError(f"cannot find Pyodide's WebAssembly memory: {exc}") from exc
    if memory is None or memory.buffer != module.HEAPU8.buffer:
        raise RuntimeError("Pyodide's WebAssembly memory is not where the kernels expect it")
    imports = to_js({"env": {"memory": memory}}, dict_converter=Object.fromEntries)
    instance = WebAssembly.Instance.new(WebAssembly.Module.new(to_js(wasm_bytes())), imports)
    return SimdKernels(instance.exports)


def _load():
    """(kernels or None, what computes the products on this platform: shown by the app and the benchmarks)."""
    if sys.platform != "emscripten":
        return None, "numpy (BLAS)"
    try:
        return load_in_pyodide(), "WebAssembly SIMD kernels (float32); numpy einsum for float64"
    except Exception as exc:  # an unexpected runtime: numpy alone still computes everything
        return None, f"numpy einsum (the SIMD kernels did not load: {exc})"


ACTIVE, BACKEND = _load()  # ACTIVE: the loaded SimdKernels inside Pyodide, else None


def for_arrays(*arrays):
    """The active kernels if there are any and they can read these arrays, else None."""
    return ACTIVE if ACTIVE is not None and usable(*arrays) else None
