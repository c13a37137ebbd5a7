"""What the page should point out about a run, in words, from its numbers alone (pure functions, no UI)."""

from __future__ import annotations

import math

DIVERGING_FACTOR = 1.5  # a training loss above 1.5 × ln V is far worse than guessing uniformly


def diverging_notice(train_loss: float | None, vocab_size: int, config) -> str | None:
    """A warning if ``train_loss`` (nats/char, mean of recent steps) is far above ln V, the loss of guessing every
    character uniformly (where a new model starts); None otherwise. Names what to change."""
    if train_loss is None or vocab_size < 2:
        return None
    uniform = math.log(vocab_size)
    if math.isfinite(train_loss) and train_loss <= DIVERGING_FACTOR * uniform:
        return None
    clip = ("turn gradient clipping on (it is off)" if config.clip_norm is None
            else f"clip the gradient norm harder (now {config.clip_norm:g})")
    return (f"Training is diverging: the training loss is {train_loss:,.2f} nats/char, far above ln V = {uniform:.2f} "
            f"(what guessing every character uniformly gives). Lower the learning rate (now {config.lr:g}) or {clip}, "
            "then press Train to start a new model.")
