"""The page's sections as ``pn.viewable.Viewer``s over the session's parts: the first screen (the text choice,
Train/Pause, the readouts) and the tabs (Train: the charts and samples; Text and settings; Inside the model; The
cells race; Model file). No logic here: every action is a part's method."""

from __future__ import annotations

import panel as pn
import param
from bokeh.models import Legend

from . import settings
from .charts import ChartSources, compare_figure, flow_figure, loss_figure
from .layout import (BUTTON_CSS, CSS, button, disabled_unless, file_input, html_pane, settings_widget, view_field,
                     visible_note)
from .render import plain_html, readouts_html
from .race_view import RaceView
from .samples import milestones_text
from .selectors import css
from .session import TrainingSession
from .text import MAX_TEXT_CHARS, RECALL_CORPUS
from .visibility import PageVisibility

# The tabs' headers wrap on a narrow screen instead of widening the page.
TABS_CSS = """
.bk-headers-wrapper { flex-wrap: wrap !important; overflow-x: hidden !important; }
.bk-tab { padding: 4px 10px; }
"""
TAB_NAMES = ("Train", "Text and settings", "Inside the model", "The cells race", "Model file")


class Section(pn.viewable.Viewer):
    """A part of the page over ``session`` (and the charts' ``sources``), built once (``build``)."""

    session = param.ClassSelector(class_=TrainingSession)
    sources = param.ClassSelector(class_=ChartSources, default=None, doc="The charts' data sources, shared.")

    def __init__(self, **params):
        super().__init__(**params)
        self._view = None

    def __panel__(self):
        if self._view is None:
            self._view = self.build()
        return self._view

    def build(self):
        raise NotImplementedError

    @staticmethod
    def marked(view, css_class):
        """A stand-alone view that carries its selector ``css_class`` itself (checked against the table)."""
        css(css_class)
        return view


def chart(fig, css_class):
    """A Bokeh figure in a column carrying its selector (the Bokeh pane itself does not carry css_classes)."""
    return pn.Column(pn.pane.Bokeh(fig, sizing_mode="stretch_width"), css_classes=css(css_class),
                     sizing_mode="stretch_width", min_width=260, styles={"flex": "1 1 420px"})


class FirstScreen(Section):
    """What a person needs first, on a phone too: the text choice, Train/Pause/Resume/Reset, the status and the
    live readouts."""

    def build(self):
        s = self.session
        run = s.run
        text_choice = pn.FlexBox(
            pn.widgets.Select.from_param(s.text.param.corpus, css_classes=css("tr-corpus"), width=200,
                                         disabled=disabled_unless(s)),
            pn.Column(settings_widget(s, view_field("recall_k"), width=150), width=160,
                      visible=pn.bind(lambda corpus: corpus == RECALL_CORPUS, s.text.param.corpus)),
            html_pane(plain_html, s.text.param.text_info, css_class="tr-text-info", width=None,
                      sizing_mode="stretch_width", styles={"flex": "1 1 240px"}, margin=(18, 5, 0, 5)),
            flex_wrap="wrap", gap="0 12px", sizing_mode="stretch_width",
        )
        controls = s.controls
        buttons = pn.FlexBox(
            button("Train", "tr-train", controls.train, color="primary",
                   disabled=disabled_unless(s, lambda r: not r, run.param.running)),
            button("Pause", "tr-pause", controls.pause, color="warning",
                   disabled=disabled_unless(s, bool, run.param.running)),
            button("Resume", "tr-resume", controls.resume, color="success",
                   disabled=disabled_unless(s, lambda r, m: m and not r, run.param.running, run.param.has_model)),
            button("Reset", "tr-reset", controls.reset, color="light", disabled=disabled_unless(s)),
            flex_wrap="wrap", gap="8px", sizing_mode="stretch_width",
        )
        # All numeric readouts in one pane (one update per refresh; in the browser every pane update costs a few ms
        # of Python in the worker). Each readout is a <div class="tr-NAME"><span class="tr-kv">...</span></div>.
        readouts = html_pane(readouts_html, run.param.step, run.param.chars_seen, run.param.chars_per_sec,
                             run.param.elapsed, run.param.train_loss, run.param.val_loss, css_class="tr-readouts")
        memory = html_pane(plain_html, s.views.param.memory_info, css_class="tr-memory",
                           visible=pn.bind(bool, s.views.param.memory_info))
        return pn.Column(text_choice, buttons, html_pane(plain_html, s.page.param.status, css_class="tr-status"),
                         visible_note(run.param.notice, "tr-notice"), readouts, memory, sizing_mode="stretch_width")


