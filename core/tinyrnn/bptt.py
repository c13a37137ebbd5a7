"""Hand-written backpropagation through time of every cell, in plain numpy, without autograd.

It is composed from the operations in ``ops.py`` and the cells' time loops (``cells.py``, ``gru.py``,
``lstm.py``) -- the same functions the fused engine's VJP calls -- so agreeing with the fused engine checks how
they are put together, not their arithmetic. The independent checks are the traced autograd engine and centred
finite differences (``gradcheck.py``).

Notation (docs/math.md), for the tanh RNN; the GRU's and LSTM's equations are in their modules' docstrings.
Inputs x_t are ids, so W_hx x_t is column x_t of W_hx.
    a_t = W_hx[:, x_t] + W_hh h_{t-1} + b_h        h_t = tanh(a_t)
    y_t = W_yh h_t + b_y                           p_t = softmax(y_t)
    L   = -(1 / (B T)) sum_{b,t} log p_t[target_t]
Backward, from t = T down to 1, with dh_{T+1}-contribution zero:
    dL/dy_t  = (p_t - onehot(target_t)) / (B T)
    dL/dh_t  = W_yh^T dL/dy_t + W_hh^T dL/da_{t+1}        (the quantity that vanishes or explodes)
    dL/da_t  = dL/dh_t * (1 - h_t^2)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cells import get_cell
from .ops import output_backward, output_logits, softmax_cross_entropy


@dataclass
class BPTTResult:
    loss: float  # mean nats per character
    grads: dict  # same keys as params, plus "h0" (the initial state's gradient, (B, S))
    h_last: np.ndarray  # the last state (B, S)
    dh_norms: np.ndarray | None  # (T,): ||dL/dh_t|| over the whole batch
    dc_norms: np.ndarray | None = None  # (T,): ||dL/dc_t|| (LSTM only)


def manual_bptt(params, inputs, targets, h0, with_norms=True, cell="rnn") -> BPTTResult:
    """Loss and gradients of a ``cell`` model on a batch, by hand. ``inputs``/``targets``: int (B, T); ``h0``:
    the state (B, S)."""
    spec = get_cell(cell)
    weights = tuple(params[k] for k in spec.recurrence_names)
    W_yh, b_y = params["W_yh"], params["b_y"]
    inputs_tm = np.ascontiguousarray(np.asarray(inputs).T)
    targets_tm = np.ascontiguousarray(np.asarray(targets).T)
    hs, last, cache = spec.forward(weights, h0, inputs_tm)
    T, B, H = hs.shape
    hs_flat = hs.reshape(T * B, H)
    loss, dlogits = softmax_cross_entropy(output_logits(hs_flat, W_yh, b_y), targets_tm.reshape(T * B))
    dhs, dW_yh, db_y = output_backward(dlogits, hs_flat, W_yh)
    weight_grads, dstate0, norms = spec.backward(weights, h0, inputs_tm, hs, cache, dhs.reshape(T, B, H), with_norms)
    grads = dict(zip(spec.param_names, weight_grads + (dW_yh, db_y)), h0=dstate0)
    return BPTTResult(loss, grads, np.array(last), norms.get("h"), norms.get("c"))


def last_step_bptt(params, inputs, targets, h0, cell="rnn") -> BPTTResult:
    """Loss and gradients of L_T, the loss of the window's last character alone (mean over the batch), by hand:
    ``.dh_norms`` (T,) is ‖∂L_T/∂h_t‖ for t = 1..T. ``inputs``/``targets``: int (B, T); ``h0``: the state (B, S)."""
    spec = get_cell(cell)
    weights = tuple(params[k] for k in spec.recurrence_names)
    W_yh, b_y = params["W_yh"], params["b_y"]
    inputs_tm = np.ascontiguousarray(np.asarray(inputs).T)
    targets_tm = np.ascontiguousarray(np.asarray(targets).T)
    hs, last, cache = spec.forward(weights, h0, inputs_tm)
    loss, dlogits = softmax_cross_entropy(output_logits(hs[-1], W_yh, b_y), targets_tm[-1])
    dhs = np.zeros_like(hs)
    dhs[-1], dW_yh, db_y = output_backward(dlogits, hs[-1], W_yh)
    weight_grads, dstate0, norms = spec.backward(weights, h0, inputs_tm, hs, cache, dhs, True)
    grads = dict(zip(spec.param_names, weight_grads + (dW_yh, db_y)), h0=dstate0)
    return BPTTResult(loss, grads, np.array(last), norms["h"], norms.get("c"))


def gradient_reach(params, inputs, targets, h0, cell="rnn") -> np.ndarray:
    """‖∂L_T/∂h_t‖ for t = 1..T, shape (T,), where L_T is the loss of the window's last character alone: how far
    back one prediction's gradient reaches. (In ``manual_bptt``'s norms every h_t also gets its own step's
    gradient directly, which hides the fall.) A tanh RNN's falls geometrically; the gated cells' much slower."""
    return last_step_bptt(params, inputs, targets, h0, cell).dh_norms
