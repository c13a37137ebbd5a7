"""Optimisers (SGD with momentum, Adagrad, Adam) and gradient clipping, as pure updates over params dicts.

An optimiser's state is a flat dict of arrays and numbers, so it saves into a checkpoint as it is.
``compute(params, grads, state)`` returns (new_params, new_state) and changes nothing, so a caller can
check the result for NaN before keeping it; ``update`` is the everyday form that keeps the new state.
"""

from __future__ import annotations

import math

import numpy as np

from . import ops
from .config import SETTINGS, is_number
from .errors import ConfigError

OPTIMIZERS = SETTINGS["optimizer"].choices  # the settings table is the one list of names
LR_FLOOR = 0.1  # a decayed learning rate ends at this fraction of the starting one (nanoGPT's min_lr = lr / 10)


def scheduled_lr(lr: float, decay_steps: int | None, step: int) -> float:
    """The learning rate for update number ``step`` (0-based) of a run that starts at ``lr``: constant when
    ``decay_steps`` is None, else half a cosine from ``lr`` down to ``lr × LR_FLOOR`` over ``decay_steps`` updates,
    then ``lr × LR_FLOOR``."""
    if decay_steps is None:
        return lr
    progress = min(step, decay_steps) / decay_steps
    return lr * (LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress)))


def global_norm(grads: dict) -> float:
    """sqrt of the sum of squares of every gradient entry."""
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))


def clip_by_global_norm(grads: dict, max_norm: float):
    """Scale all gradients together so that their global norm is at most ``max_norm``: (grads, norm before)."""
    if not is_number(max_norm) or max_norm <= 0:
        raise ConfigError(f"max_norm must be a number > 0, got {max_norm!r}")
    norm = global_norm(grads)
    if not math.isfinite(norm) or norm <= max_norm:
        return grads, norm
    scale = max_norm / norm
    return {k: g * np.asarray(scale, dtype=g.dtype) for k, g in grads.items()}, norm


def clip_by_value(grads: dict, value: float) -> dict:
    """Clip every gradient entry into [-value, value] (min-char-rnn's choice)."""
    if not is_number(value) or value <= 0:
        raise ConfigError(f"value must be a number > 0, got {value!r}")
    return {k: np.clip(g, -value, value) for k, g in grads.items()}


class Optimizer:
    name = ""
    slots: tuple = ()  # per-parameter state arrays, stored as "<slot>/<param name>"

    def __init__(self, lr: float):
        self.lr = float(SETTINGS["lr"].check(lr))  # numpy scalars are numbers too
        self.state: dict = {}

    def compute(self, params: dict, grads: dict, state: dict):
        raise NotImplementedError

    def update(self, params: dict, grads: dict) -> dict:
        """New params after one step (``params`` is not modified); the optimiser keeps its new state."""
        new_params, self.state = self.compute(params, grads, self.state)
        return new_params

    def state_dict(self) -> dict:
        return dict(self.state)

    def load_state_dict(self, state: dict) -> None:
        self.state = dict(state)

    def hyperparameters(self) -> dict:
        return {"name": self.name, "lr": self.lr}


def _in_unit_interval(value) -> bool:
    return is_number(value) and 0 <= value < 1


def _slot(state, key, like):
    return state.get(key, np.zeros_like(like))


class SGD(Optimizer):
    """v ← μ v − lr g;  θ ← θ + v."""

    name = "sgd"
    slots = ("v",)

    def __init__(self, lr: float, momentum: float = 0.9):
        super().__init__(lr)
        if not _in_unit_interval(momentum):
            raise ConfigError(f"momentum must lie in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)

    def compute(self, params, grads, state):
        new_params, new_state = {}, {}
        for k, p in params.items():
            v = self.momentum * _slot(state, "v/" + k, p) - self.lr * grads[k]
            new_state["v/" + k] = v.astype(p.dtype, copy=False)
            new_params[k] = p + new_state["v/" + k]
        return new_params, new_state

    def hyperparameters(self):
        return {**super().hyperparameters(), "momentum": self.momentum}


class Adagrad(Optimizer):
    """s ← s + g²;  θ ← θ − lr g / sqrt(s + ε)  (min-char-rnn's optimiser)."""

    name = "adagrad"
    slots = ("s",)
    eps = 1e-8

    def compute(self, params, grads, state):
        new_params, new_state = {}, {}
        for k, p in params.items():
            g = grads[k]
            s = _slot(state, "s/" + k, p) + g * g
            new_state["s/" + k] = s
            new_params[k] = p - self.lr * g / np.sqrt(s + self.eps)
        return new_params, new_state


class Adam(Optimizer):
    """m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;  θ ← θ − lr m̂ / (sqrt(v̂) + ε), bias-corrected."""

    name = "adam"
    slots = ("m", "v")

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(lr)
        if not (_in_unit_interval(beta1) and _in_unit_interval(beta2)):
            raise ConfigError(f"Adam's beta1 and beta2 must be numbers in [0, 1), got {beta1!r} and {beta2!r}")
        if not is_number(eps) or not 0 < eps < 1:
            raise ConfigError(f"Adam's eps must be a number in (0, 1), got {eps!r}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def compute(self, params, grads, state):
        t = int(state.get("t", 0)) + 1
        b1, b2 = self.beta1, self.beta2
        step = self.lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        new_params, new_state = {}, {"t": t}
        for k, p in params.items():
            g, m, v = grads[k], _slot(state, "m/" + k, p), _slot(state, "v/" + k, p)
            new_params[k], m, v = ops.adam_update(p, g, m, v, b1, b2, step, self.eps)
            new_state["m/" + k], new_state["v/" + k] = m, v
        return new_params, new_state

    def hyperparameters(self):
        return {**super().hyperparameters(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


def make_optimizer(name: str, lr: float) -> Optimizer:
    """An optimiser by name: one of ``OPTIMIZERS``."""
    SETTINGS["optimizer"].check(name)
    return {"sgd": SGD, "adagrad": Adagrad, "adam": Adam}[name](lr)
