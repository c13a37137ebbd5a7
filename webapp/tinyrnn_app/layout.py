"""The page's building blocks: the CSS, widgets bound to the session's parts (each marked with its stable selector),
``create_app`` (the template: the first screen, then the tabs of ``sections``). No logic here."""

from __future__ import annotations

import asyncio

import panel as pn


from . import settings
from .render import alert_html, plain_html
from .selectors import css
from .storage import browser_store, run_soon

CSS = """
.tr-pre { white-space: pre-wrap; word-break: break-word; font-family: ui-monospace, Menlo, Consolas, monospace;
          font-size: 0.9em; margin: 0; }
.tr-kv { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.95em; }
.tr-readout-grid { display: flex; flex-wrap: wrap; gap: 4px 24px; }
.tr-alert { background: #fdecea; color: #611a15; border: 1px solid #f5c2c0; border-radius: 6px; padding: 8px 12px; }
.tr-note { background: #fff8e1; color: #5d4200; border: 1px solid #f0d78c; border-radius: 6px; padding: 8px 12px; }
"""

# Buttons (inside their shadow roots): a disabled one looks disabled, not half-enabled.
BUTTON_CSS = """
.bk-btn:disabled, .bk-btn[disabled] { opacity: 0.4; filter: grayscale(0.8); cursor: not-allowed; box-shadow: none; }
"""

# Page-level CSS for the template: on phone-width screens the whole page scrolls in one column.
PAGE_CSS = """
@media (max-width: 767.98px) {
  body { height: auto !important; }
  #container { height: auto !important; min-height: 100vh; overflow: visible !important; }
  #content { flex-direction: column; flex-wrap: nowrap; height: auto !important; overflow: visible !important; }
  #main { width: 100%; overflow: visible !important; padding: 8px 6px 16px 6px; }
  #header .title { font-size: 1.1em; white-space: normal; line-height: 1.3em; }
}
"""


def on_upload(widget, handler):
    """Call ``handler(data, filename)`` once per upload (also when the same file comes twice)."""
    pending = {"upload": False}

    def handle():
        if pending["upload"]:
            pending["upload"] = False
            handler(widget.value, widget.filename)

    async def settle():
        # In the Pyodide worker the page's value and filename changes arrive as separate updates; wait until
        # both have landed so that messages name the right file.
        await asyncio.sleep(0.1)
        handle()

    def watcher(*events):
        if any(event.name == "value" for event in events):
            pending["upload"] = True
        if not pending["upload"]:
            return
        if pn.state.curdoc is None:  # no page (tests, scripts): nothing else is coming
            handle()
        else:
            pn.state.execute(settle)

    widget.param.watch(watcher, ["value", "filename"], onlychanged=False)


def html_pane(fn, *deps, css_class, **kw):
    """An HTML pane showing ``fn(*deps)`` (which escapes), with the selector ``css_class``."""
    kw.setdefault("sizing_mode", None if "width" in kw else "stretch_width")
    return pn.pane.HTML(pn.bind(fn, *deps), css_classes=css(css_class), stylesheets=[CSS], **kw)


def disabled_unless(session, condition=None, *deps):
    """A ``disabled`` reference: True while the page is loading, or while ``condition(*deps)`` is false."""
    return pn.bind(lambda ready, *values: not ready or (condition is not None and not condition(*values)),
                   session.page.param.ready, *deps)


def when_page_ready(session):
    """Start the session (helpers, kept work, then ready) once Python runs where the page is shown: at once without
    a page (tests, scripts), else when the page's document is ready -- under ``panel serve`` when the browser has
    connected, in the converted pyodide-worker app after the worker's document has replaced the pre-rendered page.
    The pre-render (CPython at build time, ``panel convert``) never gets there, so the page it writes says
    "Loading"."""
    doc = pn.state.curdoc
    if session.page.ready:
        return
    if doc is None:
        run_soon(session.start())
    else:
        doc.on_event("document_ready", lambda event: run_soon(session.start()))


def button(label, css_class, action, **kw):
    widget = pn.widgets.Button(label=label, css_classes=css(css_class), stylesheets=[BUTTON_CSS], **kw)
    widget.on_click(lambda event: action())
    return widget


def note_html(text: str) -> str:
    return f'<div class="tr-note" role="status">{plain_html(text)}</div>' if text else ""


def view_field(name: str) -> settings.FormSetting:
    return next(field for field in settings.VIEWS if field.name == name)


def settings_widget(session, field: settings.FormSetting, **kw):
    """The input for one row of the settings table (a number input without bounds: the form checks them)."""
    p = session.form.param[field.name]
    kw = dict(css_classes=css(field.selector), disabled=disabled_unless(session), **(kw or dict(width=190)))
    if field.kind == "choice":
        return pn.widgets.Select.from_param(p, **kw)
    if field.kind == "int":
        return pn.widgets.IntInput.from_param(p, step=field.step, **kw)
    return pn.widgets.FloatInput.from_param(p, step=field.step, format="0.[000000]", **kw)


def visible_note(param_ref, css_class):
    """A yellow note showing a string parameter, hidden while it is empty."""
    return pn.pane.HTML(pn.bind(note_html, param_ref), visible=pn.bind(bool, param_ref), css_classes=css(css_class),
                        stylesheets=[CSS], sizing_mode="stretch_width")


def file_input(session, accept: str, css_class: str, handler, **kw):
    """A file input (live once the page is ready) that calls ``handler(data, filename)`` once per upload."""
    widget = pn.widgets.FileInput(accept=accept, css_classes=css(css_class), multiple=False,
                                  disabled=disabled_unless(session), **kw)
    on_upload(widget, handler)
    return widget


def create_app(session=None):
    """The page: a thin layout over a TrainingSession (a new one with the periodic training loop if None): the first
    screen (text choice, Train/Pause, the readouts), then the tabs."""
    from .sections import FirstScreen, Tabs
    from .session import TrainingSession

    if session is None:
        session = TrainingSession(use_periodic_callback=True, loading=True, store=browser_store())
    pn.state.cache["tinyrnn_session"] = session  # the latest page's session: bench/page_throughput.py reads its clock
    page = session.page
    error_pane = pn.pane.HTML(
        pn.bind(alert_html, page.param.error), visible=pn.bind(bool, page.param.error),
        css_classes=css("tr-error"), stylesheets=[CSS], sizing_mode="stretch_width",
        styles={"position": "sticky", "top": "0", "z-index": "10"},  # stays in view while the page scrolls
    )
    # BootstrapTemplate: responsive and it fetches nothing from third-party hosts (FastListTemplate pulls a Google
    # font, which an offline page cannot load).
    template = pn.template.BootstrapTemplate(
        title="tinyrnn: train a character-level RNN in your browser",
        main=[error_pane, FirstScreen(session=session), Tabs(session=session)],
        header_background="#1f6feb",
        # no busy spinner: its throttling task is cancelled on every update, which Pyodide 0.27's event loop
        # reports as a CancelledError traceback in the console; the status line says what the app is doing
        busy_indicator=None,
        meta_viewport="width=device-width, initial-scale=1",
    )
    template.config.raw_css.append(PAGE_CSS)
    when_page_ready(session)
    return template
