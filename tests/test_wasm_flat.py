"""The browser's flat path (tinyrnn.wasm_flat on kernels/simd.wasm's window_forward/window_backward), run natively
with wasmtime on a canary-filled memory (test_wasm_kernels.WasmtimeHeap: a kernel that writes outside the arrays
it is given fails the test).

Checked against the numpy reference (the fused engine in float64 and the traced autograd engine, the independent
one), against centred differences of its own loss, against the fused engine running on the same kernels (as
inside Pyodide: the same products, loops and softmax in the same order); the Trainer on it: tests/test_engines.py.
The shards (tinyrnn.shards) split a window by streams: their summed gradients must equal the whole window's up to
float32 summation order, which is tested here on the kernels themselves.
"""


import numpy as np
import pytest

import tinyrnn
from tinyrnn import model, wasm_flat, wasm_kernels

from helpers import assert_close, flat_problem, window_loss_and_grad
from test_wasm_kernels import WasmtimeHeap


@pytest.fixture
def kernels():
    heap = WasmtimeHeap(pages=512)
    return wasm_flat.WasmFlatKernels(wasm_kernels.SimdKernels(heap, heap.address))


def whole(kernels, layout, flat, inputs, targets, h0):
    window = kernels.window(layout, inputs, targets, h0.astype(np.float32), 1.0 / inputs.size)
    return window_loss_and_grad(flat, window)


@pytest.mark.parametrize("V,H,B,T", [(65, 128, 1, 25), (65, 64, 16, 25), (11, 13, 3, 7), (16, 16, 1, 1),
                                     (10, 5, 2, 3), (33, 40, 17, 4)])
def test_window_loss_and_gradient_match_the_numpy_reference(kernels, V, H, B, T):
    layout, params, flat, inputs, targets, h0 = flat_problem(V, H, B, T, seed=V + H + B + T)
    result = whole(kernels, layout, flat, inputs, targets, h0)
    for engine in ("fused", "autograd"):  # float64; the traced engine is the independent reference
        ref = model.loss_and_grads(params, inputs, targets, h0, engine=engine)
        assert abs(result.loss - ref.loss) <= 2e-6 * abs(ref.loss)
        grads = layout.views(result.grad)
        for name in tinyrnn.PARAM_NAMES:
            assert grads[name].shape == ref.grads[name].shape
            assert_close(grads[name], ref.grads[name], 2e-4)
        assert_close(result.dh0, ref.grads["h0"], 2e-4)
        assert_close(result.h_last, ref.h_last, 2e-4)


def test_the_window_equals_the_fused_engine_on_the_same_kernels(kernels, monkeypatch):
    """Inside Pyodide the fused engine runs on these kernels: the flat path must compute what it computes."""
    layout, params, flat, inputs, targets, h0 = flat_problem(65, 32, 4, 9, seed=3)
    monkeypatch.setattr(tinyrnn.ops, "WASM", True)
    monkeypatch.setattr(tinyrnn.ops, "simd_for", lambda *a: kernels.simd if wasm_kernels.usable(*a) else None)
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    ref = model.loss_and_grads(params32, inputs, targets, h0.astype(np.float32))
    result = whole(kernels, layout, flat, inputs, targets, h0)
    assert result.loss == pytest.approx(ref.loss, rel=1e-12)
    np.testing.assert_array_equal(result.h_last, ref.h_last)  # the same loop on the same numbers
    grads = layout.views(result.grad)
    for name in ("W_hh", "W_yh"):  # the same products in the same order: identical
        np.testing.assert_array_equal(grads[name], ref.grads[name])
    for name in ("W_hx", "b_h", "b_y"):  # numpy sums these in another order
        assert_close(grads[name], ref.grads[name], 1e-6)


def test_the_gradient_is_the_derivative_of_the_flat_loss(kernels):
    """Centred differences of the float32 flat loss along random directions."""
    layout, params, flat, inputs, targets, h0 = flat_problem(12, 9, 2, 5, seed=5)
    grad = whole(kernels, layout, flat, inputs, targets, h0).grad.astype(np.float64)
    rng = np.random.default_rng(0)
    for _ in range(4):
        direction = rng.standard_normal(flat.size).astype(np.float32)
        eps = 1e-2
        up = whole(kernels, layout, flat + eps * direction, inputs, targets, h0).loss
        down = whole(kernels, layout, flat - eps * direction, inputs, targets, h0).loss
        assert (up - down) / (2 * eps) == pytest.approx(float(grad @ direction), rel=2e-2, abs=1e-4)


@pytest.mark.parametrize("cuts", [(2,), (1, 3), (1, 2, 3)])
def test_shards_of_a_window_sum_to_the_whole_window(kernels, cuts):
    """What the workers compute (tinyrnn.shards): each a slice of the streams with the whole window's scale."""
    layout, params, flat, inputs, targets, h0 = flat_problem(40, 24, 4, 6, seed=11)
    full = whole(kernels, layout, flat, inputs, targets, h0)
    scale, bounds = 1.0 / inputs.size, (0, *cuts, inputs.shape[0])
    total, grad, h_last = 0.0, np.zeros(layout.size, np.float32), []
    for b0, b1 in zip(bounds, bounds[1:]):
        window = kernels.window(layout, inputs[b0:b1], targets[b0:b1], h0[b0:b1].astype(np.float32), scale)
        total += window.forward(flat) * scale
        grad += window.backward(flat)
        h_last.append(window.h_last.copy())
    assert total == pytest.approx(full.loss, rel=1e-12)
    np.testing.assert_array_equal(np.concatenate(h_last), full.h_last)  # every stream on its own: identical
    assert_close(grad, full.grad, 1e-6)


def test_bad_windows_are_refused_before_any_kernel_runs(kernels):
    layout, params, flat, inputs, targets, h0 = flat_problem(10, 5, 2, 3)
    with pytest.raises(IndexError, match=r"\[0, 10\)"):
        kernels.window(layout, inputs, np.where(targets == 0, 10, targets), h0, 1.0)
    with pytest.raises(ValueError, match="h0"):
        kernels.window(layout, inputs, targets, h0[:1], 1.0)
    window = kernels.window(layout, inputs, targets, h0.astype(np.float32), 1.0)
    for bad in (flat[:-1], flat.astype(np.float64)):
        with pytest.raises(ValueError, match="parameters"):
            window.forward(bad)
    assert kernels.simd.exports.calls == 0

