"""What the explain views show: the current model (and, once the cells race is done, the race's three trained
models) over the passage of the hidden-state view, as ``inside.ModelText`` records for ``ConnectivityView``,
``GatesView`` and ``ExpectView``. No UI here: the views are built by ``sections.InsideTab``."""

from __future__ import annotations

import param

import tinyrnn

from .inside import ConnectivityView, ExpectView, GatesView, ModelText
from .race_view import race_models
from .racing import CellsRacePart
from .views import ModelViews


class ModelInside(param.Parameterized):
    """The explain views over the ``views``' passage: the current model's, and the race's models side by side."""

    views = param.ClassSelector(class_=ModelViews)
    race = param.ClassSelector(class_=CellsRacePart)
    note = param.String(default="", doc="Which models the views show, or why the race's models are not among them.")

    def __init__(self, **params):
        super().__init__(**params)
        self.connectivity = ConnectivityView()
        self.gates = GatesView()
        self.expect = ExpectView()

    def current_model(self) -> ModelText | None:
        """The current model over the passage shown, or None (no model or no passage yet)."""
        model, passage = self.views.run.model, self.views.passage_text
        if not model.has_model or not passage:
            return None
        step = model.progress()[0]
        label = f"current model ({tinyrnn.get_cell(model.config.cell).label}, step {step:,})"
        return ModelText(model.params, model.vocab, model.config.cell, passage, label)

    @param.depends("views.passage_text", "race.result", watch=True)
    def refresh(self):
        """Show the passage with the current model, and beside it in the connectivity view the race's models."""
        current = self.current_model()
        models, notes = ([current] if current else []), []
        result = self.race.result
        passage = self.views.passage_text
        if result is not None and passage:
            racers = race_models(result, passage)
            try:
                for racer in racers:
                    racer.ids()
                models += [ModelText(r.params, r.vocab, r.cell, r.passage, f"{r.name} (race)") for r in racers]
            except (tinyrnn.TinyRNNError, ValueError) as e:
                notes.append(f"The race's models cannot read this passage ({e}).")
        elif passage:
            notes.append("Run the cells race to see its three trained models here side by side.")
        self.connectivity.param.update(models=models, position=None)
        self.gates.model = current
        self.expect.model = current
        shown = ", ".join(m.name for m in models)
        self.note = " ".join([f"Showing: {shown}." if shown else "Press Show above to read a passage.", *notes])
