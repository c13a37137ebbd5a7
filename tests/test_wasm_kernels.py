"""The browser's WebAssembly SIMD kernels (core/tinyrnn/engines/kernels/simd.wasm), run natively with wasmtime.

The same bytes the wheel ships are instantiated on a wasmtime memory; every array handed to a kernel is copied
in before the call and back after it, and every other byte of the memory is filled with a canary that must
survive the call: the kernels share Pyodide's heap in the browser and must not write anywhere else.
Each kernel is checked against the numpy code in ops.py (the reference), and the whole fused engine is run with
the kernels in place of numpy (as inside Pyodide) against the native engine.
"""

import ctypes

import numpy as np
import pytest
import wasmtime  # a test dependency (requirements-dev.txt): runs the browser's kernels natively
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyrnn
from tinyrnn import bptt, model, ops
from tinyrnn.engines import wasm_module

from helpers import random_problem

CANARY = 0x3F  # float32 0.747, float64 4.8e-4: not a fixed point of tanh or of scaling
FIRST_OFFSET = 4096  # offset 0 means "no array" to the kernels


def wasmtime_engine(variant: str) -> wasmtime.Engine:
    """An engine that runs ``variant`` (a key of ``wasm_module.VARIANTS``): relaxed SIMD only where it is asked for."""
    config = wasmtime.Config()
    config.wasm_relaxed_simd = variant == "relaxed"  # (f32x4.relaxed_madd: one FMA on this x86-64)
    return wasmtime.Engine(config)


class WasmtimeHeap:
    """A wasmtime instance of the kernels (``variant``: a key of ``wasm_module.VARIANTS``) plus a bump allocator
    over its memory, for ``SimdKernels``."""

    def __init__(self, pages=256, variant="simd"):
        engine = wasmtime_engine(variant)
        self.store = wasmtime.Store(engine)
        self.memory = wasmtime.Memory(self.store, wasmtime.MemoryType(wasmtime.Limits(pages, None)))
        module = wasmtime.Module(engine, wasm_module.wasm_bytes(variant))
        self.variant = variant
        self._exports = wasmtime.Instance(self.store, module, [self.memory]).exports(self.store)
        self._placed = []
        self._top = FIRST_OFFSET
        self.calls = 0
        self._bytes()[:] = CANARY

    def _bytes(self):
        size = self.memory.data_len(self.store)
        raw = (ctypes.c_ubyte * size).from_address(ctypes.addressof(self.memory.data_ptr(self.store).contents))
        return np.frombuffer(raw, dtype=np.uint8)

    def address(self, array):
        assert array.flags.c_contiguous
        offset = self._top
        self._top = (offset + array.nbytes + 64 + 15) // 16 * 16  # 64 canary bytes at least between arrays
        assert self._top < self.memory.data_len(self.store), "test heap too small"
        self._bytes()[offset:offset + array.nbytes] = array.reshape(-1).view(np.uint8)
        self._placed.append((array, offset))
        return offset

    def __getattr__(self, name):
        export = self._exports[name]

        def call(*args):
            self.calls += 1
            try:
                result = export(self.store, *args)
            finally:
                heap = self._bytes()
                for array, offset in self._placed:
                    if array.flags.writeable:
                        array.reshape(-1).view(np.uint8)[:] = heap[offset:offset + array.nbytes]
                    heap[offset:offset + array.nbytes] = CANARY
                placed, self._placed, self._top = self._placed, [], FIRST_OFFSET
            touched = np.flatnonzero(heap != CANARY)
            assert touched.size == 0, f"{name} wrote outside its arrays at offsets {touched[:8]} ({placed=})"
            return result

        return call


@pytest.fixture
def simd():
    heap = WasmtimeHeap()
    kernels = wasm_module.SimdKernels(heap, heap.address)
    kernels.heap = heap
    return kernels


def f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def assert_product_close(out, a64, b64):
    """float32 product vs the float64 one, within float32 rounding of a sum of |a||b| terms."""
    ref = a64 @ b64
    bound = 4e-7 * (a64.shape[1] + 2) * (np.abs(a64) @ np.abs(b64)) + 1e-30
    assert out.dtype == np.float32 and out.shape == ref.shape
    assert np.all(np.abs(out - ref) <= bound)


