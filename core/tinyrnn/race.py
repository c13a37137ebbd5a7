"""The cells race: the three cells trained on the same text, from the same seed and settings, for the same number of
characters (the budget), then how far each trained model's gradient reaches back beside a fresh model's.

``CellsRace.advance()`` makes one training step of whichever cell has seen the fewest characters, so a page can run
the race a step at a time while the user reads; ``curves()`` gives validation loss against characters seen so far.
When every cell has seen the budget, ``result()`` measures each model's gradient reach ‖∂L_T/∂h_t‖
(``bptt.gradient_reach``) over ``reach_steps`` positions of held-out text, trained and freshly initialised, and
``verdict(result)`` says in one sentence what the numbers show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .bptt import gradient_reach
from .cells import get_cell
from .config import TrainConfig
from .errors import ConfigError, TrainingDiverged
from .model import CELLS, ModelConfig, init_params
from .trainer import Trainer
from .vocab import Vocabulary

MAX_BUDGET = 10**10  # characters per cell
REACH_WINDOWS = 8  # windows of held-out text the reach is measured on (the norm is over all of them)


@dataclass(frozen=True)
class LossPoint:
    chars_seen: int  # training characters the model had seen
    val_loss: float  # validation loss then, nats/char


@dataclass(frozen=True)
class RaceResult:
    """What a finished race measured. Dicts are keyed by cell name, in the race's order."""

    budget: int  # training characters per cell
    chars_seen: dict  # cell -> characters it trained on (the budget rounded up to whole steps, less if diverged)
    val_loss: dict  # cell -> final validation loss, nats/char
    curves: dict  # cell -> tuple of LossPoint, the first at 0 characters
    reach_trained: dict  # cell -> (reach_steps,) ‖∂L_T/∂h_t‖, t = 1..T, of the trained model
    reach_fresh: dict  # cell -> the same for a freshly initialised model (same seed and H)
    diverged: dict  # cell -> the message, for a cell whose training diverged (its last good model is scored)
    params: dict  # cell -> the trained parameters (float64 copies)
    vocab: Vocabulary

    @property
    def cells(self) -> tuple:
        return tuple(self.val_loss)

    def relative_reach(self, cell: str, trained: bool = True) -> np.ndarray:
        """‖∂L_T/∂h_t‖ / ‖∂L_T/∂h_T‖ (reach_steps,): the share of the last step's gradient that reaches back to t."""
        reach = (self.reach_trained if trained else self.reach_fresh)[cell]
        with np.errstate(divide="ignore", invalid="ignore"):
            return reach / reach[-1]


def _check_budget(budget, step_chars) -> int:
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or not step_chars <= budget <= MAX_BUDGET:
        raise ConfigError(f"budget must be a whole number of characters from {step_chars:,} (one step: batch_size × "
                          f"seq_len) to {MAX_BUDGET:,}, got {budget!r}")
    return int(budget)


