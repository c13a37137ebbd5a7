"""Scheduling: training steps in ticks of about a time budget, and the steps' metrics gathered until the page
shows them (at most every ``UI_INTERVAL`` seconds). No UI here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

import tinyrnn

from .render import sentence

TICK_SECONDS = 0.2  # training time per periodic-callback tick
TICK_PERIOD_MS = 50  # the callback's period; a tick always yields to the event loop afterwards
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


class StepGatherer:
    """Runs a trainer's steps for a budget and keeps their ``StepMetrics`` until ``take()``."""

    def __init__(self):
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

    def run(self, trainer, budget: float, on_validation=None) -> tuple[int, str | None]:
        """Steps for about ``budget`` seconds (at least one); ``on_validation(val_loss)`` right after a step that
        validated. Returns (steps run, failure message or None)."""
        n_steps, chars_before, start = 0, trainer.chars_seen, time.perf_counter()
        failure = None
        try:
            while True:
                metrics = trainer.step()
                self.pending.append(metrics)
                n_steps += 1
                if metrics.val_loss is not None and on_validation is not None:
                    on_validation(metrics.val_loss)
                if time.perf_counter() - start >= budget:
                    break
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
