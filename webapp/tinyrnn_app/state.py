"""Two small parts every other part reads: :class:`PageStatus` (is the page ready, the status line, the error
alert) and :class:`SettingsForm` (the settings form's values as parameters built from the one settings table, and
what is wrong with them). No UI here."""

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


class PageStatus(param.Parameterized):
    """Whether the page is ready, what the app is doing, and the last error (with whether it is about the form)."""

    ready = param.Boolean(default=False, doc="Python runs where the page is shown (not a pre-render at build time).")
    status = param.String(default="")
    error = param.String(default="", doc="The last error message ('' when there is none).")
    error_about_form = param.Boolean(default=False, doc="The error shown is about the form: it goes once fixed.")

    def show_error(self, message: str, about_form: bool = False):
        self.param.update(error=sentence(message), error_about_form=about_form)

    def clear_error(self):
        if self.error or self.error_about_form:
            self.param.update(error="", error_about_form=False)


def _form_parameter(field: settings.FormSetting) -> param.Parameter:
    """The parameter holding one form input's value, with the table's label and default. Numbers have no bounds
    here: a number input with bounds snaps an out-of-range value back without a word, so the input takes what is
    typed and the form says what the allowed range is (``settings.problems``)."""
    if field.kind == "choice":
        return param.Selector(default=field.default, objects=list(field.setting.choices), label=field.label)
    if field.kind == "int":
        return param.Integer(default=field.default, allow_None=True, label=field.label)
    return param.Number(default=field.default, allow_None=True, label=field.label)


FormValues = param.parameterized_class(
    "FormValues", {field.name: _form_parameter(field) for field in settings.FORM + settings.SAMPLING + settings.VIEWS}
)
FormValues.__doc__ = "The form's values: one parameter per row of settings.FORM, SAMPLING and VIEWS."


class SettingsForm(FormValues):
    """The form's values and what is wrong with them; a problem is shown on ``page`` until it is fixed."""

    page = param.ClassSelector(class_=PageStatus, doc="Where the form's problems are shown.")
    settings_info = param.String(default="", doc="Why form values are not allowed, naming the ranges ('' if none).")

    def __init__(self, **params):
        params.setdefault("page", PageStatus())
        super().__init__(**params)
        self._check_form()

    def form_problems(self) -> list[str]:
        """What is wrong with the training settings and the sampling inputs (messages naming the ranges)."""
        return (settings.problems(self.form_values())
                + settings.problems(self.form_values(settings.SAMPLING_NAMES), settings.SAMPLING))

    @param.depends(*settings.FORM_NAMES, *settings.SAMPLING_NAMES, watch=True)
    def _check_form(self):
        self.settings_info = " ".join(self.form_problems())
        if self.settings_info:
            self.page.show_error(self.settings_info, about_form=True)
        elif self.page.error_about_form:
            self.page.clear_error()

    def form_values(self, names=settings.FORM_NAMES) -> dict:
        return {name: getattr(self, name) for name in names}

    def config(self):
        """A ``TrainConfig`` from the training settings (not yet validated)."""
        return settings.config_from(self.form_values())

    def show(self, config):
        """Put ``config``'s values (a ``TrainConfig``, e.g. a loaded model's) into the inputs."""
        self.param.update(**settings.form_values(config))
