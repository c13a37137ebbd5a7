"""autograd (traced) ≡ fused primitive ≡ manual BPTT ≡ centred finite differences."""

import math

import autograd
import numpy as np
import pytest

import tinyrnn
from tinyrnn.gradcheck import relative_error

from helpers import random_problem

SHAPES = [  # (V, H, B, T)
    (2, 1, 1, 1),
    (5, 3, 1, 1),
    (7, 6, 3, 5),
    (11, 4, 2, 17),
    (3, 16, 4, 2),
    (30, 20, 5, 12),
]


def _max_elementwise_rel(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-300)))


def _names(cell):
    return tinyrnn.PARAM_NAMES if cell == "rnn" else tinyrnn.ModelConfig(2, 1, cell).param_names()


@pytest.mark.parametrize("cell", tinyrnn.CELLS)
@pytest.mark.parametrize("V,H,B,T", SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_autograd_engines_and_manual_bptt_agree_to_1e_10(V, H, B, T, seed, cell):
    params, inputs, targets, h0 = random_problem(V, H, B, T, seed, cell=cell)
    traced = tinyrnn.loss_and_grads(params, inputs, targets, h0, engine="autograd", cell=cell)
    fused = tinyrnn.loss_and_grads(params, inputs, targets, h0, engine="fused", cell=cell)
    manual = tinyrnn.manual_bptt(params, inputs, targets, h0, cell=cell)
    assert math.isclose(traced.loss, manual.loss, rel_tol=1e-13)
    assert math.isclose(fused.loss, manual.loss, rel_tol=1e-13)
    assert set(traced.grads) == set(_names(cell)) | {"h0"} == set(manual.grads) == set(fused.grads)
    for name in traced.grads:
        assert traced.grads[name].shape == (h0.shape if name == "h0" else params[name].shape)
        assert relative_error(traced.grads[name], manual.grads[name]) <= 1e-10, name
        assert relative_error(fused.grads[name], traced.grads[name]) <= 1e-10, name
        # entry by entry as well, wherever the gradient is not vanishingly small
        big = np.abs(traced.grads[name]) > 1e-8
        assert _max_elementwise_rel(traced.grads[name][big], manual.grads[name][big]) <= 1e-9, name
    np.testing.assert_allclose(traced.h_last, manual.h_last, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fused.h_last, manual.h_last, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell", tinyrnn.CELLS)
@pytest.mark.parametrize("V,H,B,T", [(5, 3, 1, 1), (7, 6, 3, 5), (4, 5, 2, 9)])
def test_finite_differences_agree_with_both(V, H, B, T, cell):
    params, inputs, targets, h0 = random_problem(V, H, B, T, seed=3, cell=cell)
    report = tinyrnn.gradient_check(params, inputs, targets, h0, cell=cell)
    assert report.max_rel_error["fd_vs_autograd"] <= 1e-6
    assert report.max_rel_error["fd_vs_manual"] <= 1e-6
    assert report.max_rel_error["autograd_vs_manual"] <= 1e-10
    assert report.max_rel_error["fused_vs_autograd"] <= 1e-10
    assert report.passed
    assert set(report.per_param) == set(_names(cell)) | {"h0"}


def test_gradient_check_detects_a_wrong_gradient(monkeypatch):
    """The checker must be able to fail: break the hand-written tanh derivative and it reports it."""
    from tinyrnn import ops

    params, inputs, targets, h0 = random_problem(5, 4, 2, 4, seed=0)
    original = ops.recurrence_backward

    def wrong(W_hh, hs, *args, **kwargs):
        return original(W_hh, hs * 0.9, *args, **kwargs)  # uses a wrong h_t in 1 - h_t^2 and dW_hh

    monkeypatch.setattr(ops, "recurrence_backward", wrong)
    report = tinyrnn.gradient_check(params, inputs, targets, h0)
    assert not report.passed
    assert report.max_rel_error["autograd_vs_manual"] > 1e-3


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gradient_check_detects_a_wrong_gated_gradient(monkeypatch, cell):
    """Break a gated cell's backward time loop (a wrong h_{t-1} for the GRU, a wrong c_t for the LSTM)."""
    from tinyrnn import gru, lstm

    params, inputs, targets, h0 = random_problem(5, 4, 2, 4, seed=0, cell=cell)
    module = {"gru": gru, "lstm": lstm}[cell]
    original = module.backward_time_loop

    def wrong(gates, second, *args, **kwargs):
        return original(gates, second * 0.9, *args, **kwargs)  # hn (GRU) or cs (LSTM) scaled

    monkeypatch.setattr(module, "backward_time_loop", wrong)
    report = tinyrnn.gradient_check(params, inputs, targets, h0, cell=cell)
    assert not report.passed
    assert report.max_rel_error["autograd_vs_manual"] > 1e-3


def test_loss_function_is_differentiable_by_autograd_directly():
    params, inputs, targets, h0 = random_problem(6, 5, 2, 3, seed=4)
    grad_h0 = autograd.grad(lambda h: tinyrnn.loss(params, inputs, targets, h))(h0)
    manual = tinyrnn.manual_bptt(params, inputs, targets, h0)
    assert relative_error(grad_h0, manual.grads["h0"]) <= 1e-10


def test_fused_engine_in_float32_stays_close_to_float64():
    params, inputs, targets, h0 = random_problem(20, 32, 4, 25, seed=5)
    exact = tinyrnn.loss_and_grads(params, inputs, targets, h0, engine="fused")
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    fast = tinyrnn.loss_and_grads(p32, inputs, targets, h0.astype(np.float32), engine="fused")
    assert all(g.dtype == np.float32 for g in fast.grads.values())
    assert math.isclose(fast.loss, exact.loss, rel_tol=1e-5)
    for name in exact.grads:
        assert relative_error(fast.grads[name], exact.grads[name]) <= 1e-4, name


def test_dh_norms_are_the_norms_of_dL_dh():
    """‖∂L/∂h_t‖ from manual BPTT equals the norm of autograd's gradient w.r.t. each h_t."""
    V, H, B, T = 6, 5, 2, 7
    params, inputs, targets, h0 = random_problem(V, H, B, T, seed=6)
    from tinyrnn.model import _traced_output_loss  # the output layer, given the hidden states

    inputs_tm = np.ascontiguousarray(inputs.T)
    hs = tinyrnn.ops.recurrence_forward(params["W_hx"], params["W_hh"], params["b_h"], h0, inputs_tm)

    def loss_from(h_t, t):  # loss as a function of h_t alone, later states recomputed from it
        states = [hs[i] for i in range(t)] + [h_t]
        h = h_t
        for i in range(t + 1, T):
            h = autograd.numpy.tanh(params["W_hx"].T[inputs_tm[i]] + autograd.numpy.dot(h, params["W_hh"].T) + params["b_h"])
            states.append(h)
        return _traced_output_loss(autograd.numpy.stack(states), params["W_yh"], params["b_y"], np.ascontiguousarray(targets.T))

    expected = [np.linalg.norm(autograd.grad(loss_from)(hs[t], t)) for t in range(T)]
    norms = tinyrnn.manual_bptt(params, inputs, targets, h0).dh_norms
    np.testing.assert_allclose(norms, expected, rtol=1e-10)


def test_unknown_engine_is_a_clear_error(problem):
    params, inputs, targets, h0 = problem(3, 2, 1, 2)
    with pytest.raises(tinyrnn.ConfigError, match="engine must be one of fused, autograd"):
        tinyrnn.loss_and_grads(params, inputs, targets, h0, engine="jax")


def test_fused_primitives_scale_with_the_upstream_gradient():
    """A primitive's VJP must multiply by the incoming gradient, not assume it is 1."""
    params, inputs, targets, h0 = random_problem(6, 5, 2, 4, seed=8)
    scaled = autograd.grad(lambda p: 2.5 * tinyrnn.loss(p, inputs, targets, h0, engine="fused") ** 2)(params)
    value = tinyrnn.loss(params, inputs, targets, h0)
    reference = tinyrnn.manual_bptt(params, inputs, targets, h0).grads
    for name in params:
        assert relative_error(scaled[name], 5.0 * value * reference[name]) <= 1e-10, name


def test_the_webassembly_code_path_gives_the_same_results(monkeypatch):
    """In Pyodide the products go through einsum instead of BLAS; the numbers must not change."""
    from tinyrnn import ops

    params, inputs, targets, h0 = random_problem(9, 7, 3, 6, seed=9)
    native = tinyrnn.loss_and_grads(params, inputs, targets, h0, engine="fused")
    native_manual = tinyrnn.manual_bptt(params, inputs, targets, h0)
    monkeypatch.setattr(ops, "WASM", True)
    wasm = tinyrnn.loss_and_grads(params, inputs, targets, h0, engine="fused")
    wasm_manual = tinyrnn.manual_bptt(params, inputs, targets, h0)
    assert math.isclose(wasm.loss, native.loss, rel_tol=1e-13)
    for name in native.grads:
        assert relative_error(wasm.grads[name], native.grads[name]) <= 1e-12, name
        assert relative_error(wasm_manual.grads[name], native_manual.grads[name]) <= 1e-12, name
    np.testing.assert_allclose(wasm_manual.dh_norms, native_manual.dh_norms, rtol=1e-12)


def test_products_too_large_for_einsum_take_numpys_loop_in_the_browser(monkeypatch):
    """numpy refuses an einsum over more than 2**31 (n, i, j) terms ("iterator is too large"): such products must
    take numpy's own loop. The limit is lowered here so that a small product crosses it."""
    from tinyrnn import ops

    rng = np.random.default_rng(0)
    a, b, c, d = (rng.standard_normal(shape) for shape in ((6, 5), (6, 4), (5, 4), (3, 5)))
    monkeypatch.setattr(ops, "WASM", True)
    monkeypatch.setattr(ops, "_EINSUM_LIMIT", 10)

    def no_einsum(*args, **kwargs):
        raise AssertionError("einsum was called past its limit")

    monkeypatch.setattr(ops.np, "einsum", no_einsum)
    np.testing.assert_allclose(ops.at_b(a, b), a.T @ b, rtol=1e-14)
    np.testing.assert_allclose(ops.mm(a, c), a @ c, rtol=1e-14)
    np.testing.assert_allclose(ops.a_bt(a, d), a @ d.T, rtol=1e-14)


# --- every cell -------------------------------------------------------------------------------------------------

def _forward_problem(cell, T, seed, V=6, H=5, B=2):
    """A random problem of ``cell`` and its numpy forward pass: (params, inputs, targets, state0, cell record,
    weights, inputs_tm, targets_tm, hs, cache)."""
    from tinyrnn.cells import get_cell

    params, inputs, targets, state0 = random_problem(V, H, B, T, seed=seed, cell=cell)
    spec = get_cell(cell)
    weights = tuple(params[k] for k in spec.recurrence_names)
    inputs_tm, targets_tm = np.ascontiguousarray(inputs.T), np.ascontiguousarray(targets.T)
    hs, _, cache = spec.forward(weights, state0, inputs_tm)
    return params, inputs, targets, state0, spec, weights, inputs_tm, targets_tm, hs, cache


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gated_norms_are_the_norms_of_dL_dh_and_dL_dc(cell):
    """‖∂L/∂h_t‖ (and the LSTM's ‖∂L/∂c_t‖, c_t reaching L through h_t = o_t tanh(c_t) and through later steps)
    from manual BPTT equal the norms of autograd's gradients, later states recomputed by the traced cell."""
    from tinyrnn.model import _traced_output_loss

    V, H, B, T = 6, 5, 2, 7
    params, inputs, targets, state0, spec, weights, inputs_tm, targets_tm, hs, cache = _forward_problem(cell, T, 6)
    cs = cache[1] if cell == "lstm" else None

    def loss_after(t, h_t, c_t):
        state = h_t if cell == "gru" else autograd.numpy.concatenate([h_t, c_t], axis=1)
        later = [spec.traced(weights, state, inputs_tm[t + 1:])[0]] if t + 1 < T else []
        states = autograd.numpy.concatenate([hs[:t], h_t[None]] + later, axis=0)
        return _traced_output_loss(states, params["W_yh"], params["b_y"], targets_tm)

    manual = tinyrnn.manual_bptt(params, inputs, targets, state0, cell=cell)
    expected_h = [np.linalg.norm(autograd.grad(lambda h: loss_after(t, h, None if cs is None else cs[t]))(hs[t]))
                  for t in range(T)]
    np.testing.assert_allclose(manual.dh_norms, expected_h, rtol=1e-10)
    if cell == "lstm":
        o = 0.5 * (np.tanh(0.5 * (params["W_ih"].T[inputs_tm] + params["b_ih"] + params["b_hh"]
                                  + np.concatenate([state0[None, :, :H], hs[:-1]]) @ params["W_hh"].T)) + 1)[..., 3 * H:]
        expected_c = [np.linalg.norm(autograd.grad(lambda c: loss_after(t, o[t] * autograd.numpy.tanh(c), c))(cs[t]))
                      for t in range(T)]
        np.testing.assert_allclose(manual.dc_norms, expected_c, rtol=1e-10)
    else:
        assert manual.dc_norms is None


@pytest.mark.parametrize("cell", tinyrnn.CELLS)
def test_every_cell_in_float32_stays_close_to_float64(cell):
    params, inputs, targets, h0 = random_problem(20, 32, 4, 25, seed=5, cell=cell)
    exact = tinyrnn.loss_and_grads(params, inputs, targets, h0, engine="fused", cell=cell)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    fast = tinyrnn.loss_and_grads(p32, inputs, targets, h0.astype(np.float32), engine="fused", cell=cell)
    assert all(g.dtype == np.float32 for g in fast.grads.values())
    assert fast.h_last.dtype == np.float32 and fast.h_last.shape == h0.shape
    assert math.isclose(fast.loss, exact.loss, rel_tol=1e-5)
    for name in exact.grads:
        assert relative_error(fast.grads[name], exact.grads[name]) <= 1e-4, name


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gated_primitives_scale_with_the_upstream_gradient_and_h0(cell):
    params, inputs, targets, h0 = random_problem(6, 5, 2, 4, seed=8, cell=cell)
    scaled = autograd.grad(lambda p: 2.5 * tinyrnn.loss(p, inputs, targets, h0, engine="fused", cell=cell) ** 2)(params)
    value = tinyrnn.loss(params, inputs, targets, h0, cell=cell)
    reference = tinyrnn.manual_bptt(params, inputs, targets, h0, cell=cell).grads
    for name in params:
        assert relative_error(scaled[name], 5.0 * value * reference[name]) <= 1e-10, name
    grad_h0 = autograd.grad(lambda h: tinyrnn.loss(params, inputs, targets, h, cell=cell))(h0)
    assert relative_error(grad_h0, reference["h0"]) <= 1e-10


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_webassembly_code_path_gives_the_same_results_for_gated_cells(monkeypatch, cell):
    from tinyrnn import ops

    params, inputs, targets, h0 = random_problem(9, 7, 3, 6, seed=9, cell=cell)
    native = tinyrnn.manual_bptt(params, inputs, targets, h0, cell=cell)
    monkeypatch.setattr(ops, "WASM", True)
    wasm = tinyrnn.manual_bptt(params, inputs, targets, h0, cell=cell)
    assert math.isclose(wasm.loss, native.loss, rel_tol=1e-13)
    for name in native.grads:
        assert relative_error(wasm.grads[name], native.grads[name]) <= 1e-12, name
    np.testing.assert_allclose(wasm.dh_norms, native.dh_norms, rtol=1e-12)


def test_a_cell_with_the_wrong_parameters_is_a_clear_error():
    params, inputs, targets, h0 = random_problem(5, 3, 1, 2)
    with pytest.raises(tinyrnn.ConfigError, match="not a gru model's: W_ih, b_ih, b_hh missing"):
        tinyrnn.loss_and_grads(params, inputs, targets, h0, cell="gru")
    with pytest.raises(tinyrnn.ConfigError, match="cell must be one of rnn, gru, lstm, got 'transformer'"):
        tinyrnn.ModelConfig(5, 3, "transformer")


@pytest.mark.parametrize("cell", tinyrnn.CELLS)
def test_gradient_reach_is_the_norm_of_the_last_steps_gradient(cell):
    """bptt.gradient_reach: ‖∂L_T/∂h_t‖ of the last character's loss alone equals autograd's, later states
    recomputed from h_t (and the LSTM's c_t held fixed) by the traced cell."""
    from tinyrnn.bptt import gradient_reach
    from tinyrnn.model import _traced_output_loss

    T = 6
    params, inputs, targets, h0, spec, weights, inputs_tm, targets_tm, hs, cache = _forward_problem(cell, T, 2)

    def last_loss(h_t, t):
        if t == T - 1:
            h_last = h_t
        else:
            state = h_t if cell != "lstm" else autograd.numpy.concatenate([h_t, cache[1][t]], axis=1)
            h_last = spec.traced(weights, state, inputs_tm[t + 1:])[0][-1]
        return _traced_output_loss(h_last[None], params["W_yh"], params["b_y"], targets_tm[-1:])

    expected = [np.linalg.norm(autograd.grad(last_loss)(hs[t], t)) for t in range(T)]
    reach = gradient_reach(params, inputs, targets, h0, cell)
    np.testing.assert_allclose(reach, expected, rtol=1e-10)
