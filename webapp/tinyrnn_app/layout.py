"""The page: widgets bound to a :class:`TrainingSession`, laid out in a Bootstrap template. No logic here."""

from __future__ import annotations

import asyncio

import panel as pn


from . import settings
from .charts import ChartSources, compare_figure, flow_figure, loss_figure
from .render import alert_html, plain_html, readouts_html
from .selectors import css
from .session import TrainingSession
from .storage import browser_store
from .text import MAX_TEXT_CHARS, RECALL_CORPUS
from .visibility import PageVisibility

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
                   session.param.ready, *deps)


def when_page_ready(session):
    """Mark the session ready once Python runs where the page is shown: at once without a page (tests, scripts),
    else when the page's document is ready -- under ``panel serve`` when the browser has connected, in the
    converted pyodide-worker app after the worker's document has replaced the pre-rendered page. The pre-render
    (CPython at build time, ``panel convert``) never gets there, so the page it writes says "Loading"."""
    doc = pn.state.curdoc
    if session.ready:
        return
    if doc is None:
        session.mark_ready()
    else:
        doc.on_event("document_ready", lambda event: session.mark_ready())


def button(label, css_class, action, **kw):
    widget = pn.widgets.Button(label=label, css_classes=css(css_class), stylesheets=[BUTTON_CSS], **kw)
    widget.on_click(lambda event: action())
    return widget


def note_html(text: str) -> str:
    return f'<div class="tr-note" role="status">{plain_html(text)}</div>' if text else ""


def view_field(name: str) -> settings.FormSetting:
    return next(field for field in settings.VIEWS if field.name == name)


def settings_widget(session, field: settings.FormSetting, **kw):
    """The input for one row of the settings table (a number input without bounds: the session checks them)."""
    p = session.param[field.name]
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


def settings_section(session):
    """The settings as a collapsible block just above the Train button (also on a phone)."""
    return pn.Card(
        pn.FlexBox(*(settings_widget(session, field) for field in settings.FORM), flex_wrap="wrap", gap="0 12px",
                   sizing_mode="stretch_width"),
        html_pane(lambda cell: plain_html(settings.cell_descriptions(cell)), session.param.cell,
                  css_class="tr-cell-info"),
        visible_note(session.param.settings_info, "tr-settings-info"),
        html_pane(plain_html, session.param.backend, css_class="tr-backend"),
        pn.pane.Markdown(
            "Changes apply to a new model: **Train** starts one when the text or a setting changed; "
            "**Resume** continues the current model as it is.",
        ),
        title="Model and training settings", collapsed=False, sizing_mode="stretch_width", margin=(5, 0),
    )


def file_input(session, accept: str, css_class: str, handler):
    """A file input (live once the page is ready) that calls ``handler(data, filename)`` once per upload."""
    widget = pn.widgets.FileInput(accept=accept, css_classes=css(css_class), multiple=False,
                                  disabled=disabled_unless(session))
    on_upload(widget, handler)
    return widget


def text_section(session):
    upload_text = file_input(session, ".txt,text/plain", "tr-upload-text", session.load_text_file)
    return pn.Column(
        pn.pane.Markdown("### Text to learn"),
        pn.FlexBox(
            pn.Column(pn.widgets.Select.from_param(session.param.corpus, css_classes=css("tr-corpus"),
                                                   disabled=disabled_unless(session), sizing_mode="stretch_width"),
                      width=280),
            pn.Column(pn.pane.HTML("Or upload a UTF-8 .txt file:", margin=(0, 5)), upload_text, width=300),
            pn.Column(settings_widget(session, view_field("recall_k"), width=160), width=170,
                      visible=pn.bind(lambda corpus: corpus == RECALL_CORPUS, session.param.corpus)),
            flex_wrap="wrap", gap="0 16px", sizing_mode="stretch_width",
        ),
        pn.widgets.TextAreaInput.from_param(
            session.param.text, max_length=MAX_TEXT_CHARS + 1, rows=10, css_classes=css("tr-text"),
            sizing_mode="stretch_width", disabled=disabled_unless(session),
            placeholder="Paste any text here (or upload a .txt file, or pick a built-in corpus).",
        ),
        html_pane(plain_html, session.param.text_info, css_class="tr-text-info"),
        sizing_mode="stretch_width",
    )


