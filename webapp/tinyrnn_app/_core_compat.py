"""TEMPORARY: the library's settings table as tinyrnn.SETTINGS will provide it (issue 8, core part), built from
today's TrainConfig until the lead's core commit is on main. Deleted then; settings.py reads tinyrnn.SETTINGS."""

from __future__ import annotations

from dataclasses import dataclass

import tinyrnn


@dataclass(frozen=True)
class Setting:
    name: str
    label: str
    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple = ()
    optional: bool = False

    def describe(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "int":
            return f"a whole number from {self.low} to {self.high:,}"
        return f"a number in {'(' if self.low_open else '['}{self.low}, {self.high}]"

    def check(self, value):
        ok = (value in self.choices if self.kind == "choice" else
              (self.low < value if self.low_open else self.low <= value) and value <= self.high)
        if not ok:
            raise tinyrnn.ConfigError(f"{self.name} must be {self.describe()}, got {value!r}")
        return value


_R = tinyrnn.TrainConfig._INT_RANGES
SETTINGS = (
    Setting("hidden_size", "Hidden size H", "int", *_R["hidden_size"]),
    Setting("seq_len", "Sequence length T (BPTT window)", "int", *_R["seq_len"]),
    Setting("batch_size", "Batch size B", "int", *_R["batch_size"]),
    Setting("lr", "Learning rate", "float", 0, 10, low_open=True),
    Setting("optimizer", "Optimiser", "choice", choices=tuple(tinyrnn.OPTIMIZERS)),
    Setting("clip_norm", "Clip gradient norm", "float", 0, 1e6, low_open=True, optional=True),
    Setting("engine", "Gradient engine", "choice", choices=tuple(tinyrnn.ENGINES)),
)
BACKEND = tinyrnn.bptt.BACKEND


def text_problem(text: str, max_chars: int) -> str | None:
    """Why ``text`` cannot be trained on, in one sentence, or None (tinyrnn.text_problem after the core merge)."""
    if len(text) > max_chars:
        return (
            f"The text is too long: more than {max_chars:,} characters (the limit for training in the browser). "
            "Paste or upload a shorter text."
        )
    if not text:
        return "The text is empty: paste a few sentences (or pick a built-in corpus) to train on."
    if len(set(text)) < 2:
        return "The text has only one distinct character, so there is nothing to predict: give a real text."
    return None
