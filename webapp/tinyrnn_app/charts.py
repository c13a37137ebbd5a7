"""The two charts: Bokeh ColumnDataSources that follow a ``ChartData``, and the figures drawn from them."""

from __future__ import annotations

from bokeh.models import ColumnDataSource, CustomJSTickFormatter, HoverTool, Label, Legend, LinearAxis, LogTicker
from bokeh.plotting import figure

import tinyrnn

from .chartdata import CHART_ROLLOVER, COMPARE_SERIES, SERIES, ChartData

NATS_TO_BITS = tinyrnn.NATS_TO_BITS


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
        chart_data.listeners.append(self)

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

    def on_append(self, name: str, points: dict):
        self.sources[name].stream(_with_bits(name, points), rollover=CHART_ROLLOVER)
        self._sync_placeholders()


def _chart(title: str, x_label: str, y_label: str, **options):
    """A Bokeh figure with the app's common size, tools and toolbar."""
    return figure(height=330, sizing_mode="stretch_width", min_width=260, tools="pan,wheel_zoom,box_zoom,reset,save",
                  toolbar_location="above", title=title, x_axis_label=x_label, y_axis_label=y_label, **options)


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
    return fig


def _log_norm_axis(fig):
    """A few decades, labelled 1e-3, 1e-2, ... (the default log ticks crowd their labels)."""
    fig.yaxis.ticker = LogTicker(desired_num_ticks=5, num_minor_ticks=0)
    fig.yaxis.formatter = CustomJSTickFormatter(code="return tick.toExponential(0)")


def flow_figure(sources: ChartSources):
    fig = _chart("Gradient flow (manual BPTT, current batch)", "t (position in the BPTT window)", "‖∂L/∂h_t‖",
                 y_axis_type="log")
    ref = fig.line("t", "norm", source=sources.sources["flow_ref"], color="#999999", line_dash="dashed",
                   line_width=1.5)
    cur = fig.line("t", "norm", source=sources.sources["flow"], color="#2ca02c", line_width=2)
    fig.scatter("t", "norm", source=sources.sources["flow"], color="#2ca02c", size=4)
    fig.add_tools(HoverTool(renderers=[cur], tooltips=[("t", "@t"), ("‖∂L/∂h_t‖", "@norm{0.000e}")]))
    fig.add_layout(Legend(items=[("at the start", [ref]), ("latest", [cur])], orientation="horizontal"), "below")
    _log_norm_axis(fig)
    sources.placeholder(fig, "Appears once there is a model.", ("flow", "flow_ref"))
    return fig


CELL_COLOURS = {"rnn": "#d62728", "gru": "#1f77b4", "lstm": "#2ca02c"}
CELL_LABELS = {"rnn": "tanh RNN", "gru": "GRU", "lstm": "LSTM"}


def compare_figure(sources: ChartSources):
    """One curve per cell: the current model's and fresh models' of the other cells, on a log axis."""
    fig = _chart("Gradient flow: the cells compared", "t (position in the comparison window)", "gradient norm",
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
    return fig
