"""The numpy operations every engine is built from, and where they run (BLAS, or WebAssembly SIMD kernels).

Products, the embedding scatter, the recurrence's two time loops, the output layer, the softmax cross-entropy and
Adam's update.
The fused engine's VJPs (``model.py``) and the hand-written BPTT (``bptt.py``) both call these same functions, so
"fused == manual" checks the glue, not the arithmetic; the independent checks are the traced autograd engine and
centred finite differences (``gradcheck.py``).

Internally everything is time-major: arrays are (T, B, ...), so one time step is a contiguous (B, ...) block.
"""

from __future__ import annotations

import functools
import sys

import autograd.numpy as anp
import numpy as np

# In Pyodide (WebAssembly) numpy has no BLAS: its matmul is a scalar loop. There, for float32, the products, the
# two time loops and the softmax run in WebAssembly SIMD kernels that work in place on numpy's buffers
# (engines/wasm_module.py); float64 (gradient checks) uses einsum, whose loops beat numpy's matmul 1.5-3x on these
# shapes (measured in Pyodide). Natively, matmul calls BLAS. The numpy code here is the reference the kernels are
# tested against.
WASM = sys.platform == "emscripten"
# numpy's einsum runs a product as one iterator over every (n, i, j), which numpy refuses beyond 2**31 elements
# ("iterator is too large"); such products take numpy's own loop (matmul) instead.
_EINSUM_LIMIT = 2**31 - 1


def simd_for(*arrays):
    """The WebAssembly kernels (``engines.wasm_module.ACTIVE``: inside Pyodide) if they can read these arrays, else
    None."""
    return _wasm_module().for_arrays(*arrays)


@functools.cache
def _wasm_module():
    from .engines import wasm_module  # at first use: the engines package imports model and optim, which import ops

    return wasm_module


def _wasm_product(kernel, spec, a, b, n_terms, plain):
    """A product inside Pyodide: the SIMD kernel (float32), else einsum while numpy allows it, else ``plain()``."""
    simd = simd_for(a, b)
    if simd:
        return getattr(simd, kernel)(a, b)
    return np.einsum(spec, a, b) if n_terms <= _EINSUM_LIMIT else plain()


def mm(a, b):
    """``a @ b`` for 2-D arrays (I, K) and (K, J)."""
    if not WASM:
        return a @ b
    return _wasm_product("mm", "ik,kj->ij", a, b, a.size * b.shape[1], lambda: a @ b)


def at_b(a, b):
    """``a.T @ b`` for 2-D ``a`` (N, I) and ``b`` (N, J)."""
    if not WASM:
        return a.T @ b
    return _wasm_product("at_b", "ni,nj->ij", a, b, a.size * b.shape[1], lambda: a.T @ b)


def a_bt(a, b):
    """``a @ b.T`` for 2-D ``a`` (N, K) and ``b`` (J, K)."""
    if not WASM:
        return a @ b.T
    return _wasm_product("a_bt", "nk,jk->nj", a, b, a.size * b.shape[0], lambda: a @ b.T)


