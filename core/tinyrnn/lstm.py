"""The long short-term memory cell (LSTM) with PyTorch's equations and gate order (i, f, g, o), in numpy.

For input id x_t and state (h_{t-1}, c_{t-1}), with W_ih (4H, V), W_hh (4H, H), b_ih (4H,), b_hh (4H,) stacked as
[input i | forget f | cell g | output o] row blocks, exactly as ``torch.nn.LSTM``'s weight_ih_l0 ... bias_hh_l0:

    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh                  (4H) = [a_i | a_f | a_g | a_o]
    i_t = σ(a_i)    f_t = σ(a_f)    g_t = tanh(a_g)    o_t = σ(a_o)
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t)

The state carried between windows is one array (B, 2H): [h | c]. Backward, from t = T down, with
g = ∂L/∂h_t (output layer plus step t+1) and ∂L/∂c_t = (from step t+1: ∂L/∂c_{t+1} ⊙ f_{t+1}) + g ⊙ o ⊙ (1 − tanh² c_t):

    ∂a_i = ∂L/∂c_t ⊙ g_t ⊙ i (1 − i)        ∂a_f = ∂L/∂c_t ⊙ c_{t-1} ⊙ f (1 − f)
    ∂a_g = ∂L/∂c_t ⊙ i_t ⊙ (1 − g²)         ∂a_o = g ⊙ tanh(c_t) ⊙ o (1 − o)
    ∂L/∂h_{t-1} = W_hhᵀ ∂a_t                 ∂L/∂c_{t-1} = ∂L/∂c_t ⊙ f_t

Time-major arrays: (T, B, ...). ``forward_time_loop`` and ``backward_time_loop`` are the numpy twins (and the
reference) of the WebAssembly kernels ``lstm_forward`` / ``lstm_backward`` (engines/wasm_module.py).
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np

from .ops import at_b, mm, scatter_rows_t, sigmoid_, simd_for, traced_sigmoid


def forward_time_loop(x, W_hh_t, h0, c0, hs, cs):
    """In place over ``x`` (T, B, 4H), which holds W_ih x_t + b_ih + b_hh and receives the gates [i | f | g | o];
    writes h_t into ``hs`` and c_t into ``cs`` (T, B, H). ``W_hh_t`` (H, 4H) is W_hh transposed; ``h0``, ``c0``
    (B, H)."""
    H = h0.shape[1]
    h, c = h0, c0
    for t in range(x.shape[0]):
        a = x[t]
        a += mm(h, W_hh_t)
        sigmoid_(a[:, :2 * H])
        np.tanh(a[:, 2 * H:3 * H], out=a[:, 2 * H:3 * H])
        sigmoid_(a[:, 3 * H:])
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c_prev, c, h = c, cs[t], hs[t]
        np.multiply(f, c_prev, out=c)
        c += i * g
        np.tanh(c, out=h)
        h *= o
    return hs


def backward_time_loop(gates, cs, c0, dhs, W_hh, norms_h=None, norms_c=None):
    """In place over ``gates`` (T, B, 4H) = [i | f | g | o], which receives ∂L/∂a_t. ``cs``, ``dhs`` (T, B, H),
    ``c0`` (B, H), ``W_hh`` (4H, H); ``norms_h``/``norms_c`` (T,), if given, receive ‖∂L/∂h_t‖ and ‖∂L/∂c_t‖.
    Returns (∂L/∂h_0, ∂L/∂c_0), each (B, H)."""
    H = c0.shape[1]
    dh = np.zeros_like(c0)
    dc = np.zeros_like(c0)
    for t in range(gates.shape[0] - 1, -1, -1):
        g_h = dhs[t] + dh
        a = gates[t]
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        tanh_c = np.tanh(cs[t])
        dc = dc + g_h * o * (1 - tanh_c * tanh_c)  # ∂L/∂c_t
        if norms_h is not None:
            norms_h[t] = np.sqrt(np.vdot(g_h, g_h))
        if norms_c is not None:
            norms_c[t] = np.sqrt(np.vdot(dc, dc))
        c_prev = cs[t - 1] if t else c0
        da_i = dc * g * i * (1 - i)
        da_f = dc * c_prev * f * (1 - f)
        da_g = dc * i * (1 - g * g)
        da_o = g_h * tanh_c * o * (1 - o)
        dc = dc * f
        a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:] = da_i, da_f, da_g, da_o
        dh = mm(a, W_hh)
    return dh, dc


def split_state(state):
    """(h, c), each (B, H) and C-contiguous, from the state [h | c] (B, 2H)."""
    H = state.shape[1] // 2
    return np.ascontiguousarray(state[:, :H]), np.ascontiguousarray(state[:, H:])


def prepare(weights):
    """What the forward pass reads: W_ih transposed (V, 4H) and W_hh transposed (H, 4H), contiguous; b_ih + b_hh."""
    W_ih, W_hh, b_ih, b_hh = weights
    return np.ascontiguousarray(W_ih.T), np.ascontiguousarray(W_hh.T), b_ih + b_hh


def recurrence_forward(weights, state0, inputs_tm, prepared=None):
    """(hs (T, B, H), last state [h_T | c_T] (B, 2H), cache (gates (T, B, 4H), cs (T, B, H))) for ids (T, B);
    ``prepared``: ``prepare(weights)``, if the caller keeps it (sampling steps a character at a time)."""
    W_ih_t, W_hh_t, bias = prepared or prepare(weights)
    T, B = inputs_tm.shape
    H = W_hh_t.shape[0]
    x = W_ih_t[inputs_tm]  # (T, B, 4H): the embedding lookup, from contiguous rows (a new array)
    x += bias
    h0, c0 = split_state(state0.astype(x.dtype, copy=False))
    hs, cs = np.empty((T, B, H), dtype=x.dtype), np.empty((T, B, H), dtype=x.dtype)
    simd = simd_for(x, W_hh_t, h0, c0)
    (simd.lstm_forward if simd else forward_time_loop)(x, W_hh_t, h0, c0, hs, cs)
    return hs, np.concatenate([hs[-1], cs[-1]], axis=1), (x, cs)


def recurrence_backward(weights, state0, inputs_tm, hs, cache, dhs, with_norms=False):
    """Gradients ((dW_ih, dW_hh, db_ih, db_hh), ∂L/∂[h_0 | c_0] (B, 2H), {"h": ‖∂L/∂h_t‖, "c": ‖∂L/∂c_t‖} or {})
    from ∂L/∂h_t ``dhs`` (T, B, H) arriving from outside the recurrence. Overwrites the cache's gates."""
    W_ih, W_hh = weights[0], weights[1]
    gates, cs = cache
    T, B, H = hs.shape
    h0, c0 = split_state(state0.astype(hs.dtype, copy=False))
    norms_h, norms_c = (np.empty(T), np.empty(T)) if with_norms else (None, None)
    simd = simd_for(gates, cs, c0, dhs, W_hh)
    dh0, dc0 = (simd.lstm_backward if simd else backward_time_loop)(gates, cs, c0, dhs, W_hh, norms_h, norms_c)
    h_prev = np.concatenate([h0[None], hs[:-1]], axis=0).reshape(T * B, H)
    da = gates.reshape(T * B, 4 * H)
    db = da.sum(axis=0)
    grads = (scatter_rows_t(inputs_tm.reshape(-1), da, W_ih.shape[1]), at_b(da, h_prev), db, db.copy())
    return grads, np.concatenate([dh0, dc0], axis=1), ({"h": norms_h, "c": norms_c} if with_norms else {})


def traced_recurrence(weights, state0, inputs_tm):
    """(hs (T, B, H), [h_T | c_T]) with every step traced by autograd: the reference definition."""
    W_ih, W_hh, b_ih, b_hh = weights
    H = W_hh.shape[1]
    x = anp.transpose(W_ih)[inputs_tm] + b_ih + b_hh
    h, c, hs = state0[:, :H], state0[:, H:], []
    for t in range(inputs_tm.shape[0]):
        a = x[t] + anp.dot(h, anp.transpose(W_hh))
        i, f = traced_sigmoid(a[:, :H]), traced_sigmoid(a[:, H:2 * H])
        g, o = anp.tanh(a[:, 2 * H:3 * H]), traced_sigmoid(a[:, 3 * H:])
        c = f * c + i * g
        h = o * anp.tanh(c)
        hs.append(h)
    return anp.stack(hs, axis=0), anp.concatenate([h, c], axis=1)
