"""Explaining a model's predictions over a passage: what each prediction depends on, what the gates do, what the
model expects next. Pure functions of a params dict and character ids; every result is float64.

- ``connectivity``: for the prediction of ids[p+1] after reading ids[0..p], ‖∂ log p(x_{p+1}) / ∂e_s‖ for every
  s ≤ p, where e_s is the input embedding of x_s as used at step s only (column ids[s] of W_hx, or of the gated
  cells' W_ih). After Madsen, "Visualizing memorization in RNNs" (distill.pub, 2019).
- ``gate_trace``: every gate and state of the cell after each character, from the cell's own forward pass.
- ``top_next``: the k most likely next characters after each character, with their probabilities.
- ``tracking_units``: for each trace, the units that follow simple text properties (``probes``).

The passage is read from the state ``h0`` (S,) or (1, S) (S = H, or 2H for the LSTM's [h | c]); None is zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bptt import last_step_bptt
from .cells import get_cell
from .errors import ConfigError
from .model import forward, recurrence_weights
from .probes import UnitMatch, text_features, unit_correlations
from .vocab import check_ids


def _model(params, cell) -> dict:
    """The ``cell`` model's arrays of ``params`` as float64, or ``ConfigError`` naming what is missing."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    recurrence_weights(params, cell)  # names the missing recurrence parameters
    missing = [name for name in get_cell(cell).param_names if name not in params]
    if missing:
        raise ConfigError(f"params must hold the {cell} model's arrays: {', '.join(missing)} missing")
    return {name: np.asarray(params[name], dtype=np.float64) for name in get_cell(cell).param_names}


def _ids(model, ids) -> np.ndarray:
    """``ids`` as int64 (N,), N ≥ 1, every one in [0, V)."""
    if np.ndim(ids) != 1 or np.size(ids) == 0:
        raise ConfigError(f"ids must be a 1-D sequence of at least one character id, got shape {np.shape(ids)}")
    return check_ids(ids, model["b_y"].shape[0], "ids")


def _state(model, h0, cell) -> np.ndarray:
    """The start state (1, S) as float64: zeros for None."""
    S = get_cell(cell).state_size(model["W_yh"].shape[1])
    if h0 is None:
        return np.zeros((1, S))
    state = np.asarray(h0, dtype=np.float64)
    if state.shape not in ((S,), (1, S)) or not np.isfinite(state).all():
        raise ConfigError(f"h0 must be a finite state of shape ({S},) or (1, {S}) for this {cell} model, "
                          f"got shape {state.shape}")
    return state.reshape(1, S)


def _whole_number(name, value, low, high) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return int(value)


def connectivity(params: dict, ids, position: int, h0=None, cell: str = "rnn") -> np.ndarray:
    """‖∂ log p(ids[position+1]) / ∂e_s‖ for s = 0..position, shape (position + 1,): how much the prediction of
    the character after ids[position] (made after reading ids[0..position]) depends on the input embedding e_s of
    each character read so far. ``ids`` (N,); 0 ≤ ``position`` ≤ N − 2.

    e_s is column ids[s] of the input weights as used at step s alone: the passage is read with input weights whose
    column s is that column and inputs 0, 1, ..., position, so the hand-written backward pass (``bptt``) puts the
    gradient of each step in its own column."""
    model = _model(params, cell)
    ids = _ids(model, ids)
    if ids.size < 2:
        raise ConfigError("ids must hold at least 2 characters (one read, one predicted), got 1")
    position = _whole_number("position", position, 0, ids.size - 2)
    steps = position + 1
    inputs_name = get_cell(cell).recurrence_names[0]
    per_step = dict(model, **{inputs_name: np.ascontiguousarray(model[inputs_name][:, ids[:steps]])})
    inputs = np.arange(steps)[None, :]
    targets = np.zeros_like(inputs)
    targets[0, -1] = ids[steps]
    grads = last_step_bptt(per_step, inputs, targets, _state(model, h0, cell), cell).grads[inputs_name]
    return np.sqrt((grads * grads).sum(axis=0))  # the norm of -∂ log p / ∂e_s, column by column


def gate_trace(params: dict, ids, h0=None, cell: str = "rnn") -> dict[str, np.ndarray]:
    """Every gate and state of the cell after each of the ids (N,), each (N, H), from the cell's own forward pass:
    rnn {"h"}; gru {"r", "z" (update gate), "n" (candidate), "h"}; lstm {"i", "f" (forget gate), "g", "o",
    "c" (cell state), "h"} (equations in gru.py and lstm.py)."""
    model = _model(params, cell)
    ids = _ids(model, ids)
    spec = get_cell(cell)
    weights = tuple(model[name] for name in spec.recurrence_names)
    hs, _, cache = spec.forward(weights, _state(model, h0, cell), ids[:, None])
    H = hs.shape[2]
    trace = {}
    if spec.gate_names:  # the gated cells' forward leaves the gates [r | z | n] or [i | f | g | o] in cache[0]
        gates = cache[0][:, 0, :]
        trace.update({name: gates[:, k * H:(k + 1) * H].copy() for k, name in enumerate(spec.gate_names)})
    if spec.state_parts == 2:  # the LSTM's cache[1] holds c_t
        trace["c"] = cache[1][:, 0, :].copy()
    trace["h"] = hs[:, 0, :].copy()
    return trace


@dataclass(frozen=True)
class TopNext:
    ids: np.ndarray  # (N, k) int64: after ids[t], the k most likely next characters, most likely first
    probs: np.ndarray  # (N, k) float64: their probabilities


def next_probabilities(params: dict, ids, h0=None, cell: str = "rnn") -> np.ndarray:
    """softmax(W_yh h_t + b_y) after each of the ids (N,): the next-character distributions (N, V)."""
    model = _model(params, cell)
    ids = _ids(model, ids)
    logits = forward(model, ids[None, :], _state(model, h0, cell), cell)[0][0]
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def top_next(params: dict, ids, k: int = 5, h0=None, cell: str = "rnn") -> TopNext:
    """The ``k`` (1 ≤ k ≤ V) most likely characters after each of the ids (N,), with their probabilities; ties
    go to the smaller id."""
    probs = next_probabilities(params, ids, h0, cell)
    k = _whole_number("k", k, 1, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return TopNext(order, np.take_along_axis(probs, order, axis=1))


def tracking_units(trace: dict, text: str, per_feature: int = 3) -> dict[str, list[UnitMatch]]:
    """For each array (N, H) of ``trace`` (e.g. ``gate_trace``'s), the ``per_feature`` units that best follow each
    of ``probes.FEATURES`` over ``text`` (N characters), by ``probes.unit_correlations``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not isinstance(trace, dict):
        raise TypeError(f"trace must be a dict of (N, H) arrays, got {type(trace).__name__}")
    per_feature = _whole_number("per_feature", per_feature, 1, 10**6)
    features = text_features(text)
    out = {}
    for name, values in trace.items():
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] != len(text):
            raise ConfigError(f"trace[{name!r}] must have one row per character of text ({len(text)}), got shape "
                              f"{values.shape}")
        out[name] = unit_correlations(values, features, per_feature)
    return out
