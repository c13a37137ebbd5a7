"""What the two charts show, as plain lists (no Bokeh): the loss curves and the gradient flow.

``ChartData`` keeps the points and tells its listeners (``charts.ChartSources`` on the page) what changed, so the
page streams only new points. The lists are also what the browser store keeps across reloads.
"""

from __future__ import annotations

import math

import numpy as np

import tinyrnn

CHART_ROLLOVER = 4000  # points kept per loss series
COMPARE_SERIES = {cell: "cmp_" + cell for cell in tinyrnn.CELLS}  # the cells' gradient comparison, one per cell
SERIES = ("loss", "val", "flow", "flow_ref", *COMPARE_SERIES.values())


def _empty(name: str) -> dict:
    return dict(t=[], norm=[]) if name.startswith(("flow", "cmp_")) else dict(step=[], loss=[])


def _norms_data(norms) -> dict:
    """{"t": [1..T], "norm": [...]}: non-finite values become gaps, zeros a tiny positive (log axis)."""
    norms = np.asarray(norms, dtype=np.float64)
    norms = np.where(np.isfinite(norms), np.maximum(norms, 1e-30), np.nan)
    return dict(t=list(range(1, len(norms) + 1)), norm=norms.tolist())


class ChartData:
    """Series ``loss`` and ``val`` ({"step": [...], "loss": [...]}, nats/char), ``flow``/``flow_ref`` and one
    ``cmp_<cell>`` per cell ({"t": [1..T], "norm": [...]}). Listeners get ``on_replace(name, data)`` and ``on_append(name, points)``."""

    def __init__(self):
        self.series = {name: _empty(name) for name in SERIES}
        self.listeners = []

    def __getattr__(self, name):
        if name in SERIES:
            return self.series[name]
        raise AttributeError(name)

    def _replace(self, name: str, data: dict):
        self.series[name] = data
        for listener in self.listeners:
            listener.on_replace(name, data)

    def _append(self, name: str, points: dict):
        series = self.series[name]
        for key, values in points.items():
            series[key] = (series[key] + list(values))[-CHART_ROLLOVER:]
        for listener in self.listeners:
            listener.on_append(name, points)

    def clear(self):
        for name in SERIES:
            self._replace(name, _empty(name))

    def add_train_point(self, step: int, loss: float):
        self._append("loss", dict(step=[step], loss=[loss]))

    def add_val_points(self, points: list[tuple[int, float]]):
        if points:
            self._append("val", dict(step=[s for s, _ in points], loss=[v for _, v in points]))

    def set_flow(self, norms, reference: bool = False):
        """``norms``: ‖∂L/∂h_t‖ for t = 1..T (see ``_norms_data``)."""
        data = _norms_data(norms)
        if reference:
            self._replace("flow_ref", dict(data))
        self._replace("flow", data)

    def set_comparison(self, curves: dict):
        """``curves``: {cell: ‖∂L/∂h_t‖ (T,)} for the cells compared (the others' series are emptied)."""
        for cell, name in COMPARE_SERIES.items():
            self._replace(name, _norms_data(curves[cell]) if cell in curves else _empty(name))

    def replay(self, history) -> tuple[float | None, float | None]:
        """Show a model's training history (``StepMetrics``) on the loss chart, averaged down to at most
        CHART_ROLLOVER/2 points. Returns (recent training loss, last validation loss), None where there is none."""
        if not history:
            return None, None
        steps = np.array([m.step for m in history], dtype=np.float64)
        losses = np.array([m.train_loss for m in history], dtype=np.float64)
        chunk = max(1, math.ceil(len(history) / (CHART_ROLLOVER // 2)))
        n = len(history) // chunk * chunk
        if n:
            self._replace("loss", dict(step=steps[:n].reshape(-1, chunk)[:, -1].tolist(),
                                       loss=losses[:n].reshape(-1, chunk).mean(axis=1).tolist()))
        vals = [(m.step, float(m.val_loss)) for m in history if m.val_loss is not None]
        if vals:
            self._replace("val", dict(step=[s for s, _ in vals], loss=[v for _, v in vals]))
        return float(losses[-min(len(losses), 20):].mean()), (vals[-1][1] if vals else None)

    def to_dict(self) -> dict:
        """Every series, JSON-ready."""
        return {name: {k: list(v) for k, v in data.items()} for name, data in self.series.items()}

    def load_dict(self, data: dict):
        for name in SERIES:
            if name in data:
                self._replace(name, {k: list(v) for k, v in data[name].items()})
