"""What the buttons do to the model: Train, Resume, Pause, Reset, the gradient check, and the model file (download,
upload); whether the model still matches the text and the settings. No Bokeh here.

``tests/test_webapp.py`` drives these actions directly, the way the buttons do.
"""

from __future__ import annotations

import io

import param

import tinyrnn

from . import settings
from .state import SettingsForm, batched
from .render import gradcheck_text
from .storage import page_query
from .text import TextPart, text_problem
from .training import Run

LOADING_STATUS = "Loading Python and the app in the page ... (the buttons work once it has loaded)"
READY_STATUS = "Ready. Press Train to start learning the text."


def requested_workers() -> int | None:
    """N from ``?workers=N`` in the page's address (1 to ``tinyrnn.MAX_WORKERS``), else None: one per core."""
    try:
        return min(max(int(page_query()["workers"]), 1), tinyrnn.MAX_WORKERS)
    except (KeyError, ValueError):
        return None


class LifeCycle(param.Parameterized):
    """Train, Resume, Pause, Reset, the gradient check and the model files, over the ``form``, the ``text`` and the
    ``run``."""

    form = param.ClassSelector(class_=SettingsForm)
    text = param.ClassSelector(class_=TextPart)
    run = param.ClassSelector(class_=Run)
    gradcheck_output = param.String(default="")

    @property
    def page(self):
        return self.run.page

    # --- does the model match the text and the settings --------------------------------------------------------------

    def model_is_stale(self) -> bool:
        """True if there is no model or the text or settings differ from the current model's; Train then starts a
        new model. (A model uploaded without matching text is not stale: Train attaches the current text to it.)"""
        config = self.run.model.config
        if config is None or not settings.matches(config, self.form.form_values()):
            return True
        return self.run.model.trainer is not None and self.run.model.text != self.text.text

    @param.depends(*(f"form.{name}" for name in settings.FORM_NAMES), "text.text", watch=True)
    def _on_change(self):
        if self.run.has_model and not self.run.running and self.model_is_stale():
            self.page.status = (
                f"Paused at step {self.run.step}. The text or settings changed: Train starts a new model with them, "
                "Resume continues the current model unchanged."
            )

    @param.depends("run.model_id", watch=True)
    def _on_model(self):
        self.gradcheck_output = ""  # it was about the previous model

    # --- life cycle ------------------------------------------------------------------------------------------------

    def build_model(self) -> bool:
        """A fresh model from the current text and settings. Returns False (and shows why) if that is impossible."""
        text = self.text.text
        problem = text_problem(text)
        if problem is not None:
            self.page.show_error(problem)
            return False
        problems = settings.problems(self.form.form_values())
        if problems:
            self.page.show_error("Cannot start training: " + " ".join(problems), about_form=True)
            return False
        try:
            trainer = tinyrnn.Trainer(text, self.form.config().validate())
        except tinyrnn.TinyRNNError as e:
            self.page.show_error(f"Cannot start training: {e}")
            return False
        self.run.install(trainer, text)
        return True

    def ensure_trainable(self) -> bool:
        """True if the current model can train here. A sampling-only model (uploaded without matching text) gets the
        current text attached if it fits; a model larger than the page can train is refused, with the reason."""
        model = self.run.model
        if not model.has_model:
            return False
        too_big = settings.model_problems(model.config)
        if too_big:
            self.page.show_error("This model cannot train in the page: " + " ".join(too_big)
                                 + " It can still sample, and Download keeps it")
            return False
        if model.trainer is not None:
            return True
        text = self.text.text
        problem = text_problem(text)
        if problem is not None:
            self.page.show_error(problem)
            return False
        try:
            trainer = model.trainer_for(text)
        except tinyrnn.TinyRNNError as e:
            self.page.show_error(
                f"The loaded model cannot train on the current text: {e}. Paste text that fits it, "
                "or press Reset and then Train to start a new model on this text"
            )
            return False
        self.run.install(trainer, text)
        return True

    @batched
    def train(self) -> bool:
        """Start training: continue the current model if the text and settings still match it, else a new model."""
        if self.run.running:
            return True
        if not self.page.ready:
            return False  # the page is still loading (Train is disabled until then)
        self.page.clear_error()
        new_model = self.model_is_stale()
        if not (self.build_model() if new_model else self.ensure_trainable()):
            return False
        self.run.start(new_model)
        return True

    @batched
    def resume(self) -> bool:
        """Continue training the current model unchanged (its own text and settings)."""
        if self.run.running:
            return True
        if not self.page.ready:
            return False
        self.page.clear_error()
        if not self.run.has_model:
            return self.train()
        if not self.ensure_trainable():
            return False
        self.run.start(new_model=False)
        return True

    @batched
    def pause(self):
        if not self.run.running:
            return
        self.run.stop()
        self.run.flush()
        self.page.status = f"Paused at step {self.run.step}. Resume continues; Reset discards the model."

    @batched
    def reset(self):
        """Discard the model and the charts; the text and settings stay."""
        self.run.clear()
        self.page.clear_error()
        self.page.status = "Reset. Press Train to start a new model."

    # --- gradient check ----------------------------------------------------------------------------------------------

    @batched
    def gradient_check(self) -> bool:
        """Compare autograd, the fused engine, manual BPTT and finite differences on the current batch."""
        self.page.clear_error()
        if not self.run.has_model and not self.build_model():
            return False
        if not self.ensure_trainable():
            return False
        trainer = self.run.trainer
        try:
            report = trainer.gradient_check()
        except (tinyrnn.TinyRNNError, ValueError) as e:
            self.page.show_error(f"Gradient check failed to run: {e}")
            return False
        self.gradcheck_output = gradcheck_text(report, trainer.step_count)
        self.page.status = f"Gradient check at step {trainer.step_count}: {'passed' if report.passed else 'FAILED'}."
        return True

    # --- the model file ----------------------------------------------------------------------------------------------

    def checkpoint_file(self) -> io.BytesIO | None:
        """The current model as a checkpoint file (FileDownload's callback)."""
        return self._download(self.run.model.checkpoint_bytes(), "There is no model to download yet: press Train first")

    def best_checkpoint_file(self) -> io.BytesIO | None:
        """The best-validation model as a checkpoint file (the second download button's callback)."""
        return self._download(self.run.model.best_checkpoint_bytes(),
                              "There is no best-validation model yet: it is kept from the first validation on")

    def _download(self, data: bytes | None, missing: str) -> io.BytesIO | None:
        if data is None:
            self.page.show_error(missing)
            return None
        return io.BytesIO(data)

    @batched
    def load_model(self, data: bytes | None, filename: str | None = None) -> bool:
        """Load an uploaded checkpoint. On any problem the message is shown and the current model is kept."""
        if data is None:
            return False
        self.page.clear_error()
        name = filename or "the file"
        try:
            ckpt = tinyrnn.load_checkpoint(bytes(data))
        except tinyrnn.TinyRNNError as e:
            self.page.show_error(f"Could not load {name} as a model: {e}. The current model is kept")
            return False
        except Exception as e:  # noqa: BLE001 - a hostile file must never crash the app
            self.page.show_error(f"Could not load {name} as a model ({type(e).__name__}: {e}). The current model is "
                                 "kept")
            return False
        self.run.stop()
        text = self.text.text
        trainer, why_not = None, text_problem(text)
        if why_not is None:
            try:
                trainer = tinyrnn.Trainer.from_checkpoint(ckpt, text)
            except tinyrnn.TinyRNNError as e:
                why_not = str(e)
        if trainer is not None:
            self.run.install(trainer, text)
            note = " Resume continues training it on the current text; Sample generates from it."
        else:
            self.run.hold_sampling_only(ckpt, data)
            note = (
                f" It can sample but cannot train on the current text ({why_not.rstrip('.')}). "
                "Paste text that fits it and press Resume to train it."
            )
        self.form.show(ckpt.config)
        self.page.status = (
            f"Loaded {name}: H={ckpt.config.hidden_size}, vocabulary of {ckpt.vocab.size}, step {self.run.step}."
            + note
        )
        return True
