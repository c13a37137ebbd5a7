"""The charts: Bokeh ColumnDataSources that follow a ``ChartData``, and the figures drawn from them.

Every chart's axes are explicit ``Range1d``s that ``ChartSources`` fits to the data whenever it changes (a log axis
to whole decades, so that its labels are a few powers of ten), unless the reader has zoomed or panned that chart:
then its view stays until the toolbar's reset (which returns to the latest fit) or until the chart empties. Bokeh's
automatic ranges warn in the console while a chart has no data ("could not set initial ranges", "could not
determine minimum data value for log axis")."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from bokeh.models import (ColumnDataSource, CustomJSTickFormatter, HoverTool, Label, Legend, LinearAxis, LogTicker,
                          Range1d)
from bokeh.plotting import figure

import tinyrnn

from .chartdata import CHART_ROLLOVER, COMPARE_SERIES, SERIES, ChartData

NATS_TO_BITS = tinyrnn.NATS_TO_BITS
RECENT_FITS = 16  # the fits a chart's ranges are compared with to tell the reader's zoom from a reset (a few s)


@dataclass
class _Fitted:
    """A figure whose ranges follow the series ``names`` (x from column ``x``; y from "loss", or "norm" on a log
    axis), the latest fits (each [x (start, end), y (start, end)]) and whether the reader holds its view."""

    fig: object
    names: tuple
    x: str
    log: bool
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT_FITS))
    held: bool = False


def _with_bits(name: str, data: dict) -> dict:
    """A series as the source's columns: the loss series also get a bits/char column (for the hover tool)."""
    data = {k: list(v) for k, v in data.items()}
    if "loss" in data:
        data["bits"] = [v * NATS_TO_BITS for v in data["loss"]]
    return data


class ChartSources:
    """One ColumnDataSource per ``ChartData`` series, kept in step with it (new points are streamed), and the
    placeholders that say what a chart will show while its series are empty."""

    def __init__(self, chart_data: ChartData):
        self.chart_data = chart_data
        self.sources = {name: ColumnDataSource(data=_with_bits(name, chart_data.series[name])) for name in SERIES}
        self.placeholders = []  # (Label, series names)
        self.fitted: list[_Fitted] = []
        chart_data.listeners.append(self)

    def fit(self, fig, names: tuple[str, ...], x: str, log: bool = False):
        """Keep ``fig``'s ranges around the series ``names`` (x from column ``x``; y from "loss" or "norm"), which
        is also where the toolbar's reset goes. Once the reader zooms or pans (the ranges are none of the latest
        fits), new points leave the view alone until reset is pressed or the series empty (a new model). The latest
        fits, not only the last: a reset in the page may use a fit that a newer one has overtaken on its way."""
        self.fitted.append(_Fitted(fig, names, x, log))
        self._fit(self.fitted[-1])

    def _fit(self, fitted: _Fitted):
        fig, names, log = fitted.fig, fitted.names, fitted.log
        xs = [v for n in names for v in self.chart_data.series[n][fitted.x]]
        ys = [v for n in names for v in self.chart_data.series[n]["norm" if log else "loss"]
              if v is not None and math.isfinite(v) and (v > 0 or not log)]
        x_range = (min(xs), max(xs)) if xs else (0, 1)
        if x_range[1] - x_range[0] < 1:
            x_range = (x_range[0], x_range[0] + 1)
        y_range = log_span(ys) if log else linear_span(ys)
        axes = ((fig.x_range, x_range), (fig.y_range, y_range))
        moved_by_reader = bool(xs) and bool(fitted.recent) and [(a.start, a.end) for a, _ in axes] not in fitted.recent
        for axis, (start, end) in axes:
            if (axis.reset_start, axis.reset_end) != (start, end):
                axis.update(reset_start=start, reset_end=end)
            if not moved_by_reader and (axis.start, axis.end) != (start, end):
                axis.update(start=start, end=end)
            elif moved_by_reader and not fitted.held:  # the reader's view, sent back once: a fit that was on its way to
                for name in ("start", "end"):  # the page when the reader zoomed would otherwise stay there
                    axis.trigger(name, getattr(axis, name), getattr(axis, name))
        fitted.recent.append([x_range, y_range])
        fitted.held = moved_by_reader

    def _refit(self, name: str):
        for fitted in self.fitted:
            if name in fitted.names:
                self._fit(fitted)

    def placeholder(self, fig, text: str, names: tuple[str, ...]):
        """``text`` in ``fig`` while every series in ``names`` is empty."""
        label = Label(x=12, y=150, x_units="screen", y_units="screen", text=text, text_color="#6c757d",
                      text_font_size="13px")
        fig.add_layout(label)
        self.placeholders.append((label, names))
        self._sync_placeholders()

    def _sync_placeholders(self):
        for label, names in self.placeholders:
            visible = not any(column for n in names for column in self.chart_data.series[n].values())
            if label.visible != visible:
                label.visible = visible

    def on_replace(self, name: str, data: dict):
        self.sources[name].data = _with_bits(name, data)
        self._sync_placeholders()
        self._refit(name)

    def on_append(self, name: str, points: dict):
        self.sources[name].stream(_with_bits(name, points), rollover=CHART_ROLLOVER)
        self._sync_placeholders()
        self._refit(name)


