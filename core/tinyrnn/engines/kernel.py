"""The kernel engine: a whole window per kernel call on one flat float32 buffer (``flat.FlatLayout``), then the
global norm, clipping and Adam, each one call. Any kernel set that follows ``flat.py``'s protocol runs it: the
native one (``native``), the browser's (``wasm``), or either split across Web Workers (``sharded``).

The numpy reference engine trains the same model to float32 rounding (tests/test_engines.py).
"""

from __future__ import annotations

import inspect
import math

import numpy as np

from .flat import FlatLayout, adam_step_size
from .base import StepResult


def supports(kernels, cell: str) -> bool:
    """Whether ``kernels`` has whole-window kernels for ``cell`` (a kernel set without ``supports``: the tanh RNN)."""
    ask = getattr(kernels, "supports", None)
    return bool(ask(cell)) if ask is not None else cell == "rnn"


def clips_by_value(kernels) -> bool:
    """Whether the kernel set's ``adam`` takes ``clip_value`` (clipping every gradient entry before the update)."""
    return "clip_value" in inspect.signature(kernels.adam).parameters


def kernel_problem(config, kernels) -> str:
    """Why ``config`` cannot train on ``kernels``, in a few words; "" when it can."""
    if kernels is None:
        return "no kernels here"
    if config.dtype != "float32":
        return f"the kernels compute float32, not {config.dtype}"
    if config.engine != "fused":
        return f"the {config.engine} engine was asked for"
    if config.optimizer != "adam":
        return f"the kernels have Adam, not {config.optimizer}"
    if not supports(kernels, config.cell):
        return f"no {config.cell.upper()} kernels here"
    if config.clip_value is not None and not clips_by_value(kernels):
        return "these kernels do not clip by value"
    return ""


class KernelEngine:
    """Parameters and Adam's two slots as three flat float32 buffers (and Adam's step count ``t``); ``params()``
    and ``optimizer_state()`` are views into them."""

    def __init__(self, choice, model_config, config, optimizer, kernels, params: dict):
        self.choice, self.optimizer, self.kernels = choice, optimizer, kernels
        self.layout = FlatLayout.of(model_config)
        self.clip_norm, self.clip_value = config.clip_norm, config.clip_value
        self.load(params, {})

    # --- storage ---------------------------------------------------------------------------------------------
    def load(self, params: dict, optimizer_state: dict) -> None:
        m, v = (f"{slot}/" for slot in self.optimizer.slots)  # Adam's two slots, named by optim.Adam
        self.flat = self.layout.flatten(params)
        self.m, self.v = self.layout.flatten(optimizer_state, m), self.layout.flatten(optimizer_state, v)
        self.t = int(optimizer_state.get("t", 0))

    def params(self) -> dict:
        return self.layout.views(self.flat)

    def optimizer_state(self) -> dict:
        if self.t == 0:  # as optim.Adam before its first step
            return {}
        m, v = (f"{slot}/" for slot in self.optimizer.slots)
        return {"t": self.t, **self.layout.views(self.m, m), **self.layout.views(self.v, v)}

    # --- one step --------------------------------------------------------------------------------------------
    def step(self, inputs, targets, state):
        inputs, targets = np.asarray(inputs), np.asarray(targets)
        scale = 1.0 / max(inputs.size, 1)
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite values are reported, never committed
            window = self.kernels.window(self.layout, inputs, targets, np.asarray(state, np.float32), scale)
            loss = float(window.forward(self.flat)) * scale
            grad = window.backward(self.flat)
            norm = math.sqrt(self.kernels.sum_squares(grad))
            h_last = window.h_last
            if not (math.isfinite(loss) and math.isfinite(norm)):
                return StepResult(loss, norm, h_last, False)
            new = self._adam(grad, norm)
        if new.finite:
            self.flat, self.m, self.v, self.t = new.params, new.m, new.v, self.t + 1
        return StepResult(loss, norm, h_last, bool(new.finite))

    def _adam(self, grad, norm: float):
        """Clipping (by value, then the global norm's ``scale``) and one Adam step, in one kernel call."""
        opt, t = self.optimizer, self.t + 1
        scale = 1.0
        if self.clip_norm is not None and norm > self.clip_norm:
            if self.clip_value is not None:  # the norm of the clipped gradient is what the clip bounds
                norm = math.sqrt(self.kernels.sum_squares(np.clip(grad, -self.clip_value, self.clip_value)))
            if norm > self.clip_norm:
                scale = self.clip_norm / norm
        args = (self.flat, grad, self.m, self.v, scale, opt.beta1, opt.beta2,
                adam_step_size(opt.lr, opt.beta1, opt.beta2, t), opt.eps)
        if self.clip_value is not None:
            return self.kernels.adam(*args, clip_value=self.clip_value)
        return self.kernels.adam(*args)
