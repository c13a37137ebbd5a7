"""Looking inside the model: the cells' gradient comparison, the hidden-state view and the memory readout. No Bokeh
here.

- ``compare_cells``: ‖∂L/∂h_t‖ (or, with ``compare_last_step``, ‖∂L_T/∂h_t‖ of the last character's loss alone) of
  the current model beside freshly initialised models of the other cells on the same batch, over a window of
  ``compare_len`` steps; run only when asked (it costs several steps' time).
- ``show_passage``: a passage (the latest sample or a slice of the text) coloured by one unit's activation, and the
  units that best track inside quotes / inside brackets / position in line (``tinyrnn.unit_correlations``).
- the memory readout: on a ``recall`` text, the accuracy at exactly the recall positions of held-out lines (the
  validation part, each line read from a zero state), beside chance; refreshed every ``MEMORY_EVERY`` seconds while
  training.
"""

from __future__ import annotations

import numpy as np
import param

import tinyrnn

from . import settings
from .hidden import MAX_PASSAGE_CHARS, match_label, passage_html, recall_letters, recall_rows, recall_score
from .samples import Samples
from .state import SettingsForm, batched
from .text import TextPart
from .training import Run

MEMORY_EVERY = 3.0  # seconds between memory readouts while training
SOURCES = ("the training text", "the latest sample")
NO_CHOICE = "(pick a listed unit)"


