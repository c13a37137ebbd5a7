"""The gated recurrent unit (GRU) with PyTorch's equations and gate order (r, z, n), in numpy.

For input id x_t and state h_{t-1} (H,), with W_ih (3H, V), W_hh (3H, H), b_ih (3H,), b_hh (3H,) stacked as
[reset r | update z | candidate n] row blocks, exactly as ``torch.nn.GRU``'s weight_ih_l0 ... bias_hh_l0:

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

Backward, from t = T down, with g = ∂L/∂h_t (from the output layer plus from step t+1):

    ∂L/∂n = g ⊙ (1 − z)            ∂L/∂z = g ⊙ (h_{t-1} − n)
    ∂a_n  = ∂L/∂n ⊙ (1 − n²)      ∂a_r = ∂a_n ⊙ (W_hn h_{t-1} + b_hn) ⊙ r (1 − r)      ∂a_z = ∂L/∂z ⊙ z (1 − z)
    input side  ∂(W_ih x + b_ih) = [∂a_r, ∂a_z, ∂a_n]
    hidden side ∂(W_hh h + b_hh) = [∂a_r, ∂a_z, ∂a_n ⊙ r]  =: d_hh
    ∂L/∂h_{t-1} = g ⊙ z + W_hhᵀ d_hh

Time-major arrays: (T, B, ...). ``forward_time_loop`` and ``backward_time_loop`` are the numpy twins (and the
reference) of the WebAssembly kernels ``gru_forward`` / ``gru_backward`` (engines/wasm_module.py).
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np

from .ops import at_b, mm, scatter_rows_t, sigmoid_, simd_for, traced_sigmoid


def forward_time_loop(x, W_hh_t, b_hh, h0, hs, hn):
    """In place over ``x`` (T, B, 3H), which holds W_ih x_t + b_ih and receives the gates [r | z | n]; writes
    h_t into ``hs`` (T, B, H) and W_hn h_{t-1} + b_hn into ``hn`` (T, B, H). ``W_hh_t`` (H, 3H) is W_hh
    transposed, ``h0`` (B, H)."""
    H = h0.shape[1]
    h = h0
    for t in range(x.shape[0]):
        hh = mm(h, W_hh_t)
        hh += b_hh
        gates = x[t]
        rz = gates[:, :2 * H]
        rz += hh[:, :2 * H]
        sigmoid_(rz)
        r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
        hn[t] = hh[:, 2 * H:]
        n += r * hn[t]
        np.tanh(n, out=n)
        h_prev, h = h, hs[t]
        np.subtract(h_prev, n, out=h)  # h_t = n + z ⊙ (h_{t-1} − n)
        h *= z
        h += n
    return hs


def backward_time_loop(gates, hn, hs, h0, dhs, W_hh, dhh, norms=None):
    """In place over ``gates`` (T, B, 3H) = [r | z | n], which receives the input-side gradients [∂a_r | ∂a_z |
    ∂a_n]; writes the hidden-side gradients into ``dhh`` (T, B, 3H). ``hn``, ``hs``, ``dhs`` (T, B, H), ``h0``
    (B, H), ``W_hh`` (3H, H); ``norms`` (T,), if given, receives ‖∂L/∂h_t‖. Returns ∂L/∂h_0 (B, H)."""
    H = h0.shape[1]
    dh_next = np.zeros_like(h0)
    for t in range(gates.shape[0] - 1, -1, -1):
        g = dhs[t] + dh_next
        if norms is not None:
            norms[t] = np.sqrt(np.vdot(g, g))
        h_prev = hs[t - 1] if t else h0
        step = gates[t]
        r, z, n = step[:, :H], step[:, H:2 * H], step[:, 2 * H:]
        da_n = g * (1 - z) * (1 - n * n)
        da_z = g * (h_prev - n) * z * (1 - z)
        da_r = da_n * hn[t] * r * (1 - r)
        out = dhh[t]
        out[:, :H], out[:, H:2 * H] = da_r, da_z
        np.multiply(da_n, r, out=out[:, 2 * H:])
        dh_next = g * z + mm(out, W_hh)
        step[:, :H], step[:, H:2 * H], step[:, 2 * H:] = da_r, da_z, da_n
    return dh_next


def prepare(weights):
    """What the forward pass reads: W_ih transposed (V, 3H) and W_hh transposed (H, 3H), contiguous; b_ih, b_hh."""
    W_ih, W_hh, b_ih, b_hh = weights
    return np.ascontiguousarray(W_ih.T), np.ascontiguousarray(W_hh.T), b_ih, b_hh


def recurrence_forward(weights, h0, inputs_tm, prepared=None):
    """(hs (T, B, H), last state h_T (B, H), cache (gates (T, B, 3H), hn (T, B, H))) for ids (T, B);
    ``prepared``: ``prepare(weights)``, if the caller keeps it (sampling steps a character at a time)."""
    W_ih_t, W_hh_t, b_ih, b_hh = prepared or prepare(weights)
    T, B = inputs_tm.shape
    H = W_hh_t.shape[0]
    x = W_ih_t[inputs_tm]  # (T, B, 3H): the embedding lookup, from contiguous rows (a new array)
    x += b_ih
    hs, hn = np.empty((T, B, H), dtype=x.dtype), np.empty((T, B, H), dtype=x.dtype)
    h0 = np.ascontiguousarray(h0, dtype=x.dtype)
    simd = simd_for(x, W_hh_t, b_hh, h0)
    (simd.gru_forward if simd else forward_time_loop)(x, W_hh_t, b_hh, h0, hs, hn)
    return hs, hs[-1], (x, hn)


def recurrence_backward(weights, h0, inputs_tm, hs, cache, dhs, with_norms=False):
    """Gradients ((dW_ih, dW_hh, db_ih, db_hh), ∂L/∂h_0, {"h": ‖∂L/∂h_t‖ (T,)} or {}) from ∂L/∂h_t ``dhs``
    (T, B, H) arriving from outside the recurrence. Overwrites the cache's gates."""
    W_ih, W_hh = weights[0], weights[1]
    gates, hn = cache
    T, B, H = hs.shape
    h0 = np.ascontiguousarray(h0, dtype=hs.dtype)
    dhh = np.empty_like(gates)
    norms = np.empty(T) if with_norms else None
    simd = simd_for(gates, hn, hs, h0, dhs, W_hh)
    dh0 = (simd.gru_backward if simd else backward_time_loop)(gates, hn, hs, h0, dhs, W_hh, dhh, norms)
    h_prev = np.concatenate([h0[None], hs[:-1]], axis=0).reshape(T * B, H)
    dx, dhh = gates.reshape(T * B, 3 * H), dhh.reshape(T * B, 3 * H)
    grads = (scatter_rows_t(inputs_tm.reshape(-1), dx, W_ih.shape[1]), at_b(dhh, h_prev), dx.sum(axis=0),
             dhh.sum(axis=0))
    return grads, dh0, ({"h": norms} if with_norms else {})


def traced_recurrence(weights, h0, inputs_tm):
    """(hs (T, B, H), h_T) with every step traced by autograd: the reference definition."""
    W_ih, W_hh, b_ih, b_hh = weights
    H = W_hh.shape[1]
    x = anp.transpose(W_ih)[inputs_tm] + b_ih
    h, hs = h0, []
    for t in range(inputs_tm.shape[0]):
        hh = anp.dot(h, anp.transpose(W_hh)) + b_hh
        r = traced_sigmoid(x[t][:, :H] + hh[:, :H])
        z = traced_sigmoid(x[t][:, H:2 * H] + hh[:, H:2 * H])
        n = anp.tanh(x[t][:, 2 * H:] + r * hh[:, 2 * H:])
        h = (1 - z) * n + z * h
        hs.append(h)
    return anp.stack(hs, axis=0), h