def training_section(session):
    buttons = pn.FlexBox(
        button("Train", "tr-train", session.train, color="primary",
               disabled=disabled_unless(session, lambda r: not r, session.param.running)),
        button("Pause", "tr-pause", session.pause, color="warning",
               disabled=disabled_unless(session, bool, session.param.running)),
        button("Resume", "tr-resume", session.resume, color="success",
               disabled=disabled_unless(session, lambda r, m: m and not r, session.param.running,
                                        session.param.has_model)),
        button("Reset", "tr-reset", session.reset, color="light", disabled=disabled_unless(session)),
        flex_wrap="wrap", gap="8px", sizing_mode="stretch_width",
    )
    # All numeric readouts in one pane (one update per refresh; in the browser every pane update costs a few ms of
    # Python in the worker). Each readout is a <div class="tr-NAME"><span class="tr-kv">...</span></div> inside it.
    readouts = html_pane(readouts_html, session.param.step, session.param.chars_seen, session.param.chars_per_sec,
                         session.param.elapsed, session.param.train_loss, session.param.val_loss,
                         css_class="tr-readouts")
    sources = ChartSources(session.chart_data)

    def chart(fig, css_class):  # the Bokeh pane itself does not carry css_classes onto the page
        return pn.Column(pn.pane.Bokeh(fig, sizing_mode="stretch_width"), css_classes=css(css_class),
                         sizing_mode="stretch_width", min_width=260, styles={"flex": "1 1 420px"})

    charts = pn.FlexBox(chart(loss_figure(sources), "tr-loss-chart"), chart(flow_figure(sources), "tr-flow-chart"),
                        flex_wrap="wrap", gap="12px", sizing_mode="stretch_width")
    memory = html_pane(plain_html, session.param.memory_info, css_class="tr-memory",
                       visible=pn.bind(bool, session.param.memory_info))
    return pn.Column(pn.pane.Markdown("### Train"), settings_section(session), buttons,
                     html_pane(plain_html, session.param.status, css_class="tr-status"),
                     visible_note(session.param.notice, "tr-notice"), readouts, memory, charts,
                     compare_section(session, chart(compare_figure(sources), "tr-compare-chart")),
                     sizing_mode="stretch_width")


def compare_section(session, compare_chart):
    """The cells' gradient comparison: its window, what loss, the button, what the curves are, the chart."""
    return pn.Column(
        pn.FlexBox(
            settings_widget(session, view_field("compare_len"), width=190),
            pn.Column(pn.Spacer(height=22), pn.widgets.Checkbox.from_param(
                session.param.compare_last_step, css_classes=css("tr-compare-last-step"),
                disabled=disabled_unless(session))),
            pn.Column(pn.Spacer(height=18), button("Compare cells", "tr-compare", session.compare_cells,
                                                   color="default", disabled=disabled_unless(
                                                       session, bool, session.param.trainable)), width=150),
            flex_wrap="wrap", gap="0 16px", sizing_mode="stretch_width",
        ),
        html_pane(plain_html, session.param.compare_info, css_class="tr-compare-info"),
        compare_chart, sizing_mode="stretch_width",
    )


def hidden_state_section(session):
    """The hidden-state view: which passage, the unit, the units that track something, the coloured passage."""
    no_model = disabled_unless(session, bool, session.param.has_model)
    return pn.Column(
        pn.pane.Markdown("### Inside the model: one hidden unit over a passage"),
        pn.FlexBox(
            pn.widgets.Select.from_param(session.param.passage_source, css_classes=css("tr-passage-source"),
                                         width=190, disabled=disabled_unless(session)),
            settings_widget(session, view_field("passage_start"), width=150),
            settings_widget(session, view_field("passage_length"), width=150),
            pn.Column(pn.Spacer(height=18), button("Show", "tr-show-passage", session.show_passage,
                                                   color="primary", disabled=no_model), width=100),
            settings_widget(session, view_field("unit"), width=110),
            pn.widgets.Select.from_param(session.param.unit_choice, css_classes=css("tr-unit-choice"), width=330,
                                         disabled=disabled_unless(session)),
            flex_wrap="wrap", gap="0 12px", sizing_mode="stretch_width",
        ),
        html_pane(plain_html, session.param.passage_info, css_class="tr-passage-info"),
        html_pane(plain_html, session.param.unit_list, css_class="tr-unit-list"),
        # passage_view is HTML made by hidden.passage_html, in which every character of the text is escaped
        pn.pane.HTML(session.param.passage_view, css_classes=css("tr-passage"), stylesheets=[CSS],
                     sizing_mode="stretch_width", min_height=40),
        sizing_mode="stretch_width",
    )