class TrainTab(Section):
    """The loss and gradient-flow charts, the live sample, the samples at milestones, sampling on request."""

    def build(self):
        s = self.session
        sources = self.sources or ChartSources(s.run.chart_data)
        charts = pn.FlexBox(chart(loss_figure(sources), "tr-loss-chart"), chart(flow_figure(sources), "tr-flow-chart"),
                            flex_wrap="wrap", gap="12px", sizing_mode="stretch_width")
        samples = s.samples
        live = pn.Column(
            pn.pane.Markdown("#### Live sample"),
            html_pane(plain_html, samples.param.live_info, css_class="tr-live-info"),
            html_pane(plain_html, samples.param.live_sample, css_class="tr-live-sample", min_height=40),
            sizing_mode="stretch_width",
        )
        milestones = pn.Column(
            pn.pane.Markdown("#### Samples as training goes on"),
            html_pane(lambda kept: plain_html(milestones_text(kept)), samples.param.milestones,
                      css_class="tr-milestones"),
            sizing_mode="stretch_width",
        )
        return pn.Column(charts, live, SampleSection(session=s), milestones, sizing_mode="stretch_width")


class SampleSection(Section):
    """Sampling on request: a priming text, temperature, length; the sample stays until the next one."""

    def build(self):
        s = self.session
        samples = s.samples
        return pn.Column(
            pn.pane.Markdown("#### Sample on request"),
            pn.FlexBox(
                pn.widgets.TextInput.from_param(samples.param.prime, css_classes=css("tr-prime"), width=240,
                                                placeholder="optional text to start from",
                                                disabled=disabled_unless(s)),
                *(settings_widget(s, field, width=150) for field in settings.SAMPLING),
                pn.Column(pn.Spacer(height=18), button("Sample", "tr-sample", samples.sample, color="primary",
                                                       disabled=disabled_unless(s, bool, s.run.param.has_model)),
                          width=110),
                flex_wrap="wrap", gap="0 12px", sizing_mode="stretch_width",
            ),
            html_pane(plain_html, samples.param.sample_info, css_class="tr-sample-info"),
            html_pane(plain_html, samples.param.sample_output, css_class="tr-sample-output", min_height=40),
            sizing_mode="stretch_width",
        )


class TextAndSettingsTab(Section):
    """The text area and upload, and the model and training settings."""

    def build(self):
        s = self.session
        upload_text = file_input(s, ".txt,text/plain", "tr-upload-text", s.text.load_text_file, width=240)
        text = pn.Column(
            pn.pane.Markdown("#### Text to learn"),
            pn.FlexBox(pn.pane.HTML("Or upload a UTF-8 .txt file:", margin=(8, 5)), upload_text, flex_wrap="wrap",
                       sizing_mode="stretch_width"),
            pn.widgets.TextAreaInput.from_param(
                s.text.param.text, max_length=MAX_TEXT_CHARS + 1, rows=8, css_classes=css("tr-text"),
                sizing_mode="stretch_width", disabled=disabled_unless(s),
                placeholder="Paste any text here (or upload a .txt file, or pick a built-in corpus).",
            ),
            sizing_mode="stretch_width",
        )
        form = s.form
        settings_block = pn.Column(
            pn.pane.Markdown("#### Model and training settings"),
            pn.FlexBox(*(settings_widget(s, field, width=170) for field in settings.FORM), flex_wrap="wrap",
                       gap="0 12px", sizing_mode="stretch_width"),
            html_pane(lambda cell: plain_html(settings.cell_descriptions(cell)), form.param.cell,
                      css_class="tr-cell-info"),
            visible_note(form.param.settings_info, "tr-settings-info"),
            html_pane(plain_html, s.run.param.backend, css_class="tr-backend"),
            pn.pane.Markdown("Changes apply to a new model: **Train** starts one when the text or a setting changed; "
                             "**Resume** continues the current model as it is."),
            sizing_mode="stretch_width",
        )
        return pn.Column(settings_block, text, sizing_mode="stretch_width")


