"""The model's life cycle: ready, build, train, pause, resume, reset, and whether the model still matches the text
and the settings. No Bokeh here.

Training runs in ticks (``TrainingLoop.run_loop`` in the browser: steps until the readouts are due, at most
``TICK_SECONDS``, then control goes back to the event loop), so Pause takes effect within a second and the page stays
responsive.
``tests/test_webapp.py`` drives the session directly, the way the buttons do.
"""

from __future__ import annotations

import param

import tinyrnn

from . import settings
from .state import batched
from .storage import page_query
from .text import text_problem
from .training import TrainingLoop

LOADING_STATUS = "Loading Python and the app in the page ... (the buttons work once it has loaded)"


def requested_workers() -> int | None:
    """N from ``?workers=N`` in the page's address (1 to ``tinyrnn.MAX_WORKERS``), else None: one per core."""
    try:
        return min(max(int(page_query()["workers"]), 1), tinyrnn.MAX_WORKERS)
    except (KeyError, ValueError):
        return None



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

class ModelLifeCycle(TrainingLoop):
    """When the session may train, and what Train, Resume, Pause and Reset do to the current model."""

    ready = param.Boolean(default=False, doc="Python runs where the page is shown (not a pre-render at build time).")
    backend = param.String(default="", doc="What computes the matrix products and on how many workers, once known.")
    has_model = param.Boolean(default=False)
    trainable = param.Boolean(default=False, doc="The model has training text attached (not sampling-only).")
    gradcheck_output = param.String(default="")

    def __init__(self, loading: bool = False, **params):
        """``loading``: the session waits for ``mark_ready()`` (the page's document is ready) before it trains."""
        super().__init__(**params)
        self.status = LOADING_STATUS
        self.backend = "Matrix products: known once Python has loaded in the page"
        if not loading:
            self.mark_ready()

    def mark_ready(self):
        """Python runs in the page now (the layout calls this when the page's document is ready)."""
        if self.ready:
            return
        self.show_backend()
        self.status = "Ready. Press Train to start learning the text."
        self.ready = True

    def show_backend(self):
        """The readout of what computes: the products, and how many workers train (it changes if a helper fails)."""
        line = f"Matrix products: {tinyrnn.BACKEND}\nTraining: {training_readout(self.trainer)}"
        if line != self.backend:
            self.backend = line

    async def start_workers(self):
        """Start a helper Web Worker per core (``?workers=N`` in the page's address asks for N in all), before the
        first model is built; the backend readout says what was started, or why training stays on one worker."""
        await tinyrnn.start_workers(requested_workers())  # never raises: tinyrnn.workers() says why
        self.show_backend()

    def flush(self):
        super().flush()
        self.show_backend()

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
        too_big = settings.model_problems(self.model.config)
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
