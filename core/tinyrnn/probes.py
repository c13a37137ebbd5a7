"""Looking inside a trained model: which hidden units track something simple, and how well it remembers.

After Karpathy, Johnson & Fei-Fei, "Visualizing and Understanding Recurrent Networks" (2015): run the model over
a passage, keep every hidden state h_t, and correlate each unit with simple properties of the text (inside quotes,
inside brackets, position in the line). A unit whose activation follows such a property is a piece of memory one
can see. ``recall_accuracy`` scores the memory experiment of ``corpora.recall_corpus``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import forward

OPENERS, CLOSERS = "([{", ")]}"
FEATURES = ("inside quotes", "inside brackets", "position in line")


def text_features(text: str) -> dict[str, np.ndarray]:
    """For every character of ``text``, the value (N,) of each of ``FEATURES`` *after* reading it: 1.0 inside a
    double-quoted span, the bracket nesting depth, and the number of characters since the last newline."""
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
    (N,), best first. A feature that does not vary over the passage has no match."""
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
    ``h0`` (1, S) (S = H, or 2H for the LSTM's [h | c]): row t of the logits predicts the character after ids[t]."""
    logits, hs = forward(params, np.asarray(ids, dtype=np.int64)[None, :], h0, cell)
    return hs[0], logits[0]


def recall_accuracy(logits: np.ndarray, ids: np.ndarray, positions) -> float:
    """The share of ``positions`` (indices into ``ids``, each ≥ 1) whose character is the model's most likely
    prediction from the character before it (``logits`` (N, V) as from ``read_passage``)."""
    positions = np.asarray(positions, dtype=np.int64)
    if positions.size == 0:
        raise ValueError("no recall positions in this text")
    return float((logits[positions - 1].argmax(axis=-1) == np.asarray(ids)[positions]).mean())