class CellsRace:
    """Trains one model per cell of ``cells`` on ``text`` with ``config`` (its ``cell`` replaced), each for
    ``budget`` characters, one step at a time (``advance``)."""

    def __init__(self, text: str, config: TrainConfig = TrainConfig(), budget: int = 2_000_000,
                 cells: tuple = CELLS, reach_steps: int = 100):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        config.validate()
        self.budget = _check_budget(budget, config.batch_size * config.seq_len)
        if isinstance(cells, str) or not cells or len(set(cells)) != len(cells):
            raise ConfigError(f"cells must be distinct names of {', '.join(CELLS)}, got {cells!r}")
        for cell in cells:
            get_cell(cell)
        if isinstance(reach_steps, bool) or not isinstance(reach_steps, (int, np.integer)) or not 2 <= reach_steps <= 1000:
            raise ConfigError(f"reach_steps must be a whole number from 2 to 1,000, got {reach_steps!r}")
        self.reach_steps = int(reach_steps)
        self.trainers = {cell: Trainer(text, replace(config, cell=cell)) for cell in cells}
        first = next(iter(self.trainers.values()))
        if first.val_ids.size < 2:
            raise ConfigError("the race compares validation losses: give a val_fraction above 0 and a longer text")
        self._curves = {cell: [LossPoint(0, trainer.evaluate())] for cell, trainer in self.trainers.items()}
        self.diverged: dict[str, str] = {}
        self._result = None

    def _running(self) -> list[str]:
        return [cell for cell, t in self.trainers.items() if t.chars_seen < self.budget and cell not in self.diverged]

    @property
    def done(self) -> bool:
        return not self._running()

    def behind(self) -> str | None:
        """The cell that has seen the fewest characters among those still training (None when done)."""
        running = self._running()
        return min(running, key=lambda cell: self.trainers[cell].chars_seen) if running else None

    def advance(self) -> str | None:
        """One training step of the cell furthest behind; returns it (None if the race is done). A step that
        diverges ends that cell's training (its last good model is kept and scored)."""
        cell = self.behind()
        if cell is None:
            return None
        trainer = self.trainers[cell]
        try:
            metrics = trainer.step()
        except TrainingDiverged as e:
            self.diverged[cell] = str(e)
            return cell
        finished = trainer.chars_seen >= self.budget
        val = metrics.val_loss if metrics.val_loss is not None else trainer.evaluate() if finished else None
        if val is not None:
            self._curves[cell].append(LossPoint(trainer.chars_seen, float(val)))
        return cell

    def chars_seen(self) -> dict:
        """Cell -> training characters seen so far."""
        return {cell: trainer.chars_seen for cell, trainer in self.trainers.items()}

    def curves(self) -> dict:
        """Cell -> the validation points so far (tuple of LossPoint), the first at 0 characters."""
        return {cell: tuple(points) for cell, points in self._curves.items()}

    def _reach_batch(self, trainer):
        """(inputs, targets) (W, reach_steps) from the held-out text (the training text if that is too short)."""
        T = self.reach_steps
        for ids in (trainer.val_ids, trainer.train_ids):
            windows = min(REACH_WINDOWS, (ids.size - 1) // T)
            if windows >= 1:
                starts = np.linspace(0, ids.size - 1 - T, windows).astype(np.int64)
                return np.stack([ids[s:s + T] for s in starts]), np.stack([ids[s + 1:s + T + 1] for s in starts])
        raise ConfigError(f"the text is too short to measure the gradient reach over {T} steps; use a smaller reach_steps")

    def result(self) -> RaceResult:
        """The finished race's record (computed once); ``ConfigError`` while cells are still training."""
        if not self.done:
            left = ", ".join(f"{c} {self.trainers[c].chars_seen:,}" for c in self._running())
            raise ConfigError(f"the race is not finished: still training {left} of {self.budget:,} characters")
        if self._result is None:
            self._result = self._measure()
        return self._result

    def _measure(self) -> RaceResult:
        trained, fresh, params = {}, {}, {}
        for cell, trainer in self.trainers.items():
            inputs, targets = self._reach_batch(trainer)
            h0 = np.zeros((inputs.shape[0], trainer.model_config.state_size()))
            params[cell] = {k: np.array(v, dtype=np.float64) for k, v in trainer.params.items()}
            initial = init_params(ModelConfig(trainer.vocab.size, trainer.config.hidden_size, cell), trainer.config.seed)
            trained[cell] = gradient_reach(params[cell], inputs, targets, h0, cell)
            fresh[cell] = gradient_reach(initial, inputs, targets, h0, cell)
        val = {}
        for cell, trainer in self.trainers.items():
            last = self._curves[cell][-1]
            val[cell] = last.val_loss if last.chars_seen == trainer.chars_seen else trainer.evaluate()
        first = next(iter(self.trainers.values()))
        return RaceResult(self.budget, self.chars_seen(), val, self.curves(), trained, fresh, dict(self.diverged),
                          params, first.vocab)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def ratio_words(a: float, b: float) -> str:
    """a / b for a sentence: "3.2×", "0.41×", a power of ten "10⁴×" / "10⁻⁶×" beyond 100 or below 1/100, or why
    there is no ratio (a gradient that underflowed to 0, or one that is not finite)."""
    if not (math.isfinite(a) and math.isfinite(b) and a >= 0 and b >= 0) or a == b == 0:
        return "not measurable"
    if b == 0 or a == 0:
        return "infinitely many times" if b == 0 else "0×"
    ratio = a / b
    if 1e-2 <= ratio < 100:
        return f"{ratio:.2g}×"
    return f"10{str(round(math.log10(ratio))).translate(_SUPERSCRIPT)}×"


def characters_words(n: int) -> str:
    """A character count for a sentence: "2.0 M", "150 k", "4,000"."""
    if n >= 1_000_000:
        return f"{n / 1e6:.1f} M"
    return f"{n / 1e3:.0f} k" if n >= 100_000 else f"{n:,}"


def verdict(result: RaceResult) -> str:
    """One sentence from the measured numbers: the final validation losses, best first, and how much more of its
    gradient the longest-reaching trained model keeps ``reach_steps − 1`` steps back than the shortest-reaching one
    (each relative to its own last step), with the same ratio for the fresh models."""
    if not isinstance(result, RaceResult):
        raise TypeError(f"result must be a RaceResult (CellsRace.result()), got {type(result).__name__}")
    label = {cell: get_cell(cell).label for cell in result.cells}
    losses = ", ".join(f"{label[c]} {result.val_loss[c]:.2f}" for c in sorted(result.cells, key=result.val_loss.get))
    text = f"After {characters_words(result.budget)} characters: {losses} nats/char"
    if result.diverged:
        text += " (" + ", ".join(f"the {label[c]} diverged after {result.chars_seen[c]:,}" for c in result.diverged) + ")"
    if len(result.cells) >= 2:
        back = {c: float(result.relative_reach(c)[0]) for c in result.cells}
        longest = max(result.cells, key=lambda c: back[c] if math.isfinite(back[c]) else -1.0)
        shortest = min(result.cells, key=lambda c: back[c] if math.isfinite(back[c]) else math.inf)
        steps = len(result.reach_trained[longest]) - 1
        fresh = [float(result.relative_reach(c, False)[0]) for c in (longest, shortest)]
        if longest != shortest:
            text += (f"; {steps} steps back the trained {label[longest]}'s gradient is "
                     f"{ratio_words(back[longest], back[shortest])} the {label[shortest]}'s "
                     f"(fresh models: {ratio_words(*fresh)})")
    return text + "."
