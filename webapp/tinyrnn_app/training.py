"""Training in ticks: in the browser an asyncio task (:meth:`TrainingLoop.run_loop`; Panel's periodic callback under
``panel serve``) runs :meth:`TrainingLoop.tick` (steps until the readouts are due, at most ``TICK_SECONDS``), then
control goes back to the event loop, so Pause takes effect within a second and the page stays responsive;
the readouts, the charts' data, live samples and notices follow the steps. No Bokeh here."""

from __future__ import annotations

import asyncio
import sys
import time

import panel as pn
import param

import tinyrnn

from .chartdata import ChartData
from .loop import FLOW_EVERY, LIVE_SAMPLE_EVERY, LIVE_SAMPLE_LENGTH, TICK_PERIOD_MS, TICK_SECONDS, UI_INTERVAL, StepGatherer
from .model import ModelSlot
from .notices import diverging_notice, overfitting_notice
from .text import TextPart

IN_BROWSER = sys.platform == "emscripten"  # the page (Pyodide): the loop is an asyncio task, not a periodic callback
YIELD_SECONDS = 0.004  # the yield between two ticks (a setTimeout in Pyodide: see run_loop)


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
        self._callback = None  # the periodic callback (under `panel serve`)
        self._task = None  # the training loop's asyncio task (in the browser)

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
        if not self.use_periodic_callback:
            return
        if IN_BROWSER:
            # A loop that was paused between two ticks is still waiting for its next tick: it goes on by itself.
            if self._task is None or self._task.done():
                self._task = asyncio.ensure_future(self.run_loop())
        elif self._callback is None:
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
        self.gatherer.clock.tick_end = None  # paused time is no gap between ticks
        if self._callback is not None:  # (the browser's loop ends by itself: never cancelled, see run_loop)
            try:
                self._callback.stop()
            except Exception:  # noqa: BLE001 - a stopped/cleaned-up callback must not break Pause
                pass
            self._callback = None

    # --- the training loop -------------------------------------------------------------------------------------------

    async def run_loop(self):
        """The page's training loop in the browser: a tick (steps until the readouts are due, then the extras), then a
        yield to the browser's event loop, until training stops. The yield is a real timer (``YIELD_SECONDS``: Pyodide
        schedules a delay of 2 ms or less as a posted task, behind which the worker's incoming messages -- a click
        on Pause -- waited for seconds in Chromium; a timer lets them in). The loop is never cancelled (Pyodide
        0.27's event loop would report a CancelledError traceback in the console)."""
        while self.running and self.trainer is not None:
            try:
                self.tick(self.tick_budget())
            except Exception as e:  # noqa: BLE001 - a failure must reach the page, not end the loop silently
                self._stop_loop()
                self.show_error(f"Training stopped by an unexpected error: {type(e).__name__}: {e}")
                self.status = f"Stopped at step {self.step} (see the message above)."
                return
            await asyncio.sleep(YIELD_SECONDS)

    async def _periodic(self):
        """One tick of the periodic callback (under `panel serve`)."""
        self.tick(self.tick_budget())
        await asyncio.sleep(YIELD_SECONDS)  # hand control back to the event loop even if a tick outlasts the period

    def tick_budget(self) -> float:
        """Seconds of steps for the next tick: until the readouts are due (every tick then ends with a refresh, and
        the readouts refresh every ``ui_interval`` seconds), at most ``TICK_SECONDS``."""
        due_in = self.gatherer.last_flush + self.ui_interval - time.perf_counter()
        return min(TICK_SECONDS, max(0.0, due_in))

    def tick(self, budget: float = TICK_SECONDS) -> int:
        """Run training steps for about ``budget`` seconds (at least one). Readouts and charts are refreshed at
        most every ``ui_interval`` seconds (and on pause/stop), which keeps the page's update traffic small.
        Returns the number of steps run. Does nothing unless training is running."""
        if not self.running or self.trainer is None:
            return 0
        clock = self.gatherer.clock
        start = time.perf_counter()
        if clock.tick_end is not None:
            clock.add("gap", start - clock.tick_end)
        inner = sum(clock.seconds.values())
        n_steps, failure = self.gatherer.run(self.trainer, budget, on_validation=self.model.note_validation)
        with pn.io.hold():  # also required under `panel serve` for the ColumnDataSource updates
            if failure is not None:
                self._stop_loop()
                self.flush()
                self.show_error(failure)
                self.status = f"Stopped at step {self.trainer.step_count} (see the message above)."
                return n_steps
            if self.gatherer.due("flush", self.ui_interval):
                with clock.phase("flush"):
                    self.flush()
            # at most one of the two extras per tick, so that a tick ends soon after its steps (Pause)
            if self.gatherer.due("flow", FLOW_EVERY):
                with clock.phase("flow"):
                    self._refresh_flow()
            elif self.gatherer.due("sample", LIVE_SAMPLE_EVERY):
                with clock.phase("sample"):
                    self._live_sample()
            elif self.view_due():
                with clock.phase("views"):
                    self.refresh_views()
            elif self.keep_due():
                with clock.phase("keep"):
                    self.keep_work()
        end = time.perf_counter()
        clock.add("tick_other", (end - start) - (sum(clock.seconds.values()) - inner))
        clock.tick_end = end if self.running else None
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
