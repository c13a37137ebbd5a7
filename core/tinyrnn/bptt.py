"""Hand-written backpropagation through time of the tanh RNN, in plain numpy, without autograd.

It is composed from the operations in ``ops.py`` -- the same functions the fused engine's VJP calls -- so agreeing
with the fused engine checks how they are put together, not their arithmetic. The independent checks are the
traced autograd engine and centred finite differences (``gradcheck.py``).

Notation (docs/math.md): inputs x_t are ids, so W_hx x_t is column x_t of W_hx.
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

from .model import PARAM_NAMES
from .ops import output_backward, output_logits, recurrence_backward, recurrence_forward, softmax_cross_entropy


@dataclass
class BPTTResult:
    loss: float  # mean nats per character
    grads: dict  # same keys as params, plus "h0"
    h_last: np.ndarray  # (B, H)
    dh_norms: np.ndarray  # (T,): ||dL/dh_t|| over the whole batch


def manual_bptt(params, inputs, targets, h0, with_norms=True) -> BPTTResult:
    """Loss and gradients of the vanilla RNN on a batch, by hand. ``inputs``/``targets``: int (B, T); ``h0``: (B, H)."""
    W_hx, W_hh, b_h, W_yh, b_y = (params[k] for k in PARAM_NAMES)
    inputs_tm = np.ascontiguousarray(np.asarray(inputs).T)
    targets_tm = np.ascontiguousarray(np.asarray(targets).T)
    T, B = inputs_tm.shape
    H, V = W_hx.shape
    hs = recurrence_forward(W_hx, W_hh, b_h, h0, inputs_tm)
    hs_flat = hs.reshape(T * B, H)
    loss, dlogits = softmax_cross_entropy(output_logits(hs_flat, W_yh, b_y), targets_tm.reshape(T * B))
    dhs, dW_yh, db_y = output_backward(dlogits, hs_flat, W_yh)
    dW_hx, dW_hh, db_h, dh0, norms = recurrence_backward(W_hh, hs, h0, inputs_tm, dhs.reshape(T, B, H), V,
                                                         with_norms)
    grads = dict(zip(PARAM_NAMES, (dW_hx, dW_hh, db_h, dW_yh, db_y)), h0=dh0)
    return BPTTResult(loss, grads, hs[-1].copy(), norms)
