"""The model: a vanilla (tanh) RNN over characters, its loss, and its gradients by autograd.

    h_t = tanh(W_hx x_t + W_hh h_{t-1} + b_h)        y_t = W_yh h_t + b_y        loss = mean_t -log softmax(y_t)[x_{t+1}]

Parameters are a plain dict of arrays: W_hx (H, V), W_hh (H, H), b_h (H,), W_yh (V, H), b_y (V,).
A batch is B sequences of length T: ``inputs`` and ``targets`` are int arrays (B, T), ``h0`` is (B, H).

Two engines compute the same gradients with autograd:
- ``"autograd"`` traces every operation of every time step (the reference definition);
- ``"fused"`` (default) makes the whole recurrence one autograd primitive, and the output layer with the loss
  another, whose VJPs are hand-written backward passes over the numpy operations of ``ops.py``, so autograd still
  differentiates the model while the time loop runs in plain numpy (or the browser's SIMD kernels).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import autograd.numpy as anp
import numpy as np
from autograd import value_and_grad
from autograd.extend import defvjp_argnums, primitive
from autograd.tracer import getval

from . import ops
from .errors import ConfigError
from .vocab import MAX_VOCAB_SIZE

CELLS = ("rnn",)
ENGINES = ("fused", "autograd")
PARAM_NAMES = ("W_hx", "W_hh", "b_h", "W_yh", "b_y")
NATS_TO_BITS = 1.0 / math.log(2.0)
MAX_HIDDEN_SIZE = 4096


@dataclass(frozen=True)
class ModelConfig:
    """What fixes the parameter shapes: vocabulary size V, hidden size H and the cell type."""

    vocab_size: int
    hidden_size: int
    cell: str = "rnn"

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ConfigError(f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        for name, value, upper in (("vocab_size", self.vocab_size, MAX_VOCAB_SIZE), ("hidden_size", self.hidden_size, MAX_HIDDEN_SIZE)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= upper:
                raise ConfigError(f"{name} must be a whole number from 1 to {upper}, got {value!r}")

    def param_shapes(self) -> dict:
        V, H = self.vocab_size, self.hidden_size
        return {"W_hx": (H, V), "W_hh": (H, H), "b_h": (H,), "W_yh": (V, H), "b_y": (V,)}

    def to_dict(self) -> dict:
        return asdict(self)


def init_params(config: ModelConfig, seed: int = 0, dtype=np.float64) -> dict:
    """Small Gaussian weights (W_hh entries have std 0.9/sqrt(H), so its spectral radius starts near 0.9),
    zero biases; the same ``seed`` gives the same parameters."""
    rng = np.random.default_rng(seed)
    V, H = config.vocab_size, config.hidden_size
    params = {
        "W_hx": rng.standard_normal((H, V)) * 0.1,
        "W_hh": rng.standard_normal((H, H)) * (0.9 / math.sqrt(H)),
        "b_h": np.zeros(H),
        "W_yh": rng.standard_normal((V, H)) * (1.0 / math.sqrt(H)) * 0.1,
        "b_y": np.zeros(V),
    }
    return {k: v.astype(dtype) for k, v in params.items()}


def init_hidden(config: ModelConfig, batch_size: int, dtype=np.float64) -> np.ndarray:
    """The zero hidden state, (B, H)."""
    return np.zeros((batch_size, config.hidden_size), dtype=dtype)


# --- the recurrence, two ways -------------------------------------------------------------------------------

def _traced_hidden_states(W_hx, W_hh, b_h, h0, inputs_tm):
    """hs (T, B, H) with every step traced by autograd."""
    xs = anp.transpose(W_hx)[inputs_tm]  # (T, B, H)
    h, hs = h0, []
    for t in range(inputs_tm.shape[0]):
        h = anp.tanh(xs[t] + anp.dot(h, anp.transpose(W_hh)) + b_h)
        hs.append(h)
    return anp.stack(hs, axis=0)


@primitive
def fused_hidden_states(W_hx, W_hh, b_h, h0, inputs_tm):
    """hs (T, B, H) as one autograd primitive: numpy loop forward, manual BPTT backward."""
    return ops.recurrence_forward(W_hx, W_hh, b_h, h0, inputs_tm)


def _fused_vjp(argnums, hs, args, kwargs):
    W_hx, W_hh, b_h, h0, inputs_tm = args

    def vjp(dhs):
        dW_hx, dW_hh, db_h, dh0, _ = ops.recurrence_backward(W_hh, hs, h0, inputs_tm, dhs, W_hx.shape[1])
        by_arg = (dW_hx, dW_hh, db_h, dh0)
        return tuple(by_arg[i] for i in argnums)

    return vjp


defvjp_argnums(fused_hidden_states, _fused_vjp)


# --- the output layer and the loss, two ways ----------------------------------------------------------------

@primitive
def _output_loss_and_dlogits(hs, W_yh, b_y, targets_tm):
    """(mean softmax cross-entropy in nats, its gradient w.r.t. the logits (T·B, V)) for hs (T, B, H) and ids
    (T, B). The gradient is a by-product of the forward pass, so the VJP reuses it instead of recomputing the
    logits and the softmax; the second output is a constant (never differentiated)."""
    T, B, H = hs.shape
    return ops.softmax_cross_entropy(ops.output_logits(hs.reshape(T * B, H), W_yh, b_y), targets_tm.reshape(T * B))


def _fused_output_vjp(argnums, ans, args, kwargs):
    hs, W_yh, _, _ = args
    T, B, H = hs.shape
    dlogits = ans[1]

    def vjp(g):
        g_loss = np.asarray(g[0], dtype=dlogits.dtype)
        dhs, dW_yh, db_y = ops.output_backward(dlogits * g_loss, hs.reshape(T * B, H), W_yh)
        by_arg = (dhs.reshape(T, B, H), dW_yh, db_y)
        return tuple(by_arg[i] for i in argnums)

    return vjp


defvjp_argnums(_output_loss_and_dlogits, _fused_output_vjp)


def fused_output_loss(hs, W_yh, b_y, targets_tm):
    """Output layer + mean softmax cross-entropy (nats) of hs (T, B, H) against ids (T, B), as one primitive."""
    return _output_loss_and_dlogits(hs, W_yh, b_y, targets_tm)[0]


def _traced_output_loss(hs, W_yh, b_y, targets_tm):
    """The same loss with every operation traced by autograd."""
    T, B, H = hs.shape
    logits = anp.dot(anp.reshape(hs, (T * B, H)), anp.transpose(W_yh)) + b_y  # the whole window in one product
    shift = np.max(getval(logits), axis=-1, keepdims=True)  # a constant: log-softmax is shift-invariant
    log_norm = anp.log(anp.sum(anp.exp(logits - shift), axis=-1)) + shift[..., 0]
    onehot = np.eye(logits.shape[-1], dtype=bool)[targets_tm.reshape(T * B)]  # (T·B, V) constant mask
    return anp.mean(log_norm - anp.sum(logits * onehot, axis=-1))


_HIDDEN_STATES = {"autograd": _traced_hidden_states, "fused": fused_hidden_states}
_OUTPUT_LOSS = {"autograd": _traced_output_loss, "fused": fused_output_loss}


def _check_engine(engine):
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")


def _time_major(inputs, targets=None):
    inputs_tm = np.ascontiguousarray(np.asarray(inputs, dtype=np.int64).T)
    if targets is None:
        return inputs_tm
    return inputs_tm, np.ascontiguousarray(np.asarray(targets, dtype=np.int64).T)


def _loss_tm(params, h0, inputs_tm, targets_tm, engine):
    hidden_states = _HIDDEN_STATES[engine]
    hs = hidden_states(params["W_hx"], params["W_hh"], params["b_h"], h0, inputs_tm)
    return _OUTPUT_LOSS[engine](hs, params["W_yh"], params["b_y"], targets_tm), hs


def loss(params, inputs, targets, h0, engine="fused"):
    """Mean cross-entropy in nats per character; differentiable by autograd w.r.t. ``params`` and ``h0``."""
    _check_engine(engine)
    inputs_tm, targets_tm = _time_major(inputs, targets)
    return _loss_tm(params, h0, inputs_tm, targets_tm, engine)[0]


class LossAndGrads(NamedTuple):
    loss: float
    grads: dict  # every parameter name plus "h0"
    h_last: np.ndarray  # (B, H), to carry into the next window


def loss_and_grads(params, inputs, targets, h0, engine="fused") -> LossAndGrads:
    """Loss and its gradient w.r.t. every parameter and ``h0``, from autograd."""
    _check_engine(engine)
    inputs_tm, targets_tm = _time_major(inputs, targets)
    names = PARAM_NAMES + ("h0",)
    hs_box = []

    def objective(arrays):  # a flat tuple: autograd boxes it more cheaply than a dict
        value, hs = _loss_tm(dict(zip(PARAM_NAMES, arrays)), arrays[-1], inputs_tm, targets_tm, engine)
        hs_box.append(hs)
        return value

    value, gradients = value_and_grad(objective)(tuple(params[k] for k in PARAM_NAMES) + (h0,))
    h_last = np.array(getval(hs_box[-1])[-1])
    return LossAndGrads(float(value), dict(zip(names, gradients)), h_last)


def forward(params, inputs, h0):
    """Logits (B, T, V) and hidden states (B, T, H) for ids ``inputs`` (B, T) from ``h0`` (B, H)."""
    inputs_tm = _time_major(inputs)
    hs = ops.recurrence_forward(params["W_hx"], params["W_hh"], params["b_h"], h0, inputs_tm)
    T, B, H = hs.shape
    logits = ops.output_logits(hs.reshape(T * B, H), params["W_yh"], params["b_y"]).reshape(T, B, -1)
    return logits.transpose(1, 0, 2), hs.transpose(1, 0, 2)


def _nll(params, inputs, targets, h0):
    """Negative log-likelihoods (B, T) of ``targets`` and the last hidden state (B, H), in plain numpy."""
    logits, hs = forward(params, inputs, h0)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    targets = np.asarray(targets, dtype=np.int64)
    return -np.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0], hs[:, -1]


def evaluate_batch_loss(params, inputs, targets, h0) -> float:
    """Mean nats/char of a batch without autograd (for evaluation and finite differences)."""
    return float(_nll(params, inputs, targets, h0)[0].mean(dtype=np.float64))


def evaluate_loss(params, ids, window: int = 256) -> float:
    """Mean nats/char of predicting ids[1:] from ids[:-1] as one stream, the hidden state carried through."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size < 2:
        raise ValueError("need at least 2 characters to evaluate a loss")
    h = np.zeros((1, params["W_hh"].shape[0]), dtype=params["W_hh"].dtype)
    total = 0.0
    for start in range(0, ids.size - 1, window):
        y = ids[start + 1:start + window + 1][None, :]
        nll, h = _nll(params, ids[start:start + y.shape[1]][None, :], y, h)
        total += float(nll.sum(dtype=np.float64))
    return total / (ids.size - 1)
