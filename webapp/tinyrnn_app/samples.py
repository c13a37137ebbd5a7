"""Samples: the one the user asks for (it stays until the user asks for another), the live sample while training
(its own line, every few seconds), and the samples kept at milestone steps (100, 300, 1,000, 3,000, ...) with their
step and loss, so the user sees the model learn. No UI here."""

from __future__ import annotations

import param

import tinyrnn

from . import settings
from .loop import LIVE_SAMPLE_LENGTH, milestone_after
from .state import SettingsForm, batched
from .training import Run

MAX_MILESTONES = 12  # samples kept at milestones (the latest ones)


def is_milestone(step: int) -> bool:
    return step > 0 and milestone_after(step - 1) == step


class Samples(param.Parameterized):
    """The asked-for sample, the live sample and the milestone samples of the ``run``'s model."""

    form = param.ClassSelector(class_=SettingsForm, doc="temperature, sample_length")
    run = param.ClassSelector(class_=Run)
    prime = param.String(default="", label="Priming text")
    sample_output = param.String(default="", doc="The sample the user asked for: prime + continuation.")
    sample_info = param.String(default="")
    live_sample = param.String(default="", doc="The latest live sample while training.")
    live_info = param.String(default="")
    milestones = param.List(default=[], doc="[{step, train_loss, val_loss, text}] at milestone steps, oldest first.")
    latest = param.Selector(default="asked", objects=["asked", "live"], doc="Which of the two samples came last.")

    @property
    def page(self):
        return self.run.page

    def latest_sample(self) -> str:
        """The sample shown last (the asked-for one or the live one), '' if there is none."""
        first, second = ((self.live_sample, self.sample_output) if self.latest == "live"
                         else (self.sample_output, self.live_sample))
        return first or second

    @batched
    def sample(self) -> bool:
        """Sample ``sample_length`` characters after ``prime``; shows prime + continuation."""
        self.page.clear_error()
        model = self.run.model
        if not model.has_model:
            self.page.show_error("There is no model yet: press Train (or load a model file) first")
            return False
        problems = settings.problems(self.form.form_values(settings.SAMPLING_NAMES), settings.SAMPLING)
        if problems:
            self.page.show_error("Cannot sample: " + " ".join(problems), about_form=True)
            return False
        try:
            out = model.sample(int(self.form.sample_length), self.prime, float(self.form.temperature))
        except (tinyrnn.TinyRNNError, ValueError) as e:
            self.page.show_error(f"Cannot sample: {e}")
            return False
        self.param.update(sample_output=self.prime + out, latest="asked", sample_info=(
            f"Sample at step {self.run.step}: {len(out)} characters after a {len(self.prime)}-character prime "
            f"(temperature {self.form.temperature:g})"))
        return True

    def _generate(self) -> str | None:
        """A live sample from the trainer at the form's temperature (None if it cannot be made)."""
        try:
            return self.run.trainer.sample(LIVE_SAMPLE_LENGTH, prime="", temperature=self.form.temperature)
        except (tinyrnn.TinyRNNError, ValueError, TypeError, AttributeError):
            return None

    def take_live_sample(self):
        """The live sample (a scheduler job while training)."""
        out = self._generate()
        if out is not None:
            self.param.update(live_sample=out, latest="live", live_info=(
                f"Live sample at step {self.run.trainer.step_count} (temperature {self.form.temperature:g})"))

    def next_milestone(self) -> int | None:
        """The next step at which a sample is kept (the run's ticks stop there), None without a trainer."""
        return None if self.run.trainer is None else milestone_after(self.run.trainer.step_count)

    @param.depends("run.step", watch=True)
    def _on_step(self):
        step = self.run.step
        if not (self.run.running and is_milestone(step) and self.run.trainer is not None
                and self.run.trainer.step_count == step) or any(m["step"] == step for m in self.milestones):
            return
        out = self._generate()
        if out is None:
            return
        history = self.run.trainer.history
        val_loss = history[-1].val_loss if history and history[-1].step == step else None  # at this step only
        record = dict(step=step, train_loss=self.run.train_loss,
                      val_loss=None if val_loss is None else float(val_loss), text=out)
        self.milestones = (self.milestones + [record])[-MAX_MILESTONES:]

    @param.depends("run.model_id", watch=True)
    def _on_model(self):
        """Another model: its live and milestone samples start again; without a model the asked one goes too."""
        self.param.update(live_sample="", live_info="", milestones=[])
        if not self.run.has_model:
            self.param.update(sample_output="", sample_info="")

    def restore(self, prime: str, milestones: list):
        """Put kept values back (``milestones`` as saved: a list of records)."""
        kept = [dict(step=int(m["step"]), train_loss=m.get("train_loss"), val_loss=m.get("val_loss"),
                     text=str(m["text"])) for m in milestones]
        self.param.update(prime=prime, milestones=kept[-MAX_MILESTONES:])


def milestones_text(milestones: list) -> str:
    """The milestone samples as plain text: a heading line per sample (step, losses), then the sample."""
    if not milestones:
        return ("Samples are kept here at steps 100, 300, 1,000, 3,000, 10,000, ... while the model trains: the "
                "model learns letters, then words, then lines.")
    blocks = []
    for m in milestones:
        losses = [f"train {m['train_loss']:.2f}" if m.get("train_loss") is not None else None,
                  f"validation {m['val_loss']:.2f}" if m.get("val_loss") is not None else None]
        heading = f"Step {m['step']:,} ({', '.join(x for x in losses if x) or 'no loss yet'} nats/char):"
        blocks.append(heading + "\n" + m["text"])
    return "\n\n".join(blocks)
