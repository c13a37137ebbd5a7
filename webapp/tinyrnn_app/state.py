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
    """The parameter holding one form input's value, with the table's label and default. Numbers have no bounds
    here: a number input with bounds snaps an out-of-range value back without a word, so the input takes what is
    typed and the session says what the allowed range is (``settings.problems``)."""
    if field.kind == "choice":
        return param.Selector(default=field.default, objects=list(field.setting.choices), label=field.label)
    if field.kind == "int":
        return param.Integer(default=field.default, allow_None=True, label=field.label)
    return param.Number(default=field.default, allow_None=True, label=field.label)


FormValues = param.parameterized_class(
    "FormValues", {field.name: _form_parameter(field) for field in settings.FORM + settings.SAMPLING + settings.VIEWS}
)
FormValues.__doc__ = "The form's values: one parameter per row of settings.FORM, SAMPLING and VIEWS."


class Messages(FormValues):
    """The status line, the error alert and what is wrong with the form's values."""

    status = param.String(default="")
    error = param.String(default="", doc="The last error message ('' when there is none).")
    settings_info = param.String(default="", doc="Why form values are not allowed, naming the ranges ('' if none).")

    def __init__(self, **params):
        super().__init__(**params)
        self._error_about_form = False  # the error shown is about the form's values: it goes once they are fixed
        self._check_form()

    def form_problems(self) -> list[str]:
        """What is wrong with the training settings and the sampling inputs (messages naming the ranges)."""
        return (settings.problems(self.form_values())
                + settings.problems(self.form_values(settings.SAMPLING_NAMES), settings.SAMPLING))

    @param.depends(*settings.FORM_NAMES, *settings.SAMPLING_NAMES, watch=True)
    def _check_form(self):
        self.settings_info = " ".join(self.form_problems())
        if self.settings_info:
            self.show_error(self.settings_info, about_form=True)
        elif self._error_about_form:
            self.clear_error()

    def show_error(self, message: str, about_form: bool = False):
        self._error_about_form = about_form
        self.error = sentence(message)

    def clear_error(self):
        self._error_about_form = False
        if self.error:
            self.error = ""

    def form_values(self, names=settings.FORM_NAMES) -> dict:
        return {name: getattr(self, name) for name in names}
