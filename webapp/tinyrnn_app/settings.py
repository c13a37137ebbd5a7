"""The settings form as one table: which of the library's settings the page shows, in what order, what the page can
carry out, and how a form value maps to a ``TrainConfig`` value. Names, labels, kinds, bounds and defaults come
from ``tinyrnn.SETTINGS`` and ``tinyrnn.TrainConfig()``; the widgets, their validation messages and "does the model
match the settings" all read this table.

What the page can carry out (measured in Pyodide 0.27.7 under Node.js on this 2-core machine, docs/app.md): a tick
of training must end within a second of a click on Pause, so a step (about 0.2 s at most), a validation pass and a
gradient-flow snapshot (float64, numpy einsum in the browser) must each take well under that. ``MAX_PAGE_HIDDEN``
bounds the hidden size (at H=1024 a validation pass takes 2.5 s), ``MAX_WORK`` bounds seq_len × batch_size ×
hidden_size per engine, and ``MAX_TRACED_SEQ_LEN`` the window of the autograd engine, which traces every time step
in Python (about 1 ms per step of the window in the page: T=1000 took 1.07 s per step). At the largest accepted
settings the heaviest tick needs 0.24-0.68 s of CPU time there (tests/browser/test_app_limits_pyodide.py).
The GRU and LSTM get the same kind of bounds, scaled by their measured cost (``CELL_COST``, ``MAX_CELL_HIDDEN``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import tinyrnn

# The library's defaults are the app's (what they reach in 5 minutes in the page: docs/performance.md, "Learning
# quality").
_LIBRARY_DEFAULTS = tinyrnn.TrainConfig()

MAX_PAGE_HIDDEN = 512
MAX_WORK = {"fused": 320_000, "autograd": 100_000}  # seq_len × batch_size × hidden_size (H=192, T=50, B=32: 307,200)
MAX_TRACED_SEQ_LEN = 100  # seq_len with the autograd engine
# The bounds above are the tanh RNN's. A GRU or LSTM step costs more at the same T, B, H (3 or 4 gate blocks
# instead of 1, and more elementwise work per block): in Pyodide the measured cost of a step is CELL_COST times the
# tanh RNN's (docs/app.md), so their work bound and autograd window are the tanh RNN's divided by it, and their
# hidden size is bounded by the validation pass (batch 1, eval_chars steps: its cost grows with gates × H²).
CELL_COST = {"rnn": 1, "gru": 3, "lstm": 4}
MAX_CELL_HIDDEN = {"rnn": MAX_PAGE_HIDDEN, "gru": 256, "lstm": 256}
PAGE_LIMIT_WHY = "the largest the page can train while still pausing within a second"


@dataclass(frozen=True)
class FormSetting:
    """One input of the form. ``setting`` is a ``tinyrnn.Setting`` (name, label, kind, low, high, low_open, choices,
    optional), the library's or narrowed by the page. An optional setting is off as ``None`` in the config and 0
    in the form."""

    setting: tinyrnn.Setting
    step: float | None = None  # the number input's arrow step
    default: object = None  # None: TrainConfig()'s
    selector: str = ""  # "": tr-<name with dashes>
    why: str = ""  # why the page narrows the library's bound (said with the range)

    def __post_init__(self):
        if self.default is None:
            object.__setattr__(self, "default", self.form_value(getattr(_LIBRARY_DEFAULTS, self.name)))
        if not self.selector:
            object.__setattr__(self, "selector", "tr-" + self.name.replace("_", "-"))

    @property
    def name(self) -> str:
        return self.setting.name

    @property
    def label(self) -> str:
        return self.setting.label + (" (0 = off)" if self.setting.optional else "")

    @property
    def kind(self) -> str:
        return self.setting.kind

    def form_value(self, config_value):
        """The form's value for a config value (``None`` -> 0 for an optional setting)."""
        return 0 if config_value is None and self.setting.optional else config_value

    def config_value(self, form_value):
        """The config's value for a form value (0 -> ``None`` for an optional setting)."""
        if self.setting.optional and form_value == 0:
            return None
        if self.kind == "int" and isinstance(form_value, float) and form_value.is_integer():
            return int(form_value)
        return form_value

    def problem(self, form_value) -> str | None:
        """Why ``form_value`` is not allowed here, naming the allowed range, or None."""
        if self.setting.accepts(self.config_value(form_value)):
            return None
        off = " (or 0 for off)" if self.setting.optional else ""
        too_big = isinstance(form_value, (int, float)) and self.setting.high is not None and form_value > self.setting.high
        why = f" ({self.why})" if self.why and too_big else ""
        return f"{self.setting.label} must be {self.setting.describe()}{off}{why}, got {form_value!r}."


