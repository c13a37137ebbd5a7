"""The optional native fast path (tinyrnn.engines.native + the compiled tinyrnn-native package in native/).

Every kernel, for every cell (tanh RNN, GRU, LSTM), is checked against the numpy reference (float64 fused engine,
the traced autograd engine, optim's clipping and Adam) to float32 rounding, on every instruction-set variant this
processor can run; a window against itself bit for bit; its gradient against finite differences of its own loss
(the Trainer on them: tests/test_engines.py). Needs ``pip install ./native`` (the Makefile's setup does it).
"""

import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyrnn_native  # noqa: E402,F401 - make setup installs it (pip install ./native); without it these tests fail, never skip

import tinyrnn  # noqa: E402
from tinyrnn import optim  # noqa: E402
from tinyrnn.engines import flat as flat_module  # noqa: E402
from tinyrnn.engines import native  # noqa: E402
from tinyrnn.cells import CELL_NAMES  # noqa: E402

from helpers import (assert_close, assert_window_matches_the_numpy_reference, flat_loss_and_grad,  # noqa: E402
                     flat_problem)

VARIANTS = {1: "base", 2: "avx2", 3: "avx512"}


def runnable_variants():
    lib = native.library()
    found = {v for v in VARIANTS if lib.tinyrnn_select(v) == v}
    lib.tinyrnn_select(0)
    return sorted(found)


@pytest.fixture(params=runnable_variants(), ids=lambda v: VARIANTS[v])
def variant(request):
    lib = native.library()
    assert lib.tinyrnn_select(request.param) == request.param
    assert lib.tinyrnn_variant().decode() == VARIANTS[request.param]
    yield request.param
    lib.tinyrnn_select(0)


CELLS = CELL_NAMES
SHAPES = [(65, 128, 1, 25), (65, 128, 32, 25), (11, 13, 3, 7), (16, 16, 1, 1), (100, 40, 17, 4), (33, 21, 2, 3)]
NATIVE = native.NATIVE


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("V,H,B,T", SHAPES)
def test_window_loss_and_gradient_match_the_numpy_reference(variant, cell, V, H, B, T):
    """Forward (embedding, time loop, output layer, softmax) and the whole BPTT, every cell, every variant."""
    assert_window_matches_the_numpy_reference(NATIVE, cell, V, H, B, T)


