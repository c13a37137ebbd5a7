"""The parts of the session's state every other part uses: the status line, the error message, batched updates,
and the settings form's values as parameters built from the one settings table. No UI here."""

from __future__ import annotations

import functools

import panel as pn
import param

from . import settings
from .render import sentence


def batched(method):
    """Run an action with the Bokeh document held: its changes (including direct ColumnDataSource updates, which
    must not happen outside the document lock under ``panel serve``) go to the browser together when it returns."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with pn.io.hold():
            return method(self, *args, **kwargs)

    return wrapper


def _form_parameter(field: settings.FormSetting) -> param.Parameter:
    """The parameter holding one form input's value, with the table's label, default and bounds."""
    s = field.setting
    if s.kind == "choice":
        return param.Selector(default=field.default, objects=list(s.choices), label=field.label)
    low = 0 if s.optional else s.low  # 0 = off
    if s.kind == "int":
        return param.Integer(default=field.default, bounds=(low, s.high), label=field.label)
    return param.Number(default=field.default, bounds=(low, s.high), label=field.label,
                        inclusive_bounds=(s.optional or not s.low_open, True))


FormValues = param.parameterized_class(
    "FormValues", {field.name: _form_parameter(field) for field in settings.FORM}
)
FormValues.__doc__ = "The settings form's values (one parameter per row of settings.FORM)."


class Messages(FormValues):
    """The status line and the error alert."""

    status = param.String(default="")
    error = param.String(default="", doc="The last error message ('' when there is none).")

    def show_error(self, message: str):
        self.error = sentence(message)

    def clear_error(self):
        if self.error:
            self.error = ""

    def form_values(self) -> dict:
        return {name: getattr(self, name) for name in settings.FORM_NAMES}
