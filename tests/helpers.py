"""Shared test data."""
import numpy as np
import tinyrnn


def random_problem(V, H, B, T, seed=0, dtype=np.float64, scale=0.3, cell="rnn"):
    """Random params of a ``cell`` model (perturbed away from init so no gradient is trivially zero), a batch and
    a non-zero initial state h0 (B, S): for the LSTM both its h and its c parts are non-zero."""
    rng = np.random.default_rng(seed)
    config = tinyrnn.ModelConfig(V, H, cell)
    params = tinyrnn.init_params(config, seed=seed)
    params = {k: (v + scale * rng.standard_normal(v.shape)).astype(dtype) for k, v in params.items()}
    inputs = rng.integers(0, V, (B, T))
    targets = rng.integers(0, V, (B, T))
    h0 = (0.5 * rng.standard_normal((B, config.state_size()))).astype(dtype)
    return params, inputs, targets, h0


REPETITIVE = "abcdefghij" * 300


def assert_learns_repetitive_text(config, steps=300):
    """Train on REPETITIVE: the loss must fall from about ln V to below a tenth of it, and greedy sampling must
    continue the pattern. Returns the trainer."""
    import math

    trainer = tinyrnn.Trainer(REPETITIVE, config)
    history = trainer.run(steps)
    ln_v = math.log(trainer.vocab.size)
    assert history[0].train_loss > 0.9 * ln_v
    assert history[-1].train_loss < 0.1 * ln_v
    assert trainer.evaluate() < 0.1 * ln_v
    assert trainer.sample(20, prime="abc", temperature=0) == "defghijabcdefghijabc"
    return trainer


# --- the flat fast path (tests/test_native_kernels.py, tests/test_wasm_flat.py) ------------------------------

FLAT_CONFIG = tinyrnn.TrainConfig(hidden_size=24, seq_len=10, batch_size=4, lr=5e-3, clip_norm=0.5)  # clipping active


def flat_problem(V, H, B, T, seed=0, cell="rnn"):
    """A random problem of a ``cell`` model whose float64 params and state h0 (B, S) are exactly float32 values (so
    that both sides start from the same numbers), with W_hh scaled to a non-chaotic recurrence at every H:
    (layout, params, flat, inputs, targets, h0)."""
    from tinyrnn.engines.flat import FlatLayout

    params, inputs, targets, h0 = random_problem(V, H, B, T, seed=seed, scale=min(0.3, 1.2 / np.sqrt(H)), cell=cell)
    params = {k: v.astype(np.float32).astype(np.float64) for k, v in params.items()}
    layout = FlatLayout(H, V, cell)
    return layout, params, layout.flatten(params), inputs, targets, h0.astype(np.float32).astype(np.float64)


def window_loss_and_grad(flat, window):
    """(loss, flat gradient, h_last, dh0) of a kernel set's window: the loss is its summed nats × ``scale``."""
    from types import SimpleNamespace

    loss = window.forward(flat) * window.scale
    return SimpleNamespace(loss=float(loss), grad=window.backward(flat), h_last=window.h_last, dh0=window.dh0)


def flat_loss_and_grad(kernels, layout, flat, inputs, targets, h0):
    """Loss (the mean), flat gradient, h_last and dh0 (B, S) of one window on a kernel set; h0 (B, S) may be
    float64 (it is rounded to float32)."""
    window = kernels.window(layout, inputs, targets, np.asarray(h0, np.float32), 1.0 / np.size(inputs))
    return window_loss_and_grad(flat, window)


def assert_window_matches_the_numpy_reference(kernels, cell, V, H, B, T, rtol=2e-4):
    """A random window of a ``cell`` model on a set of flat kernels: its float32 loss, gradients, last state and
    dL/dstate0 (B, S) against the float64 fused and traced engines (the traced one is the independent reference)."""
    from tinyrnn import model

    layout, params, flat, inputs, targets, h0 = flat_problem(V, H, B, T, seed=V + H + B + T, cell=cell)
    result = flat_loss_and_grad(kernels, layout, flat, inputs, targets, h0)
    assert result.h_last.shape == result.dh0.shape == (B, layout.S)
    for engine in ("fused", "autograd"):
        ref = model.loss_and_grads(params, inputs, targets, h0, engine=engine, cell=layout.cell)
        assert abs(result.loss - ref.loss) <= 2e-6 * abs(ref.loss)
        grads = layout.views(result.grad)
        assert set(grads) == set(layout.shapes)
        for name in layout.shapes:
            assert grads[name].shape == ref.grads[name].shape
            assert_close(grads[name], ref.grads[name], rtol)
        assert_close(result.dh0, ref.grads["h0"], rtol)
        assert_close(result.h_last, ref.h_last, rtol)


def assert_close(actual, reference, rtol):
    """|actual - reference| <= rtol * max|reference|: float32 against a float64 reference."""
    scale = max(np.abs(reference).max(), 1e-30)
    assert np.abs(actual - reference).max() <= rtol * scale


def assert_follows_the_numpy_trainer(fast, plain, steps=30):
    """A trainer on the flat path (``fast``) trains as the numpy trainer ``plain`` does, to float32 rounding."""
    assert fast.engine_choice.engine != "reference" and plain.engine_choice.engine == "reference"
    for _ in range(steps):
        a, b = fast.step(), plain.step()
        assert abs(a.train_loss - b.train_loss) <= 1e-4 * b.train_loss
        assert abs(a.grad_norm - b.grad_norm) <= 1e-4 * b.grad_norm
    assert fast.history[-1].train_loss < 0.7 * fast.history[0].train_loss
    assert list(fast.params) == list(plain.params)  # every cell's parameters, in ModelConfig.param_shapes() order
    for k in plain.params:
        assert fast.params[k].dtype == np.float32 and fast.params[k].shape == plain.params[k].shape
        assert_close(fast.params[k], plain.params[k], 1e-3)
    assert fast.optimizer_state["t"] == plain.optimizer_state["t"] == steps
    assert set(fast.optimizer_state) == set(plain.optimizer_state)
