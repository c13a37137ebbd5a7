"""The browser's flat path (tinyrnn.engines.wasm on kernels/simd.wasm's window_forward/window_backward, the shared
arithmetic of kernels/window_impl.h), run natively with wasmtime on a canary-filled memory
(test_wasm_kernels.WasmtimeHeap: a kernel that writes outside the arrays it is given fails the test).

For every cell (tanh RNN, GRU, LSTM): checked against the numpy reference (the fused engine in float64 and the
traced autograd engine, the independent one), against centred differences of its own loss and against the native
build of the same source; the Trainer on it: tests/test_engines.py. The shards (engines.workers) split a window by
streams: their summed gradients must equal the whole window's up to float32 summation order, which is tested here
on the kernels themselves.
"""


import numpy as np
import pytest

from tinyrnn.engines import native, wasm, wasm_module
from tinyrnn.cells import CELL_NAMES

from helpers import assert_close, assert_window_matches_the_numpy_reference, flat_loss_and_grad, flat_problem
from test_native_kernels import assert_adam_is_optims_adam_bit_for_bit, assert_sum_squares_is_the_global_norm
from test_wasm_kernels import WasmtimeHeap


@pytest.fixture(params=list(wasm_module.VARIANTS))
def kernels(request):
    """Each module the wheel ships: plain SIMD128 and relaxed SIMD (fused multiply-adds), checked alike."""
    heap = WasmtimeHeap(pages=1024, variant=request.param)
    return wasm.WasmFlatKernels(wasm_module.SimdKernels(heap, heap.address))


def whole(kernels, layout, flat, inputs, targets, h0):
    return flat_loss_and_grad(kernels, layout, flat, inputs, targets, h0)


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("V,H,B,T", [(65, 128, 1, 25), (65, 64, 16, 25), (11, 13, 3, 7), (16, 16, 1, 1),
                                     (10, 5, 2, 3), (33, 40, 17, 4)])
def test_window_loss_and_gradient_match_the_numpy_reference(kernels, cell, V, H, B, T):
    assert_window_matches_the_numpy_reference(kernels, cell, V, H, B, T)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_the_browser_build_computes_what_the_native_build_of_the_same_source_does(kernels, cell):
    """One C source, two compilers and vector widths: equal up to float32 summation order (the products and the
    time loops add in the same order; the softmax's row sums in lanes of 8 here, 16 natively). The plain module
    against the native baseline (no fused multiply-adds in either), the relaxed one against the native AVX2 + FMA
    variant (the products' multiply-adds fused in both; GCC may fuse more)."""
    layout, params, flat, inputs, targets, h0 = flat_problem(65, 32, 4, 9, seed=3, cell=cell)
    relaxed = kernels.simd.exports.variant == "relaxed"
    try:
        if native.library().tinyrnn_select(2 if relaxed else 1) != (2 if relaxed else 1):
            pytest.skip("this processor has no AVX2 + FMA: no native variant fuses the products' multiply-adds")
        natively = whole(native.NATIVE, layout, flat, inputs, targets, h0)
    finally:
        native.library().tinyrnn_select(0)
    browser = whole(kernels, layout, flat, inputs, targets, h0)
    assert browser.loss == pytest.approx(natively.loss, rel=1e-6)
    if relaxed:
        assert_close(browser.h_last, natively.h_last, 1e-5)
    else:
        np.testing.assert_array_equal(browser.h_last, natively.h_last)  # the forward recurrence: the same operations
    assert_close(browser.grad, natively.grad, 1e-5)
    assert_close(browser.dh0, natively.dh0, 1e-5)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_the_gradient_is_the_derivative_of_the_flat_loss(kernels, cell):
    """Centred differences of the float32 flat loss along random directions."""
    layout, params, flat, inputs, targets, h0 = flat_problem(12, 9, 2, 5, seed=5, cell=cell)
    grad = whole(kernels, layout, flat, inputs, targets, h0).grad.astype(np.float64)
    rng = np.random.default_rng(0)
    for _ in range(4):
        direction = rng.standard_normal(flat.size).astype(np.float32)
        eps = 1e-2
        up = whole(kernels, layout, flat + eps * direction, inputs, targets, h0).loss
        down = whole(kernels, layout, flat - eps * direction, inputs, targets, h0).loss
        assert (up - down) / (2 * eps) == pytest.approx(float(grad @ direction), rel=2e-2, abs=1e-4)


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("cuts", [(2,), (1, 3), (1, 2, 3)])
def test_shards_of_a_window_sum_to_the_whole_window(kernels, cell, cuts):
    """What the workers compute (tinyrnn.engines.workers): each a slice of the streams with the whole window's scale."""
    layout, params, flat, inputs, targets, h0 = flat_problem(40, 24, 4, 6, seed=11, cell=cell)
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


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_flat_adam_with_clipping_is_optims_adam_bit_for_bit(kernels, cell):
    assert_adam_is_optims_adam_bit_for_bit(kernels, cell)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_sum_squares_is_the_global_norm(kernels, cell):
    assert_sum_squares_is_the_global_norm(kernels, cell)


@pytest.mark.parametrize("n", [1, 7, 8, 1001])
def test_add_into_is_numpys_float32_sum(kernels, n):
    """How the sharded engine adds a helper's gradient into its own: x + y in float32, bit for bit, tails included."""
    rng = np.random.default_rng(n)
    x, y = ((rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n)).astype(np.float32) for _ in range(2))
    expected, y_before = x + y, y.copy()
    kernels.add_into(x, y)  # (the test heap copies both in, and x back out)
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(y, y_before)
    with pytest.raises(ValueError, match="add_into"):
        kernels.add_into(x, np.zeros(n + 1, np.float32))


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_bad_windows_are_refused_before_any_kernel_runs(kernels, cell):
    layout, params, flat, inputs, targets, h0 = flat_problem(10, 5, 2, 3, cell=cell)
    too_big = targets.copy()
    too_big[1, 0] = 10
    with pytest.raises(IndexError, match=r"\[0, 10\)"):
        kernels.window(layout, inputs, too_big, h0, 1.0)
    with pytest.raises(ValueError, match="h0 of shape"):
        kernels.window(layout, inputs, targets, h0[:1], 1.0)
    calls = kernels.simd.exports.calls
    window = kernels.window(layout, inputs, targets, h0.astype(np.float32), 1.0)
    for bad in (flat[:-1], flat.astype(np.float64)):
        with pytest.raises(ValueError, match="parameters"):
            window.forward(bad)
    assert kernels.simd.exports.calls == calls + 1  # window_size only
    assert all(kernels.supports(c) for c in CELL_NAMES) and not kernels.supports("transformer")

