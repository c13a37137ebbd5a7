"""The reference engine: numpy + autograd (``model.loss_and_grads``: the traced or the fused engine), then the
clipping and the optimiser of ``optim`` over params dicts. Every cell, dtype and optimiser; every other engine is
tested against it."""

from __future__ import annotations

import math

import numpy as np

from .. import model as model_lib
from ..optim import clip_by_global_norm, clip_by_value, global_norm
from .threads import blas_threads


class ReferenceEngine:
    """The parameters and the optimiser's state as dicts of arrays (``optim``'s pure updates replace them)."""

    def __init__(self, choice, model_config, config, optimizer, params: dict):
        self.choice, self.optimizer, self.config = choice, optimizer, config
        self.load(params, {})

    def load(self, params: dict, optimizer_state: dict) -> None:
        self._params = {k: np.array(v, copy=True) for k, v in params.items()}
        self._state = {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v
                       for k, v in optimizer_state.items()}

    def params(self) -> dict:
        return dict(self._params)

    def optimizer_state(self) -> dict:
        return dict(self._state)

    def step(self, inputs, targets, state):
        from . import StepResult

        cfg = self.config
        with blas_threads(), np.errstate(over="ignore", invalid="ignore"):  # non-finite values: never committed
            result = model_lib.loss_and_grads(self._params, inputs, targets, state, cfg.engine, cfg.cell)
            grads = {k: g for k, g in result.grads.items() if k != "h0"}
            norm = global_norm(grads)
            if not (math.isfinite(result.loss) and math.isfinite(norm)):
                return StepResult(result.loss, norm, result.h_last, False)
            if cfg.clip_value is not None:
                grads = clip_by_value(grads, cfg.clip_value)
            if cfg.clip_norm is not None:
                grads, _ = clip_by_global_norm(grads, cfg.clip_norm)
            new_params, new_state = self.optimizer.compute(self._params, grads, self._state)
        finite = all(np.isfinite(p).all() for p in new_params.values())
        if finite:
            self._params, self._state = new_params, new_state
        return StepResult(result.loss, norm, result.h_last, finite)
