"""The app's state and actions as a few parts: :class:`TrainingSession` makes them and wires them together. No Bokeh.

Each part is a ``param.Parameterized`` with one concern and talks to the others through their parameters
(``@param.depends("run.step")``) and small methods:

- ``page`` (``state.PageStatus``): ready, the status line, the error;
- ``form`` (``state.SettingsForm``): the settings form's values and what is wrong with them;
- ``text`` (``text.TextPart``): the training text, the corpora, uploads;
- ``run`` (``training.Run``): the model slot, the training loop, the readouts and chart data;
- ``controls`` (``lifecycle.LifeCycle``): Train, Resume, Pause, Reset, the gradient check, the model files;
- ``samples`` (``samples.Samples``): the asked-for, live and milestone samples;
- ``views`` (``views.ModelViews``): the cells compared, the hidden-state view, the memory readout;
- ``kept`` (``keep.KeptWork``): what the browser keeps across visits;
- ``race`` (``racing.CellsRacePart``): the cells race, in the background;
- ``inside`` (``explained.ModelInside``): the explain views' models (the current one, the race's).

One ``scheduler`` (``loop.Scheduler``, on an injected ``clock``) owns the periodic jobs; :meth:`start` is the
page's start-up (the helper workers, the kept work, then ready) as one coroutine.
"""

from __future__ import annotations

import time

import param

import tinyrnn

from . import settings
from .explained import ModelInside
from .keep import KeptWork
from .lifecycle import LOADING_STATUS, READY_STATUS, LifeCycle, requested_workers
from .loop import FLOW_EVERY, LIVE_SAMPLE_EVERY, Scheduler
from .racing import CellsRacePart
from .samples import Samples
from .state import PageStatus, SettingsForm
from .text import TextPart
from .training import Run
from .views import MEMORY_EVERY, ModelViews

FORM_NAMES = frozenset(settings.FORM_NAMES + settings.SAMPLING_NAMES + settings.VIEW_NAMES)


class TrainingSession(param.Parameterized):
    """Everything the app knows and does, as parts; the layout only displays them."""

    page = param.ClassSelector(class_=PageStatus)
    form = param.ClassSelector(class_=SettingsForm)
    text = param.ClassSelector(class_=TextPart)
    run = param.ClassSelector(class_=Run)
    controls = param.ClassSelector(class_=LifeCycle)
    samples = param.ClassSelector(class_=Samples)
    views = param.ClassSelector(class_=ModelViews)
    kept = param.ClassSelector(class_=KeptWork)
    race = param.ClassSelector(class_=CellsRacePart)
    inside = param.ClassSelector(class_=ModelInside)

    def __init__(self, store=None, loading: bool = False, use_periodic_callback: bool = False,
                 clock=time.perf_counter, **values):
        """``values``: the form's values (``hidden_size=24``, ...), ``text`` and/or ``corpus``, ``prime``.
        ``store``: where the work is kept (None: nowhere). ``loading``: wait for :meth:`start` (the page's
        document is ready) before training; else ready at once. ``clock``: the scheduler's clock."""
        unknown = set(values) - FORM_NAMES - {"text", "corpus", "prime"}
        if unknown:
            raise TypeError(f"TrainingSession got unknown values {sorted(unknown)}")
        page = PageStatus(status=LOADING_STATUS)
        form = SettingsForm(page=page, **{k: v for k, v in values.items() if k in FORM_NAMES})
        text = TextPart(form=form, **{k: v for k, v in values.items() if k in ("text", "corpus")})
        self.scheduler = Scheduler(clock)
        run = Run(scheduler=self.scheduler, use_periodic_callback=use_periodic_callback, page=page)
        samples = Samples(form=form, run=run, prime=values.get("prime", ""))
        parts = dict(form=form, text=text, run=run)
        views = ModelViews(**parts, samples=samples)
        race = CellsRacePart(background=use_periodic_callback, **parts)
        super().__init__(page=page, **parts, controls=LifeCycle(**parts), samples=samples, views=views,
                         kept=KeptWork(store=store, **parts, samples=samples), race=race,
                         inside=ModelInside(views=views, race=race))
        run.stop_at = samples.next_milestone
        self.scheduler.add("flow", FLOW_EVERY, run.refresh_flow)
        self.scheduler.add("sample", LIVE_SAMPLE_EVERY, samples.take_live_sample)
        self.scheduler.add("views", MEMORY_EVERY, self.views.refresh_memory, when=self.views.has_memory_readout)
        self.scheduler.add("keep", self.kept.save_every, self.kept.keep_work, when=self.kept.can_keep)
        if not loading:
            self.mark_ready()

    def mark_ready(self, status: str = READY_STATUS):
        """Python runs in the page now: the controls come alive, and the status says so (or what came back) in the
        same update -- the page never shows "Ready" before the line that is true."""
        if self.page.ready:
            return
        self.run.show_backend()
        self.page.param.update(status=status, ready=True)

    async def start(self):
        """The page's start-up: start a helper Web Worker per core (``?workers=N`` asks for N in all; a restored
        model then trains on every core too), put the kept work back, then mark the page ready -- so that no click
        can race the restore. The status says what came back."""
        if self.page.ready:
            return
        await tinyrnn.start_workers(requested_workers())  # never raises: tinyrnn.workers() says why
        line = await self.kept.restore_work()
        self.mark_ready(line or READY_STATUS)
