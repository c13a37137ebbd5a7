"""Stand-alone views inside a model, each a ``pn.viewable.Viewer`` over small records (``ModelText``: a model and a
passage), never over the session:

- ``ConnectivityView``: click a character; every earlier one is coloured by how much its prediction depends on
  it (``tinyrnn.connectivity``), for one model or several side by side;
- ``GatesView``: one unit of one gate or state (``tinyrnn.gate_trace``: GRU z, LSTM f and c, h for every cell)
  over the passage, on the unit's own colour scale, and the units that track something (``tinyrnn.tracking_units``);
- ``ExpectView``: under each character (hover, or tap for the line below), the five most likely next characters
  (``tinyrnn.top_next``).

The passage is one escaped span per character (``passages.py``) inside ``ClickablePassage``, a small page
component that reports the index of the character clicked or tapped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import panel as pn
import param
from panel.custom import JSComponent
from panel.viewable import Viewer

import tinyrnn

from .hidden import MAX_PASSAGE_CHARS
from .passages import (CONNECTIVITY_DECADES, char_label, connectivity_colours, diverging, sequential, spans_html,
                       surprise, top_next_words, unit_colours, unit_range)
from .render import plain_html

VIEW_CSS = """
.tr-pre { white-space: pre-wrap; word-break: break-word; font-family: ui-monospace, Menlo, Consolas, monospace;
          font-size: 0.9em; margin: 0; }
