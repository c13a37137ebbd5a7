"""float32 kernels in WebAssembly SIMD for the browser (Pyodide), where numpy has no BLAS.

``kernels/simd.c``, compiled to ``kernels/simd.wasm`` by ``tools/build_kernel.py``, holds one matrix product, the
two time loops of each cell's recurrence (tanh RNN: ops.py; GRU: gru.py; LSTM: lstm.py), the softmax
cross-entropy, Adam's update, and whole training windows of every cell (wasm.py). The module imports Pyodide's own linear memory, so it reads and writes numpy's buffers in place:
nothing is copied. Inside Pyodide, bptt and optim ask ``for_arrays`` and use these kernels for C-ordered float32
arrays; everything else runs their numpy code, which is also the reference the kernels are tested against
(tests/test_wasm_kernels.py runs this same ``.wasm`` natively with wasmtime). Every method checks shapes and
dtypes before the call: the kernels trust their arguments, and a wrong size would read or write outside an array.
"""

from __future__ import annotations

import sys
from importlib import resources

import numpy as np

# The compiled modules shipped in the wheel (tools/build_kernel.py), fastest first: the same source, the second
# with the products' and tanh's multiply-adds fused by f32x4.relaxed_madd where the browser has relaxed SIMD
# (Chromium, Firefox; not Safari): ``load_in_pyodide`` takes the first that the browser validates.
VARIANTS = {"relaxed": "kernels/simd_relaxed.wasm", "simd": "kernels/simd.wasm"}
DESCRIBED = {"relaxed": "WebAssembly SIMD kernels (float32; relaxed SIMD: fused multiply-adds)",
             "simd": "WebAssembly SIMD kernels (float32)"}


def wasm_bytes(variant: str | None = None) -> bytes:
    """A compiled module shipped in the wheel: ``variant`` (a key of ``VARIANTS``), by default the one loaded here
    (``VARIANT``; the plain SIMD one outside Pyodide)."""
    return resources.files(__package__).joinpath(VARIANTS[variant or VARIANT or "simd"]).read_bytes()


def usable(*arrays) -> bool:
    """True when every array is C-contiguous float32: the only layout the kernels read."""
    return all(a.dtype == np.float32 and a.flags.c_contiguous for a in arrays)


def address(a) -> int:
    """Where ``a``'s data starts in the WebAssembly memory (inside Pyodide: numpy's own pointer)."""
    return a.__array_interface__["data"][0]


def _norms_ok(norms, T) -> bool:
    """``norms`` is None or a C-contiguous float64 (T,) array (the kernels write ‖∂L/∂h_t‖ into it)."""
    return norms is None or (norms.shape == (T,) and norms.dtype == np.float64 and norms.flags.c_contiguous)


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(f"WebAssembly kernel called with {what}")


