"""The run: the current model (a ``ModelSlot``), the training loop that trains it in ticks, and the readouts and chart
data it feeds. In the browser an asyncio task (:meth:`Run.run_loop`; Panel's periodic callback under ``panel
serve``) runs :meth:`Run.tick` (steps until the readouts are due, at most ``TICK_SECONDS``), then control goes back
to the event loop, so Pause takes effect within a second and the page stays responsive. The periodic extras (gradient
flow, live sample, memory readout, saving) are the ``scheduler``'s jobs, registered by the session. No Bokeh here."""

from __future__ import annotations

import asyncio
import sys
import time

import panel as pn
import param

import tinyrnn

from .chartdata import ChartData
from .loop import TICK_PERIOD_MS, TICK_SECONDS, UI_INTERVAL, Scheduler, StepGatherer
from .model import ModelSlot
from .notices import diverging_notice, overfitting_notice
from .state import PageStatus

IN_BROWSER = sys.platform == "emscripten"  # the page (Pyodide): the loop is an asyncio task, not a periodic callback
YIELD_SECONDS = 0.004  # the yield between two ticks (a setTimeout in Pyodide: see run_loop)
EXTRAS = ("flow", "sample", "views", "keep")  # the scheduler's jobs a tick may run after its steps (one per tick)


def training_readout(trainer) -> str:
    """How many workers train, in words: "k workers (shared memory)", or "one worker" and why (from
    ``tinyrnn.workers()`` and the trainer's ``engine_choice``)."""
    pool = tinyrnn.workers()
    if pool.count < 2:
        if pool.reason == tinyrnn.Workers.NOT_ISOLATED:
            return ("one worker: this page is not cross-origin isolated yet (it is from the first load after this "
                    "browser has saved the site for offline use, usually within a minute: reload then)")
        if pool.reason == tinyrnn.Workers.NO_SHARED_MEMORY:
            return "one worker: this browser offers no SharedArrayBuffer to Web Workers"
        if pool.reason == tinyrnn.Workers.ONE_WANTED:
            return f"one worker ({pool.cores} core{'s' if pool.cores != 1 else ''} here)"
        return f"one worker: {pool.reason}" if pool.reason else "one worker"
    shared = f"{pool.count} workers (shared memory)"
    if trainer is None or trainer.engine_choice.engine == "sharded":
        return shared
    why = trainer.engine_choice.not_faster
    return f"one worker: {why[0] if why else 'this model was made before the helpers started'}; {shared} for other models"


