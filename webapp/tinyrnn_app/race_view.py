"""The cells race as a stand-alone ``pn.viewable.Viewer`` over the race's records, never the session: validation
loss against characters seen per cell (``tinyrnn.CellsRace.curves()``, updated while it runs), then each trained
model's gradient reach beside a fresh one's (dashed) and the verdict (``tinyrnn.RaceResult``, ``tinyrnn.verdict``).
``race_models`` turns a result into the records ``inside.ConnectivityView`` shows side by side.

Every range is set explicitly (Bokeh logs "could not set initial ranges" for data ranges without data) and the
log axis is labelled at a few whole decades only.
"""

from __future__ import annotations

import math

import numpy as np
import panel as pn
import param
from bokeh.models import (ColumnDataSource, CustomJSTickFormatter, FixedTicker, HoverTool, Legend, NumeralTickFormatter,
                          Range1d)
from bokeh.plotting import figure
from panel.viewable import Viewer

import tinyrnn

from .inside import VIEW_CSS, ModelText
from .render import plain_html

CELL_COLOURS = {"rnn": "#d62728", "gru": "#1f77b4", "lstm": "#2ca02c"}
MAX_DECADE_LABELS = 5


def race_models(result: tinyrnn.RaceResult, passage: str) -> list[ModelText]:
    """The race's trained models over one passage, for ``inside.ConnectivityView``."""
    return [ModelText(result.params[cell], result.vocab, cell, passage) for cell in result.cells]


def decade_ticks(values) -> tuple[float, float, list[float]]:
    """(low, high, ticks) for a log axis over the positive finite ``values``: whole decades around them, and at
    most ``MAX_DECADE_LABELS`` of those decades as labelled ticks."""
    values = np.asarray([v for v in values if math.isfinite(v) and v > 0], dtype=np.float64)
    if values.size == 0:
        return 1e-3, 1.0, [1e-3, 1e-2, 1e-1, 1.0]
    low, high = math.floor(math.log10(values.min())), math.ceil(math.log10(values.max()))
    high = max(high, low + 1)
    step = max(1, math.ceil((high - low) / (MAX_DECADE_LABELS - 1)))
    return 10.0 ** low, 10.0 ** high, [10.0 ** k for k in range(high, low - 1, -step)][::-1]


def _chart(title, x_label, y_label, **options):
    """A figure that fits a 390-px phone: its natural width is its minimum (Panel makes a figure's width the page's
    minimum), short titles, four tools."""
    return figure(height=300, width=260, sizing_mode="stretch_width", min_width=260, tools="pan,box_zoom,reset,save",
                  toolbar_location="above", title=title, x_axis_label=x_label, y_axis_label=y_label, **options)


def _legend(items, **options) -> Legend:
    """A compact legend for under a chart (about 250 px wide at three items a row)."""
    return Legend(items=items, orientation="horizontal", label_text_font_size="11px", glyph_width=16, spacing=6,
                  padding=4, margin=4, **options)


