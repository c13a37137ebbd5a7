"""Training in ticks: Panel's periodic callback runs :meth:`TrainingLoop.tick` (about ``TICK_SECONDS`` of steps,
then control goes back to the event loop, so Pause takes effect within a second and the page stays responsive);
the readouts, the charts' data, live samples and notices follow the steps. No Bokeh here."""

from __future__ import annotations

import asyncio
import sys

import panel as pn
import param

import tinyrnn

from .chartdata import ChartData
from .loop import FLOW_EVERY, LIVE_SAMPLE_EVERY, LIVE_SAMPLE_LENGTH, TICK_PERIOD_MS, TICK_SECONDS, UI_INTERVAL, StepGatherer
from .model import ModelSlot
from .notices import diverging_notice, overfitting_notice
from .text import TextPart


class TrainingLoop(TextPart):
    """The current model (``self.model``, a ``ModelSlot``), the loop that trains it and the readouts it feeds."""

    running = param.Boolean(default=False, doc="True while the training loop runs.")
    step = param.Integer(default=0)
    chars_seen = param.Integer(default=0)
    chars_per_sec = param.Number(default=0.0)
    elapsed = param.Number(default=0.0)
    train_loss = param.Number(default=None, allow_None=True)
    val_loss = param.Number(default=None, allow_None=True)
    sample_output = param.String(default="")
    sample_info = param.String(default="")
    notice = param.String(default="", doc="A warning about the run in words (diverging, overfitting), or ''.")
    best_step = param.Integer(default=None, allow_None=True, doc="Step of the best-validation model kept, if any.")

    def __init__(self, use_periodic_callback: bool = False, **params):
        """``use_periodic_callback``: train from Panel's periodic callback (in a page; tests call ``tick``)."""
        super().__init__(**params)
        self.use_periodic_callback = use_periodic_callback
        self.model = ModelSlot()
        self.chart_data = ChartData()
        self.gatherer = StepGatherer()
        self.ui_interval = UI_INTERVAL
        self._callback = None

    @property
    def trainer(self):
        """The current model's ``tinyrnn.Trainer`` (None without a model or for a sampling-only one)."""
        return self.model.trainer

    def _start(self, new_model: bool):
        self.running = True
        what = "a new model" if new_model else f"from step {self.step}"
        config = self.trainer.config
        self.status = f"Training {what} ({config.cell}, H={config.hidden_size}) ..."
        self.gatherer.restart_clocks()
        if self.use_periodic_callback and self._callback is None:
            # background=True: the ticks do not toggle the page's busy indicator (two page updates per tick)
            self._callback = pn.io.PeriodicCallback(callback=self._periodic, period=TICK_PERIOD_MS, background=True)
            self._callback.start()

    def view_due(self) -> bool:
        """True if the views that follow training should be refreshed now (subclasses; see views.py)."""
        return False

    def refresh_views(self):
        """Refresh the views that follow training (subclasses; see views.py)."""

    def keep_due(self) -> bool:
        """True if the work should be saved now (subclasses keep it; see keep.py)."""
        return False

    def keep_work(self):
        """Save the work (subclasses keep it; see keep.py)."""

    def _stop_loop(self):
        self.running = False
        if self._callback is not None and sys.platform != "emscripten":
            # Stopping cancels the callback's asyncio task, which Pyodide 0.27's event loop reports as a
            # CancelledError traceback in the console; in the browser the callback stays and idles (a tick does
            # nothing unless training runs), elsewhere it stops.
            try:
                self._callback.stop()
            except Exception:  # noqa: BLE001 - a stopped/cleaned-up callback must not break Pause
                pass
            self._callback = None

    # --- the training loop -------------------------------------------------------------------------------------------

    async def _periodic(self):
        self.tick()
        # Hand control back to the browser's event loop (a real timer, not a microtask) so that clicks such as Pause
        # are processed between ticks even if a tick took longer than the callback's period.
        await asyncio.sleep(0.005)

    def tick(self, budget: float = TICK_SECONDS) -> int:
        """Run training steps for about ``budget`` seconds (at least one). Readouts and charts are refreshed at
        most every ``ui_interval`` seconds (and on pause/stop), which keeps the page's update traffic small.
        Returns the number of steps run. Does nothing unless training is running."""
        if not self.running or self.trainer is None:
            return 0
        n_steps, failure = self.gatherer.run(self.trainer, budget, on_validation=self.model.note_validation)
        with pn.io.hold():  # also required under `panel serve` for the ColumnDataSource updates
            if failure is not None:
                self._stop_loop()
                self.flush()
                self.show_error(failure)
                self.status = f"Stopped at step {self.trainer.step_count} (see the message above)."
                return n_steps
            if self.gatherer.due("flush", self.ui_interval):
                self.flush()
            # at most one of the two extras per tick, so that a tick ends soon after its steps (Pause)
            if self.gatherer.due("flow", FLOW_EVERY):
                self._refresh_flow()
            elif self.gatherer.due("sample", LIVE_SAMPLE_EVERY):
                self._live_sample()
            elif self.view_due():
                self.refresh_views()
            elif self.keep_due():
                self.keep_work()
        return n_steps

    def flush(self):
        """Show the steps run since the last flush: readouts, one point per flush on the loss chart (the mean
        training loss of those steps) and every validation point."""
        summary = self.gatherer.take()
        if summary is None or self.trainer is None:
            return
        self.chart_data.add_train_point(summary.step, summary.train_loss)
        self.chart_data.add_val_points(summary.val_points)
        updates = dict(train_loss=summary.train_loss, step=summary.step, chars_seen=summary.chars_seen,
                       elapsed=summary.elapsed)
        if summary.val_points:
            updates["val_loss"] = summary.val_points[-1][1]
        if summary.chars_per_sec is not None:
            updates["chars_per_sec"] = summary.chars_per_sec
        updates["notice"] = (diverging_notice(summary.train_loss, self.trainer.vocab.size, self.trainer.config)
                             or overfitting_notice(self.trainer.history) or "")
        updates["best_step"] = self.model.best_step
        self.param.update(**updates)  # one batch: the readout pane re-renders once, not once per number

    def _refresh_flow(self, reference: bool = False):
        try:
            self.chart_data.set_flow(self.trainer.gradient_flow(), reference=reference)
        except tinyrnn.TinyRNNError:
            return

    def _live_sample(self):
        try:
            out = self.trainer.sample(LIVE_SAMPLE_LENGTH, prime="", temperature=self.temperature)
        except (tinyrnn.TinyRNNError, ValueError):
            return
        self.sample_output = out
        self.sample_info = f"Live sample at step {self.trainer.step_count} (temperature {self.temperature:g})"
