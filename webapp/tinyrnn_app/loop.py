"""Scheduling: training steps in ticks of about a time budget, and the steps' metrics gathered until the page
shows them (at most every ``UI_INTERVAL`` seconds). No UI here."""

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


@dataclass
class Summary:
    """The steps run since the last refresh: mean training loss, the last step's counters, validation points."""

    step: int
    train_loss: float
    chars_seen: int
    elapsed: float
    val_points: list = field(default_factory=list)  # [(step, nats/char)]
    chars_per_sec: float | None = None


PHASES = ("step", "validating_step", "flush", "flow", "sample", "views", "keep", "tick_other", "gap")


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


class StepGatherer:
    """Runs a trainer's steps for a budget and keeps their ``StepMetrics`` until ``take()``."""

    def __init__(self):
        self.clock = LoopClock()
        self.pending = []
        self.chars = 0
        self.wall = 0.0
        self.last_flush = 0.0
        self.last_flow = 0.0
        self.last_sample = 0.0
        self.last_memory = 0.0

    def restart_clocks(self):
        now = time.perf_counter()
        self.last_sample = now - LIVE_SAMPLE_EVERY + 1.0  # first live sample after about a second
        self.last_flow = now
        self.last_memory = now
        self.last_flush = 0.0  # the first tick shows its numbers at once
        self.clock.tick_end = None

    def run(self, trainer, budget: float, on_validation=None) -> tuple[int, str | None]:
        """Steps for about ``budget`` seconds (at least one); ``on_validation(val_loss)`` right after a step that
        validated. Returns (steps run, failure message or None)."""
        n_steps, chars_before, start = 0, trainer.chars_seen, time.perf_counter()
        failure = None
        try:
            t0 = start
            while True:
                metrics = trainer.step()
                self.pending.append(metrics)
                n_steps += 1
                if metrics.val_loss is not None and on_validation is not None:
                    on_validation(metrics.val_loss)
                t1 = time.perf_counter()
                self.clock.add("step" if metrics.val_loss is None else "validating_step", t1 - t0)
                if t1 - start >= budget:
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
        self.wall += time.perf_counter() - start
        return n_steps, failure

    def due(self, what: str, every: float) -> bool:
        """True (and the clock restarts) if ``every`` seconds passed since ``what`` ("flush", "flow", "sample", "memory")."""
        now = time.perf_counter()
        if now - getattr(self, "last_" + what) >= every:
            setattr(self, "last_" + what, now)
            return True
        return False

    def clear(self):
        self.pending, self.chars, self.wall = [], 0, 0.0

    def take(self) -> Summary | None:
        """The pending steps as one ``Summary`` (None if there are none); they are then no longer pending."""
        self.last_flush = time.perf_counter()
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