@settings(max_examples=60, deadline=None)
@given(M=st.integers(0, 19), N=st.integers(0, 21), K=st.integers(0, 37), seed=st.integers(0, 2**32 - 1))
def test_products_match_numpy_for_every_shape(M, N, K, seed):
    heap = WasmtimeHeap(pages=8)
    simd = wasm_module.SimdKernels(heap, heap.address)
    rng = np.random.default_rng(seed)
    a, b = f32(rng, M, K), f32(rng, K, N)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    assert_product_close(simd.mm(a, b), a64, b64)
    assert_product_close(simd.at_b(np.ascontiguousarray(a.T), b), a64, b64)
    assert_product_close(simd.a_bt(a, np.ascontiguousarray(b.T)), a64, b64)


@pytest.mark.parametrize("shape", [(16, 128, 128), (400, 128, 65), (65, 400, 128), (1, 256, 256), (3, 5, 9)])
def test_products_at_training_shapes(simd, shape):
    M, K, N = shape
    rng = np.random.default_rng(M + K + N)
    a, b = f32(rng, M, K), f32(rng, K, N)
    assert_product_close(simd.mm(a, b), a.astype(np.float64), b.astype(np.float64))


@pytest.mark.parametrize("T,B,H", [(1, 1, 1), (25, 16, 128), (7, 3, 13), (4, 5, 8)])
def test_rnn_forward_matches_numpy(simd, T, B, H):
    rng = np.random.default_rng(T * B * H)
    a, W_hh, h0 = f32(rng, T, B, H), f32(rng, H, H, scale=1 / np.sqrt(H)), f32(rng, B, H, scale=0.5)
    a64, W_hh_t64, h0_64 = a.astype(np.float64), np.ascontiguousarray(W_hh.T, np.float64), h0.astype(np.float64)
    ref = ops.forward_time_loop(a64, W_hh_t64, h0_64)
    out = simd.rnn_forward(a.copy(), np.ascontiguousarray(W_hh.T), h0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=0, atol=2e-6 * max(1, np.sqrt(H)))


def test_tanh_is_accurate_over_its_whole_range(simd):
    """With W_hh = 0 and h0 = 0, rnn_forward is tanh alone: compare with float64 tanh over ±20, tiny values, ±inf, NaN."""
    x = np.concatenate([np.linspace(-20, 20, 200_001), np.geomspace(1e-30, 1, 2_000), -np.geomspace(1e-30, 1, 2_000),
                        [np.nan, 0.0, -0.0, 1e-45, np.inf, -np.inf]]).astype(np.float32)
    # (T, B, H) = (1, len(x), 1): one step, every value its own batch row
    a = x.reshape(1, -1, 1).copy()
    out = simd.rnn_forward(a, np.zeros((1, 1), np.float32), np.zeros((x.size, 1), np.float32)).reshape(-1)
    assert np.isnan(out[-6])  # NaN stays NaN: the trainer detects divergence from it
    out, x = np.delete(out, -6), np.delete(x, -6)
    exact = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(out - exact) / ulp) <= 0.5 + 1e-6  # rounded once from double (numpy's float32 tanh: 1.3)
    assert list(out[-2:]) == [1.0, -1.0] and out[-3] == np.float32(1e-45)  # ±inf saturate; subnormals pass


@pytest.mark.parametrize("with_norms", [True, False])
@pytest.mark.parametrize("T,B,H", [(1, 1, 1), (25, 16, 64), (6, 3, 11)])
def test_rnn_backward_matches_numpy(simd, T, B, H, with_norms):
    rng = np.random.default_rng(T + B + H)
    hs = np.tanh(f32(rng, T, B, H))
    dhs, W_hh = f32(rng, T, B, H, scale=0.1), f32(rng, H, H, scale=1 / np.sqrt(H))
    norms = np.empty(T) if with_norms else None
    das = 1 - hs * hs
    dh0 = simd.rnn_backward(das, dhs, W_hh, norms)
    ref_norms = np.empty(T)
    ref_das = 1 - hs.astype(np.float64) ** 2
    ref_dh0 = ops.backward_time_loop(ref_das, dhs.astype(np.float64), W_hh.astype(np.float64), ref_norms)
    np.testing.assert_allclose(das, ref_das, rtol=0, atol=1e-6)
    np.testing.assert_allclose(dh0, ref_dh0, rtol=0, atol=1e-6)
    if with_norms:
        np.testing.assert_allclose(norms, ref_norms, rtol=1e-5)


