"""The recurrent cells: one record per cell with its parameter names and shapes, its state size and its three
implementations of the recurrence (traced autograd, numpy forward, hand-written numpy backward).

    rnn   h_t = tanh(W_hx x_t + W_hh h_{t-1} + b_h)                       (ops.py)
    gru   PyTorch's GRU, gates r, z, n                                    (gru.py)
    lstm  PyTorch's LSTM, gates i, f, g, o; the state is [h | c]          (lstm.py)

Every cell has the same output layer (W_yh (V, H), b_y (V,)) on top of h_t. The recurrence functions take the
cell's own parameters as a tuple ``weights`` in the order of ``recurrence_names``, the state (B, S) and
time-major ids (T, B):

    forward(weights, state0, inputs_tm)  -> (hs (T, B, H), last state (B, S), cache)         numpy
                                            (the gated cells take ``prepare(weights)`` as a 4th argument too)
    backward(weights, state0, inputs_tm, hs, cache, dhs, with_norms)
                                         -> (weight gradients, ∂L/∂state0, {"h": ‖∂L/∂h_t‖, ("c": ...)})
    traced(weights, state0, inputs_tm)   -> (hs, last state)                                  autograd.numpy

``backward`` may overwrite ``cache``. The state S is H wide for rnn and gru, 2H ([h | c]) for the LSTM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import autograd.numpy as anp
import numpy as np

from . import gru, lstm, ops
from .errors import ConfigError

OUTPUT_NAMES = ("W_yh", "b_y")


@dataclass(frozen=True)
class Cell:
    name: str
    description: str  # one line, for a cell selector
    gates: int  # row blocks of W_hh: 1 (rnn), 3 (gru), 4 (lstm)
    state_parts: int  # 1: the state is h; 2: the state is [h | c]
    recurrence_names: tuple
    forward: Callable
    backward: Callable
    traced: Callable
    label: str = ""  # its short name in sentences and legends: "tanh RNN", "GRU", "LSTM"
    gate_names: tuple = ()  # the row blocks of W_hh in order (the gated cells' gates), as ``gate_trace`` names them
    prepare: Callable | None = None  # gated cells: weights -> what ``forward`` reads, for its ``prepared`` argument

    @property
    def param_names(self) -> tuple:
        return self.recurrence_names + OUTPUT_NAMES

    def state_size(self, hidden_size: int) -> int:
        return self.state_parts * hidden_size

    def param_shapes(self, vocab_size: int, hidden_size: int) -> dict:
        V, H, G = vocab_size, hidden_size, self.gates
        rows = G * H
        recurrence = ((H, V), (H, H), (H,)) if self.name == "rnn" else ((rows, V), (rows, H), (rows,), (rows,))
        return dict(zip(self.param_names, recurrence + ((V, H), (V,))))

    def init_params(self, vocab_size: int, hidden_size: int, rng) -> dict:
        """Small Gaussian weights: input weights std 0.1, recurrent std 0.9/sqrt(H) (rnn: spectral radius near
        0.9) or 1/sqrt(H) (gated cells, whose gates shrink the recurrent path), zero biases except the LSTM's
        forget gate (b_ih's f block = 1, so c is kept at first), then the output layer (std 0.1/sqrt(H))."""
        V, H = vocab_size, hidden_size
        shapes = self.param_shapes(V, H)
        names = self.recurrence_names
        params = {names[0]: rng.standard_normal(shapes[names[0]]) * 0.1,
                  names[1]: rng.standard_normal(shapes[names[1]]) * ((0.9 if self.name == "rnn" else 1.0) / math.sqrt(H))}
        params.update({name: np.zeros(shapes[name]) for name in names[2:]})
        if self.name == "lstm":
            params["b_ih"][H:2 * H] = 1.0
        params["W_yh"] = rng.standard_normal((V, H)) * (1.0 / math.sqrt(H)) * 0.1
        params["b_y"] = np.zeros(V)
        return params

    def stepper(self, weights) -> Callable:
        """``step(state (S,), i) -> (h (H,), new state (S,))``: one step of one sequence after id ``i``, in
        float64 (for sampling); what ``forward`` would redo at every step (``prepare``) is done once here."""
        if self.name == "rnn":
            W_hx, W_hh, b_h = weights

            def step(state, i):
                h = np.tanh(W_hx[:, i] + W_hh @ state + b_h)
                return h, h
            return step
        prepared = self.prepare(weights)

        def step(state, i):
            hs, last, _ = self.forward(weights, state[None], np.array([[i]]), prepared)
            return hs[0, 0], last[0]
        return step


def _rnn_forward(weights, h0, inputs_tm):
    hs = ops.recurrence_forward(*weights, h0, inputs_tm)
    return hs, hs[-1], ()


def _rnn_backward(weights, h0, inputs_tm, hs, cache, dhs, with_norms=False):
    W_hx, W_hh, _ = weights
    dW_hx, dW_hh, db_h, dh0, norms = ops.recurrence_backward(W_hh, hs, h0, inputs_tm, dhs, W_hx.shape[1], with_norms)
    return (dW_hx, dW_hh, db_h), dh0, ({"h": norms} if with_norms else {})


def _rnn_traced(weights, h0, inputs_tm):
    W_hx, W_hh, b_h = weights
    xs = anp.transpose(W_hx)[inputs_tm]  # (T, B, H)
    h, hs = h0, []
    for t in range(inputs_tm.shape[0]):
        h = anp.tanh(xs[t] + anp.dot(h, anp.transpose(W_hh)) + b_h)
        hs.append(h)
    return anp.stack(hs, axis=0), h


_GATED_NAMES = ("W_ih", "W_hh", "b_ih", "b_hh")  # torch's weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0

CELLS: dict[str, Cell] = {c.name: c for c in (
    Cell("rnn", "tanh RNN: h = tanh(W x + U h + b), the simplest memory; its gradients fade fastest",
         1, 1, ("W_hx", "W_hh", "b_h"), _rnn_forward, _rnn_backward, _rnn_traced, "tanh RNN"),
    Cell("gru", "GRU: update and reset gates choose how much of h to keep, so gradients travel further",
         3, 1, _GATED_NAMES, gru.recurrence_forward, gru.recurrence_backward, gru.traced_recurrence, "GRU",
         ("r", "z", "n"), gru.prepare),
    Cell("lstm", "LSTM: a separate memory c with input, forget and output gates; the longest memory",
         4, 2, _GATED_NAMES, lstm.recurrence_forward, lstm.recurrence_backward, lstm.traced_recurrence, "LSTM",
         ("i", "f", "g", "o"), lstm.prepare),
)}
CELL_NAMES = tuple(CELLS)


def get_cell(name: str) -> Cell:
    """The cell called ``name``, or ``ConfigError`` naming the cells."""
    if not isinstance(name, str) or name not in CELLS:
        raise ConfigError(f"cell must be one of {', '.join(CELLS)}, got {name!r}")
    return CELLS[name]
