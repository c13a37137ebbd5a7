"""The current model: a ``tinyrnn.Trainer`` training on its text, or an uploaded checkpoint that can only sample
(its vocabulary does not cover the current text). No UI here."""

from __future__ import annotations

import tinyrnn


class ModelSlot:
    """Holds at most one model. ``trainer`` trains on ``text``; a sampling-only model is ``checkpoint`` (a
    ``tinyrnn.Checkpoint``) with the bytes it was loaded from, so Download hands back the same file."""

    def __init__(self):
        self.clear()

    def clear(self):
        self.best = None  # (validation loss, tinyrnn.Checkpoint) of the trainer's best validation so far
        self._best_file = None  # (the best Checkpoint, its file's bytes): saved every few seconds, changed rarely
        self.trainer = None
        self.text: str | None = None
        self.checkpoint = None
        self.checkpoint_data: bytes | None = None

    def hold_trainer(self, trainer, text: str):
        self.clear()
        self.trainer, self.text = trainer, text

    def hold_sampling_only(self, checkpoint, data: bytes):
        self.clear()
        self.checkpoint, self.checkpoint_data = checkpoint, bytes(data)

    @property
    def has_model(self) -> bool:
        return self.trainer is not None or self.checkpoint is not None

    @property
    def trainable(self) -> bool:
        return self.trainer is not None

    @property
    def _record(self):
        """The trainer, else the uploaded checkpoint (both carry config, params, vocab and history), else None."""
        return self.trainer if self.trainer is not None else self.checkpoint

    @property
    def config(self):
        """The model's ``TrainConfig``, or None without a model."""
        return None if self._record is None else self._record.config

    @property
    def params(self) -> dict | None:
        """The model's parameters (never modified here), or None without a model."""
        return None if self._record is None else self._record.params

    @property
    def vocab(self):
        """The model's ``tinyrnn.Vocabulary``, or None without a model."""
        return None if self._record is None else self._record.vocab

    @property
    def history(self) -> list:
        return [] if self._record is None else self._record.history

    def progress(self) -> tuple[int, int, float]:
        """(step, characters seen, training seconds) of the model."""
        if self.trainer is not None:
            t = self.trainer
            return int(t.step_count), int(t.chars_seen), float(t.elapsed)
        p = (self.checkpoint.progress or {}) if self.checkpoint is not None else {}
        return int(p.get("step", 0)), int(p.get("chars_seen", 0)), float(p.get("elapsed", 0.0))

    def trainer_for(self, text: str):
        """A trainer continuing the sampling-only model on ``text``; raises ``tinyrnn.TinyRNNError`` if it cannot."""
        return tinyrnn.Trainer.from_checkpoint(self.checkpoint, text)

    def note_validation(self, val_loss: float):
        """Right after a trainer step that validated: keep the trainer's state if it is the best so far."""
        if self.trainer is not None and (self.best is None or val_loss < self.best[0]):
            self.best = (val_loss, self.trainer.state())

    @property
    def best_step(self) -> int | None:
        return None if self.best is None else int(self.best[1].progress["step"])

    def best_checkpoint_bytes(self) -> bytes | None:
        """The checkpoint file of the best-validation model, or None if there is none."""
        if self.best is None:
            return None
        if self._best_file is None or self._best_file[0] is not self.best[1]:
            self._best_file = (self.best[1], tinyrnn.checkpoint_bytes(self.best[1]))
        return self._best_file[1]

    def checkpoint_bytes(self) -> bytes | None:
        """The model's checkpoint file, or None without a model."""
        if self.trainer is not None:
            return tinyrnn.checkpoint_bytes(self.trainer.state())
        return self.checkpoint_data

    def sample(self, length: int, prime: str, temperature: float) -> str:
        if self.trainer is not None:
            return self.trainer.sample(length, prime=prime, temperature=temperature)
        ckpt = self.checkpoint
        return tinyrnn.sample(ckpt.params, ckpt.vocab, length, prime=prime, temperature=temperature,
                              cell=ckpt.config.cell)
