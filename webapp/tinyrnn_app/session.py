"""The app's state and actions as one ``param.Parameterized``: :class:`TrainingSession`. No Bokeh here.

The parts, each in its own module: ``state`` (the settings form's values, status and error), ``text`` (the
training text), ``lifecycle`` (the model, the training loop, the readouts), ``keep`` (the work kept across visits),
``views`` (the cells' gradient comparison, the hidden-state view, the memory readout); here: sampling, the gradient check and the model file. ``tests/test_webapp.py`` drives the session directly, the way the buttons do.
"""

from __future__ import annotations

import io

import param

import tinyrnn

from . import settings
from .views import ModelViews
from .render import gradcheck_text
from .state import batched
from .text import text_problem


class TrainingSession(ModelViews):
    """Everything the app knows and does; the layout only displays it."""

    prime = param.String(default="", label="Priming text")

    # --- sampling, gradient check ------------------------------------------------------------------------------------

    @batched
    def sample(self) -> bool:
        """Sample ``sample_length`` characters after ``prime``; shows prime + continuation."""
        self.clear_error()
        if not self.has_model:
            self.show_error("There is no model yet: press Train (or load a model file) first")
            return False
        problems = settings.problems(self.form_values(settings.SAMPLING_NAMES), settings.SAMPLING)
        if problems:
            self.show_error("Cannot sample: " + " ".join(problems), about_form=True)
            return False
        try:
            out = self.model.sample(int(self.sample_length), self.prime, float(self.temperature))
        except (tinyrnn.TinyRNNError, ValueError) as e:
            self.show_error(f"Cannot sample: {e}")
            return False
        self.sample_output = self.prime + out
        self.sample_info = (
            f"Sample at step {self.step}: {len(out)} characters after a {len(self.prime)}-character prime "
            f"(temperature {self.temperature:g})"
        )
        return True

    @batched
    def gradient_check(self) -> bool:
        """Compare autograd, the fused engine, manual BPTT and finite differences on the current batch."""
        self.clear_error()
        if not self.has_model and not self.build_model():
            return False
        if not self._ensure_trainable():
            return False
        try:
            report = self.trainer.gradient_check()
        except (tinyrnn.TinyRNNError, ValueError) as e:
            self.show_error(f"Gradient check failed to run: {e}")
            return False
        self.gradcheck_output = gradcheck_text(report, self.trainer.step_count)
        self.status = f"Gradient check at step {self.trainer.step_count}: {'passed' if report.passed else 'FAILED'}."
        return True

    # --- the model file ----------------------------------------------------------------------------------------------

    def checkpoint_file(self) -> io.BytesIO | None:
        """The current model as a checkpoint file (FileDownload's callback)."""
        return self._download(self.model.checkpoint_bytes(), "There is no model to download yet: press Train first")

    def best_checkpoint_file(self) -> io.BytesIO | None:
        """The best-validation model as a checkpoint file (the second download button's callback)."""
        return self._download(self.model.best_checkpoint_bytes(),
                              "There is no best-validation model yet: it is kept from the first validation on")

    def _download(self, data: bytes | None, missing: str) -> io.BytesIO | None:
        if data is None:
            self.show_error(missing)
            return None
        return io.BytesIO(data)

    @batched
    def load_model(self, data: bytes | None, filename: str | None = None) -> bool:
        """Load an uploaded checkpoint. On any problem the message is shown and the current model is kept."""
        if data is None:
            return False
        self.clear_error()
        name = filename or "the file"
        try:
            ckpt = tinyrnn.load_checkpoint(bytes(data))
        except tinyrnn.TinyRNNError as e:
            self.show_error(f"Could not load {name} as a model: {e}. The current model is kept")
            return False
        except Exception as e:  # noqa: BLE001 - a hostile file must never crash the app
            self.show_error(f"Could not load {name} as a model ({type(e).__name__}: {e}). The current model is kept")
            return False
        self._stop_loop()
        trainer, why_not = None, text_problem(self.text)
        if why_not is None:
            try:
                trainer = tinyrnn.Trainer.from_checkpoint(ckpt, self.text)
            except tinyrnn.TinyRNNError as e:
                why_not = str(e)
        if trainer is not None:
            self._install_trainer(trainer, self.text)
            note = " Resume continues training it on the current text; Sample generates from it."
        else:
            self.model.hold_sampling_only(ckpt, data)
            self._show_model()
            note = (
                f" It can sample but cannot train on the current text ({why_not.rstrip('.')}). "
                "Paste text that fits it and press Resume to train it."
            )
        self._apply_config_to_inputs(ckpt.config)
        self.sample_output = ""
        self.sample_info = ""
        self.status = (
            f"Loaded {name}: H={ckpt.config.hidden_size}, vocabulary of {ckpt.vocab.size}, step {self.step}." + note
        )
        return True

    def _apply_config_to_inputs(self, config):
        self.param.update(**settings.form_values(config))