class SimdKernels:
    """The module's exports with numpy-shaped signatures. ``exports`` has ``sgemm``, ``rnn_forward``,
    ``rnn_backward``, ``gru_forward``, ``gru_backward``, ``lstm_forward``, ``lstm_backward``, ``softmax_xent``,
    ``adam``, ``sum_squares``, ``add_into``, ``window_size``, ``window_forward`` and ``window_backward`` (the last
    five used by wasm.py); ``address(array)`` gives an array's offset in the module's memory. Arrays must be
    C-contiguous float32 (``usable``) unless stated otherwise."""

    def __init__(self, exports, address=address):
        self.exports, self.address = exports, address  # every export, for callers with their own shapes (wasm)
        self._sgemm, self._forward, self._backward = exports.sgemm, exports.rnn_forward, exports.rnn_backward
        self._softmax_xent, self._adam = exports.softmax_xent, exports.adam
        self._gru_forward, self._gru_backward = exports.gru_forward, exports.gru_backward
        self._lstm_forward, self._lstm_backward = exports.lstm_forward, exports.lstm_backward
        self._address = address
        self._window_sizes = {}  # (cell, T, B, H, V) -> floats of a window's work buffer

    def window_size(self, cell: int, T: int, B: int, H: int, V: int) -> int:
        """Floats of the work buffer of a (cell, T, B, H, V) window (the module's ``window_size``, asked once)."""
        key = (cell, T, B, H, V)
        if key not in self._window_sizes:
            self._window_sizes[key] = int(self.exports.window_size(*key))
        return self._window_sizes[key]

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

    def gru_forward(self, x, W_hh_t, b_hh, h0, hs, hn):
        """As ``gru.forward_time_loop``: in place over ``x`` (T, B, 3H); writes ``hs``, ``hn`` (T, B, H)."""
        T, B, H3 = x.shape
        H = H3 // 3
        _require(H3 == 3 * H and W_hh_t.shape == (H, H3) and b_hh.shape == (H3,) and h0.shape == (B, H)
                 and hs.shape == hn.shape == (T, B, H) and usable(x, W_hh_t, b_hh, h0, hs, hn),
                 f"shapes {x.shape}, {W_hh_t.shape}, {b_hh.shape}, {h0.shape}, {hs.shape}, {hn.shape}")
        scratch = np.empty((B, H3), dtype=np.float32)
        at = self._address
        self._gru_forward(T, B, H, at(x), at(W_hh_t), at(b_hh), at(h0), at(hs), at(hn), at(scratch))
        return hs

    def gru_backward(self, gates, hn, hs, h0, dhs, W_hh, dhh, norms=None):
        """As ``gru.backward_time_loop``: in place over ``gates`` (T, B, 3H), writes ``dhh``; returns dL/dh0."""
        T, B, H3 = gates.shape
        H = H3 // 3
        _require(H3 == 3 * H and hn.shape == hs.shape == dhs.shape == (T, B, H) and h0.shape == (B, H)
                 and W_hh.shape == (H3, H) and dhh.shape == gates.shape and _norms_ok(norms, T)
                 and usable(gates, hn, hs, h0, dhs, W_hh, dhh),
                 f"shapes {gates.shape}, {hn.shape}, {hs.shape}, {h0.shape}, {dhs.shape}, {W_hh.shape}, {dhh.shape}")
        dh = np.zeros((B, H), dtype=np.float32)
        at = self._address
        self._gru_backward(T, B, H, at(gates), at(hn), at(hs), at(h0), at(dhs), at(W_hh), at(dhh), at(dh),
                           0 if norms is None else at(norms))
        return dh

    def lstm_forward(self, x, W_hh_t, h0, c0, hs, cs):
        """As ``lstm.forward_time_loop``: in place over ``x`` (T, B, 4H); writes ``hs``, ``cs`` (T, B, H)."""
        T, B, H4 = x.shape
        H = H4 // 4
        _require(H4 == 4 * H and W_hh_t.shape == (H, H4) and h0.shape == c0.shape == (B, H)
                 and hs.shape == cs.shape == (T, B, H) and usable(x, W_hh_t, h0, c0, hs, cs),
                 f"shapes {x.shape}, {W_hh_t.shape}, {h0.shape}, {c0.shape}, {hs.shape}, {cs.shape}")
        at = self._address
        self._lstm_forward(T, B, H, at(x), at(W_hh_t), at(h0), at(c0), at(hs), at(cs))
        return hs

    def lstm_backward(self, gates, cs, c0, dhs, W_hh, norms_h=None, norms_c=None):
        """As ``lstm.backward_time_loop``: in place over ``gates`` (T, B, 4H); returns (dL/dh0, dL/dc0)."""
        T, B, H4 = gates.shape
        H = H4 // 4
        _require(H4 == 4 * H and cs.shape == dhs.shape == (T, B, H) and c0.shape == (B, H)
                 and W_hh.shape == (H4, H) and _norms_ok(norms_h, T) and _norms_ok(norms_c, T)
                 and usable(gates, cs, c0, dhs, W_hh),
                 f"shapes {gates.shape}, {cs.shape}, {c0.shape}, {dhs.shape}, {W_hh.shape}")
        dh, dc = np.zeros((B, H), dtype=np.float32), np.zeros((B, H), dtype=np.float32)
        at = self._address
        self._lstm_backward(T, B, H, at(gates), at(cs), at(c0), at(dhs), at(W_hh), at(dh), at(dc),
                            0 if norms_h is None else at(norms_h), 0 if norms_c is None else at(norms_c))
        return dh, dc

    def adam(self, p, g, m, v, beta1, beta2, step, eps):
        """As ``optim.Adam``'s numpy update, bit for bit (same float32 operations in the same order): returns
        (new p, new m, new v) as new arrays; the inputs are not modified."""
        return self.clipped_adam(p, g, m, v, beta1, beta2, step, eps)[:3]

    def clipped_adam(self, p, g, m, v, beta1, beta2, step, eps, clip=float("inf"), scale=1.0):
        """``adam`` on clip(g, ±clip) × scale (optim.clip_by_value, then clip_by_global_norm's scaling), in the same
        call: (new p, new m, new v, how many new p are not finite)."""
        _require(p.shape == g.shape == m.shape == v.shape and usable(p, g, m, v), "mismatched Adam arrays")
        out = np.empty((3,) + p.shape, np.float32)
        at = self._address
        bad = self._adam(p.size, at(p), at(g), at(m), at(v), clip, scale, beta1, 1 - beta1, beta2, 1 - beta2, step,
                         eps, at(out[0]), at(out[1]), at(out[2]))
        return out[0], out[1], out[2], int(bad)

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


def load_in_pyodide() -> tuple[SimdKernels, str]:
    """The fastest variant the browser validates, bound to Pyodide's heap, and its name; raises RuntimeError (or
    ImportError outside Pyodide) if none can be."""
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
    for variant in VARIANTS:  # fastest first
        data = to_js(wasm_bytes(variant))
        if WebAssembly.validate(data):
            break
    else:
        raise RuntimeError(f"this browser validates none of the kernel modules ({', '.join(VARIANTS)})")
    instance = WebAssembly.Instance.new(WebAssembly.Module.new(data), imports)
    return SimdKernels(instance.exports), variant


def _load():
    """(kernels or None, their variant or None, what computes the products on this platform: shown by the app and
    the benchmarks)."""
    if sys.platform != "emscripten":
        return None, None, "numpy (BLAS)"
    try:
        kernels, variant = load_in_pyodide()
        return kernels, variant, f"{DESCRIBED[variant]}; numpy einsum for float64"
    except Exception as exc:  # an unexpected runtime: numpy alone still computes everything
        return None, None, f"numpy einsum (the SIMD kernels did not load: {exc})"


# ACTIVE: the loaded SimdKernels inside Pyodide, else None; VARIANT: which module they are (a key of VARIANTS)
ACTIVE, VARIANT, BACKEND = _load()


def for_arrays(*arrays):
    """The active kernels if there are any and they can read these arrays, else None."""
    return ACTIVE if ACTIVE is not None and usable(*arrays) else None
