"""The cells race in the page: the three cells trained on the current text with the form's settings, each for the
same number of characters (a budget the user picks), a few steps at a time in the background while the user reads
(``tinyrnn.CellsRace``); then each trained model's gradient reach and the verdict (``tinyrnn.RaceResult``). No UI.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import param

import tinyrnn

from . import settings
from .state import SettingsForm, batched
from .text import TextPart, text_problem
from .training import YIELD_SECONDS, Run

BUDGETS = (100_000, 300_000, 1_000_000, 3_000_000)  # training characters per cell the user can pick
RACE_TICK_SECONDS = 0.15  # steps per turn of the race's loop before it yields (the page stays responsive)


class CellsRacePart(param.Parameterized):
    """The race over the ``text`` with the ``form``'s settings; messages go to the ``run``'s page."""

    form = param.ClassSelector(class_=SettingsForm)
    text = param.ClassSelector(class_=TextPart)
    run = param.ClassSelector(class_=Run)
    budget = param.Selector(default=BUDGETS[1], objects=list(BUDGETS), label="Characters per cell")
    racing = param.Boolean(default=False, doc="True while the race trains.")
    progress = param.String(default="", doc="How far each cell has come, or what the race measured.")
    curves = param.Dict(default={}, doc="Cell -> validation points (tinyrnn.LossPoint) so far.")
    result = param.ClassSelector(class_=tinyrnn.RaceResult, default=None, allow_None=True)

    def __init__(self, background: bool = False, **params):
        """``background``: race in an asyncio task (the page); else the caller calls ``race_tick`` (tests)."""
        super().__init__(**params)
        self.background = background
        self.race = None  # the tinyrnn.CellsRace being run (or last run)
        self._task = None

    @property
    def page(self):
        return self.run.page

    def race_problem(self) -> str | None:
        """Why the race cannot start with the current text and settings (every cell must fit the page), or None."""
        problem = text_problem(self.text.text)
        if problem is not None:
            return problem
        values = self.form.form_values()
        for cell in tinyrnn.CELLS:
            problems = settings.problems(dict(values, cell=cell))
            if problems:
                return f"The race trains every cell with these settings; for the {cell} cell: {' '.join(problems)}"
        return None

    @batched
    def start_race(self) -> bool:
        """Start a race of the three cells (a new one: the last result goes)."""
        if self.racing or not self.page.ready:
            return self.racing
        self.page.clear_error()
        problem = self.race_problem()
        if problem is None:
            try:
                config = replace(self.form.config().validate(), cell="rnn")
                self.race = tinyrnn.CellsRace(self.text.text, config, budget=int(self.budget))
            except tinyrnn.TinyRNNError as e:
                problem = str(e)
        if problem is not None:
            self.page.show_error(f"Cannot start the race: {problem}")
            return False
        self.param.update(result=None, curves=self.race.curves(), racing=True)
        self._show_progress()
        if self.background and (self._task is None or self._task.done()):
            self._task = asyncio.ensure_future(self.run_race())
        return True

    def stop_race(self):
        if self.racing:
            self.racing = False
            self.progress = "Stopped. " + self.progress

    def race_tick(self, seconds: float = RACE_TICK_SECONDS) -> int:
        """Race steps for about ``seconds`` (at least one); when every cell has seen the budget, the result. Returns
        the steps run."""
        if not self.racing or self.race is None:
            return 0
        steps, start = 0, time.perf_counter()
        while not self.race.done and (steps == 0 or time.perf_counter() - start < seconds):
            self.race.advance()
            steps += 1
        self.curves = self.race.curves()
        if self.race.done:
            self.param.update(result=self.race.result(), racing=False)
        self._show_progress()
        return steps

    async def run_race(self):
        """The race in the page: a turn of steps, then a yield to the event loop, until it is done or stopped. A
        failure reaches the page."""
        while self.racing:
            try:
                self.race_tick()
            except Exception as e:  # noqa: BLE001 - a failure must reach the page, not end the loop silently
                self.racing = False
                self.page.show_error(f"The race stopped: {type(e).__name__}: {e}")
                return
            await asyncio.sleep(YIELD_SECONDS)

    def _show_progress(self):
        race = self.race
        if race is None:
            return
        if self.result is not None:
            self.progress = tinyrnn.verdict(self.result)
            return
        seen = race.chars_seen()
        done = ", ".join(f"{tinyrnn.get_cell(c).label} {n:,}" for c, n in seen.items())
        self.progress = f"Racing: {done} of {race.budget:,} characters each."