class InsideTab(Section):
    """The hidden-state view: which passage, the unit, the units that track something, the coloured passage."""

    def build(self):
        s = self.session
        views = s.views
        return pn.Column(
            pn.pane.Markdown("#### One hidden unit over a passage"),
            pn.FlexBox(
                pn.widgets.Select.from_param(views.param.passage_source, css_classes=css("tr-passage-source"),
                                             width=190, disabled=disabled_unless(s)),
                settings_widget(s, view_field("passage_start"), width=140),
                settings_widget(s, view_field("passage_length"), width=140),
                pn.Column(pn.Spacer(height=18), button("Show", "tr-show-passage", views.show_passage,
                                                       color="primary",
                                                       disabled=disabled_unless(s, bool, s.run.param.has_model)),
                          width=100),
                settings_widget(s, view_field("unit"), width=110),
                pn.widgets.Select.from_param(views.param.unit_choice, css_classes=css("tr-unit-choice"), width=301,
                                             disabled=disabled_unless(s)),
                flex_wrap="wrap", gap="0 12px", sizing_mode="stretch_width",
            ),
            html_pane(plain_html, views.param.passage_info, css_class="tr-passage-info"),
            html_pane(plain_html, views.param.unit_list, css_class="tr-unit-list"),
            # passage_view is HTML made by hidden.passage_html, in which every character of the text is escaped
            pn.pane.HTML(views.param.passage_view, css_classes=css("tr-passage"), stylesheets=[CSS],
                         sizing_mode="stretch_width", min_height=40),
            html_pane(plain_html, s.inside.param.note, css_class="tr-inside-note"),
            pn.pane.Markdown("#### What a prediction depends on (click a character)"),
            self.marked(s.inside.connectivity, "tr-connectivity"),
            pn.pane.Markdown("#### Gates and memory over the passage"),
            self.marked(s.inside.gates, "tr-gates"),
            pn.pane.Markdown("#### What the model expects next (hover or tap a character)"),
            self.marked(s.inside.expect, "tr-expect"),
            sizing_mode="stretch_width",
        )



class RaceTab(Section):
    """The cells race (its budget, Start and Stop, how far it has come, its charts and verdict), then the
    comparison of the current model's gradient reach with fresh models of the other cells."""

    def build(self):
        s = self.session
        race = s.race
        view = RaceView(budget=race.budget)
        # On a phone the title and the toolbar share one line and a legend does not wrap: short titles, no logo,
        # the six reach curves' legend in two columns (the long title made the page 416 px wide at 390)
        for fig, title in ((view.loss_figure, "Validation loss"), (view.reach_figure, "Gradient reach")):
            fig.title.text, fig.toolbar.logo = title, None
        for legend in view.reach_figure.select(Legend):
            legend.ncols = 2
        race.param.watch(lambda event: view.param.update(curves=event.new, budget=race.budget), "curves")
        race.param.watch(lambda event: view.param.update(result=event.new), "result")
        controls = pn.FlexBox(
            pn.widgets.Select.from_param(race.param.budget, css_classes=css("tr-race-budget"), width=190,
                                         disabled=disabled_unless(s)),
            pn.Column(pn.Spacer(height=18), button("Start the race", "tr-race-start", race.start_race,
                                                   color="primary", disabled=disabled_unless(
                                                       s, lambda r: not r, race.param.racing)), width=150),
            pn.Column(pn.Spacer(height=18), button("Stop", "tr-race-stop", race.stop_race, color="warning",
                                                   disabled=disabled_unless(s, bool, race.param.racing)), width=90),
            flex_wrap="wrap", gap="0 12px", sizing_mode="stretch_width",
        )
        return pn.Column(
            pn.pane.Markdown("The three cells train on this text with these settings, from the same seed, for the same "
                             "number of characters, in the background while you read on."),
            controls, html_pane(plain_html, race.param.progress, css_class="tr-race-progress"),
            self.marked(view, "tr-race"),
            pn.pane.Markdown("#### The current model beside fresh models of the other cells"),
            CompareSection(session=s, sources=self.sources), sizing_mode="stretch_width",
        )


