"""Looking inside a trained model: which hidden units track something simple, and how well it remembers.

After Karpathy, Johnson & Fei-Fei, "Visualizing and Understanding Recurrent Networks" (2015): run the model over
a passage, keep every hidden state h_t, and correlate each unit with simple properties of the text (inside quotes,
inside brackets, position in the line). A unit whose activation follows such a property is a piece of memory one
can see. ``recall_accuracy`` scores the memory experiment of ``corpora.recall_corpus``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .model import MAX_HIDDEN_SIZE, forward

OPENERS, CLOSERS = "([{", ")]}"
FEATURES = ("inside quotes", "inside brackets", "position in line")
MAX_PASSAGE = 100_000  # characters of a passage read or described at once


def _passage_text(text) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if len(text) > MAX_PASSAGE:
        raise ConfigError(f"text must be at most {MAX_PASSAGE:,} characters, got {len(text):,}")
    return text


def _whole_number(name, value, low, high) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number from {low:,} to {high:,}, got {value!r}")
    return int(value)


def _rows(name, value, ndim: int, shape: str) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != ndim or array.dtype.kind not in "iuf" or array.shape[0] == 0:
        raise ConfigError(f"{name} must be a non-empty array {shape} of numbers, got shape {array.shape} "
                          f"and dtype {array.dtype}")
    return array


def text_features(text: str) -> dict[str, np.ndarray]:
    """For every character of ``text``, the value (N,) of each of ``FEATURES`` *after* reading it: 1.0 inside a
    double-quoted span, the bracket nesting depth, and the number of characters since the last newline.
    ``text``: at most ``MAX_PASSAGE`` characters."""
    text = _passage_text(text)
    quotes, depth, column = np.zeros(len(text)), np.zeros(len(text)), np.zeros(len(text))
    inside, level, col = False, 0, 0
    for i, c in enumerate(text):
        inside ^= c == '"'
        level = level + 1 if c in OPENERS else max(0, level - 1) if c in CLOSERS else level
        col = 0 if c == "\n" else col + 1
        quotes[i], depth[i], column[i] = inside, level, col
    return dict(zip(FEATURES, (quotes, depth, column)))


@dataclass(frozen=True)
class UnitMatch:
    feature: str  # one of FEATURES
    unit: int  # index into h_t
    correlation: float  # Pearson r of the unit's activation with the feature over the passage


def unit_correlations(states: np.ndarray, features: dict[str, np.ndarray], per_feature: int = 3) -> list[UnitMatch]:
    """The ``per_feature`` units whose activations ``states`` (N, H) correlate best (by |r|) with each feature
    (N,), best first. A feature that does not vary over the passage has no match. ``per_feature``: 1 to
    ``MAX_HIDDEN_SIZE``."""
    states = _rows("states", states, 2, "(N, H)")
    per_feature = _whole_number("per_feature", per_feature, 1, MAX_HIDDEN_SIZE)
    if not isinstance(features, dict):
        raise TypeError(f"features must be a dict of name -> values (N,), e.g. text_features(text), got "
                        f"{type(features).__name__}")
    for name, values in features.items():
        if name not in FEATURES or np.shape(values) != states.shape[:1]:
            raise ConfigError(f"features must map names of FEATURES ({', '.join(FEATURES)}) to arrays of shape "
                              f"{states.shape[:1]} (one value per row of states), got {name!r} of shape "
                              f"{np.shape(values)}")
    centred = states - states.mean(axis=0)
    scale = np.sqrt((centred * centred).sum(axis=0))
    matches = []
    for name, values in features.items():
        v = values - values.mean()
        norm = np.sqrt(v @ v)
        if norm == 0:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(scale > 0, (v @ centred) / (scale * norm), 0.0)
        for unit in np.argsort(-np.abs(r), kind="stable")[:per_feature]:
            matches.append(UnitMatch(name, int(unit), float(r[unit])))
    return sorted(matches, key=lambda m: (FEATURES.index(m.feature), -abs(m.correlation)))


def read_passage(params: dict, ids: np.ndarray, h0: np.ndarray, cell: str = "rnn") -> tuple[np.ndarray, np.ndarray]:
    """(hidden states h_t (N, H), logits (N, V)) after each of the ids (N,) of a ``cell`` model, from the state
    ``h0`` (1, S) (S = H, or 2H for the LSTM's [h | c]): row t of the logits predicts the character after ids[t].
    ``ids``: 1 to ``MAX_PASSAGE`` of them."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or not 1 <= ids.size <= MAX_PASSAGE:
        raise ConfigError(f"ids must be a 1-D array of 1 to {MAX_PASSAGE:,} character ids, got shape {ids.shape}")
    logits, hs = forward(params, np.asarray(ids, dtype=np.int64)[None, :], h0, cell)
    return hs[0], logits[0]


def recall_accuracy(logits: np.ndarray, ids: np.ndarray, positions) -> float:
    """The share of ``positions`` (indices into ``ids``, each ≥ 1) whose character is the model's most likely
    prediction from the character before it (``logits`` (N, V) as from ``read_passage``)."""
    logits = _rows("logits", logits, 2, "(N, V)")
    ids = np.asarray(ids)
    if ids.shape != logits.shape[:1] or ids.dtype.kind not in "iu":
        raise ConfigError(f"ids must be integer ids of shape {logits.shape[:1]} (one per row of logits), got shape "
                          f"{ids.shape} and dtype {ids.dtype}")
    positions = np.asarray(positions)
    N = ids.shape[0]
    if positions.ndim != 1 or positions.size == 0 or (positions.dtype.kind not in "iu") or not (
            (positions >= 1) & (positions < N)).all():
        raise ConfigError(f"positions must be a non-empty list of indices from 1 to {N - 1} (into ids, each after "
                          f"the character that predicts it), got {np.ravel(positions).tolist()[:5]!r}"
                          + ("…" if positions.size > 5 else ""))
    return float((logits[positions - 1].argmax(axis=-1) == np.asarray(ids)[positions]).mean())
