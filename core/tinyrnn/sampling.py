"""Sampling text from a trained model, one character at a time."""

from __future__ import annotations

import numpy as np

from .cells import get_cell
from .config import SETTINGS, is_number
from .errors import ConfigError
from .model import recurrence_weights
from .vocab import Vocabulary

MAX_SAMPLE_LENGTH = 100_000


def _check_sampling_inputs(params, vocab, prime, seed, cell) -> None:
    if not isinstance(vocab, Vocabulary):
        raise TypeError(f"vocab must be a Vocabulary, got {type(vocab).__name__}")
    if not isinstance(prime, str):
        raise TypeError(f"prime must be a str, got {type(prime).__name__}")
    if seed is not None:
        SETTINGS["seed"].check(seed)
    names = get_cell(cell).param_names
    if not isinstance(params, dict) or any(k not in params for k in names):
        raise ConfigError(f"params of a {cell} model must be a dict with the arrays {', '.join(names)}")
    vocab_size = np.shape(params["W_yh"])[0] if np.ndim(params["W_yh"]) == 2 else None
    if vocab_size != vocab.size:
        raise ConfigError(f"the vocabulary has {vocab.size} symbols but the parameters are for {vocab_size} "
                          f"(W_yh has shape {np.shape(params['W_yh'])}); use the vocabulary saved with them")
    expected = get_cell(cell).param_shapes(vocab.size, np.shape(params["W_yh"])[1])
    wrong = [f"{k} {np.shape(params[k])} (expected {shape})" for k, shape in expected.items()
             if np.shape(params[k]) != shape]
    if wrong:
        raise ConfigError(f"these parameters do not fit a {cell} model (is cell the model's?): {', '.join(wrong)}")


def sample(params: dict, vocab, length: int, prime: str = "", temperature: float = 1.0,
           seed: int | None = None, cell: str = "rnn") -> str:
    """``length`` characters continuing ``prime`` (the prime itself is not returned).

    The next-character distribution from hidden state h is softmax((W_yh h + b_y) / temperature); ``cell`` is
    the model's cell (``TrainConfig.cell``). The prime is fed through the network first; with no prime the state
    is zero, so the first character comes from softmax(b_y / temperature).
    ``temperature == 0`` picks the most likely character (greedy)."""
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or not 0 <= length <= MAX_SAMPLE_LENGTH:
        raise ConfigError(f"length must be a whole number from 0 to {MAX_SAMPLE_LENGTH:,}, got {length!r}")
    if not (is_number(temperature) and 0 <= temperature <= 100):
        raise ConfigError(f"temperature must be a number in [0, 100], got {temperature!r}")
    _check_sampling_inputs(params, vocab, prime, seed, cell)
    recurrence = get_cell(cell)
    weights = tuple(np.asarray(w, dtype=np.float64) for w in recurrence_weights(params, cell))
    W_yh, b_y = (np.asarray(params[k], dtype=np.float64) for k in ("W_yh", "b_y"))
    rng = np.random.default_rng(seed)
    step = recurrence.stepper(weights)
    h = np.zeros(W_yh.shape[1])
    state = np.zeros(recurrence.state_size(W_yh.shape[1]))
    for i in vocab.encode(prime):
        h, state = step(state, i)
    out = []
    for _ in range(length):
        logits = W_yh @ h + b_y
        if temperature == 0:
            i = int(np.argmax(logits))
        else:
            with np.errstate(over="ignore"):  # a tiny temperature: every logit below the maximum scales to -inf
                z = (logits - logits.max()) / temperature
            p = np.exp(z)
            i = int(rng.choice(p.size, p=p / p.sum()))
        out.append(i)
        h, state = step(state, i)
    return vocab.decode(out)