"""
TOP_K = 5
NO_CHOICE = "(pick a listed unit)"
MAX_LISTED_UNITS = 12
MIN_CORRELATION = 0.25  # a unit is listed as tracking a property when |r| reaches this
SURPRISE_BITS = 8.0  # the surprise colour is full at −log₂ p = 8 bits (a 1-in-256 character)
DEFAULT_TRACE = {"rnn": "h", "gru": "z", "lstm": "f"}
GATES = {"r", "z", "i", "f", "o"}  # the sigmoid gates, in (0, 1): shown white (its low) to blue (its high)
TRACE_WORDS = {"h": "hidden state h", "c": "cell state c", "z": "update gate z", "r": "reset gate r",
               "n": "candidate n", "f": "forget gate f", "i": "input gate i", "g": "cell input g", "o": "output gate o"}


@dataclass(frozen=True)
class ModelText:
    """A model (params of ``cell``, its vocabulary) and a passage (at most ``MAX_PASSAGE_CHARS`` characters) it
    reads from a zero state; ``label`` names it in the views (default: the cell's)."""

    params: dict
    vocab: tinyrnn.Vocabulary
    cell: str
    passage: str
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or tinyrnn.get_cell(self.cell).label

    def ids(self) -> np.ndarray:
        """The passage's ids (N,); ``TinyRNNError``/ValueError with a sentence if the model cannot read it."""
        if not self.passage:
            raise tinyrnn.TextError("the passage is empty")
        if len(self.passage) > MAX_PASSAGE_CHARS:
            raise tinyrnn.TextError(f"the passage has {len(self.passage):,} characters; at most "
                                    f"{MAX_PASSAGE_CHARS:,} are shown")
        return self.vocab.encode(self.passage)


class ClickablePassage(JSComponent):
    """A passage given as escaped spans (``passages.spans_html``); ``clicked`` is the ``data-i`` index of the last
    character clicked or tapped."""

    spans = param.String(default="", doc="The passage's HTML, every character escaped (passages.spans_html).")
    clicked = param.Integer(default=-1, doc="The index of the last character clicked or tapped; -1: none.")

    _esm = """
    export function render({ model }) {
      const box = document.createElement("div");
      const draw = () => { box.innerHTML = model.spans };
      draw();
      model.on("spans", draw);
      box.addEventListener("click", (event) => {
        const span = event.target.closest("[data-i]");
        if (span) { model.clicked = parseInt(span.dataset.i, 10) }
      });
      return box;
    }
    """


def _note(text: str, css_class: str) -> pn.pane.HTML:
    return pn.pane.HTML(plain_html(text), css_classes=[css_class], stylesheets=[VIEW_CSS], sizing_mode="stretch_width")


def _passage(css_class: str, on_click) -> ClickablePassage:
    passage = ClickablePassage(css_classes=[css_class], sizing_mode="stretch_width")
    passage.param.watch(lambda event: on_click(event.new), "clicked", onlychanged=False)
    return passage


def _read(model: ModelText):
    """(ids, None) or (None, the reason as a sentence) for a model and its passage."""
    try:
        return model.ids(), None
    except (tinyrnn.TinyRNNError, ValueError, TypeError) as e:
        return None, f"{model.name}: cannot read this passage: {e}"


class ConnectivityView(Viewer):
    """Click a character: how much the model's prediction of it depends on each character before it, for each of
    ``models`` side by side (one click selects the same position in all of them)."""

    models = param.List(default=[], item_type=ModelText, doc="The models, each with its passage.")
    position = param.Integer(default=None, allow_None=True,
                             doc="The character whose prediction is explained (index ≥ 1); None: none yet.")
    info = param.String(default="", doc="What the colours show (plain text).")

    def __init__(self, **params):
        super().__init__(**params)
        self.passages: list[ClickablePassage] = []
        self.headings: list[pn.pane.HTML] = []
        self._layout = pn.FlexBox(flex_wrap="wrap", sizing_mode="stretch_width")
        self._info = _note("", "tr-connectivity-info")
        self._rebuild()

    @param.depends("models", watch=True)
    def _rebuild(self):
        self.passages = [_passage("tr-connectivity-passage", self._clicked) for _ in self.models]
        self.headings = [_note("", "tr-connectivity-heading") for _ in self.models]
        self._layout.objects = [pn.Column(h, p, styles={"flex": "1 1 300px", "min-width": "0"})
                                for h, p in zip(self.headings, self.passages)]
        self._render()

    def _clicked(self, index: int):
        self.position = index if index >= 1 else None

    @param.depends("position", watch=True)
    def _render(self):
        p = self.position
        for model, passage, heading in zip(self.models, self.passages, self.headings):
            ids, problem = _read(model)
            if problem:
                passage.spans, heading.object = "", plain_html(problem)
                continue
            text, n = model.passage, len(model.passage)
            if p is None or not 1 <= p < n:
                passage.spans = spans_html(text, [sequential(0)] * n, ["click to explain the prediction of this "
                                                                       "character"] * n)
                heading.object = plain_html(model.name)
                continue
            values = tinyrnn.connectivity(model.params, ids, p - 1, cell=model.cell)
            top = float(values.max())
            titles = [f"{char_label(text[s])} at {s}: {v:.2e}" + (f" ({v / top:.0%} of the largest)" if top > 0 else "")
                      for s, v in enumerate(values)] + ["after the predicted character"] * (n - p)
            passage.spans = spans_html(text, connectivity_colours(values, n), titles, selected=p)
            chance = tinyrnn.next_probabilities(model.params, ids[:p], cell=model.cell)[-1, ids[p]]
            heading.object = plain_html(f"{model.name}: p({char_label(text[p])}) = {chance:.1%}")
        self.info = ("Click a character." if p is None else
                     f"How much the prediction of character {p} depends on each character before it: "
                     f"‖∂ log p / ∂ e_s‖ (e_s: the input embedding of character s). Darkest: the largest; white: "
                     f"1/{10 ** CONNECTIVITY_DECADES:,} of it or less (log scale). The outlined character is the one "
                     "predicted.")
        self._info.object = plain_html(self.info)

    def __panel__(self):
        return pn.Column(self._info, self._layout, css_classes=["tr-connectivity"], sizing_mode="stretch_width")


class GatesView(Viewer):
    """One unit of one gate or state over the passage, coloured on that unit's own scale, and the units of every
    gate and state that track something in the passage."""

    model = param.ClassSelector(class_=ModelText, default=None, allow_None=True)
    trace = param.Selector(default="h", objects=["h"], label="Gate or state")
    unit = param.Integer(default=0, bounds=(0, None), label="Unit")
    tracking = param.Selector(default=NO_CHOICE, objects=[NO_CHOICE], label="Units that track something")
    position = param.Integer(default=None, allow_None=True, doc="The character clicked: its values are listed.")
    info = param.String(default="", doc="What the colours show (plain text).")
    unit_list = param.String(default="", doc="The units that track something (plain text).")

    def __init__(self, **params):
        super().__init__(**params)
        self.passage = _passage("tr-gates-passage", lambda i: setattr(self, "position", i))
        self.trace_values: dict[str, np.ndarray] = {}
        self._choices: dict[str, tuple[str, int]] = {}
        self._info, self._list = _note("", "tr-gates-info"), _note("", "tr-gates-units")
        self._read()

    @param.depends("model", watch=True)
    def _read(self):
        self.trace_values, self._choices = {}, {}
        ids, problem = _read(self.model) if self.model is not None else (None, "There is no model yet.")
        if problem is None:
            self.trace_values = tinyrnn.gate_trace(self.model.params, ids, cell=self.model.cell)
            found = tinyrnn.tracking_units(self.trace_values, self.model.passage, per_feature=2)
            matches = sorted(((name, m) for name, ms in found.items() for m in ms if abs(m.correlation) >= MIN_CORRELATION),
                             key=lambda nm: -abs(nm[1].correlation))
            self._choices = {f"{TRACE_WORDS.get(name, name)}, unit {m.unit}: {m.feature} (r = {m.correlation:+.2f})":
                             (name, m.unit) for name, m in matches[:MAX_LISTED_UNITS]}
        names = list(self.trace_values) or ["h"]
        self.param.trace.objects = names
        self.param.tracking.objects = [NO_CHOICE, *self._choices]
        self.unit_list = (problem or f"Units that follow a property of this passage (Pearson |r| ≥ {MIN_CORRELATION}):\n"
                          + ("\n".join(self._choices) or "none in this passage"))
        self._list.object = plain_html(self.unit_list)
        H = next(iter(self.trace_values.values())).shape[1] if self.trace_values else 1
        self.param.unit.bounds = (0, H - 1)
        trace = DEFAULT_TRACE.get(self.model.cell, "h") if problem is None else "h"
        self.param.update(tracking=NO_CHOICE, unit=min(self.unit, H - 1), trace=trace, position=None)
        self._render()

    @param.depends("tracking", watch=True)
    def _pick(self):
        if self.tracking in self._choices:
            self.trace, self.unit = self._choices[self.tracking]

    @param.depends("trace", "unit", "position", watch=True)
    def _render(self):
        if not self.trace_values:
            self.passage.spans, self.info = "", self.unit_list
            self._info.object = plain_html(self.info)
            return
        text, values = self.model.passage, self.trace_values[self.trace][:, self.unit]
        name = TRACE_WORDS.get(self.trace, self.trace)
        titles = [f"{char_label(c)}: {name}[{self.unit}] = {v:+.3f}" for c, v in zip(text, values)]
        gate = self.trace in GATES
        self.passage.spans = spans_html(text, unit_colours(values, sequential if gate else diverging), titles,
                                        selected=self.position)
        low, high = unit_range(values)
        ends = ("white", "blue") if gate else ("blue", "red")
        scale = (f"{ends[0]} {low:+.3f} (its 2nd percentile){'' if gate else ' - white'} - {ends[1]} {high:+.3f} "
                 "(its 98th)" if high > low else f"it stays at {low:+.3f} over this passage")
        self.info = f"{self.model.name}: {name}, unit {self.unit}, after each character, on this unit's own scale: {scale}."
        if self.position is not None and 0 <= self.position < len(text):
            at = ", ".join(f"{k} {v[self.position, self.unit]:+.3f}" for k, v in self.trace_values.items())
            self.info += f"\nAfter character {self.position} {char_label(text[self.position])}, unit {self.unit}: {at}."
        self._info.object = plain_html(self.info)

    def __panel__(self):
        controls = pn.FlexBox(pn.widgets.Select.from_param(self.param.trace, css_classes=["tr-gates-trace"], width=140),
                              pn.widgets.IntInput.from_param(self.param.unit, css_classes=["tr-gates-unit"], width=110),
                              pn.widgets.Select.from_param(self.param.tracking, css_classes=["tr-gates-tracking"],
                                                           width=300),
                              flex_wrap="wrap", sizing_mode="stretch_width")  # wraps on a phone
        return pn.Column(controls, self._info, self.passage, self._list, css_classes=["tr-gates"],
                         sizing_mode="stretch_width")


class ExpectView(Viewer):
    """What the model expects: each character's tooltip lists the ``TOP_K`` most likely next characters; tapping
    one shows them below. The background shows how likely the model found each character (white: sure of it)."""

    model = param.ClassSelector(class_=ModelText, default=None, allow_None=True)
    position = param.Integer(default=None, allow_None=True, doc="The character tapped; None: none yet.")
    info = param.String(default="", doc="The tapped character's most likely next characters (plain text).")

    def __init__(self, **params):
        super().__init__(**params)
        self.passage = _passage("tr-expect-passage", lambda i: setattr(self, "position", i))
        self._info = _note("", "tr-expect-info")
        self._words: list[str] = []  # per character: its most likely successors in words
        self._titles: list[str] = []
        self._backgrounds: list[str] = []
        self._read()

    @param.depends("model", watch=True)
    def _read(self):
        self._words = []
        ids, problem = _read(self.model) if self.model is not None else (None, "There is no model yet.")
        if problem:
            self.passage.spans, self.info = "", problem
            self._info.object = plain_html(problem)
            return
        text, chars = self.model.passage, self.model.vocab.chars
        top = tinyrnn.top_next(self.model.params, ids, k=min(TOP_K, self.model.vocab.size), cell=self.model.cell)
        seen = tinyrnn.next_probabilities(self.model.params, ids, cell=self.model.cell)[np.arange(len(ids) - 1), ids[1:]]
        self._words = [f"after {char_label(c)}: " + top_next_words([chars[i] for i in row], probs)
                       for c, row, probs in zip(text, top.ids, top.probs)]
        titles = [w + (f" — next is {char_label(text[t + 1])} ({seen[t]:.0%})" if t + 1 < len(text) else "")
                  for t, w in enumerate(self._words)]
        with np.errstate(divide="ignore"):
            self._backgrounds = [surprise(0.0)] + [surprise(-np.log2(p) / SURPRISE_BITS) for p in seen]
        self._titles = titles
        self._draw()

    @param.depends("position", watch=True)
    def _draw(self):
        if not self._words:
            return
        self.passage.spans = spans_html(self.model.passage, self._backgrounds, self._titles, selected=self.position)
        p = self.position
        self.info = (f"Character {p} {self._words[p]}" if p is not None and 0 <= p < len(self._words) else
                     f"Hover over or tap a character to see the {TOP_K} characters the model expects after it. "
                     f"The background shows how surprised the model was by each character, −log₂ p: white 0 bits, "
                     f"full orange {SURPRISE_BITS:g} bits (a 1-in-{2 ** SURPRISE_BITS:.0f} character) or more.")
        self._info.object = plain_html(self.info)

    def __panel__(self):
        return pn.Column(self._info, self.passage, css_classes=["tr-expect"], sizing_mode="stretch_width")
