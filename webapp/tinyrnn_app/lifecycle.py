"""The model's life cycle: build, train in ticks, pause, resume, reset; the readouts that follow it. No Bokeh here.

Training runs in small increments from a periodic callback (about ``TICK_SECONDS`` of steps per tick, then control
goes back to the event loop), so Pause takes effect within a second and the page stays responsive.
``tests/test_webapp.py`` drives the session directly, the way the buttons do.
"""

from __future__ import annotations

import asyncio
import sys

import panel as pn
import param

import tinyrnn

from . import settings
from .chartdata import ChartData
from .loop import FLOW_EVERY, LIVE_SAMPLE_EVERY, LIVE_SAMPLE_LENGTH, TICK_PERIOD_MS, TICK_SECONDS, UI_INTERVAL, StepGatherer
from .model import ModelSlot
from .notices import diverging_notice, overfitting_notice

LOADING_STATUS = "Loading Python and the app in the page ... (the buttons work once it has loaded)"
from .state import batched
from .text import TextPart, text_problem


class ModelLifeCycle(TextPart):
    """The current model (``self.model``, a ``ModelSlot``), its training loop and its readouts."""

    ready = param.Boolean(default=False, doc="Python runs where the page is shown (not a pre-render at build time).")
    backend = param.String(default="", doc="What computes the matrix products, once known.")
    running = param.Boolean(default=False, doc="True while the training loop runs.")
    has_model = param.Boolean(default=False)
    trainable = param.Boolean(default=False, doc="The model has training text attached (not sampling-only).")
    step = param.Integer(default=0)
    chars_seen = param.Integer(default=0)
    chars_per_sec = param.Number(default=0.0)
    elapsed = param.Number(default=0.0)
    train_loss = param.Number(default=None, allow_None=True)
    val_loss = param.Number(default=None, allow_None=True)
    sample_output = param.String(default="")
    sample_info = param.String(default="")
    gradcheck_output = param.String(default="")
    notice = param.String(default="", doc="A warning about the run in words (diverging, overfitting), or ''.")
    best_step = param.Integer(default=None, allow_None=True, doc="Step of the best-validation model kept, if any.")

    def __init__(self, use_periodic_callback: bool = False, loading: bool = False, **params):
        """``use_periodic_callback``: train from Panel's periodic callback (in a page); ``loading``: the session
        waits for ``mark_ready()`` (the page's document is ready) before it trains."""
        super().__init__(**params)
        self.use_periodic_callback = use_periodic_callback
        self.model = ModelSlot()
        self.chart_data = ChartData()
        self.gatherer = StepGatherer()
        self.ui_interval = UI_INTERVAL
        self._callback = None
        self.status = LOADING_STATUS
        self.backend = "Matrix products: known once Python has loaded in the page"
        if not loading:
            self.mark_ready()

    def mark_ready(self):
        """Python runs in the page now (the layout calls this when the page's document is ready)."""
        if self.ready:
            return
        self.backend = f"Matrix products: {tinyrnn.BACKEND}"
        self.status = "Ready. Press Train to start learning the text."
        self.ready = True

    @property
    def trainer(self):
        """The current model's ``tinyrnn.Trainer`` (None without a model or for a sampling-only one)."""
        return self.model.trainer

    # --- does the model match the text and the settings --------------------------------------------------------------

    def current_config(self):
        """A TrainConfig from the settings form (not yet validated)."""
        return settings.config_from(self.form_values())

    def model_is_stale(self) -> bool:
        """True if there is no model or the text or settings differ from the current model's; Train then starts a
        new model. (A model uploaded without matching text is not stale: Train attaches the current text to it.)"""
        config = self.model.config
        if config is None or not settings.matches(config, self.form_values()):
            return True
        return self.model.trainer is not None and self.model.text != self.text

    @param.depends(*settings.FORM_NAMES, watch=True)
    def _on_settings(self):
        self._text_changed()

    def _text_changed(self):
        if self.has_model and not self.running and self.model_is_stale():
            self.status = (
                f"Paused at step {self.step}. The text or settings changed: Train starts a new model with them, "
                "Resume continues the current model unchanged."
            )

    # --- life cycle ------------------------------------------------------------------------------------------------

    def build_model(self) -> bool:
        """A fresh model from the current text and settings. Returns False (and shows why) if that is impossible."""
        problem = text_problem(self.text)
        if problem is not None:
            self.show_error(problem)
            return False
        problems = settings.problems(self.form_values())
        if problems:
            self.show_error("Cannot start training: " + " ".join(problems), about_form=True)
            return False
        try:
            trainer = tinyrnn.Trainer(self.text, self.current_config().validate())
        except tinyrnn.TinyRNNError as e:
            self.show_error(f"Cannot start training: {e}")
            return False
        self._install_trainer(trainer, self.text)
        return True

    def _show_model(self):
        """Readouts and charts from the model in the slot (its saved history, if any)."""
        self.gatherer.clear()
        self.chart_data.clear()
        train_loss, val_loss = self.chart_data.replay(self.model.history)
        step, chars_seen, elapsed = self.model.progress()
        self.param.update(has_model=self.model.has_model, trainable=self.model.trainable, step=step,
                          chars_seen=chars_seen, chars_per_sec=0.0, elapsed=elapsed, train_loss=train_loss,
                          val_loss=val_loss, gradcheck_output="", notice="", best_step=self.model.best_step)

    def _install_trainer(self, trainer, text):
        """Make ``trainer`` (training on ``text``) the current model; the charts restart from its history."""
        self.model.hold_trainer(trainer, text)
        self._show_model()
        self._refresh_flow(reference=True)

    def _ensure_trainable(self) -> bool:
        """True if the current model can train here. A sampling-only model (uploaded without matching text) gets the
        current text attached if it fits; a model larger than the page can train is refused, with the reason."""
        if not self.model.has_model:
            return False
        too_big = settings.problems(settings.form_values(self.model.config))
        if too_big:
            self.show_error("This model cannot train in the page: " + " ".join(too_big)
                            + " It can still sample, and Download keeps it")
            return False
        if self.model.trainer is not None:
            return True
        problem = text_problem(self.text)
        if problem is not None:
            self.show_error(problem)
            return False
        try:
            trainer = self.model.trainer_for(self.text)
        except tinyrnn.TinyRNNError as e:
            self.show_error(
                f"The loaded model cannot train on the current text: {e}. Paste text that fits it, "
                "or press Reset and then Train to start a new model on this text"
            )
            return False
        self._install_trainer(trainer, self.text)
        return True

    @batched
    def train(self) -> bool:
        """Start training: continue the current model if the text and settings still match it, else a new model."""
        if self.running:
            return True
        if not self.ready:
            return False  # the page is still loading (Train is disabled until then)
        self.clear_error()
        new_model = self.model_is_stale()
        if not (self.build_model() if new_model else self._ensure_trainable()):
            return False
        self._start(new_model)
        return True

    @batched
    def resume(self) -> bool:
        """Continue training the current model unchanged (its own text and settings)."""
        if self.running:
            return True
        if not self.ready:
            return False
        self.clear_error()
        if not self.has_model:
            return self.train()
        if not self._ensure_trainable():
            return False
        self._start(new_model=False)
        return True

    def _start(self, new_model: bool):
        self.running = True
        what = "a new model" if new_model else f"from step {self.step}"
        self.status = f"Training {what} (H={self.trainer.config.hidden_size}) ..."
        self.gatherer.restart_clocks()
        if self.use_periodic_callback and self._callback is None:
            # background=True: the ticks do not toggle the page's busy indicator (two page updates per tick)
            self._callback = pn.io.PeriodicCallback(callback=self._periodic, period=TICK_PERIOD_MS, background=True)
            self._callback.start()

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

    @batched
    def pause(self):
        if not self.running:
            return
        self._stop_loop()
        self.flush()
        self.status = f"Paused at step {self.step}. Resume continues; Reset discards the model."

    @batched
    def reset(self):
        """Discard the model and the charts; the text and settings stay."""
        self._stop_loop()
        self.model.clear()
        self._show_model()
        self.param.update(sample_output="", sample_info="")
        self.clear_error()
        self.status = "Reset. Press Train to start a new model."

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