_LIBRARY = tinyrnn.SETTINGS

FORM: tuple[FormSetting, ...] = (
    FormSetting(_LIBRARY["cell"]),
    FormSetting(replace(_LIBRARY["hidden_size"], high=MAX_PAGE_HIDDEN), step=16, why=PAGE_LIMIT_WHY),
    FormSetting(_LIBRARY["seq_len"], step=5),
    FormSetting(_LIBRARY["batch_size"], step=4),
    FormSetting(_LIBRARY["lr"], step=1e-3),
    FormSetting(_LIBRARY["optimizer"]),
    FormSetting(_LIBRARY["clip_norm"], step=1.0),
    FormSetting(_LIBRARY["engine"]),
)
FORM_NAMES = tuple(s.name for s in FORM)

# The sampling inputs are the app's own (tinyrnn.sample takes any temperature >= 0 and length >= 1).
SAMPLING: tuple[FormSetting, ...] = (
    FormSetting(tinyrnn.Setting("temperature", "Temperature (0 = greedy)", "float", 0, 5), step=0.1, default=0.8),
    FormSetting(tinyrnn.Setting("sample_length", "Length (characters)", "int", 1, 5000), step=50, default=300,
                selector="tr-length"),
)
SAMPLING_NAMES = tuple(s.name for s in SAMPLING)

# The views' inputs (the app's own): the cells' gradient comparison, the hidden-state view, the memory experiment.
# The comparison runs the manual BPTT of all three cells (costs 1 + 3 + 4 tanh-RNN steps' worth, float64) on the
# current batch over a longer window, only when asked. Its cost grows with seq_len × batch_size × hidden_size²
# (the recurrent products); COMPARE_WORK bounds that at T=200 with the defaults B=16, H=128, which took 0.7 s of
# CPU time in Pyodide under Node.js (docs/app.md).
COMPARE_WORK = 200 * 16 * 128 * 128
MAX_COMPARE_LEN = 200
VIEWS: tuple[FormSetting, ...] = (
    FormSetting(tinyrnn.Setting("compare_len", "Window T for the comparison", "int", 2, MAX_COMPARE_LEN), step=25,
                default=100),
    FormSetting(tinyrnn.Setting("passage_start", "From position", "int", 0, 2_000_000), step=100, default=0),
    FormSetting(tinyrnn.Setting("passage_length", "Characters", "int", 1, 2000), step=100, default=600),
    FormSetting(tinyrnn.Setting("unit", "Unit", "int", 0, 4095), step=1, default=0),
    FormSetting(tinyrnn.Setting("recall_k", "Recall distance k", "int", 2, tinyrnn.MAX_RECALL_K), step=1, default=10),
)
VIEW_NAMES = tuple(s.name for s in VIEWS)


def view_problems(values: dict) -> list[str]:
    """What is wrong with some of the views' inputs (``values`` maps a subset of ``VIEW_NAMES`` to values)."""
    return problems(values, tuple(s for s in VIEWS if s.name in values))