class RaceView(Viewer):
    """The race's charts and verdict. Set ``curves`` and ``budget`` while it runs, ``result`` when it is done."""

    curves = param.Dict(default={}, doc="Cell -> validation points (tinyrnn.LossPoint) so far.")
    budget = param.Integer(default=0, bounds=(0, None), doc="Training characters per cell.")
    result = param.ClassSelector(class_=tinyrnn.RaceResult, default=None, allow_None=True)
    verdict = param.String(default="", doc="The verdict (plain text), '' until the race is done.")

    def __init__(self, **params):
        super().__init__(**params)
        self.loss_sources = {c: ColumnDataSource(data=dict(chars=[], loss=[])) for c in tinyrnn.CELLS}
        self.reach_sources = {(c, trained): ColumnDataSource(data=dict(back=[], reach=[]))
                              for c in tinyrnn.CELLS for trained in (True, False)}
        self.loss_figure = self._loss_figure()
        self.reach_figure = self._reach_figure()
        self._verdict = pn.pane.HTML("", css_classes=["tr-race-verdict"], stylesheets=[VIEW_CSS],
                                     sizing_mode="stretch_width")
        self._show_curves()
        self._show_result()

    def _loss_figure(self):
        fig = _chart("The cells race: validation loss", "characters seen", "loss (nats/char)",
                     x_range=Range1d(0, 1), y_range=Range1d(0, 1))
        items = []
        for cell, source in self.loss_sources.items():
            label = tinyrnn.get_cell(cell).label
            line = fig.line("chars", "loss", source=source, color=CELL_COLOURS[cell], line_width=2, name=label)
            fig.scatter("chars", "loss", source=source, color=CELL_COLOURS[cell], size=5, name=label)
            items.append((label, [line]))
        fig.xaxis.formatter = NumeralTickFormatter(format="0.[0]a")  # 500k, 2m
        fig.add_tools(HoverTool(tooltips=[("cell", "$name"), ("characters", "@chars{0,0}"),
                                          ("nats/char", "@loss{0.000}")]))
        fig.add_layout(_legend(items), "below")
        return fig

    def _reach_figure(self):
        fig = _chart("Gradient reach: trained and fresh", "steps back (T − t)",
                     "‖∂L_T/∂h_t‖ / ‖∂L_T/∂h_T‖", x_range=Range1d(0, 1), y_range=Range1d(1e-3, 1.0), y_axis_type="log")
        lines = {}
        for (cell, trained), source in self.reach_sources.items():
            lines[cell, trained] = fig.line("back", "reach", source=source, color=CELL_COLOURS[cell], line_width=2,
                                            line_dash="solid" if trained else "dashed",
                                            line_alpha=1.0 if trained else 0.6,
                                            name=f"{tinyrnn.get_cell(cell).label} {'trained' if trained else 'fresh'}")
        # a column per cell: its trained model (solid) above its fresh one (dashed)
        items = [(tinyrnn.get_cell(c).label + " trained", [lines[c, True]]) for c in tinyrnn.CELLS]
        items += [("fresh", [lines[c, False]]) for c in tinyrnn.CELLS]
        fig.add_tools(HoverTool(renderers=list(lines.values()),
                                tooltips=[("model", "$name"), ("steps back", "@back"),
                                          ("share", "@reach{0.00e}")]))
        fig.add_layout(_legend(items, ncols=3), "below")
        fig.yaxis.ticker = FixedTicker(ticks=[1e-3, 1e-2, 1e-1, 1.0], minor_ticks=[])
        fig.yaxis.formatter = CustomJSTickFormatter(
            code="const k = Math.round(Math.log10(tick)); return k === 0 ? '1' : '1e' + k;")
        return fig

    @param.depends("curves", "budget", watch=True)
    def _show_curves(self):
        losses, most = [], 1
        for cell, source in self.loss_sources.items():
            points = self.curves.get(cell, ())
            source.data = dict(chars=[p.chars_seen for p in points], loss=[p.val_loss for p in points])
            losses += [p.val_loss for p in points if math.isfinite(p.val_loss)]
            most = max([most] + [p.chars_seen for p in points])
        self.loss_figure.x_range.update(start=0, end=max(self.budget, most))
        self.loss_figure.y_range.update(start=0, end=1.05 * max(losses) if losses else 1.0)

    @param.depends("result", watch=True)
    def _show_result(self):
        result, shown = self.result, []
        for (cell, trained), source in self.reach_sources.items():
            if result is None or cell not in result.cells:
                source.data = dict(back=[], reach=[])
                continue
            share = result.relative_reach(cell, trained)
            back = np.arange(share.size)[::-1]
            keep = np.isfinite(share) & (share > 0)  # a gradient that underflowed to 0 has no place on a log axis
            source.data = dict(back=back[keep].tolist(), reach=share[keep].tolist())
            shown += share[keep].tolist()
        low, high, ticks = decade_ticks(shown)
        self.reach_figure.y_range.update(start=low, end=high)
        self.reach_figure.yaxis.ticker.ticks = ticks
        steps = max((len(r) for r in result.reach_trained.values()), default=2) if result else 2
        self.reach_figure.x_range.update(start=0, end=steps - 1)
        self.verdict = tinyrnn.verdict(result) if result is not None else ""
        self._verdict.object = plain_html(self.verdict or "The verdict appears when every cell has seen the budget.")

    def __panel__(self):
        def chart(fig, css_class):  # the column's min_width keeps the figure's default width from widening the page
            return pn.Column(pn.pane.Bokeh(fig, sizing_mode="stretch_width"), css_classes=[css_class],
                             sizing_mode="stretch_width", min_width=260)

        return pn.Column(chart(self.loss_figure, "tr-race-loss-chart"), chart(self.reach_figure, "tr-race-reach-chart"),
                         self._verdict, css_classes=["tr-race"], sizing_mode="stretch_width")