def scatter_rows_t(ids, rows, n_ids):
    """(H, n_ids) matrix whose column v is the sum of ``rows`` (N, H) at the positions where ``ids`` == v.

    The transpose of the embedding lookup. Sorting the ids and summing each run with ``np.add.reduceat`` costs
    O(N·H) whatever the vocabulary size (a one-hot product costs O(N·H·V)), and is ~4x faster than ``np.add.at``."""
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    out = np.zeros((n_ids, rows.shape[1]), dtype=rows.dtype)
    out[sorted_ids[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return out.T.copy()


def forward_time_loop(a, W_hh_t, h0):
    """In place over ``a`` (T, B, H), which holds W_hx x_t + b_h: a[t] = tanh(a[t] + a[t-1] @ W_hh_t), with
    a[-1] = ``h0`` (B, H) and ``W_hh_t`` = W_hh transposed. Returns ``a``, now the hidden states.
    The numpy twin of ``wasm_module.SimdKernels.rnn_forward`` (same signature, the kernels' reference)."""
    h = h0
    for t in range(a.shape[0]):
        h = np.tanh(a[t] + mm(h, W_hh_t))
        a[t] = h  # reuse the buffer: a now holds h_t
    return a


def backward_time_loop(das, dhs, W_hh, norms=None):
    """In place over ``das`` (T, B, H), which holds 1 - h_t^2: from t = T-1 down, g = dhs[t] + dh,
    das[t] *= g (= dL/da_t), dh = das[t] @ W_hh, from dh = 0 beyond the window. ``norms`` (T,), if given, receives
    ||g|| = ||dL/dh_t|| per step. Returns dL/dh0 (B, H).
    The numpy twin of ``wasm_module.SimdKernels.rnn_backward`` (same signature, the kernels' reference)."""
    dh_next = np.zeros(das.shape[1:], dtype=das.dtype)  # W_hh^T dL/da_{t+1}
    for t in range(das.shape[0] - 1, -1, -1):
        dh = dhs[t] + dh_next
        if norms is not None:
            norms[t] = np.sqrt(np.vdot(dh, dh))
        da = das[t]
        da *= dh  # dL/da_t = dL/dh_t * (1 - h_t^2)
        dh_next = mm(da, W_hh)
    return dh_next


def sigmoid_(a):
    """In place: a = σ(a) = (1 + tanh(a/2)) / 2, which never overflows (1/(1+exp(−a)) does for a ≪ 0)."""
    a *= 0.5
    np.tanh(a, out=a)
    a += 1
    a *= 0.5
    return a


def traced_sigmoid(a):
    """σ(a) as ``sigmoid_`` computes it, traced by autograd."""
    return 0.5 * (anp.tanh(0.5 * a) + 1)


def recurrence_forward(W_hx, W_hh, b_h, h0, inputs_tm):
    """Hidden states for time-major ids ``inputs_tm`` (T, B) from ``h0`` (B, H): returns hs (T, B, H)."""
    a = W_hx.T[inputs_tm]  # (T, B, H): the embedding lookup replaces a one-hot product
    a += b_h
    W_hh_t = np.ascontiguousarray(W_hh.T)  # once, so that every step is a plain (B, H) @ (H, H) product
    simd = simd_for(a, W_hh_t, h0)
    return (simd.rnn_forward if simd else forward_time_loop)(a, W_hh_t, h0)


def recurrence_backward(W_hh, hs, h0, inputs_tm, dhs, vocab_size, with_norms=False):
    """Backward through the recurrence alone.

    ``dhs`` (T, B, H) is the gradient reaching each h_t from outside the recurrence (the output layer).
    Returns (dW_hx (H, V), dW_hh (H, H), db_h (H,), dh0 (B, H), dh_norms (T,) or None)."""
    T, B, H = hs.shape
    das = 1 - hs * hs  # tanh'(a_t) for every step in one vectorised op; scaled in place by the time loop
    norms = np.empty(T) if with_norms else None
    simd = simd_for(das, dhs, W_hh)
    dh0 = (simd.rnn_backward if simd else backward_time_loop)(das, dhs, W_hh, norms)
    h_prev = np.concatenate([h0[None], hs[:-1]], axis=0)  # (T, B, H): h_{t-1}
    das_flat = das.reshape(T * B, H)
    dW_hh = at_b(das_flat, h_prev.reshape(T * B, H))
    db_h = das_flat.sum(axis=0)
    dW_hx = scatter_rows_t(inputs_tm.reshape(-1), das_flat, vocab_size)  # column v: sum of dL/da_t where x_t = v
    return dW_hx, dW_hh, db_h, dh0, norms


def output_logits(hs_flat, W_yh, b_y):
    """Logits (N, V) = W_yh h + b_y for every row of ``hs_flat`` (N, H): the whole window in one product."""
    return a_bt(hs_flat, W_yh) + b_y


def output_backward(dlogits, hs_flat, W_yh):
    """Gradients through the output layer from dL/dlogits (N, V): (dL/dh (N, H), dW_yh (V, H), db_y (V,))."""
    return mm(dlogits, W_yh), at_b(dlogits, hs_flat), dlogits.sum(axis=0)


def softmax_cross_entropy(logits, targets):
    """Mean cross-entropy (nats) and its gradient (p - onehot) / N w.r.t. ``logits`` (N, V), for ids ``targets`` (N,)."""
    simd = simd_for(logits)
    if simd:
        return simd.softmax_cross_entropy(logits, targets)
    rows = np.arange(logits.shape[0])
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=-1)
    loss = -float((shifted[rows, targets] - np.log(total)).mean(dtype=np.float64))
    dlogits = exp / total[:, None]
    dlogits[rows, targets] -= 1
    dlogits /= logits.shape[0]
    return loss, dlogits


def adam_update(p, g, m, v, beta1: float, beta2: float, step: float, eps: float):
    """Adam's update of one parameter (``optim.Adam``): (new p, new m, new v), with ``step`` the bias-corrected
    learning rate; inside Pyodide one SIMD kernel call for float32, the same arithmetic."""
    simd = simd_for(p, g, m, v)
    if simd:
        return simd.adam(p, g, m, v, beta1, beta2, step, eps)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * (g * g)
    return p - step * m / (np.sqrt(v) + eps), m, v