@pytest.mark.parametrize("N,V,scale", [(1, 1, 1.0), (7, 5, 3.0), (400, 65, 1.0), (33, 130, 30.0), (9, 3, 200.0)])
def test_softmax_cross_entropy_matches_numpy(simd, N, V, scale):
    rng = np.random.default_rng(N * V)
    logits, targets = f32(rng, N, V, scale=scale), rng.integers(0, V, N)
    loss, dlogits = simd.softmax_cross_entropy(logits, targets)
    ref_loss, ref_d = ops.softmax_cross_entropy(logits.astype(np.float64), targets)
    assert dlogits.dtype == np.float32
    assert loss == pytest.approx(ref_loss, rel=1e-6, abs=1e-6)
    np.testing.assert_allclose(dlogits, ref_d, rtol=0, atol=3e-7 / N)
    np.testing.assert_allclose(dlogits.sum(axis=1), 0, atol=1e-6 / N)  # rows of p - onehot sum to zero


def test_softmax_cross_entropy_propagates_nan_and_refuses_bad_ids(simd):
    logits = np.zeros((3, 6), np.float32)
    logits[1, 4] = np.nan
    loss, dlogits = simd.softmax_cross_entropy(logits, np.array([0, 1, 2]))
    assert np.isnan(loss) and np.isnan(dlogits[1]).all() and np.isfinite(dlogits[[0, 2]]).all()
    for bad in ([0, 1, 6], [0, -1, 2]):
        with pytest.raises(IndexError):
            simd.softmax_cross_entropy(logits, np.array(bad))
    assert simd.heap.calls == 1  # refused before the kernel could index out of range


@pytest.mark.parametrize("n, t", [(1, 0), (3, 5), (4, 1), (65, 100), (130, 7), (16384, 2)])
def test_adam_matches_numpy_bit_for_bit(simd, monkeypatch, n, t):
    rng = np.random.default_rng(n + t)
    p, g = f32(rng, n), f32(rng, n, scale=0.1)
    state = {"t": t} if t == 0 else {"t": t, "m/w": f32(rng, n, scale=0.01), "v/w": np.abs(f32(rng, n, scale=1e-4))}
    opt = tinyrnn.make_optimizer("adam", 2e-3)
    ref_params, ref_state = opt.compute({"w": p}, {"w": g}, state)
    monkeypatch.setattr(wasm_module, "ACTIVE", simd)
    got_params, got_state = opt.compute({"w": p}, {"w": g}, state)
    assert simd.heap.calls == 1
    np.testing.assert_array_equal(got_params["w"], ref_params["w"])
    for key in ("m/w", "v/w"):
        np.testing.assert_array_equal(got_state[key], ref_state[key])
    assert got_state["t"] == ref_state["t"] == t + 1


def test_wrong_shapes_or_dtypes_are_refused_before_the_kernel_runs(simd):
    """The kernels trust their sizes; the Python side must refuse anything that would read or write past an array."""
    f = np.zeros
    calls = [
        lambda: simd.mm(f((3, 4), np.float32), f((5, 2), np.float32)),
        lambda: simd.at_b(f((4, 3), np.float32), f((5, 2), np.float32)),
        lambda: simd.mm(f((3, 4), np.float32), f((4, 2), np.float64)),
        lambda: simd.rnn_forward(f((2, 3, 4), np.float32), f((4, 5), np.float32), f((3, 4), np.float32)),
        lambda: simd.rnn_forward(f((2, 3, 4), np.float32), f((4, 4), np.float32), f((2, 4), np.float32)),
        lambda: simd.rnn_backward(f((2, 3, 4), np.float32), f((2, 3, 5), np.float32), f((4, 4), np.float32)),
        lambda: simd.rnn_backward(f((2, 3, 4), np.float32), f((2, 3, 4), np.float32), f((4, 4), np.float32),
                                  f(2, np.float32)),  # float32 norms would receive float64 writes
        lambda: simd.rnn_backward(f((2, 3, 4), np.float32), f((2, 3, 4), np.float32), f((4, 4), np.float32), f(3)),
        lambda: simd.adam(*(f(4, np.float32),) * 3, f(5, np.float32), 0.9, 0.999, 1e-3, 1e-8),
        lambda: simd.softmax_cross_entropy(f((3, 4), np.float32), np.array([0, 1])),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="WebAssembly kernel called with"):
            call()
    assert simd.heap.calls == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fused_engine_with_kernels_matches_native(simd, monkeypatch, seed):
    """The whole default engine as it runs inside Pyodide (kernels for float32) against the native engine."""
    params, inputs, targets, h0 = random_problem(9, 24, 4, 6, seed=seed, dtype=np.float32, scale=0.1)
    native = model.loss_and_grads(params, inputs, targets, h0, engine="fused")
    native_manual = bptt.manual_bptt(params, inputs, targets, h0)
    monkeypatch.setattr(ops, "WASM", True)
    monkeypatch.setattr(wasm_module, "ACTIVE", simd)
    browser = model.loss_and_grads(params, inputs, targets, h0, engine="fused")
    browser_manual = bptt.manual_bptt(params, inputs, targets, h0)
    assert simd.heap.calls >= 2 * (2 + 4 + 1)  # time loops, products and softmax went through the kernels
    assert browser.loss == pytest.approx(native.loss, rel=1e-6)
    for name, grad in native.grads.items():
        scale = np.abs(grad).max()
        np.testing.assert_allclose(browser.grads[name], grad, rtol=0, atol=2e-6 * scale, err_msg=name)
        np.testing.assert_allclose(browser_manual.grads[name], native_manual.grads[name], rtol=0, atol=2e-6 * scale)
    np.testing.assert_allclose(browser_manual.dh_norms, native_manual.dh_norms, rtol=1e-5)