def linear_span(values) -> tuple[float, float]:
    """(start, end) around ``values`` with 5 % room (at least 0.1 wide); (0, 5) without values."""
    if not values:
        return 0.0, 5.0
    low, high = min(values), max(values)
    pad = max(0.05 * (high - low), 0.05)
    return round(max(0.0, low - pad), 3), round(high + pad, 3)


def log_span(values) -> tuple[float, float]:
    """(start, end) in whole decades around the positive ``values`` (at least two decades); (1e-3, 1) without."""
    if not values:
        return 1e-3, 1.0
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    high = max(high, low + 1)
    # at least two decades: over less, Bokeh's log ticker falls back to ticks like 2e-3 ... 9e-3, which crowd
    return 10.0 ** min(low, high - 2), 10.0 ** high


def _chart(title: str, x_label: str, y_label: str, **options):
    """A Bokeh figure with the app's common size, tools and toolbar (short titles and no logo: on a phone the title
    and the toolbar share one line)."""
    fig = figure(height=330, sizing_mode="stretch_width", min_width=260, tools="pan,wheel_zoom,box_zoom,reset,save",
                 toolbar_location="above", title=title, x_axis_label=x_label, y_axis_label=y_label,
                 x_range=Range1d(0, 1), y_range=Range1d(0, 1), **options)
    fig.toolbar.logo = None
    return fig


def loss_figure(sources: ChartSources):
    fig = _chart("Loss", "step", "loss (nats/char)")
    train = fig.line("step", "loss", source=sources.sources["loss"], line_width=2, color="#1f77b4")
    val = fig.scatter("step", "loss", source=sources.sources["val"], size=7, color="#d62728")
    fig.line("step", "loss", source=sources.sources["val"], line_width=1, color="#d62728", line_dash="dashed")
    fig.add_layout(
        LinearAxis(
            axis_label="bits/char",
            formatter=CustomJSTickFormatter(code=f"return (tick * {NATS_TO_BITS!r}).toFixed(2)"),
        ),
        "right",
    )
    fig.add_tools(
        HoverTool(
            renderers=[train, val],
            tooltips=[("step", "@step"), ("nats/char", "@loss{0.0000}"), ("bits/char", "@bits{0.0000}")],
        )
    )
    fig.add_layout(Legend(items=[("train", [train]), ("validation", [val])], orientation="horizontal"), "below")
    sources.placeholder(fig, "Press Train to see the loss here.", ("loss", "val"))
    sources.fit(fig, ("loss", "val"), "step")
    return fig


def _log_norm_axis(fig):
    """A few decades, labelled 1e-3, 1e-2, ... (the default log ticks crowd their labels); the range is fitted to
    whole decades (``log_span``), so every labelled tick is a power of ten."""
    fig.yaxis.ticker = LogTicker(desired_num_ticks=5, num_minor_ticks=0, mantissas=[1])
    fig.yaxis.formatter = CustomJSTickFormatter(  # a label at powers of ten only
        code="const e = Math.log10(tick); return Math.abs(e - Math.round(e)) < 1e-6 ? tick.toExponential(0) : '';")


def flow_figure(sources: ChartSources):
    fig = _chart("Gradient flow", "t (position in the BPTT window, current batch)", "‖∂L/∂h_t‖ (manual BPTT)",
                 y_axis_type="log")
    ref = fig.line("t", "norm", source=sources.sources["flow_ref"], color="#999999", line_dash="dashed",
                   line_width=1.5)
    cur = fig.line("t", "norm", source=sources.sources["flow"], color="#2ca02c", line_width=2)
    fig.scatter("t", "norm", source=sources.sources["flow"], color="#2ca02c", size=4)
    fig.add_tools(HoverTool(renderers=[cur], tooltips=[("t", "@t"), ("‖∂L/∂h_t‖", "@norm{0.000e}")]))
    fig.add_layout(Legend(items=[("at the start", [ref]), ("latest", [cur])], orientation="horizontal"), "below")
    _log_norm_axis(fig)
    sources.placeholder(fig, "Appears once there is a model.", ("flow", "flow_ref"))
    sources.fit(fig, ("flow", "flow_ref"), "t", log=True)
    return fig


CELL_COLOURS = {"rnn": "#d62728", "gru": "#1f77b4", "lstm": "#2ca02c"}
CELL_LABELS = {"rnn": "tanh RNN", "gru": "GRU", "lstm": "LSTM"}


def compare_figure(sources: ChartSources):
    """One curve per cell: the current model's and fresh models' of the other cells, on a log axis."""
    fig = _chart("The cells compared", "t (position in the comparison window)", "gradient norm",
                 y_axis_type="log")
    items, renderers = [], []
    for cell, name in COMPARE_SERIES.items():
        line = fig.line("t", "norm", source=sources.sources[name], color=CELL_COLOURS.get(cell, "#555555"),
                        line_width=2)
        items.append((CELL_LABELS.get(cell, cell), [line]))
        renderers.append(line)
    fig.add_tools(HoverTool(renderers=renderers, tooltips=[("t", "@t"), ("norm", "@norm{0.000e}")]))
    fig.add_layout(Legend(items=items, orientation="horizontal"), "below")
    _log_norm_axis(fig)
    sources.placeholder(fig, "Press Compare cells to see how far each cell's gradients reach back.",
                        tuple(COMPARE_SERIES.values()))
    sources.fit(fig, tuple(COMPARE_SERIES.values()), "t", log=True)
    return fig
