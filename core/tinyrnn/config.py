"""The records of a training run: its settings (``TrainConfig``, checked against one table, ``SETTINGS``) and what
each step reports (``StepMetrics``).

``SETTINGS`` is the one home of every setting's label and allowed values: ``TrainConfig.validate``, the CLI and the
web app's form all read it, so a bound changes in one place.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from .errors import ConfigError
from .model import CELLS, ENGINES, MAX_HIDDEN_SIZE

DTYPES = ("float32", "float64")


def is_number(value) -> bool:
    """True for a finite real number: ints and floats, numpy's included; never a bool, NaN or infinity."""
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(value))


@dataclass(frozen=True)
class Setting:
    """One training setting: its ``TrainConfig`` field, a label for forms, and its allowed values.

    ``kind`` is "int" (a whole number in [low, high]), "float" (a number in [low, high], or (low, high] with
    ``low_open``) or "choice" (one of ``choices``). ``optional`` settings may also be None (switched off)."""

    name: str
    label: str
    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False

    def describe(self) -> str:
        """The allowed values in words, e.g. "a whole number from 1 to 4,096"."""
        if self.kind == "choice":
            return f"one of {', '.join(self.choices)}"
        if self.kind == "int":
            return f"a whole number from {self.low} to {self.high:,}"
        return f"a number in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"

    def accepts(self, value) -> bool:
        if value is None:
            return self.optional
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        if isinstance(value, (bool, np.bool_)):
            return False
        if self.kind == "int":
            return isinstance(value, (int, np.integer)) and self.low <= value <= self.high
        if not is_number(value):
            return False
        return (self.low < value if self.low_open else self.low <= value) and value <= self.high

    def check(self, value):
        """``value`` if allowed, else ``ConfigError`` naming the setting and the allowed values."""
        if not self.accepts(value):
            raise ConfigError(f"{self.name} must be {self.describe()}, got {value!r}")
        return value


SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("hidden_size", "Hidden size H", "int", 1, MAX_HIDDEN_SIZE),
    Setting("cell", "Cell", "choice", choices=CELLS),
    Setting("seq_len", "Sequence length T (BPTT window)", "int", 1, 1000),
    Setting("batch_size", "Batch size B", "int", 1, 1024),
    Setting("lr", "Learning rate", "float", 0, 10, low_open=True),
    Setting("lr_decay_steps", "Cosine learning-rate decay over N steps", "int", 1, 10**9, optional=True),
    Setting("optimizer", "Optimiser", "choice", choices=("sgd", "adagrad", "adam")),  # optim.py implements each
    Setting("clip_norm", "Clip gradient norm", "float", 0, 1e6, low_open=True, optional=True),
    Setting("clip_value", "Clip gradient values", "float", 0, 1e6, low_open=True, optional=True),
    Setting("val_fraction", "Validation fraction", "float", 0, 0.5),
    Setting("seed", "Random seed", "int", 0, 2**32 - 1),
    Setting("engine", "Gradient engine", "choice", choices=ENGINES),
    Setting("dtype", "Floating-point type", "choice", choices=DTYPES),
    Setting("eval_every", "Validate every N steps", "int", 1, 10**9),
    Setting("eval_chars", "Validation characters", "int", 2, 10**9),
)}


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run; ``validate()`` checks each against ``SETTINGS``."""

    hidden_size: int = 128
    seq_len: int = 25
    batch_size: int = 16
    lr: float = 2e-3
    lr_decay_steps: int | None = None  # cosine from lr down to lr × LR_FLOOR over these steps (optim.scheduled_lr)
    optimizer: str = "adam"
    clip_norm: float | None = 5.0
    clip_value: float | None = None
    val_fraction: float = 0.1
    seed: int = 0
    engine: str = "fused"
    dtype: str = "float32"
    eval_every: int = 100
    eval_chars: int = 4096
    cell: str = "rnn"  # cells.CELLS: "rnn" (tanh), "gru", "lstm"

    def validate(self) -> "TrainConfig":
        for f in fields(self):
            SETTINGS[f.name].check(getattr(self, f.name))
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown training settings: {', '.join(sorted(unknown))}")
        return cls(**data).validate()


@dataclass
class StepMetrics:
    """What one training step reports."""

    step: int
    train_loss: float  # nats/char on this step's window
    val_loss: float | None  # nats/char, when evaluated at this step
    chars_per_sec: float
    grad_norm: float  # global norm before clipping
    chars_seen: int
    elapsed: float  # seconds spent training so far



def thin_history(history: list, limit: int) -> list:
    """At most ``limit`` (>= 4) of the ``StepMetrics`` in ``history`` (in step order): the newest half of them as
    they are; of the older ones, validation points and other steps each spread evenly over the steps they span, so
    that the loss curve keeps its shape over the whole run, however often a growing history is thinned again."""
    if len(history) <= limit:
        return list(history)
    recent = limit // 2
    older, newer = history[:-recent], history[-recent:]
    vals = _spread([m for m in older if m.val_loss is not None], (limit - recent) // 2)
    kept = {id(m) for m in vals} | {id(m) for m in _spread(older, limit - recent - len(vals))}
    return [m for m in older if id(m) in kept] + list(newer)


def _spread(records: list, n: int) -> list:
    """At most ``n`` of ``records`` (in step order), evenly spread over their steps, the first and last included."""
    if len(records) <= n:
        return list(records)
    if n <= 0:
        return []
    steps = np.array([m.step for m in records], dtype=np.float64)
    picks = np.unique(np.searchsorted(steps, np.linspace(steps[0], steps[-1], n)))
    return [records[i] for i in picks]