def test_float64_never_reaches_the_kernels(simd, monkeypatch):
    """Gradient checks run in float64: inside Pyodide they must use numpy (einsum), not the float32 kernels."""
    params, inputs, targets, h0 = random_problem(9, 24, 4, 6, seed=3, dtype=np.float32, scale=0.1)
    params64 = {k: v.astype(np.float64) for k, v in params.items()}
    monkeypatch.setattr(ops, "WASM", True)
    monkeypatch.setattr(wasm_module, "ACTIVE", simd)
    report = tinyrnn.gradient_check(params64, inputs, targets, h0.astype(np.float64))
    assert report.passed, report.summary()
    assert simd.heap.calls == 0


@pytest.mark.parametrize("variant", wasm_module.VARIANTS)
def test_shipped_modules_import_only_the_memory_and_export_every_kernel(variant):
    data = wasm_module.wasm_bytes(variant)
    assert data[:4] == b"\0asm"
    module = wasmtime.Module(wasmtime_engine(variant), data)
    assert [(i.module, i.name) for i in module.imports] == [("env", "memory")]
    assert {"sgemm", "rnn_forward", "rnn_backward", "gru_forward", "gru_backward", "lstm_forward",
            "lstm_backward", "window_size", "window_forward", "window_backward", "adam",
            "sum_squares"} <= {e.name for e in module.exports}


# --- the gated cells' time loops ------------------------------------------------------------------------------

GATED_SHAPES = [(1, 1, 1), (25, 16, 128), (7, 3, 13), (4, 5, 8), (3, 2, 6)]  # H mod 4 = 1, 0, 1, 0, 2


def _gru_case(rng, T, B, H):
    x = f32(rng, T, B, 3 * H)
    W_hh = f32(rng, 3 * H, H, scale=1 / np.sqrt(H))
    return x, W_hh, f32(rng, 3 * H, scale=0.3), f32(rng, B, H, scale=0.5)


def _lstm_case(rng, T, B, H):
    return f32(rng, T, B, 4 * H), f32(rng, 4 * H, H, scale=1 / np.sqrt(H)), f32(rng, B, H, scale=0.5), \
        f32(rng, B, H, scale=0.5)


def _f64(*arrays):
    return [np.ascontiguousarray(a, dtype=np.float64) for a in arrays]


