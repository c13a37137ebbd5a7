"""Keeping the work across visits: the text, the form, the model (the same checkpoint bytes as Download), the best
model and the charts, saved to a ``storage`` store on their own -- every few seconds while training, on Pause and
when the tab is hidden -- and restored when the page is next ready. No Bokeh here."""

from __future__ import annotations

import json
import time

import param

import tinyrnn

from . import settings
from .lifecycle import ModelLifeCycle
from .render import sentence
from .storage import StorageError, run_soon

KEY = "work"
RECORD_VERSION = 1
SAVE_EVERY = 5.0  # seconds between saves while training (more if saving is slow: at most a tenth of the time)


class KeptWork(ModelLifeCycle):
    """The session's work, kept in ``store`` (a ``storage.MemoryStore``/``IndexedDBStore``; None: not kept)."""

    storage_info = param.String(default="", doc="What this browser keeps of the work, or why it could not.")

    def __init__(self, store=None, **params):
        self.store = store
        super().__init__(**params)
        self._keeping = True  # False after Forget, until the next Train or Resume
        self._last_save = time.perf_counter()
        self._save_cost = 0.0

    # --- saving ------------------------------------------------------------------------------------------------------

    def keep_due(self) -> bool:
        return (self.store is not None and self._keeping
                and time.perf_counter() - self._last_save >= max(SAVE_EVERY, 10 * self._save_cost))

    def keep_work(self):
        """Save the work now (in the background: the store answers later)."""
        if self.store is None or not self._keeping or not self.ready:
            return
        started = time.perf_counter()
        record = self.work_record()
        self._last_save = time.perf_counter()
        self._save_cost = self._last_save - started
        run_soon(self._put(record))

    def work_record(self) -> dict:
        """{"meta": JSON text, "model": checkpoint bytes or None, "best": checkpoint bytes or None}."""
        step, _, _ = self.model.progress()
        best = self.model.best
        meta = {
            "version": RECORD_VERSION, "saved_at": time.time(), "step": step, "text": self.text,
            "model_text": self.model.text if self.model.text not in (None, self.text) else None,
            "trainable": self.model.trainable, "best_val": None if best is None else best[0],
            "form": self.form_values(settings.FORM_NAMES + settings.SAMPLING_NAMES), "prime": self.prime,
            "charts": self.chart_data.to_dict(),
        }
        return {"meta": json.dumps(meta), "model": self.model.checkpoint_bytes(),
                "best": self.model.best_checkpoint_bytes()}

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

    def _start(self, new_model: bool):
        super()._start(new_model)
        self._keeping = True

    @param.depends("running", watch=True)
    def _keep_on_pause(self):
        if not self.running:
            self.keep_work()

    # --- restoring -----------------------------------------------------------------------------------------------------

    def mark_ready(self):
        """Ready once the kept work (if any) is back: restore first, so that a click cannot race the restore."""
        if self.ready or self.store is None:
            super().mark_ready()
            return
        run_soon(self._restore_then_ready())

    async def _restore_then_ready(self):
        await self.start_workers()  # first: a restored model then trains on every core too
        line = await self.restore_work()
        super().mark_ready()
        if line:
            self.status = line

    async def restore_work(self) -> str | None:
        """Put the kept work back; returns the status line saying what came back (None if nothing did)."""
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
        return f"Restored the model from {when}, step {self.step:,}. Resume continues it; Forget clears what is kept."

    def _restore(self, meta: dict, record: dict):
        names = set(settings.FORM_NAMES + settings.SAMPLING_NAMES)
        self.text = meta["text"]
        self.param.update(prime=meta.get("prime", ""), **{k: v for k, v in meta["form"].items() if k in names})
        if record.get("model") is None:
            return
        checkpoint = tinyrnn.load_checkpoint(record["model"])
        if meta["trainable"]:
            text = meta["model_text"] or meta["text"]
            self._install_trainer(tinyrnn.Trainer.from_checkpoint(checkpoint, text), text)
        else:
            self.model.hold_sampling_only(checkpoint, record["model"])
            self._show_model()
        if record.get("best") is not None:
            self.model.best = (float(meta["best_val"]), tinyrnn.load_checkpoint(record["best"]))
        self.chart_data.load_dict(meta["charts"])
        self.param.update(best_step=self.model.best_step, status="")
        self._text_changed()

    # --- forgetting ----------------------------------------------------------------------------------------------------

    def forget(self):
        """Clear what this browser keeps; nothing is saved again until the next Train or Resume."""
        if self.store is not None:
            run_soon(self.forget_work())

    async def forget_work(self):
        self._keeping = False
        try:
            await self.store.delete(KEY)
        except StorageError as e:
            self.storage_info = f"Could not clear what this browser keeps ({sentence(e).rstrip('.')})."
            return
        self.storage_info = "This browser keeps nothing of your work now; it saves again when you train."
