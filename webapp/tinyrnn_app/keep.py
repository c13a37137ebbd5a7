"""Keeping the work across visits: the text, the form, the model (the same checkpoint bytes as Download), the best
model, the charts and the milestone samples, saved to a ``storage`` store on their own -- every few seconds while
training (a scheduler job), on Pause and when the tab is hidden -- and restored at start-up. No Bokeh here."""

from __future__ import annotations

import json
import time

import param

import tinyrnn

from . import settings
from .render import sentence
from .samples import Samples
from .state import SettingsForm
from .storage import StorageError, run_soon
from .text import TextPart
from .training import Run

KEY = "work"
RECORD_VERSION = 1
SAVE_EVERY = 5.0  # seconds between saves while training (more if saving is slow: at most a tenth of the time)


class KeptWork(param.Parameterized):
    """The work of ``form``, ``text``, ``run`` and ``samples``, kept in ``store`` (a ``storage.MemoryStore`` or
    ``IndexedDBStore``; None: not kept)."""

    form = param.ClassSelector(class_=SettingsForm)
    text = param.ClassSelector(class_=TextPart)
    run = param.ClassSelector(class_=Run)
    samples = param.ClassSelector(class_=Samples)
    storage_info = param.String(default="", doc="What this browser keeps of the work, or why it could not.")
    keeping = param.Boolean(default=True, doc="False after Forget, until the next Train or Resume.")

    def __init__(self, store=None, **params):
        super().__init__(**params)
        self.store = store
        self.save_cost = 0.0  # seconds the last record took to make

    @property
    def page(self):
        return self.run.page

    # --- saving ------------------------------------------------------------------------------------------------------

    def save_every(self) -> float:
        """Seconds between saves while training: ``SAVE_EVERY``, or ten times what a save costs if that is more."""
        return max(SAVE_EVERY, 10 * self.save_cost)

    def can_keep(self) -> bool:
        return self.store is not None and self.keeping and self.page.ready

    def keep_work(self):
        """Save the work now (in the background: the store answers later)."""
        if not self.can_keep():
            return
        started = time.perf_counter()
        record = self.work_record()
        self.save_cost = time.perf_counter() - started
        run_soon(self._put(record))

    def work_record(self) -> dict:
        """{"meta": JSON text, "model": checkpoint bytes or None, "best": checkpoint bytes or None}."""
        model = self.run.model
        step, _, _ = model.progress()
        text = self.text.text
        meta = {
            "version": RECORD_VERSION, "saved_at": time.time(), "step": step, "text": text,
            "model_text": model.text if model.text not in (None, text) else None,
            "trainable": model.trainable, "best_val": None if model.best is None else model.best[0],
            "form": self.form.form_values(settings.FORM_NAMES + settings.SAMPLING_NAMES),
            "prime": self.samples.prime, "milestones": self.samples.milestones,
            "charts": self.run.chart_data.to_dict(),
        }
        return {"meta": json.dumps(meta), "model": model.checkpoint_bytes(), "best": model.best_checkpoint_bytes()}

    async def _put(self, record: dict):
        try:
            await self.store.put(KEY, record)
        except StorageError as e:
            self.storage_info = (f"This browser did not keep your work ({sentence(e).rstrip('.')}); training goes on. "
                                 "Download the model to keep it.")
            return
        meta = json.loads(record["meta"])
        what = f"the model at step {meta['step']:,}" if record["model"] is not None else "your text and settings"
        self.storage_info = (f"This browser keeps {what} (saved {self.store.clock(meta['saved_at'])}). "
                             "Forget clears it.")

    @param.depends("run.running", watch=True)
    def _on_running(self):
        if self.run.running:
            self.keeping = True  # Train or Resume: keep again after a Forget
        else:
            self.keep_work()  # Pause (or a stop) saves

    # --- restoring -----------------------------------------------------------------------------------------------------

    async def restore_work(self) -> str | None:
        """Put the kept work back; returns the status line saying what came back (None if nothing did)."""
        if self.store is None:
            return None
        try:
            record = await self.store.get(KEY)
        except StorageError as e:
            self.storage_info = f"Could not read what this browser kept ({sentence(e).rstrip('.')}); training works."
            return None
        if not record:
            return None
        try:
            meta = json.loads(record["meta"])
            if meta.get("version") != RECORD_VERSION:
                raise ValueError(f"record version {meta.get('version')!r}")
            self._restore(meta, record)
        except (tinyrnn.TinyRNNError, ValueError, KeyError, TypeError) as e:
            self.storage_info = f"What this browser kept could not be restored ({e}). Forget clears it."
            return None
        when = self.store.clock(meta["saved_at"])
        self.storage_info = f"This browser keeps your work (saved {when}). Forget clears it."
        if record.get("model") is None:
            return f"Restored your text and settings from {when}. Press Train to start learning the text."
        return (f"Restored the model from {when}, step {self.run.step:,}. Resume continues it; Forget clears what is "
                "kept.")

    def _restore(self, meta: dict, record: dict):
        names = set(settings.FORM_NAMES + settings.SAMPLING_NAMES)
        self.text.text = meta["text"]
        self.form.param.update(**{k: v for k, v in meta["form"].items() if k in names})
        if record.get("model") is None:
            self.samples.restore(meta.get("prime", ""), [])
            return
        checkpoint = tinyrnn.load_checkpoint(record["model"])
        if meta["trainable"]:
            text = meta["model_text"] or meta["text"]
            self.run.install(tinyrnn.Trainer.from_checkpoint(checkpoint, text), text)
        else:
            self.run.hold_sampling_only(checkpoint, record["model"])
        if record.get("best") is not None:
            self.run.model.best = (float(meta["best_val"]), tinyrnn.load_checkpoint(record["best"]))
        self.run.chart_data.load_dict(meta["charts"])
        self.run.best_step = self.run.model.best_step
        self.samples.restore(meta.get("prime", ""), meta.get("milestones", []))

    # --- forgetting ----------------------------------------------------------------------------------------------------

    def forget(self):
        """Clear what this browser keeps; nothing is saved again until the next Train or Resume."""
        if self.store is not None:
            run_soon(self.forget_work())

    async def forget_work(self):
        self.keeping = False
        try:
            await self.store.delete(KEY)
        except StorageError as e:
            self.storage_info = f"Could not clear what this browser keeps ({sentence(e).rstrip('.')})."
            return
        self.storage_info = "This browser keeps nothing of your work now; it saves again when you train."