@pytest.mark.parametrize("T,B,H", GATED_SHAPES)
def test_gru_forward_and_backward_match_numpy(simd, T, B, H):
    from tinyrnn import gru

    rng = np.random.default_rng(T * 100 + B * 10 + H)
    x, W_hh, b_hh, h0 = _gru_case(rng, T, B, H)
    W_hh_t = np.ascontiguousarray(W_hh.T)
    hs, hn = np.empty((T, B, H), np.float32), np.empty((T, B, H), np.float32)
    gates = x.copy()
    simd.gru_forward(gates, W_hh_t, b_hh, h0, hs, hn)
    ref_gates, ref_hs, ref_hn = _f64(x, np.empty((T, B, H)), np.empty((T, B, H)))
    gru.forward_time_loop(ref_gates, *_f64(W_hh_t, b_hh, h0), ref_hs, ref_hn)
    for got, ref in ((gates, ref_gates), (hs, ref_hs), (hn, ref_hn)):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, ref, rtol=0, atol=2e-6 * max(1, np.sqrt(H)))

    dhs = f32(rng, T, B, H, scale=0.1)
    norms, dhh = np.empty(T), np.empty((T, B, 3 * H), np.float32)
    dh0 = simd.gru_backward(gates, hn, hs, h0, dhs, W_hh, dhh, norms)
    ref_norms, ref_dhh = np.empty(T), np.empty((T, B, 3 * H))
    ref_dh0 = gru.backward_time_loop(ref_gates, ref_hn, ref_hs, *_f64(h0, dhs, W_hh), ref_dhh, ref_norms)
    for got, ref in ((gates, ref_gates), (dhh, ref_dhh), (dh0, ref_dh0)):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6 * max(1, np.sqrt(H)))
    np.testing.assert_allclose(norms, ref_norms, rtol=1e-5)


@pytest.mark.parametrize("T,B,H", GATED_SHAPES)
def test_lstm_forward_and_backward_match_numpy(simd, T, B, H):
    from tinyrnn import lstm

    rng = np.random.default_rng(T * 100 + B * 10 + H + 1)
    x, W_hh, h0, c0 = _lstm_case(rng, T, B, H)
    W_hh_t = np.ascontiguousarray(W_hh.T)
    hs, cs = np.empty((T, B, H), np.float32), np.empty((T, B, H), np.float32)
    gates = x.copy()
    simd.lstm_forward(gates, W_hh_t, h0, c0, hs, cs)
    ref_gates, ref_hs, ref_cs = _f64(x, np.empty((T, B, H)), np.empty((T, B, H)))
    lstm.forward_time_loop(ref_gates, *_f64(W_hh_t, h0, c0), ref_hs, ref_cs)
    for got, ref in ((gates, ref_gates), (hs, ref_hs), (cs, ref_cs)):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, ref, rtol=0, atol=2e-6 * max(1, np.sqrt(H)))

    dhs = f32(rng, T, B, H, scale=0.1)
    norms_h, norms_c = np.empty(T), np.empty(T)
    dh0, dc0 = simd.lstm_backward(gates, cs, c0, dhs, W_hh, norms_h, norms_c)
    ref_norms_h, ref_norms_c = np.empty(T), np.empty(T)
    ref_dh0, ref_dc0 = lstm.backward_time_loop(ref_gates, ref_cs, *_f64(c0, dhs, W_hh), ref_norms_h, ref_norms_c)
    for got, ref in ((gates, ref_gates), (dh0, ref_dh0), (dc0, ref_dc0)):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6 * max(1, np.sqrt(H)))
    np.testing.assert_allclose(norms_h, ref_norms_h, rtol=1e-5)
    np.testing.assert_allclose(norms_c, ref_norms_c, rtol=1e-5)
    assert simd.lstm_backward(ref_gates.astype(np.float32), cs, c0, dhs, W_hh)[0].shape == (B, H)  # norms optional


def test_gated_kernels_saturate_cleanly_and_propagate_nan(simd):
    """Huge pre-activations give gates of exactly 0 or 1 (no overflow, no NaN); a NaN input stays in its row."""
    T, B, H = 2, 2, 5
    rng = np.random.default_rng(0)
    x, W_hh, h0, c0 = _lstm_case(rng, T, B, H)
    x *= 1e4
    x[1, 1, 3] = np.nan
    hs, cs = np.empty((T, B, H), np.float32), np.empty((T, B, H), np.float32)
    gates = x.copy()
    simd.lstm_forward(gates, np.ascontiguousarray(W_hh.T), h0, c0, hs, cs)
    assert np.all(np.isfinite(gates[0])) and np.all(np.isin(np.abs(gates[0]), (0.0, 1.0)) | (np.abs(x[0]) < 1e-2))
    assert np.isnan(gates[1, 1, 3]) and np.all(np.isfinite(gates[1, 0]))
    assert np.isnan(cs[1, 1, 3]) and np.isnan(hs[1, 1, 3]) and np.isfinite(np.delete(hs[1, 1], 3)).all()
    assert np.all(np.isfinite(hs[1, 0]))
    xg, W_g, b_g, h0g = _gru_case(rng, T, B, H)
    xg[0, 0, 0] = np.nan
    hs, hn = np.empty((T, B, H), np.float32), np.empty((T, B, H), np.float32)
    simd.gru_forward(xg, np.ascontiguousarray(W_g.T), b_g, h0g, hs, hn)
    assert np.isnan(hs[0, 0, 0]) and np.all(np.isfinite(hs[0, 1]))