@pytest.mark.parametrize("cell", CELLS)
def test_a_window_is_repeatable_bit_for_bit_and_every_variant_agrees(cell):
    """The same window twice gives the same bits; the variants (other widths, FMA) agree to float32 rounding."""
    layout, params, flat, inputs, targets, h0 = flat_problem(40, 48, 5, 9, seed=8, cell=cell)
    lib, results = native.library(), {}
    try:
        for v in runnable_variants():
            lib.tinyrnn_select(v)
            first, again = (flat_loss_and_grad(NATIVE, layout, flat, inputs, targets, h0) for _ in range(2))
            assert first.loss == again.loss
            for name in ("grad", "h_last", "dh0"):
                np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
            results[v] = first
    finally:
        lib.tinyrnn_select(0)
    base = results[1]
    for other in results.values():
        assert other.loss == pytest.approx(base.loss, rel=1e-6)
        assert_close(other.grad, base.grad, 2e-5)
        assert_close(other.h_last, base.h_last, 2e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_the_gradient_is_the_derivative_of_the_native_loss(cell):
    """Centred differences of the native (float32) loss along random directions."""
    layout, _, flat, inputs, targets, h0 = flat_problem(17, 24, 3, 6, seed=3, cell=cell)
    grad = flat_loss_and_grad(NATIVE, layout, flat, inputs, targets, h0).grad.astype(np.float64)
    rng = np.random.default_rng(0)
    for _ in range(6):
        direction = rng.standard_normal(flat.size)
        direction /= np.linalg.norm(direction)
        eps = 1e-2

        def loss_at(s):
            moved = (flat + s * eps * direction).astype(np.float32)
            return flat_loss_and_grad(NATIVE, layout, moved, inputs, targets, h0).loss

        numeric = (loss_at(1) - loss_at(-1)) / (2 * eps)
        assert abs(numeric - grad @ direction) <= 2e-3 * max(abs(numeric), np.linalg.norm(grad))


def test_the_state_carries_across_windows_like_one_long_window():
    """h_last of one window started from its state continues the sequence: two halves = the whole (LSTM [h|c])."""
    layout, _, flat, inputs, targets, h0 = flat_problem(20, 16, 3, 10, seed=9, cell="lstm")
    h0 = h0.astype(np.float32)
    whole = native.Window(layout, inputs, targets, h0)
    first = native.Window(layout, inputs[:, :4], targets[:, :4], h0)
    total = first.forward(flat)
    second = native.Window(layout, inputs[:, 4:], targets[:, 4:], first.h_last)
    total += second.forward(flat)
    assert total == pytest.approx(whole.forward(flat), rel=1e-6)
    assert_close(second.h_last, whole.h_last, 1e-6)


def native_gemm(a, b) -> np.ndarray:
    """``a @ b`` for float32 a (M, K), b (K, N) with the kernels' product."""
    (M, K), N = a.shape, b.shape[1]
    out = np.zeros((M, N), np.float32)
    if out.size and K:
        at = native._at
        native.library().tinyrnn_gemm(M, N, K, at(a), K, 1, at(b), N, at(out), N, 0)
    return out


@settings(max_examples=40, deadline=None)
@given(M=st.integers(1, 40), N=st.integers(1, 70), K=st.integers(0, 40), seed=st.integers(0, 2**32 - 1))
def test_products_match_numpy_for_every_shape(M, N, K, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((M, K)).astype(np.float32), rng.standard_normal((K, N)).astype(np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    bound = 4e-7 * (K + 2) * (np.abs(a).astype(np.float64) @ np.abs(b)) + 1e-30
    assert np.all(np.abs(native_gemm(a, b) - ref) <= bound)


def assert_adam_is_optims_adam_bit_for_bit(kernels, cell):
    """Clipping by value, the global norm's scale and Adam over the flat buffer = optim's clip_by_value,
    clip_by_global_norm's scaling and Adam.compute on the per-parameter arrays, exactly (float32)."""
    layout, params, flat, *_ = flat_problem(65, 32, 1, 1, seed=5, cell=cell)
    params32 = layout.views(flat)
    rng = np.random.default_rng(1)
    adam = optim.Adam(2e-3)
    state = {"t": 6, **{f"{s}/{k}": rng.standard_normal(p.shape).astype(np.float32) ** (2 if s == "v" else 1)
                        for s in "mv" for k, p in params32.items()}}
    grads = {k: rng.standard_normal(p.shape).astype(np.float32) for k, p in params32.items()}
    step = flat_module.adam_step_size(adam.lr, adam.beta1, adam.beta2, 7)
    for clip_value, scale in ((None, 1.0), (None, 0.3), (0.5, 1.0), (0.5, 0.7)):
        clipped = grads if clip_value is None else optim.clip_by_value(grads, clip_value)
        ref_params, ref_state = adam.compute(params32, {k: g * np.float32(scale) for k, g in clipped.items()}, state)
        new = kernels.adam(flat, layout.flatten(grads), layout.flatten(state, "m/"), layout.flatten(state, "v/"),
                           scale, adam.beta1, adam.beta2, step, adam.eps, clip_value=clip_value)
        assert new.finite
        for k in layout.shapes:
            np.testing.assert_array_equal(layout.views(new.params)[k], ref_params[k])
            np.testing.assert_array_equal(layout.views(new.m, "m/")["m/" + k], ref_state["m/" + k])
            np.testing.assert_array_equal(layout.views(new.v, "v/")["v/" + k], ref_state["v/" + k])
    bad = flat.copy()
    bad[3] = np.inf
    assert not kernels.adam(bad, flat, flat, flat * flat, 1.0, 0.9, 0.999, 1e-3, 1e-8).finite
    nan_grad = flat.copy()
    nan_grad[5] = np.nan  # clipping by value keeps NaN (np.clip does): the step is refused, not hidden
    assert not kernels.adam(flat, nan_grad, flat, flat * flat, 1.0, 0.9, 0.999, 1e-3, 1e-8, clip_value=1.0).finite


def assert_sum_squares_is_the_global_norm(kernels, cell):
    rng = np.random.default_rng(2)
    layout = flat_module.FlatLayout(128, 65, cell)
    grads = {k: rng.standard_normal(s).astype(np.float32) for k, s in layout.shapes.items()}
    flat = layout.flatten(grads)
    for clip_value in (None, 0.5):
        clipped = grads if clip_value is None else optim.clip_by_value(grads, clip_value)
        ref = sum(float(np.sum(g.astype(np.float64) ** 2)) for g in clipped.values())
        assert math.sqrt(kernels.sum_squares(flat, clip_value)) == pytest.approx(math.sqrt(ref), rel=1e-6)
        assert math.sqrt(ref) == pytest.approx(optim.global_norm(clipped), rel=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_flat_adam_with_clipping_is_optims_adam_bit_for_bit(variant, cell):
    assert_adam_is_optims_adam_bit_for_bit(NATIVE, cell)


@pytest.mark.parametrize("cell", CELLS)
def test_sum_squares_is_the_global_norm(cell):
    assert_sum_squares_is_the_global_norm(NATIVE, cell)


def test_every_cell_is_supported():
    assert all(NATIVE.supports(cell) for cell in CELLS) and not NATIVE.supports("transformer")


@pytest.mark.parametrize("cell", CELLS)
def test_bad_windows_are_refused_before_any_kernel_runs(cell):
    layout, _, flat, inputs, targets, h0 = flat_problem(11, 8, 2, 4, cell=cell)
    too_big = targets.copy()
    too_big[0, 1] = 11
    with pytest.raises(IndexError, match=r"ids must lie in \[0, 11\)"):
        native.Window(layout, inputs, too_big, h0)
    negative = inputs.copy()
    negative[1, 2] = -1
    with pytest.raises(IndexError):
        native.Window(layout, negative, targets, h0)
    for state in (h0[:1], np.zeros((2, 3 * 8))):  # too few streams; a state as wide as no cell's
        with pytest.raises(ValueError, match="h0 of shape"):
            native.Window(layout, inputs, targets, state)
    window = native.Window(layout, inputs, targets, h0)
    for bad in (flat[:-1], flat.astype(np.float64)):
        with pytest.raises(ValueError, match="parameters"):
            window.forward(bad)


# --- the package -------------------------------------------------------------------------------------------


def test_without_the_package_asking_for_it_says_how_to_install(monkeypatch):
    monkeypatch.setattr(native, "_LIB", None)
    monkeypatch.setitem(sys.modules, "tinyrnn_native", None)  # as if not installed
    assert not native.available()
    with pytest.raises(native.NativeKernelsUnavailable, match=r"pip install 'tinyrnn\[native\]'"):
        native.use_native_kernels()
    assert not native.enabled()


def test_the_optional_extra_is_a_platform_wheel_that_plugs_into_the_pure_one(tmp_path):
    """tinyrnn-native builds as a platform wheel; installed beside the pure tinyrnn wheel, outside the source tree,
    a Trainer uses it without an opt-in; tinyrnn's own wheel stays pure (tests/test_packaging.py)."""
    import subprocess
    from pathlib import Path

    import os

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the built wheels, not the source tree
    wheels = tmp_path / "dist"
    for project in (root / "native", root):
        subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(wheels), str(project)],
                       check=True, capture_output=True, timeout=600, env=env)
    (native_wheel,) = wheels.glob("tinyrnn_native-*.whl")
    assert not native_wheel.name.endswith("-none-any.whl")  # compiled for this platform
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300,
                   env=env)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", *map(str, wheels.glob("*.whl"))], check=True,
                   timeout=600, env=env)
    code = ("import tinyrnn; from tinyrnn.engines import native as nk; assert 'site-packages' in nk.__file__; "
            "t = tinyrnn.Trainer(tinyrnn.default_corpus(), tinyrnn.TrainConfig(hidden_size=16, batch_size=2)); "
            "print(t.engine_choice.backend); assert t.engine_choice.engine == 'kernel'; t.run(3); "
            "print(t.history[-1].train_loss < t.history[0].train_loss + 1)")
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("native kernels (") and result.stdout.strip().endswith("True")