class Run(param.Parameterized):
    """The current model (``model``, a ``ModelSlot``), the loop that trains it and the readouts it feeds."""

    page = param.ClassSelector(class_=PageStatus)
    running = param.Boolean(default=False, doc="True while the training loop runs.")
    model_id = param.Integer(default=0, doc="Goes up by one whenever another model (or none) takes the slot.")
    has_model = param.Boolean(default=False)
    trainable = param.Boolean(default=False, doc="The model has training text attached (not sampling-only).")
    backend = param.String(default="Matrix products: known once Python has loaded in the page",
                           doc="What computes the matrix products and on how many workers, once known.")
    step = param.Integer(default=0)
    chars_seen = param.Integer(default=0)
    chars_per_sec = param.Number(default=0.0)
    elapsed = param.Number(default=0.0)
    train_loss = param.Number(default=None, allow_None=True)
    val_loss = param.Number(default=None, allow_None=True)
    notice = param.String(default="", doc="A warning about the run in words (diverging, overfitting), or ''.")
    best_step = param.Integer(default=None, allow_None=True, doc="Step of the best-validation model kept, if any.")

    def __init__(self, scheduler: Scheduler | None = None, use_periodic_callback: bool = False, **params):
        """``scheduler``: the page's periodic jobs ("flush" is added here; the others by the session).
        ``use_periodic_callback``: train from an asyncio task or Panel's periodic callback (tests call ``tick``)."""
        params.setdefault("page", PageStatus())
        super().__init__(**params)
        self.scheduler = scheduler or Scheduler()
        self.scheduler.add("flush", lambda: self.ui_interval, lambda: self.flush())
        self.use_periodic_callback = use_periodic_callback
        self.model = ModelSlot()
        self.chart_data = ChartData()
        self.gatherer = StepGatherer()
        self.ui_interval = UI_INTERVAL
        self.stop_at = lambda: None  # the next step at which a tick stops early (the session: the next milestone)
        self._callback = None  # the periodic callback (under `panel serve`)
        self._task = None  # the training loop's asyncio task (in the browser)

    @property
    def loop_task(self):
        """The training loop's asyncio task in the browser (None before the first Train there)."""
        return self._task

    @property
    def trainer(self):
        """The current model's ``tinyrnn.Trainer`` (None without a model or for a sampling-only one)."""
        return self.model.trainer

    # --- the model in the slot ---------------------------------------------------------------------------------------

    def show_model(self):
        """Readouts and charts from the model in the slot (its saved history, if any); the views of the previous one
        go (``model_id``)."""
        self.gatherer.clear()
        self.chart_data.clear()
        train_loss, val_loss = self.chart_data.replay(self.model.history)
        step, chars_seen, elapsed = self.model.progress()
        self.param.update(has_model=self.model.has_model, trainable=self.model.trainable, step=step,
                          chars_seen=chars_seen, chars_per_sec=0.0, elapsed=elapsed, train_loss=train_loss,
                          val_loss=val_loss, notice="", best_step=self.model.best_step, model_id=self.model_id + 1)

    def install(self, trainer, text: str):
        """Make ``trainer`` (training on ``text``) the current model; the charts restart from its history."""
        self.model.hold_trainer(trainer, text)
        self.show_model()
        self.refresh_flow(reference=True)

    def hold_sampling_only(self, checkpoint, data: bytes):
        """Make an uploaded checkpoint (``data``, its file) the current model; it can sample, not train."""
        self.model.hold_sampling_only(checkpoint, data)
        self.show_model()

    def clear(self):
        self.stop()
        self.model.clear()
        self.show_model()

    def show_backend(self):
        """The readout of what computes: the products, and how many workers train (it changes if a helper fails)."""
        line = f"Matrix products: {tinyrnn.BACKEND}\nTraining: {training_readout(self.trainer)}"
        if line != self.backend:
            self.backend = line

    # --- starting and stopping the loop ------------------------------------------------------------------------------

    def start(self, new_model: bool):
        what = "a new model" if new_model else f"from step {self.step}"
        config = self.trainer.config
        self.page.status = f"Training {what} ({config.cell}, H={config.hidden_size}) ..."
        self.scheduler.restart({"flush": 0.0, "sample": 1.0})  # numbers at once, a first live sample after 1 s
        self.gatherer.clock.tick_end = None
        self.running = True
        if not self.use_periodic_callback:
            return
        if IN_BROWSER:
            # A loop that was paused between two ticks is still waiting for its next tick: it goes on by itself.
            if self._task is None or self._task.done():
                self._task = asyncio.ensure_future(self.run_loop())
        elif self._callback is None:
            # background=True: the ticks do not toggle the page's busy indicator (two page updates per tick)
            self._callback = pn.io.PeriodicCallback(callback=self.periodic_tick, period=TICK_PERIOD_MS, background=True)
            self._callback.start()

    def stop(self):
        self.running = False
        self.gatherer.clock.tick_end = None  # paused time is no gap between ticks
        if self._callback is not None:  # (the browser's loop ends by itself: never cancelled, see run_loop)
            try:
                self._callback.stop()
            except Exception:  # noqa: BLE001 - a stopped/cleaned-up callback must not break Pause
                pass
            self._callback = None

    def fail(self, message: str, show_steps: bool = True):
        """Stop training with ``message`` on the page (the model is kept); ``show_steps``: flush the readouts."""
        self.stop()
        if show_steps:
            self.flush()
        self.page.show_error(message)
        self.page.status = f"Stopped at step {self.step} (see the message above)."

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
                self.fail(f"Training stopped by an unexpected error: {type(e).__name__}: {e}", show_steps=False)
                return
            await asyncio.sleep(YIELD_SECONDS)

    async def periodic_tick(self):
        """One tick of the periodic callback (under `panel serve`)."""
        self.tick(self.tick_budget())
        await asyncio.sleep(YIELD_SECONDS)  # hand control back to the event loop even if a tick outlasts the period

    def tick_budget(self) -> float:
        """Seconds of steps for the next tick: until the readouts are due (every tick then ends with a refresh, and
        the readouts refresh every ``ui_interval`` seconds), at most ``TICK_SECONDS``."""
        return min(TICK_SECONDS, self.scheduler.seconds_until("flush"))

    def tick(self, budget: float = TICK_SECONDS) -> int:
        """Run training steps for about ``budget`` seconds (at least one; fewer if the next milestone step comes
        first, whose readouts are then shown at once). Readouts and charts are refreshed at most every
        ``ui_interval`` seconds (and on pause/stop); then at most one of the scheduler's extras runs. Returns the
        number of steps run. Does nothing unless training is running."""
        if not self.running or self.trainer is None:
            return 0
        clock = self.gatherer.clock
        start = time.perf_counter()
        if clock.tick_end is not None:
            clock.add("gap", start - clock.tick_end)
        inner = sum(clock.seconds.values())
        stop_at = self.stop_at()
        n_steps, failure = self.gatherer.run(self.trainer, budget, on_validation=self.model.note_validation,
                                             stop_at=stop_at)
        with pn.io.hold():  # also required under `panel serve` for the ColumnDataSource updates
            if failure is not None:
                self.fail(failure)
                return n_steps
            if self.trainer.step_count == stop_at:  # a milestone step: its readouts (and sample) at once
                with clock.phase("milestone"):
                    self.scheduler.run("flush", now=True)
            elif self.scheduler.due("flush"):
                with clock.phase("flush"):
                    self.scheduler.run("flush")
            for name in EXTRAS:  # at most one extra per tick, so that a tick ends soon after its steps (Pause)
                if self.scheduler.due(name):
                    with clock.phase(name):
                        self.scheduler.run(name)
                    break
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
        self.show_backend()

    def refresh_flow(self, reference: bool = False):
        """The gradient-flow chart from the current batch (``reference``: also the dashed "at the start" curve)."""
        if self.trainer is None:
            return
        try:
            self.chart_data.set_flow(self.trainer.gradient_flow(), reference=reference)
        except tinyrnn.TinyRNNError:
            return

