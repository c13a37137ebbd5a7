"""The optional native fast path (tinyrnn.native_kernels + the compiled tinyrnn-native package in native/).

Every kernel is checked against the numpy reference (float64 fused engine, the traced autograd engine, optim.Adam)
to float32 rounding, on every instruction-set variant this processor can run; its gradient against finite
differences of its own loss (the Trainer on them: tests/test_engines.py). Needs ``pip install ./native`` (the
Makefile's setup does it).
"""

import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyrnn_native  # noqa: E402,F401 - make setup installs it (pip install ./native); without it these tests fail, never skip

import tinyrnn  # noqa: E402
from tinyrnn import model, native_kernels, optim  # noqa: E402

from helpers import assert_close, flat_problem, window_loss_and_grad  # noqa: E402

VARIANTS = {1: "base", 2: "avx2", 3: "avx512"}


def runnable_variants():
    lib = native_kernels.library()
    found = {v for v in VARIANTS if lib.tinyrnn_select(v) == v}
    lib.tinyrnn_select(0)
    return sorted(found)


@pytest.fixture(params=runnable_variants(), ids=lambda v: VARIANTS[v])
def variant(request):
    lib = native_kernels.library()
    assert lib.tinyrnn_select(request.param) == request.param
    assert lib.tinyrnn_variant().decode() == VARIANTS[request.param]
    yield request.param
    lib.tinyrnn_select(0)


@pytest.mark.parametrize("V,H,B,T", [(65, 128, 1, 25), (65, 128, 32, 25), (11, 13, 3, 7), (16, 16, 1, 1),
                                     (100, 40, 17, 4), (33, 200, 2, 3)])
def test_window_loss_and_gradient_match_the_numpy_reference(variant, V, H, B, T):
    layout, params, flat, inputs, targets, h0 = flat_problem(V, H, B, T, seed=V + H + B + T)
    result = window_loss_and_grad(flat, native_kernels.Window(layout, inputs, targets, h0.astype(np.float32)))
    for engine in ("fused", "autograd"):  # float64; the traced engine is the independent reference
        ref = model.loss_and_grads(params, inputs, targets, h0, engine=engine)
        assert abs(result.loss - ref.loss) <= 2e-6 * abs(ref.loss)
        grads = layout.views(result.grad)
        for name in tinyrnn.PARAM_NAMES:  # numpy's own float32 engine is up to 6e-5 off here
            assert grads[name].shape == ref.grads[name].shape
            assert_close(grads[name], ref.grads[name], 2e-4)
        assert_close(result.dh0, ref.grads["h0"], 2e-4)
        assert_close(result.h_last, ref.h_last, 2e-4)  # numpy float32: up to 1.1e-4


def test_the_gradient_is_the_derivative_of_the_native_loss():
    """Centred differences of the native (float32) loss along random directions."""
    layout, _, flat, inputs, targets, h0 = flat_problem(17, 24, 3, 6, seed=3)
    h0 = h0.astype(np.float32)
    grad = window_loss_and_grad(flat, native_kernels.Window(layout, inputs, targets, h0)).grad.astype(np.float64)
    rng = np.random.default_rng(0)
    for _ in range(6):
        direction = rng.standard_normal(flat.size)
        direction /= np.linalg.norm(direction)
        eps = 1e-2

        def loss_at(s):
            moved = (flat + s * eps * direction).astype(np.float32)
            return window_loss_and_grad(moved, native_kernels.Window(layout, inputs, targets, h0)).loss

        numeric = (loss_at(1) - loss_at(-1)) / (2 * eps)
        assert abs(numeric - grad @ direction) <= 2e-3 * max(abs(numeric), np.linalg.norm(grad))