class CompareSection(Section):
    """The cells' gradient comparison: its window, what loss, the button, what the curves are, the chart."""

    def build(self):
        s = self.session
        views = s.views
        sources = self.sources or ChartSources(s.run.chart_data)
        return pn.Column(
            pn.FlexBox(
                settings_widget(s, view_field("compare_len"), width=190),
                pn.Column(pn.Spacer(height=22), pn.widgets.Checkbox.from_param(
                    views.param.compare_last_step, css_classes=css("tr-compare-last-step"),
                    disabled=disabled_unless(s))),
                pn.Column(pn.Spacer(height=18), button("Compare cells", "tr-compare", views.compare_cells,
                                                       color="default", disabled=disabled_unless(
                                                           s, bool, s.run.param.trainable)), width=150),
                flex_wrap="wrap", gap="0 16px", sizing_mode="stretch_width",
            ),
            html_pane(plain_html, views.param.compare_info, css_class="tr-compare-info"),
            chart(compare_figure(sources), "tr-compare-chart"), sizing_mode="stretch_width",
        )


class ModelFileTab(Section):
    """Download (latest, best), load a model file, the gradient check, and what this browser keeps."""

    def build(self):
        s = self.session
        controls = s.controls
        download = pn.widgets.FileDownload(
            callback=controls.checkpoint_file, filename="tinyrnn-model.npz", label="Download latest model (.npz)",
            color="primary", variant="outline", css_classes=css("tr-download"), stylesheets=[BUTTON_CSS],
            disabled=disabled_unless(s, bool, s.run.param.has_model),
        )
        download_best = pn.widgets.FileDownload(
            callback=controls.best_checkpoint_file, filename="tinyrnn-model-best.npz",
            label=pn.bind(lambda step: "Download best model (.npz)" if step is None
                          else f"Download best model (step {step:,}, .npz)", s.run.param.best_step),
            color="primary", variant="outline", css_classes=css("tr-download-best"), stylesheets=[BUTTON_CSS],
            disabled=disabled_unless(s, lambda step: step is not None, s.run.param.best_step),
        )
        upload_model = file_input(s, ".npz", "tr-upload-model", controls.load_model, width=240)
        visibility = PageVisibility(width=0, height=0, margin=0)  # saves the work when the tab is hidden
        visibility.param.watch(lambda event: s.kept.keep_work(), "hidden")
        return pn.Column(
            pn.FlexBox(
                download, download_best,
                pn.Column(pn.pane.HTML("Load a model (.npz):", margin=(0, 5)), upload_model),
                button("Gradient check", "tr-gradcheck", controls.gradient_check, color="default",
                       disabled=disabled_unless(s)),
                flex_wrap="wrap", gap="8px 16px", align_items="center", sizing_mode="stretch_width",
            ),
            html_pane(plain_html, controls.param.gradcheck_output, css_class="tr-gradcheck-output"),
            pn.pane.Markdown("#### Kept in this browser"),
            pn.FlexBox(
                button("Forget", "tr-forget", s.kept.forget, color="light", disabled=disabled_unless(s)),
                html_pane(plain_html, s.kept.param.storage_info, css_class="tr-storage"),
                flex_wrap="nowrap", gap="12px", align_items="center", sizing_mode="stretch_width",
            ),
            visibility, sizing_mode="stretch_width",
        )


class Tabs(Section):
    """Everything after the first screen, one tab per task."""

    def build(self):
        s = self.session
        tabs = (TrainTab, TextAndSettingsTab, InsideTab, RaceTab, ModelFileTab)
        sources = ChartSources(s.run.chart_data)
        return pn.Tabs(*((name, tab(session=s, sources=sources)) for name, tab in zip(TAB_NAMES, tabs)), css_classes=css("tr-tabs"),
                       stylesheets=[TABS_CSS], sizing_mode="stretch_width", dynamic=False)
