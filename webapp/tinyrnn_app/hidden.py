"""Pure functions behind the hidden-state view and the memory readout: colouring a passage by one unit's
activation (every character escaped in its own span), the unit list, and the held-out recall lines. No UI here.

After Karpathy, Johnson & Fei-Fei, "Visualizing and Understanding Recurrent Networks" (2015): a unit's activation
(in [-1, 1] for every cell: tanh, or o·tanh(c) for the LSTM) is shown as the character's background, blue for
negative, white for zero, red for positive.
"""

from __future__ import annotations

import html

import numpy as np

import tinyrnn

MAX_PASSAGE_CHARS = 2000  # the view's longest passage (one span per character)
NEWLINE_MARK = "↵"  # shown before each newline so that line ends are visible
MAX_RECALL_CHARS = 2000  # characters read for the memory readout (many short lines, each from a zero state)
MAX_RECALL_LINES = 64


def colour(value: float) -> str:
    """A CSS colour for an activation: blue (-1) - white (0) - red (+1); values outside [-1, 1] are clipped."""
    a = 0.85 * min(1.0, abs(float(value))) if np.isfinite(value) else 0.0
    light = round(255 * (1 - a))
    return f"rgb(255,{light},{light})" if value > 0 else f"rgb({light},{light},255)"


def passage_html(text: str, activations, unit: int) -> str:
    """``text`` with each character in its own ``<span>`` whose background is ``activations`` (len(text),) of
    ``unit``; every character goes through ``html.escape``, each newline is shown as ``NEWLINE_MARK``."""
    spans = []
    for char, value in zip(text, np.asarray(activations, dtype=np.float64)):
        shown = NEWLINE_MARK + "\n" if char == "\n" else html.escape(char, quote=True)
        spans.append(f'<span style="background:{colour(value)}" title="unit {unit}: {value:+.2f}">{shown}</span>')
    return ('<div class="tr-passage-text" style="white-space:pre-wrap;word-break:break-all;line-height:1.5;'
            'font-family:ui-monospace,Menlo,Consolas,monospace;font-size:0.9em">' + "".join(spans) + "</div>")


def match_label(match) -> str:
    """A ``tinyrnn.UnitMatch`` in words, e.g. "inside quotes: unit 17 (r = +0.62)"."""
    return f"{match.feature}: unit {match.unit} (r = {match.correlation:+.2f})"


def recall_rows(text: str, max_chars: int = MAX_RECALL_CHARS, max_lines: int = MAX_RECALL_LINES):
    """The complete recall lines of ``text`` (a held-out part of a ``recall_corpus`` text), each with the newline
    before it, as far as ``max_chars`` characters and ``max_lines`` lines allow: (rows list[str] all of one length,
    k) with k the recall distance; ([], None) if ``text`` is not recall text."""
    lines, k = tinyrnn.recall_lines(text)
    if not lines:
        return [], None
    n = max(1, min(max_lines, len(lines), max_chars // (k + 2)))
    return ["\n" + line for line in lines[:n]], k


def recall_score(trainer, rows: list[str], k: int) -> float:
    """The share of ``rows`` (from ``recall_rows``) whose recalled letter is ``trainer``'s most likely prediction
    after the cue, each row read from a zero state (one batch of len(rows) streams)."""
    ids = np.stack([trainer.vocab.encode(row) for row in rows])  # (n, k + 2): "\n" L d…d : L
    h0 = np.zeros((len(rows), trainer.model_config.state_size()), dtype=trainer.params["W_hh"].dtype)
    logits, _ = tinyrnn.forward(trainer.params, ids, h0, trainer.config.cell)
    positions = np.arange(len(rows)) * (k + 2) + (k + 1)
    return tinyrnn.recall_accuracy(logits.reshape(-1, logits.shape[-1]), ids.reshape(-1), positions)


def recall_letters(text: str) -> set[str]:
    """The distinct letters recalled in a recall text (chance is one in this many)."""
    return {text[i] for i in tinyrnn.recall_positions(text)}
