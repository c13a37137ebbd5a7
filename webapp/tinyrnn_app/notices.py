"""What the page should point out about a run, in words, from its numbers alone (pure functions, no UI)."""

from __future__ import annotations

import math

import tinyrnn


def diverging_notice(train_loss: float | None, vocab_size: int, config) -> str | None:
    """A warning if ``train_loss`` (nats/char, mean of recent steps) is diverging by ``tinyrnn.is_diverging`` (far
    above ln V, the loss of guessing every character uniformly); None otherwise. Names what to change."""
    if train_loss is None or vocab_size < 2 or not tinyrnn.is_diverging(train_loss, vocab_size):
        return None
    uniform = math.log(vocab_size)
    clip = ("turn gradient clipping on (it is off)" if config.clip_norm is None
            else f"clip the gradient norm harder (now {config.clip_norm:g})")
    return (f"Training is diverging: the training loss is {train_loss:,.2f} nats/char, far above ln V = {uniform:.2f} "
            f"(what guessing every character uniformly gives). Lower the learning rate (now {config.lr:g}) or {clip}, "
            "then press Train to start a new model.")


def _mean_train_loss(history, stop: int, n: int = 20) -> float:
    """Mean training loss of the ``n`` steps up to index ``stop`` (exclusive) of ``history``."""
    window = history[max(0, stop - n):stop]
    return sum(m.train_loss for m in window) / len(window)


def overfitting_notice(history, min_points_after_best: int = 3, margin: float = 0.05) -> str | None:
    """A notice if validation loss has risen for a while as training loss falls: at least
    ``min_points_after_best`` validation points since the best one, all above it, the latest by more than
    ``margin`` nats/char, and the training loss now lower than at the best point. ``history``: ``StepMetrics``."""
    vals = [(i, m) for i, m in enumerate(history) if m.val_loss is not None]
    if len(vals) < min_points_after_best + 1:
        return None
    best_pos = min(range(len(vals)), key=lambda k: vals[k][1].val_loss)
    after = vals[best_pos + 1:]
    best_index, best = vals[best_pos]
    latest = after[-1][1] if after else None
    if len(after) < min_points_after_best or latest.val_loss <= best.val_loss + margin:
        return None
    train_then, train_now = _mean_train_loss(history, best_index + 1), _mean_train_loss(history, len(history))
    if train_now >= train_then:
        return None
    return (f"The model is overfitting: since step {best.step:,} validation loss has risen from {best.val_loss:.2f} to "
            f"{latest.val_loss:.2f} nats/char while training loss fell from {train_then:.2f} to {train_now:.2f}; it "
            f"is learning this text by heart rather than its patterns. The best model (step {best.step:,}) is kept: "
            "Download best model saves it. A longer text or a smaller model overfits later.")