@settings(max_examples=40, deadline=None)
@given(M=st.integers(1, 40), N=st.integers(1, 70), K=st.integers(0, 40), seed=st.integers(0, 2**32 - 1))
def test_products_match_numpy_for_every_shape(M, N, K, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((M, K)).astype(np.float32), rng.standard_normal((K, N)).astype(np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    bound = 4e-7 * (K + 2) * (np.abs(a).astype(np.float64) @ np.abs(b)) + 1e-30
    assert np.all(np.abs(native_kernels.gemm(a, b) - ref) <= bound)


def test_flat_adam_is_numpys_adam_bit_for_bit(variant):
    """Clipping scale and Adam over the flat buffer = optim.Adam on the per-parameter arrays, exactly."""
    layout, params, flat, *_ = flat_problem(65, 32, 1, 1, seed=5)
    params32 = layout.views(flat)
    rng = np.random.default_rng(1)
    adam = optim.Adam(2e-3)
    state = {"t": 6, **{f"{s}/{k}": rng.standard_normal(p.shape).astype(np.float32) ** (2 if s == "v" else 1)
                        for s in "mv" for k, p in params32.items()}}
    grads = {k: rng.standard_normal(p.shape).astype(np.float32) for k, p in params32.items()}
    for scale in (1.0, 0.3):
        ref_params, ref_state = adam.compute(params32, {k: g * np.float32(scale) for k, g in grads.items()}, state)
        new = native_kernels.flat_adam(flat, layout.flatten(grads), layout.flatten(state, "m/"),
                                       layout.flatten(state, "v/"), 7, adam.lr, adam.beta1, adam.beta2, adam.eps,
                                       scale)
        assert new.finite
        for k in tinyrnn.PARAM_NAMES:
            np.testing.assert_array_equal(layout.views(new.params)[k], ref_params[k])
            np.testing.assert_array_equal(layout.views(new.m, "m/")["m/" + k], ref_state["m/" + k])
            np.testing.assert_array_equal(layout.views(new.v, "v/")["v/" + k], ref_state["v/" + k])
    bad = flat.copy()
    bad[3] = np.inf
    assert not native_kernels.flat_adam(bad, flat, flat, flat * flat, 1, 2e-3, 0.9, 0.999, 1e-8).finite


def test_sum_squares_is_the_global_norm():
    rng = np.random.default_rng(2)
    grads = {k: rng.standard_normal(s).astype(np.float32) for k, s in
             tinyrnn.ModelConfig(65, 128).param_shapes().items()}
    flat = native_kernels.FlatLayout(128, 65).flatten(grads)
    ref = sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values())
    assert math.sqrt(native_kernels.sum_squares(flat)) == pytest.approx(math.sqrt(ref), rel=1e-6)
    assert math.sqrt(ref) == pytest.approx(optim.global_norm(grads), rel=1e-6)


def test_bad_windows_are_refused_before_any_kernel_runs():
    layout, _, flat, inputs, targets, h0 = flat_problem(11, 8, 2, 4)
    with pytest.raises(IndexError, match=r"ids must lie in \[0, 11\)"):
        native_kernels.Window(layout, inputs, np.where(targets == 0, 11, targets), h0)
    negative = inputs.copy()
    negative[1, 2] = -1
    with pytest.raises(IndexError):
        native_kernels.Window(layout, negative, targets, h0)
    with pytest.raises(ValueError, match="h0 of shape"):
        native_kernels.Window(layout, inputs, targets, h0[:1])
    with pytest.raises(ValueError, match="parameters"):
        window_loss_and_grad(flat[:-1], native_kernels.Window(layout, inputs, targets, h0))
    with pytest.raises(ValueError, match="parameters"):
        window_loss_and_grad(flat.astype(np.float64), native_kernels.Window(layout, inputs, targets, h0))


# --- the package -------------------------------------------------------------------------------------------


def test_without_the_package_asking_for_it_says_how_to_install(monkeypatch):
    monkeypatch.setattr(native_kernels, "_LIB", None)
    monkeypatch.setitem(sys.modules, "tinyrnn_native", None)  # as if not installed
    assert not native_kernels.available()
    with pytest.raises(native_kernels.NativeKernelsUnavailable, match=r"pip install 'tinyrnn\[native\]'"):
        native_kernels.use_native_kernels()
    assert not native_kernels.enabled()


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
    code = ("import tinyrnn; from tinyrnn import native_kernels as nk; assert 'site-packages' in nk.__file__; "
            "t = tinyrnn.Trainer(tinyrnn.default_corpus(), tinyrnn.TrainConfig(hidden_size=16, batch_size=2)); "
            "print(t.engine_choice.backend); assert t.engine_choice.engine == 'kernel'; t.run(3); "
            "print(t.history[-1].train_loss < t.history[0].train_loss + 1)")
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("native kernels (") and result.stdout.strip().endswith("True")
