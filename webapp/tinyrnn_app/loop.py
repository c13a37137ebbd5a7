"""Scheduling: the page's periodic jobs (:class:`Scheduler`, on an injected clock), training steps in ticks of about
a time budget and their metrics gathered until the page shows them (:class:`StepGatherer`), where the loop's time
goes (:class:`LoopClock`), and the steps at which a sample is kept (``milestone_after``). No UI here."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

import tinyrnn

from .render import sentence

TICK_SECONDS = 0.25  # training time per tick at most (a tick ends when the readouts are due, see UI_INTERVAL); a
# Pause click can wait for two ticks (the page sends it once the worker has answered the patch before), so 2 x 0.25 s
TICK_PERIOD_MS = 50  # the periodic callback's period (under `panel serve`); a tick always yields afterwards
LIVE_SAMPLE_EVERY = 3.0  # seconds between live samples while training
LIVE_SAMPLE_LENGTH = 240
FLOW_EVERY = 2.0  # seconds between gradient-flow snapshots while training
UI_INTERVAL = 0.5  # seconds between readout/chart refreshes while training
VALIDATION_SHARE = 0.02  # the page's validation takes at most this share of the training time (ValidationPacer)
FIRST_VALIDATION_AFTER = UI_INTERVAL  # seconds of steps before a run's first validation


@dataclass
class Summary:
    """The steps run since the last refresh: mean training loss, the last step's counters, validation points."""

    step: int
    train_loss: float
    chars_seen: int
    elapsed: float
    val_points: list = field(default_factory=list)  # [(step, nats/char)]
    chars_per_sec: float | None = None


PHASES = ("step", "validating_step", "flush", "flow", "sample", "milestone", "views", "keep", "tick_other", "gap")


class LoopClock:
    """Where the training loop's wall time goes, by phase, since the page started (seconds and counts): ``step``
    (steps without validation), ``validating_step`` (steps that validated), the extras of a tick (``flush``: readouts
    and charts' data, ``flow``, ``sample``, ``views``, ``keep``), ``tick_other`` (the rest of a tick: the held document
    changes going to the page, bookkeeping) and ``gap`` (from the end of one tick to the start of the next: the event
    loop, incoming messages, background saves). Costs a few ``perf_counter`` calls per tick; read by
    bench/page_throughput.py through ``snapshot()``."""

    def __init__(self):
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.counts = dict.fromkeys(PHASES, 0)
        self.tick_end = None  # perf_counter() at the end of the last tick, None when the loop is not running

    def add(self, phase: str, seconds: float):
        self.seconds[phase] += seconds
        self.counts[phase] += 1

    @contextmanager
    def phase(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - start)

    def snapshot(self) -> dict:
        """{"seconds": {phase: s}, "counts": {phase: n}, "now": perf_counter()} (copies)."""
        return {"seconds": dict(self.seconds), "counts": dict(self.counts), "now": time.perf_counter()}


MILESTONE_START = 100  # the first milestone step; then 300, 1,000, 3,000, 10,000, ...


def milestone_after(step: int) -> int:
    """The first milestone step after ``step``: 100, 300, 1,000, 3,000, 10,000, 30,000, ... (1 and 3 times a power
    of ten)."""
    milestone = MILESTONE_START
    while milestone <= step:
        milestone = milestone * 3 if str(milestone).startswith("1") else milestone * 10 // 3
    return milestone


@dataclass
class Job:
    """A periodic job: ``action()`` every ``every()`` seconds while ``when()`` holds."""

    action: object
    every: object  # () -> seconds
    when: object  # () -> bool
    next_at: float = float("-inf")  # the clock's time from which it is due


class Scheduler:
    """The page's periodic jobs (readouts, gradient flow, live sample, memory readout, saving), each run at most
    every so many seconds of ``clock`` (``time.perf_counter`` in the page; tests pass a clock they advance)."""

    def __init__(self, clock=time.perf_counter):
        self.clock = clock
        self.jobs: dict[str, Job] = {}

    def add(self, name: str, every, action, when=None):
        """Run ``action()`` every ``every`` seconds (a number, or a function giving it) while ``when()`` is true."""
        self.jobs[name] = Job(action, every if callable(every) else (lambda: every), when or (lambda: True))

    def restart(self, first_in: dict | None = None):
        """Each job next due a full period from now, or after ``first_in[name]`` seconds (0: at once)."""
        now = self.clock()
        for name, job in self.jobs.items():
            wait = (first_in or {}).get(name)
            job.next_at = now + (job.every() if wait is None else wait)

    def seconds_until(self, name: str) -> float:
        return max(0.0, self.jobs[name].next_at - self.clock())

    def due(self, name: str) -> bool:
        job = self.jobs[name]
        return self.clock() >= job.next_at and bool(job.when())

    def run(self, name: str, now: bool = False) -> bool:
        """Run the job ``name`` if it is due, or ``now`` (its period then restarts); True if it ran."""
        if not (now or self.due(name)):
            return False
        job = self.jobs[name]
        job.next_at = self.clock() + job.every()
        job.action()
        return True

    def run_first_due(self, names) -> str | None:
        """Run the first of ``names`` that is due (at most one: a tick ends soon after its steps); its name or None."""
        return next((name for name in names if self.run(name)), None)