class ModelViews(param.Parameterized):
    """The three views of the ``run``'s model (inputs from the ``form``, passages from the ``text`` and
    ``samples``)."""

    form = param.ClassSelector(class_=SettingsForm)
    text = param.ClassSelector(class_=TextPart)
    run = param.ClassSelector(class_=Run)
    samples = param.ClassSelector(class_=Samples)
    compare_last_step = param.Boolean(default=True, label="Last character's loss only (how far one prediction reaches)")
    compare_info = param.String(default="")
    passage_source = param.Selector(default=SOURCES[0], objects=list(SOURCES), label="Passage")
    unit_choice = param.Selector(default=NO_CHOICE, objects=[NO_CHOICE], label="Units that track something")
    passage_view = param.String(default="", doc="The coloured passage (HTML: every character escaped).")
    passage_text = param.String(default="", doc="The passage shown (plain text; '' before Show).")
    passage_info = param.String(default="")
    unit_list = param.String(default="")
    memory_info = param.String(default="", doc="The memory readout ('' unless the model learns a recall text).")

    def __init__(self, **params):
        super().__init__(**params)
        self._passage = None  # (text, states (N, H)) of the passage shown
        self._unit_of_choice = {}
        self._recall = None  # (trainer, rows, k, letters) of the memory readout, None if not a recall text

    # --- the cells' gradient comparison -------------------------------------------------------------------------------

    @property
    def page(self):
        return self.run.page

    @batched
    def compare_cells(self) -> bool:
        """Fill the comparison chart: one curve per cell (the current model's and fresh models of the others)."""
        self.page.clear_error()
        if self.run.trainer is None:
            self.page.show_error("There is no model to compare yet: press Train first (a model loaded without its "
                            "training text cannot be compared)")
            return False
        config, T = self.run.trainer.config, self.form.compare_len
        problem = (settings.view_problems(dict(compare_len=T))
                   or [settings.compare_problem(T, config.batch_size, config.hidden_size, self.run.trainer.stream_len)])
        if problem[0]:
            self.page.show_error("Cannot compare the cells: " + problem[0], about_form=True)
            return False
        curves = {cell: self.run.trainer.gradient_flow(cell=None if cell == config.cell else cell, seq_len=int(T),
                                                   last_step=self.compare_last_step)
                  for cell in tinyrnn.CELLS}
        self.run.chart_data.set_comparison(curves)
        what = "the last character's loss" if self.compare_last_step else "the loss of the whole window"
        fresh = ", ".join(c for c in tinyrnn.CELLS if c != config.cell)
        self.compare_info = (f"Gradient of {what} over a window of {T} steps on the current batch ({config.batch_size} "
                             f"streams, H={config.hidden_size}): {config.cell} is the current model at step "
                             f"{self.run.trainer.step_count}; {fresh} are freshly initialised.")
        return True

    # --- the hidden-state view ----------------------------------------------------------------------------------------

    def _passage_text(self) -> str:
        if self.passage_source == "the latest sample":
            sample = self.samples.latest_sample()
            if not sample:
                raise ValueError("There is no sample yet: press Sample (or train until a live sample appears)")
            return sample[-MAX_PASSAGE_CHARS:]
        start = int(self.form.passage_start)
        text = self.text.text
        if start >= len(text):
            raise ValueError(f"The text has {len(text):,} characters: start before position {len(text):,}")
        return text[start:start + int(self.form.passage_length)]

    @batched
    def show_passage(self) -> bool:
        """Read the passage with the current model; list the units that track simple properties; colour by
        ``unit``."""
        self.page.clear_error()
        if not self.run.has_model:
            self.page.show_error("There is no model yet: press Train (or load a model file) first")
            return False
        problems = settings.view_problems(dict(passage_start=self.form.passage_start, passage_length=self.form.passage_length))
        if problems:
            self.page.show_error("Cannot show the passage: " + " ".join(problems), about_form=True)
            return False
        config, vocab = self.run.model.config, self.run.model.vocab
        try:
            text = self._passage_text()
            ids = vocab.encode(text)
        except (ValueError, tinyrnn.TinyRNNError) as e:
            self.page.show_error(f"Cannot show the passage: {e}")
            return False
        params = self.run.model.params
        h0 = np.zeros((1, tinyrnn.ModelConfig(vocab.size, config.hidden_size, config.cell).state_size()),
                      dtype=params["W_hh"].dtype)
        states, _ = tinyrnn.read_passage(params, ids, h0, config.cell)
        self._passage = (text, np.asarray(states, dtype=np.float64))
        self.passage_text = text
        matches = tinyrnn.unit_correlations(self._passage[1], tinyrnn.text_features(text), per_feature=3)
        self._unit_of_choice = {match_label(m): m.unit for m in matches}
        self.param.unit_choice.objects = [NO_CHOICE, *self._unit_of_choice]
        self.unit_choice = NO_CHOICE
        self.unit_list = ("Units that best track a property of this passage (Pearson r over its characters):\n"
                          + ("\n".join(self._unit_of_choice) or "none: no property varies over this passage"))
        if self.form.unit >= config.hidden_size:
            self.form.unit = 0
        self._render_passage()
        return True

    @param.depends("unit_choice", watch=True)
    def _on_unit_choice(self):
        if self.unit_choice in self._unit_of_choice:
            self.form.unit = self._unit_of_choice[self.unit_choice]

    @param.depends("form.unit", watch=True)
    def _render_passage(self):
        if self._passage is None:
            return
        text, states = self._passage
        H = states.shape[1]
        if not isinstance(self.form.unit, int) or not 0 <= self.form.unit < H:
            self.passage_info = f"Unit must be a whole number from 0 to {H - 1} (this model has H={H}), got {self.form.unit!r}."
            return
        self.passage_view = passage_html(text, states[:, self.form.unit], self.form.unit)
        self.passage_info = (f"Unit {self.form.unit} of {H} over {len(text):,} characters of {self.passage_source} "
                             f"({self.run.model.config.cell}, read from a zero state at step {self.run.model.progress()[0]}): blue -1, "
                             "white 0, red +1; ↵ marks a newline.")

    # --- the memory readout -------------------------------------------------------------------------------------------

    def _recall_setup(self):
        """(rows, k, letters) of the current trainer's held-out recall lines, or None if it is not a recall text."""
        trainer = self.run.trainer
        if trainer is None:
            return None
        if self._recall is None or self._recall[0] is not trainer:
            held_out = trainer.vocab.decode(trainer.val_ids) if trainer.val_ids.size else ""
            rows, k = recall_rows(held_out)
            self._recall = (trainer, rows, k, recall_letters(held_out)) if rows else (trainer, None, None, None)
        return None if self._recall[1] is None else self._recall[1:]

    def has_memory_readout(self) -> bool:
        """True if the current model learns a recall text (the memory readout is then a scheduler job)."""
        return self._recall_setup() is not None

    def refresh_memory(self):
        """The memory readout: accuracy at the recall positions of the held-out lines, beside chance."""
        setup = self._recall_setup()
        if setup is None:
            self.memory_info = ""
            return
        rows, k, letters = setup
        trainer = self.run.trainer
        accuracy = recall_score(trainer, rows, k)
        self.memory_info = (f"Recall at k={k}: {accuracy:.0%} of {len(rows)} held-out letters right at step "
                            f"{trainer.step_count} (chance {1 / len(letters):.1%}: one of {len(letters)} letters; "
                            "each line of the validation text read from a zero state).")

    @param.depends("run.model_id", watch=True)
    def _on_model(self):
        """A new model in the slot (or none): the views of the previous one go."""
        self._passage, self._recall, self._unit_of_choice = None, None, {}
        self.param.unit_choice.objects = [NO_CHOICE]
        self.param.update(unit_choice=NO_CHOICE, passage_view="", passage_text="", passage_info="", unit_list="",
                          compare_info="")
        self.refresh_memory()