def test_wrong_gated_shapes_or_dtypes_are_refused_before_the_kernel_runs(simd):
    f = np.zeros
    T, B, H = 2, 3, 4
    x3, x4 = f((T, B, 3 * H), np.float32), f((T, B, 4 * H), np.float32)
    tbh, bh = f((T, B, H), np.float32), f((B, H), np.float32)
    calls = [
        lambda: simd.gru_forward(x3, f((H, 3 * H + 1), np.float32), f(3 * H, np.float32), bh, tbh, tbh.copy()),
        lambda: simd.gru_forward(x3, f((H, 3 * H), np.float32), f(3 * H, np.float32), f((B + 1, H), np.float32),
                                 tbh, tbh.copy()),
        lambda: simd.gru_forward(f((T, B, 3 * H + 1), np.float32), f((H, 3 * H), np.float32), f(3 * H, np.float32),
                                 bh, tbh, tbh.copy()),
        lambda: simd.gru_forward(x3, f((H, 3 * H)), f(3 * H, np.float32), bh, tbh, tbh.copy()),  # float64
        lambda: simd.gru_backward(x3, tbh, tbh, bh, tbh, f((3 * H, H), np.float32), f((T, B, 3 * H - 1), np.float32)),
        lambda: simd.gru_backward(x3, tbh, tbh, bh, tbh, f((3 * H, H), np.float32), x3.copy(), f(T, np.float32)),
        lambda: simd.lstm_forward(x4, f((H, 4 * H), np.float32), bh, f((B, H + 1), np.float32), tbh, tbh.copy()),
        lambda: simd.lstm_forward(x4, f((H, 4 * H), np.float32), bh, bh, tbh, f((T + 1, B, H), np.float32)),
        lambda: simd.lstm_backward(x4, tbh, bh, tbh, f((4 * H, H + 1), np.float32)),
        lambda: simd.lstm_backward(x4, tbh, bh, tbh, f((4 * H, H), np.float32), f(T + 1)),
        lambda: simd.lstm_backward(x4[:, :, ::2], tbh, bh, tbh, f((4 * H, H), np.float32)),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="WebAssembly kernel called with"):
            call()
    assert simd.heap.calls == 0


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("seed", [0, 1])
def test_fused_engine_of_gated_cells_with_kernels_matches_native(simd, monkeypatch, cell, seed):
    """Each gated cell's whole engine as inside Pyodide (kernels for float32) against the native engine."""
    params, inputs, targets, h0 = random_problem(9, 13, 4, 6, seed=seed, dtype=np.float32, scale=0.1, cell=cell)
    native = model.loss_and_grads(params, inputs, targets, h0, engine="fused", cell=cell)
    native_manual = bptt.manual_bptt(params, inputs, targets, h0, cell=cell)
    monkeypatch.setattr(ops, "WASM", True)
    monkeypatch.setattr(wasm_module, "ACTIVE", simd)
    calls = simd.heap.calls
    browser = model.loss_and_grads(params, inputs, targets, h0, engine="fused", cell=cell)
    assert simd.heap.calls >= calls + 2 + 3 + 1  # both time loops, the products and the softmax
    browser_manual = bptt.manual_bptt(params, inputs, targets, h0, cell=cell)
    assert browser.loss == pytest.approx(native.loss, rel=1e-6)
    np.testing.assert_allclose(browser.h_last, native.h_last, rtol=0, atol=2e-6)
    for name, grad in native.grads.items():
        scale = np.abs(grad).max()
        np.testing.assert_allclose(browser.grads[name], grad, rtol=0, atol=2e-6 * scale, err_msg=name)
        np.testing.assert_allclose(browser_manual.grads[name], native_manual.grads[name], rtol=0, atol=2e-6 * scale)
    np.testing.assert_allclose(browser_manual.dh_norms, native_manual.dh_norms, rtol=1e-5)
    if cell == "lstm":
        np.testing.assert_allclose(browser_manual.dc_norms, native_manual.dc_norms, rtol=1e-5)