class ValidationPacer:
    """When the page validates: after ``FIRST_VALIDATION_AFTER`` seconds of steps, then each time the steps since
    the last validation took ``1 / VALIDATION_SHARE`` times as long as that validating step did, so that validating
    costs at most that share of the training time whatever the cell, size, batch or machine (every ~1 s for the
    default tanh RNN). Only the steps' own time counts: a pause is not training."""

    def __init__(self):
        self.wait = FIRST_VALIDATION_AFTER  # seconds of steps from the last validation to the next
        self.since = 0.0  # seconds of steps since the last validation

    def due(self) -> bool:
        return self.since >= self.wait

    def ran(self, seconds: float, validated: bool):
        """After a step that took ``seconds`` (its validation included, if it ``validated``)."""
        if validated:
            self.since, self.wait = 0.0, seconds / VALIDATION_SHARE
        else:
            self.since += seconds


class StepGatherer:
    """Runs a trainer's steps for a budget (in seconds of ``timer``), validating when ``pacer`` says (and at the
    step a tick stops at: the milestones), and keeps their ``StepMetrics`` until ``take()``."""

    def __init__(self, timer=time.perf_counter):
        self.timer = timer
        self.clock = LoopClock()
        self.pacer = ValidationPacer()
        self.pending = []
        self.chars = 0
        self.wall = 0.0

    def run(self, trainer, budget: float, on_validation=None, stop_at: int | None = None) -> tuple[int, str | None]:
        """Steps for about ``budget`` seconds (at least one), ending early at step ``stop_at`` (which validates);
        ``on_validation(val_loss)`` right after a step that validated. Returns (steps run, failure message or None)."""
        n_steps, chars_before, start = 0, trainer.chars_seen, self.timer()
        failure = None
        try:
            t0 = start
            while True:
                metrics = trainer.step(validate=self.pacer.due() or trainer.step_count + 1 == stop_at)
                self.pending.append(metrics)
                n_steps += 1
                if metrics.val_loss is not None and on_validation is not None:
                    on_validation(metrics.val_loss)
                t1 = self.timer()
                self.pacer.ran(t1 - t0, validated=metrics.val_loss is not None)
                self.clock.add("step" if metrics.val_loss is None else "validating_step", t1 - t0)
                if t1 - start >= budget or trainer.step_count == stop_at:
                    break
                t0 = t1
        except tinyrnn.TrainingDiverged as e:
            failure = (
                f"{sentence(e)} Training is paused at step {trainer.step_count} with the last good model: lower "
                "the learning rate (or turn gradient clipping on) and press Train to start a new model"
            )
        except tinyrnn.TinyRNNError as e:
            failure = f"Training stopped: {sentence(e)}"
        except Exception as e:  # noqa: BLE001 - show anything unexpected instead of dying silently in a callback
            failure = f"Training stopped by an unexpected error: {type(e).__name__}: {e}"
        self.chars += trainer.chars_seen - chars_before
        self.wall += self.timer() - start
        return n_steps, failure

    def clear(self):
        """For a new model: nothing pending, its first validation after ``FIRST_VALIDATION_AFTER``."""
        self.pending, self.chars, self.wall = [], 0, 0.0
        self.pacer = ValidationPacer()

    def take(self) -> Summary | None:
        """The pending steps as one ``Summary`` (None if there are none); they are then no longer pending."""
        pending, self.pending = self.pending, []
        if not pending:
            return None
        last = pending[-1]
        summary = Summary(
            step=int(last.step), train_loss=float(np.mean([m.train_loss for m in pending])),
            chars_seen=int(last.chars_seen), elapsed=float(last.elapsed),
            val_points=[(m.step, float(m.val_loss)) for m in pending if m.val_loss is not None],
            chars_per_sec=self.chars / self.wall if self.wall > 0 else None,
        )
        self.chars, self.wall = 0, 0.0
        return summary
