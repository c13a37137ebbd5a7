"""The model: a recurrent cell (tanh RNN, GRU or LSTM: ``cells.py``) over characters, its loss, and its
gradients by autograd.

    h_t = cell(x_t, state_{t-1})        y_t = W_yh h_t + b_y        loss = mean_t -log softmax(y_t)[x_{t+1}]

Parameters are a plain dict of arrays whose names and shapes ``ModelConfig.param_shapes()`` gives per cell
(tanh RNN: W_hx (H, V), W_hh (H, H), b_h (H,), W_yh (V, H), b_y (V,); GRU/LSTM: torch's W_ih, W_hh, b_ih, b_hh,
then W_yh, b_y). A batch is B sequences of length T: ``inputs`` and ``targets`` are int arrays (B, T); the state
``h0`` is (B, S) with S = H (rnn, gru) or 2H (lstm: [h | c]).

Two engines compute the same gradients with autograd:
- ``"autograd"`` traces every operation of every time step (the reference definition);
- ``"fused"`` (default) makes the whole recurrence one autograd primitive, and the output layer with the loss
  another, whose VJPs are the cell's hand-written backward pass over numpy operations (``ops.py``, ``gru.py``,
  ``lstm.py``), so autograd still differentiates the model while the time loop runs in plain numpy (or the
  browser's SIMD kernels).
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
from .cells import CELL_NAMES, get_cell
from .errors import ConfigError
from .vocab import MAX_VOCAB_SIZE, check_ids

CELLS = CELL_NAMES
ENGINES = ("fused", "autograd")
PARAM_NAMES = get_cell("rnn").param_names  # the tanh RNN's; other cells: ModelConfig(...).param_names()
NATS_TO_BITS = 1.0 / math.log(2.0)
MAX_HIDDEN_SIZE = 4096


@dataclass(frozen=True)
class ModelConfig:
    """What fixes the parameter shapes: vocabulary size V, hidden size H and the cell type."""

    vocab_size: int
    hidden_size: int
    cell: str = "rnn"

    def __post_init__(self):
        get_cell(self.cell)
        for name, value, upper in (("vocab_size", self.vocab_size, MAX_VOCAB_SIZE), ("hidden_size", self.hidden_size, MAX_HIDDEN_SIZE)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= upper:
                raise ConfigError(f"{name} must be a whole number from 1 to {upper}, got {value!r}")

    def param_names(self) -> tuple:
        return get_cell(self.cell).param_names

    def param_shapes(self) -> dict:
        """Parameter name -> shape, for this cell."""
        return get_cell(self.cell).param_shapes(self.vocab_size, self.hidden_size)

    def state_size(self) -> int:
        """S: the width of the state carried between windows (H, or 2H for the LSTM's [h | c])."""
        return get_cell(self.cell).state_size(self.hidden_size)

    def to_dict(self) -> dict:
        return asdict(self)


def init_params(config: ModelConfig, seed: int = 0, dtype=np.float64) -> dict:
    """Small Gaussian weights, zero biases (``cells.Cell.init_params``); the same ``seed`` gives the same
    parameters."""
    params = get_cell(config.cell).init_params(config.vocab_size, config.hidden_size, np.random.default_rng(seed))
    return {k: v.astype(dtype) for k, v in params.items()}


MAX_STATE_BATCH = 1 << 20


def init_hidden(config: ModelConfig, batch_size: int, dtype=np.float64) -> np.ndarray:
    """The zero state, (B, S)."""
    if not isinstance(config, ModelConfig):
        raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or not 1 <= batch_size <= MAX_STATE_BATCH:
        raise ConfigError(f"batch_size must be a whole number from 1 to {MAX_STATE_BATCH:,}, got {batch_size!r}")
    return np.zeros((batch_size, config.state_size()), dtype=dtype)


def check_state_shape(params, h0, batch: int, cell: str) -> None:
    """``ConfigError`` unless the state ``h0`` is (B, S) for this batch and ``cell`` (S = H, or 2H: [h | c])."""
    recurrence_weights(params, cell)
    expected = (batch, get_cell(cell).state_size(np.shape(params["W_hh"])[-1]))
    if np.shape(h0) != expected:
        width, state = ("2H", " (its state is [h | c])") if get_cell(cell).state_parts == 2 else ("H", "")
        raise ConfigError(f"h0 must be (B, {width}) = {expected} for this batch of a {cell} model{state}, got "
                          f"shape {np.shape(h0)}")


# --- the recurrence, two ways -------------------------------------------------------------------------------

def _traced_recurrence(cell, weights, state0, inputs_tm):
    """(hs (T, B, H), last state (B, S)) with every step traced by autograd."""
    return get_cell(cell).traced(weights, state0, inputs_tm)


@primitive
def _fused(cell, inputs_tm, state0, *weights):
    """(hs (T, B, H), last state (B, S), cache) as one autograd primitive: numpy loop forward, the cell's
    hand-written BPTT backward. The last state and the cache are constants (never differentiated): the loss
    depends on the state only through hs."""
    return get_cell(cell).forward(weights, state0, inputs_tm)


def _fused_vjp(argnums, ans, args, kwargs):
    cell, inputs_tm, state0, *weights = args
    hs, _, cache = ans

    def vjp(g):  # runs once per backward pass; the cell's backward overwrites the cache (it is not kept)
        grads, dstate0, _ = get_cell(cell).backward(weights, state0, inputs_tm, hs, cache, g[0])
        by_arg = (None, None, dstate0) + tuple(grads)
        return tuple(by_arg[i] for i in argnums)

    return vjp


defvjp_argnums(_fused, _fused_vjp)


def _fused_recurrence(cell, weights, state0, inputs_tm):
    hs, last, _ = _fused(cell, inputs_tm, state0, *weights)
    return hs, last


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


_RECURRENCE = {"autograd": _traced_recurrence, "fused": _fused_recurrence}
_OUTPUT_LOSS = {"autograd": _traced_output_loss, "fused": fused_output_loss}


def _check_engine(engine):
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")


def _time_major(params, inputs, targets=None):
    """Ids (B, T) as contiguous time-major int64 (T, B), after checking each lies in [0, V) (V from b_y): a
    negative id would silently wrap around in the embedding lookup."""
    V = np.shape(params["b_y"])[0]
    inputs_tm = np.ascontiguousarray(check_ids(inputs, V, "inputs").T)
    if targets is None:
        return inputs_tm
    return inputs_tm, np.ascontiguousarray(check_ids(targets, V, "targets").T)


def recurrence_weights(params, cell) -> tuple:
    """The cell's own parameters of ``params``, in the order its recurrence functions take them."""
    names = get_cell(cell).recurrence_names
    missing = [name for name in names if name not in params]
    if missing:
        raise ConfigError(f"these parameters are not a {cell} model's: {', '.join(missing)} missing")
    return tuple(params[name] for name in names)


def _loss_tm(params, h0, inputs_tm, targets_tm, engine, cell):
    hs, last = _RECURRENCE[engine](cell, recurrence_weights(params, cell), h0, inputs_tm)
    return _OUTPUT_LOSS[engine](hs, params["W_yh"], params["b_y"], targets_tm), last


def loss(params, inputs, targets, h0, engine="fused", cell="rnn"):
    """Mean cross-entropy in nats per character; differentiable by autograd w.r.t. ``params`` and ``h0``."""
    _check_engine(engine)
    inputs_tm, targets_tm = _time_major(params, inputs, targets)
    check_state_shape(params, h0, inputs_tm.shape[1], cell)
    return _loss_tm(params, h0, inputs_tm, targets_tm, engine, cell)[0]


class LossAndGrads(NamedTuple):
    loss: float
    grads: dict  # every parameter name plus "h0" (the gradient w.r.t. the initial state, (B, S))
    h_last: np.ndarray  # the last state (B, S), to carry into the next window


def loss_and_grads(params, inputs, targets, h0, engine="fused", cell="rnn") -> LossAndGrads:
    """Loss and its gradient w.r.t. every parameter and the state ``h0``, from autograd."""
    _check_engine(engine)
    inputs_tm, targets_tm = _time_major(params, inputs, targets)
    param_names = get_cell(cell).param_names
    check_state_shape(params, h0, inputs_tm.shape[1], cell)
    last_box = []

    def objective(arrays):  # a flat tuple: autograd boxes it more cheaply than a dict
        value, last = _loss_tm(dict(zip(param_names, arrays)), arrays[-1], inputs_tm, targets_tm, engine, cell)
        last_box.append(last)
        return value

    value, gradients = value_and_grad(objective)(tuple(params[k] for k in param_names) + (h0,))
    h_last = np.array(getval(last_box[-1]))
    return LossAndGrads(float(value), dict(zip(param_names + ("h0",), gradients)), h_last)


def forward_with_state(params, inputs, h0, cell="rnn"):
    """Logits (B, T, V), hidden states h_t (B, T, H) and the last state (B, S) for ids ``inputs`` (B, T) from the
    state ``h0`` (B, S), in plain numpy."""
    inputs_tm = _time_major(params, inputs)
    check_state_shape(params, h0, inputs_tm.shape[1], cell)
    hs, last, _ = get_cell(cell).forward(recurrence_weights(params, cell), h0, inputs_tm)
    T, B, H = hs.shape
    logits = ops.output_logits(hs.reshape(T * B, H), params["W_yh"], params["b_y"]).reshape(T, B, -1)
    return logits.transpose(1, 0, 2), hs.transpose(1, 0, 2), last


def forward(params, inputs, h0, cell="rnn"):
    """Logits (B, T, V) and hidden states h_t (B, T, H) for ids ``inputs`` (B, T) from the state ``h0`` (B, S)."""
    return forward_with_state(params, inputs, h0, cell)[:2]


def _nll(params, inputs, targets, h0, cell):
    """Negative log-likelihoods (B, T) of ``targets`` and the last state (B, S), in plain numpy."""
    logits, _, last = forward_with_state(params, inputs, h0, cell)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    targets = np.asarray(targets, dtype=np.int64)
    return -np.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0], last


def evaluate_batch_loss(params, inputs, targets, h0, cell="rnn") -> float:
    """Mean nats/char of a batch without autograd (for evaluation and finite differences)."""
    return float(_nll(params, inputs, targets, h0, cell)[0].mean(dtype=np.float64))


def evaluate_loss(params, ids, window: int = 256, cell="rnn") -> float:
    """Mean nats/char of predicting ids[1:] from ids[:-1] as one stream, the hidden state carried through."""
    ids = check_ids(ids, np.shape(params["b_y"])[0])
    if ids.size < 2:
        raise ValueError("need at least 2 characters to evaluate a loss")
    W_hh = params["W_hh"]
    h = np.zeros((1, get_cell(cell).state_size(W_hh.shape[1])), dtype=W_hh.dtype)
    total = 0.0
    for start in range(0, ids.size - 1, window):
        y = ids[start + 1:start + window + 1][None, :]
        nll, h = _nll(params, ids[start:start + y.shape[1]][None, :], y, h, cell)
        total += float(nll.sum(dtype=np.float64))
    return total / (ids.size - 1)