def sampling_section(session):
    no_model = disabled_unless(session, bool, session.param.has_model)
    return pn.Column(
        pn.pane.Markdown("### Sample"),
        pn.FlexBox(
            pn.widgets.TextInput.from_param(session.param.prime, css_classes=css("tr-prime"), width=260,
                                            placeholder="optional text to start from",
                                            disabled=disabled_unless(session)),
            *(settings_widget(session, field, width=160) for field in settings.SAMPLING),
            pn.Column(pn.Spacer(height=18), button("Sample", "tr-sample", session.sample, color="primary",
                                                   disabled=no_model), width=120),
            flex_wrap="wrap", gap="0 12px", sizing_mode="stretch_width",
        ),
        html_pane(plain_html, session.param.sample_info, css_class="tr-sample-info"),
        html_pane(plain_html, session.param.sample_output, css_class="tr-sample-output", min_height=60),
        sizing_mode="stretch_width",
    )


def model_file_section(session):
    download = pn.widgets.FileDownload(
        callback=session.checkpoint_file, filename="tinyrnn-model.npz", label="Download latest model (.npz)",
        color="primary", variant="outline", css_classes=css("tr-download"), stylesheets=[BUTTON_CSS],
        disabled=disabled_unless(session, bool, session.param.has_model),
    )
    download_best = pn.widgets.FileDownload(
        callback=session.best_checkpoint_file, filename="tinyrnn-model-best.npz",
        label=pn.bind(lambda step: "Download best model (.npz)" if step is None
                      else f"Download best model (step {step:,}, .npz)", session.param.best_step),
        color="primary", variant="outline", css_classes=css("tr-download-best"), stylesheets=[BUTTON_CSS],
        disabled=disabled_unless(session, lambda step: step is not None, session.param.best_step),
    )
    upload_model = file_input(session, ".npz", "tr-upload-model", session.load_model)
    return pn.Column(
        pn.pane.Markdown("### Model file and gradient check"),
        pn.FlexBox(
            download,
            download_best,
            pn.Column(pn.pane.HTML("Load a model (.npz):", margin=(0, 5)), upload_model),
            button("Gradient check", "tr-gradcheck", session.gradient_check, color="default",
                   disabled=disabled_unless(session)),
            flex_wrap="wrap", gap="8px 16px", align_items="center", sizing_mode="stretch_width",
        ),
        html_pane(plain_html, session.param.gradcheck_output, css_class="tr-gradcheck-output"),
        sizing_mode="stretch_width",
    )


def kept_work_section(session):
    """What this browser keeps of the work, the Forget button, and the listener that saves when the tab is hidden."""
    visibility = PageVisibility(width=0, height=0, margin=0)
    visibility.param.watch(lambda event: session.keep_work(), "hidden")
    return pn.Column(
        pn.pane.Markdown("### Kept in this browser"),
        pn.FlexBox(
            button("Forget", "tr-forget", session.forget, color="light", disabled=disabled_unless(session)),
            html_pane(plain_html, session.param.storage_info, css_class="tr-storage"),
            flex_wrap="nowrap", gap="12px", align_items="center", sizing_mode="stretch_width",
        ),
        visibility,
        sizing_mode="stretch_width",
    )


def create_app(session: TrainingSession | None = None):
    """The page: a thin layout over a TrainingSession (a new one with the periodic training loop if None)."""
    if session is None:
        session = TrainingSession(use_periodic_callback=True, loading=True, store=browser_store())
    pn.state.cache["tinyrnn_session"] = session  # the latest page's session: bench/page_throughput.py reads its clock
    error_pane = pn.pane.HTML(
        pn.bind(alert_html, session.param.error), visible=pn.bind(bool, session.param.error),
        css_classes=css("tr-error"), stylesheets=[CSS], sizing_mode="stretch_width",
        styles={"position": "sticky", "top": "0", "z-index": "10"},  # stays in view while the page scrolls
    )
    # BootstrapTemplate: responsive and it fetches nothing from third-party hosts (FastListTemplate pulls a Google
    # font, which an offline page cannot load). One column: the settings sit beside Train, on a phone too.
    template = pn.template.BootstrapTemplate(
        title="tinyrnn: train a character-level RNN in your browser",
        main=[error_pane, text_section(session), training_section(session), sampling_section(session),
              hidden_state_section(session), model_file_section(session), kept_work_section(session)],
        header_background="#1f6feb",
        # no busy spinner: its throttling task is cancelled on every update, which Pyodide 0.27's event loop
        # reports as a CancelledError traceback in the console; the status line says what the app is doing
        busy_indicator=None,
        meta_viewport="width=device-width, initial-scale=1",
    )
    template.config.raw_css.append(PAGE_CSS)
    when_page_ready(session)
    return template
