"""The settings form as one table: which of the library's settings the page shows, in what order, and how a form
value maps to a ``TrainConfig`` value. Names, labels, kinds, bounds and defaults come from ``tinyrnn.SETTINGS`` and
``tinyrnn.TrainConfig()``; the widgets, their validation messages and "does the model match the settings" read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import tinyrnn

# The library's defaults are the app's: in 5 minutes of in-browser training they reach about 1.74 nats/char on
# tinyshakespeare, and none of the other settings tried at H=128 did better (docs/performance.md, "Learning quality").
_LIBRARY_DEFAULTS = tinyrnn.TrainConfig()


@dataclass(frozen=True)
class FormSetting:
    """One input of the settings form. ``setting`` is the library's record (name, label, kind, low, high, low_open,
    choices, optional). An optional setting is off as ``None`` in the config and as 0 in the form."""

    setting: object
    step: float | None = None  # the number input's arrow step

    @property
    def name(self) -> str:
        return self.setting.name

    @property
    def label(self) -> str:
        return self.setting.label + (" (0 = off)" if self.setting.optional else "")

    @property
    def kind(self) -> str:
        return self.setting.kind

    @property
    def selector(self) -> str:
        return "tr-" + self.name.replace("_", "-")

    @property
    def default(self):
        return self.form_value(getattr(_LIBRARY_DEFAULTS, self.name))

    def form_value(self, config_value):
        """The form's value for a config value (``None`` -> 0 for an optional setting)."""
        return 0 if config_value is None and self.setting.optional else config_value

    def config_value(self, form_value):
        """The config's value for a form value (0 -> ``None`` for an optional setting), with Python types."""
        if self.setting.optional and form_value == 0:
            return None
        if self.kind == "int":
            return int(form_value)
        if self.kind == "float":
            return float(form_value)
        return form_value

    def problem(self, form_value) -> str | None:
        """Why ``form_value`` is not allowed, naming the allowed range, or None."""
        try:
            value = self.config_value(form_value)
        except (TypeError, ValueError):
            return f"{self.setting.label} must be {self.setting.describe()}, got {form_value!r}"
        if value is None:
            return None
        try:
            self.setting.check(value)
        except tinyrnn.ConfigError as e:
            return str(e)
        return None


_LIBRARY = tinyrnn.SETTINGS

FORM: tuple[FormSetting, ...] = (
    FormSetting(_LIBRARY["hidden_size"], step=16),
    FormSetting(_LIBRARY["seq_len"], step=5),
    FormSetting(_LIBRARY["batch_size"], step=4),
    FormSetting(_LIBRARY["lr"], step=1e-3),
    FormSetting(_LIBRARY["optimizer"]),
    FormSetting(_LIBRARY["clip_norm"], step=1.0),
    FormSetting(_LIBRARY["engine"]),
)
FORM_NAMES = tuple(s.name for s in FORM)


def defaults() -> dict:
    """The form's values for ``TrainConfig()``."""
    return {s.name: s.default for s in FORM}


def form_values(config) -> dict:
    """The form's values for ``config`` (a ``TrainConfig``)."""
    return {s.name: s.form_value(getattr(config, s.name)) for s in FORM}


def config_from(values: dict):
    """A ``TrainConfig`` from the form's values (the fields the form does not show keep their defaults);
    not yet validated."""
    return tinyrnn.TrainConfig(**{s.name: s.config_value(values[s.name]) for s in FORM})


def matches(config, values: dict) -> bool:
    """True if ``config`` has the form's ``values`` in every field the form shows."""
    return all(s.form_value(getattr(config, s.name)) == values[s.name] for s in FORM)


def problems(values: dict) -> list[str]:
    """Every form value that is not allowed, as messages naming the allowed range."""
    return [p for s in FORM if (p := s.problem(values[s.name])) is not None]