def compare_problem(seq_len: int, batch_size: int, hidden_size: int, stream_len: int) -> str | None:
    """Why the cells' gradient comparison over ``seq_len`` steps is too long for the page or the text, or None."""
    if seq_len > stream_len:
        return (f"The comparison window can be at most {stream_len:,} for this text and batch size (each of the "
                f"{batch_size} streams is that long), got {seq_len}.")
    if seq_len * batch_size * hidden_size ** 2 > COMPARE_WORK:
        longest = COMPARE_WORK // (batch_size * hidden_size ** 2)
        return (f"The comparison window × batch size × hidden size² can be at most {COMPARE_WORK:,} in the page "
                f"(it runs all three cells within a second), got {seq_len} × {batch_size} × {hidden_size}²"
                + (f": use a window of at most {longest}." if longest >= 2 else ": this model is too large for it."))
    return None


def form_values(config) -> dict:
    """The form's values for ``config`` (a ``TrainConfig``)."""
    return {s.name: s.form_value(getattr(config, s.name)) for s in FORM}


def config_from(values: dict):
    """A ``TrainConfig`` from the form's values (the fields the form does not show keep their defaults: the page
    validates by time, ``loop.ValidationPacer``, not every ``eval_every`` steps); not yet validated."""
    return tinyrnn.TrainConfig(**{s.name: s.config_value(values[s.name]) for s in FORM})


def matches(config, values: dict) -> bool:
    """True if ``config`` has the form's ``values`` in every field the form shows (the cell among them)."""
    return all(s.form_value(getattr(config, s.name)) == values[s.name] for s in FORM)


def cell_descriptions(selected: str) -> str:
    """One line per cell (``tinyrnn.get_cell(name).description``), the ``selected`` one marked."""
    return "\n".join(("▸ " if name == selected else "  ") + tinyrnn.get_cell(name).description
                     for name in tinyrnn.CELLS)


def work_limits(cell: str, engine: str) -> tuple[int | None, int, int]:
    """(largest seq_len × batch_size × hidden_size, largest seq_len, largest hidden size) the page trains for
    ``cell`` with ``engine``; the first is None for an engine without a bound."""
    cost = CELL_COST.get(cell, max(CELL_COST.values()))
    limit = MAX_WORK.get(engine)
    seq_len = MAX_TRACED_SEQ_LEN // cost if engine == "autograd" else _LIBRARY["seq_len"].high
    return (None if limit is None else limit // cost), seq_len, MAX_CELL_HIDDEN.get(cell, min(MAX_CELL_HIDDEN.values()))


def work_problem(values: dict) -> str | None:
    """Why the cell, hidden size and seq_len × batch_size × hidden_size are too much work per step for the page,
    or None."""
    T, B, H, engine, cell = (values[k] for k in ("seq_len", "batch_size", "hidden_size", "engine", "cell"))
    limit, max_T, max_H = work_limits(cell, engine)
    if H > max_H:
        return (f"With the {cell} cell the hidden size can be at most {max_H} in the page ({PAGE_LIMIT_WHY}: its "
                f"validation pass costs more than the tanh RNN's), got {H}.")
    if engine == "autograd" and T > max_T:
        return (f"With the autograd engine the sequence length can be at most {max_T} in the page for the {cell} "
                f"cell (it traces every time step in Python), got {T}: use the fused engine or a shorter sequence.")
    if limit is None or T * B * H <= limit:
        return None
    others = ", ".join(f"{other:,} with the {e} engine" for e in MAX_WORK if e != engine
                       for other in [work_limits(cell, e)[0]])
    return (f"Sequence length × batch size × hidden size is {T} × {B} × {H} = {T * B * H:,}; with the {cell} cell "
            f"the page can train at most {limit:,} with the {engine} engine ({others}) and still pause within a "
            "second: lower one of them.")


def model_problems(config) -> list[str]:
    """Why the page cannot train a model with ``config`` (a ``TrainConfig``), e.g. one loaded from a file."""
    return problems(form_values(config))


def problems(values: dict, table=FORM) -> list[str]:
    """Every value of ``table`` that is not allowed (and, for the training form, too much work per step), as
    messages naming the allowed range."""
    found = [p for s in table if (p := s.problem(values[s.name])) is not None]
    if table is FORM and not found:
        found += [p for p in [work_problem(values)] if p]
    return found
