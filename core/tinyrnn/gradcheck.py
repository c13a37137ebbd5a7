"""Gradient check: autograd (traced), the fused engine, manual BPTT and centred finite differences must agree.

The relative error of two gradients a, b of one parameter is ‖a − b‖ / max(‖a‖, ‖b‖) over the entries compared
(all entries, or ``n_probes`` random ones per parameter for finite differences on a large model)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import model as model_lib
from .bptt import manual_bptt
from .errors import ConfigError
from .config import SETTINGS, is_number
from .vocab import check_ids

MAX_CHECK_PARAMETERS = 20_000_000  # parameters + h0 entries: each method holds a float64 copy of all of them
MAX_CHECK_CHARACTERS = 100_000  # B × T: every finite difference runs the whole batch twice
PAIRS = ("autograd_vs_manual", "fused_vs_autograd", "fd_vs_autograd", "fd_vs_manual")


@dataclass
class GradCheckReport:
    max_rel_error: dict  # pair name -> worst relative error over all parameters
    per_param: dict  # parameter name (and "h0") -> {pair name -> relative error}
    tolerance_exact: float
    tolerance_fd: float

    @property
    def passed(self) -> bool:
        exact = max(self.max_rel_error["autograd_vs_manual"], self.max_rel_error["fused_vs_autograd"])
        fd = max(self.max_rel_error["fd_vs_autograd"], self.max_rel_error["fd_vs_manual"])
        return exact <= self.tolerance_exact and fd <= self.tolerance_fd

    def summary(self) -> str:
        lines = [f"{pair:>20}: {err:.2e}" for pair, err in self.max_rel_error.items()]
        verdict = "PASS" if self.passed else "FAIL"
        return "\n".join(lines + [f"{verdict} (exact ≤ {self.tolerance_exact:g}, finite differences ≤ {self.tolerance_fd:g})"])


def relative_error(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


def _positive(name, value, upper=None):
    if not is_number(value) or value <= 0 or (upper is not None and value >= upper):
        raise ConfigError(f"{name} must be a number > 0{f' and < {upper:g}' if upper else ''}, got {value!r}")


def _checked_problem(params, inputs, targets, h0, n_probes, cell):
    """The arguments as float64 params, int64 inputs/targets (B, T) and float64 h0 (B, S), or ConfigError."""
    if not isinstance(params, dict) or not params or "b_y" not in params or np.ndim(params["b_y"]) != 1:
        raise ConfigError("params must be a dict of the model's arrays (see init_params), with the output bias b_y (V,)")
    V = np.shape(params["b_y"])[0]
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    if inputs.ndim != 2 or inputs.shape != targets.shape or 0 in inputs.shape:
        raise ConfigError(f"inputs and targets must be (B, T) with B ≥ 1 and T ≥ 1, got {inputs.shape} and {targets.shape}")
    if inputs.size > MAX_CHECK_CHARACTERS:
        raise ConfigError(f"a gradient check takes at most {MAX_CHECK_CHARACTERS:,} characters (B × T), got {inputs.size:,}")
    inputs, targets = check_ids(inputs, V, "inputs"), check_ids(targets, V, "targets")
    model_lib.check_state_shape(params, h0, inputs.shape[0], cell)
    total = sum(int(np.size(v)) for v in params.values()) + int(np.size(h0))
    if total > MAX_CHECK_PARAMETERS:
        raise ConfigError(f"a gradient check takes at most {MAX_CHECK_PARAMETERS:,} parameters; this model has "
                          f"{total:,}; check a smaller model")
    if n_probes is not None and (isinstance(n_probes, bool) or not isinstance(n_probes, (int, np.integer))
                                 or n_probes < 1):
        raise ConfigError(f"n_probes must be None (every entry) or a whole number ≥ 1, got {n_probes!r}")
    params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    return params, inputs, targets, np.array(h0, dtype=np.float64)


def gradient_check(params, inputs, targets, h0, eps=1e-5, n_probes=None, seed=0,
                   tolerance_exact=1e-10, tolerance_fd=1e-6, progress=None, cell="rnn") -> GradCheckReport:
    """Compare the gradient of ``model.loss`` of a ``cell`` model w.r.t. every parameter and the state ``h0``
    four ways, in float64.

    ``n_probes``: None compares every entry by finite differences, else that many random entries per array.
    ``progress(name, index, count)``, if given, is called before each array's finite differences."""
    params, inputs, targets, h0 = _checked_problem(params, inputs, targets, h0, n_probes, cell)
    SETTINGS["seed"].check(seed)
    _positive("eps", eps, 1)
    _positive("tolerance_exact", tolerance_exact)
    _positive("tolerance_fd", tolerance_fd)
    traced = model_lib.loss_and_grads(params, inputs, targets, h0, engine="autograd", cell=cell).grads
    fused = model_lib.loss_and_grads(params, inputs, targets, h0, engine="fused", cell=cell).grads
    manual = manual_bptt(params, inputs, targets, h0, cell=cell).grads
    rng = np.random.default_rng(seed)
    variables = dict(params, h0=h0)

    def loss_at(name, index, value):
        array = variables[name]
        saved = array[index]
        array[index] = value
        try:
            return float(model_lib.evaluate_batch_loss(variables, inputs, targets, variables["h0"], cell))
        finally:
            array[index] = saved

    per_param = {}
    for number, (name, array) in enumerate(variables.items()):
        if progress is not None:
            progress(name, number, len(variables))
        flat_count = array.size
        chosen = np.arange(flat_count) if n_probes is None or n_probes >= flat_count else rng.choice(
            flat_count, size=n_probes, replace=False)
        indices = [np.unravel_index(i, array.shape) for i in chosen]
        fd = np.array([(loss_at(name, ix, array[ix] + eps) - loss_at(name, ix, array[ix] - eps)) / (2 * eps)
                       for ix in indices])
        per_param[name] = {
            "autograd_vs_manual": relative_error(traced[name], manual[name]),
            "fused_vs_autograd": relative_error(fused[name], traced[name]),
            "fd_vs_autograd": relative_error(fd, [traced[name][ix] for ix in indices]),
            "fd_vs_manual": relative_error(fd, [manual[name][ix] for ix in indices]),
        }
    worst = {pair: max(errors[pair] for errors in per_param.values()) for pair in PAIRS}
    return GradCheckReport(worst, per_param, tolerance_exact, tolerance_fd)
